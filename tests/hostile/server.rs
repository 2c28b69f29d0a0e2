//! A scripted SIP-over-TLS server on loopback that misbehaves on purpose: a rustls server
//! with the lab's certificate that reads the phone's requests with the crate's own
//! `Framer`, answers REGISTER as its [`RegisterMode`] says, and once armed (at TLS, or
//! once every account registered on the connection) runs its [`Action`]: floods, stops
//! reading, drips a message that never ends. Everything it sees is kept in a [`Log`], the
//! server's view that the tests compare with the phone's events.

use super::{DOMAIN, USERS};
use async_io::Timer;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sip_ptls::registrar::lab::Lab;
use sip_ptls::sip::headers::{NameAddr, uri_user};
use sip_ptls::sip::{Frame, Framer, Limits, Message};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How the server answers REGISTER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterMode {
    /// 200, granting `expires` seconds (Contact `expires` parameter and Expires header).
    Ok { expires: u32 },
    /// 503 with this `Retry-After`.
    Unavailable { retry_after: u32 },
    /// 401 with a fresh nonce every time, whatever the credentials.
    Challenge,
    /// 423 with a `Min-Expires` higher every time.
    MinExpires,
}

/// What the server does to a connection once it is armed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Behaves.
    Nothing,
    /// INVITEs, each a new dialog, as fast as the socket takes them.
    FloodInvites,
    /// OPTIONS requests as fast as the socket takes them.
    FloodOptions,
    /// Never reads the socket again. With `blind_pongs` it still writes a CRLF pong
    /// every 300 ms (so pings look answered); with `pump_options` it writes OPTIONS
    /// requests as fast as it can, whose answers the phone can never deliver.
    StopReading { blind_pongs: bool, pump_options: bool },
    /// One byte every 100 ms of a request whose header block never ends. Nothing else is
    /// written on the connection from then on; the connection is closed when the action
    /// changes.
    Slowloris,
}

/// When a connection is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// As soon as TLS is up.
    OnTls,
    /// Once every account got a 2xx to REGISTER on the connection.
    AfterRegistered,
}

/// The server's behaviour; the test may change it while the server runs.
#[derive(Clone, Debug)]
pub struct Script {
    pub register: RegisterMode,
    pub action: Action,
    pub start: Start,
}

impl Script {
    /// A well-behaved server: 200 for an hour, pongs, 200 to OPTIONS, 486 to INVITE.
    pub fn good() -> Script {
        Script { register: RegisterMode::Ok { expires: 3600 }, action: Action::Nothing, start: Start::AfterRegistered }
    }
}

/// A request the phone sent.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub conn: u64,
    pub method: String,
    /// The From user.
    pub user: String,
}

/// One accepted connection.
#[derive(Clone, Debug)]
pub struct ConnRecord {
    pub id: u64,
    pub accepted: Instant,
    pub tls_up: Option<Instant>,
    pub armed: Option<Instant>,
    pub closed: Option<Instant>,
    pub why: String,
}

/// The server's view.
#[derive(Clone, Debug, Default)]
pub struct Log {
    pub connections: Vec<ConnRecord>,
    /// Every request read from the phone.
    pub requests: Vec<Request>,
    /// Responses read from the phone, by status.
    pub responses: BTreeMap<u16, u64>,
    /// CRLFCRLF pings read: when, on which connection.
    pub pings: Vec<(Instant, u64)>,
    /// Framing errors of the phone's stream (there should be none).
    pub framing_errors: Vec<String>,
}

impl Log {
    /// When each user's REGISTERs arrived.
    pub fn registers_of(&self, user: &str) -> Vec<Instant> {
        self.requests.iter().filter(|r| r.method == "REGISTER" && r.user == user).map(|r| r.at).collect()
    }

    /// Responses with this status read so far.
    pub fn responses_with(&self, status: u16) -> u64 {
        self.responses.get(&status).copied().unwrap_or(0)
    }

    /// Pings read since `t`.
    pub fn pings_since(&self, t: Instant) -> usize {
        self.pings.iter().filter(|(at, _)| *at >= t).count()
    }
}

struct Conn {
    id: u64,
    answers: async_channel::Sender<Vec<u8>>,
    armed: AtomicBool,
    /// A slowloris message is under way: nothing else may be written.
    dripping: AtomicBool,
    close: AtomicBool,
    registered: Mutex<BTreeSet<String>>,
}

impl Conn {
    fn send(&self, bytes: Vec<u8>) {
        if !self.dripping.load(Ordering::SeqCst) {
            let _ = self.answers.try_send(bytes);
        }
    }
}

struct Shared {
    tls: Arc<rustls::ServerConfig>,
    script: Mutex<Script>,
    log: Mutex<Log>,
    conns: Mutex<Vec<Arc<Conn>>>,
    stop: AtomicBool,
    next_conn: AtomicU64,
    nonce: AtomicU64,
    min_expires: AtomicU32,
    /// Flood (or pump) requests written.
    flooded: AtomicU64,
    /// Slowloris bytes written.
    dripped: AtomicU64,
    port: u16,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn script(&self) -> Script {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn conn_record(&self, id: u64, f: impl FnOnce(&mut ConnRecord)) {
        if let Some(r) = self.log().connections.iter_mut().find(|r| r.id == id) {
            f(r);
        }
    }
}

/// A running hostile server; stops (closing every connection) when dropped.
pub struct HostileServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

fn server_tls(lab: &Lab) -> Arc<rustls::ServerConfig> {
    let cert = lab.loopback_cert().expect("a loopback certificate");
    let certs = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("key PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    Arc::new(config)
}

impl HostileServer {
    /// Listens on 127.0.0.1 with a certificate of `lab`'s CA, behaving as `script` says.
    pub fn start(lab: &Lab, script: Script) -> HostileServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the hostile server");
        let addr = listener.local_addr().expect("its address");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let shared = Arc::new(Shared {
            tls: server_tls(lab),
            script: Mutex::new(script),
            log: Mutex::default(),
            conns: Mutex::default(),
            stop: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            nonce: AtomicU64::new(1),
            min_expires: AtomicU32::new(3600),
            flooded: AtomicU64::new(0),
            dripped: AtomicU64::new(0),
            port: addr.port(),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let s = s.clone();
                        std::thread::spawn(move || serve(s, tcp));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HostileServer { addr, shared }
    }

    /// A copy of the server's view so far.
    pub fn log(&self) -> Log {
        self.shared.log().clone()
    }

    /// Reads the view without copying it.
    pub fn with_log<T>(&self, f: impl FnOnce(&Log) -> T) -> T {
        f(&self.shared.log())
    }

    pub fn set_register(&self, mode: RegisterMode) {
        self.shared.script.lock().unwrap_or_else(|e| e.into_inner()).register = mode;
    }

    pub fn set_action(&self, action: Action) {
        self.shared.script.lock().unwrap_or_else(|e| e.into_inner()).action = action;
    }

    /// Closes every open connection (TLS close_notify and FIN).
    pub fn close_all(&self) {
        for c in self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            c.close.store(true, Ordering::SeqCst);
        }
    }

    /// Writes `bytes` on the newest open connection; false if there is none.
    pub fn send_to_newest(&self, bytes: Vec<u8>) -> bool {
        let conns = self.shared.conns.lock().unwrap_or_else(|e| e.into_inner());
        match conns.iter().rev().find(|c| !c.close.load(Ordering::SeqCst) && !c.answers.is_closed()) {
            Some(c) => {
                c.send(bytes);
                true
            }
            None => false,
        }
    }

    /// Flood (or pump) requests written so far.
    pub fn flooded(&self) -> u64 {
        self.shared.flooded.load(Ordering::Relaxed)
    }

    /// Slowloris bytes written so far.
    pub fn dripped(&self) -> u64 {
        self.shared.dripped.load(Ordering::Relaxed)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(shared: Arc<Shared>, tcp: std::net::TcpStream) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let accepted = Instant::now();
    shared.log().connections.push(ConnRecord {
        id,
        accepted,
        tls_up: None,
        armed: None,
        closed: None,
        why: String::new(),
    });
    let why = async_io::block_on(serve_tls(shared.clone(), id, tcp));
    shared.conn_record(id, |r| {
        r.closed = Some(Instant::now());
        r.why = why;
    });
}

async fn serve_tls(shared: Arc<Shared>, id: u64, tcp: std::net::TcpStream) -> String {
    let _ = tcp.set_nodelay(true);
    let Ok(tcp) = async_net::TcpStream::try_from(tcp) else { return "socket".into() };
    let acceptor = TlsAcceptor::from(shared.tls.clone());
    let accepted = future::or(async { Some(acceptor.accept(tcp).await) }, async {
        Timer::after(Duration::from_secs(10)).await;
        None
    })
    .await;
    let tls = match accepted {
        Some(Ok(tls)) => tls,
        Some(Err(e)) => return format!("handshake: {e}"),
        None => return "handshake timed out".into(),
    };
    let (answers, queue) = async_channel::unbounded();
    let conn = Arc::new(Conn {
        id,
        answers,
        armed: AtomicBool::new(false),
        dripping: AtomicBool::new(false),
        close: AtomicBool::new(false),
        registered: Mutex::default(),
    });
    shared.conns.lock().unwrap_or_else(|e| e.into_inner()).push(conn.clone());
    shared.conn_record(id, |r| r.tls_up = Some(Instant::now()));
    if shared.script().start == Start::OnTls {
        arm(&shared, &conn);
    }
    let (rd, wr) = futures_lite::io::split(tls);
    let why = future::or(reader(&shared, &conn, rd), writer(&shared, &conn, wr, queue)).await;
    conn.close.store(true, Ordering::SeqCst);
    conn.answers.close();
    why
}

fn arm(shared: &Shared, conn: &Conn) {
    if !conn.armed.swap(true, Ordering::SeqCst) {
        shared.conn_record(conn.id, |r| r.armed = Some(Instant::now()));
    }
}

type ReadHalf = futures_lite::io::ReadHalf<futures_rustls::server::TlsStream<async_net::TcpStream>>;
type WriteHalf = futures_lite::io::WriteHalf<futures_rustls::server::TlsStream<async_net::TcpStream>>;

fn stops_reading(shared: &Shared, conn: &Conn) -> bool {
    conn.armed.load(Ordering::SeqCst) && matches!(shared.script().action, Action::StopReading { .. })
}

async fn reader(shared: &Shared, conn: &Conn, mut rd: ReadHalf) -> String {
    let mut framer = Framer::new(Limits::default());
    let mut buf = vec![0u8; 16 * 1024];
    let mut crlfs = 0u32;
    loop {
        if stops_reading(shared, conn) {
            return future::pending().await;
        }
        let n = match rd.read(&mut buf).await {
            Ok(0) => return "the phone closed".into(),
            Ok(n) => n,
            Err(e) => return format!("read: {e}"),
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Crlf)) => {
                    crlfs += 1;
                    if crlfs == 2 {
                        crlfs = 0;
                        shared.log().pings.push((Instant::now(), conn.id));
                        conn.send(b"\r\n".to_vec());
                    }
                }
                Ok(Some(Frame::Message(m))) => {
                    crlfs = 0;
                    handle(shared, conn, m);
                }
                Err(e) => {
                    shared.log().framing_errors.push(e.to_string());
                    return format!("framing: {e}");
                }
            }
        }
    }
}

/// A response to `req` echoing its Via, From, To (tagged), Call-ID and CSeq.
fn response(req: &Message, status: u16, reason: &str) -> Message {
    let mut r = Message::response(status, reason);
    for v in req.header_all("Via") {
        r.push_header("Via", v);
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = req.header(name) {
            let v = if name == "To" && !v.contains("tag=") { format!("{v};tag=hostile") } else { v.to_owned() };
            r.push_header(name, v);
        }
    }
    r
}

fn handle(shared: &Shared, conn: &Conn, m: Message) {
    if let Some(status) = m.status() {
        *shared.log().responses.entry(status).or_default() += 1;
        return;
    }
    let method = m.method().unwrap_or("").to_owned();
    let user = m.header("From").and_then(NameAddr::parse).and_then(|n| uri_user(&n.uri).map(str::to_owned));
    let user = user.unwrap_or_default();
    shared.log().requests.push(Request {
        at: Instant::now(),
        conn: conn.id,
        method: method.clone(),
        user: user.clone(),
    });
    match method.as_str() {
        "REGISTER" => {
            let script = shared.script();
            let answer = match script.register {
                RegisterMode::Ok { expires } => {
                    let mut r = response(&m, 200, "OK");
                    if let Some(c) = m.header("Contact") {
                        r.push_header("Contact", format!("{c};expires={expires}"));
                    }
                    r.push_header("Expires", expires.to_string());
                    let mut done = conn.registered.lock().unwrap_or_else(|e| e.into_inner());
                    done.insert(user);
                    if script.start == Start::AfterRegistered && done.len() >= USERS.len() {
                        arm(shared, conn);
                    }
                    r
                }
                RegisterMode::Unavailable { retry_after } => {
                    response(&m, 503, "Service Unavailable").with_header("Retry-After", retry_after.to_string())
                }
                RegisterMode::Challenge => {
                    let n = shared.nonce.fetch_add(1, Ordering::Relaxed);
                    response(&m, 401, "Unauthorized").with_header(
                        "WWW-Authenticate",
                        format!("Digest realm=\"{DOMAIN}\", nonce=\"hostile{n:016x}\", qop=\"auth\", algorithm=MD5"),
                    )
                }
                RegisterMode::MinExpires => {
                    let min = shared.min_expires.fetch_add(3600, Ordering::Relaxed);
                    response(&m, 423, "Interval Too Brief").with_header("Min-Expires", min.to_string())
                }
            };
            conn.send(answer.to_bytes());
        }
        "INVITE" => {
            let mut out = response(&m, 100, "Trying").to_bytes();
            out.extend(response(&m, 486, "Busy Here").to_bytes());
            conn.send(out);
        }
        "ACK" => {}
        _ => conn.send(response(&m, 200, "OK").to_bytes()),
    }
}

/// A request from the server to account `seq % 2`, each a dialog of its own.
pub fn request_to_phone(method: &str, seq: u64, port: u16) -> Vec<u8> {
    let user = USERS[(seq % USERS.len() as u64) as usize].0;
    format!(
        "{method} sip:{user}@{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK-hostile-{seq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:hostile@{DOMAIN}>;tag=h{seq}\r\n\
         To: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: hostile-{seq}@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:hostile@127.0.0.1:{port};transport=tls>\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The slowloris request: a header line that never ends.
fn slow_byte(i: u64) -> u8 {
    const HEAD: &[u8] =
        b"OPTIONS sip:1001@test.sip-ptls.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK-slow\r\nX-Slow: ";
    HEAD.get(i as usize).copied().unwrap_or(b'a')
}

/// Writes `bytes` unless the server stops first; false on error or stop.
async fn write(shared: &Shared, conn: &Conn, wr: &mut WriteHalf, bytes: &[u8]) -> bool {
    future::or(async { wr.write_all(bytes).await.is_ok() && wr.flush().await.is_ok() }, async {
        while !shared.stop.load(Ordering::SeqCst) && !conn.close.load(Ordering::SeqCst) {
            Timer::after(Duration::from_millis(100)).await;
        }
        false
    })
    .await
}

async fn writer(shared: &Shared, conn: &Conn, mut wr: WriteHalf, queue: async_channel::Receiver<Vec<u8>>) -> String {
    let mut seq = 0u64;
    let mut dripped = 0u64;
    let mut last_blind_pong = Instant::now();
    let mut held: Option<Vec<u8>> = None;
    loop {
        if shared.stop.load(Ordering::SeqCst) || conn.close.load(Ordering::SeqCst) {
            let _ = future::or(async { wr.close().await.is_ok() }, async {
                Timer::after(Duration::from_millis(500)).await;
                false
            })
            .await;
            return "closed by the server".into();
        }
        let mut batch: Vec<u8> = held.take().unwrap_or_default();
        while batch.len() < 64 * 1024 {
            match queue.try_recv() {
                Ok(b) => batch.extend(b),
                Err(_) => break,
            }
        }
        let action = if conn.armed.load(Ordering::SeqCst) { shared.script().action } else { Action::Nothing };
        if conn.dripping.load(Ordering::SeqCst) && action != Action::Slowloris {
            conn.close.store(true, Ordering::SeqCst);
            continue;
        }
        let mut pace = None;
        match action {
            Action::Nothing => {}
            Action::FloodInvites | Action::FloodOptions => {
                let method = if action == Action::FloodInvites { "INVITE" } else { "OPTIONS" };
                for _ in 0..32 {
                    batch.extend(request_to_phone(method, seq, shared.port));
                    seq += 1;
                }
                shared.flooded.fetch_add(32, Ordering::Relaxed);
            }
            Action::StopReading { blind_pongs, pump_options } => {
                if blind_pongs && last_blind_pong.elapsed() >= Duration::from_millis(300) {
                    batch.extend(b"\r\n");
                    last_blind_pong = Instant::now();
                }
                if pump_options {
                    for _ in 0..32 {
                        batch.extend(request_to_phone("OPTIONS", seq, shared.port));
                        seq += 1;
                    }
                    shared.flooded.fetch_add(32, Ordering::Relaxed);
                } else {
                    pace = Some(Duration::from_millis(50));
                }
            }
            Action::Slowloris => {
                conn.dripping.store(true, Ordering::SeqCst);
                batch.clear();
                batch.push(slow_byte(dripped));
                dripped += 1;
                shared.dripped.fetch_add(1, Ordering::Relaxed);
                pace = Some(Duration::from_millis(100));
            }
        }
        if !batch.is_empty() && !write(shared, conn, &mut wr, &batch).await {
            return "write failed".into();
        }
        match pace {
            Some(d) => {
                Timer::after(d).await;
            }
            None if action == Action::Nothing => {
                held = future::or(async { queue.recv().await.ok() }, async {
                    Timer::after(Duration::from_millis(20)).await;
                    None
                })
                .await;
            }
            None => {}
        }
    }
}
