//! The web interface of `sip-ptls run --web` over real HTTP on loopback, against a phone
//! registered on a real TLS registrar: login (wrong password, then right), the status
//! page and its live event stream, the CSRF guard, and a call from line 1 to line 2
//! placed and answered from the interface.
#![cfg(feature = "cli")]

#[path = "common/http_client.rs"]
mod http_client;
#[path = "common/run_child.rs"]
mod run_child;
mod runtime_support;

use http_client::{header, https_request, request, tls_client, wait_status};
use run_child::WebRun;
use runtime_support::{BIN, Lab, sample_aastra_cfg as sample, watchdog};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_web_interface_logs_in_shows_the_phone_live_and_places_and_answers_a_call() {
    let _w = watchdog("web interface", Duration::from_secs(90));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let cfg = lab.web_config(&registrar, "");
    let mut run = WebRun::start(BIN, &cfg, &[], "http");
    let addr = run.addr.clone();

    // Nothing without a login; a wrong password is refused, the right one opens a session.
    let (code, headers, _) = request(&addr, "GET", "/status", &[], "");
    assert_eq!((code, header(&headers, "location")), (303, Some("/login")));
    let (code, _, body) = request(&addr, "GET", "/status.json", &[], "");
    assert_eq!(code, 401, "{body}");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (code, _, body) = request(&addr, "POST", "/login", &form, "password=1234");
    assert_eq!(code, 401);
    assert!(body.contains("Wrong password."), "{body}");
    let (code, headers, _) = request(&addr, "POST", "/login", &form, "password=4321");
    assert_eq!(code, 303);
    let set_cookie = header(&headers, "set-cookie").expect("a session cookie");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().expect("cookie").to_owned();

    // The status page carries the CSRF token; the status follows the phone.
    let (code, _, page) = request(&addr, "GET", "/status", &[("Cookie", &cookie)], "");
    assert_eq!(code, 200);
    let csrf = page.split("name=\"csrf-token\" content=\"").nth(1).and_then(|r| r.split('"').next()).expect("token");
    assert_eq!(csrf.len(), 64);
    wait_status(&addr, &cookie, "\"connection\":\"up on the primary\"");
    wait_status(&addr, &cookie, "\"state\":\"up-primary\"");
    let status = wait_status(&addr, &cookie, "\"state\":\"registered on the primary\"");
    assert!(status.contains("\"line\":2"), "{status}");

    // The live stream starts with the timeline so far and a status.
    let mut events = TcpStream::connect(&addr).expect("connect");
    events.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(events, "GET /events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n").expect("send");
    let mut stream = BufReader::new(events);
    let mut got = String::new();
    while !(got.contains("event: status") && got.contains("line 2 registered on the primary")) {
        let mut line = String::new();
        assert!(stream.read_line(&mut line).expect("read the event stream") > 0, "stream ended: {got}");
        got.push_str(&line);
    }
    assert!(got.contains("text/event-stream"), "{got}");

    // A change without the token is refused; with it, line 1 calls line 2.
    let dial = "line=1&target=1002";
    let (code, _, _) = request(&addr, "POST", "/calls/dial", &[("Cookie", &cookie), form[0]], dial);
    assert_eq!(code, 403);
    let with_token = [("Cookie", cookie.as_str()), form[0], ("X-CSRF-Token", csrf)];
    let (code, _, body) = request(&addr, "POST", "/calls/dial", &with_token, "line=7&target=1002");
    assert_eq!((code, body.as_str()), (400, "line 7 is not configured"));
    let (code, _, body) = request(&addr, "POST", "/calls/dial", &with_token, dial);
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("call#") && body.ends_with("placed from line 1 to 1002"), "{body}");
    let status = wait_status(&addr, &cookie, "\"incoming\":true");
    let incoming = status
        .split("\"call\":")
        .skip(1)
        .find(|c| c.contains("\"incoming\":true"))
        .and_then(|c| c.split(',').next())
        .expect("the incoming call's id")
        .to_owned();
    let (code, _, body) = request(&addr, "POST", &format!("/calls/{incoming}/answer"), &with_token, "");
    assert_eq!(code, 200, "{body}");
    let status = wait_status(&addr, &cookie, "\"state\":\"answered\"");
    assert!(status.contains("\"peer\":\"sips:1001@") && !status.contains(";tag="), "the caller's URI alone: {status}");
    run.wait_log("the caller's answer", |l| l.contains("\"event\":\"call_outcome\"") && l.contains("Answered"));

    // Logging out ends the session.
    let (code, _, _) = request(&addr, "POST", "/logout", &with_token, "");
    assert_eq!(code, 303);
    let (code, _, _) = request(&addr, "GET", "/status.json", &[("Cookie", &cookie)], "");
    assert_eq!(code, 401);
    // The event stream the session opened says so and ends.
    let mut tail = String::new();
    while !tail.contains("event: end") {
        let mut line = String::new();
        assert!(stream.read_line(&mut line).expect("read the event stream") > 0, "stream cut: {tail}");
        tail.push_str(&line);
    }
    run.stop();
}

/// Runs `sip-ptls run FLAGS --config CFG`, which must stop at once with exit status 2:
/// its log.
fn refused_start(cfg: &std::path::Path, flags: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(BIN)
        .arg("run")
        .args(flags)
        .arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .output()
        .expect("run sip-ptls");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{log}");
    log
}

#[test]
fn the_web_interface_refuses_an_address_that_is_not_loopback() {
    let _w = watchdog("web interface address", Duration::from_secs(60));
    let lab = Lab::new();
    let cfg = lab.dir.write("aastra.cfg", sample("127.0.0.1", 5061)).expect("write a test file");
    let log = refused_start(&cfg, &["--web".as_ref(), "0.0.0.0:0".as_ref()]);
    assert!(log.contains("loopback address only") && log.contains("0.0.0.0:0"), "{log}");
}

#[test]
fn the_web_interface_serves_https_with_a_secure_cookie_and_no_plain_http() {
    let _w = watchdog("web interface over HTTPS", Duration::from_secs(90));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let cfg = lab.web_config(&registrar, "");
    let flags = lab.web_https_flags();
    let flags: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_os_str()).collect();
    let run = WebRun::start(BIN, &cfg, &flags, "https");
    let addr = run.addr.clone();

    let client = tls_client(&lab.pki.ca_pem);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (code, headers, _) = https_request(&client, &addr, "POST", "/login", &form, "password=4321");
    assert_eq!(code, 303);
    let set_cookie = header(&headers, "set-cookie").expect("a session cookie");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().expect("cookie").to_owned();
    let (code, _, body) = https_request(&client, &addr, "GET", "/status.json", &[("Cookie", &cookie)], "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"connection\""), "{body}");

    // Plain HTTP on the HTTPS port gets no page.
    let (code, _, _) = request(&addr, "GET", "/login", &[], "");
    assert_eq!(code, 0, "a plain HTTP request was answered");
    run.stop();
}

#[test]
fn a_bad_web_certificate_stops_the_start_naming_the_flag_and_the_file() {
    let _w = watchdog("web certificate", Duration::from_secs(60));
    let lab = Lab::new();
    let cfg = lab.dir.write("aastra.cfg", sample("127.0.0.1", 5061)).expect("write a test file");
    let identity = lab.loopback_cert().expect("a certificate");
    let other = lab.pki.server_cert(&["other.test"]).expect("another certificate");
    let cert = lab.dir.write("web.pem", &identity.cert_pem).expect("write");
    let wrong_key = lab.dir.write("other.key", &other.key_pem).expect("write");
    let not_pem = lab.dir.write("not.pem", "hello").expect("write");
    for (cert, key, needle) in [(&cert, &wrong_key, "`--web-key`"), (&not_pem, &wrong_key, "`--web-cert`")] {
        let flags = ["--web".as_ref(), "127.0.0.1:0".as_ref(), "--web-cert".as_ref(), cert.as_os_str()];
        let log = refused_start(&cfg, &[&flags[..], &["--web-key".as_ref(), key.as_os_str()]].concat());
        assert!(log.contains(needle), "{needle}: {log}");
    }
}

#[test]
fn the_demo_keeps_its_phone_running_for_the_web_interface_until_ctrl_c() {
    let _w = watchdog("demo --web", Duration::from_secs(120));
    let mut child = Command::new(BIN)
        .args(["demo", "--web", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sip-ptls demo");
    let out = run_child::lines_of(child.stdout.take().expect("stdout"));
    let mut seen = Vec::new();
    let line = run_child::wait_line_for(&out, &mut seen, "the web interface's address", Duration::from_secs(90), |l| {
        l.contains("the web interface is on http://")
    });
    let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).expect("address").to_owned();
    // No password in the demo: loopback only, no login. The timeline has the whole demo.
    let status = wait_status(&addr, "", "\"state\":\"registered on the primary\"");
    assert!(status.contains("\"line\":2"), "{status}");
    let mut events = TcpStream::connect(&addr).expect("connect");
    events.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(events, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut stream = BufReader::new(events);
    let mut got = String::new();
    while !got.contains("failed over to the backup") {
        let mut line = String::new();
        assert!(stream.read_line(&mut line).expect("read the event stream") > 0, "stream ended: {got}");
        got.push_str(&line);
    }
    let status = run_child::interrupt(&mut child);
    let rest: Vec<String> = out.iter().collect();
    assert_eq!(status.code(), Some(0), "{}\n{}", seen.join("\n"), rest.join("\n"));
    assert!(rest.iter().any(|l| l.contains("shutdown de-registers both lines")), "{rest:?}");
}
