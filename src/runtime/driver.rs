//! The driver: owns the [`Core`], feeds it every input with the current time, drains its
//! outputs after each one and performs them (connection tasks, writes, closes, events),
//! then sleeps until the core's next deadline or the next input. It adds no policy.
//!
//! Connection tasks run on an `async_executor::Executor` that lives inside the driver
//! future, so the library never picks a global executor: whoever polls [`Driver::run`]
//! runs the phone.

use super::clock::Clock;
use super::command::{Command, PhoneEvent, Status};
use super::conn::{self, CLOSE_GRACE, Report};
use crate::engine::{Core, Input, Output};
use crate::ids::ConnId;
use async_channel::{Receiver, Sender};
use async_executor::{Executor, Task};
use async_io::Timer;
use futures_lite::future::{self, or};
use futures_rustls::TlsConnector;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One connection the core asked for and has not closed.
struct Slot {
    writes: Sender<Vec<u8>>,
    task: Task<()>,
    up: bool,
}

/// What woke the driver.
enum Wake {
    Command(Command),
    CommandsClosed,
    Report(ConnId, Report),
    Timer,
}

/// A phone's event loop. Obtain one from [`super::Phone::new`] and poll [`Driver::run`]
/// on any executor (or `async_io::block_on`); it finishes after the phone shut down.
pub struct Driver {
    core: Core,
    clock: Clock,
    connector: TlsConnector,
    commands: Receiver<Command>,
    events: Sender<PhoneEvent>,
    reports_tx: Sender<(ConnId, Report)>,
    reports: Receiver<(ConnId, Report)>,
    slots: BTreeMap<ConnId, Slot>,
    closing: Vec<Task<()>>,
    commands_open: bool,
}

impl Driver {
    pub(crate) fn new(
        core: Core,
        clock: Clock,
        tls: Arc<rustls::ClientConfig>,
        commands: Receiver<Command>,
        events: Sender<PhoneEvent>,
    ) -> Driver {
        let (reports_tx, reports) = async_channel::unbounded();
        Driver {
            core,
            clock,
            connector: TlsConnector::from(tls),
            commands,
            events,
            reports_tx,
            reports,
            slots: BTreeMap::new(),
            closing: Vec::new(),
            commands_open: true,
        }
    }

    /// Runs the phone until it has shut down (after a shutdown command, or once every
    /// handle to it was dropped) and every connection is closed.
    pub async fn run(mut self) {
        let ex = Executor::new();
        ex.run(self.run_on(&ex)).await;
    }

    async fn run_on(&mut self, ex: &Executor<'static>) {
        self.core.start(self.clock.now());
        loop {
            self.drain(ex);
            if self.core.is_closed() {
                break;
            }
            match self.wait().await {
                Wake::Command(c) => self.command(c),
                Wake::CommandsClosed => {
                    tracing::info!("every phone handle was dropped: shutting down");
                    self.commands_open = false;
                    self.core.shutdown(self.clock.now());
                }
                Wake::Report(conn, r) => self.report(conn, r),
                Wake::Timer => self.core.handle_timeout(self.clock.now()),
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

    async fn wait(&mut self) -> Wake {
        let timer = async {
            match self.core.poll_timeout().and_then(|t| self.clock.deadline(t)) {
                Some(at) => Timer::at(at).await,
                None => Timer::never().await,
            };
            Wake::Timer
        };
        let reports = async {
            match self.reports.recv().await {
                Ok((conn, r)) => Wake::Report(conn, r),
                // The driver holds a sender: the channel cannot close.
                Err(_) => future::pending().await,
            }
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
        or(reports, or(commands, timer)).await
    }

    /// Performs every output the core queued.
    fn drain(&mut self, ex: &Executor<'static>) {
        self.closing.retain(|t| !t.is_finished());
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Connect { conn, target } => {
                    tracing::info!(%conn, host = %target.host, port = target.port, "connecting");
                    let (writes, queue) = async_channel::unbounded();
                    let task =
                        ex.spawn(conn::run(conn, target, self.connector.clone(), queue, self.reports_tx.clone()));
                    self.slots.insert(conn, Slot { writes, task, up: false });
                }
                Output::Transmit { conn, data } => match self.slots.get(&conn) {
                    Some(slot) => {
                        tracing::trace!(%conn, bytes = data.len(), "transmit");
                        let _ = slot.writes.try_send(data);
                    }
                    None => tracing::debug!(%conn, "transmit on a connection that is gone: dropped"),
                },
                Output::Close { conn } => {
                    if let Some(slot) = self.slots.remove(&conn) {
                        tracing::debug!(%conn, "closing");
                        if slot.up {
                            // Dropping the queue's sender lets the task flush and close.
                            drop(slot.writes);
                            self.closing.push(slot.task);
                        }
                        // Still connecting: dropping the task cancels the attempt.
                    }
                }
                Output::Event(event) => {
                    let _ = self.events.try_send(PhoneEvent { at: self.clock.now(), event });
                }
            }
        }
    }

    fn report(&mut self, conn: ConnId, r: Report) {
        let now = self.clock.now();
        if !self.slots.contains_key(&conn) {
            return;
        }
        match r {
            Report::Connected { local, tls } => {
                tracing::info!(%conn, %local, %tls, "TLS connection up, server certificate verified");
                if let Some(s) = self.slots.get_mut(&conn) {
                    s.up = true;
                }
                self.core.handle_input(now, Input::Connected { conn, local });
            }
            Report::ConnectFailed(reason) => {
                tracing::warn!(%conn, %reason, "connection failed");
                self.slots.remove(&conn);
                self.core.handle_input(now, Input::ConnectFailed { conn, reason });
            }
            Report::Received(data) => {
                tracing::trace!(%conn, bytes = data.len(), "received");
                self.core.handle_input(now, Input::Received { conn, data: &data });
            }
            Report::Closed(reason) => {
                tracing::warn!(%conn, %reason, "connection closed");
                self.slots.remove(&conn);
                self.core.handle_input(now, Input::Closed { conn, reason });
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = self.clock.now();
        match c {
            Command::PlaceCall { account, target, sdp, reply } => {
                let _ = reply.try_send(self.core.place_call(now, account, &target, sdp));
            }
            Command::Answer { call, sdp, reply } => {
                let _ = reply.try_send(self.core.answer(now, call, sdp));
            }
            Command::Reject { call, status, reply } => {
                let _ = reply.try_send(self.core.reject(now, call, status));
            }
            Command::HangUp { call, reply } => {
                let _ = reply.try_send(self.core.hang_up(now, call));
            }
            Command::Status { reply } => {
                let _ = reply.try_send(Status::of(&self.core, now));
            }
            Command::Shutdown => self.core.shutdown(now),
        }
    }
}
