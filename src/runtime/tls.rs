//! The TLS client settings of the phone (rustls with the ring provider, TLS 1.2 and 1.3,
//! the proxy always verified against the trusted certificates, and against the
//! certificate revocation lists when some are configured) and the mapping of socket and
//! TLS failures onto the core's [`TransportError`].

use super::certs::{self, CertFileError, Credentials};
use crate::config::{CertificateFiles, TransportMode};
use crate::engine::TransportError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::SingleCertAndKey;
use rustls::{CertificateError, ClientConfig};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The verified TLS client configuration a phone uses for every connection.
///
/// Built from the certificate files once at start-up. There is no way to turn off the
/// verification of the proxy's certificate.
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    /// The verifier inside `config`, kept to check again the chain of a connection made
    /// before the certificates were reloaded.
    verifier: Arc<WebPkiServerVerifier>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn unix_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

impl ClientTls {
    /// Reads and checks the certificate files (relative names resolved against
    /// `base_dir`) and builds the TLS client configuration.
    pub fn load(files: &CertificateFiles, mode: TransportMode, base_dir: &Path) -> Result<ClientTls, CertFileError> {
        let creds = certs::load(files, mode, base_dir, unix_now())?;
        ClientTls::from_credentials(creds)
    }

    /// Builds the configuration from credentials already in memory. Their warnings (a
    /// stale revocation list) are logged.
    ///
    /// With revocation lists, every certificate of the proxy's chain below the trust
    /// anchor is checked: one a list revokes is refused like an untrusted one. A
    /// certificate whose issuer has no list in the file is accepted (its status is
    /// unknown, not revoked), and a list past its `nextUpdate` is still used.
    pub fn from_credentials(creds: Credentials) -> Result<ClientTls, CertFileError> {
        for warning in &creds.warnings {
            tracing::warn!("{warning}");
        }
        let builder =
            ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| {
                CertFileError {
                    parameter: certs::TRUSTED_CERTIFICATES,
                    file: Default::default(),
                    problem: format!("no usable TLS protocol version: {e}"),
                }
            })?;
        // Without lists this is the verifier `with_root_certificates` would build.
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(creds.roots), provider())
            .with_crls(creds.crls)
            .allow_unknown_revocation_status()
            .build()
            .map_err(|e| CertFileError {
                parameter: certs::REVOCATION_LIST,
                file: Default::default(),
                problem: format!("cannot be used: {e}"),
            })?;
        let builder = builder.with_webpki_verifier(verifier.clone());
        let config = match creds.client {
            None => builder.with_no_client_auth(),
            // The key was loaded and checked against the certificate by `certs::load`.
            Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
        };
        Ok(ClientTls { config: Arc::new(config), verifier })
    }

    /// Checks again, with these settings, the chain a server presented to an earlier
    /// connection to `host` (leaf first): `Err` says why it would be refused now.
    pub fn recheck(&self, host: &str, chain: &[CertificateDer<'static>]) -> Result<(), TransportError> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(TransportError::Certificate("the server presented no certificate".to_owned()));
        };
        let name = server_name(host)?;
        self.verifier
            .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| tls_error(&e))
    }

    /// The rustls configuration, for an embedder that runs its own sockets (see
    /// `examples/tokio_driver.rs`).
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }
}

/// The TLS server settings of the web interface (`sip-ptls run --web` with a certificate):
/// the same provider and protocol versions as the phone's client, and the certificate and
/// key read from `cert` and `key` with the same checks.
pub fn web_server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, CertFileError> {
    let identity = certs::load_server_identity(cert, key, unix_now())?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CertFileError {
            parameter: certs::WEB_CERTIFICATE,
            file: cert.to_path_buf(),
            problem: format!("no usable TLS protocol version: {e}"),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(identity)));
    Ok(Arc::new(config))
}

/// The TLS server name to verify for a configured host: a DNS name, or an IP address
/// that must appear as an IP SAN in the proxy's certificate.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TransportError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|_| TransportError::Certificate(format!("{host:?} is neither a DNS name nor an IP address")))
}

/// What went wrong while connecting the TCP socket.
pub fn connect_error(e: &io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => TransportError::Refused,
        io::ErrorKind::TimedOut => TransportError::TimedOut,
        _ => TransportError::Io(e.to_string()),
    }
}

/// What went wrong during the TLS handshake or on an established connection.
pub fn stream_error(e: &io::Error) -> TransportError {
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return tls_error(tls);
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => {
            TransportError::Reset
        }
        io::ErrorKind::UnexpectedEof => TransportError::PeerClosed,
        io::ErrorKind::TimedOut => TransportError::TimedOut,
        _ => TransportError::Io(e.to_string()),
    }
}

/// A rustls error as the core's reason: certificate problems are told apart.
pub fn tls_error(e: &rustls::Error) -> TransportError {
    match e {
        rustls::Error::InvalidCertificate(c) => TransportError::Certificate(certificate_problem(c)),
        e => TransportError::Tls(e.to_string()),
    }
}

fn certificate_problem(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => {
            "issued by a CA that is not in the trusted certificates (sips trusted certificates)".to_owned()
        }
        CertificateError::Expired => "the server certificate has expired".to_owned(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the server certificate expired {} s ago (not valid after {} UNIX)",
            time.as_secs().saturating_sub(not_after.as_secs()),
            not_after.as_secs()
        ),
        CertificateError::NotValidForName => "the server certificate is not valid for the proxy host name".to_owned(),
        CertificateError::Revoked => {
            "the server certificate (or one of its chain) is revoked (sips certificate revocation list)".to_owned()
        }
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_accept_dns_names_and_ip_literals() {
        assert!(matches!(server_name("sip.example.com"), Ok(ServerName::DnsName(_))));
        assert!(matches!(server_name("127.0.0.1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("not a name"), Err(TransportError::Certificate(_))));
    }

    #[test]
    fn socket_errors_map_to_transport_reasons() {
        let e = |k| io::Error::new(k, "x");
        assert_eq!(connect_error(&e(io::ErrorKind::ConnectionRefused)), TransportError::Refused);
        assert_eq!(connect_error(&e(io::ErrorKind::TimedOut)), TransportError::TimedOut);
        assert_eq!(stream_error(&e(io::ErrorKind::ConnectionReset)), TransportError::Reset);
        assert_eq!(stream_error(&e(io::ErrorKind::UnexpectedEof)), TransportError::PeerClosed);
        assert!(matches!(stream_error(&e(io::ErrorKind::Other)), TransportError::Io(_)));
    }

    #[test]
    fn certificate_failures_are_told_apart_from_other_tls_failures() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, unknown);
        assert!(matches!(stream_error(&wrapped), TransportError::Certificate(why) if why.contains("trusted")));
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert!(matches!(tls_error(&alert), TransportError::Tls(_)));
    }
}
