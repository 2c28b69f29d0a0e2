//! Logging for `sip-ptls run`: tracing lines with timestamps, or one JSON object per
//! line with `--json`; and one log record per phone event.

use sip_ptls::Event;
use sip_ptls::runtime::PhoneEvent;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber (`RUST_LOG` overrides the default `info` level).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    // A second initialisation (never in the binary) is harmless: keep the first.
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}

/// Logs one phone event, with a stable `event` field for machines.
pub fn event(e: &PhoneEvent, line_numbers: &[u8]) {
    let line = |a: sip_ptls::ids::AccountId| line_numbers.get(usize::from(a.0)).copied().unwrap_or(a.0 + 1);
    let at_ms = e.at.as_millis();
    match &e.event {
        Event::FlowUp { server } => tracing::info!(event = "flow_up", %server, at_ms, "persistent connection up"),
        Event::FlowLost { server, reason } => {
            tracing::warn!(event = "flow_lost", %server, %reason, at_ms, "persistent connection lost")
        }
        Event::FailedOver => tracing::warn!(event = "failed_over", at_ms, "failed over to the backup proxy"),
        Event::FailingBack => tracing::info!(event = "failing_back", at_ms, "primary stable again: moving back"),
        Event::FailedBack => tracing::info!(event = "failed_back", at_ms, "back on the primary proxy"),
        Event::ConnectFailed { server, reason } => {
            tracing::warn!(event = "connect_failed", %server, %reason, at_ms, "connection attempt failed")
        }
        Event::AttemptFailed { server, addr, reason } => {
            tracing::warn!(event = "attempt_failed", %server, %addr, %reason, at_ms, "address failed; trying the next")
        }
        Event::Backoff { wait, failures } => {
            tracing::warn!(
                event = "backoff",
                wait_ms = wait.as_millis(),
                failures,
                at_ms,
                "every server failed; waiting"
            )
        }
        Event::Registered { account, server, expires } => {
            tracing::info!(event = "registered", line = line(*account), %server, expires, at_ms, "line registered")
        }
        Event::RegistrationFailed { account, reason, retry_in } => tracing::warn!(
            event = "registration_failed",
            line = line(*account),
            %reason,
            retry_in_ms = retry_in.map(|d| d.as_millis()),
            at_ms,
            "registration failed"
        ),
        Event::RegistrationLost { account } => {
            tracing::warn!(event = "registration_lost", line = line(*account), at_ms, "registration lost")
        }
        Event::Unregistered { account } => {
            tracing::info!(event = "unregistered", line = line(*account), at_ms, "line de-registered")
        }
        Event::PongsUnsupported { server } => {
            tracing::warn!(event = "pongs_unsupported", %server, at_ms, "no CRLF pongs: keep-alive with OPTIONS")
        }
        Event::IncomingCall { call, account, from } => {
            tracing::info!(event = "incoming_call", %call, line = line(*account), %from, at_ms, "incoming call")
        }
        Event::CallProgress { call, status } => {
            tracing::info!(event = "call_progress", %call, status, at_ms, "call progress")
        }
        Event::CallOutcome { call, outcome } => {
            tracing::info!(event = "call_outcome", %call, outcome = ?outcome, at_ms, "call outcome")
        }
        Event::CallMoved { call, server } => {
            tracing::info!(event = "call_moved", %call, %server, at_ms, "call moved to the new connection")
        }
        Event::CallEnded { call, reason } => {
            tracing::info!(event = "call_ended", %call, reason = ?reason, at_ms, "call ended")
        }
        Event::ShutdownComplete => tracing::info!(event = "shutdown_complete", at_ms, "shut down"),
    }
}
