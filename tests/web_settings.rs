//! The settings pages of `sip-ptls run --web` over real HTTP on loopback, against a phone
//! registered on a real TLS registrar: the Aastra layout with a locked parameter greyed,
//! a bad value refused next to its field with nothing written, a good change saved to
//! the local file (never to the given one) and the phone restarted with it (the
//! registrar then sees pings at the new interval), a line's password never sent back,
//! and certificate uploads: a bad file refused with the same check as at start-up, a
//! good one kept and used by the restarted phone.
#![cfg(feature = "cli")]

#[path = "common/http_client.rs"]
mod http_client;
#[path = "common/run_child.rs"]
mod run_child;
mod runtime_support;

use http_client::{csrf_of, login, request, wait_status};
use run_child::WebRun;
use runtime_support::{BIN, Lab, watchdog};
use std::time::Duration;

const LOCAL: &str = "sip-ptls-local.cfg";

/// `pairs` as an urlencoded body.
fn urlencoded(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// `fields` and one file as a multipart body: content type and body.
fn multipart(fields: &[(&str, &str)], file: (&str, &str, &str)) -> (String, String) {
    let boundary = "sip-ptls-test-boundary";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    let (name, file_name, content) = file;
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/x-pem-file\r\n\r\n{content}\r\n--{boundary}--\r\n"
    ));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The HTML element of the field of `parameter` (its `<div class="field">` line).
fn field<'a>(page: &'a str, parameter: &str) -> &'a str {
    let id = format!("id=\"f-{}\"", parameter.replace(' ', "-"));
    page.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("no field {parameter} in:\n{page}"))
}

#[test]
fn settings_are_checked_saved_to_the_local_file_and_applied_at_once_or_by_a_restart() {
    let _w = watchdog("web settings", Duration::from_secs(150));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let cfg = lab.web_config(&registrar, "!sip registration period: 600\n");
    let given = std::fs::read_to_string(&cfg).expect("the given file");
    let mut run = WebRun::start(BIN, &cfg, &[], "http");
    let addr = run.addr.clone();
    let local = lab.dir.path().join(LOCAL);
    let cookie = login(&addr, "4321");
    wait_status(&addr, &cookie, "\"state\":\"registered on the primary\"");

    // The Aastra layout, with what the files set and what they lock.
    let (code, _, page) = request(&addr, "GET", "/settings/global-sip", &[("Cookie", &cookie)], "");
    assert_eq!(code, 200, "{page}");
    for text in ["Basic SIP Network Settings", "Advanced SIP Settings", "Proxy Server", "Transaction Timer"] {
        assert!(page.contains(text), "{text}");
    }
    assert!(field(&page, "sip transport protocol").contains("<option value=\"persistent\" selected>Persistent TLS"));
    assert!(field(&page, "sip persistent tls keep alive").contains("value=\"1\""));
    let locked = field(&page, "sip registration period");
    assert!(locked.contains(" disabled") && locked.contains("locked by a configuration file"), "{locked}");
    let csrf = csrf_of(&page);
    let form = |pairs: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str()), ("sip send sips over tls", "1")];
        all.extend_from_slice(pairs);
        urlencoded(&all)
    };
    let post = |path: &str, content_type: &str, body: &str| {
        request(&addr, "POST", path, &[("Cookie", &cookie), ("Content-Type", content_type)], body)
    };
    let urlenc = "application/x-www-form-urlencoded";

    // Without the token nothing happens; a bad value is refused next to its field.
    let (code, _, _) = post("/settings/global-sip", urlenc, "sip+transaction+timer=8000");
    assert_eq!(code, 403);
    let (code, _, page) = post("/settings/global-sip", urlenc, &form(&[("sip transaction timer", "10")]));
    assert_eq!(code, 422, "{page}");
    let timer = field(&page, "sip transaction timer");
    assert!(timer.contains("aria-invalid=\"true\"") && timer.contains("value=\"10\""), "{timer}");
    assert!(timer.contains("`sip transaction timer`") || timer.contains("sip transaction timer: "), "{timer}");
    let (code, _, page) = post("/settings/global-sip", urlenc, &form(&[("sip registration period", "100")]));
    assert_eq!(code, 422, "{page}");
    assert!(field(&page, "sip registration period").contains("is locked by a configuration file"));
    assert!(!local.exists(), "a refused form writes nothing");

    // The status shows the core's counters: keep-alives with their round trip (1 s
    // interval here), the connection's age, each line's expiry.
    let status = wait_status(&addr, &cookie, "[\"Pongs received\",\"2\"]");
    for needle in ["\"Connection age\"", "[\"Pings sent\",\"", "[\"Last pong round trip\",\"", "\"expires_in\":\""] {
        assert!(status.contains(needle), "{needle} in {status}");
    }
    assert!(status.contains(" ms\"]") && !status.contains("none yet"), "a pong was timed: {status}");
    assert!(!status.contains("\"expires_in\":\"\""), "every line has its expiry: {status}");

    // A timer change goes to the local file and the running phone takes it at once:
    // same connection, no new registration.
    let before = registrar.stats();
    let (code, _, page) = post("/settings/global-sip", urlenc, &form(&[("sip persistent tls keep alive", "3")]));
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Saved to") && page.contains("applied to the running phone"), "{page}");
    assert_eq!(std::fs::read_to_string(&local).expect("the local file"), "sip persistent tls keep alive: 3\n");
    assert_eq!(std::fs::read_to_string(&cfg).expect("the given file"), given, "the given file is never written");
    run.wait_log("the change taken at once", |l| l.contains("applies to the running phone at once"));
    let status = wait_status(&addr, &cookie, "\"state\":\"registered on the primary\"");
    assert!(status.contains("[\"Persistent connections made\",\"1\"]"), "the same connection: {status}");
    let after = registrar.stats();
    assert_eq!((after.accepted, after.registers), (before.accepted, before.registers), "no new connection or REGISTER");
    let (_, _, page) = request(&addr, "GET", "/settings/global-sip", &[("Cookie", &cookie)], "");
    assert!(field(&page, "sip persistent tls keep alive").contains("value=\"3\""));
    // Pings every 2.4 to 3 s now (1 s before): at most 3 in 6 s.
    let start = registrar.stats().pings;
    std::thread::sleep(Duration::from_secs(6));
    let pings = registrar.stats().pings - start;
    eprintln!("web_settings: {pings} pings in 6 s after the change ({} before it)", before.pings);
    assert!((1..=3).contains(&pings), "{pings} pings in 6 s at a 3 s interval");

    // A line's page: its values, and never its password.
    let (code, _, page) = request(&addr, "GET", "/settings/line/2", &[("Cookie", &cookie)], "");
    assert_eq!(code, 200);
    assert!(field(&page, "sip line2 user name").contains("value=\"1002\""));
    assert!(!page.contains("secret-two") && !page.contains("********"), "a password sent back");

    // Uploads: a file that is not PEM is refused as at start-up, and nothing is kept.
    let tls_form = [("csrf", csrf.as_str()), ("sips trusted certificates", "ca.pem")];
    let (ct, body) = multipart(&tls_form, ("upload:sips trusted certificates", "bad.pem", "hello"));
    let (code, _, page) = post("/settings/tls", &ct, &body);
    assert_eq!(code, 422, "{page}");
    let trusted = field(&page, "sips trusted certificates");
    assert!(trusted.contains("aria-invalid=\"true\"") && trusted.contains("`sips trusted certificates`"), "{trusted}");
    let names: Vec<String> = std::fs::read_dir(lab.dir.path())
        .expect("the directory")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("pending") || n.starts_with("sips-")), "{names:?}");
    assert_eq!(std::fs::read_to_string(&local).expect("the local file"), "sip persistent tls keep alive: 3\n");

    // The CA itself: kept beside the local file, named there, and read again by the
    // running phone at once; the connection it has stays, since the CA still accepts it.
    let (ct, body) = multipart(&tls_form, ("upload:sips trusted certificates", "ca.pem", &lab.pki.ca_pem));
    let (code, _, page) = post("/settings/tls", &ct, &body);
    assert_eq!(code, 200, "{page}");
    let kept = lab.dir.path().join("sips-trusted-certificates.pem");
    assert_eq!(std::fs::read_to_string(&kept).expect("the uploaded file"), lab.pki.ca_pem);
    let text = std::fs::read_to_string(&local).expect("the local file");
    assert!(text.contains(&format!("sips trusted certificates: {}", kept.display())), "{text}");
    assert!(local.with_extension("cfg.bak").exists(), "the previous version is kept");
    assert!(page.contains("applied to the running phone"), "{page}");
    run.wait_log("the reload", |l| l.contains("certificate files read again"));
    let status = wait_status(&addr, &cookie, "\"state\":\"registered on the primary\"");
    assert!(status.contains("[\"Persistent connections made\",\"1\"]"), "the same connection: {status}");

    // A line's new display name needs new bindings: the phone restarts.
    let line = urlencoded(&[
        ("csrf", csrf.as_str()),
        ("sip line1 user name", "1001"),
        ("sip line1 display name", "Front desk"),
        ("sip line1 auth name", ""),
        ("sip line1 password", ""),
        ("sip line1 registration period", ""),
    ]);
    let (code, _, page) = post("/settings/line/1", urlenc, &line);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("The phone restarts") && page.contains("lines changed"), "{page}");
    run.wait_log("the restart", |l| l.contains("phone restarted with the saved configuration"));
    wait_status(&addr, &cookie, "\"state\":\"registered on the primary\"");
    run.stop();
}
