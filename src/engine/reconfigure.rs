//! A new configuration for the running core: what it can take at once (timers, intervals,
//! limits) and what needs the phone started again (anything that names a server, a line,
//! a certificate or the phone's identity, since the connections and bindings made with
//! the old values would no longer match the configuration).

use super::Core;
use super::bugs::Bug;
use super::timer::{FlowTimer, Timer};
use crate::config::Config;
use crate::time::{Duration, Instant};
use std::fmt;
use std::sync::Arc;

/// The new configuration changes something that only a new start can apply; nothing was
/// changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedsRestart {
    /// What changed, in words (`servers`, `lines`, `transport`, …), for the person who
    /// made the change.
    pub changed: Vec<String>,
}

impl fmt::Display for NeedsRestart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needs a restart: {} changed", self.changed.join(", "))
    }
}

impl std::error::Error for NeedsRestart {}

/// A value the running core can take at once: its name in traces, how to read it from a
/// configuration and how to write it (durations in milliseconds).
type Tunable = (&'static str, fn(&Config) -> u64, fn(&mut Config, u64));

fn ms(d: Duration) -> u64 {
    d.as_millis()
}

fn narrow<T: TryFrom<u64> + Bounded>(v: u64) -> T {
    T::try_from(v).unwrap_or(T::MAX)
}

/// The integer types of the tunables, for saturating conversions from a trace's `u64`.
trait Bounded {
    const MAX: Self;
}
impl Bounded for u8 {
    const MAX: u8 = u8::MAX;
}
impl Bounded for u32 {
    const MAX: u32 = u32::MAX;
}
impl Bounded for usize {
    const MAX: usize = usize::MAX;
}

/// Every value [`Core::reconfigure`] takes without a restart. Anything else in
/// [`Config`], including fields added later, needs one.
const TUNABLES: [Tunable; 19] = [
    ("keepalive_interval_ms", |c| ms(c.keepalive_interval), |c, v| c.keepalive_interval = Duration::from_millis(v)),
    ("pong_timeout_ms", |c| ms(c.pong_timeout), |c, v| c.pong_timeout = Duration::from_millis(v)),
    ("registration_period", |c| u64::from(c.registration_period), |c, v| c.registration_period = narrow(v)),
    ("registration_renewal", |c| u64::from(c.registration_renewal), |c, v| c.registration_renewal = narrow(v)),
    ("registration_retry", |c| u64::from(c.registration_retry), |c, v| c.registration_retry = narrow(v)),
    (
        "registration_timeout_retry",
        |c| u64::from(c.registration_timeout_retry),
        |c, v| c.registration_timeout_retry = narrow(v),
    ),
    ("transaction_timeout_ms", |c| ms(c.transaction_timeout), |c, v| c.transaction_timeout = Duration::from_millis(v)),
    ("connect_timeout_ms", |c| ms(c.connect_timeout), |c, v| c.connect_timeout = Duration::from_millis(v)),
    ("backoff_base_ms", |c| ms(c.backoff.base), |c, v| c.backoff.base = Duration::from_millis(v)),
    ("backoff_max_ms", |c| ms(c.backoff.max), |c, v| c.backoff.max = Duration::from_millis(v)),
    (
        "failback_probe_interval_ms",
        |c| ms(c.failback.probe_interval),
        |c, v| c.failback.probe_interval = Duration::from_millis(v),
    ),
    ("failback_stable_probes", |c| u64::from(c.failback.stable_probes), |c, v| c.failback.stable_probes = narrow(v)),
    ("call_queue_limit", |c| u64::from(c.call_queue_limit), |c, v| c.call_queue_limit = narrow(v)),
    ("call_setup_timeout_ms", |c| ms(c.call_setup_timeout), |c, v| c.call_setup_timeout = Duration::from_millis(v)),
    ("write_stall_timeout_ms", |c| ms(c.write_stall_timeout), |c, v| c.write_stall_timeout = Duration::from_millis(v)),
    ("max_write_backlog", |c| c.max_write_backlog as u64, |c, v| c.max_write_backlog = narrow(v)),
    ("max_ringing_calls", |c| u64::from(c.max_ringing_calls), |c, v| c.max_ringing_calls = narrow(v)),
    ("ringing_timeout_ms", |c| ms(c.ringing_timeout), |c, v| c.ringing_timeout = Duration::from_millis(v)),
    (
        "orphaned_call_timeout_ms",
        |c| ms(c.orphaned_call_timeout),
        |c, v| c.orphaned_call_timeout = Duration::from_millis(v),
    ),
];

/// The values of `config` that [`Core::reconfigure`] takes at once, by name: what a
/// trace records of a reconfiguration.
pub fn tunable_values(config: &Config) -> Vec<(&'static str, u64)> {
    TUNABLES.iter().map(|(name, get, _)| (*name, get(config))).collect()
}

/// `config` with the tunable values given by name (as [`tunable_values`] lists them);
/// `Err` names a value that is not one.
pub fn with_tunable_values(config: &Config, values: &[(String, u64)]) -> Result<Config, String> {
    let mut out = config.clone();
    for (name, value) in values {
        let (_, _, set) = TUNABLES.iter().find(|(n, _, _)| n == name).ok_or_else(|| name.clone())?;
        set(&mut out, *value);
    }
    Ok(out)
}

/// The parts of `new` that differ from `old` and that the running core cannot take.
fn restart_needed_for(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut rest = new.clone();
    for (_, get, set) in TUNABLES {
        set(&mut rest, get(old));
    }
    // The certificate files are the shell's: it reloads them (`PhoneHandle::
    // reload_certificates`) and the core never reads them.
    rest.certificates.clone_from(&old.certificates);
    if rest == *old {
        return Vec::new();
    }
    let checks: [(&'static str, bool); 8] = [
        ("transport", old.mode != new.mode),
        (
            "servers",
            old.proxy != new.proxy
                || old.backup_proxy != new.backup_proxy
                || old.registrar != new.registrar
                || old.backup_registrar != new.backup_registrar,
        ),
        ("dns", old.dns_query_type != new.dns_query_type || old.dns_servers != new.dns_servers),
        ("lines", old.accounts != new.accounts),
        ("sips scheme", old.sips_scheme != new.sips_scheme),
        ("outbound", old.outbound != new.outbound),
        ("instance id", old.instance_id != new.instance_id),
        ("seed", old.seed != new.seed),
    ];
    let named: Vec<&'static str> = checks.into_iter().filter(|(_, changed)| *changed).map(|(name, _)| name).collect();
    if named.is_empty() { vec!["other settings"] } else { named }
}

impl Core {
    /// Takes `config` (which should have passed [`Config::validate`]) without a new
    /// start when only timers, intervals, limits and certificate file names differ, or
    /// says what needs one. The core keeps the new file names; loading the files is the
    /// shell's (`PhoneHandle::reload_certificates`).
    ///
    /// Applied at once: an armed keep-alive is drawn again from the new interval, a
    /// back-off wait or a failback probe later than the new bound is brought forward, and
    /// the failback decision is taken again with the new count of stable probes. Every
    /// other value applies from its next use (the next REGISTER asks the new period, the
    /// next transaction has the new timeout); a binding keeps the lifetime it was granted.
    ///
    /// A refused configuration leaves the core exactly as it was (its clock included), so
    /// a replay need not know the refused values.
    pub fn reconfigure(&mut self, now: Instant, config: Config) -> Result<(), NeedsRestart> {
        let changed = restart_needed_for(&self.config, &config);
        if !changed.is_empty() {
            return Err(NeedsRestart { changed: changed.into_iter().map(str::to_owned).collect() });
        }
        self.advance(now);
        let old = std::mem::replace(&mut self.config, Arc::new(config));
        if old.keepalive_interval != self.config.keepalive_interval
            && self.timers.is_armed(Timer::Flow(FlowTimer::Ping))
            && !self.planted(Bug::StalePingAfterReconfigure)
        {
            self.schedule_ping();
        }
        self.bring_forward(Timer::Flow(FlowTimer::Retry), self.now + self.config.backoff.max);
        self.bring_forward(Timer::Flow(FlowTimer::ProbeAt), self.now + self.config.failback.probe_interval);
        self.after_input();
        Ok(())
    }

    /// An armed `timer` later than `latest` fires at `latest` instead.
    fn bring_forward(&mut self, timer: Timer, latest: Instant) {
        if self.timers.get(timer).is_some_and(|at| at > latest) {
            self.timers.set(timer, latest);
        }
    }
}
