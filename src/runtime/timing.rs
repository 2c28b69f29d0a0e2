//! Where a phone's own time goes, measured (feature `timing`, off by default and in the
//! shipped command: without it none of this is compiled and the shell is unchanged).
//!
//! The runtime shell stamps a [`std::time::Instant`] at fixed [`Point`]s of a message's
//! way out (command taken, core done, `Transmit` queued, plaintext handed to rustls, TCP
//! write) and back (TCP read, plaintext out of rustls, report taken, core done, event
//! queued), into one global log bounded at [`CAPACITY`] stamps (the oldest go first).
//! The call-setup benchmark clears it before a call, drains it after, and lines the
//! stamps up with its own (`benches/e2e/call_setup.rs`). The core is not involved: it
//! still reads no clock; the stamps are taken around its calls.
//!
//! Each stamp costs a clock read, a thread id and an uncontended lock, well under a
//! microsecond. Stamps carry the thread that took them: a phone's driver and its
//! connection tasks all run on the thread polling [`super::Driver::run`], so the stamps
//! of two phones in one process can be told apart.

use futures_lite::io::{AsyncRead, AsyncWrite};
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Instant;

/// Stamps kept; beyond it the oldest is dropped.
pub const CAPACITY: usize = 4096;

/// A point of the shell where a stamp is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The driver took a command from the handles' channel, before the core sees it.
    Command,
    /// The core returned from placing a call or from an input (before its outputs are
    /// drained).
    Core,
    /// The driver queued a `Transmit` in its connection's write queue.
    Transmit,
    /// The connection's writer hands plaintext to the TLS stream.
    TlsWrite,
    /// A write to the TCP socket that accepted bytes started.
    SocketWriteStart,
    /// The TCP socket accepted bytes.
    SocketWriteEnd,
    /// A read of the TCP socket that returned bytes started.
    SocketReadStart,
    /// The TCP socket returned bytes.
    SocketReadEnd,
    /// The TLS stream returned plaintext to the connection's reader.
    TlsRead,
    /// The driver took a report from its connections (received bytes, connected, closed).
    Report,
    /// The driver queued an outcome event for the application
    /// ([`super::is_outcome`]: a call's outcome, a registration, ...).
    Event,
}

/// One stamp.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// Where.
    pub point: Point,
    /// When.
    pub at: Instant,
    /// The thread that took it (a phone's driver thread).
    pub thread: ThreadId,
}

static LOG: Mutex<VecDeque<Stamp>> = Mutex::new(VecDeque::new());

fn push(point: Point, at: Instant) {
    let stamp = Stamp { point, at, thread: std::thread::current().id() };
    let mut log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    if log.len() >= CAPACITY {
        log.pop_front();
    }
    log.push_back(stamp);
}

/// Stamps `point` now.
pub(crate) fn stamp(point: Point) {
    push(point, Instant::now());
}

/// Every stamp taken since the last drain, oldest first; the log is left empty.
pub fn drain() -> Vec<Stamp> {
    LOG.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect()
}

/// The TCP stream under TLS, stamping every read that returned bytes and every write
/// that wrote some ([`Point::SocketReadStart`] .. [`Point::SocketWriteEnd`]).
#[derive(Debug)]
pub(crate) struct Timed<S>(pub S);

/// `result` of an IO call begun at `start`: stamps it when it moved bytes.
fn moved(result: &Poll<std::io::Result<usize>>, start: Instant, points: (Point, Point)) {
    if let Poll::Ready(Ok(n)) = result
        && *n > 0
    {
        push(points.0, start);
        stamp(points.1);
    }
}

const READ: (Point, Point) = (Point::SocketReadStart, Point::SocketReadEnd);
const WRITE: (Point, Point) = (Point::SocketWriteStart, Point::SocketWriteEnd);

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        let start = Instant::now();
        let result = Pin::new(&mut self.0).poll_read(cx, buf);
        moved(&result, start, READ);
        result
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let start = Instant::now();
        let result = Pin::new(&mut self.0).poll_read_vectored(cx, bufs);
        moved(&result, start, READ);
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let start = Instant::now();
        let result = Pin::new(&mut self.0).poll_write(cx, buf);
        moved(&result, start, WRITE);
        result
    }

    // rustls writes its records with vectored writes: forwarded as such, since the
    // default would write only the first slice.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let start = Instant::now();
        let result = Pin::new(&mut self.0).poll_write_vectored(cx, bufs);
        moved(&result, start, WRITE);
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt, Cursor};

    /// The tests that drain the global log take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Stamps of this test's thread only (tests run in parallel).
    fn mine(stamps: Vec<Stamp>) -> Vec<Point> {
        let me = std::thread::current().id();
        stamps.into_iter().filter(|s| s.thread == me).map(|s| s.point).collect()
    }

    #[test]
    fn the_timed_stream_stamps_reads_and_writes_that_moved_bytes() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        drain();
        futures_lite::future::block_on(async {
            let mut s = Timed(Cursor::new(b"abc".to_vec()));
            let mut buf = [0u8; 2];
            assert_eq!(s.read(&mut buf).await.unwrap(), 2);
            s.0.set_position(3);
            assert_eq!(s.read(&mut buf).await.unwrap(), 0, "end of stream: no stamp");
            s.write_all(b"de").await.unwrap();
            s.flush().await.unwrap();
            assert_eq!(s.0.get_ref(), b"abcde");
        });
        let stamps = mine(drain());
        let want = [Point::SocketReadStart, Point::SocketReadEnd, Point::SocketWriteStart, Point::SocketWriteEnd];
        assert_eq!(stamps, want);
    }

    #[test]
    fn the_log_is_bounded_and_keeps_the_newest() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..CAPACITY + 10 {
            stamp(Point::Command);
        }
        stamp(Point::Event);
        let all = drain();
        assert_eq!(all.len(), CAPACITY);
        let me = std::thread::current().id();
        let mine: Vec<&Stamp> = all.iter().filter(|s| s.thread == me).collect();
        assert!(mine.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
        assert_eq!(mine.last().map(|s| s.point), Some(Point::Event));
        assert!(drain().is_empty(), "drained");
    }
}
