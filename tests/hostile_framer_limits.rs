//! Item f: the server sends requests at every limit of the framer (a 64 KiB message, 64
//! header fields, a 4 KiB line), which the phone must take and answer, and one over each,
//! which must end that connection (the stream cannot be resynchronised) and nothing
//! else: the phone opens a new connection and registers again.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod hostile;

use hostile::*;
use sip_ptls::sip::{Frame, Framer, FramingError, Limits};
use std::time::{Duration, Instant};

#[test]
fn child_phone() {
    child_main();
}

/// An OPTIONS to the phone with `extra` header lines and a body of `body` bytes.
fn options(n: u64, extra: &[String], body: usize) -> Vec<u8> {
    let mut m = format!(
        "OPTIONS sip:1001@{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-limit-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:hostile@{DOMAIN}>;tag=l{n}\r\n\
         To: <sip:1001@{DOMAIN}>\r\n\
         Call-ID: limit-{n}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n"
    );
    for h in extra {
        m.push_str(h);
        m.push_str("\r\n");
    }
    m.push_str(&format!("Content-Length: {body}\r\n\r\n"));
    let mut bytes = m.into_bytes();
    bytes.resize(bytes.len() + body, b'x');
    bytes
}

/// Header fields of [`options`] besides the extra ones.
const BASE_HEADERS: usize = 7;

fn of_size(n: u64, total: usize) -> Vec<u8> {
    let mut body = total - options(n, &[], 0).len();
    loop {
        let m = options(n, &[], body);
        match m.len() {
            l if l == total => return m,
            l if l > total => body -= l - total,
            l => body += total - l,
        }
    }
}

fn with_headers(n: u64, count: usize) -> Vec<u8> {
    let extra: Vec<String> = (0..count - BASE_HEADERS).map(|i| format!("X-Pad-{i}: x")).collect();
    options(n, &extra, 0)
}

fn with_line(n: u64, len: usize) -> Vec<u8> {
    options(n, &[format!("X-Long: {}", "a".repeat(len - "X-Long: ".len()))], 0)
}

/// What the crate's own framer makes of `bytes`.
fn framed(bytes: &[u8]) -> Result<(), FramingError> {
    let mut f = Framer::new(Limits::default());
    f.push(bytes);
    match f.next_frame()? {
        Some(Frame::Message(_)) => Ok(()),
        other => panic!("not one message: {other:?}"),
    }
}

#[test]
fn f_messages_at_and_over_every_framer_limit() {
    let test = "f_framer_limits";
    let _w = watchdog(test, Duration::from_secs(120));
    let mut v = Verdict::new(test);
    let limits = Limits::default();
    let at_limit = [
        ("a 64 KiB message", of_size(1, limits.max_message)),
        ("64 header fields", with_headers(2, limits.max_headers)),
        ("a 4 KiB line", with_line(3, limits.max_line)),
    ];
    let over_limit = [
        ("a message of 64 KiB + 1", of_size(4, limits.max_message + 1)),
        ("65 header fields", with_headers(5, limits.max_headers + 1)),
        ("a line of 4 KiB + 1", with_line(6, limits.max_line + 1)),
    ];
    for (what, m) in &at_limit {
        assert_eq!(framed(m), Ok(()), "{what} is within the framer's limits");
    }
    for (what, m) in &over_limit {
        assert!(framed(m).is_err(), "{what} breaks a limit of the framer");
    }

    let lab = lab();
    let server = HostileServer::start(&lab, Script::good());
    let t0 = Instant::now();
    let mut phone = ChildPhone::spawn(server.addr, lab.dir.path(), 30);
    let reg = phone.wait_all_registered(t0, "", Duration::from_secs(15));
    v.check(reg.is_some(), "both accounts register first");
    phone.pump(Duration::from_millis(500));
    phone.mark_baseline();
    let mut calls = Vec::new();

    for (what, m) in &at_limit {
        let before = server.with_log(|l| l.responses_with(200));
        let sent = Instant::now();
        server.send_to_newest(m.clone());
        let answered = (0..50).any(|_| {
            phone.pump(Duration::from_millis(100));
            server.with_log(|l| l.responses_with(200)) > before
        });
        if answered {
            figure(test, &format!("{what}: answered 200 after"), format!("{:?}", sent.elapsed()));
        }
        v.check(answered, format!("{what}: taken and answered 200"));
    }
    v.check(phone.count(t0, "FlowLost") == 0, "no message within the limits cost the connection");
    place_call(&mut v, &mut phone, 0, &mut calls);

    for (what, m) in &over_limit {
        let since = Instant::now();
        server.send_to_newest(m.clone());
        let lost = phone.wait(Duration::from_secs(10), |e| e.starts_with("FlowLost"));
        match lost {
            Some(at) => figure(test, &format!("{what}: connection dropped after"), format!("{:?}", at - since)),
            None => println!("hostile/{test}: last events:\n{}", phone.history(10)),
        }
        v.check(lost.is_some(), format!("{what}: the connection is dropped"));
        let back = phone.wait_all_registered(since, "", Duration::from_secs(15));
        if let Some(at) = back {
            figure(test, &format!("{what}: registered again after"), format!("{:?}", at - since));
        }
        v.check(back.is_some(), format!("{what}: the phone registers again on a new connection"));
        phone.pump(Duration::from_millis(300));
    }
    let reasons: Vec<String> =
        phone.events.iter().filter(|(_, e)| e.starts_with("FlowLost")).map(|(_, e)| e.clone()).collect();
    figure(test, "FlowLost events", format!("{reasons:?}"));
    figure(test, "connections opened", server.log().connections.len());
    v.check(server.log().framing_errors.is_empty(), "the phone's own stream stayed well framed");
    place_call(&mut v, &mut phone, 1, &mut calls);
    v.common(&mut phone, &calls);
    v.finish();
}
