//! The accept loop, which owns the listening socket on its own thread, and the pool that
//! runs the accepted connections: one task per connection on an executor polled by one
//! worker thread per CPU. (A thread per connection was fine for tens of connections but
//! not for the 10,000 of the scale benchmark: see docs/benchmarks.md.)

use super::Shared;
use super::connection;
use super::error::RegistrarError;
use super::stats::bump;
use async_executor::Executor;
use async_net::TcpListener;
use futures_lite::future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

/// A bound listening socket, not yet accepting.
pub(crate) struct Bound {
    listener: TcpListener,
}

/// A running accept loop.
pub(crate) struct Listening {
    stop: async_channel::Sender<()>,
    thread: JoinHandle<()>,
}

/// The executor of the connection tasks and its worker threads. The workers end when the
/// pool is dropped (with the registrar's shared state); they are not joined, since the
/// last holder of that state may be one of them.
pub(crate) struct Pool {
    executor: Arc<Executor<'static>>,
    /// Dropped with the pool: every worker's `run` then returns.
    _stop: async_channel::Sender<()>,
}

impl Pool {
    /// Starts one worker thread per CPU.
    pub fn start() -> Result<Pool, RegistrarError> {
        let executor = Arc::new(Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..workers {
            let (ex, stopped) = (executor.clone(), stopped.clone());
            std::thread::Builder::new()
                .name(format!("sip-registrar-{i}"))
                .spawn(move || {
                    async_io::block_on(ex.run(async {
                        let _ = stopped.recv().await;
                    }))
                })
                .map_err(RegistrarError::Thread)?;
        }
        Ok(Pool { executor, _stop: stop })
    }
}

/// Connections the kernel may hold complete but not yet accepted. std listens with 128:
/// when thousands of phones connect in the same second (the scale benchmark, a restart),
/// the rest of their SYNs would be dropped and retried 1, 3, 7 s later, past the phones'
/// connect timeout. The kernel caps it at `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: i32 = 4096;

/// Binds `addr` (std sets SO_REUSEADDR, so a port just closed can be bound again).
pub(crate) fn listen(addr: SocketAddr) -> Result<(Bound, SocketAddr), RegistrarError> {
    let bind_err = |source| RegistrarError::Bind { addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    // Listening again on a listening socket only changes its backlog.
    rustix::net::listen(&std_listener, LISTEN_BACKLOG).map_err(|e| bind_err(e.into()))?;
    let local = std_listener.local_addr().map_err(bind_err)?;
    let listener = TcpListener::try_from(std_listener).map_err(bind_err)?;
    Ok((Bound { listener }, local))
}

impl Bound {
    /// Starts accepting on a thread of its own.
    pub fn run(self, shared: Arc<Shared>) -> Result<Listening, RegistrarError> {
        let (stop, stopped) = async_channel::bounded(1);
        let listener = self.listener;
        let thread = std::thread::Builder::new()
            .name("sip-registrar-accept".into())
            .spawn(move || async_io::block_on(accept_loop(listener, stopped, shared)))
            .map_err(RegistrarError::Thread)?;
        Ok(Listening { stop, thread })
    }
}

impl Listening {
    /// Stops accepting and closes the listening socket (new connects are refused).
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

async fn accept_loop(listener: TcpListener, stopped: async_channel::Receiver<()>, shared: Arc<Shared>) {
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            let _ = stopped.recv().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok((tcp, _peer))) => spawn_connection(&shared, tcp),
            Some(Err(e)) => {
                tracing::warn!("registrar accept failed: {e}");
                async_io::Timer::after(Duration::from_millis(10)).await;
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, tcp: async_net::TcpStream) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = async_channel::unbounded();
    shared.state().conns.insert(id, tx);
    bump(&shared.counters.accepted);
    bump(&shared.counters.open);
    shared.pool.executor.spawn(connection::run(shared.clone(), id, tcp, rx)).detach();
}
