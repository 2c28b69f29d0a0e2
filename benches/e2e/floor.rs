//! The floor of a clean failover, measured in the same run: the least a client can do to
//! get `k` accounts registered on a server with digest authentication. One TCP connect,
//! one TLS handshake (rustls, verified), then every account's REGISTER sent at once, the
//! 401s read, every authenticated REGISTER sent at once, the 200s read.

use crate::server::{DOMAIN, user};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use sip_ptls::sip::{Frame, Framer, Limits, Message, digest};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn register(i: usize, n: usize, cseq: u32, auth: Option<String>) -> Vec<u8> {
    let (u, _) = user(i);
    let mut m = Message::request("REGISTER", &format!("sip:{DOMAIN}"))
        .with_header("Via", format!("SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-floor-{n}-{i}-{cseq}"))
        .with_header("Max-Forwards", "70")
        .with_header("From", format!("<sip:{u}@{DOMAIN}>;tag=floor{i}"))
        .with_header("To", format!("<sip:{u}@{DOMAIN}>"))
        .with_header("Call-ID", format!("floor-{n}-{i}"))
        .with_header("CSeq", format!("{cseq} REGISTER"))
        .with_header("Contact", format!("<sip:{u}@127.0.0.1:5061;transport=tls>"))
        .with_header("Expires", "60");
    if let Some(a) = auth {
        m.push_header("Authorization", a);
    }
    m.to_bytes()
}

/// Reads until `count` SIP messages arrived.
fn read_messages(
    tls: &mut StreamOwned<ClientConnection, TcpStream>,
    framer: &mut Framer,
    count: usize,
) -> Vec<Message> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while out.len() < count {
        while let Ok(Some(f)) = framer.next_frame() {
            if let Frame::Message(m) = f {
                out.push(m);
            }
        }
        if out.len() >= count {
            break;
        }
        let n = tls.read(&mut buf).expect("read from the registrar");
        assert!(n > 0, "the registrar closed the connection");
        framer.push(&buf[..n]);
    }
    out
}

/// Time for accounts `0..k` to be registered on `addr` by the minimal client.
pub fn register_floor(addr: SocketAddr, ca_pem: &str, k: usize, n: usize) -> Duration {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("CA PEM")).expect("add the CA");
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    let t0 = Instant::now();
    let tcp = TcpStream::connect(addr).expect("connect to the registrar");
    let _ = tcp.set_nodelay(true);
    let conn = ClientConnection::new(config, ServerName::try_from("127.0.0.1").expect("name")).expect("TLS client");
    let mut tls = StreamOwned::new(conn, tcp);
    let mut framer = Framer::new(Limits::default());
    let first: Vec<u8> = (0..k).flat_map(|i| register(i, n, 1, None)).collect();
    tls.write_all(&first).expect("send the REGISTERs");
    let challenges = read_messages(&mut tls, &mut framer, k);
    let mut second = Vec::new();
    for resp in &challenges {
        let call_id = resp.call_id().unwrap_or_default();
        let i: usize = call_id.rsplit('-').next().and_then(|x| x.parse().ok()).expect("call id");
        let ch = digest::best_challenge(resp.header_all("WWW-Authenticate")).expect("a challenge");
        let (u, p) = user(i);
        let auth = digest::authorization(&ch, &u, &p, "REGISTER", &format!("sip:{DOMAIN}"), 1, "0a4f113b");
        second.extend(register(i, n, 2, Some(auth)));
    }
    tls.write_all(&second).expect("send the authenticated REGISTERs");
    let oks = read_messages(&mut tls, &mut framer, k);
    let elapsed = t0.elapsed();
    assert!(
        oks.iter().all(|m| m.status() == Some(200)),
        "floor client not registered: {:?}",
        oks.iter().map(|m| m.status()).collect::<Vec<_>>()
    );
    tls.conn.send_close_notify();
    let _ = tls.flush();
    elapsed
}
