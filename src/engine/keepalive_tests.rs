//! Scenario tests of keep-alive that mutation testing found unchecked
//! (docs/mutation-testing.md, shard 4): a lost flow leaves no ping timer behind to wake the
//! phone for; pings are drawn in `[0.8·I, I]`, not all at `I`; an answer on the flow to
//! another branch is not the keep-alive OPTIONS' answer; a `Flow-Timer` of 0, or one
//! longer than the interval, leaves the ping schedule alone however often the registrar
//! repeats it; and a `Flow-Timer` equal to the interval shortens nothing.

use crate::config::Config;
use crate::engine::keepalive::KeepAlive;
use crate::engine::{Event, FlowError, FlowState, FlowTimer, Timer, TimerKey};
use crate::ids::Server;
use crate::sim::{ServerMode, Sim};
use crate::sip::Message;
use crate::time::{Duration, Instant};

use super::super::tests_support::{assert_clean, cfg, secs, started};

/// The configured keep-alive interval of [`cfg`].
const INTERVAL: Duration = Duration::from_secs(10);

/// A ping goes out at most this long after the interval: the pong's round trip (two
/// one-way delays of 10 ms) plus slack.
const ROUND_TRIP: Duration = Duration::from_millis(100);

#[test]
fn a_lost_flow_leaves_no_ping_timer_to_wake_the_phone_for() {
    let mut sim = started(cfg(1));
    sim.run_for(secs(1));
    assert_eq!(sim.core.flow_state(), FlowState::Up { server: Server::Primary });
    assert!(sim.core.decision_view().timers.iter().any(|(k, _)| *k == TimerKey::Ping), "the next ping is armed");
    // Both servers refuse: the flow is lost and the phone backs off, with no connection up.
    sim.set_mode(Server::Backup, ServerMode::Refusing);
    sim.set_mode(Server::Primary, ServerMode::Refusing);
    let mut checked = 0;
    for _ in 0..300 {
        sim.run_for(Duration::from_millis(100));
        if matches!(sim.core.flow_state(), FlowState::Up { .. }) {
            continue;
        }
        checked += 1;
        let now = sim.now;
        let reason = sim.core.timeout_reason();
        assert!(
            !matches!(reason, Some((Timer::Flow(FlowTimer::Ping), _))),
            "{now}: the phone asks to be woken for a ping without a flow: {reason:?}"
        );
        let timers = sim.core.decision_view().timers;
        assert!(
            !timers.iter().any(|(k, _)| *k == TimerKey::Ping),
            "{now}: ping timer armed without a flow: {timers:?}"
        );
    }
    assert!(checked >= 290, "the flow was down for the 30 s: {checked} checks");
    assert!(sim.count_events(|e| matches!(e, Event::Backoff { .. })) > 0, "the phone backed off");
    // The servers come back: the new flow gets its pings again.
    sim.set_mode(Server::Primary, ServerMode::Up);
    sim.set_mode(Server::Backup, ServerMode::Up);
    let back = sim.now;
    sim.run_for(secs(120));
    let up = sim.first_event_after(back, |e| matches!(e, Event::FlowUp { .. })).expect("a flow again");
    let pings: Vec<Instant> = sim.ping_times().into_iter().filter(|t| *t > up).collect();
    assert!(pings.first().is_some_and(|t| *t <= up + INTERVAL + ROUND_TRIP), "pings resume: {pings:?}");
    assert_clean(&sim);
}

#[test]
fn keepalive_pings_are_drawn_between_0_8_and_1_times_the_interval() {
    // RFC 5626 §4.4.1: a random draw in [0.8·I, I], so that phones do not synchronise.
    let mut sim = started(cfg(1));
    sim.run_for(secs(220));
    let pings = sim.ping_times();
    assert!(pings.len() >= 20, "{} pings in 220 s", pings.len());
    let gaps: Vec<u64> = pings.windows(2).map(|w| w[1].saturating_since(w[0]).as_millis()).collect();
    let low = INTERVAL.as_millis() * 4 / 5;
    let high = (INTERVAL + ROUND_TRIP).as_millis();
    assert!(gaps.iter().all(|g| (low..=high).contains(g)), "gaps within [0.8·I, I + RTT]: {gaps:?}");
    let spread = gaps.iter().max().unwrap() - gaps.iter().min().unwrap();
    assert!(spread >= INTERVAL.as_millis() / 10, "pings are drawn, not all one interval apart: {gaps:?}");
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0);
    assert_clean(&sim);
}

#[test]
fn an_answer_on_the_flow_to_another_branch_is_not_the_keepalive_options_answer() {
    let mut sim = Sim::new(cfg(1));
    // A server that answers OPTIONS but never pings: keep-alive goes by OPTIONS.
    sim.server(Server::Primary).behaviour.answer_pings = false;
    sim.start();
    while sim.count_events(|e| *e == Event::PongsUnsupported { server: Server::Primary }) == 0 {
        sim.run_for(Duration::from_millis(100));
        assert!(sim.now < Instant::ZERO + secs(30), "the primary never showed it does not pong");
    }
    // From now on it answers nothing, on a connection that stays open.
    sim.set_mode(Server::Primary, ServerMode::Silent);
    let options_before = sim.sent_requests("OPTIONS").len();
    while sim.sent_requests("OPTIONS").len() == options_before {
        sim.run_for(Duration::from_millis(100));
        assert!(sim.now < Instant::ZERO + secs(60), "no keep-alive OPTIONS");
    }
    let (sent, conn, options) = sim.sent_requests("OPTIONS").pop().unwrap();
    assert_eq!(conn.server, Server::Primary, "the keep-alive OPTIONS goes on the flow");
    // A 200 to another transaction (another branch) arrives on the flow while the
    // keep-alive OPTIONS waits for its answer.
    let mut stray = Message::response(200, "OK");
    stray.push_header("Via", "SIP/2.0/TLS 127.0.0.1:40001;branch=z9hG4bKnot-the-keepalive");
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = options.header(name) {
            stray.push_header(name, v.to_owned());
        }
    }
    sim.inject(conn, stray.to_bytes());
    sim.run_for(secs(6));
    let timeout = sim.core.config().transaction_timeout;
    let lost = sim.first_event_after(sent, |e| {
        *e == Event::FlowLost { server: Server::Primary, reason: FlowError::TransactionTimeout }
    });
    assert_eq!(
        lost,
        Some(sent + timeout),
        "the unanswered keep-alive OPTIONS times out; the stray 200 is not its answer"
    );
    assert!(sim.first_event_after(sent, |e| *e == Event::FlowUp { server: Server::Backup }).is_some());
    assert_clean(&sim);
}

/// A phone whose registrar grants 6 s (a refresh every 3 s, as often as the pacing floor
/// lets it) and sends `Flow-Timer: flow_timer` in every 2xx: the times of the pings over
/// two minutes, with the flow's coming up first.
fn keepalive_under_frequent_refreshes(flow_timer: u32) -> (Sim, Vec<Instant>) {
    let mut sim = Sim::new(cfg(1));
    sim.server(Server::Primary).behaviour.grant_expires = Some(6);
    sim.server(Server::Primary).behaviour.flow_timer = Some(flow_timer);
    sim.start();
    sim.run_for(secs(120));
    let up = sim.first_event_after(Instant::ZERO, |e| *e == Event::FlowUp { server: Server::Primary }).unwrap();
    let registers = sim.sent_requests("REGISTER").len();
    assert!(registers >= 10, "the registrar's answers come often: {registers} REGISTERs");
    assert_eq!(sim.count_events(|e| matches!(e, Event::FlowLost { .. })), 0);
    let mut times = vec![up];
    times.extend(sim.ping_times());
    (sim, times)
}

/// Every keep-alive went out within `[0.8·I, I]` of the one before (or of the flow's
/// coming up), give or take a pong's round trip.
fn assert_every_ping_within_the_interval(times: &[Instant]) {
    assert!(times.len() >= 13, "{} pings in 120 s", times.len() - 1);
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1].saturating_since(w[0]).as_millis()).collect();
    let low = INTERVAL.as_millis() * 4 / 5;
    let high = (INTERVAL + ROUND_TRIP).as_millis();
    assert!(gaps.iter().all(|g| (low..=high).contains(g)), "ping gaps (ms) outside [0.8·I, I + RTT]: {gaps:?}");
}

#[test]
fn a_flow_timer_of_zero_leaves_the_ping_schedule_alone() {
    // `Flow-Timer: 0` means no cap: the pings keep the configured 10 s, and the frequent
    // 2xx that carry it draw no ping again.
    let (sim, times) = keepalive_under_frequent_refreshes(0);
    assert_every_ping_within_the_interval(&times);
    assert!(!sim.core.decision_view().flow.flow_timer, "a Flow-Timer of 0 is no Flow-Timer");
    assert_clean(&sim);
}

#[test]
fn a_flow_timer_longer_than_the_interval_does_not_push_pings_back() {
    // A scheduled ping within the Flow-Timer comes in time: a registrar that repeats its
    // 60 s Flow-Timer every few seconds must not push the 10 s pings away for ever.
    let (sim, times) = keepalive_under_frequent_refreshes(60);
    assert_every_ping_within_the_interval(&times);
    assert!(sim.core.decision_view().flow.flow_timer, "the Flow-Timer was taken");
    assert_clean(&sim);
}

#[test]
fn a_flow_timer_equal_to_the_interval_shortens_nothing() {
    let config = Config { keepalive_interval: INTERVAL, ..Config::default() };
    let mut k = KeepAlive::default();
    assert!(!k.flow_timer_received(INTERVAL, &config), "a Flow-Timer equal to the interval shortens nothing");
    assert_eq!(k.interval(&config), INTERVAL);
    assert!(k.flow_timer_received(Duration::from_millis(9_999), &config), "one a millisecond shorter does");
    assert!(!k.flow_timer_received(Duration::from_millis(9_999), &config), "and the same one again does not");
}
