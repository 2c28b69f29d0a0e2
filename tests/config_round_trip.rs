//! Every configured value the core writes into a REGISTER either is refused by
//! `Config::validate`, naming its parameter, or comes back unchanged when the REGISTER
//! the core really builds is parsed: no value can inject a header or be silently altered.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use sip_ptls::config::{AccountConfig, CertificateFiles, Config, ConfigError, ServerAddr};
use sip_ptls::sip::headers::NameAddr;
use sip_ptls::sip::{Message, StartLine, digest};
use sip_ptls::time::Instant;
use sip_ptls::{Core, Input, Output};

fn base() -> Config {
    Config {
        proxy: Some(ServerAddr::new("proxy.example.com", 5061)),
        accounts: vec![AccountConfig { display_name: "Reception".into(), ..AccountConfig::new("1001", "secret") }],
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        outbound: true,
        instance_id: Some("urn:uuid:00000000-0000-1000-8000-00085d1a2b3c".into()),
        seed: 7.into(),
        ..Config::default()
    }
}

/// The field under test: the Aastra parameter `validate` names, and how to set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    DisplayName,
    UserName,
    AuthName,
    Password,
    Registrar,
    Proxy,
    InstanceId,
}

impl Field {
    fn parameter(self) -> &'static str {
        match self {
            Field::DisplayName => "sip line1 display name",
            Field::UserName => "sip line1 user name",
            Field::AuthName => "sip line1 auth name",
            Field::Password => "sip line1 password",
            Field::Registrar => "sip registrar ip",
            Field::Proxy => "sip proxy ip",
            Field::InstanceId => "sip persistent tls instance id",
        }
    }

    fn set(self, c: &mut Config, v: &str) {
        let a = &mut c.accounts[0];
        match self {
            Field::DisplayName => a.display_name = v.to_owned(),
            Field::UserName => a.user_name = v.to_owned(),
            Field::AuthName => a.auth_name = v.to_owned(),
            Field::Password => a.password = v.to_owned(),
            Field::Registrar => c.registrar = Some(ServerAddr::new(v, 0)),
            Field::Proxy => c.proxy = Some(ServerAddr::new(v, 0)),
            Field::InstanceId => c.instance_id = Some(v.to_owned()),
        }
    }
}

fn parameter_of(e: &ConfigError) -> &str {
    match e {
        ConfigError::Missing { parameter, .. } => parameter,
        ConfigError::Invalid { parameter, .. } => parameter,
    }
}

/// The next message the core transmits, parsed.
fn transmitted(core: &mut Core) -> Option<(sip_ptls::ids::ConnId, Message)> {
    while let Some(out) = core.poll_output() {
        if let Output::Transmit { conn, data } = out {
            return Message::parse(&data).ok().map(|m| (conn, m));
        }
    }
    None
}

/// The first REGISTER, and the one answering a digest challenge.
fn registers(config: Config) -> Result<(Message, Message), String> {
    let now = Instant::ZERO;
    let mut core = Core::new(config, now);
    core.start(now);
    let conn = sip_ptls::sim::drain_answering(&mut core, now, &sip_ptls::sim::Zone::default())
        .into_iter()
        .find_map(|o| match o {
            Output::Connect { conn, .. } => Some(conn),
            _ => None,
        })
        .ok_or("no connection asked for")?;
    let local = "127.0.0.1:40000".parse().map_err(|_| "address")?;
    core.handle_input(now, Input::Connected { conn, local });
    let (_, first) = transmitted(&mut core).ok_or("no REGISTER sent (or it does not parse)")?;
    let mut challenge = Message::response(401, "Unauthorized");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        challenge.push_header(name, first.header(name).ok_or(name)?);
    }
    challenge.push_header("WWW-Authenticate", "Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth\"");
    let bytes = challenge.to_bytes();
    core.handle_input(now, Input::Received { conn, data: &bytes });
    let (_, second) = transmitted(&mut core).ok_or("no authenticated REGISTER (or it does not parse)")?;
    Ok((first, second))
}

/// The user part of a `sips:user@host` URI.
fn user_of(uri: &str) -> Option<&str> {
    uri.strip_prefix("sips:")?.rsplit_once('@').map(|(u, _)| u)
}

fn nasty_text() -> impl Strategy<Value = String> {
    let pieces = select(vec![
        "a",
        "Z",
        "0",
        "9",
        " ",
        "\t",
        "\r",
        "\n",
        "\r\n",
        "\0",
        "\u{7f}",
        "\u{85}",
        "\"",
        "\\",
        "<",
        ">",
        ";",
        ":",
        "@",
        ",",
        "?",
        "%",
        "%41",
        "[",
        "]",
        ".",
        "-",
        "é",
        "☎",
        "#",
        "'",
        "urn:",
        "Injected: yes",
    ]);
    prop_oneof![
        proptest::collection::vec(pieces, 0..8).prop_map(|v| v.concat()),
        "[ -~]{0,16}",
        "\\PC{0,8}",
        any::<String>(),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    select(vec![
        Field::DisplayName,
        Field::UserName,
        Field::AuthName,
        Field::Password,
        Field::Registrar,
        Field::Proxy,
        Field::InstanceId,
    ])
}

fn check(field: Field, value: &str) -> Result<(), TestCaseError> {
    let mut config = base();
    field.set(&mut config, value);
    if let Err(errors) = config.validate() {
        for e in &errors {
            prop_assert_eq!(parameter_of(e), field.parameter(), "{:?} for {:?}", e, value);
        }
        prop_assert!(field != Field::Password || errors.is_empty(), "a password never reaches a header");
        return Ok(());
    }
    let (first, second) = registers(config.clone()).map_err(|e| TestCaseError::fail(format!("{e} for {value:?}")))?;
    let account = &config.accounts[0];
    for m in [&first, &second] {
        let from = NameAddr::parse(m.header("From").unwrap_or_default())
            .ok_or_else(|| TestCaseError::fail("From does not parse"))?;
        prop_assert_eq!(from.display.unwrap_or_default(), account.display_name.clone());
        prop_assert_eq!(user_of(&from.uri), Some(account.user_name.as_str()), "From {}", from.uri);
        let domain = config.registrar.as_ref().or(config.proxy.as_ref()).map(|s| s.host.clone()).unwrap_or_default();
        prop_assert_eq!(from.uri.rsplit_once('@').map(|(_, h)| h), Some(domain.as_str()));
        let StartLine::Request { uri, .. } = &m.start else { return Err(TestCaseError::fail("not a request")) };
        prop_assert_eq!(uri.clone(), format!("sips:{domain}"));
        let contact = NameAddr::parse(m.header("Contact").unwrap_or_default())
            .ok_or_else(|| TestCaseError::fail("Contact does not parse"))?;
        let instance = contact.params.iter().find(|(n, _)| n == "+sip.instance").and_then(|(_, v)| v.clone());
        prop_assert_eq!(instance, config.instance_id.as_ref().map(|id| format!("<{id}>")));
        // Nothing the value carries may start a header line of its own.
        prop_assert!(m.header("Injected").is_none());
    }
    let auth = digest::parse_authorization(second.header("Authorization").unwrap_or_default())
        .map_err(|e| TestCaseError::fail(format!("Authorization does not parse: {e}")))?;
    prop_assert_eq!(auth.username.as_str(), account.digest_user());
    prop_assert!(
        digest::verify(&auth, &account.password, "REGISTER"),
        "the digest answers with the configured password"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_value_is_refused_by_name_or_carried_exactly(field in field(), value in nasty_text()) {
        check(field, &value)?;
    }
}

#[test]
fn a_display_name_with_a_carriage_return_is_refused() {
    let mut config = base();
    Field::DisplayName.set(&mut config, "Al\rInjected: yes");
    let errors = config.validate().expect_err("must be refused");
    assert_eq!(errors.iter().map(parameter_of).collect::<Vec<_>>(), ["sip line1 display name"]);
}

#[test]
fn quotes_and_backslashes_in_names_are_escaped_not_stripped() {
    let mut config = base();
    Field::DisplayName.set(&mut config, "Al \"Big\" \\ Smith");
    Field::AuthName.set(&mut config, "dom\\al\"");
    assert_eq!(config.validate(), Ok(()));
    let (first, second) = registers(config).expect("registers");
    let from = NameAddr::parse(first.header("From").expect("From")).expect("parses");
    assert_eq!(from.display.as_deref(), Some("Al \"Big\" \\ Smith"));
    let auth = digest::parse_authorization(second.header("Authorization").expect("auth")).expect("parses");
    assert_eq!(auth.username, "dom\\al\"");
}
