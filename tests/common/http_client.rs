//! A small HTTP/1.1 client for the web interface's tests: one exchange per connection,
//! the session cookie of a login, and waiting for the status to show something.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One HTTP/1.1 exchange on a fresh connection: status, headers (lower-case names) and
/// body.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the web interface");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    exchange(&mut stream, addr, method, path, headers, body)
}

/// One HTTP/1.1 exchange on `stream` (`Connection: close`).
pub fn exchange(
    stream: &mut impl ReadWrite,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body.as_bytes()).expect("send");
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify after `Connection: close`: what was read
    // before counts.
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Polls `/status.json` until its text contains `needle`.
pub fn wait_status(addr: &str, cookie: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, _, body) = request(addr, "GET", "/status.json", &[("Cookie", cookie)], "");
        assert_eq!(code, 200, "{body}");
        if body.contains(needle) {
            return body;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in the status within 15 s: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Logs in with `password`: the session cookie (`name=value`).
pub fn login(addr: &str, password: &str) -> String {
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (code, headers, body) = request(addr, "POST", "/login", &form, &format!("password={password}"));
    assert_eq!(code, 303, "{body}");
    header(&headers, "set-cookie").and_then(|c| c.split(';').next()).expect("a session cookie").to_owned()
}

/// The CSRF token a page carries.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF token")
        .to_owned()
}

/// A TLS client that trusts the lab's CA only.
pub fn tls_client(ca_pem: &str) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("the lab CA")).expect("a trust anchor");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}

pub fn https_request(
    config: &std::sync::Arc<rustls::ClientConfig>,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::clone(config), name).expect("TLS client");
    let tcp = TcpStream::connect(addr).expect("connect to the web interface");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    exchange(&mut stream, addr, method, path, headers, body)
}
