//! An embedded TLS SIP registrar and proxy for the demo, the runtime tests and the
//! benchmarks: real SIP over real TLS sockets on loopback.
//!
//! It imitates what a Kamailio set up as a persistent-TLS registrar does (see
//! `kamailio-notes.md`): digest authentication (401 for REGISTER, 407 for INVITE), CRLF
//! pongs, bindings kept per connection and dropped when it closes, INVITEs routed over the
//! callee's own connection with a Record-Route, in-dialog requests routed by their
//! Request-URI, and switches to misbehave (`kill`, `reset`, `freeze`). With
//! [`RegistrarConfig::answer_invites`] it answers INVITEs itself instead of routing them,
//! the floor against which the call-setup benchmark measures a phone.
//!
//! The registrar runs on its own threads, each with its own `async_io::block_on` loop (one
//! accepting, and a pool of one worker per CPU running a task per connection), so it never
//! shares an event loop with the phone under test. Its SIP state lives behind one mutex; connections exchange messages through
//! channels.

mod bindings;
mod config;
mod connection;
mod error;
pub mod lab;
pub mod pki;
mod proxy;
mod server;
mod stats;
mod test_dir;

pub use bindings::Binding;
pub use config::RegistrarConfig;
pub use error::RegistrarError;
pub use pki::{CertKey, TestPki};
pub use stats::Stats;
pub use test_dir::{Keep, PemFiles, TestDir};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// State shared by the handle and the registrar's threads.
pub(crate) struct Shared {
    /// The TLS server configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// Answer CRLFCRLF with CRLF.
    pub answer_pings: bool,
    /// What was seen.
    pub counters: stats::Counters,
    /// Set by [`Registrar::freeze`]: nothing is read, answered or handshaken.
    pub frozen: AtomicBool,
    /// Number of the next accepted connection.
    pub next_conn: AtomicU64,
    /// SIP state: bindings, transactions, nonces, connections' outboxes, the log.
    pub state: Mutex<proxy::State>,
    /// Runs the connection tasks.
    pub pool: server::Pool,
}

impl Shared {
    /// The SIP state; a poisoned lock is taken over (the state stays consistent per call).
    pub fn state(&self) -> MutexGuard<'_, proxy::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running registrar. Dropping it stops it and closes every connection.
pub struct Registrar {
    shared: Arc<Shared>,
    addr: SocketAddr,
    listener: Mutex<Option<server::Listening>>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// How long `kill` and `reset` wait for the connections to be closed.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

impl Registrar {
    /// Binds the listening socket, starts the accept thread and returns once listening.
    pub fn start(config: RegistrarConfig) -> Result<Registrar, RegistrarError> {
        if !config.bind.ip().is_loopback() {
            return Err(RegistrarError::NotLoopback(config.bind));
        }
        let tls = config::server_config(&config)?;
        let (listening, addr) = server::listen(config.bind)?;
        let shared = Arc::new(Shared {
            tls,
            answer_pings: config.answer_pings,
            counters: stats::Counters::default(),
            frozen: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            state: Mutex::new(proxy::State::new(&config, addr)),
            pool: server::Pool::start()?,
        });
        let listening = listening.run(shared.clone())?;
        Ok(Registrar { shared, addr, listener: Mutex::new(Some(listening)) })
    }

    /// The address it listens on (the same after `restore`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Current (unexpired) bindings, oldest first.
    pub fn bindings(&self) -> Vec<Binding> {
        self.shared.state().bindings.list(Instant::now())
    }

    /// One line per SIP request received, in order:
    /// `conn=N METHOD request-uri | Contact: value` (`-` when there is no Contact).
    pub fn log(&self) -> Vec<String> {
        self.shared.state().log.clone()
    }

    fn listener(&self) -> MutexGuard<'_, Option<server::Listening>> {
        self.listener.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close_all(&self, how: connection::Command) {
        if let Some(l) = self.listener().take() {
            l.stop();
        }
        let outboxes: Vec<_> = self.shared.state().conns.values().cloned().collect();
        for tx in outboxes {
            let _ = tx.try_send(how.clone());
        }
        let deadline = Instant::now() + CLOSE_WAIT;
        while self.shared.counters.open.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Closes every connection (TLS close_notify, then FIN) and stops listening: new
    /// connects are refused until [`Registrar::restore`]. Returns once they are closed.
    pub fn kill(&self) {
        self.close_all(connection::Command::Close);
    }

    /// Like [`Registrar::kill`] but abrupt: no TLS close_notify. A true TCP RST needs
    /// `SO_LINGER 0`, which std exposes only unstably and which would otherwise need unsafe
    /// code or another dependency, so the peer sees a FIN without close_notify (rustls
    /// reports it as an unexpected EOF).
    pub fn reset(&self) {
        self.close_all(connection::Command::Reset);
    }

    /// Keeps every socket open but answers nothing: no pongs, no SIP, and new TLS
    /// handshakes do not complete (the kernel still accepts TCP connections).
    pub fn freeze(&self) {
        self.shared.frozen.store(true, Ordering::SeqCst);
    }

    /// Answers again, including whatever arrived while frozen.
    pub fn thaw(&self) {
        self.shared.frozen.store(false, Ordering::SeqCst);
    }

    /// Listens again on the same port after [`Registrar::kill`] or [`Registrar::reset`].
    pub fn restore(&self) -> Result<(), RegistrarError> {
        let mut listener = self.listener();
        if listener.is_some() {
            return Err(RegistrarError::AlreadyListening(self.addr));
        }
        let (listening, _) = server::listen(self.addr)?;
        *listener = Some(listening.run(self.shared.clone())?);
        Ok(())
    }

    /// Stops the registrar (same as dropping it).
    pub fn stop(self) {}
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.kill();
    }
}
