//! Recovery on real TLS sockets: failover when the primary closes or goes silent,
//! failback only once the primary is stable, and retries when both are down.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod runtime_support;

use runtime_support::{Lab, watchdog};
use sip_ptls::ids::Server;
use sip_ptls::{Event, FlowError};
use std::time::{Duration, Instant};

#[test]
fn primary_closed_moves_both_lines_to_the_backup_within_the_bound() {
    let _w = watchdog("failover", Duration::from_secs(60));
    let lab = Lab::new();
    let (primary, backup) = (lab.registrar(), lab.registrar());
    let mut phone = lab.phone(lab.config(&primary, Some(&backup)));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    let killed = Instant::now();
    primary.kill();
    let done = phone.all_registered(Server::Backup, Duration::from_secs(10));
    let took = done.duration_since(killed);
    // A closed connection is noticed at once; the bound is the connect timeout (2 s).
    assert!(took < Duration::from_secs(2), "both lines on the backup after {took:?}");
    assert_eq!(phone.count(killed, |e| *e == Event::FailedOver), 1, "{}", phone.history());
    assert!(phone.all_registered_on(Server::Backup));
    assert_eq!(backup.stats().accepted, 1, "one connection to the backup for both lines");
    assert_eq!(backup.bindings().len(), 2);
}

#[test]
fn a_silent_primary_is_detected_by_the_pong_deadline() {
    let _w = watchdog("frozen primary", Duration::from_secs(60));
    let lab = Lab::new();
    let (primary, backup) = (lab.registrar(), lab.registrar());
    let mut phone = lab.phone(lab.config(&primary, Some(&backup)));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    // Once the primary has answered a ping, a missing pong is proof enough (before, the
    // core would first ask with OPTIONS whether the server just does not do pongs).
    let deadline = Instant::now() + Duration::from_secs(5);
    while primary.stats().pongs == 0 && Instant::now() < deadline {
        phone.idle(Duration::from_millis(100));
    }
    phone.idle(Duration::from_millis(50));
    let frozen = Instant::now();
    primary.freeze();
    let (at, lost) = phone.wait("the flow lost", Duration::from_secs(10), |e| {
        matches!(e, Event::FlowLost { server: Server::Primary, .. })
    });
    let took = at.duration_since(frozen);
    assert_eq!(lost, Event::FlowLost { server: Server::Primary, reason: FlowError::PongTimeout });
    // Bound: keep-alive interval (1 s) + pong timeout (1 s), plus scheduling slack.
    assert!(took <= Duration::from_millis(3000), "detected after {took:?}");
    phone.all_registered(Server::Backup, Duration::from_secs(10));
    primary.thaw();
}

#[test]
fn failback_happens_only_after_the_primary_is_stable() {
    let _w = watchdog("failback", Duration::from_secs(60));
    let lab = Lab::new();
    let (primary, backup) = (lab.registrar(), lab.registrar());
    let mut phone = lab.phone(lab.config(&primary, Some(&backup)));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    primary.kill();
    phone.all_registered(Server::Backup, Duration::from_secs(10));

    // The primary comes back briefly (fewer good probes than needed), then dies again.
    primary.restore().expect("restore");
    phone.idle(Duration::from_millis(700));
    primary.kill();
    let flapped = Instant::now();
    phone.idle(Duration::from_secs(2));
    assert_eq!(phone.count(flapped, |e| matches!(e, Event::FailingBack | Event::FailedBack)), 0, "{}", phone.history());
    assert!(phone.all_registered_on(Server::Backup));

    // Back for good: 3 good probes 500 ms apart, then failback.
    let restored = Instant::now();
    primary.restore().expect("restore");
    let (at, _) = phone.wait("failback", Duration::from_secs(10), |e| *e == Event::FailedBack);
    let waited = at.duration_since(restored);
    assert!(waited >= Duration::from_millis(1000), "failed back after only {waited:?}");
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    assert!(backup.bindings().is_empty(), "de-registered on the backup before leaving it");
}

#[test]
fn with_both_servers_down_the_phone_backs_off_and_recovers_when_one_returns() {
    let _w = watchdog("both down", Duration::from_secs(60));
    let lab = Lab::new();
    let (primary, backup) = (lab.registrar(), lab.registrar());
    let mut phone = lab.phone(lab.config(&primary, Some(&backup)));
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    backup.kill();
    primary.kill();
    let down = Instant::now();
    phone.wait(
        "a second back-off round",
        Duration::from_secs(10),
        |e| matches!(e, Event::Backoff { failures, .. } if *failures >= 2),
    );
    let refused = phone.count(down, |e| matches!(e, Event::ConnectFailed { .. }));
    assert!(refused >= 3, "both servers tried in each round: {}", phone.history());
    let waits: Vec<u64> = phone
        .seen
        .iter()
        .filter_map(|(t, e)| match e.event {
            Event::Backoff { wait, .. } if *t >= down => Some(wait.as_millis()),
            _ => None,
        })
        .collect();
    assert!(waits.iter().all(|w| *w <= 1000), "waits within the 1 s cap: {waits:?}");
    backup.restore().expect("restore the backup");
    phone.all_registered(Server::Backup, Duration::from_secs(10));
}
