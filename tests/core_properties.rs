//! Property tests of the core: random sequences of faults, time steps, calls and server
//! behaviours, run against the simulated servers, with every safety invariant of the
//! `Monitor` checked after every step, and recovery and call outcomes checked at the end.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use sip_ptls::config::{AccountConfig, CertificateFiles, Config, Failback, ServerAddr, TransportMode};
use sip_ptls::ids::{AccountId, Server};
use sip_ptls::sim::{ServerMode, Sim};
use sip_ptls::time::Duration;
use sip_ptls::{Event, RegState};

/// The world a sequence starts from.
#[derive(Clone, Debug)]
struct Setup {
    accounts: usize,
    backup: bool,
    persistent: bool,
    sips: bool,
    outbound: bool,
    chunk: usize,
    seed: u64,
}

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Mode(Server, ServerMode),
    PeerClose(Server),
    Pongs(Server, bool),
    RegisterStatus(Server, Option<u16>),
    InviteStatus(Server, Option<u16>),
    /// The lifetime the registrar grants whatever was asked (1 s makes refreshes that
    /// only the pacing floor holds back).
    GrantExpires(Server, Option<u32>),
    /// The Flow-Timer the registrar puts in its REGISTER 2xx.
    FlowTimer(Server, Option<u32>),
    /// A `Retry-After` on the registrar's forced REGISTER answers (a 503, a 500).
    RetryAfter(Server, Option<u32>),
    /// The registrar challenges every REGISTER with a fresh nonce (credentials refused).
    AlwaysChallenge(Server, bool),
    /// The runtime reports bytes the server has not taken on its connection.
    Backlog(Server, usize),
    PlaceCall(u8),
    HangUp(u8),
    Answer(u8),
    IncomingInvite(u8),
    Garbage,
    /// Arbitrary bytes from the server: the core must neither panic nor lose track.
    Bytes(Vec<u8>),
    /// The application gives the running phone a new keep-alive interval, in seconds
    /// (`Core::reconfigure`).
    KeepaliveInterval(u64),
}

struct Reference;

fn server() -> impl Strategy<Value = Server> {
    prop_oneof![Just(Server::Primary), Just(Server::Backup)]
}

impl ReferenceStateMachine for Reference {
    type State = Setup;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Setup> {
        (
            1usize..=3,
            any::<bool>(),
            prop::bool::weighted(0.85),
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(0usize), 1usize..40],
            any::<u64>(),
        )
            .prop_map(|(accounts, backup, persistent, sips, outbound, chunk, seed)| Setup {
                accounts,
                backup,
                persistent,
                sips,
                outbound,
                chunk,
                seed,
            })
            .boxed()
    }

    fn transitions(_: &Setup) -> BoxedStrategy<Op> {
        let mode = prop_oneof![
            3 => Just(ServerMode::Up),
            2 => Just(ServerMode::Refusing),
            1 => Just(ServerMode::Silent),
            1 => Just(ServerMode::Frozen),
        ];
        prop_oneof![
            6 => (10u64..5_000).prop_map(Op::Advance),
            3 => (5_000u64..200_000).prop_map(Op::Advance),
            4 => (server(), mode).prop_map(|(s, m)| Op::Mode(s, m)),
            1 => server().prop_map(Op::PeerClose),
            1 => (server(), any::<bool>()).prop_map(|(s, b)| Op::Pongs(s, b)),
            1 => (server(), prop_oneof![3 => Just(None), 1 => Just(Some(403)), 1 => Just(Some(503)), 1 => Just(Some(500)), 1 => Just(Some(423))])
                .prop_map(|(s, st)| Op::RegisterStatus(s, st)),
            1 => (server(), prop_oneof![Just(Some(200)), Just(Some(486)), Just(None)]).prop_map(|(s, st)| Op::InviteStatus(s, st)),
            1 => (server(), prop_oneof![2 => Just(None), 1 => Just(Some(1)), 1 => Just(Some(40))])
                .prop_map(|(s, e)| Op::GrantExpires(s, e)),
            1 => (server(), prop_oneof![Just(None), Just(Some(5)), Just(Some(12)), Just(Some(60))])
                .prop_map(|(s, f)| Op::FlowTimer(s, f)),
            1 => (server(), prop_oneof![Just(None), Just(Some(0)), Just(Some(90))]).prop_map(|(s, r)| Op::RetryAfter(s, r)),
            1 => (server(), any::<bool>()).prop_map(|(s, on)| Op::AlwaysChallenge(s, on)),
            1 => (server(), prop_oneof![Just(0usize), Just(500), Just(4_000), Just(300_000)])
                .prop_map(|(s, b)| Op::Backlog(s, b)),
            3 => (0u8..3).prop_map(Op::PlaceCall),
            2 => (0u8..4).prop_map(Op::HangUp),
            1 => (0u8..4).prop_map(Op::Answer),
            1 => (0u8..3).prop_map(Op::IncomingInvite),
            1 => Just(Op::Garbage),
            1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Op::Bytes),
            1 => prop_oneof![Just(2u64), Just(15), Just(40)].prop_map(Op::KeepaliveInterval),
        ]
        .boxed()
    }

    fn apply(state: Setup, _: &Op) -> Setup {
        state
    }
}

fn config(s: &Setup) -> Config {
    Config {
        mode: if s.persistent { TransportMode::PersistentTls } else { TransportMode::PerCallTls },
        proxy: Some(ServerAddr::new("primary.test", 5061)),
        backup_proxy: s.backup.then(|| ServerAddr::new("backup.test", 5061)),
        accounts: (0..s.accounts).map(|i| AccountConfig::new(&format!("10{i}"), "pw")).collect(),
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        keepalive_interval: Duration::from_secs(15),
        pong_timeout: Duration::from_secs(3),
        sips_scheme: s.sips,
        outbound: s.outbound,
        failback: Failback { probe_interval: Duration::from_secs(10), stable_probes: 2 },
        registration_retry: 30,
        registration_timeout_retry: 30,
        // Small enough that random sequences reach them: the queue of calls waiting for a
        // connection, the incoming calls ringing, an established call without connection.
        call_queue_limit: 2,
        max_ringing_calls: 2,
        orphaned_call_timeout: Duration::from_secs(30),
        seed: s.seed.into(),
        ..Config::default()
    }
}

struct CoreUnderTest;

/// Cases run, reported at the end so the note can quote a real figure.
static CASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static STEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn live_calls(sim: &Sim) -> Vec<sip_ptls::ids::CallId> {
    let mut placed: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .collect();
    placed.extend(sim.sent_requests("INVITE").iter().filter_map(|_| None::<sip_ptls::ids::CallId>));
    placed
}

/// The persistent connection that was up on a server when that server went quiet, and
/// when: it must be left within [`silence_bound`], whichever server it is on and whatever
/// came before (start, failover, failback, recovery after back-off).
type Silenced = Option<(sip_ptls::ids::ConnId, sip_ptls::time::Instant)>;

/// How long a flow may stay on a server that answers nothing: the next keep-alive (at
/// most one interval away), its pong deadline, then one OPTIONS transaction if the
/// server never ponged; one second of slack for delivery. From the configuration, not
/// from the core's keep-alive code.
fn silence_bound(c: &Config) -> Duration {
    c.keepalive_interval + c.pong_timeout + c.transaction_timeout + Duration::from_secs(1)
}

fn up_flow_on(sim: &Sim, server: Server) -> Option<sip_ptls::ids::ConnId> {
    sim.core
        .connections()
        .find(|(id, p, up)| *p == sip_ptls::ConnPurpose::Flow && *up && id.server == server)
        .map(|(id, _, _)| id)
}

impl StateMachineTest for CoreUnderTest {
    type SystemUnderTest = (Sim, Vec<sip_ptls::ids::CallId>, Silenced);
    type Reference = Reference;

    fn init_test(s: &Setup) -> Self::SystemUnderTest {
        CASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut sim = Sim::new(config(s));
        sim.chunk = s.chunk;
        #[cfg(feature = "planted-bugs")]
        sim.core.plant(planted::current());
        sim.start();
        (sim, Vec::new(), None)
    }

    fn apply((mut sim, mut calls, mut silenced): Self::SystemUnderTest, s: &Setup, op: Op) -> Self::SystemUnderTest {
        STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match op {
            Op::Advance(ms) => {
                sim.run_for(Duration::from_millis(ms));
            }
            Op::Mode(server, mode) => {
                sim.set_mode(server, mode);
                match mode {
                    ServerMode::Silent | ServerMode::Frozen if silenced.is_none() => {
                        silenced = up_flow_on(&sim, server).map(|conn| (conn, sim.now));
                    }
                    ServerMode::Up | ServerMode::Refusing if silenced.is_some_and(|(c, _)| c.server == server) => {
                        silenced = None;
                    }
                    _ => {}
                }
            }
            Op::PeerClose(server) => sim.drop_connections(server, sip_ptls::TransportError::PeerClosed),
            Op::Pongs(server, on) => sim.server(server).behaviour.answer_pings = on,
            Op::RegisterStatus(server, st) => {
                let b = &mut sim.server(server).behaviour;
                b.register_status = st;
                // A 423 asks for a longer interval: Min-Expires says which.
                b.register_headers.retain(|(name, _)| name != "Min-Expires");
                if st == Some(423) {
                    b.register_headers.push(("Min-Expires".to_owned(), "120".to_owned()));
                }
            }
            Op::AlwaysChallenge(server, on) => sim.server(server).behaviour.always_challenge = on,
            Op::Backlog(server, bytes) => {
                let up = sim
                    .open_connections()
                    .into_iter()
                    .find(|c| c.server == server && sim.net_state(*c) == Some(sip_ptls::sim::NetState::Up));
                if let Some(conn) = up {
                    sim.report_backlog(conn, bytes);
                }
            }
            Op::InviteStatus(server, st) => sim.server(server).behaviour.invite_status = st,
            Op::GrantExpires(server, e) => sim.server(server).behaviour.grant_expires = e,
            Op::FlowTimer(server, f) => sim.server(server).behaviour.flow_timer = f,
            Op::RetryAfter(server, r) => {
                let headers = &mut sim.server(server).behaviour.register_headers;
                headers.retain(|(name, _)| name != "Retry-After");
                headers.extend(r.map(|r| ("Retry-After".to_owned(), r.to_string())));
            }
            Op::PlaceCall(a) => {
                let account = AccountId(a % s.accounts as u8);
                if let Some(id) = sim.place_call(account, "2000") {
                    calls.push(id);
                }
            }
            Op::HangUp(i) => {
                let all: Vec<_> = calls.iter().copied().chain(live_calls(&sim)).collect();
                if let Some(id) = all.get(usize::from(i) % all.len().max(1)) {
                    sim.hang_up(*id);
                }
            }
            Op::Answer(i) => {
                let incoming = live_calls(&sim);
                if let Some(id) = incoming.get(usize::from(i) % incoming.len().max(1)) {
                    let _ = sim.core.answer(sim.now, *id, b"v=0\r\n".to_vec());
                    sim.drain();
                }
            }
            Op::IncomingInvite(a) => {
                if let Some(conn) =
                    sim.open_connections().into_iter().find(|c| sim.net_state(*c) == Some(sip_ptls::sim::NetState::Up))
                {
                    let user = format!("10{}", a % s.accounts as u8);
                    let n = sim.now.as_millis();
                    let invite = format!(
                        "INVITE sips:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS p.test;branch=z9hG4bKi{n}\r\nFrom: <sips:3000@p.test>;tag=f{n}\r\nTo: <sips:{user}@p.test>\r\nCall-ID: in-{n}\r\nCSeq: 1 INVITE\r\nContact: <sips:3000@p.test>\r\nContent-Length: 0\r\n\r\n"
                    );
                    sim.inject(conn, invite.into_bytes());
                }
            }
            Op::Garbage => {
                if let Some(conn) = sim.open_connections().first().copied() {
                    sim.inject(conn, b"NOT SIP AT ALL\r\n\r\n".to_vec());
                }
            }
            Op::Bytes(bytes) => {
                if let Some(conn) = sim.open_connections().first().copied() {
                    sim.inject(conn, bytes);
                }
            }
            Op::KeepaliveInterval(secs) => {
                let mut changed = sim.core.config().clone();
                changed.keepalive_interval = Duration::from_secs(secs);
                assert_eq!(sim.reconfigure(changed), Ok(()), "a timer is taken at once");
                // The silence bound follows the new interval from the change on.
                if let Some((conn, _)) = silenced {
                    silenced = Some((conn, sim.now));
                }
            }
        }
        if silenced.is_some_and(|(conn, _)| !sim.core.connections().any(|(id, _, _)| id == conn)) {
            silenced = None;
        }
        (sim, calls, silenced)
    }

    fn check_invariants((sim, _, silenced): &Self::SystemUnderTest, _: &Setup) {
        assert!(sim.monitor.violations().is_empty(), "{:#?}", sim.monitor.violations());
        if let Some((conn, since)) = silenced {
            let quiet = sim.now.saturating_since(*since);
            let bound = silence_bound(sim.core.config());
            assert!(
                quiet <= bound || !sim.core.connections().any(|(id, _, _)| id == *conn),
                "{conn} still carries the flow {quiet} after its server went quiet (bound {bound})"
            );
        }
    }

    fn teardown((mut sim, _, _): Self::SystemUnderTest, s: Setup) {
        // Heal the world: after the last fault every account must come back within the
        // back-off cap plus a registration, and every call must have its outcome.
        for server in [Server::Primary, Server::Backup] {
            sim.set_mode(server, ServerMode::Up);
            let b = &mut sim.server(server).behaviour;
            b.answer_pings = true;
            b.register_status = None;
            b.invite_status = Some(200);
            b.grant_expires = None;
            b.flow_timer = None;
            b.register_headers.clear();
            b.always_challenge = false;
        }
        sim.run_for(Duration::from_secs(200));
        for i in 0..s.accounts {
            let st = sim.core.registration(AccountId(i as u8));
            assert!(
                matches!(st, Some(RegState::Registered { .. }) | Some(RegState::Rejected)),
                "account {i} is {st:?} 200 s after the last fault"
            );
        }
        assert_eq!(sim.core.queued_calls(), 0, "queued calls are delivered or failed by now");
        if !s.persistent {
            // TLS mode: a registration exchange's connection ends with the exchange. One
            // may be in progress now; against healed servers it cannot last two seconds.
            let exchange_conns = |sim: &Sim| -> Vec<_> {
                sim.core
                    .connections()
                    .filter(|(_, p, _)| matches!(p, sip_ptls::ConnPurpose::Register(_)))
                    .map(|(id, _, _)| id)
                    .collect()
            };
            let before = exchange_conns(&sim);
            sim.run_for(Duration::from_secs(2));
            let left: Vec<_> = exchange_conns(&sim).into_iter().filter(|c| before.contains(c)).collect();
            assert!(left.is_empty(), "registration connections left open after their exchange: {left:?}");
        }
        if s.persistent && s.backup {
            // A primary that goes silent is noticed and left within keep-alive interval +
            // pong timeout + one OPTIONS transaction (if it never ponged) + reconnect.
            sim.set_mode(Server::Primary, ServerMode::Silent);
            let c = sim.core.config().clone();
            // An account that sent five REGISTERs in the last minute (a registrar granting
            // 1 s) may have its challenge answer on the backup held by the pacing floor,
            // which counts per account whatever the server: up to one window more.
            let minute_ago = sim.now.saturating_since(sip_ptls::time::Instant::ZERO).as_millis().saturating_sub(60_000);
            let recent = sim.sent_requests("REGISTER").iter().filter(|(t, _, _)| t.as_millis() >= minute_ago).count();
            let paced = if recent >= 5 { Duration::from_secs(61) } else { Duration::ZERO };
            sim.run_for(c.keepalive_interval + c.pong_timeout + c.transaction_timeout + Duration::from_secs(1) + paced);
            for i in 0..s.accounts {
                let st = sim.core.registration(AccountId(i as u8));
                assert!(
                    matches!(st, Some(RegState::Registered { server: Server::Backup }) | Some(RegState::Rejected)),
                    "account {i} is {st:?} after the primary went silent"
                );
            }
        }
        if s.seed % 2 == 1 {
            // Half the sequences shut down against servers that answer nothing: the
            // de-REGISTERs get no answer and shutdown must still end, on its own bound.
            sim.set_mode(Server::Primary, ServerMode::Frozen);
            sim.set_mode(Server::Backup, ServerMode::Frozen);
        }
        // Shutdown is bounded by the transaction timer (docs/architecture.md); one
        // second of slack for delivery.
        let bound = sim.core.config().transaction_timeout + Duration::from_secs(1);
        sim.shutdown(bound);
        assert!(sim.core.is_closed(), "shutdown finishes within {bound}");
        sim.monitor.check_every_call_finished();
        assert!(sim.monitor.violations().is_empty(), "{:#?}", sim.monitor.violations());
        assert!(sim.open_connections().is_empty(), "every connection closed");
    }
}

/// Cases per run: `PROPTEST_CASES` when set, else 1024.
fn proptest_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    // With a bug planted the property must fail: those failures are expected, so they are
    // neither shrunk at length nor written to the regression file of the real core.
    #[cfg(feature = "planted-bugs")]
    let (max_shrink_iters, failure_persistence) = (50, None);
    // With a bug planted, the same sequences every run: whether a property catches the bug
    // must not depend on the luck of a random seed (a bug that only a rare sequence shows,
    // such as IgnoreRetryAfter, was missed once in a CI run). A change to the generators
    // that loses a bug then fails every run, and says which.
    #[cfg(feature = "planted-bugs")]
    let rng_seed = proptest::test_runner::RngSeed::Fixed(PLANTED_SEED);
    #[cfg(not(feature = "planted-bugs"))]
    let rng_seed = ProptestConfig::default().rng_seed;
    #[cfg(not(feature = "planted-bugs"))]
    let (max_shrink_iters, failure_persistence) = (
        ProptestConfig::default().max_shrink_iters,
        Some(
            Box::new(proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/core_properties.txt"))
                as Box<dyn proptest::test_runner::FailurePersistence>,
        ),
    );
    ProptestConfig { cases, max_shrink_iters, failure_persistence, rng_seed, ..ProptestConfig::default() }
}

/// The seed of the planted-bug runs (any seed whose sequences catch every planted bug
/// that is not left to the model checker; `PROPTEST_CASES` changes the sequences too).
/// Chosen again when `Op::KeepaliveInterval` joined the generators: with it, 0x5eed_0001
/// missed `NoOptionsFloor`, and seeds 1 to 6 caught every bug.
#[cfg(feature = "planted-bugs")]
const PLANTED_SEED: u64 = 3;

prop_state_machine! {
    #![proptest_config(proptest_config())]
    fn random_fault_sequences(sequential 1..60 => CoreUnderTest);
}

/// Every safety invariant after every step, and recovery plus one outcome per call at the
/// end of every sequence; prints how many sequences and steps ran.
#[cfg(not(feature = "planted-bugs"))]
#[test]
fn invariants_hold_under_random_faults() {
    random_fault_sequences();
    let cases = CASES.load(std::sync::atomic::Ordering::Relaxed);
    let steps = STEPS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("core_properties: {cases} sequences, {steps} steps, every invariant held");
    assert!(cases > 0);
}

/// Proof that the properties bite: with each planted bug switched on, the same property
/// must fail. Built only with `--features planted-bugs` (the shipped crate never is).
#[cfg(feature = "planted-bugs")]
mod planted {
    use sip_ptls::engine::PlantedBug;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static PLANTED: AtomicUsize = AtomicUsize::new(usize::MAX);

    pub fn current() -> Option<PlantedBug> {
        PlantedBug::ALL.get(PLANTED.load(Ordering::Relaxed)).copied()
    }

    /// Bugs the model checker catches (`models/tests/planted_bugs.rs`) and these sequences
    /// cannot: the monitor does not see probe answers (failback's hysteresis, caught by
    /// `FAILBACK_EARNED`, and the failback that a timer ending the pinning call allows,
    /// caught by `FAILBACK_DUE`), and the simulated far end never hangs up an incoming call
    /// (caught by `INCOMING_ONCE`).
    const MODEL_ONLY: [PlantedBug; 7] = [
        PlantedBug::FailbackOnFirstProbe,
        PlantedBug::FailbackDuringCall,
        PlantedBug::KeepCallAfterRemoteBye,
        PlantedBug::ProbeFailureKeepsRun,
        PlantedBug::NoReevaluationAfterTimer,
        // Needs a server with several addresses, one of which takes connections and
        // answers nothing: the model's targets (models/src/sites.rs).
        PlantedBug::UnprovenAddressFailsServer,
        // The monitor's oracle lets an orphaned call run to its deadline, which is what
        // a call that is never moved does; the model's MOVED property sees the move
        // missing. src/engine/dialog_move_tests.rs checks the move itself.
        PlantedBug::NoDialogMove,
    ];

    /// Bugs of server location these sequences cannot reach (their servers have one
    /// address each): caught by `tests/locate_properties.rs`.
    const LOCATE_ONLY: [PlantedBug; 3] =
        [PlantedBug::BackoffAfterFirstTarget, PlantedBug::NoHeadStartRace, PlantedBug::RaceLoserLeftOpen];

    #[test]
    fn every_planted_bug_is_caught() {
        let mut missed = Vec::new();
        for (i, bug) in PlantedBug::ALL.iter().enumerate() {
            if MODEL_ONLY.contains(bug) {
                eprintln!("planted {bug:?}: left to the model checker");
                continue;
            }
            if LOCATE_ONLY.contains(bug) {
                eprintln!("planted {bug:?}: left to tests/locate_properties.rs");
                continue;
            }
            PLANTED.store(i, Ordering::Relaxed);
            match std::panic::catch_unwind(super::random_fault_sequences) {
                Err(panic) => {
                    // The shrunk failure names the invariant that caught the bug.
                    let text = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    let first: String =
                        text.split("minimal failing input").next().unwrap_or("").chars().take(240).collect();
                    eprintln!("planted {bug:?}: caught: {}", first.split_whitespace().collect::<Vec<_>>().join(" "));
                }
                Ok(()) => {
                    eprintln!("planted {bug:?}: MISSED");
                    missed.push(*bug);
                }
            }
        }
        assert!(missed.is_empty(), "bugs the properties did not catch: {missed:?}");
    }
}
