//! Happy Eyeballs (RFC 8305) as data: the order in which a target's addresses are tried
//! (§4: families interleaved, IPv6 first), and the schedule of the connection attempts
//! (§5: each next attempt after a head start while the earlier ones go on, each with a
//! timeout of its own, the first success ending the others). Given the attempts started
//! so far and what became of them, [`decide`] says what to do next; it keeps no state.

use core::net::IpAddr;

use crate::time::{Duration, Instant};

/// The figures of the race.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HappyEyeballs {
    /// The head start of each attempt before the next one begins ("Connection Attempt
    /// Delay", RFC 8305 §5: 250 ms recommended). Taken within
    /// [`MIN_ATTEMPT_DELAY`]..=[`MAX_ATTEMPT_DELAY`] (§8).
    pub attempt_delay: Duration,
    /// How long one attempt (TCP and the TLS handshake with the certificate checked) may
    /// take before it counts as failed. 5 s by default, the default of `sip persistent
    /// tls connect timeout`: a server reached through one address alone gets the time
    /// it gets today, and it leaves a lossy path three SYNs (at 0, 1 and 3 s with the
    /// usual 1 s initial retransmission timeout) and two seconds for TLS. A black hole
    /// costs no more than this even when it comes first, since the next address starts
    /// after the head start anyway.
    pub attempt_timeout: Duration,
    /// How many addresses of the first family (IPv6) come before the first of the other
    /// ("First Address Family Count", RFC 8305 §4: 1 by default). At least 1.
    pub first_family_count: usize,
}

/// The lower bound RFC 8305 §8 recommends for the attempt delay.
pub const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(100);
/// The upper bound RFC 8305 §8 recommends for the attempt delay.
pub const MAX_ATTEMPT_DELAY: Duration = Duration::from_millis(2000);

impl Default for HappyEyeballs {
    fn default() -> HappyEyeballs {
        HappyEyeballs {
            attempt_delay: Duration::from_millis(250),
            attempt_timeout: Duration::from_secs(5),
            first_family_count: 1,
        }
    }
}

impl HappyEyeballs {
    /// The attempt delay actually used: the configured one within the RFC's bounds.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(
            self.attempt_delay.as_millis().clamp(MIN_ATTEMPT_DELAY.as_millis(), MAX_ATTEMPT_DELAY.as_millis()),
        )
    }
}

/// `addrs` in the order to try them: IPv6 first when there is one, then the families
/// alternating, `first_family_count` (at least 1) IPv6 addresses before the first IPv4
/// one; each family keeps the resolver's order; an address given twice is kept once.
pub fn interleave(addrs: &[IpAddr], first_family_count: usize) -> Vec<IpAddr> {
    let mut v6: Vec<IpAddr> = Vec::new();
    let mut v4: Vec<IpAddr> = Vec::new();
    for addr in addrs {
        let family = if addr.is_ipv6() { &mut v6 } else { &mut v4 };
        if !family.contains(addr) {
            family.push(*addr);
        }
    }
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let mut v6 = v6.into_iter();
    let mut v4 = v4.into_iter();
    out.extend(v6.by_ref().take(first_family_count.max(1)));
    loop {
        match (v4.next(), v6.next()) {
            (None, None) => break,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
    out
}

/// What became of one connection attempt so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Still connecting.
    Running,
    /// It failed (refused, unreachable, a TLS or certificate failure) at this instant.
    Failed(Instant),
    /// TCP and TLS completed, the certificate verified, at this instant.
    Connected(Instant),
}

/// One connection attempt: to the address of the same index in the target's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attempt {
    /// When it started.
    pub started: Instant,
    /// What became of it.
    pub outcome: Outcome,
}

/// What to do now, from [`decide`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Start the attempt to the address of index `index` now (the next one in order).
    Start {
        /// The index of the address, which is also the number of attempts so far.
        index: usize,
    },
    /// Nothing to do before `until`: then an attempt's head start ends or a running
    /// attempt times out. Ask again then, or at any input before.
    Wait {
        /// The instant to ask again.
        until: Instant,
    },
    /// Attempt `winner` connected first: close the attempts of `abandon`, which are
    /// still running (or timed out) or connected later; the addresses never tried are
    /// not tried.
    Won {
        /// The index of the winning attempt.
        winner: usize,
        /// The attempts to close, ascending.
        abandon: Vec<usize>,
    },
    /// Every address was tried and every attempt failed or timed out.
    Exhausted,
}

/// The decision, and the running attempts that timed out (to close and to count as
/// failed: the caller records them as `Failed` at their deadline).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Running attempts whose timeout has passed, ascending.
    pub timed_out: Vec<usize>,
    /// What to do next.
    pub step: Step,
}

/// The next step of the race among `addresses` addresses (tried in order), of which
/// `attempts` have been started (`attempts[i]` to address `i`), at `now`.
///
/// - One connected: the earliest to connect (the lowest index among equals) wins; every
///   other attempt not failed (running, or connected later) is abandoned, so that one
///   connection alone is left.
/// - A running attempt counts as failed at `started + attempt_timeout`.
/// - The next attempt starts a head start after the last one started, or at once when
///   every started attempt has failed (RFC 8305 asks for a delay so that attempts do not
///   all start together; with none running there is no reason to wait).
/// - With every address started: wait for the earliest running attempt's deadline; with
///   none running, the race is lost.
///
/// More attempts than addresses, or instants after `now`, are taken as they are without
/// panicking.
pub fn decide(config: &HappyEyeballs, addresses: usize, attempts: &[Attempt], now: Instant) -> Decision {
    let deadline = |a: &Attempt| a.started + config.attempt_timeout;
    let winner = attempts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a.outcome {
            Outcome::Connected(at) => Some((at, i)),
            _ => None,
        })
        .min();
    if let Some((_, winner)) = winner {
        let abandon = attempts
            .iter()
            .enumerate()
            .filter(|(i, a)| *i != winner && !matches!(a.outcome, Outcome::Failed(_)))
            .map(|(i, _)| i)
            .collect();
        return Decision { timed_out: Vec::new(), step: Step::Won { winner, abandon } };
    }
    let timed_out: Vec<usize> = attempts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.outcome == Outcome::Running && deadline(a) <= now)
        .map(|(i, _)| i)
        .collect();
    // When each attempt ended by `now` (failed, or timed out); `None` while it runs.
    let ends: Vec<Option<Instant>> = attempts
        .iter()
        .map(|a| match a.outcome {
            Outcome::Failed(at) => Some(at),
            Outcome::Running if deadline(a) <= now => Some(deadline(a)),
            _ => None,
        })
        .collect();
    let earliest_deadline =
        attempts.iter().filter(|a| a.outcome == Outcome::Running && deadline(a) > now).map(deadline).min();
    let step = if attempts.len() < addresses {
        let next = match attempts.last() {
            None => now,
            Some(last) => {
                let head_start_over = last.started + config.delay();
                let all_ended: Option<Instant> =
                    ends.iter().copied().try_fold(Instant::ZERO, |latest, end| end.map(|e| e.max(latest)));
                match all_ended {
                    Some(ended) => head_start_over.min(ended),
                    None => head_start_over,
                }
            }
        };
        if next <= now {
            Step::Start { index: attempts.len() }
        } else {
            Step::Wait { until: earliest_deadline.map_or(next, |d| d.min(next)) }
        }
    } else {
        match earliest_deadline {
            Some(until) => Step::Wait { until },
            None => Step::Exhausted,
        }
    };
    Decision { timed_out, step }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Duration, Instant};
    use core::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn running(ms: u64) -> Attempt {
        Attempt { started: at(ms), outcome: Outcome::Running }
    }

    fn step(addresses: usize, attempts: &[Attempt], now: u64) -> Step {
        decide(&HappyEyeballs::default(), addresses, attempts, at(now)).step
    }

    #[test]
    fn families_alternate_from_ipv6() {
        let addrs = [ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1"), ip("2001:db8::2"), ip("192.0.2.3")];
        assert_eq!(
            interleave(&addrs, 1),
            [ip("2001:db8::1"), ip("192.0.2.1"), ip("2001:db8::2"), ip("192.0.2.2"), ip("192.0.2.3")]
        );
        assert_eq!(
            interleave(&addrs, 2),
            [ip("2001:db8::1"), ip("2001:db8::2"), ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")]
        );
        // A count of 0 is taken as 1: IPv6 still comes first.
        assert_eq!(interleave(&addrs, 0), interleave(&addrs, 1));
    }

    #[test]
    fn one_family_keeps_its_order_and_duplicates_go() {
        let v4 = [ip("192.0.2.3"), ip("192.0.2.1"), ip("192.0.2.3")];
        assert_eq!(interleave(&v4, 1), [ip("192.0.2.3"), ip("192.0.2.1")]);
        let v6 = [ip("2001:db8::9"), ip("2001:db8::1")];
        assert_eq!(interleave(&v6, 1), v6);
        assert!(interleave(&[], 1).is_empty());
    }

    #[test]
    fn the_delay_stays_within_the_rfc_bounds() {
        let mut config = HappyEyeballs::default();
        assert_eq!(config.delay(), Duration::from_millis(250));
        config.attempt_delay = Duration::from_millis(10);
        assert_eq!(config.delay(), Duration::from_millis(100));
        config.attempt_delay = Duration::from_secs(60);
        assert_eq!(config.delay(), Duration::from_secs(2));
    }

    #[test]
    fn the_first_attempt_starts_at_once_and_the_next_after_the_head_start() {
        assert_eq!(step(3, &[], 1000), Step::Start { index: 0 });
        assert_eq!(step(3, &[running(1000)], 1000), Step::Wait { until: at(1250) });
        assert_eq!(step(3, &[running(1000)], 1249), Step::Wait { until: at(1250) });
        assert_eq!(step(3, &[running(1000)], 1250), Step::Start { index: 1 });
        assert_eq!(step(3, &[running(1000), running(1250)], 1300), Step::Wait { until: at(1500) });
    }

    #[test]
    fn a_failure_starts_the_next_attempt_at_once() {
        let failed = Attempt { started: at(1000), outcome: Outcome::Failed(at(1010)) };
        assert_eq!(step(3, &[failed], 1010), Step::Start { index: 1 });
        // Another still running: the head start applies.
        let second_failed = Attempt { started: at(1250), outcome: Outcome::Failed(at(1260)) };
        assert_eq!(step(3, &[running(1000), second_failed], 1260), Step::Wait { until: at(1500) });
    }

    #[test]
    fn the_first_to_connect_wins_and_the_others_are_abandoned() {
        let attempts = [
            running(0),
            Attempt { started: at(250), outcome: Outcome::Connected(at(400)) },
            Attempt { started: at(500), outcome: Outcome::Connected(at(520)) },
            Attempt { started: at(750), outcome: Outcome::Failed(at(760)) },
            running(760),
        ];
        assert_eq!(step(9, &attempts, 800), Step::Won { winner: 1, abandon: vec![0, 2, 4] });
    }

    #[test]
    fn a_silent_attempt_times_out_on_its_own() {
        let config = HappyEyeballs { attempt_timeout: Duration::from_secs(2), ..HappyEyeballs::default() };
        let attempts = [running(0)];
        assert_eq!(decide(&config, 1, &attempts, at(1000)).step, Step::Wait { until: at(2000) });
        assert_eq!(decide(&config, 1, &attempts, at(2000)), Decision { timed_out: vec![0], step: Step::Exhausted });
        // With another address left, the timeout frees the way at once.
        let two = decide(&config, 2, &[running(0), running(250)], at(2000));
        assert_eq!(two, Decision { timed_out: vec![0], step: Step::Wait { until: at(2250) } });
    }

    #[test]
    fn every_address_failed_is_exhausted() {
        let attempts = [
            Attempt { started: at(0), outcome: Outcome::Failed(at(5)) },
            Attempt { started: at(5), outcome: Outcome::Failed(at(9)) },
        ];
        assert_eq!(step(2, &attempts, 9), Step::Exhausted);
        assert_eq!(step(0, &[], 0), Step::Exhausted);
        // More attempts than addresses: no panic, no new attempt.
        assert_eq!(step(1, &attempts, 9), Step::Exhausted);
    }

    #[test]
    fn instants_from_the_future_do_not_panic() {
        let attempts = [Attempt { started: at(u64::MAX), outcome: Outcome::Failed(at(u64::MAX)) }];
        assert_eq!(step(2, &attempts, 0), Step::Wait { until: at(u64::MAX) });
    }
}
