//! One connection's task: resolve the proxy host, connect TCP (with `TCP_NODELAY`), run
//! the TLS handshake with verification, then read and write until told to close. It
//! reports every happening to the driver and decides nothing.

use super::tls::{connect_error, server_name, stream_error, tls_error};
use crate::config::ServerAddr;
use crate::engine::TransportError;
use crate::ids::ConnId;
use async_channel::{Receiver, Sender};
use async_io::Timer;
use async_net::TcpStream;
use futures_lite::future::or;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use std::net::{IpAddr, SocketAddr};
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
    },
    /// The connection could not be established.
    ConnectFailed(TransportError),
    /// Plaintext arrived.
    Received(Vec<u8>),
    /// The established connection ended.
    Closed(TransportError),
}

/// Runs one connection to the end.
pub(crate) async fn run(
    conn: ConnId,
    target: ServerAddr,
    connector: TlsConnector,
    writes: Receiver<Vec<u8>>,
    reports: Sender<(ConnId, Report)>,
) {
    let report = |r: Report| {
        // The driver outlives its tasks; a send error only means it is going away.
        let _ = reports.try_send((conn, r));
    };
    let established = or(establish(&target, connector), async {
        Timer::after(SAFETY_TIMEOUT).await;
        Err(TransportError::TimedOut)
    })
    .await;
    let (stream, local) = match established {
        Ok(s) => s,
        Err(reason) => {
            report(Report::ConnectFailed(reason));
            return;
        }
    };
    report(Report::Connected { local, tls: describe(&stream) });
    if let Some(reason) = carry(stream, writes, &report).await {
        report(Report::Closed(reason));
    }
}

/// The proxy's addresses: an IP literal as it is, a host name resolved off the event loop.
async fn addresses(target: &ServerAddr) -> Result<Vec<SocketAddr>, TransportError> {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    match async_net::resolve((host, target.port)).await {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(TransportError::Resolve(format!("{host}: no address"))),
        Err(e) => Err(TransportError::Resolve(format!("{host}: {e}"))),
    }
}

async fn establish(
    target: &ServerAddr,
    connector: TlsConnector,
) -> Result<(TlsStream<TcpStream>, SocketAddr), TransportError> {
    let name = server_name(&target.host)?;
    let mut last = TransportError::Resolve(format!("{}: no address", target.host));
    let mut tcp = None;
    // Every address the name resolves to, in order, as a socket connect does.
    for addr in addresses(target).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = connect_error(&e),
        }
    }
    let tcp = tcp.ok_or(last)?;
    tcp.set_nodelay(true).map_err(|e| TransportError::Io(format!("TCP_NODELAY: {e}")))?;
    let local = tcp.local_addr().map_err(|e| TransportError::Io(format!("local address: {e}")))?;
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

fn describe(stream: &TlsStream<TcpStream>) -> String {
    let (_, session) = stream.get_ref();
    let version = session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
    let suite = session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
    format!("{version} {suite}")
}

/// Reads and writes until the peer closes (returns why) or the driver drops the write
/// queue (flushes, sends close_notify, returns `None`).
async fn carry(
    stream: TlsStream<TcpStream>,
    writes: Receiver<Vec<u8>>,
    report: &impl Fn(Report),
) -> Option<TransportError> {
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let reader = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return Some(TransportError::PeerClosed),
                Ok(n) => report(Report::Received(buf[..n].to_vec())),
                Err(e) => return Some(stream_error(&e)),
            }
        }
    };
    let writer = async {
        while let Ok(data) = writes.recv().await {
            if let Err(e) = wr.write_all(&data).await {
                return Some(stream_error(&e));
            }
            if writes.is_empty()
                && let Err(e) = wr.flush().await
            {
                return Some(stream_error(&e));
            }
        }
        // Closed by the core: flush what is queued and say goodbye, briefly.
        let _ = or(async { wr.close().await.map(|_| ()) }, async {
            Timer::after(CLOSE_GRACE).await;
            Ok(())
        })
        .await;
        None
    };
    or(writer, reader).await
}
