//! Kamailio itself, checked with a raw rustls client and the crate's SIP codec: the test
//! configuration, the generated certificates and the fault injection work, independently
//! of the phone runtime. If one of these fails, the phone scenarios cannot be trusted.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod kamailio;

use kamailio::client::{RawClient, tls_config};
use kamailio::config::{KamailioConfig, REALM, password};
use kamailio::instance::{Kamailio, free_port};
use kamailio::pki::{self, BACKUP_NAME, PRIMARY_NAME, ServerCert};
use kamailio::{serial, temp_dir};
use sip_ptls::sip::{Message, digest};
use std::time::{Duration, Instant};

const INSTANCE: &str = "<urn:uuid:00000000-0000-4000-8000-00000000c0de>";

#[test]
fn pings_pong_and_digest_register_shows_in_kamailio_tables() {
    let _g = serial();
    let t0 = Instant::now();
    let dir = temp_dir("raw-register");
    let pki = pki::generate(&dir);
    let k = Kamailio::start(dir.path(), &pki, KamailioConfig::new("primary", free_port(), ServerCert::Primary));
    let mut c = RawClient::connect(k.cfg.port, PRIMARY_NAME, tls_config(&pki.ca, None).unwrap()).unwrap();
    for _ in 0..3 {
        let rtt = c.ping(Duration::from_secs(1)).expect("CRLFCRLF answered by CRLF");
        assert!(rtt < Duration::from_millis(500), "pong took {rtt:?}");
    }
    // RFC 5626 registration: +sip.instance and reg-id on the Contact.
    let resp = c
        .register_with_contact(
            "alice",
            600,
            &format!("<sips:alice@{}>;+sip.instance=\"{INSTANCE}\";reg-id=1", c.local),
            &[("Supported", "outbound, path")],
        )
        .unwrap();
    assert_eq!(resp.status(), Some(200), "{}", String::from_utf8_lossy(&resp.to_bytes()));
    assert!(resp.header_values("Require").iter().any(|v| v.eq_ignore_ascii_case("outbound")), "Require: outbound");
    assert!(resp.header("Flow-Timer").is_none(), "no Flow-Timer unless configured");

    let bindings = k.bindings();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    let b = &bindings[0];
    assert_eq!(b.aor, "alice");
    assert_eq!(b.received_port(), Some(c.local.port()), "Received records the connection's source: {b:?}");
    assert!(b.received.contains("transport=tls"), "{b:?}");
    assert_eq!(b.reg_id, 1, "{b:?}");
    assert_eq!(b.instance, INSTANCE, "{b:?}");

    let tcp = k.tcp_connections();
    assert_eq!(tcp.len(), 1, "{tcp:?}");
    assert_eq!((tcp[0].src_port, tcp[0].fields.get("type").map(String::as_str)), (c.local.port(), Some("TLS")));
    assert_eq!(b.tcpconn_id, tcp[0].id, "binding tied to the connection");
    let tls = k.tls_connections();
    assert_eq!(tls.len(), 1, "{tls:?}");
    assert!(tls[0].fields.get("state").is_some_and(|s| s == "established"), "{tls:?}");

    let log = k.log_lines(&["SAVED primary", "aor=sips:alice@127.0.0.1"]);
    assert_eq!(log.len(), 1, "one SAVED line: {log:?}");
    assert!(t0.elapsed() < Duration::from_secs(15), "took {:?}", t0.elapsed());
}

#[test]
fn flow_timer_and_wrong_password() {
    let _g = serial();
    let dir = temp_dir("raw-flow-timer");
    let pki = pki::generate(&dir);
    let mut cfg = KamailioConfig::new("primary", free_port(), ServerCert::Primary);
    cfg.flow_timer = 5;
    let k = Kamailio::start(dir.path(), &pki, cfg);
    let mut c = RawClient::connect(k.cfg.port, PRIMARY_NAME, tls_config(&pki.ca, None).unwrap()).unwrap();
    let resp = c
        .register_with_contact(
            "bob",
            300,
            &format!("<sips:bob@{}>;+sip.instance=\"{INSTANCE}\";reg-id=1", c.local),
            &[("Supported", "outbound, path")],
        )
        .unwrap();
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.header("Flow-Timer"), Some("5"), "registrar flow_timer 5");

    // A REGISTER with a wrong password is challenged again, never accepted.
    let uri = "sips:127.0.0.1";
    let first = Message::request("REGISTER", uri)
        .with_header("Via", format!("SIP/2.0/TLS {};branch=z9hG4bKwrong1", c.local))
        .with_header("From", "<sips:carol@127.0.0.1>;tag=w")
        .with_header("To", "<sips:carol@127.0.0.1>")
        .with_header("Call-ID", "wrong-pw")
        .with_header("CSeq", "1 REGISTER")
        .with_header("Contact", format!("<sips:carol@{}>", c.local));
    c.send(&first.to_bytes()).unwrap();
    let challenge = c.next_final(Duration::from_secs(2)).unwrap();
    assert_eq!(challenge.status(), Some(401));
    let ch = digest::best_challenge(challenge.header_all("WWW-Authenticate")).unwrap();
    assert_eq!(ch.realm, REALM);
    assert!(ch.qop_auth, "Kamailio offers qop=auth");
    let auth = digest::authorization(&ch, "carol", "not-carols-password", "REGISTER", uri, 1, "abc");
    let second = Message::request("REGISTER", uri)
        .with_header("Via", format!("SIP/2.0/TLS {};branch=z9hG4bKwrong2", c.local))
        .with_header("From", "<sips:carol@127.0.0.1>;tag=w")
        .with_header("To", "<sips:carol@127.0.0.1>")
        .with_header("Call-ID", "wrong-pw")
        .with_header("CSeq", "2 REGISTER")
        .with_header("Contact", format!("<sips:carol@{}>", c.local))
        .with_header("Authorization", auth);
    c.send(&second.to_bytes()).unwrap();
    let refused = c.next_final(Duration::from_secs(2)).unwrap();
    assert_ne!(refused.status(), Some(200));
    assert!(k.bindings().iter().all(|b| b.aor != "carol"), "carol not registered");
    assert_ne!(password("carol"), "not-carols-password");
}

#[test]
fn server_certificates_are_verified_by_rustls() {
    let _g = serial();
    let dir = temp_dir("raw-certs");
    let pki = pki::generate(&dir);
    let config = tls_config(&pki.ca, None).unwrap();
    let cases = [
        (ServerCert::Primary, PRIMARY_NAME, None),
        (ServerCert::Backup, BACKUP_NAME, None),
        (ServerCert::Primary, "127.0.0.1", None),
        (ServerCert::WrongName, "127.0.0.1", Some("not valid for name")),
        (ServerCert::Expired, "127.0.0.1", Some("expired")),
        (ServerCert::OtherCa, "127.0.0.1", Some("issuer")),
    ];
    for (i, (cert, name, want_error)) in cases.into_iter().enumerate() {
        let k = Kamailio::start(dir.path(), &pki, KamailioConfig::new(&format!("cert{i}"), free_port(), cert));
        let result = RawClient::connect(k.cfg.port, name, config.clone());
        match (want_error, result) {
            (None, Ok(mut c)) => {
                c.ping(Duration::from_secs(1)).unwrap();
            }
            (None, Err(e)) => panic!("{cert:?} as {name}: {e}"),
            (Some(want), Ok(_)) => panic!("{cert:?} as {name} accepted, expected {want}"),
            (Some(want), Err(e)) => {
                assert!(e.to_lowercase().contains(want), "{cert:?} as {name}: {e}, expected {want}")
            }
        }
    }
}

#[test]
fn mutual_tls_accepts_our_client_certificate_only() {
    let _g = serial();
    let dir = temp_dir("raw-mtls");
    let pki = pki::generate(&dir);
    let mut cfg = KamailioConfig::new("primary", free_port(), ServerCert::Primary);
    cfg.require_client_cert = true;
    let k = Kamailio::start(dir.path(), &pki, cfg);

    let with = tls_config(&pki.ca, Some((&pki.client.cert, &pki.client.key))).unwrap();
    let mut c = RawClient::connect(k.cfg.port, PRIMARY_NAME, with).unwrap();
    assert_eq!(c.register("alice", 300, &[]).unwrap().status(), Some(200));

    // In TLS 1.3 the client finishes its handshake before the server checks the client
    // certificate: the refusal shows on the first exchange.
    for (what, config) in [
        ("no client certificate", tls_config(&pki.ca, None).unwrap()),
        (
            "client certificate of another CA",
            tls_config(&pki.ca, Some((&pki.client_other_ca.cert, &pki.client_other_ca.key))).unwrap(),
        ),
    ] {
        let refused =
            RawClient::connect(k.cfg.port, PRIMARY_NAME, config).and_then(|mut c| c.ping(Duration::from_secs(2)));
        assert!(refused.is_err(), "{what} accepted");
    }
    let users: Vec<String> = k.bindings().into_iter().map(|b| b.aor).collect();
    assert_eq!(users, ["alice"]);
}

#[test]
fn kamailio_routes_a_call_over_the_callees_own_connection() {
    let _g = serial();
    let dir = temp_dir("raw-call");
    let pki = pki::generate(&dir);
    let k = Kamailio::start(dir.path(), &pki, KamailioConfig::new("primary", free_port(), ServerCert::Primary));
    let config = tls_config(&pki.ca, None).unwrap();
    let mut alice = RawClient::connect(k.cfg.port, PRIMARY_NAME, config.clone()).unwrap();
    let mut bob = RawClient::connect(k.cfg.port, PRIMARY_NAME, config).unwrap();
    assert_eq!(alice.register("alice", 300, &[]).unwrap().status(), Some(200));
    assert_eq!(bob.register("bob", 300, &[]).unwrap().status(), Some(200));

    let invite = alice.invite("bob").unwrap();
    assert_eq!(invite.status(), None, "INVITE sent after the 407");
    let incoming = bob.next_request(Duration::from_secs(3)).unwrap();
    assert_eq!(incoming.method(), Some("INVITE"));
    assert!(incoming.header("Record-Route").is_some(), "record_route");
    bob.reply(&incoming, 486, "Busy Here", Some("bobtag")).unwrap();
    let fin = alice.next_final(Duration::from_secs(3)).unwrap();
    assert_eq!(fin.status(), Some(486));

    // Kamailio reached bob over bob's connection: still two connections, no new one.
    let ports: Vec<u16> = k.tcp_connections().iter().map(|c| c.src_port).collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(ports.contains(&alice.local.port()) && ports.contains(&bob.local.port()), "{ports:?}");
    assert!(k.log_lines(&["RELAYFAIL"]).is_empty());
}

#[test]
fn signals_reach_every_worker() {
    let _g = serial();
    let dir = temp_dir("raw-signals");
    let pki = pki::generate(&dir);
    let mut k = Kamailio::start(dir.path(), &pki, KamailioConfig::new("primary", free_port(), ServerCert::Primary));
    let config = tls_config(&pki.ca, None).unwrap();
    let mut c = RawClient::connect(k.cfg.port, PRIMARY_NAME, config.clone()).unwrap();
    c.ping(Duration::from_secs(1)).unwrap();

    // Frozen: the kernel still accepts TCP, but no pong and no TLS handshake.
    k.freeze();
    assert!(c.ping(Duration::from_millis(700)).is_err(), "a frozen Kamailio does not pong");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", k.cfg.port));
    assert!(tcp.is_ok(), "the kernel completes TCP handshakes of a frozen server");
    let e = RawClient::connect(k.cfg.port, PRIMARY_NAME, config.clone()).err().expect("handshake must not finish");
    assert!(e.contains("no result within"), "{e}");
    drop(tcp);
    k.thaw();
    // The pong of the ping sent while frozen arrives now.
    let _ = c.next_frame(Duration::from_secs(2)).expect("pong after SIGCONT");

    // Killed: the connection is reset or closed, new connections are refused.
    k.kill();
    assert!(c.ping(Duration::from_secs(1)).is_err());
    let e = RawClient::connect(k.cfg.port, PRIMARY_NAME, config.clone()).err().expect("refused");
    assert!(e.contains("connect"), "{e}");

    k.restart();
    let mut c = RawClient::connect(k.cfg.port, PRIMARY_NAME, config).unwrap();
    c.ping(Duration::from_secs(1)).unwrap();
}

/// The keep-alive oracle of the phone scenarios: while a reader process holds a
/// connection, `core.tcp_list` shows in `timeout` the seconds (5 → 0) before the reader
/// gives an idle connection back to the main process; every byte received, a CRLF ping
/// included, resets it. A pinged connection stays at the top, an idle one counts down.
#[test]
fn kamailio_reports_how_long_a_connection_was_idle() {
    let _g = serial();
    let dir = temp_dir("raw-idle");
    let pki = pki::generate(&dir);
    let k = Kamailio::start(dir.path(), &pki, KamailioConfig::new("primary", free_port(), ServerCert::Primary));
    let config = tls_config(&pki.ca, None).unwrap();
    let mut pinged = RawClient::connect(k.cfg.port, PRIMARY_NAME, config.clone()).unwrap();
    let mut idle = RawClient::connect(k.cfg.port, PRIMARY_NAME, config).unwrap();
    assert_eq!(pinged.register("alice", 600, &[]).unwrap().status(), Some(200));
    assert_eq!(idle.register("bob", 600, &[]).unwrap().status(), Some(200));
    let timeout_of = |port: u16| {
        k.tcp_connections()
            .into_iter()
            .find(|c| c.src_port == port)
            .and_then(|c| c.fields.get("timeout").and_then(|t| t.parse::<i64>().ok()))
    };
    let start = Instant::now();
    let (mut min_pinged, mut min_idle) = (i64::MAX, i64::MAX);
    while start.elapsed() < Duration::from_secs(5) {
        pinged.ping(Duration::from_secs(1)).unwrap();
        min_pinged = min_pinged.min(timeout_of(pinged.local.port()).unwrap());
        min_idle = min_idle.min(timeout_of(idle.local.port()).unwrap());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(min_pinged >= 4, "pinged every 0.5 s: timeout stays at the top (min {min_pinged})");
    assert!(min_idle <= 3, "idle for 5 s: timeout counted down (min {min_idle})");
}
