//! The driver: owns the [`Core`], feeds it every input with the current time, drains its
//! outputs after each one and performs them (connection tasks, writes, closes, events),
//! then sleeps until the core's next deadline or the next input. It adds no policy.
//! Being the one place that calls the core, it is also where a trace is recorded
//! (`docs/record-replay.md`): every call and every output, in the order they happen.
//!
//! Connection tasks run on an `async_executor::Executor` that lives inside the driver
//! future, so the library never picks a global executor: whoever polls [`Driver::run`]
//! runs the phone.

use super::clock::Clock;
use super::command::{Command, PhoneEvent, Status};
use super::conn::{self, CLOSE_GRACE, Outbox, REPORT_CAPACITY, Report, Writes};
use super::dns::hosts::HostsTable;
use super::dns::perform::Lookups;
use super::dns::{Resolver, ResolverConfig};
use super::events::EventQueue;
use super::tls::ClientTls;
use super::trace::{CommandRecord, CommandResult, Payload, Recorder};
use crate::config::Config;
use crate::dns::{AnyAnswer, LookupFailed, Query};
use crate::engine::{CommandError, Core, Input, Output};
use crate::ids::{CallId, ConnId};
use crate::time::Instant;
use async_channel::{Receiver, Sender};
use async_executor::{Executor, Task};
use async_io::Timer;
use futures_lite::future::{self, or};
use futures_rustls::TlsConnector;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Inputs handled in a row without letting the connection tasks run; then the driver
/// yields once to the executor so that writers (pings) and readers make progress.
const BATCH: u32 = 32;

/// One connection the core asked for and has not closed.
struct Slot {
    outbox: Arc<Outbox>,
    /// Wakes the writer; dropping it closes the connection.
    more: Sender<()>,
    task: Task<()>,
    up: bool,
    /// The host the connection was asked for, whose name the certificate was checked
    /// against.
    host: String,
    /// The chain the server presented once up, to check again on a reload.
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Bytes of `Transmit`s that did not fit in the queue: never written, counted in the
    /// backlog the core sees so that it closes the connection.
    refused: usize,
    /// The backlog last reported to the core.
    reported: usize,
}

impl Slot {
    fn backlog(&self) -> usize {
        self.outbox.unsent() + self.refused
    }
}

/// What woke the driver.
enum Wake {
    Command(Command),
    CommandsClosed,
    Report(ConnId, Report),
    Resolved(Query, Result<AnyAnswer, LookupFailed>),
    Timer,
    /// A writer wrote, or the application made room for outcome events: nothing to do
    /// but look again.
    Look,
}

/// A phone's event loop. Obtain one from [`super::Phone::new`] and poll [`Driver::run`]
/// on any executor (or [`super::on_reactor::block_on`]); it finishes after the phone shut down.
pub struct Driver {
    core: Core,
    clock: Clock,
    tls: ClientTls,
    connector: TlsConnector,
    commands: Receiver<Command>,
    shutdown: Arc<AtomicBool>,
    events: Arc<EventQueue>,
    reports_tx: Sender<(ConnId, Report)>,
    reports: Receiver<(ConnId, Report)>,
    /// Performs the lookups the core asks for (`/etc/hosts`, then DNS); made at the first
    /// one, so that a phone whose servers are addresses reads neither `/etc/hosts` nor
    /// `/etc/resolv.conf` and holds nothing of them (a fleet of 10,000 phones in one
    /// process paid both at start).
    lookups: Option<Lookups>,
    resolved_tx: Sender<(Query, Result<AnyAnswer, LookupFailed>)>,
    resolved: Receiver<(Query, Result<AnyAnswer, LookupFailed>)>,
    progress_tx: Sender<()>,
    progress: Receiver<()>,
    slots: BTreeMap<ConnId, Slot>,
    closing: Vec<Task<()>>,
    commands_open: bool,
    /// Which of commands and reports is looked at first on the next wait (alternates).
    reports_first: bool,
    /// Inputs handled since the driver last yielded to the connection tasks.
    in_a_row: u32,
    /// Writes the trace, when the phone records one.
    recorder: Option<Recorder>,
}

impl Driver {
    pub(crate) fn new(
        core: Core,
        clock: Clock,
        tls: ClientTls,
        commands: Receiver<Command>,
        shutdown: Arc<AtomicBool>,
        events: Arc<EventQueue>,
        recorder: Option<Recorder>,
    ) -> Driver {
        let (reports_tx, reports) = async_channel::bounded(REPORT_CAPACITY);
        let (resolved_tx, resolved) = async_channel::bounded(RESOLVED_CAPACITY);
        let (progress_tx, progress) = async_channel::bounded(1);
        Driver {
            core,
            clock,
            connector: TlsConnector::from(tls.rustls_config()),
            tls,
            commands,
            shutdown,
            events,
            reports_tx,
            reports,
            lookups: None,
            resolved_tx,
            resolved,
            progress_tx,
            progress,
            slots: BTreeMap::new(),
            closing: Vec::new(),
            commands_open: true,
            reports_first: true,
            in_a_row: 0,
            recorder,
        }
    }

    /// Runs the phone until it has shut down (after a shutdown command, or once every
    /// handle to it was dropped) and every connection is closed.
    pub async fn run(mut self) {
        let ex = Executor::new();
        ex.run(self.run_on(&ex)).await;
    }

    async fn run_on(&mut self, ex: &Executor<'static>) {
        self.start_core();
        loop {
            self.drain(ex);
            self.report_backlogs(ex);
            if let Some(r) = self.recorder.as_mut() {
                r.flush();
            }
            if self.core.is_closed() {
                break;
            }
            let wake = self.wait().await;
            match wake {
                Wake::Command(Command::ReplaceTls { tls, reply }) => self.replace_tls(ex, *tls, &reply),
                Wake::Command(c) => self.command(c),
                Wake::CommandsClosed => {
                    tracing::info!("every phone handle was dropped: shutting down");
                    self.commands_open = false;
                    self.shutdown_core();
                }
                Wake::Report(conn, r) => self.report(conn, r),
                Wake::Resolved(query, outcome) => {
                    let now = self.clock.now();
                    self.input(now, Input::Resolved { query, outcome });
                }
                Wake::Timer => self.timeout(),
                Wake::Look => {}
            }
            if self.shutdown.swap(false, Ordering::SeqCst) {
                // Every mutation is drained before the next, this one included.
                self.drain(ex);
                self.shutdown_core();
            }
        }
        // Whatever the core closed last gets a moment to send close_notify.
        let slots = std::mem::take(&mut self.slots);
        let pending: Vec<Task<()>> = self.closing.drain(..).chain(slots.into_values().map(|s| s.task)).collect();
        or(
            async {
                for t in pending {
                    t.await;
                }
            },
            async {
                Timer::after(CLOSE_GRACE).await;
            },
        )
        .await;
        self.events.close();
    }

    /// Tells the core every connection's backlog that changed since it last heard (the
    /// writers count down, `Transmit`s count up), each followed by draining its outputs.
    fn report_backlogs(&mut self, ex: &Executor<'static>) {
        while let Some((conn, bytes)) = self.slots.iter_mut().find_map(|(id, s)| {
            let now = s.backlog();
            (s.up && now != s.reported).then(|| {
                s.reported = now;
                (*id, now)
            })
        }) {
            tracing::trace!(%conn, bytes, "write backlog");
            self.input(self.clock.now(), Input::WriteBacklog { conn, bytes });
            self.drain(ex);
        }
    }

    /// The next input. Fair: a deadline that has passed comes first (the core leaves none
    /// behind after `handle_timeout`, so it cannot starve the rest); commands and reports
    /// take turns at being looked at first, so neither a flood of bytes from the server
    /// nor a flood of commands starves the other; and after [`BATCH`] inputs in a row the
    /// driver yields once so the connection tasks can write and read.
    async fn wait(&mut self) -> Wake {
        self.in_a_row += 1;
        if self.in_a_row >= BATCH {
            self.in_a_row = 0;
            future::yield_now().await;
        }
        let deadline = self.core.poll_timeout();
        if deadline.is_some_and(|t| t <= self.clock.now()) {
            return Wake::Timer;
        }
        let timer = async {
            match deadline.and_then(|t| self.clock.deadline(t)) {
                Some(at) => Timer::at(at).await,
                None => Timer::never().await,
            };
            Wake::Timer
        };
        // While the application leaves too many outcomes unread, the connections wait
        // (their readers stop reading); its taking one wakes the driver.
        let paused = self.events.outcomes_full();
        let reports = async {
            if paused {
                self.events.room().await;
                return Wake::Look;
            }
            let report = async {
                match self.reports.recv().await {
                    Ok((conn, r)) => Wake::Report(conn, r),
                    // The driver holds a sender: the channel cannot close.
                    Err(_) => future::pending().await,
                }
            };
            let resolved = async {
                match self.resolved.recv().await {
                    Ok((query, outcome)) => Wake::Resolved(query, outcome),
                    Err(_) => future::pending().await,
                }
            };
            or(report, resolved).await
        };
        let commands = async {
            if !self.commands_open {
                return future::pending().await;
            }
            match self.commands.recv().await {
                Ok(c) => Wake::Command(c),
                Err(_) => Wake::CommandsClosed,
            }
        };
        let progress = async {
            let _ = self.progress.recv().await;
            Wake::Look
        };
        self.reports_first = !self.reports_first;
        let inputs =
            async { if self.reports_first { or(reports, commands).await } else { or(commands, reports).await } };
        or(inputs, or(timer, progress)).await
    }

    /// Performs every output the core queued.
    fn drain(&mut self, ex: &Executor<'static>) {
        self.closing.retain(|t| !t.is_finished());
        while let Some(out) = self.core.poll_output() {
            if let Some(r) = self.recorder.as_mut() {
                r.output(&out);
            }
            match out {
                Output::Connect { conn, addr, server_name } => {
                    tracing::info!(%conn, %addr, %server_name, "connecting");
                    let outbox = Arc::new(Outbox::default());
                    let (more, more_rx) = async_channel::bounded(1);
                    let writes = Writes { outbox: outbox.clone(), more: more_rx, progress: self.progress_tx.clone() };
                    let host = server_name.clone();
                    let task = ex.spawn(conn::run(
                        conn,
                        addr,
                        server_name,
                        self.connector.clone(),
                        writes,
                        self.reports_tx.clone(),
                    ));
                    let slot = Slot { outbox, more, task, up: false, host, chain: Vec::new(), refused: 0, reported: 0 };
                    self.slots.insert(conn, slot);
                }
                Output::Transmit { conn, data } => match self.slots.get_mut(&conn) {
                    Some(slot) => {
                        let limit = self.core.config().max_write_backlog;
                        if slot.backlog() + data.len() > limit {
                            // The queue is full: the core hears of a backlog beyond its limit
                            // (report_backlogs) and closes the connection. Never silently.
                            tracing::warn!(%conn, bytes = data.len(), backlog = slot.backlog(), "write queue full");
                            slot.refused += data.len();
                        } else {
                            tracing::trace!(%conn, bytes = data.len(), "transmit");
                            #[cfg(feature = "timing")]
                            super::timing::stamp(super::timing::Point::Transmit);
                            slot.outbox.push(&data);
                            let _ = slot.more.try_send(());
                        }
                    }
                    None => tracing::debug!(%conn, "transmit on a connection that is gone: dropped"),
                },
                Output::Resolve { query } => {
                    tracing::debug!(%query, "looking up");
                    let lookups = self.lookups.get_or_insert_with(|| lookups_for(self.core.config())).clone();
                    let resolved = self.resolved_tx.clone();
                    ex.spawn(async move {
                        let outcome = lookups.perform(&query).await;
                        if let Err(failed) = &outcome {
                            tracing::warn!(%query, %failed, "DNS lookup failed");
                        }
                        // A send error only means the driver is going away.
                        let _ = resolved.send((query, outcome)).await;
                    })
                    .detach();
                }
                Output::Close { conn } => {
                    if let Some(slot) = self.slots.remove(&conn) {
                        tracing::debug!(%conn, "closing");
                        if slot.up {
                            // Closing the writer's signal lets the task flush and close.
                            slot.more.close();
                            self.closing.push(slot.task);
                        }
                        // Still connecting: dropping the task cancels the attempt.
                    }
                }
                Output::Event(event) => {
                    // Before the push, which may wake the application.
                    #[cfg(feature = "timing")]
                    if super::events::is_outcome(&event) {
                        super::timing::stamp(super::timing::Point::Event);
                    }
                    self.events.push(PhoneEvent { at: self.clock.now(), event });
                }
            }
        }
    }

    fn report(&mut self, conn: ConnId, r: Report) {
        #[cfg(feature = "timing")]
        super::timing::stamp(super::timing::Point::Report);
        let now = self.clock.now();
        if !self.slots.contains_key(&conn) {
            return;
        }
        match r {
            Report::Connected { local, tls, chain } => {
                tracing::info!(%conn, %local, %tls, "TLS connection up, server certificate verified");
                if let Some(s) = self.slots.get_mut(&conn) {
                    s.up = true;
                    s.chain = chain;
                }
                self.input(now, Input::Connected { conn, local });
            }
            Report::ConnectFailed(reason) => {
                tracing::warn!(%conn, %reason, "connection failed");
                self.slots.remove(&conn);
                self.input(now, Input::ConnectFailed { conn, reason });
            }
            Report::Received(data) => {
                tracing::trace!(%conn, bytes = data.len(), "received");
                self.input(now, Input::Received { conn, data: &data });
            }
            Report::Closed(reason) => {
                tracing::warn!(%conn, %reason, "connection closed");
                self.slots.remove(&conn);
                self.input(now, Input::Closed { conn, reason });
            }
        }
    }

    fn command(&mut self, c: Command) {
        #[cfg(feature = "timing")]
        super::timing::stamp(super::timing::Point::Command);
        let now = self.clock.now();
        let recording = self.recorder.is_some();
        match c {
            Command::PlaceCall { account, target, sdp, reply } => {
                let record = recording.then(|| CommandRecord::PlaceCall {
                    account: account.0,
                    target: target.clone(),
                    sdp: Payload::of(&sdp),
                });
                let r = self.core.place_call(now, account, &target, sdp);
                #[cfg(feature = "timing")]
                super::timing::stamp(super::timing::Point::Core);
                self.record_command(now, record, &r, |call| Some(*call));
                let _ = reply.try_send(r);
            }
            Command::Answer { call, sdp, reply } => {
                let record = recording.then(|| CommandRecord::Answer { call: call.0, sdp: Payload::of(&sdp) });
                let r = self.core.answer(now, call, sdp);
                self.record_command(now, record, &r, |()| None);
                let _ = reply.try_send(r);
            }
            Command::Reject { call, status, reply } => {
                let r = self.core.reject(now, call, status);
                self.record_command(now, Some(CommandRecord::Reject { call: call.0, status }), &r, |()| None);
                let _ = reply.try_send(r);
            }
            Command::HangUp { call, reply } => {
                let r = self.core.hang_up(now, call);
                self.record_command(now, Some(CommandRecord::HangUp { call: call.0 }), &r, |()| None);
                let _ = reply.try_send(r);
            }
            Command::Status { reply } => {
                let trace_error = self.recorder.as_ref().and_then(|r| r.error().map(str::to_owned));
                let _ = reply.try_send(Status::of(&self.core, now, self.events.dropped(), trace_error));
            }
            Command::Reconfigure { config, reply } => {
                let values = recording.then(|| crate::engine::tunable_values(&config));
                let r = self.core.reconfigure(now, *config);
                let record = values.map(|values| CommandRecord::Reconfigure {
                    values: values.into_iter().map(|(name, value)| (name.to_owned(), value)).collect(),
                    restart: r.as_ref().err().map(|e| e.changed.clone()).unwrap_or_default(),
                });
                self.record_command(now, record, &r, |()| None);
                let _ = reply.try_send(r);
            }
            // The flag that came with it is what counts (see `run_on`).
            Command::Shutdown => {}
            // Taken in `run_on`, which can drain between the inputs it makes.
            Command::ReplaceTls { reply, .. } => {
                let _ = reply.try_send(0);
            }
        }
    }

    /// New TLS settings (reloaded certificate files): the next connections use them, and
    /// every established connection whose server they would refuse now is closed, the
    /// core hearing of it as of any certificate failure. Replies with how many closed.
    fn replace_tls(&mut self, ex: &Executor<'static>, tls: ClientTls, reply: &Sender<usize>) {
        let refused: Vec<(ConnId, crate::engine::TransportError)> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.up)
            .filter_map(|(conn, slot)| tls.recheck(&slot.host, &slot.chain).err().map(|why| (*conn, why)))
            .collect();
        self.connector = TlsConnector::from(tls.rustls_config());
        self.tls = tls;
        tracing::info!(closing = refused.len(), "certificates reloaded: new connections use them");
        for (conn, reason) in &refused {
            tracing::warn!(%conn, %reason, "the reloaded certificates refuse this connection's server: closing it");
            if let Some(slot) = self.slots.remove(conn) {
                slot.more.close();
                self.closing.push(slot.task);
            }
            self.input(self.clock.now(), Input::Closed { conn: *conn, reason: reason.clone() });
            self.drain(ex);
        }
        let _ = reply.try_send(refused.len());
    }
}

/// The core calls that are recorded when the phone records a trace.
impl Driver {
    /// `Core::start`, now.
    fn start_core(&mut self) {
        let now = self.clock.now();
        if let Some(r) = self.recorder.as_mut() {
            r.start(now);
        }
        self.core.start(now);
    }

    /// `Core::handle_timeout`, now.
    fn timeout(&mut self) {
        let now = self.clock.now();
        if let Some(r) = self.recorder.as_mut() {
            r.timeout(now);
        }
        self.core.handle_timeout(now);
    }

    /// `Core::handle_input`.
    fn input(&mut self, now: Instant, input: Input<'_>) {
        if let Some(r) = self.recorder.as_mut() {
            r.input(now, &input);
        }
        self.core.handle_input(now, input);
        #[cfg(feature = "timing")]
        super::timing::stamp(super::timing::Point::Core);
    }

    /// `Core::shutdown`, now.
    fn shutdown_core(&mut self) {
        let now = self.clock.now();
        self.core.shutdown(now);
        self.record_command(now, Some(CommandRecord::Shutdown), &Ok::<(), CommandError>(()), |()| None);
    }

    /// A command given to the core and its result (`record` is `None` when the phone
    /// does not record).
    fn record_command<T, E: std::fmt::Debug>(
        &mut self,
        now: Instant,
        record: Option<CommandRecord>,
        result: &Result<T, E>,
        call: impl FnOnce(&T) -> Option<CallId>,
    ) {
        if let (Some(r), Some(command)) = (self.recorder.as_mut(), record) {
            r.command(now, command, CommandResult::of(result, call));
        }
    }
}

/// Answers of lookups waiting for the driver. A bounded channel allocates all its slots
/// when it is made, for the phone's life; the core has a few lookups out at most, and a
/// lookup's task waits when the channel is full, so a small bound loses nothing.
const RESOLVED_CAPACITY: usize = 4;

/// How the phone performs the core's lookups: `/etc/hosts` first (and `localhost`), then
/// the DNS servers of `sip persistent tls dns servers`, or the system's
/// (`/etc/resolv.conf`, or a server on this machine as the C library falls back to).
fn lookups_for(config: &Config) -> Lookups {
    let resolver = if config.dns_servers.is_empty() {
        let (system, problem) = ResolverConfig::system_or_local();
        if let Some(problem) = problem {
            tracing::warn!(%problem, "asking the DNS server on this machine (127.0.0.1:53)");
        }
        system
    } else {
        ResolverConfig::with_servers(config.dns_servers.clone())
    };
    Lookups::new(HostsTable::system(), Some(Resolver::new(resolver)))
}
