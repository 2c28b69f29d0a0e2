//! Certificates on real TLS sockets: the proxy's certificate is verified (untrusted CA,
//! wrong name, expired and revoked are refused before any SIP is sent), mutual TLS
//! presents the local certificate, and bad certificate files stop the phone at start
//! naming the parameter and the file.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod runtime_support;

use runtime_support::{Lab, temp_dir, watchdog};
use sip_ptls::config::CertificateFiles;
use sip_ptls::ids::Server;
use sip_ptls::registrar::{Registrar, RegistrarConfig, TestPki};
use sip_ptls::runtime::{Phone, StartError};
use sip_ptls::{Event, FlowError, TransportError};
use std::time::Duration;

/// Runs a phone against `registrar` and returns the reason of the first failed connect.
fn refusal(lab: &Lab, registrar: &Registrar) -> String {
    let mut phone = lab.phone(lab.config(registrar, None));
    let (_, e) = phone.wait("a failed connect", Duration::from_secs(10), |e| matches!(e, Event::ConnectFailed { .. }));
    phone.idle(Duration::from_millis(300));
    assert_eq!(registrar.stats().registers, 0, "no REGISTER on a connection that failed verification");
    assert!(registrar.bindings().is_empty());
    assert_eq!(
        phone.count(std::time::Instant::now() - Duration::from_secs(60), |e| matches!(e, Event::Registered { .. })),
        0
    );
    match e {
        Event::ConnectFailed {
            reason: FlowError::Transport(TransportError::Certificate(why)),
            server: Server::Primary,
        } => why,
        other => panic!("expected a certificate rejection, got {other:?}"),
    }
}

fn registrar_with_cert(cert: sip_ptls::registrar::CertKey) -> Registrar {
    Registrar::start(RegistrarConfig::new(runtime_support::DOMAIN, &runtime_support::USERS, cert)).expect("registrar")
}

#[test]
fn a_server_certificate_from_an_untrusted_ca_is_refused() {
    let _w = watchdog("untrusted CA", Duration::from_secs(60));
    let lab = Lab::new();
    let other = TestPki::other_ca().expect("other CA");
    let registrar = registrar_with_cert(other.server_cert(&["localhost", "127.0.0.1"]).expect("cert"));
    let why = refusal(&lab, &registrar);
    assert!(why.contains("not in the trusted certificates"), "{why}");
}

#[test]
fn a_server_certificate_for_another_name_is_refused() {
    let _w = watchdog("wrong name", Duration::from_secs(60));
    let lab = Lab::new();
    let registrar = registrar_with_cert(lab.pki.server_cert(&["sip.elsewhere.test"]).expect("cert"));
    let why = refusal(&lab, &registrar);
    assert!(why.contains("not valid for name") && why.contains("127.0.0.1"), "{why}");
}

#[test]
fn an_expired_server_certificate_is_refused() {
    let _w = watchdog("expired", Duration::from_secs(60));
    let lab = Lab::new();
    let registrar = registrar_with_cert(lab.pki.expired_server_cert(&["localhost", "127.0.0.1"]).expect("cert"));
    let why = refusal(&lab, &registrar);
    assert!(why.contains("expired"), "{why}");
}

#[test]
fn mutual_tls_presents_the_local_certificate() {
    let _w = watchdog("mutual TLS", Duration::from_secs(60));
    let lab = Lab::new();
    let registrar = lab.registrar_with(|c| c.client_ca_pem = Some(lab.pki.ca_pem.clone()));
    let me = lab.pki.client_cert("phone-00085D1A2B3C").expect("client certificate");
    lab.dir.write("phone.crt", &me.cert_pem).expect("write a test file");
    lab.dir.write("phone.key", &me.key_pem).expect("write a test file");
    lab.dir.write("chain.pem", &lab.pki.ca_pem).expect("write a test file");
    let mut config = lab.config(&registrar, None);
    config.certificates.local_certificate = Some("phone.crt".into());
    config.certificates.private_key = Some("phone.key".into());
    config.certificates.root_and_intermediate = Some("chain.pem".into());
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    assert_eq!(registrar.stats().handshakes_ok, 1);
}

#[test]
fn without_a_local_certificate_a_server_requiring_one_refuses_the_handshake() {
    let _w = watchdog("mutual TLS refused", Duration::from_secs(60));
    let lab = Lab::new();
    let registrar = lab.registrar_with(|c| c.client_ca_pem = Some(lab.pki.ca_pem.clone()));
    let mut phone = lab.phone(lab.config(&registrar, None));
    let (_, e) = phone.wait("a failure", Duration::from_secs(10), |e| {
        matches!(e, Event::ConnectFailed { .. } | Event::FlowLost { .. })
    });
    assert!(matches!(e, Event::ConnectFailed { .. } | Event::FlowLost { .. }), "{e:?}");
    phone.idle(Duration::from_millis(300));
    assert_eq!(registrar.stats().registers, 0);
    assert_eq!(registrar.stats().handshakes_ok, 0);
}

/// Starts a phone whose certificate files are `files` in `dir`; returns the error.
fn start_error(lab: &Lab, files: CertificateFiles, dir: &std::path::Path) -> sip_ptls::runtime::CertFileError {
    let registrar = lab.registrar();
    let mut config = lab.config(&registrar, None);
    config.certificates = files;
    match Phone::new(config, dir) {
        Err(StartError::Certificate(e)) => e,
        Err(other) => panic!("expected a certificate file error, got {other}"),
        Ok(_) => panic!("the phone started with a bad certificate file"),
    }
}

fn trusted(name: &str) -> CertificateFiles {
    CertificateFiles { trusted_certificates: Some(name.into()), ..Default::default() }
}

#[test]
fn certificate_file_errors_name_the_parameter_and_the_file() {
    let _w = watchdog("file errors", Duration::from_secs(60));
    let lab = Lab::new();
    let dir = temp_dir();
    let d = dir.path();

    let e = start_error(&lab, trusted("missing.pem"), d);
    assert_eq!(e.parameter, "sips trusted certificates");
    assert_eq!(e.file, d.join("missing.pem"), "relative names resolve against the base directory");
    assert!(e.to_string().contains("missing.pem") && e.to_string().contains("not found"), "{e}");

    dir.write("garbage.pem", "this is not a certificate\n").expect("write a test file");
    let e = start_error(&lab, trusted("garbage.pem"), d);
    assert_eq!(e.parameter, "sips trusted certificates");
    assert!(e.problem.contains("no PEM certificate"), "{e}");

    dir.write("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n").expect("write a test file");
    let e = start_error(&lab, trusted("broken.pem"), d);
    assert!(e.problem.contains("not a PEM file"), "{e}");

    let expired = lab.pki.expired_server_cert(&["x"]).expect("cert");
    dir.write("expired.pem", &expired.cert_pem).expect("write a test file");
    let e = start_error(&lab, trusted("expired.pem"), d);
    assert!(e.problem.contains("expired on 2001-01-01"), "{e}");

    dir.write("ca.pem", &lab.pki.ca_pem).expect("write a test file");
    let mine = lab.pki.client_cert("phone").expect("cert");
    let other = lab.pki.client_cert("other").expect("cert");
    dir.write("phone.crt", &mine.cert_pem).expect("write a test file");
    dir.write("other.key", &other.key_pem).expect("write a test file");
    dir.write("expired.key", &expired.key_pem).expect("write a test file");
    let files = |cert: &str, key: &str| CertificateFiles {
        trusted_certificates: Some("ca.pem".into()),
        local_certificate: Some(cert.into()),
        private_key: Some(key.into()),
        root_and_intermediate: None,
        revocation_list: None,
    };
    let e = start_error(&lab, files("phone.crt", "other.key"), d);
    assert_eq!(e.parameter, "sips private key");
    assert_eq!(e.file, d.join("other.key"));
    assert!(e.problem.contains("does not match") && e.problem.contains("phone.crt"), "{e}");

    let e = start_error(&lab, files("expired.pem", "expired.key"), d);
    assert_eq!(e.parameter, "sips local certificate");
    assert!(e.problem.contains("expired"), "{e}");

    let e = start_error(&lab, files("phone.crt", "absent.key"), d);
    assert_eq!(e.parameter, "sips private key");
    assert_eq!(e.file, d.join("absent.key"));

    let e = start_error(
        &lab,
        CertificateFiles { root_and_intermediate: Some("nochain.pem".into()), ..trusted("ca.pem") },
        d,
    );
    assert_eq!(e.parameter, "sips root and intermediate certificates");

    // An absolute name is used as it is.
    let abs = d.join("ca.pem").display().to_string();
    let registrar = lab.registrar();
    let mut config = lab.config(&registrar, None);
    config.certificates = trusted(&abs);
    assert!(Phone::new(config, std::path::Path::new("/nonexistent")).is_ok());
}

/// The base64 lines of a PEM file (what a leak of the key would show).
fn pem_body(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).collect()
}

#[test]
fn key_material_never_appears_in_errors_or_debug() {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let lab = Lab::new();
    let dir = temp_dir();
    let d = dir.path();
    let mine = lab.pki.client_cert("phone").expect("cert");
    dir.write("ca.pem", &lab.pki.ca_pem).expect("write a test file");
    dir.write("phone.crt", &mine.cert_pem).expect("write a test file");
    dir.write("phone.key", &mine.key_pem).expect("write a test file");
    let files = |key: &str| CertificateFiles {
        trusted_certificates: Some("ca.pem".into()),
        local_certificate: Some("phone.crt".into()),
        private_key: Some(key.into()),
        root_and_intermediate: None,
        revocation_list: None,
    };
    let mode = sip_ptls::config::TransportMode::PersistentTls;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let der = PrivateKeyDer::from_pem_slice(mine.key_pem.as_bytes()).expect("a key");
    let der_bytes = format!("{:?}", &der.secret_der()[..24]);
    let der_bytes = der_bytes.trim_matches(['[', ']']);
    let creds = sip_ptls::runtime::load_credentials(&files("phone.key"), mode, d, now).expect("loads");
    let shown = format!("{creds:?}");
    for line in pem_body(&mine.key_pem) {
        assert!(!shown.contains(line), "key PEM in Debug");
    }
    assert!(!shown.contains(der_bytes), "key DER in Debug");
    let tls = sip_ptls::runtime::ClientTls::from_credentials(creds).expect("builds");
    let shown = format!("{tls:?}");
    assert!(!shown.contains(der_bytes) && pem_body(&mine.key_pem).iter().all(|l| !shown.contains(l)));

    // Broken key files: whatever the PEM parser saw must not be quoted back.
    let body = pem_body(&mine.key_pem);
    let first = body.first().copied().unwrap_or_default();
    let broken = [
        format!("-----BEGIN PRIVATE KEY-----\n{first}\n"),
        format!("-----BEGIN PRIVATE KEY-----\n{first}!!\n-----END PRIVATE KEY-----\n"),
        format!("-----BEGIN PRIVATE KEY-----{first}\n-----END PRIVATE KEY-----\n"),
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", body.join("\n").replacen('M', "N", 3)),
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", &first[..first.len() / 4 * 4]),
    ];
    for (i, text) in broken.iter().enumerate() {
        let name = format!("broken{i}.key");
        dir.write(&name, text).expect("write a test file");
        let e = sip_ptls::runtime::load_credentials(&files(&name), mode, d, now).expect_err("a broken key");
        assert_eq!(e.parameter, "sips private key");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(&first[..16]), "case {i}: key text in the error: {shown}");
    }
}

/// A registrar whose certificate, from the lab's CA, has this serial number.
fn registrar_with_serial(lab: &Lab, serial: u64) -> Registrar {
    registrar_with_cert(lab.pki.server_cert_with_serial(&["localhost", "127.0.0.1"], serial).expect("cert"))
}

/// The lab's configuration with `list` written as the revocation list file.
fn with_revocation_list(
    lab: &Lab,
    primary: &Registrar,
    backup: Option<&Registrar>,
    list: &str,
) -> sip_ptls::config::Config {
    lab.dir.write("crl.pem", list).expect("write a test file");
    let mut config = lab.config(primary, backup);
    config.certificates.revocation_list = Some("crl.pem".into());
    config
}

#[test]
fn a_revoked_primary_is_refused_and_the_phone_registers_on_the_backup() {
    let _w = watchdog("revoked primary", Duration::from_secs(60));
    let lab = Lab::new();
    let primary = registrar_with_serial(&lab, 0x5e1);
    let backup = registrar_with_serial(&lab, 0x5e2);
    let list = lab.pki.revocation_list(&[0x5e1], false).expect("revocation list");
    let mut phone = lab.phone(with_revocation_list(&lab, &primary, Some(&backup), &list));
    let (_, refused) =
        phone.wait("the primary refused", Duration::from_secs(10), |e| matches!(e, Event::ConnectFailed { .. }));
    match refused {
        Event::ConnectFailed {
            server: Server::Primary,
            reason: FlowError::Transport(TransportError::Certificate(why)),
        } => assert!(why.contains("revoked"), "{why}"),
        other => panic!("expected the primary's certificate refused, got {other:?}"),
    }
    phone.wait("registered on the backup", Duration::from_secs(10), |e| {
        matches!(e, Event::Registered { server: Server::Backup, .. })
    });
    assert_eq!(primary.stats().registers, 0, "no REGISTER reaches a server whose certificate is revoked");
}

#[test]
fn a_stale_list_still_revokes_and_a_certificate_it_does_not_name_is_accepted() {
    let _w = watchdog("stale list", Duration::from_secs(60));
    let lab = Lab::new();
    // Past its nextUpdate, the list still revokes what it names.
    let revoked = registrar_with_serial(&lab, 0x7a1);
    let stale = lab.pki.revocation_list(&[0x7a1], true).expect("revocation list");
    let mut phone = lab.phone(with_revocation_list(&lab, &revoked, None, &stale));
    let (_, refused) = phone.wait("refused", Duration::from_secs(10), |e| matches!(e, Event::ConnectFailed { .. }));
    assert!(
        matches!(&refused, Event::ConnectFailed { reason: FlowError::Transport(TransportError::Certificate(why)), .. } if why.contains("revoked")),
        "{refused:?}"
    );
    drop(phone);
    // A certificate the list does not name, and a list from another CA (the status of
    // this CA's certificates is unknown): both accepted.
    let fine = registrar_with_serial(&lab, 0x7a2);
    let mut phone = lab.phone(with_revocation_list(&lab, &fine, None, &stale));
    phone.wait("registered", Duration::from_secs(10), |e| matches!(e, Event::Registered { .. }));
    drop(phone);
    let other = TestPki::other_ca().expect("other CA").revocation_list(&[0x7a2], false).expect("list");
    let mut phone = lab.phone(with_revocation_list(&lab, &fine, None, &other));
    phone.wait("registered", Duration::from_secs(10), |e| matches!(e, Event::Registered { .. }));
}

#[test]
fn a_revocation_list_file_that_cannot_be_used_stops_the_phone_naming_it() {
    let _w = watchdog("list file errors", Duration::from_secs(60));
    let lab = Lab::new();
    let dir = temp_dir();
    let d = dir.path();
    dir.write("ca.pem", &lab.pki.ca_pem).expect("write a test file");
    let with_list = |name: &str| CertificateFiles { revocation_list: Some(name.into()), ..trusted("ca.pem") };

    let e = start_error(&lab, with_list("missing.crl"), d);
    assert_eq!((e.parameter, e.file.clone()), ("sips certificate revocation list", d.join("missing.crl")));
    assert!(e.problem.contains("not found"), "{e}");

    dir.write("cert.crl", &lab.pki.ca_pem).expect("write a test file");
    let e = start_error(&lab, with_list("cert.crl"), d);
    assert_eq!(e.parameter, "sips certificate revocation list");
    assert!(e.problem.contains("no PEM revocation list"), "{e}");

    dir.write("broken.crl", "-----BEGIN X509 CRL-----\nMAMCAQA=\n-----END X509 CRL-----\n").expect("write");
    let e = start_error(&lab, with_list("broken.crl"), d);
    assert_eq!(e.file, d.join("broken.crl"));
    assert!(e.problem.contains("not a valid X.509 revocation list"), "{e}");

    // A list past its nextUpdate loads, with a warning naming it and the date.
    dir.write("stale.crl", lab.pki.revocation_list(&[1], true).expect("list")).expect("write a test file");
    dir.write("fresh.crl", lab.pki.revocation_list(&[1], false).expect("list")).expect("write a test file");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let mode = sip_ptls::config::TransportMode::PersistentTls;
    let stale = sip_ptls::runtime::load_credentials(&with_list("stale.crl"), mode, d, now).expect("a stale list loads");
    assert_eq!(stale.crls.len(), 1);
    assert_eq!(stale.warnings.len(), 1, "{:?}", stale.warnings);
    let warning = &stale.warnings[0];
    assert!(
        warning.contains("sips certificate revocation list")
            && warning.contains("stale.crl")
            && warning.contains("2021-01-01"),
        "{warning}"
    );
    let fresh = sip_ptls::runtime::load_credentials(&with_list("fresh.crl"), mode, d, now).expect("a list loads");
    assert!(fresh.warnings.is_empty(), "{:?}", fresh.warnings);
}

/// The lab's configuration trusting the CAs in `trusted.pem`, written with `pem`.
fn trusting(lab: &Lab, registrar: &Registrar, pem: &str) -> sip_ptls::config::Config {
    lab.dir.write("trusted.pem", pem).expect("write a test file");
    let mut config = lab.config(registrar, None);
    config.certificates.trusted_certificates = Some("trusted.pem".into());
    config
}

fn is_certificate_failure(e: &Event) -> bool {
    matches!(e, Event::ConnectFailed { reason: FlowError::Transport(TransportError::Certificate(_)), .. })
}

#[test]
fn replaced_trusted_certificates_are_used_by_the_next_connection() {
    let _w = watchdog("reload: newly trusted", Duration::from_secs(60));
    let lab = Lab::new();
    let other = TestPki::other_ca().expect("other CA");
    let registrar = registrar_with_cert(other.server_cert(&["localhost", "127.0.0.1"]).expect("cert"));
    let config = trusting(&lab, &registrar, &lab.pki.ca_pem);
    let (files, mode) = (config.certificates.clone(), config.mode);
    let mut phone = lab.phone(config);
    phone.wait("refused: its CA is not trusted", Duration::from_secs(10), is_certificate_failure);
    // The file gets the server's CA; the phone is told to read it again.
    lab.dir.write("trusted.pem", &other.ca_pem).expect("write a test file");
    let closed = phone.handle.reload_certificates_blocking(&files, mode, lab.dir.path()).expect("the new file loads");
    assert_eq!(closed, Some(0), "no connection was up to close");
    phone.all_registered(Server::Primary, Duration::from_secs(10));
}

#[test]
fn an_established_flow_whose_server_is_no_longer_trusted_is_closed_and_a_bad_file_changes_nothing() {
    let _w = watchdog("reload: no longer trusted", Duration::from_secs(60));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let config = trusting(&lab, &registrar, &lab.pki.ca_pem);
    let (files, mode) = (config.certificates.clone(), config.mode);
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, Duration::from_secs(10));

    // A file that does not load: an error naming it, and the flow stays up.
    lab.dir.write("trusted.pem", "not a certificate").expect("write a test file");
    let e = phone.handle.reload_certificates_blocking(&files, mode, lab.dir.path()).expect_err("a bad file");
    assert_eq!((e.parameter, e.file.clone()), ("sips trusted certificates", lab.dir.path().join("trusted.pem")));
    let since = std::time::Instant::now();
    phone.idle(Duration::from_millis(500));
    assert_eq!(phone.count(since, |e| matches!(e, Event::FlowLost { .. })), 0, "{}", phone.history());

    // Trusting another CA only: the established flow's server is refused now.
    let other = TestPki::other_ca().expect("other CA");
    lab.dir.write("trusted.pem", &other.ca_pem).expect("write a test file");
    let closed = phone.handle.reload_certificates_blocking(&files, mode, lab.dir.path()).expect("the file loads");
    assert_eq!(closed, Some(1));
    let (_, lost) = phone.wait("the flow closed", Duration::from_secs(5), |e| matches!(e, Event::FlowLost { .. }));
    assert!(
        matches!(&lost, Event::FlowLost { reason: FlowError::Transport(TransportError::Certificate(why)), .. } if why.contains("not in the trusted certificates")),
        "{lost:?}"
    );
    phone.wait("the next connection is refused", Duration::from_secs(10), is_certificate_failure);
}
