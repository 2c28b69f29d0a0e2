//! What the registrar is told at start, and the rustls server configuration built from it
//! (ring provider only; TLS 1.2 and 1.3, or 1.2 alone; optional mutual TLS).

use super::error::RegistrarError;
use super::pki::CertKey;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Configuration of one embedded registrar and proxy.
#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// Where to listen; must be a loopback address (port 0 picks a free port).
    pub bind: SocketAddr,
    /// The SIP domain: digest realm and the host part the registrar answers for.
    pub domain: String,
    /// Known users and their passwords (digest MD5, `qop=auth`; 401 for REGISTER, 407
    /// for INVITE).
    pub users: Vec<(String, String)>,
    /// Server certificate chain and key.
    pub cert: CertKey,
    /// `Some(CA PEM)`: require client certificates signed by that CA (mutual TLS).
    pub client_ca_pem: Option<String>,
    /// `Some(N)`: answer REGISTERs that carry `Supported: outbound` with
    /// `Require: outbound` and `Flow-Timer: N` in the 2xx.
    pub flow_timer: Option<u32>,
    /// Answer CRLFCRLF pings with a CRLF pong.
    pub answer_pings: bool,
    /// Offer only TLS 1.2 (benchmarks); otherwise TLS 1.2 and 1.3.
    pub tls12_only: bool,
    /// Answer every initial INVITE here, as its user agent server, instead of routing it
    /// to the callee: still challenged with 407, then 200 OK with an SDP answer that
    /// declines every offered stream; the dialog's ACK is absorbed and its BYE answered
    /// 200. The call-setup benchmark measures the phone against this floor, which holds
    /// no second phone.
    pub answer_invites: bool,
}

impl RegistrarConfig {
    /// Listens on `127.0.0.1:0`, answers pings, no mutual TLS, no Flow-Timer, TLS 1.2 and
    /// 1.3, routes INVITEs to their callees.
    pub fn new(domain: &str, users: &[(&str, &str)], cert: CertKey) -> RegistrarConfig {
        RegistrarConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            domain: domain.to_string(),
            users: users.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect(),
            cert,
            client_ca_pem: None,
            flow_timer: None,
            answer_pings: true,
            tls12_only: false,
            answer_invites: false,
        }
    }
}

fn pem_err(what: &'static str) -> impl Fn(rustls::pki_types::pem::Error) -> RegistrarError {
    move |e| RegistrarError::Pem { what, reason: e.to_string() }
}

/// The rustls server configuration for `config`.
pub(crate) fn server_config(config: &RegistrarConfig) -> Result<Arc<ServerConfig>, RegistrarError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_slice_iter(config.cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err("server certificate"))?;
    if certs.is_empty() {
        return Err(RegistrarError::Pem { what: "server certificate", reason: "no certificate found".into() });
    }
    let key = PrivateKeyDer::from_pem_slice(config.cert.key_pem.as_bytes()).map_err(pem_err("server key"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone());
    let builder = if config.tls12_only {
        builder.with_protocol_versions(&[&rustls::version::TLS12])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .map_err(|e| RegistrarError::Tls(e.to_string()))?;
    let builder = match &config.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                let cert = cert.map_err(pem_err("client CA"))?;
                roots.add(cert).map_err(|e| RegistrarError::Tls(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| RegistrarError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server = builder.with_single_cert(certs, key).map_err(|e| RegistrarError::Tls(e.to_string()))?;
    Ok(Arc::new(server))
}
