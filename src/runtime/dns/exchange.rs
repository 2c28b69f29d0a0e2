//! One exchange with one server: a query over UDP, or over TCP after a truncated UDP
//! reply, bounded by one timeout. The smol-side sockets (async-net) and timer (async-io)
//! do the waiting, so no other async runtime is involved.

use super::error::Problem;
use super::query::Question;
use super::records::Answer;
use super::reply::{FromRData, Verdict, judge};
use async_io::Timer;
use async_net::{TcpStream, UdpSocket};
use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The largest DNS message; a datagram is read whole into a buffer this size, so that a
/// server sending more than 512 bytes (EDNS habits) is read, not cut.
const MAX_MESSAGE: usize = 65_535;

/// A query sent to one server: its bytes, the id inside them and what it asks.
pub(crate) struct Query<'a> {
    pub(crate) server: SocketAddr,
    pub(crate) id: u16,
    pub(crate) bytes: &'a [u8],
    pub(crate) question: &'a Question,
    pub(crate) timeout: Duration,
}

/// The UDP exchange: `Ok(None)` when the reply is truncated and TCP must be tried.
///
/// The socket is bound to port 0, so the OS picks a fresh random source port for every
/// exchange, and connected to the server, so the OS drops datagrams from any other
/// address. What still arrives and is not the reply (another id or question: stale or
/// spoofed) is counted and ignored, and the wait goes on until the same deadline.
pub(crate) async fn udp<T: FromRData>(query: &Query<'_>) -> Result<Option<Answer<T>>, Problem> {
    // Shared with the timeout's arm, which reports it; an atomic rather than a `Cell` so
    // that the lookup stays `Send` for the driver's multi-threaded executor.
    let ignored = AtomicUsize::new(0);
    let exchange = async {
        let socket = match query.server {
            SocketAddr::V4(_) => UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await,
            SocketAddr::V6(_) => UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).await,
        }
        .map_err(|e| io("bind", &e))?;
        socket.connect(query.server).await.map_err(|e| io("connect", &e))?;
        socket.send(query.bytes).await.map_err(|e| io("send", &e))?;
        let mut buffer = vec![0u8; MAX_MESSAGE];
        loop {
            let len = socket.recv(&mut buffer).await.map_err(|e| io("receive", &e))?;
            match judge::<T>(buffer.get(..len).unwrap_or_default(), query.id, query.question) {
                Verdict::Ignore(_) => {
                    ignored.fetch_add(1, Ordering::Relaxed);
                }
                Verdict::Truncated => return Ok(None),
                Verdict::Answer(answer) => return Ok(Some(answer)),
                Verdict::Failed(problem) => return Err(problem),
            }
        }
    };
    bounded(exchange, query.timeout, &ignored).await
}

/// The TCP exchange (RFC 1035 §4.2.2: each message preceded by its length in two bytes),
/// on a connection of its own. A reply that does not match the query is the server's
/// fault here, since nobody else can inject into the connection.
pub(crate) async fn tcp<T: FromRData>(query: &Query<'_>) -> Result<Answer<T>, Problem> {
    let exchange = async {
        let mut stream = TcpStream::connect(query.server).await.map_err(|e| io("connect", &e))?;
        let len = u16::try_from(query.bytes.len()).map_err(|_| Problem::Io("query too long for TCP".into()))?;
        let mut framed = Vec::with_capacity(2 + query.bytes.len());
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query.bytes);
        stream.write_all(&framed).await.map_err(|e| io("send", &e))?;
        stream.flush().await.map_err(|e| io("send", &e))?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.map_err(|e| read_error(&e))?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).await.map_err(|e| read_error(&e))?;
        match judge::<T>(&reply, query.id, query.question) {
            Verdict::Answer(answer) => Ok(answer),
            Verdict::Failed(problem) => Err(problem),
            Verdict::Truncated => Err(Problem::Malformed("truncated reply over TCP".into())),
            Verdict::Ignore(why) => Err(Problem::Malformed(format!("the reply over TCP has {why}"))),
        }
    };
    bounded(exchange, query.timeout, &AtomicUsize::new(0)).await
}

/// `exchange`, or a timeout once `timeout` has passed.
async fn bounded<R>(
    exchange: impl Future<Output = Result<R, Problem>>,
    timeout: Duration,
    ignored: &AtomicUsize,
) -> Result<R, Problem> {
    let expiry = async {
        Timer::after(timeout).await;
        Err(Problem::TimedOut { after: timeout, ignored: ignored.load(Ordering::Relaxed) })
    };
    future::or(exchange, expiry).await
}

fn io(what: &str, e: &std::io::Error) -> Problem {
    Problem::Io(format!("{what}: {e}"))
}

fn read_error(e: &std::io::Error) -> Problem {
    if e.kind() == ErrorKind::UnexpectedEof {
        return Problem::Malformed("the server closed the connection before a whole reply".into());
    }
    io("receive", e)
}
