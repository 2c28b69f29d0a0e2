//! Hostile registrars (issue 10, items c and d): a server whose answers to REGISTER would
//! make a naive phone storm it. Whatever the server answers, one account never sends more
//! than six REGISTER requests in any sliding minute (challenges, 423 retries and refreshes
//! included), a `Retry-After` is honoured up to one hour, and the phone registers again
//! once the server answers well. The phone runs in a child process whose resident memory
//! is sampled; the tests print what they measured.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod hostile;

use hostile::*;
use std::time::{Duration, Instant};

#[test]
fn child_phone() {
    child_main();
}

/// At most this many REGISTER requests per account in any sliding minute.
const PER_MINUTE: usize = 6;
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Registers against a server answering `bad` for `bad_for`, then answering 200 for an
/// hour; checks the REGISTER rate, the retry waits, the recovery and the common checks.
fn storm(test: &'static str, bad: RegisterMode, bad_for: Duration) {
    let _w = watchdog(test, Duration::from_secs(170));
    let mut v = Verdict::new(test);
    let lab = lab();
    let server = HostileServer::start(
        &lab,
        Script { register: bad.clone(), action: Action::Nothing, start: Start::AfterRegistered },
    );
    let t0 = Instant::now();
    let mut phone = ChildPhone::spawn(server.addr, lab.dir.path(), 30);
    let up = phone.wait(Duration::from_secs(10), |e| e.starts_with("FlowUp"));
    v.check(up.is_some(), "the connection comes up");
    phone.pump(Duration::from_millis(500));
    phone.mark_baseline();
    let mut calls = Vec::new();
    place_call(&mut v, &mut phone, 0, &mut calls);
    phone.pump_until(t0 + bad_for);
    let bad_counts: Vec<usize> = USERS.iter().map(|(u, _)| server.log().registers_of(u).len()).collect();
    figure(test, "server answer", format!("{bad:?}"));
    figure(test, "REGISTERs per account while the server misbehaved", format!("{bad_counts:?} in {bad_for:?}"));

    server.set_register(RegisterMode::Ok { expires: 3600 });
    let switched = Instant::now();
    let back = phone.wait_all_registered(switched, "expires: 3600", Duration::from_secs(75));
    match back {
        Some(at) => figure(test, "registered again after the server answered well", format!("{:?}", at - switched)),
        None => println!("hostile/{test}: last events:\n{}", phone.history(20)),
    }
    v.check(back.is_some(), "every account registers again once the server answers well (within 75 s)");
    phone.pump(Duration::from_secs(1));
    rate_checks(&mut v, &server, &phone, t0);
    v.common(&mut phone, &calls);
    v.finish();
}

/// The REGISTER rate per account and the retry waits the phone announced.
fn rate_checks(v: &mut Verdict, server: &HostileServer, phone: &ChildPhone, t0: Instant) {
    let log = server.log();
    for (user, _) in USERS {
        let times = log.registers_of(user);
        let worst = max_in_window(&times, MINUTE);
        figure(
            v.test,
            &format!("REGISTERs of {user}"),
            format!("{} in {:?}, at most {worst} in a minute", times.len(), t0.elapsed()),
        );
        v.check(worst <= PER_MINUTE, format!("{user}: at most {PER_MINUTE} REGISTERs in any minute (saw {worst})"));
    }
    let waits = phone.retry_ins(t0);
    let longest = waits.iter().flatten().max().copied();
    let shortest = waits.iter().flatten().min().copied();
    figure(
        v.test,
        "retry waits announced",
        format!("{} failures, shortest {shortest:?}, longest {longest:?}", waits.len()),
    );
    v.check(longest.is_none_or(|w| w <= HOUR), format!("no retry wait beyond an hour (longest {longest:?})"));
}

#[test]
fn c1_register_answered_200_with_expires_0() {
    storm("c1_expires_0", RegisterMode::Ok { expires: 0 }, Duration::from_secs(20));
}

#[test]
fn c2_register_answered_200_with_expires_1() {
    storm("c2_expires_1", RegisterMode::Ok { expires: 1 }, Duration::from_secs(20));
}

#[test]
fn d1_register_answered_503_retry_after_0() {
    storm("d1_503_retry_after_0", RegisterMode::Unavailable { retry_after: 0 }, Duration::from_secs(20));
}

#[test]
fn d3_register_answered_with_fresh_401_challenges_forever() {
    storm("d3_401_fresh_nonce", RegisterMode::Challenge, Duration::from_secs(35));
}

#[test]
fn d4_register_answered_423_with_ever_higher_min_expires() {
    storm("d4_423_min_expires", RegisterMode::MinExpires, Duration::from_secs(35));
}

/// 503 with a Retry-After of a day: the phone waits at most an hour (and at least most
/// of it), sends nothing more meanwhile, and registers on a new connection at once.
#[test]
fn d2_register_answered_503_with_huge_retry_after() {
    let test = "d2_503_retry_after_86400";
    let _w = watchdog(test, Duration::from_secs(120));
    let mut v = Verdict::new(test);
    let lab = lab();
    let server = HostileServer::start(
        &lab,
        Script {
            register: RegisterMode::Unavailable { retry_after: 86400 },
            action: Action::Nothing,
            start: Start::AfterRegistered,
        },
    );
    let t0 = Instant::now();
    let mut phone = ChildPhone::spawn(server.addr, lab.dir.path(), 30);
    v.check(phone.wait(Duration::from_secs(10), |e| e.starts_with("FlowUp")).is_some(), "the connection comes up");
    phone.pump(Duration::from_millis(500));
    phone.mark_baseline();
    let mut calls = Vec::new();
    place_call(&mut v, &mut phone, 0, &mut calls);
    phone.pump(Duration::from_secs(15));
    let waits = phone.retry_ins(t0);
    figure(test, "retry waits announced", format!("{waits:?}"));
    v.check(!waits.is_empty(), "the phone reports the failed registration");
    v.check(
        waits.iter().all(|w| w.is_some_and(|w| w <= HOUR && w >= HOUR / 2)),
        "Retry-After: 86400 is honoured up to one hour (a wait within 30–60 min)",
    );
    rate_checks(&mut v, &server, &phone, t0);
    // A server that answers well again, on a new connection: registered at once.
    server.set_register(RegisterMode::Ok { expires: 3600 });
    server.close_all();
    let switched = Instant::now();
    let back = phone.wait_all_registered(switched, "expires: 3600", Duration::from_secs(30));
    if let Some(at) = back {
        figure(test, "registered on a new connection after", format!("{:?}", at - switched));
    }
    v.check(back.is_some(), "every account registers on the next connection to a server that answers well");
    rate_checks(&mut v, &server, &phone, t0);
    v.common(&mut phone, &calls);
    v.finish();
}
