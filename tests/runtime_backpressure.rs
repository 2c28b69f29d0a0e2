//! A peer that stops reading, over real TLS on loopback: the phone's write queue stays
//! bounded, the driver reports its unsent bytes to the core, and the core declares the
//! connection dead (`FlowError::WriteStalled`) and fails over.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod runtime_support;

use runtime_support::{Lab, watchdog};
use sip_ptls::Event;
use sip_ptls::engine::FlowError;
use sip_ptls::ids::{AccountId, Server};
use sip_ptls::time::Duration as CoreDuration;
use std::time::{Duration, Instant};

const SDP: usize = 32 * 1024;

/// Registers on a primary, freezes it (it stops reading its sockets) and places calls
/// with a large body, at most `max_calls`, as fast as the phone takes them, until the flow
/// is lost; checks that it was lost for a write stall, within the bound, and that the
/// phone failed over. Returns the unsent bytes the core saw.
fn stall(max_backlog: usize, max_calls: usize) -> usize {
    let lab = Lab::new();
    let primary = lab.registrar();
    let backup = lab.registrar();
    let mut config = lab.config(&primary, Some(&backup));
    // No keep-alive verdict within the test: only the write stall may end the connection,
    // and before the first INVITE's transaction timer (4 s) could.
    config.keepalive_interval = CoreDuration::from_secs(60);
    config.write_stall_timeout = CoreDuration::from_millis(500);
    config.max_write_backlog = max_backlog;
    let mut phone = lab.phone(config);
    phone.all_registered(Server::Primary, Duration::from_secs(10));

    primary.freeze();
    let frozen = Instant::now();
    let sdp = b"v=0\r\n".iter().copied().cycle().take(SDP).collect::<Vec<u8>>();
    let mut calls = 0;
    let lost = loop {
        if calls < max_calls {
            phone.handle.place_call_blocking(AccountId(0), "1002", sdp.clone()).expect("place a call");
            calls += 1;
        }
        if let Some((at, e)) = phone.try_wait(Duration::from_millis(1), |e| matches!(e, Event::FlowLost { .. })) {
            break (at, e);
        }
        assert!(frozen.elapsed() < Duration::from_secs(20), "no FlowLost:\n{}", phone.history());
    };
    let (lost_at, lost) = lost;
    let Event::FlowLost { server: Server::Primary, reason: FlowError::WriteStalled(unsent) } = lost else {
        panic!("the flow was lost for another reason: {lost:?}\n{}", phone.history());
    };
    let path = if unsent > max_backlog { "queue full" } else { "no progress for the stall timeout" };
    println!(
        "write stall: {calls} INVITEs of {} KiB placed after the freeze; FlowLost(WriteStalled({unsent})) {:?} \
         after the freeze ({path}; limit {max_backlog} bytes, stall timeout 500 ms)",
        SDP / 1024,
        lost_at - frozen,
    );
    // The queue never held more than the limit: at most one message beyond it was refused.
    assert!(unsent <= max_backlog + SDP + 2048, "{unsent} bytes unsent");
    phone.wait("FailedOver", Duration::from_secs(10), |e| matches!(e, Event::FailedOver));
    phone.all_registered(Server::Backup, Duration::from_secs(10));
    primary.thaw();
    unsent
}

/// A small bound, far below what the kernel and rustls buffer: the phone's own queue
/// fills and the Transmit that does not fit makes the core end the connection at once.
#[test]
fn a_server_that_stops_reading_fills_the_bounded_queue_and_the_phone_fails_over() {
    let _w = watchdog("write queue full", Duration::from_secs(90));
    let unsent = stall(64 * 1024, 1000);
    assert!(unsent > 64 * 1024, "the queue-full path: {unsent}");
}

/// A bound larger than what the test writes: the socket stops taking bytes, the backlog
/// the driver reports stops shrinking, and the core's stall timer ends the connection.
#[test]
fn a_server_that_stops_reading_stalls_the_writer_and_the_phone_fails_over() {
    let _w = watchdog("write stall", Duration::from_secs(90));
    let limit = 64 * 1024 * 1024;
    let unsent = stall(limit, 320);
    assert!(unsent > 0 && unsent <= limit, "the stall path: {unsent}");
}
