//! One connection's task: connect TCP to the address the core chose (with `TCP_NODELAY`), run
//! the TLS handshake with verification, then read and write until told to close. It
//! reports every happening to the driver and decides nothing.

use super::tls::{connect_error, server_name, stream_error, tls_error};
use crate::engine::TransportError;
use crate::ids::ConnId;
use async_channel::{Receiver, Sender};
use async_io::Timer;
use async_net::TcpStream;
use futures_lite::future::or;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A guard against a connect that never returns. The core's own connect timeout is far
/// shorter and decides; this only makes sure the task reports something eventually.
const SAFETY_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a closing connection may take to flush its queue and send close_notify.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a connection task tells the driver.
#[derive(Debug)]
pub(crate) enum Report {
    /// TCP and TLS are up.
    Connected {
        /// Local address of the socket.
        local: SocketAddr,
        /// Negotiated protocol and cipher suite, for the log.
        tls: String,
        /// The chain the server presented (leaf first), verified: kept so that it can be
        /// checked again when the certificates are reloaded.
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    },
    /// The connection could not be established.
    ConnectFailed(TransportError),
    /// Plaintext arrived.
    Received(Vec<u8>),
    /// The established connection ended.
    Closed(TransportError),
}

/// How many reports may wait for the driver, for all connections together. A reader whose
/// report does not fit stops reading its socket until the driver has taken one (TCP then
/// slows the server down): received bytes never pile up in the phone.
pub(crate) const REPORT_CAPACITY: usize = 32;

/// The socket under TLS: the TCP stream, which stamps its reads and writes when built with
/// the `timing` feature.
#[cfg(not(feature = "timing"))]
type Socket = TcpStream;
#[cfg(feature = "timing")]
type Socket = super::timing::Timed<TcpStream>;

/// One read from the TLS stream: the most plaintext a single report carries.
const READ_CHUNK: usize = 16 * 1024;

/// One write to the TLS stream: the writer reports progress at least this often.
const WRITE_CHUNK: usize = 16 * 1024;

/// A connection's write queue: the plaintext the driver handed to the writer, as one
/// byte buffer, and the count of bytes handed over and not yet written to the TLS stream
/// (queued plus taken by the writer). The driver bounds it (it never queues beyond the
/// core's `max_write_backlog`) and reports the count to the core; the writer takes the
/// whole buffer at once and counts down as the stream accepts bytes.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: Mutex<Vec<u8>>,
    unsent: AtomicUsize,
}

impl Outbox {
    /// Bytes handed to the writer and not yet written to the TLS stream.
    pub fn unsent(&self) -> usize {
        self.unsent.load(Ordering::SeqCst)
    }

    /// Queues `data` (the driver checks the bound first).
    pub fn push(&self, data: &[u8]) {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(data);
        self.unsent.fetch_add(data.len(), Ordering::SeqCst);
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn written(&self, n: usize) {
        self.unsent.fetch_sub(n, Ordering::SeqCst);
    }
}

/// The writer's side of a connection: its queue, the signal that more was queued (closed
/// by the driver to close the connection), and the driver's signal that some connection's
/// count went down.
pub(crate) struct Writes {
    pub outbox: Arc<Outbox>,
    pub more: Receiver<()>,
    pub progress: Sender<()>,
}

/// Runs one connection to the end.
pub(crate) async fn run(
    conn: ConnId,
    addr: SocketAddr,
    server_name: String,
    connector: TlsConnector,
    writes: Writes,
    reports: Sender<(ConnId, Report)>,
) {
    let established = or(establish(addr, &server_name, connector), async {
        Timer::after(SAFETY_TIMEOUT).await;
        Err(TransportError::TimedOut)
    })
    .await;
    let (stream, local) = match established {
        Ok(s) => s,
        Err(reason) => {
            report(&reports, conn, Report::ConnectFailed(reason)).await;
            return;
        }
    };
    let chain = stream.get_ref().1.peer_certificates().map(<[_]>::to_vec).unwrap_or_default();
    report(&reports, conn, Report::Connected { local, tls: describe(&stream), chain }).await;
    if let Some(reason) = carry(conn, stream, writes, &reports).await {
        report(&reports, conn, Report::Closed(reason)).await;
    }
}

/// Hands a report to the driver, waiting while the channel is full. The driver outlives
/// its tasks; a send error only means it is going away.
async fn report(reports: &Sender<(ConnId, Report)>, conn: ConnId, r: Report) -> bool {
    reports.send((conn, r)).await.is_ok()
}

/// TCP to the address the core chose, then TLS checked against the name it gave (the
/// configured domain, RFC 5922): the shell resolves nothing itself.
async fn establish(
    addr: SocketAddr,
    server_name_text: &str,
    connector: TlsConnector,
) -> Result<(TlsStream<Socket>, SocketAddr), TransportError> {
    let name = server_name(server_name_text)?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| connect_error(&e))?;
    tcp.set_nodelay(true).map_err(|e| TransportError::Io(format!("TCP_NODELAY: {e}")))?;
    let local = tcp.local_addr().map_err(|e| TransportError::Io(format!("local address: {e}")))?;
    #[cfg(feature = "timing")]
    let tcp = super::timing::Timed(tcp);
    let stream = connector.connect(name, tcp).await.map_err(|e| handshake_error(&e))?;
    Ok((stream, local))
}

/// A handshake failure: a certificate rejection or TLS alert, or the socket failing.
fn handshake_error(e: &std::io::Error) -> TransportError {
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return tls_error(tls);
    }
    match stream_error(e) {
        TransportError::PeerClosed => {
            TransportError::Tls("the server closed the connection during the handshake".into())
        }
        other => other,
    }
}

fn describe(stream: &TlsStream<Socket>) -> String {
    let (_, session) = stream.get_ref();
    let version = session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
    let suite = session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
    format!("{version} {suite}")
}

/// Reads and writes until the peer closes (returns why) or the driver closes the write
/// queue (flushes, sends close_notify, returns `None`).
async fn carry(
    conn: ConnId,
    stream: TlsStream<Socket>,
    writes: Writes,
    reports: &Sender<(ConnId, Report)>,
) -> Option<TransportError> {
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let reader = async {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return Some(TransportError::PeerClosed),
                // Backpressure: no further read until the driver has room for this one.
                Ok(n) => {
                    #[cfg(feature = "timing")]
                    super::timing::stamp(super::timing::Point::TlsRead);
                    if !report(reports, conn, Report::Received(buf[..n].to_vec())).await {
                        return None;
                    }
                }
                Err(e) => return Some(stream_error(&e)),
            }
        }
    };
    let Writes { outbox, more, progress } = writes;
    let writer = async {
        loop {
            let chunk = outbox.take();
            if chunk.is_empty() {
                if let Err(e) = wr.flush().await {
                    return Some(stream_error(&e));
                }
                match more.recv().await {
                    Ok(()) => continue,
                    Err(_) => break,
                }
            }
            #[cfg(feature = "timing")]
            super::timing::stamp(super::timing::Point::TlsWrite);
            if let Err(e) = write_counted(&mut wr, &chunk, &outbox, &progress).await {
                return Some(stream_error(&e));
            }
        }
        // Closed by the core: write what is queued and say goodbye, briefly.
        let _ = or(
            async {
                let rest = outbox.take();
                write_counted(&mut wr, &rest, &outbox, &progress).await?;
                wr.close().await
            },
            async {
                Timer::after(CLOSE_GRACE).await;
                Ok(())
            },
        )
        .await;
        None
    };
    or(writer, reader).await
}

/// Writes `chunk`, counting every piece the TLS stream accepts off the connection's
/// unsent bytes and telling the driver.
async fn write_counted(
    wr: &mut (impl AsyncWriteExt + Unpin),
    chunk: &[u8],
    outbox: &Outbox,
    progress: &Sender<()>,
) -> std::io::Result<()> {
    let mut at = 0;
    while at < chunk.len() {
        let end = chunk.len().min(at + WRITE_CHUNK);
        let n = wr.write(&chunk[at..end]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        at += n;
        outbox.written(n);
        // Capacity 1: one pending signal says "look again", more would say nothing new.
        let _ = progress.try_send(());
    }
    Ok(())
}
