//! Micro figures of the sans-IO core and the SIP codec (criterion): inputs handled per
//! second (keep-alive ping/pong cycles, REGISTER refreshes answered with a 2xx), the
//! core's own work for one call (placing it; receiving its 100 and 200), and the
//! `Framer`'s parse throughput over a realistic stream of REGISTER responses and INVITEs.
//!
//! After criterion's own report, one summary line per figure is printed in the form
//! `scenario/figure: median (min..max) unit`, computed from criterion's samples.
//! Run: `cargo bench --bench core` (a filter such as `-- parse` selects figures).

#[path = "support/rig.rs"]
mod rig;
#[path = "support/summary.rs"]
mod summary;

use criterion::{BatchSize, Criterion, Throughput};
use rig::{Rig, config};
use sip_ptls::ids::AccountId;
use sip_ptls::sip::{Frame, Framer, Limits};
use sip_ptls::time::Duration;
use std::hint::black_box;
use std::time::Instant as WallInstant;

/// Long enough that a benchmark never meets it (about 30 years).
const NEVER_S: u32 = 1_000_000_000;

/// A registered one-line core with a 5 s keep-alive and a registration that never needs
/// refreshing, so that every deadline it meets is a ping.
fn ping_rig() -> Rig {
    Rig::registered(config(1, Duration::from_secs(5), NEVER_S))
}

/// A registered one-line core with a 60 s registration and a keep-alive that never
/// fires, so that every deadline it meets is a registration refresh.
fn refresh_rig() -> Rig {
    Rig::registered(config(1, Duration::from_secs(u64::from(NEVER_S)), 60))
}

/// Time spent by the core alone in one step: firing the deadline, then receiving the
/// server's answer. The simulated server's work in between is not timed.
fn core_step(rig: &mut Rig) -> std::time::Duration {
    let t0 = WallInstant::now();
    rig.fire_next_deadline();
    let fired = t0.elapsed();
    rig.serve();
    let t1 = WallInstant::now();
    rig.deliver();
    fired + t1.elapsed()
}

fn keepalive(c: &mut Criterion) {
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ping_pong_cycle", |b| {
        let mut rig = ping_rig();
        b.iter_custom(|iters| {
            let before = rig.pings;
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                spent += core_step(&mut rig);
            }
            assert_eq!(rig.pings - before, iters, "every deadline is a ping");
            spent
        });
    });
    g.bench_function("register_refresh_2xx", |b| {
        let mut rig = refresh_rig();
        b.iter_custom(|iters| {
            let before = rig.registers;
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                spent += core_step(&mut rig);
            }
            assert_eq!(rig.registers - before, iters, "every deadline is a refresh");
            assert!(rig.all_registered());
            spent
        });
    });
    g.finish();
}

/// A registered one-line core that placed and ended one call, so that it answers the
/// proxy's INVITE challenge in advance from now on (as in the call-setup benchmark).
fn call_rig() -> Rig {
    let mut rig = Rig::registered(config(1, Duration::from_secs(u64::from(NEVER_S)), NEVER_S));
    call_step(&mut rig);
    assert_eq!(rig.invites.len(), 2, "the first INVITE draws the proxy's challenge");
    rig
}

/// [`call_step`], checking that the call took one INVITE (its credentials were sent in
/// advance).
fn timed_call(rig: &mut Rig) -> (std::time::Duration, std::time::Duration) {
    let spent = call_step(rig);
    assert_eq!(rig.invites.len(), 1, "one INVITE per call");
    spent
}

/// One call: the core's work placing it (until its INVITE is queued) and receiving the
/// 100 and 200 (until its ACK and outcome are queued); the server's work and the
/// hang-up are not timed.
fn call_step(rig: &mut Rig) -> (std::time::Duration, std::time::Duration) {
    let sdp = b"v=0\r\n".to_vec();
    rig.invites.clear();
    let t0 = WallInstant::now();
    let call = rig.core.place_call(rig.now, AccountId(0), "2000", sdp).expect("place a call");
    rig.drain();
    let placed = t0.elapsed();
    rig.serve();
    let t1 = WallInstant::now();
    rig.deliver();
    let answered = t1.elapsed();
    assert!(rig.to_core.is_empty());
    rig.core.hang_up(rig.now, call).expect("hang up");
    rig.exchange();
    (placed, answered)
}

fn calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("core");
    g.bench_function("place_call", |b| {
        let mut rig = call_rig();
        b.iter_custom(|iters| (0..iters).map(|_| timed_call(&mut rig).0).sum());
    });
    g.bench_function("call_answered", |b| {
        let mut rig = call_rig();
        b.iter_custom(|iters| (0..iters).map(|_| timed_call(&mut rig).1).sum());
    });
    g.finish();
}

/// A realistic received stream: per call, a REGISTER 401 and 200 (as the registrar
/// sends them) and an INVITE with SDP (as the core writes it), repeated.
fn sip_stream() -> Vec<u8> {
    let mut rig = Rig::registered(config(2, Duration::from_secs(30), 3600));
    let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n".to_vec();
    rig.core.place_call(rig.now, AccountId(0), "2000", sdp).expect("place a call");
    rig.exchange();
    let mut one = Vec::new();
    for r in &rig.register_responses {
        one.extend_from_slice(r);
    }
    for i in &rig.invites {
        one.extend_from_slice(i);
    }
    assert!(!rig.invites.is_empty() && rig.register_responses.len() >= 2);
    let mut stream = Vec::new();
    while stream.len() < 256 * 1024 {
        stream.extend_from_slice(&one);
    }
    stream
}

fn parse(c: &mut Criterion) {
    let stream = sip_stream();
    let messages = {
        let mut f = Framer::new(Limits::default());
        f.push(&stream);
        std::iter::from_fn(|| f.next_frame().ok().flatten()).filter(|f| matches!(f, Frame::Message(_))).count()
    };
    println!("parse stream: {} bytes, {messages} messages (REGISTER 401/200 responses and INVITEs)", stream.len());
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("framer_parse", |b| {
        b.iter_batched_ref(
            || Framer::new(Limits::default()),
            |framer| {
                framer.push(black_box(&stream));
                let mut n = 0usize;
                while let Ok(Some(frame)) = framer.next_frame() {
                    n += usize::from(matches!(black_box(frame), Frame::Message(_)));
                }
                assert_eq!(n, messages);
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3))
        .output_directory(&summary::output_dir());
    keepalive(&mut c);
    calls(&mut c);
    parse(&mut c);
    c.final_summary();
    summary::print(&[
        ("core/ping_pong_cycle", summary::Unit::PerSecond("cycles/s")),
        ("core/register_refresh_2xx", summary::Unit::PerSecond("refreshes/s")),
        ("core/place_call", summary::Unit::Nanos),
        ("core/call_answered", summary::Unit::Nanos),
        ("codec/framer_parse", summary::Unit::Throughput { bytes: sip_stream().len() as f64 }),
    ]);
}
