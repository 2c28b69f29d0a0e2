//! One accepted connection on its own thread: the TLS handshake, framing of the
//! plaintext, CRLF pongs, handing SIP messages to the proxy and writing what it sends,
//! and the kill / reset / freeze switches.

use super::Shared;
use super::stats::{bump, drop_one};
use crate::sip::{Frame, Framer, Limits};
use async_io::Timer;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsAcceptor;
use futures_rustls::server::TlsStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What other parts of the registrar ask a connection to do.
#[derive(Clone, Debug)]
pub(crate) enum Command {
    /// Write these bytes (a message forwarded from another connection).
    Send(Vec<u8>),
    /// Close with TLS close_notify and FIN.
    Close,
    /// Close abruptly, without close_notify.
    Reset,
}

/// A handshake that has not finished by then fails.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A write that cannot complete by then (peer not reading) closes the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on the graceful close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a frozen connection looks whether it was thawed.
const THAW_POLL: Duration = Duration::from_millis(5);

type Tls = TlsStream<async_net::TcpStream>;

/// Serves connection `id` until either side closes it, then forgets its bindings.
pub(crate) async fn run(
    shared: Arc<Shared>,
    id: u64,
    tcp: async_net::TcpStream,
    commands: async_channel::Receiver<Command>,
) {
    let _ = tcp.set_nodelay(true);
    let mut conn = Connection { shared: shared.clone(), id, commands, pending: Vec::new() };
    if let Some(tls) = conn.handshake(tcp).await {
        conn.serve(tls).await;
    }
    shared.state().connection_closed(id);
    drop_one(&shared.counters.open);
}

struct Connection {
    shared: Arc<Shared>,
    id: u64,
    commands: async_channel::Receiver<Command>,
    /// Forwarded messages that arrived while frozen, written after the thaw.
    pending: Vec<Vec<u8>>,
}

/// How a connection stops.
enum Stop {
    Graceful,
    Abrupt,
}

enum Event {
    Read(std::io::Result<usize>),
    Command(Option<Command>),
}

impl Connection {
    fn frozen(&self) -> bool {
        self.shared.frozen.load(Ordering::SeqCst)
    }

    /// Waits while the registrar is frozen, keeping forwarded messages for later.
    /// `Err` when told to close meanwhile.
    async fn wait_thaw(&mut self) -> Result<(), Stop> {
        while self.frozen() {
            let cmd = future::or(async { Some(self.commands.recv().await) }, async {
                Timer::after(THAW_POLL).await;
                None
            })
            .await;
            match cmd {
                None => {}
                Some(Ok(Command::Send(bytes))) => self.pending.push(bytes),
                Some(Ok(Command::Close)) => return Err(Stop::Graceful),
                Some(Ok(Command::Reset)) | Some(Err(_)) => return Err(Stop::Abrupt),
            }
        }
        Ok(())
    }

    async fn handshake(&mut self, tcp: async_net::TcpStream) -> Option<Tls> {
        if self.wait_thaw().await.is_err() {
            return None;
        }
        let acceptor = TlsAcceptor::from(self.shared.tls.clone());
        let commands = self.commands.clone();
        let done = future::or(
            async { Some(acceptor.accept(tcp).await) },
            future::or(
                async {
                    // Nothing is forwarded to a connection before it has a binding, so any
                    // command here means close.
                    let _ = commands.recv().await;
                    None
                },
                async {
                    Timer::after(HANDSHAKE_TIMEOUT).await;
                    None
                },
            ),
        )
        .await;
        match done {
            Some(Ok(tls)) => {
                bump(&self.shared.counters.handshakes_ok);
                Some(tls)
            }
            Some(Err(e)) => {
                tracing::debug!("registrar conn={} handshake failed: {e}", self.id);
                bump(&self.shared.counters.handshakes_failed);
                None
            }
            None => {
                bump(&self.shared.counters.handshakes_failed);
                None
            }
        }
    }

    async fn serve(&mut self, mut tls: Tls) {
        let stop = self.serve_until_stop(&mut tls).await;
        if let Stop::Graceful = stop {
            future::or(
                async {
                    let _ = tls.close().await;
                },
                async {
                    Timer::after(CLOSE_TIMEOUT).await;
                },
            )
            .await;
        }
    }

    async fn serve_until_stop(&mut self, tls: &mut Tls) -> Stop {
        let mut framer = Framer::new(Limits::default());
        let mut crlfs = 0u32;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let commands = self.commands.clone();
            let event = future::or(async { Event::Read(tls.read(&mut buf).await) }, async {
                Event::Command(commands.recv().await.ok())
            })
            .await;
            let result = match event {
                Event::Read(Ok(0)) | Event::Read(Err(_)) => return Stop::Abrupt,
                Event::Read(Ok(n)) => {
                    framer.push(buf.get(..n).unwrap_or_default());
                    self.process(tls, &mut framer, &mut crlfs).await
                }
                Event::Command(Some(Command::Send(bytes))) => match self.wait_thaw().await {
                    Ok(()) => self.flush_pending_and(tls, vec![bytes]).await,
                    Err(stop) => Err(stop),
                },
                Event::Command(Some(Command::Close)) => Err(Stop::Graceful),
                Event::Command(Some(Command::Reset)) | Event::Command(None) => Err(Stop::Abrupt),
            };
            if let Err(stop) = result {
                return stop;
            }
        }
    }

    /// Writes what was held during a freeze, then `more`.
    async fn flush_pending_and(&mut self, tls: &mut Tls, more: Vec<Vec<u8>>) -> Result<(), Stop> {
        let mut out = std::mem::take(&mut self.pending);
        out.extend(more);
        for bytes in out {
            write(tls, &bytes).await?;
        }
        Ok(())
    }

    /// Handles every complete frame in the framer.
    async fn process(&mut self, tls: &mut Tls, framer: &mut Framer, crlfs: &mut u32) -> Result<(), Stop> {
        self.wait_thaw().await?;
        self.flush_pending_and(tls, Vec::new()).await?;
        loop {
            match framer.next_frame() {
                Ok(None) => return Ok(()),
                Ok(Some(Frame::Crlf)) => {
                    *crlfs += 1;
                    if *crlfs == 2 {
                        *crlfs = 0;
                        bump(&self.shared.counters.pings);
                        if self.shared.answer_pings {
                            write(tls, b"\r\n").await?;
                            bump(&self.shared.counters.pongs);
                        }
                    }
                }
                Ok(Some(Frame::Message(msg))) => {
                    *crlfs = 0;
                    let sends = self.shared.state().handle(self.id, msg, &self.shared.counters);
                    for (to, bytes) in sends {
                        if to == self.id {
                            write(tls, &bytes).await?;
                        } else {
                            let outbox = self.shared.state().conns.get(&to).cloned();
                            if let Some(outbox) = outbox {
                                let _ = outbox.try_send(Command::Send(bytes));
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!("registrar conn={} framing error, closing: {e}", self.id);
                    return Err(Stop::Graceful);
                }
            }
        }
    }
}

/// Writes and flushes `bytes`, within [`WRITE_TIMEOUT`].
async fn write(tls: &mut Tls, bytes: &[u8]) -> Result<(), Stop> {
    let ok = future::or(
        async {
            match tls.write_all(bytes).await {
                Ok(()) => tls.flush().await.is_ok(),
                Err(_) => false,
            }
        },
        async {
            Timer::after(WRITE_TIMEOUT).await;
            false
        },
    )
    .await;
    if ok { Ok(()) } else { Err(Stop::Abrupt) }
}
