//! A minimal raw SIP-over-TLS client (rustls with the ring provider, the crate's own
//! `sip` codec and digest code). It proves Kamailio and the test configuration work
//! independently of the phone runtime, and serves as a second registered user agent in
//! the scenarios ("a second registered client"): it registers, calls, answers and
//! reports exactly what it received.

use super::config::{REALM, password};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sip_ptls::sip::{Frame, Framer, Limits, Message, digest};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Runs `fut` with a time bound; `Err` names what timed out.
pub fn block_on_timeout<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> Result<T, String> {
    futures_lite::future::block_on(futures_lite::future::or(async { Ok(fut.await) }, async {
        async_io::Timer::after(limit).await;
        Err(format!("{what}: no result within {limit:?}"))
    }))
}

/// A rustls client configuration trusting `ca`, optionally presenting a client certificate.
pub fn tls_config(ca: &Path, client: Option<(&Path, &Path)>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("read {}: {e}", ca.display()))? {
        roots.add(cert.map_err(|e| format!("parse {}: {e}", ca.display()))?).map_err(|e| e.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .map_err(|e| e.to_string())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| e.to_string())?;
            builder.with_client_auth_cert(certs, key).map_err(|e| e.to_string())?
        }
    };
    Ok(Arc::new(config))
}

/// One TLS connection to a Kamailio, speaking SIP by hand.
pub struct RawClient {
    stream: TlsStream<async_net::TcpStream>,
    framer: Framer,
    /// The client's local address (what Kamailio sees as the source).
    pub local: SocketAddr,
    /// The server port.
    pub server_port: u16,
    cseq: u32,
    counter: u32,
    /// Requests received from the server and not yet taken.
    pub inbox: Vec<Message>,
}

impl RawClient {
    /// TCP connect and TLS handshake to 127.0.0.1:`port`, verifying the server as `name`.
    pub fn connect(port: u16, name: &str, config: Arc<rustls::ClientConfig>) -> Result<RawClient, String> {
        let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
        block_on_timeout("connect + TLS handshake", Duration::from_secs(3), async move {
            let tcp = async_net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("connect: {e}"))?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            let local = tcp.local_addr().map_err(|e| e.to_string())?;
            let stream = TlsConnector::from(config)
                .connect(server_name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            Ok(RawClient {
                stream,
                framer: Framer::new(Limits::default()),
                local,
                server_port: port,
                cseq: 0,
                counter: 0,
                inbox: Vec::new(),
            })
        })?
    }

    /// Writes raw bytes.
    pub fn send(&mut self, data: &[u8]) -> Result<(), String> {
        let stream = &mut self.stream;
        block_on_timeout("write", Duration::from_secs(2), async move {
            stream.write_all(data).await.map_err(|e| e.to_string())?;
            stream.flush().await.map_err(|e| e.to_string())
        })?
    }

    /// The next frame (message or CRLF) within `limit`.
    pub fn next_frame(&mut self, limit: Duration) -> Result<Frame, String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(frame) = self.framer.next_frame().map_err(|e| e.to_string())? {
                return Ok(frame);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let stream = &mut self.stream;
            let mut buf = [0u8; 8192];
            let n = block_on_timeout("read", left, async move { stream.read(&mut buf).await.map(|n| (n, buf)) })?
                .map_err(|e| format!("read: {e}"))?;
            if n.0 == 0 {
                return Err("connection closed by the server".into());
            }
            self.framer.push(&n.1[..n.0]);
        }
    }

    /// The next response within `limit`, keeping requests that arrive meanwhile in `inbox`.
    pub fn next_response(&mut self, limit: Duration) -> Result<Message, String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.next_frame(left)? {
                Frame::Crlf => {}
                Frame::Message(m) if m.is_request() => self.inbox.push(m),
                Frame::Message(m) => return Ok(m),
            }
        }
    }

    /// The next final response (≥ 200) within `limit`.
    pub fn next_final(&mut self, limit: Duration) -> Result<Message, String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let m = self.next_response(left)?;
            if m.status().is_some_and(|s| s >= 200) {
                return Ok(m);
            }
        }
    }

    /// The next request within `limit` (from `inbox` first).
    pub fn next_request(&mut self, limit: Duration) -> Result<Message, String> {
        if !self.inbox.is_empty() {
            return Ok(self.inbox.remove(0));
        }
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Frame::Message(m) = self.next_frame(left)?
                && m.is_request()
            {
                return Ok(m);
            }
        }
    }

    /// Sends CRLFCRLF and waits for the CRLF pong; returns the round trip.
    pub fn ping(&mut self, limit: Duration) -> Result<Duration, String> {
        let t = std::time::Instant::now();
        self.send(b"\r\n\r\n")?;
        match self.next_frame(limit)? {
            Frame::Crlf => Ok(t.elapsed()),
            Frame::Message(m) => Err(format!("expected a CRLF pong, got {:?}", m.start)),
        }
    }

    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}{}x{}", self.local.port(), self.counter)
    }

    fn via(&mut self) -> String {
        let branch = self.fresh("z9hG4bKraw");
        format!("SIP/2.0/TLS {};branch={branch};rport", self.local)
    }

    /// The Contact this client registers for `user`.
    pub fn contact(&self, user: &str) -> String {
        format!("<sips:{user}@{}>", self.local)
    }

    /// REGISTER for `user` with `extra` headers; answers one digest challenge. Returns
    /// the final response.
    pub fn register(&mut self, user: &str, expires: u32, extra: &[(&str, &str)]) -> Result<Message, String> {
        let contact = self.contact(user);
        self.register_with_contact(user, expires, &contact, extra)
    }

    /// REGISTER for `user` with this Contact value and `extra` headers; answers one
    /// digest challenge. Returns the final response.
    pub fn register_with_contact(
        &mut self,
        user: &str,
        expires: u32,
        contact: &str,
        extra: &[(&str, &str)],
    ) -> Result<Message, String> {
        let call_id = format!("reg-{user}-{}", self.local.port());
        let uri = "sips:127.0.0.1";
        let mut auth: Option<String> = None;
        for _ in 0..2 {
            self.cseq += 1;
            let mut m = Message::request("REGISTER", uri)
                .with_header("Via", self.via())
                .with_header("Max-Forwards", "70")
                .with_header("From", format!("<sips:{user}@127.0.0.1>;tag=raw{}", self.local.port()))
                .with_header("To", format!("<sips:{user}@127.0.0.1>"))
                .with_header("Call-ID", call_id.clone())
                .with_header("CSeq", format!("{} REGISTER", self.cseq))
                .with_header("Contact", contact)
                .with_header("Expires", expires.to_string());
            for (name, value) in extra {
                m.push_header(name, *value);
            }
            if let Some(a) = &auth {
                m.push_header("Authorization", a.clone());
            }
            self.send(&m.to_bytes())?;
            let resp = self.next_final(Duration::from_secs(3))?;
            if resp.status() == Some(401) && auth.is_none() {
                let ch = digest::best_challenge(resp.header_all("WWW-Authenticate"))
                    .ok_or("401 without a usable WWW-Authenticate")?;
                if ch.realm != REALM {
                    return Err(format!("unexpected realm {}", ch.realm));
                }
                let cnonce = self.fresh("cn");
                auth = Some(digest::authorization(&ch, user, password(user), "REGISTER", uri, 1, &cnonce));
                continue;
            }
            return Ok(resp);
        }
        Err("challenged twice".into())
    }

    /// Sends an INVITE from `from` to `to` (no body), answering one 407 with
    /// credentials. Returns the first response after the authenticated INVITE was sent,
    /// or, when that is still to come, a request line placeholder (status `None`).
    pub fn invite(&mut self, to: &str) -> Result<Message, String> {
        let from = "alice";
        let uri = format!("sips:{to}@127.0.0.1");
        let call_id = self.fresh("call");
        let tag = self.fresh("tag");
        let mut auth: Option<String> = None;
        for cseq in 1..=2u32 {
            let mut m = Message::request("INVITE", &uri)
                .with_header("Via", self.via())
                .with_header("Max-Forwards", "70")
                .with_header("From", format!("<sips:{from}@127.0.0.1>;tag={tag}"))
                .with_header("To", format!("<{uri}>"))
                .with_header("Call-ID", call_id.clone())
                .with_header("CSeq", format!("{cseq} INVITE"))
                .with_header("Contact", self.contact(from));
            if let Some(a) = &auth {
                m.push_header("Proxy-Authorization", a.clone());
                self.send(&m.to_bytes())?;
                return Ok(m);
            }
            self.send(&m.to_bytes())?;
            let resp = self.next_final(Duration::from_secs(3))?;
            if resp.status() != Some(407) {
                return Ok(resp);
            }
            // ACK the 407 in its transaction.
            let ack = Message::request("ACK", &uri)
                .with_header("Via", m.top_via().unwrap_or_default().to_owned())
                .with_header("Max-Forwards", "70")
                .with_header("From", format!("<sips:{from}@127.0.0.1>;tag={tag}"))
                .with_header("To", resp.header("To").unwrap_or_default().to_owned())
                .with_header("Call-ID", call_id.clone())
                .with_header("CSeq", format!("{cseq} ACK"));
            self.send(&ack.to_bytes())?;
            let ch = digest::best_challenge(resp.header_all("Proxy-Authenticate")).ok_or("407 without a challenge")?;
            let cnonce = self.fresh("cn");
            auth = Some(digest::authorization(&ch, from, password(from), "INVITE", &uri, 1, &cnonce));
        }
        Err("challenged twice".into())
    }

    /// Answers a request received from the server with `status`, copying the headers a
    /// response needs; for a 2xx to INVITE adds a Contact.
    pub fn reply(&mut self, req: &Message, status: u16, reason: &str, to_tag: Option<&str>) -> Result<(), String> {
        let mut resp = Message::response(status, reason);
        for via in req.header_all("Via") {
            resp.push_header("Via", via);
        }
        for rr in req.header_all("Record-Route") {
            resp.push_header("Record-Route", rr);
        }
        resp.push_header("From", req.header("From").unwrap_or_default());
        let to = req.header("To").unwrap_or_default().to_owned();
        let to = match to_tag {
            Some(tag) if !to.contains(";tag=") => format!("{to};tag={tag}"),
            _ => to,
        };
        resp.push_header("To", to);
        resp.push_header("Call-ID", req.call_id().unwrap_or_default());
        resp.push_header("CSeq", req.header("CSeq").unwrap_or_default());
        if req.method() == Some("INVITE") && (200..300).contains(&status) {
            let user = req.header("To").and_then(|t| t.split("sips:").nth(1)).and_then(|r| r.split('@').next());
            resp.push_header("Contact", self.contact(user.unwrap_or("raw")));
        }
        self.send(&resp.to_bytes())
    }
}
