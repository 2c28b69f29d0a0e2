//! Where the phone's own time goes in one call: the runtime shell's stamps (built with
//! `--features timing`, `sip_ptls::runtime::timing`) lined up with the benchmark's
//! place-call and outcome instants and the relay's record crossings, all read from the
//! one monotonic clock of this process. Without the feature every call here does nothing
//! and no split is printed.

use crate::relay::Crossing;
use std::time::Instant;

/// The phone's segments of a call's way, in order: (figure name, group, what it covers).
/// The groups are the shell (channels, wake-ups, the driver's own work), the core, TLS
/// (rustls) and the socket (the system calls).
pub const SEGMENTS: [(&str, &str, &str); 13] = [
    ("command_channel", "shell", "place_call until the driver takes the command"),
    ("core_out", "core", "the core places the call (Core::place_call)"),
    ("drain_out", "shell", "core done until the INVITE's Transmit is queued (reply to place_call, drain)"),
    ("shell_to_tls", "shell", "Transmit queued until the writer hands it to rustls"),
    ("tls_encrypt", "tls", "rustls encrypts until its socket write starts"),
    ("socket_write", "socket", "the socket write of the INVITE"),
    ("wake_up", "shell", "the relay writes the 200 until the phone's socket read starts"),
    ("socket_read", "socket", "the socket read of the 200"),
    ("tls_decrypt", "tls", "socket read done until rustls returns the plaintext"),
    ("report_channel", "shell", "the reader's report until the driver takes it"),
    ("core_in", "core", "the core handles the 200 (Core::handle_input)"),
    ("drain_in", "shell", "core done until the outcome event is queued"),
    ("event_to_app", "shell", "event queued until the application has it"),
];

/// The groups of [`SEGMENTS`], in the order they are printed.
pub const GROUPS: [&str; 4] = ["shell", "core", "tls", "socket"];

/// The split of one call, µs.
#[derive(Clone, Debug)]
pub struct Split {
    /// One value per [`SEGMENTS`] entry.
    pub phone: [f64; SEGMENTS.len()],
    /// From the phone's socket write of the INVITE to the relay's read of it (negative
    /// when the relay's thread read it before the phone's write returned).
    pub to_relay: f64,
}

impl Split {
    /// The phone's segments added up, µs.
    pub fn phone_total(&self) -> f64 {
        self.phone.iter().sum()
    }

    /// The segments of `group` added up, µs.
    pub fn group_total(&self, group: &str) -> f64 {
        SEGMENTS.iter().zip(&self.phone).filter(|((_, g, _), _)| *g == group).map(|(_, v)| v).sum()
    }
}

/// True when the benchmark was built with the `timing` feature.
pub const ENABLED: bool = cfg!(feature = "timing");

/// Forgets every stamp so far (before a call).
pub fn clear() {
    #[cfg(feature = "timing")]
    drop(sip_ptls::runtime::timing::drain());
}

/// The split of the call placed at `t0` and answered (seen by the application) at `t_ok`,
/// whose INVITE and 200 crossed the relay as `invite` and `ok`. `None` without the
/// feature, or when the stamps do not line up (a sample that cannot be attributed is
/// dropped rather than guessed).
#[cfg(not(feature = "timing"))]
pub fn split(_t0: Instant, _t_ok: Instant, _invite: &Crossing, _ok: &Crossing, _sole_phone: bool) -> Option<Split> {
    None
}

#[cfg(feature = "timing")]
pub fn split(t0: Instant, t_ok: Instant, invite: &Crossing, ok: &Crossing, sole_phone: bool) -> Option<Split> {
    use sip_ptls::runtime::timing::{Point, drain};
    let stamps = drain();
    // The phone's future runs on its own thread when a command wakes it and on async-io's
    // reactor thread when a socket or a deadline does (`runtime::on_reactor`), so a call's
    // stamps are on two threads, which a callee phone in the same process shares: the
    // split is made only when the caller is the one phone stamping.
    if !sole_phone {
        return None;
    }
    let mine: Vec<_> = stamps.iter().collect();
    let first_after = |p: Point, t: Instant| mine.iter().find(|s| s.point == p && s.at >= t).map(|s| s.at);
    let last_before = |p: Point, t: Instant| mine.iter().rev().find(|s| s.point == p && s.at <= t).map(|s| s.at);
    let command = first_after(Point::Command, t0)?;
    let core_out = first_after(Point::Core, command)?;
    let transmit = first_after(Point::Transmit, core_out)?;
    let tls_write = first_after(Point::TlsWrite, transmit)?;
    let write_start = first_after(Point::SocketWriteStart, tls_write)?;
    let write_end = first_after(Point::SocketWriteEnd, write_start)?;
    let event = last_before(Point::Event, t_ok)?;
    let core_in = last_before(Point::Core, event)?;
    let report = last_before(Point::Report, core_in)?;
    let tls_read = last_before(Point::TlsRead, report)?;
    let read_end = last_before(Point::SocketReadEnd, tls_read)?;
    let read_start = last_before(Point::SocketReadStart, read_end)?;
    // The INVITE left before the relay read it; the 200 was read after the relay wrote it.
    if invite.arrived < write_start || read_start < ok.delivered {
        return None;
    }
    let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
    let phone = [
        us(t0, command),
        us(command, core_out),
        us(core_out, transmit),
        us(transmit, tls_write),
        us(tls_write, write_start),
        us(write_start, write_end),
        us(ok.delivered, read_start),
        us(read_start, read_end),
        us(read_end, tls_read),
        us(tls_read, report),
        us(report, core_in),
        us(core_in, event),
        us(event, t_ok),
    ];
    let to_relay =
        if invite.arrived >= write_end { us(write_end, invite.arrived) } else { -us(invite.arrived, write_end) };
    Some(Split { phone, to_relay })
}
