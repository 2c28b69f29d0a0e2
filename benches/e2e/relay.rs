//! An in-process TCP relay on loopback that delays each direction by half the emulated
//! round-trip time (and the client's first bytes by one more RTT, because the kernel
//! completes the TCP handshake with the relay at once: the server then sees the first
//! flight when it would after a real SYN / SYN-ACK round trip), counts the bytes and segments it carries, and notes when the first
//! byte of each TLS record arrived at the relay and when it was delivered, in both
//! directions (so that the benchmark can tell when the INVITE reached the server, and the
//! 200 the phone, without decrypting anything).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A TLS record as the relay delivered it: the client's to the server
/// ([`Relay::records`]) or the server's to the client ([`Relay::down_records`]).
#[derive(Clone, Copy, Debug)]
pub struct RecordSeen {
    /// The relayed connection (numbered from 1 in accept order).
    pub conn: u64,
    /// TLS content type: 22 handshake, 20 change_cipher_spec, 23 application data.
    pub content_type: u8,
    /// When the relay wrote the record's first byte to its destination (stamped just
    /// before the write).
    pub delivered: Instant,
}

/// A TLS record as it arrived at the relay (before the delay), in either direction.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// The relayed connection.
    pub conn: u64,
    /// True for client → server.
    pub up: bool,
    /// TLS content type.
    pub content_type: u8,
    /// When the relay read the record's first byte.
    pub at: Instant,
}

/// Splits a byte stream into TLS records across chunks: header bytes so far and body
/// bytes still to skip.
#[derive(Default)]
struct RecordParser {
    header: Vec<u8>,
    skip: usize,
}

impl RecordParser {
    /// The content types of the records that start in `data`.
    fn starts(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if self.skip > 0 {
                let n = self.skip.min(data.len() - i);
                self.skip -= n;
                i += n;
                continue;
            }
            self.header.push(data[i]);
            i += 1;
            if self.header.len() == 5 {
                self.skip = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                out.push(self.header[0]);
                self.header.clear();
            }
        }
        out
    }
}

/// One TLS record's way through the relay: its arrival and its delivery, matched by their
/// order on the connection.
#[derive(Clone, Copy, Debug)]
pub struct Crossing {
    /// TLS content type.
    pub content_type: u8,
    /// When the relay read its first byte.
    pub arrived: Instant,
    /// When the relay wrote its first byte on (stamped just before the write).
    pub delivered: Instant,
}

#[derive(Default)]
struct Shared {
    records: Mutex<Vec<RecordSeen>>,
    down_records: Mutex<Vec<RecordSeen>>,
    arrivals: Mutex<Vec<Arrival>>,
    /// Bytes and writes client→server and server→client.
    up_bytes: AtomicU64,
    up_writes: AtomicU64,
    down_bytes: AtomicU64,
    down_writes: AtomicU64,
    next_conn: AtomicU64,
    stop: AtomicBool,
}

/// A running relay. Dropping it stops accepting (relayed connections run to their end).
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

/// Byte and write counters in both directions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    /// Client to server bytes.
    pub up_bytes: u64,
    /// Client to server writes (≈ TCP segments on loopback with `TCP_NODELAY`).
    pub up_writes: u64,
    /// Server to client bytes.
    pub down_bytes: u64,
    /// Server to client writes.
    pub down_writes: u64,
}

impl Relay {
    /// Relays connections to `target`, delaying each direction by `rtt / 2`.
    pub fn start(target: SocketAddr, rtt: Duration) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("relay-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if s.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(target) else { continue };
                    let conn = s.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (c2, s2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                    pipe(client, server, rtt / 2, conn, true, s.clone());
                    pipe(s2, c2, rtt / 2, conn, false, s.clone());
                }
            })
            .expect("relay thread");
        Relay { addr, shared }
    }

    /// The client's TLS records delivered so far.
    pub fn records(&self) -> Vec<RecordSeen> {
        self.shared.records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The server's TLS records delivered to the client so far.
    pub fn down_records(&self) -> Vec<RecordSeen> {
        self.shared.down_records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every record of one direction (`up`: the client's) that arrived and was delivered
    /// so far, in order.
    pub fn crossings(&self, up: bool) -> Vec<Crossing> {
        let delivered = if up { self.records() } else { self.down_records() };
        let arrived: Vec<Arrival> = self.arrivals().into_iter().filter(|a| a.up == up).collect();
        let conns: std::collections::BTreeSet<u64> = delivered.iter().map(|r| r.conn).collect();
        let mut out = Vec::new();
        for conn in conns {
            let a = arrived.iter().filter(|a| a.conn == conn);
            let d = delivered.iter().filter(|r| r.conn == conn);
            out.extend(a.zip(d).map(|(a, d)| Crossing {
                content_type: a.content_type,
                arrived: a.at,
                delivered: d.delivered,
            }));
        }
        out.sort_by_key(|c| c.arrived);
        out
    }

    /// Every record that arrived so far, both directions.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.arrivals.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Bytes and writes so far.
    pub fn traffic(&self) -> Traffic {
        let g = |a: &AtomicU64| a.load(Ordering::SeqCst);
        Traffic {
            up_bytes: g(&self.shared.up_bytes),
            up_writes: g(&self.shared.up_writes),
            down_bytes: g(&self.shared.down_bytes),
            down_writes: g(&self.shared.down_writes),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Sleeps until `t`: coarse sleep, then a short yield loop, so that the emulated delay
/// is not stretched by the timer slack.
fn sleep_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > Duration::from_micros(400) {
            std::thread::sleep(left - Duration::from_micros(300));
        } else {
            std::thread::yield_now();
        }
    }
}

enum Chunk {
    Data(Instant, Vec<u8>),
    End,
}

/// One direction: a reader thread stamps what arrives, a writer thread delivers it
/// `delay` later. `up`: this is the client's direction (connection `conn`).
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration, conn: u64, up: bool, shared: Arc<Shared>) {
    let records = up.then_some(conn);
    let (tx, rx) = mpsc::channel::<Chunk>();
    let arrivals = shared.clone();
    std::thread::Builder::new()
        .name(if records.is_some() { "relay-up-rd" } else { "relay-down-rd" }.into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            // The TCP handshake's round trip, charged to the client's first bytes.
            let mut handshake = if records.is_some() { delay * 2 } else { Duration::ZERO };
            let mut parser = RecordParser::default();
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Chunk::End);
                        return;
                    }
                    Ok(n) => {
                        let at = Instant::now();
                        let started = parser.starts(&buf[..n]);
                        if !started.is_empty() {
                            let mut log = arrivals.arrivals.lock().unwrap_or_else(|e| e.into_inner());
                            log.extend(started.into_iter().map(|content_type| Arrival { conn, up, content_type, at }));
                        }
                        let due = at + delay + std::mem::take(&mut handshake);
                        if tx.send(Chunk::Data(due, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .expect("relay reader");
    std::thread::Builder::new()
        .name(if records.is_some() { "relay-up-wr" } else { "relay-down-wr" }.into())
        .spawn(move || {
            let mut parser = RecordParser::default();
            let log = if up { &shared.records } else { &shared.down_records };
            while let Ok(chunk) = rx.recv() {
                match chunk {
                    Chunk::End => break,
                    Chunk::Data(due, data) => {
                        sleep_until(due);
                        // Stamped before the write: a stamp taken after it can come later
                        // than the server's answer, which another thread reads.
                        let delivered = Instant::now();
                        // Logged before the write too: the benchmark may look for the
                        // record as soon as the other side has read it.
                        let started = parser.starts(&data);
                        log.lock().unwrap_or_else(|e| e.into_inner()).extend(
                            started.into_iter().map(|content_type| RecordSeen { conn, content_type, delivered }),
                        );
                        if to.write_all(&data).is_err() {
                            break;
                        }
                        let (bytes, writes) = match records {
                            Some(_) => (&shared.up_bytes, &shared.up_writes),
                            None => (&shared.down_bytes, &shared.down_writes),
                        };
                        bytes.fetch_add(data.len() as u64, Ordering::SeqCst);
                        writes.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })
        .expect("relay writer");
}
