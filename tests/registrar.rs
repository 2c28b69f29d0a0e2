//! End-to-end tests of the embedded TLS registrar and proxy, driven by a raw rustls client
//! over real loopback sockets.
#![cfg(feature = "registrar")]

use async_io::Timer;
use async_net::TcpStream;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use sip_ptls::registrar::{CertKey, Registrar, RegistrarConfig, TestPki};
use sip_ptls::sip::digest;
use sip_ptls::sip::headers::{NameAddr, Via};
use sip_ptls::sip::{Frame, Framer, Limits, Message};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.test";
const USERS: &[(&str, &str)] = &[("1001", "secret1"), ("1002", "secret2")];

/// Runs a test body, failing it if it takes longer than `secs`.
fn bounded(secs: u64, body: impl Future<Output = ()>) {
    async_io::block_on(future::or(body, async {
        Timer::after(Duration::from_secs(secs)).await;
        panic!("test timed out after {secs} s");
    }))
}

fn client_config(ca_pem: &str, client: Option<&CertKey>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(ck) => {
            let certs = CertificateDer::pem_slice_iter(ck.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
            let key = PrivateKeyDer::from_pem_slice(ck.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
    };
    Arc::new(config)
}

struct Client {
    tls: TlsStream<TcpStream>,
    framer: Framer,
    local: SocketAddr,
    branch: u32,
}

async fn connect_as(addr: SocketAddr, ca_pem: &str, name: &str, cert: Option<&CertKey>) -> std::io::Result<Client> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let local = tcp.local_addr()?;
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let tls = TlsConnector::from(client_config(ca_pem, cert)).connect(server_name, tcp).await?;
    Ok(Client { tls, framer: Framer::new(Limits::default()), local, branch: 0 })
}

async fn connect(reg: &Registrar, pki: &TestPki) -> Client {
    connect_as(reg.addr(), &pki.ca_pem, DOMAIN, None).await.expect("TLS connection to the registrar")
}

impl Client {
    async fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).await.unwrap();
        self.tls.flush().await.unwrap();
    }

    /// The next frame, or `None` on EOF / error / `wait` elapsed.
    async fn frame_within(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(frame) = self.framer.next_frame().unwrap() {
                return Some(frame);
            }
            let mut buf = [0u8; 8192];
            let read = future::or(async { Some(self.tls.read(&mut buf).await) }, async {
                Timer::at(deadline).await;
                None
            })
            .await;
            match read {
                Some(Ok(n)) if n > 0 => self.framer.push(&buf[..n]),
                _ => return None,
            }
        }
    }

    async fn message(&mut self) -> Message {
        loop {
            match self.frame_within(Duration::from_secs(5)).await {
                Some(Frame::Message(m)) => return m,
                Some(Frame::Crlf) => continue,
                None => panic!("no message from the registrar"),
            }
        }
    }

    fn next_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bKtest{}x{}", self.local.port(), self.branch)
    }

    fn register_request(&mut self, user: &str, cseq: u32, expires: u32) -> Message {
        let branch = self.next_branch();
        Message::request("REGISTER", &format!("sips:{DOMAIN}"))
            .with_header("Via", format!("SIP/2.0/TLS {};branch={branch}", self.local))
            .with_header("Max-Forwards", "70")
            .with_header("From", format!("<sips:{user}@{DOMAIN}>;tag=f{user}"))
            .with_header("To", format!("<sips:{user}@{DOMAIN}>"))
            .with_header("Call-ID", format!("reg-{user}-{}", self.local.port()))
            .with_header("CSeq", format!("{cseq} REGISTER"))
            .with_header(
                "Contact",
                format!(
                    "<{}>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-00000000{user}>\";reg-id=1",
                    self.contact(user)
                ),
            )
            .with_header("Expires", expires.to_string())
            .with_header("Supported", "outbound, path")
    }

    fn contact(&self, user: &str) -> String {
        format!("sips:{user}@{};ob", self.local)
    }

    /// REGISTER → 401 → REGISTER with credentials; returns the final response.
    async fn register(&mut self, user: &str, password: &str, expires: u32) -> Message {
        let first = self.register_request(user, 1, expires);
        self.send(&first.to_bytes()).await;
        let challenge = self.message().await;
        assert_eq!(challenge.status(), Some(401), "{challenge:?}");
        let ch = digest::best_challenge(challenge.header_all("WWW-Authenticate")).expect("digest challenge");
        assert!(ch.qop_auth);
        let mut second = self.register_request(user, 2, expires);
        second.push_header(
            "Authorization",
            digest::authorization(&ch, user, password, "REGISTER", &format!("sips:{DOMAIN}"), 1, "c0ffee"),
        );
        self.send(&second.to_bytes()).await;
        self.message().await
    }
}

fn pki_and_registrar(edit: impl FnOnce(&mut RegistrarConfig, &TestPki)) -> (TestPki, Registrar) {
    let pki = TestPki::new().unwrap();
    let cert = pki.server_cert(&[DOMAIN, "127.0.0.1"]).unwrap();
    let mut config = RegistrarConfig::new(DOMAIN, USERS, cert);
    edit(&mut config, &pki);
    let reg = Registrar::start(config).unwrap();
    (pki, reg)
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        Timer::after(Duration::from_millis(5)).await;
    }
}

#[test]
fn handshake_and_ping_pong() {
    let (pki, reg) = pki_and_registrar(|_, _| {});
    bounded(20, async {
        let mut c = connect(&reg, &pki).await;
        c.send(b"\r\n\r\n").await;
        assert_eq!(c.frame_within(Duration::from_secs(5)).await, Some(Frame::Crlf));
        let s = reg.stats();
        assert_eq!((s.accepted, s.open, s.handshakes_ok, s.pings, s.pongs), (1, 1, 1, 1, 1));
    });
}

#[test]
fn pings_unanswered_when_configured() {
    let (pki, reg) = pki_and_registrar(|c, _| c.answer_pings = false);
    bounded(20, async {
        let mut c = connect(&reg, &pki).await;
        c.send(b"\r\n\r\n").await;
        assert_eq!(c.frame_within(Duration::from_millis(300)).await, None);
        assert_eq!((reg.stats().pings, reg.stats().pongs), (1, 0));
    });
}

#[test]
fn register_with_digest_then_unregister() {
    let (pki, reg) = pki_and_registrar(|c, _| c.flow_timer = Some(30));
    bounded(20, async {
        let mut c = connect(&reg, &pki).await;
        let ok = c.register("1001", "secret1", 600).await;
        assert_eq!(ok.status(), Some(200), "{ok:?}");
        let contact = NameAddr::parse(ok.header("Contact").unwrap()).unwrap();
        assert_eq!(contact.uri, c.contact("1001"));
        assert_eq!(contact.param("expires"), Some(Some("600")));
        assert!(contact.param("+sip.instance").is_some());
        assert_eq!(ok.header("Require"), Some("outbound"));
        assert_eq!(ok.header("Flow-Timer"), Some("30"));
        let b = reg.bindings();
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].user.as_str(), b[0].contact.as_str(), b[0].connection),
            ("1001", c.contact("1001").as_str(), 1)
        );
        let log = reg.log();
        assert_eq!(log.len(), 2);
        assert!(log[0].starts_with(&format!("conn=1 REGISTER sips:{DOMAIN} | Contact: <sips:1001@")), "{log:?}");
        assert_eq!(reg.stats().registers, 2);

        let bad = c.register("1002", "wrong", 600).await;
        assert_eq!(bad.status(), Some(401));

        let gone = c.register("1001", "secret1", 0).await;
        assert_eq!(gone.status(), Some(200));
        assert!(reg.bindings().is_empty());
    });
}

#[test]
fn credentials_on_an_unknown_nonce_get_a_stale_challenge_and_are_counted() {
    let (pki, first) = pki_and_registrar(|_, _| {});
    let second =
        Registrar::start(RegistrarConfig::new(DOMAIN, USERS, pki.server_cert(&[DOMAIN, "127.0.0.1"]).unwrap()))
            .unwrap();
    bounded(20, async {
        // A nonce from the first registrar, answered to the second, which never issued it.
        let mut a = connect(&first, &pki).await;
        let request = a.register_request("1001", 1, 600);
        a.send(&request.to_bytes()).await;
        let challenge = a.message().await;
        let ch = digest::best_challenge(challenge.header_all("WWW-Authenticate")).expect("digest challenge");
        let mut b = connect(&second, &pki).await;
        let mut answered = b.register_request("1001", 2, 600);
        answered.push_header(
            "Authorization",
            digest::authorization(&ch, "1001", "secret1", "REGISTER", &format!("sips:{DOMAIN}"), 1, "c0ffee"),
        );
        b.send(&answered.to_bytes()).await;
        let stale = b.message().await;
        assert_eq!(stale.status(), Some(401), "{stale:?}");
        assert!(stale.header("WWW-Authenticate").is_some_and(|h| h.contains("stale=true")), "{stale:?}");
        assert_eq!((first.stats().stale_challenges, second.stats().stale_challenges), (0, 1));
        // A good registration on the first registrar is not counted as stale.
        assert_eq!(a.register("1002", "secret2", 600).await.status(), Some(200));
        assert_eq!(first.stats().stale_challenges, 0);
    });
}

#[test]
fn bindings_die_with_their_connection() {
    let (pki, reg) = pki_and_registrar(|_, _| {});
    bounded(20, async {
        let mut c = connect(&reg, &pki).await;
        assert_eq!(c.register("1001", "secret1", 600).await.status(), Some(200));
        assert_eq!(reg.bindings().len(), 1);
        drop(c);
        wait_until("the binding is dropped", || reg.bindings().is_empty()).await;
        wait_until("the connection is closed", || reg.stats().open == 0).await;
    });
}

/// Line 1 calls line 2 of the same phone: everything travels over one connection.
#[test]
fn call_between_two_lines_on_one_connection() {
    let (pki, reg) = pki_and_registrar(|_, _| {});
    bounded(30, async {
        let mut c = connect(&reg, &pki).await;
        assert_eq!(c.register("1001", "secret1", 600).await.status(), Some(200));
        assert_eq!(c.register("1002", "secret2", 600).await.status(), Some(200));
        let target = format!("sips:1002@{DOMAIN}");
        let invite = |c: &mut Client, cseq: u32| {
            let branch = c.next_branch();
            let mut m = Message::request("INVITE", &target)
                .with_header("Via", format!("SIP/2.0/TLS {};branch={branch}", c.local))
                .with_header("Max-Forwards", "70")
                .with_header("From", format!("<sips:1001@{DOMAIN}>;tag=caller"))
                .with_header("To", format!("<sips:1002@{DOMAIN}>"))
                .with_header("Call-ID", "call-1")
                .with_header("CSeq", format!("{cseq} INVITE"))
                .with_header("Contact", format!("<{}>", c.contact("1001")));
            m.set_body("application/sdp", b"v=0\r\n".to_vec());
            m
        };
        let first = invite(&mut c, 1);
        c.send(&first.to_bytes()).await;
        let challenge = c.message().await;
        assert_eq!(challenge.status(), Some(407));
        let ack = Message::request("ACK", &target)
            .with_header("Via", first.top_via().unwrap())
            .with_header("From", first.header("From").unwrap())
            .with_header("To", challenge.header("To").unwrap())
            .with_header("Call-ID", "call-1")
            .with_header("CSeq", "1 ACK");
        c.send(&ack.to_bytes()).await;
        let ch = digest::best_challenge(challenge.header_all("Proxy-Authenticate")).unwrap();
        let mut second = invite(&mut c, 2);
        second.push_header(
            "Proxy-Authorization",
            digest::authorization(&ch, "1001", "secret1", "INVITE", &target, 1, "abc"),
        );
        c.send(&second.to_bytes()).await;
        let caller_branch = Via::parse(second.top_via().unwrap()).unwrap().branch().unwrap().to_string();

        assert_eq!(c.message().await.status(), Some(100));
        // The forwarded INVITE arrives on the same connection, for line 2's contact.
        let incoming = c.message().await;
        assert_eq!(incoming.method(), Some("INVITE"));
        assert_eq!(incoming.start, Message::request("INVITE", &c.contact("1002")).start);
        let proxy_via = Via::parse(incoming.top_via().unwrap()).unwrap();
        assert_ne!(proxy_via.branch(), Some(caller_branch.as_str()));
        assert_eq!(incoming.header_all("Via").len(), 2);
        let rr = incoming.header("Record-Route").unwrap().to_string();
        assert_eq!(rr, format!("<sips:{};lr>", reg.addr()));
        assert!(incoming.header("Proxy-Authorization").is_none());
        assert_eq!(incoming.header("Max-Forwards"), Some("69"));
        assert_eq!(incoming.body, b"v=0\r\n");

        // Line 2 answers 180 then 200; the caller gets both without the proxy's Via.
        for (status, reason) in [(180, "Ringing"), (200, "OK")] {
            let mut resp = Message::response(status, reason);
            for via in incoming.header_all("Via") {
                resp.push_header("Via", via);
            }
            resp.push_header("Record-Route", rr.clone());
            resp.push_header("From", incoming.header("From").unwrap());
            resp.push_header("To", format!("{};tag=callee", incoming.header("To").unwrap()));
            resp.push_header("Call-ID", "call-1");
            resp.push_header("CSeq", "2 INVITE");
            resp.push_header("Contact", format!("<{}>", c.contact("1002")));
            c.send(&resp.to_bytes()).await;
            let relayed = c.message().await;
            assert_eq!(relayed.status(), Some(status));
            assert_eq!(relayed.header_all("Via").len(), 1);
            assert_eq!(Via::parse(relayed.top_via().unwrap()).unwrap().branch(), Some(caller_branch.as_str()));
        }

        // ACK and BYE follow the route set to line 2's contact.
        let in_dialog = |c: &mut Client, method: &str, cseq: u32| {
            let branch = c.next_branch();
            Message::request(method, &c.contact("1002"))
                .with_header("Via", format!("SIP/2.0/TLS {};branch={branch}", c.local))
                .with_header("Route", rr.clone())
                .with_header("Max-Forwards", "70")
                .with_header("From", format!("<sips:1001@{DOMAIN}>;tag=caller"))
                .with_header("To", format!("<sips:1002@{DOMAIN}>;tag=callee"))
                .with_header("Call-ID", "call-1")
                .with_header("CSeq", format!("{cseq} {method}"))
        };
        let ack = in_dialog(&mut c, "ACK", 2);
        c.send(&ack.to_bytes()).await;
        let got = c.message().await;
        assert_eq!(got.method(), Some("ACK"));
        assert!(got.header("Route").is_none());
        assert_eq!(got.header_all("Via").len(), 2);

        let bye = in_dialog(&mut c, "BYE", 3);
        c.send(&bye.to_bytes()).await;
        let got = c.message().await;
        assert_eq!(got.method(), Some("BYE"));
        let mut ok = Message::response(200, "OK");
        for via in got.header_all("Via") {
            ok.push_header("Via", via);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            ok.push_header(name, got.header(name).unwrap());
        }
        c.send(&ok.to_bytes()).await;
        let relayed = c.message().await;
        assert_eq!(relayed.status(), Some(200));
        assert_eq!(relayed.cseq(), Some((3, "BYE")));
        assert_eq!(relayed.header_all("Via").len(), 1);

        let s = reg.stats();
        assert_eq!((s.accepted, s.invites, s.invites_answered), (1, 2, 0));
        let log = reg.log();
        assert!(log.iter().any(|l| l.starts_with(&format!("conn=1 INVITE sips:1002@{DOMAIN} | Contact: <sips:1001@"))));
        assert!(log.iter().any(|l| l.starts_with("conn=1 BYE sips:1002@")));
    });
}

#[test]
fn invite_to_unknown_user_is_404_and_options_to_us_is_200() {
    let (pki, reg) = pki_and_registrar(|_, _| {});
    bounded(20, async {
        let mut c = connect(&reg, &pki).await;
        let target = format!("sips:1002@{DOMAIN}");
        let mut invite = Message::request("INVITE", &target)
            .with_header("Via", format!("SIP/2.0/TLS {};branch=z9hG4bKa", c.local))
            .with_header("From", format!("<sips:1001@{DOMAIN}>;tag=x"))
            .with_header("To", format!("<{target}>"))
            .with_header("Call-ID", "c404")
            .with_header("CSeq", "1 INVITE");
        c.send(&invite.to_bytes()).await;
        let ch = c.message().await;
        assert_eq!(ch.status(), Some(407));
        let ch = digest::best_challenge(ch.header_all("Proxy-Authenticate")).unwrap();
        invite.headers[0].value = format!("SIP/2.0/TLS {};branch=z9hG4bKb", c.local);
        invite.push_header(
            "Proxy-Authorization",
            digest::authorization(&ch, "1001", "secret1", "INVITE", &target, 1, "n"),
        );
        c.send(&invite.to_bytes()).await;
        assert_eq!(c.message().await.status(), Some(100));
        assert_eq!(c.message().await.status(), Some(404));

        let options = Message::request("OPTIONS", &format!("sips:{DOMAIN}"))
            .with_header("Via", format!("SIP/2.0/TLS {};branch=z9hG4bKo", c.local))
            .with_header("From", format!("<sips:1001@{DOMAIN}>;tag=o"))
            .with_header("To", format!("<sips:{DOMAIN}>"))
            .with_header("Call-ID", "opt")
            .with_header("CSeq", "1 OPTIONS");
        c.send(&options.to_bytes()).await;
        assert_eq!(c.message().await.status(), Some(200));
        assert_eq!(reg.stats().options, 1);
    });
}

#[test]
fn framing_error_closes_the_connection() {
    let (pki, reg) = pki_and_registrar(|_, _| {});
    bounded(20, async {
        let mut c = connect(&reg, &pki).await;
        c.send(b"REGISTER sips:x SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\n\r\n").await;
        assert_eq!(c.frame_within(Duration::from_secs(5)).await, None);
        wait_until("the connection is closed", || reg.stats().open == 0).await;
    });
}

#[test]
fn kill_refuses_connects_and_restore_listens_on_the_same_port() {
    let (pki, reg) = pki_and_registrar(|_, _| {});
    bounded(30, async {
        let addr = reg.addr();
        let mut c = connect(&reg, &pki).await;
        assert_eq!(c.register("1001", "secret1", 600).await.status(), Some(200));
        reg.kill();
        assert_eq!(c.frame_within(Duration::from_secs(5)).await, None, "the old connection is closed");
        assert!(reg.bindings().is_empty());
        let refused = TcpStream::connect(addr).await.expect_err("connect must be refused after kill");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

        reg.restore().unwrap();
        assert!(reg.restore().is_err(), "restore while listening is an error");
        assert_eq!(reg.addr(), addr);
        let mut c = connect(&reg, &pki).await;
        c.send(b"\r\n\r\n").await;
        assert_eq!(c.frame_within(Duration::from_secs(5)).await, Some(Frame::Crlf));

        reg.reset();
        assert_eq!(c.frame_within(Duration::from_secs(5)).await, None);
        assert!(TcpStream::connect(addr).await.is_err());
    });
}

#[test]
fn freeze_answers_nothing_until_thawed() {
    let (pki, reg) = pki_and_registrar(|_, _| {});
    bounded(30, async {
        let mut c = connect(&reg, &pki).await;
        reg.freeze();
        c.send(b"\r\n\r\n").await;
        assert_eq!(c.frame_within(Duration::from_millis(300)).await, None, "no pong while frozen");
        // A new TLS handshake does not complete while frozen.
        let handshake = future::or(async { Some(connect_as(reg.addr(), &pki.ca_pem, DOMAIN, None).await) }, async {
            Timer::after(Duration::from_millis(300)).await;
            None
        })
        .await;
        assert!(handshake.is_none(), "handshake completed while frozen");
        reg.thaw();
        assert_eq!(c.frame_within(Duration::from_secs(5)).await, Some(Frame::Crlf), "pong after thaw");
    });
}

/// With mutual TLS the server refuses a client without a certificate (in TLS 1.3 the
/// client learns it at its first read) and accepts one with a certificate from the CA.
#[test]
fn mutual_tls_requires_a_client_certificate() {
    let (pki, reg) = pki_and_registrar(|c, pki| c.client_ca_pem = Some(pki.ca_pem.clone()));
    bounded(20, async {
        match connect_as(reg.addr(), &pki.ca_pem, DOMAIN, None).await {
            Err(_) => {}
            Ok(mut c) => {
                let _ = c.tls.write_all(b"\r\n\r\n").await;
                let _ = c.tls.flush().await;
                assert_eq!(c.frame_within(Duration::from_secs(5)).await, None);
            }
        }
        wait_until("the failed handshake is counted", || reg.stats().handshakes_failed == 1).await;

        let stranger = TestPki::other_ca().unwrap().client_cert("phone").unwrap();
        if let Ok(mut c) = connect_as(reg.addr(), &pki.ca_pem, DOMAIN, Some(&stranger)).await {
            let _ = c.tls.write_all(b"\r\n\r\n").await;
            assert_eq!(c.frame_within(Duration::from_secs(5)).await, None);
        }
        wait_until("the second failed handshake is counted", || reg.stats().handshakes_failed == 2).await;

        let cert = pki.client_cert("phone").unwrap();
        let mut c = connect_as(reg.addr(), &pki.ca_pem, DOMAIN, Some(&cert)).await.unwrap();
        c.send(b"\r\n\r\n").await;
        assert_eq!(c.frame_within(Duration::from_secs(5)).await, Some(Frame::Crlf));
    });
}

#[test]
fn a_verifying_client_rejects_bad_server_certificates() {
    bounded(30, async {
        let pki = TestPki::new().unwrap();
        let cases = [
            ("expired", pki.expired_server_cert(&[DOMAIN]).unwrap()),
            ("other CA", TestPki::other_ca().unwrap().server_cert(&[DOMAIN]).unwrap()),
            ("wrong name", pki.server_cert(&["other.test"]).unwrap()),
        ];
        for (what, cert) in cases {
            let reg = Registrar::start(RegistrarConfig::new(DOMAIN, USERS, cert)).unwrap();
            let result = connect_as(reg.addr(), &pki.ca_pem, DOMAIN, None).await;
            let err = result.err().unwrap_or_else(|| panic!("{what}: certificate accepted"));
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{what}: {err}");
        }
        // An IP SAN matches an IP server name; TLS 1.2 only still handshakes.
        let mut config = RegistrarConfig::new(DOMAIN, USERS, pki.server_cert(&["127.0.0.1"]).unwrap());
        config.tls12_only = true;
        let reg = Registrar::start(config).unwrap();
        let mut c = connect_as(reg.addr(), &pki.ca_pem, "127.0.0.1", None).await.unwrap();
        assert_eq!(c.tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
        c.send(b"\r\n\r\n").await;
        assert_eq!(c.frame_within(Duration::from_secs(5)).await, Some(Frame::Crlf));
    });
}

#[test]
fn refuses_to_bind_outside_loopback() {
    let pki = TestPki::new().unwrap();
    let mut config = RegistrarConfig::new(DOMAIN, USERS, pki.server_cert(&[DOMAIN]).unwrap());
    config.bind = "0.0.0.0:0".parse().unwrap();
    assert!(Registrar::start(config).is_err());
}

/// CANCEL of a forwarded INVITE is answered 200 by the proxy and sent on to the callee;
/// the callee's 487 comes back to the caller and the caller's ACK for it reaches the callee.
#[test]
fn cancel_reaches_the_callee_and_487_comes_back() {
    let (pki, reg) = pki_and_registrar(|_, _| {});
    bounded(30, async {
        let mut callee = connect(&reg, &pki).await;
        assert_eq!(callee.register("1002", "secret2", 600).await.status(), Some(200));
        let mut caller = connect(&reg, &pki).await;
        assert_eq!(caller.register("1001", "secret1", 600).await.status(), Some(200));
        let target = format!("sips:1002@{DOMAIN}");
        let base = |c: &Client, method: &str, branch: &str| {
            Message::request(method, &target)
                .with_header("Via", format!("SIP/2.0/TLS {};branch={branch}", c.local))
                .with_header("Max-Forwards", "70")
                .with_header("From", format!("<sips:1001@{DOMAIN}>;tag=caller"))
                .with_header("To", format!("<{target}>"))
                .with_header("Call-ID", "call-cancel")
                .with_header("CSeq", format!("1 {method}"))
        };
        caller.send(&base(&caller, "INVITE", "z9hG4bKc1").to_bytes()).await;
        let ch = caller.message().await;
        assert_eq!(ch.status(), Some(407));
        let ch = digest::best_challenge(ch.header_all("Proxy-Authenticate")).unwrap();
        let mut invite = base(&caller, "INVITE", "z9hG4bKc2");
        invite.push_header(
            "Proxy-Authorization",
            digest::authorization(&ch, "1001", "secret1", "INVITE", &target, 1, "k"),
        );
        caller.send(&invite.to_bytes()).await;
        assert_eq!(caller.message().await.status(), Some(100));
        let incoming = callee.message().await;
        assert_eq!(incoming.method(), Some("INVITE"));
        let proxy_branch = Via::parse(incoming.top_via().unwrap()).unwrap().branch().unwrap().to_string();

        caller.send(&base(&caller, "CANCEL", "z9hG4bKc2").to_bytes()).await;
        let ok = caller.message().await;
        assert_eq!((ok.status(), ok.cseq()), (Some(200), Some((1, "CANCEL"))));
        let cancel = callee.message().await;
        assert_eq!(cancel.method(), Some("CANCEL"));
        assert_eq!(Via::parse(cancel.top_via().unwrap()).unwrap().branch(), Some(proxy_branch.as_str()));

        let mut terminated = Message::response(487, "Request Terminated");
        for via in incoming.header_all("Via") {
            terminated.push_header("Via", via);
        }
        terminated.push_header("From", incoming.header("From").unwrap());
        terminated.push_header("To", format!("<{target}>;tag=callee"));
        terminated.push_header("Call-ID", "call-cancel");
        terminated.push_header("CSeq", "1 INVITE");
        callee.send(&terminated.to_bytes()).await;
        let relayed = caller.message().await;
        assert_eq!(relayed.status(), Some(487));
        assert_eq!(relayed.header_all("Via").len(), 1);

        let mut ack = base(&caller, "ACK", "z9hG4bKc2");
        ack.headers.retain(|h| h.name != "To");
        ack.push_header("To", format!("<{target}>;tag=callee"));
        caller.send(&ack.to_bytes()).await;
        let got = callee.message().await;
        assert_eq!(got.method(), Some("ACK"));
        assert_eq!(Via::parse(got.top_via().unwrap()).unwrap().branch(), Some(proxy_branch.as_str()));
        assert_eq!(reg.stats().accepted, 2);
    });
}

/// With `answer_invites` the registrar is the callee: the INVITE is still challenged,
/// then answered 200 with an SDP answer over the caller's connection, and nothing reaches
/// the registered callee; the ACK is absorbed and the BYE answered. A user that is not
/// registered (or not known) is answered too.
#[test]
fn answer_invites_answers_here_and_forwards_nothing() {
    let (pki, reg) = pki_and_registrar(|c, _| c.answer_invites = true);
    bounded(30, async {
        let mut callee = connect(&reg, &pki).await;
        assert_eq!(callee.register("1002", "secret2", 600).await.status(), Some(200));
        let mut caller = connect(&reg, &pki).await;
        let mut last_to = String::new();
        for (n, user) in ["1002", "7777"].into_iter().enumerate() {
            let target = format!("sips:{user}@{DOMAIN}");
            let call_id = format!("answered-{n}");
            let request = |c: &mut Client, method: &str, cseq: u32, to: &str| {
                let branch = c.next_branch();
                Message::request(method, &target)
                    .with_header("Via", format!("SIP/2.0/TLS {};branch={branch}", c.local))
                    .with_header("Max-Forwards", "70")
                    .with_header("From", format!("<sips:1001@{DOMAIN}>;tag=caller"))
                    .with_header("To", to)
                    .with_header("Call-ID", call_id.clone())
                    .with_header("CSeq", format!("{cseq} {method}"))
            };
            let offer =
                b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
            let mut first = request(&mut caller, "INVITE", 1, &format!("<{target}>"));
            first.set_body("application/sdp", offer.to_vec());
            caller.send(&first.to_bytes()).await;
            let challenge = caller.message().await;
            assert_eq!(challenge.status(), Some(407), "{challenge:?}");
            let ch = digest::best_challenge(challenge.header_all("Proxy-Authenticate")).unwrap();
            let mut second = request(&mut caller, "INVITE", 2, &format!("<{target}>"));
            second.set_body("application/sdp", offer.to_vec());
            second.push_header(
                "Proxy-Authorization",
                digest::authorization(&ch, "1001", "secret1", "INVITE", &target, 1, "abc"),
            );
            caller.send(&second.to_bytes()).await;

            // The 200 comes at once (no 100 Trying), from the registrar itself.
            let ok = caller.message().await;
            assert_eq!((ok.status(), ok.cseq()), (Some(200), Some((2, "INVITE"))), "{ok:?}");
            assert_eq!(ok.header_all("Via"), second.header_all("Via"));
            assert_eq!(ok.call_id(), Some(call_id.as_str()));
            let to = NameAddr::parse(ok.header("To").unwrap()).unwrap();
            assert_eq!(to.uri, target);
            let tag = to.tag().expect("the 200 tags the To").to_string();
            assert_eq!(ok.header("Record-Route"), Some(format!("<sips:{};lr>", reg.addr()).as_str()));
            let contact = NameAddr::parse(ok.header("Contact").unwrap()).unwrap();
            assert_eq!(contact.uri, format!("sips:{user}@{}", reg.addr()));
            assert_eq!(ok.header("Content-Type"), Some("application/sdp"));
            let sdp = String::from_utf8(ok.body.clone()).unwrap();
            assert!(sdp.starts_with("v=0\r\n"), "{sdp}");
            assert!(sdp.ends_with("m=audio 0 RTP/AVP 0\r\n"), "the offered stream is declined: {sdp}");

            let to = format!("<{target}>;tag={tag}");
            let ack = request(&mut caller, "ACK", 2, &to).with_header("Route", ok.header("Record-Route").unwrap());
            caller.send(&ack.to_bytes()).await;
            let bye = request(&mut caller, "BYE", 3, &to).with_header("Route", ok.header("Record-Route").unwrap());
            caller.send(&bye.to_bytes()).await;
            // Nothing answers the ACK: the next message is the BYE's 200.
            let bye_ok = caller.message().await;
            assert_eq!((bye_ok.status(), bye_ok.cseq()), (Some(200), Some((3, "BYE"))), "{bye_ok:?}");
            last_to = to;
        }
        assert_eq!(callee.frame_within(Duration::from_millis(300)).await, None, "nothing was forwarded");
        let s = reg.stats();
        assert_eq!((s.invites, s.invites_answered), (4, 2));
        // The dialog ended with its BYE: another BYE in it is routed as the proxy routes
        // any request, and user 7777 has no binding.
        let late = Message::request("BYE", &format!("sips:7777@{DOMAIN}"))
            .with_header("Via", format!("SIP/2.0/TLS {};branch=z9hG4bKlate", caller.local))
            .with_header("From", format!("<sips:1001@{DOMAIN}>;tag=caller"))
            .with_header("To", last_to)
            .with_header("Call-ID", "answered-1")
            .with_header("CSeq", "4 BYE");
        caller.send(&late.to_bytes()).await;
        assert_eq!(caller.message().await.status(), Some(404));
    });
}

/// The handle and the PKI can be moved to and shared with other threads (the demo keeps
/// them next to a phone running elsewhere).
#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Registrar>();
    check::<TestPki>();
    check::<RegistrarConfig>();
}
