//! The embedding API: start a phone from a [`Config`], receive its events, place, answer
//! and hang up calls, and shut it down (de-registering every account first); optionally
//! recording a trace of everything the core did ([`PhoneOptions`]).

use super::certs::CertFileError;
use super::clock::Clock;
use super::command::{Command, PhoneEvent, Status};
use super::driver::Driver;
use super::events::EventQueue;
use super::on_reactor;
use super::tls::ClientTls;
use super::trace::{Header, Recorder};
use crate::config::{Config, ConfigError};
use crate::engine::{CommandError, Core, NeedsRestart};
// Only the documentation names the events; the values pass through as `PhoneEvent`s.
#[cfg(doc)]
use crate::engine::Event;
use crate::ids::{AccountId, CallId};
use async_channel::Sender;
use async_io::Timer;
use futures_lite::future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

/// Why a phone could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The configuration is not usable.
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<ConfigError>),
    /// A certificate file is not usable.
    #[error("certificate file: {0}")]
    Certificate(#[from] CertFileError),
    /// The phone's thread could not be started.
    #[error("cannot start the phone thread: {0}")]
    Thread(String),
    /// The trace file asked for ([`PhoneOptions::record`]) could not be created.
    #[error("cannot record to {}: {error}", file.display())]
    Record {
        /// The trace file.
        file: PathBuf,
        /// Why (it already exists, its directory is missing, …).
        error: String,
    },
}

/// How to run a phone, beyond its [`Config`]. More options may come: build it with
/// [`PhoneOptions::default`] or [`PhoneOptions::record`] and set fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhoneOptions {
    /// Record every input given to the core and every output it produced, with the
    /// core's time, to this file (JSON lines, `docs/record-replay.md`), for
    /// `sip-ptls replay`. The file must not exist yet; it is created readable by its
    /// owner only, since it holds the seed and the digest responses (never a password or
    /// key: the configuration is not in it). A write that fails later (a full disk)
    /// stops the recording, not the phone: it is logged once and shown in
    /// [`Status::trace_error`].
    pub record: Option<PathBuf>,
}

impl PhoneOptions {
    /// The options with a trace recorded to `file`.
    pub fn record(file: impl Into<PathBuf>) -> PhoneOptions {
        PhoneOptions { record: Some(file.into()) }
    }
}

/// Sends commands to a running phone. Cheap to clone; usable from any thread and any
/// executor. When every handle is dropped the phone shuts down.
#[derive(Clone, Debug)]
pub struct PhoneHandle {
    commands: Sender<Command>,
    /// Set by [`PhoneHandle::shutdown`], which must not wait for room in the command
    /// channel: the driver looks at it after every command.
    shutdown: Arc<AtomicBool>,
}

/// Commands that may wait for the driver; a handle's command waits for room beyond it.
pub const COMMAND_CAPACITY: usize = 64;

impl PhoneHandle {
    async fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = async_channel::bounded(1);
        self.commands.send(make(tx)).await.ok()?;
        rx.recv().await.ok()
    }

    /// Places a call from `account` to `target` (a user name, `user@host` or a URI) with
    /// an optional SDP offer; its outcome arrives as [`Event::CallOutcome`].
    pub async fn place_call(&self, account: AccountId, target: &str, sdp: Vec<u8>) -> Result<CallId, CommandError> {
        let target = target.to_owned();
        self.ask(|reply| Command::PlaceCall { account, target, sdp, reply })
            .await
            .unwrap_or(Err(CommandError::NotRunning))
    }

    /// Answers an incoming call (see [`Event::IncomingCall`]).
    pub async fn answer(&self, call: CallId, sdp: Vec<u8>) -> Result<(), CommandError> {
        self.ask(|reply| Command::Answer { call, sdp, reply }).await.unwrap_or(Err(CommandError::NotRunning))
    }

    /// Rejects an incoming call with a 4xx–6xx status.
    pub async fn reject(&self, call: CallId, status: u16) -> Result<(), CommandError> {
        self.ask(|reply| Command::Reject { call, status, reply }).await.unwrap_or(Err(CommandError::NotRunning))
    }

    /// Hangs up, cancels or rejects a call, whatever its state.
    pub async fn hang_up(&self, call: CallId) -> Result<(), CommandError> {
        self.ask(|reply| Command::HangUp { call, reply }).await.unwrap_or(Err(CommandError::NotRunning))
    }

    /// The phone's current state, or `None` once it has stopped.
    pub async fn status(&self) -> Option<Status> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// Gives the running phone a new configuration (`Core::reconfigure`): taken at once
    /// when only timers, intervals and limits differ, refused with what changed when it
    /// needs a new start (then nothing changed). `None` once the phone has stopped.
    pub async fn reconfigure(&self, config: Config) -> Option<Result<(), NeedsRestart>> {
        self.ask(|reply| Command::Reconfigure { config: Box::new(config), reply }).await
    }

    /// Reads the certificate files again (relative names from `base_dir`) and gives the
    /// running phone the result: new connections use it, and an established connection
    /// whose server it would now refuse (a CA no longer trusted, a revoked certificate)
    /// is closed, the phone going on as after any failed connection. Files that do not
    /// load change nothing: the error names the parameter and the file. The one path for
    /// every reload (SIGHUP, a changed file, the web interface's save). Returns how many
    /// connections closed; `Ok(None)` once the phone has stopped.
    ///
    /// # Errors
    ///
    /// A file is missing, unreadable or unusable, as at start-up.
    pub async fn reload_certificates(
        &self,
        files: &crate::config::CertificateFiles,
        mode: crate::config::TransportMode,
        base_dir: &Path,
    ) -> Result<Option<usize>, CertFileError> {
        let tls = ClientTls::load(files, mode, base_dir)?;
        Ok(self.ask(|reply| Command::ReplaceTls { tls: Box::new(tls), reply }).await)
    }

    /// [`PhoneHandle::reload_certificates`], blocking the calling thread.
    ///
    /// # Errors
    ///
    /// As [`PhoneHandle::reload_certificates`].
    pub fn reload_certificates_blocking(
        &self,
        files: &crate::config::CertificateFiles,
        mode: crate::config::TransportMode,
        base_dir: &Path,
    ) -> Result<Option<usize>, CertFileError> {
        future::block_on(self.reload_certificates(files, mode, base_dir))
    }

    /// Begins the orderly stop: calls end, every account de-registers, connections
    /// close, then [`Event::ShutdownComplete`] arrives and the event stream ends.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // A full channel is fine: the driver has commands to take and sees the flag then.
        let _ = self.commands.try_send(Command::Shutdown);
    }

    /// [`PhoneHandle::place_call`], blocking the calling thread.
    pub fn place_call_blocking(&self, account: AccountId, target: &str, sdp: Vec<u8>) -> Result<CallId, CommandError> {
        future::block_on(self.place_call(account, target, sdp))
    }

    /// [`PhoneHandle::answer`], blocking the calling thread.
    pub fn answer_blocking(&self, call: CallId, sdp: Vec<u8>) -> Result<(), CommandError> {
        future::block_on(self.answer(call, sdp))
    }

    /// [`PhoneHandle::reject`], blocking the calling thread.
    pub fn reject_blocking(&self, call: CallId, status: u16) -> Result<(), CommandError> {
        future::block_on(self.reject(call, status))
    }

    /// [`PhoneHandle::hang_up`], blocking the calling thread.
    pub fn hang_up_blocking(&self, call: CallId) -> Result<(), CommandError> {
        future::block_on(self.hang_up(call))
    }

    /// [`PhoneHandle::status`], blocking the calling thread.
    pub fn status_blocking(&self) -> Option<Status> {
        future::block_on(self.status())
    }

    /// [`PhoneHandle::reconfigure`], blocking the calling thread.
    pub fn reconfigure_blocking(&self, config: Config) -> Option<Result<(), NeedsRestart>> {
        future::block_on(self.reconfigure(config))
    }
}

/// The phone's events, in order. The stream ends after the phone shut down.
///
/// Bounded whether or not it is read (`docs/embedding.md`, "Bounds and backpressure"):
/// outcome events are never dropped; of the informational ones at most 256 wait, and
/// beyond that the oldest is dropped and counted in [`Status::dropped_events`].
#[derive(Clone, Debug)]
pub struct Events {
    queue: Arc<EventQueue>,
}

impl Events {
    /// The next event, or `None` once the phone has stopped.
    pub async fn next(&self) -> Option<PhoneEvent> {
        self.queue.pop().await
    }

    /// The next event, waiting at most `timeout`; `None` on timeout or once stopped.
    pub fn next_timeout(&self, timeout: std::time::Duration) -> Option<PhoneEvent> {
        // Parked, not `async_io::block_on`: see `Phone::spawn_with`.
        future::block_on(future::or(self.next(), async {
            Timer::after(timeout).await;
            None
        }))
    }

    /// An event already waiting, without blocking.
    pub fn try_next(&self) -> Option<PhoneEvent> {
        self.queue.try_pop()
    }
}

/// A phone: its handle and its events. Build one with [`Phone::new`] (you poll the
/// driver) or [`Phone::spawn`] (a thread of its own polls it).
#[derive(Debug)]
pub struct Phone {
    /// Sends commands.
    pub handle: PhoneHandle,
    /// Receives events.
    pub events: Events,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Phone {
    /// Checks `config` and the certificate files it names (relative names are resolved
    /// against `base_dir`, normally the directory of the configuration file), and returns
    /// the phone and its [`Driver`]. Nothing happens until the driver is polled.
    pub fn new(config: Config, base_dir: &Path) -> Result<(Phone, Driver), StartError> {
        Phone::new_with(config, base_dir, &PhoneOptions::default())
    }

    /// [`Phone::new`] with [`PhoneOptions`].
    pub fn new_with(config: Config, base_dir: &Path, options: &PhoneOptions) -> Result<(Phone, Driver), StartError> {
        config.validate().map_err(StartError::Config)?;
        let tls = ClientTls::load(&config.certificates, config.mode, base_dir)?;
        Phone::with_tls_options(config, tls, options)
    }

    /// Like [`Phone::new`] with TLS settings already built.
    pub fn with_tls(config: Config, tls: ClientTls) -> (Phone, Driver) {
        Phone::build(config, tls)
    }

    /// [`Phone::with_tls`] with [`PhoneOptions`]; fails only when the trace file cannot
    /// be created.
    pub fn with_tls_options(
        config: Config,
        tls: ClientTls,
        options: &PhoneOptions,
    ) -> Result<(Phone, Driver), StartError> {
        let Some(file) = &options.record else { return Ok(Phone::build(config, tls)) };
        let clock = Clock::start();
        let created = clock.now();
        // The wall clock of the core's zero, to line the trace up with the servers' logs.
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok())
            .map(|ms| ms.saturating_sub(created.as_millis()));
        let header = Header::new(&config, created, unix_ms);
        let recorder = Recorder::create(file, header)
            .map_err(|e| StartError::Record { file: file.clone(), error: e.to_string() })?;
        Ok(Phone::build_on(clock, created, config, tls, Some(recorder)))
    }

    fn build(config: Config, tls: ClientTls) -> (Phone, Driver) {
        let clock = Clock::start();
        Phone::build_on(clock, clock.now(), config, tls, None)
    }

    /// The phone and its driver, whose core is created at `created` on `clock`.
    fn build_on(
        clock: Clock,
        created: crate::time::Instant,
        config: Config,
        tls: ClientTls,
        recorder: Option<Recorder>,
    ) -> (Phone, Driver) {
        let core = Core::new(config, created);
        let (commands_tx, commands) = async_channel::bounded(COMMAND_CAPACITY);
        let shutdown = Arc::new(AtomicBool::new(false));
        let events = Arc::new(EventQueue::default());
        let driver = Driver::new(core, clock, tls, commands, shutdown.clone(), events.clone(), recorder);
        let handle = PhoneHandle { commands: commands_tx, shutdown };
        (Phone { handle, events: Events { queue: events }, thread: None }, driver)
    }

    /// [`Phone::new`], with the driver run on a thread of its own (`sip-ptls-phone`).
    pub fn spawn(config: Config, base_dir: &Path) -> Result<Phone, StartError> {
        Phone::spawn_with(config, base_dir, &PhoneOptions::default())
    }

    /// [`Phone::spawn`] with [`PhoneOptions`].
    pub fn spawn_with(config: Config, base_dir: &Path, options: &PhoneOptions) -> Result<Phone, StartError> {
        let (mut phone, driver) = Phone::new_with(config, base_dir, options)?;
        let thread = std::thread::Builder::new()
            .name("sip-ptls-phone".into())
            // Not `async_io::block_on`: while any thread is inside it, the reactor thread
            // polls with a back-off of about ten short sleeps after each I/O event. Here
            // the reactor thread polls the driver itself when a socket or a deadline wakes
            // it, so an idle phone wakes once per event (docs/benchmarks.md, "Idle cost").
            .spawn(move || on_reactor::block_on(driver.run()))
            .map_err(|e| StartError::Thread(e.to_string()))?;
        phone.thread = Some(thread);
        Ok(phone)
    }

    /// Shuts down, returns every event until the end (at most `timeout`), and joins the
    /// phone's thread if it has one. The last event is [`Event::ShutdownComplete`] when
    /// the shutdown finished in time.
    pub fn shutdown(mut self, timeout: std::time::Duration) -> Vec<PhoneEvent> {
        self.handle.shutdown();
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(e) = self.events.next_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            seen.push(e);
        }
        if let Some(t) = self.thread.take()
            && self.events.queue.is_closed()
        {
            let _ = t.join();
        }
        seen
    }
}
