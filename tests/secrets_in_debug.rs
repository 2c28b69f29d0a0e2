//! No password reaches a `{:?}`: not the configuration, not an account, not the source
//! text of a configuration file, not a core that has answered a digest challenge.

use sip_ptls::config::aastra::{self, Source};
use sip_ptls::config::{AccountConfig, CertificateFiles, Config, ServerAddr};
use sip_ptls::sip::Message;
use sip_ptls::time::Instant;
use sip_ptls::{Core, Event, Input, Output, RegState};

const PASSWORD: &str = "Pa55-w0rd-XYZZY";
const GLOBAL_PASSWORD: &str = "gl0bal-PLUGH";

fn config() -> Config {
    Config {
        proxy: Some(ServerAddr::new("proxy.example.com", 5061)),
        accounts: vec![AccountConfig::new("1001", PASSWORD), AccountConfig::new("1002", GLOBAL_PASSWORD)],
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        seed: 7.into(),
        ..Config::default()
    }
}

fn assert_no_password(what: &str, shown: &str) {
    for p in [PASSWORD, GLOBAL_PASSWORD] {
        assert!(!shown.contains(p), "{what} shows a password: {shown}");
    }
}

#[test]
fn config_and_accounts_hide_passwords() {
    let c = config();
    assert_no_password("Config", &format!("{c:?}"));
    assert_no_password("Config {:#?}", &format!("{c:#?}"));
    assert_no_password("AccountConfig", &format!("{:?}", c.accounts[0]));
    assert!(format!("{:?}", c.accounts[0]).contains("1001"), "the rest is still shown");
}

#[test]
fn a_source_shows_its_name_and_length_not_its_text() {
    let text = format!(
        "sip proxy ip: p.example.com\nsips trusted certificates: ca.pem\nsip line1 user name: 1001\n\
         sip line1 password: {PASSWORD}\nsip password: {GLOBAL_PASSWORD}\n"
    );
    let source = Source { name: "00085D1A2B3C.cfg", text: &text };
    let shown = format!("{source:?}");
    assert_no_password("Source", &shown);
    assert!(shown.contains("00085D1A2B3C.cfg") && shown.contains(&text.len().to_string()), "{shown}");
    let loaded = aastra::load(&[source]).expect("loads");
    assert_no_password("Loaded", &format!("{loaded:?}"));
}

/// Every output the core has queued, leaving the first transmitted message parsed.
fn next_message(core: &mut Core) -> Option<Message> {
    std::iter::from_fn(|| core.poll_output()).find_map(|o| match o {
        Output::Transmit { data, .. } => Message::parse(&data).ok(),
        _ => None,
    })
}

fn answer(req: &Message, status: u16, extra: &[(&str, String)]) -> Vec<u8> {
    let mut resp = Message::response(status, "x");
    for name in ["Via", "From", "To", "Call-ID", "CSeq", "Contact"] {
        if let Some(v) = req.header(name) {
            resp.push_header(name, v);
        }
    }
    for (name, value) in extra {
        resp.push_header(name, value.clone());
    }
    resp.to_bytes()
}

#[test]
fn a_core_that_answered_a_digest_challenge_hides_passwords() {
    let now = Instant::ZERO;
    let mut config = config();
    config.accounts.truncate(1);
    let mut core = Core::new(config, now);
    core.start(now);
    let conn = sip_ptls::sim::drain_answering(&mut core, now, &sip_ptls::sim::Zone::default())
        .into_iter()
        .find_map(|o| match o {
            Output::Connect { conn, .. } => Some(conn),
            _ => None,
        })
        .expect("a connection");
    core.handle_input(now, Input::Connected { conn, local: "127.0.0.1:40000".parse().expect("address") });
    let first = next_message(&mut core).expect("REGISTER");
    let challenge = "Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth\"".to_owned();
    let data = answer(&first, 401, &[("WWW-Authenticate", challenge)]);
    core.handle_input(now, Input::Received { conn, data: &data });
    let second = next_message(&mut core).expect("authenticated REGISTER");
    assert!(second.header("Authorization").is_some());
    let data = answer(&second, 200, &[("Expires", "600".to_owned())]);
    core.handle_input(now, Input::Received { conn, data: &data });
    let events: Vec<Event> = std::iter::from_fn(|| core.poll_output())
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(
        matches!(core.registration(sip_ptls::ids::AccountId(0)), Some(RegState::Registered { .. })),
        "registered: {events:?}"
    );
    assert_no_password("Core", &format!("{core:?}"));
    assert_no_password("Core {:#?}", &format!("{core:#?}"));
}
