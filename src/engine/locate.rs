//! Where a connection goes: the engine's use of the DNS locator (`crate::dns`). Each
//! server has at most one location under way or done; a connection asked for before its
//! server is located waits for it, bounded by its connect timer, and is dialed to the
//! first address of the first target once the location is in. The lookups are outputs
//! ([`Output::Resolve`]) that the shell performs; their answers come back as
//! [`Input::Resolved`](super::Input::Resolved).

use super::bugs::Bug;
use super::{Conn, ConnPurpose, Core, Event, FlowError, Output, Timer, TransportError};
use crate::dns::{AnyAnswer, CachePolicy, DnsCache, HappyEyeballs, LookupFailed, Query, ServerLocator, Target};
use crate::ids::{ConnId, Server};
use crate::sip::{Framer, Limits};
use crate::time::Instant;
use core::net::SocketAddr;

/// One server's location: the locator and when it began.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Located {
    locator: ServerLocator,
    started: Instant,
}

/// The locations of the primary and the backup, and the DNS cache they share.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Locations {
    cache: DnsCache,
    servers: [Option<Located>; 2],
}

impl Default for Locations {
    fn default() -> Locations {
        Locations { cache: DnsCache::new(CachePolicy::default()), servers: [None, None] }
    }
}

impl Locations {
    /// The targets of `server`, when its location is in and succeeded.
    fn targets(&self, server: Server) -> Option<&[Target]> {
        match self.servers[server.index()].as_ref()?.locator.result()? {
            Ok(targets) => Some(targets),
            Err(_) => None,
        }
    }
}

/// How long an attempt goes on alone before the next address is tried beside it: RFC
/// 8305's recommended Connection Attempt Delay, 250 ms.
fn head_start() -> crate::time::Duration {
    HappyEyeballs::default().delay()
}

/// The address of attempt `attempt` to `targets` (each target's addresses in their
/// Happy Eyeballs order, target after target), and the name its certificate must carry.
fn attempt_address(targets: &[Target], attempt: u16) -> Option<(SocketAddr, String)> {
    let mut each = targets.iter().flat_map(|t| t.addrs.iter().map(move |ip| (SocketAddr::new(*ip, t.port), t)));
    let (addr, target) = each.nth(usize::from(attempt))?;
    Some((addr, target.tls_name.clone()))
}

/// Whether attempts `a` and `b` both exist and go to one target: only such attempts race
/// each other (RFC 8305 races one host's addresses); the next target waits for the end
/// of this one's race.
fn same_target(targets: &[Target], a: u16, b: u16) -> bool {
    matches!((attempt_target(targets, a), attempt_target(targets, b)), (Some(x), Some(y)) if x == y)
}

/// Which target attempt `attempt` goes to (its index in `targets`).
fn attempt_target(targets: &[Target], attempt: u16) -> Option<usize> {
    let mut each = targets.iter().enumerate().flat_map(|(i, t)| t.addrs.iter().map(move |_| i));
    each.nth(usize::from(attempt))
}

impl Core {
    /// Makes sure `server` is located or being located, asking the shell for the lookups
    /// a new location needs. A location is used again while every answer it used is
    /// fresh; one that failed, expired, or was under way for longer than the connect
    /// timeout (its lookups are lost: nobody waits for them any more) starts again.
    pub(super) fn locate(&mut self, server: Server) {
        let Some(addr) = self.server_addr(server) else { return };
        let now = self.now;
        let connect_timeout = self.config.connect_timeout;
        let keep = self.locations.servers[server.index()].as_ref().is_some_and(|l| match l.locator.result() {
            None => now < l.started + connect_timeout,
            Some(Ok(_)) => l.locator.expires().is_none_or(|until| now < until),
            Some(Err(_)) => false,
        });
        if !keep {
            let mut locator = ServerLocator::new(addr.spec(self.config.dns_query_type));
            locator.start(now, &mut self.locations.cache, &mut self.rng);
            self.locations.servers[server.index()] = Some(Located { locator, started: now });
        }
        self.ask_lookups(server);
    }

    /// Hands the shell every lookup `server`'s location has queued.
    fn ask_lookups(&mut self, server: Server) {
        while let Some(query) = self.locations.servers[server.index()].as_mut().and_then(|l| l.locator.poll_query()) {
            self.out.push_back(Output::Resolve { query });
        }
    }

    /// An answer (or failure) for a lookup: each location waiting for it takes it; the
    /// connections waiting for a location that is now in are dialed.
    pub(super) fn on_resolved(&mut self, query: &Query, outcome: Result<AnyAnswer, LookupFailed>) {
        for server in [Server::Primary, Server::Backup] {
            let now = self.now;
            let Some(located) = self.locations.servers[server.index()].as_mut() else { continue };
            if located.locator.result().is_some() {
                continue;
            }
            located.locator.handle_answer(now, query, outcome.clone(), &mut self.locations.cache, &mut self.rng);
            self.ask_lookups(server);
            self.dial_waiting(server);
        }
    }

    /// Dials every connection to `server` that waits for its location, if the location
    /// succeeded. A failed location is left to [`Core::fail_unlocated`], after the
    /// handler that asked for the connection is done.
    pub(super) fn dial_waiting(&mut self, server: Server) {
        let Some((addr, server_name)) = self.locations.targets(server).and_then(|t| attempt_address(t, 0)) else {
            return;
        };
        let more = self.locations.targets(server).is_some_and(|t| same_target(t, 0, 1));
        let head_start_ends = self.now + head_start();
        for c in self.conns.iter_mut().filter(|c| c.id.server == server && c.addr.is_none()) {
            c.addr = Some(addr);
            if more {
                self.timers.set(Timer::HeadStart(c.id), head_start_ends);
            }
            self.out.push_back(Output::Connect { conn: c.id, addr, server_name: server_name.clone() });
        }
    }

    /// The connection attempts racing `c` for the same purpose (Happy Eyeballs): to the
    /// same server, handed to the shell and not up; `c` itself left out.
    fn rivals(&self, c: &Conn) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|o| {
                o.id != c.id
                    && o.id.server == c.id.server
                    && o.purpose == c.purpose
                    && o.addr.is_some()
                    && o.local.is_none()
            })
            .map(|o| o.id)
            .collect()
    }

    /// Dials the attempt after `after` among `server`'s addresses for `purpose`, if there
    /// is one, with its own connect timer, and a head start over the next address when
    /// one is left.
    pub(super) fn start_attempt(&mut self, server: Server, purpose: ConnPurpose, after: u16) -> Option<ConnId> {
        let attempt = after.checked_add(1)?;
        let targets = self.locations.targets(server)?;
        let (addr, server_name) = attempt_address(targets, attempt)?;
        let more = same_target(targets, attempt, attempt.saturating_add(1));
        self.next_generation = self.next_generation.wrapping_add(1);
        let id = ConnId { server, generation: self.next_generation };
        let framer = Framer::new(Limits::default());
        self.conns.push(Conn { id, purpose, local: None, backlog: 0, addr: Some(addr), attempt, framer });
        self.timers.set(Timer::Connect(id), self.now + self.config.connect_timeout);
        if more {
            self.timers.set(Timer::HeadStart(id), self.now + head_start());
        }
        self.out.push_back(Output::Connect { conn: id, addr, server_name });
        Some(id)
    }

    /// An attempt's head start is over and it is still connecting: the next address is
    /// tried beside it (RFC 8305 §5). The first to connect wins ([`Core::race_won`]).
    pub(super) fn on_head_start(&mut self, conn: ConnId) {
        let Some(c) = self.conn(conn).filter(|c| c.local.is_none() && c.addr.is_some()).cloned() else { return };
        if self.planted(Bug::NoHeadStartRace) {
            return;
        }
        let last = self.rivals(&c).iter().filter_map(|id| self.conn(*id)).map(|o| o.attempt).max();
        let last = last.map_or(c.attempt, |l| l.max(c.attempt));
        let ours =
            self.locations.targets(conn.server).is_some_and(|t| same_target(t, c.attempt, last.saturating_add(1)));
        if ours {
            self.start_attempt(conn.server, c.purpose, last);
        }
    }

    /// `winner` connected first: every rival is closed before anything is sent on the
    /// winner, and whatever was recorded for a rival (the flow's, the probe's or a call's
    /// connection) now names the winner. At most one connection of the race is left.
    pub(super) fn race_won(&mut self, winner: ConnId) {
        self.timers.stop(Timer::HeadStart(winner));
        let Some(c) = self.conn(winner).cloned() else { return };
        for loser in self.rivals(&c) {
            if !self.planted(Bug::RaceLoserLeftOpen)
                && let Some(l) = self.remove_conn(loser)
            {
                self.queue_close(&l);
            }
            self.hand_over(loser, winner);
        }
    }

    /// `c` was closed while still connecting: its rivals go with it, since nothing
    /// wants their connection any more.
    pub(super) fn close_race(&mut self, c: &Conn) {
        if c.local.is_some() {
            return;
        }
        for rival in self.rivals(c) {
            if let Some(r) = self.remove_conn(rival) {
                self.queue_close(&r);
            }
        }
    }

    /// `failed` (removed from the table, closed if it was still opening) did not
    /// connect. While rivals are still connecting, or the server has another address
    /// (started at once, RFC 8305 §5: a failure ends the head start), the race goes on:
    /// whatever was recorded for `failed` now names a connection still in the race, and
    /// the failure is only reported as [`Event::AttemptFailed`]. A target is thereby left
    /// for the next one, and the server fails only once every address of every target
    /// has. False when nothing is left (or `failed` had connected): the caller reports
    /// the failure as before.
    pub(super) fn next_attempt(&mut self, failed: &Conn, reason: &FlowError) -> bool {
        let Some(tried) = failed.addr else { return false };
        if failed.local.is_some() || self.phase == super::Phase::Closed {
            return false;
        }
        let server = failed.id.server;
        let rivals = self.rivals(failed);
        let last = rivals.iter().filter_map(|id| self.conn(*id)).map(|o| o.attempt).fold(failed.attempt, u16::max);
        for rival in &rivals {
            self.timers.stop(Timer::HeadStart(*rival));
        }
        // Within the target at once; the next target only once no attempt is left in
        // this one's race, so that racing attempts always share a target.
        let next_is_ours = self.locations.targets(server).is_some_and(|t| same_target(t, last, last.saturating_add(1)));
        let first_target_only = self.planted(Bug::BackoffAfterFirstTarget) && !next_is_ours;
        let next = if (rivals.is_empty() || next_is_ours) && !first_target_only {
            self.start_attempt(server, failed.purpose, last)
        } else {
            None
        };
        let Some(heir) = rivals.first().copied().or(next) else { return false };
        self.emit(Event::AttemptFailed { server, addr: tried, reason: reason.clone() });
        self.hand_over(failed.id, heir);
        true
    }

    /// Whatever was recorded for connection `old` (the flow's, the probe's, a call's) now
    /// names `new`, another attempt of the same race.
    fn hand_over(&mut self, old: ConnId, new: ConnId) {
        if self.flow.conn == Some(old) {
            self.flow.conn = Some(new);
        }
        if let Some(p) = self.failback.probe.as_mut().filter(|p| p.conn == old) {
            p.conn = new;
        }
        for call in &mut self.calls {
            call.reconnecting(old, new);
        }
    }

    /// Fails every connection whose server could not be located, as a connection that
    /// could not be made (`name resolution failed: …`), which the flow, the probe and
    /// per-call TLS handle as any other failed attempt. Run after each input, so that a
    /// failure found at once (an answer kept in the cache) does not re-enter the handler
    /// that asked for the connection; bounded, since each failure either asks the other
    /// server once or arms a timer.
    pub(super) fn fail_unlocated(&mut self) {
        for _ in 0..64 {
            let failed: Option<(ConnId, String)> = self.conns.iter().filter(|c| c.addr.is_none()).find_map(|c| {
                let located = self.locations.servers[c.id.server.index()].as_ref()?;
                match located.locator.result()? {
                    Err(e) => Some((c.id, e.to_string())),
                    Ok(_) => None,
                }
            });
            let Some((id, why)) = failed else { return };
            if let Some(c) = self.remove_conn(id) {
                self.on_conn_failed(c, FlowError::Transport(TransportError::Resolve(why)));
            }
        }
    }
}
