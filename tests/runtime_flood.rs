//! A server that floods the phone over real TLS on loopback: the phone must stay fair
//! (pings, registration refreshes and commands on time while bytes pour in) and its event
//! queue must stay bounded without ever losing an outcome.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod runtime_support;

use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use runtime_support::{Lab, watchdog};
use rustls::pki_types::pem::PemObject;
use sip_ptls::config::{AccountConfig, Config};
use sip_ptls::ids::{AccountId, Server};
use sip_ptls::registrar::lab;
use sip_ptls::runtime::{Phone, PhoneHandle};
use sip_ptls::sip::{Frame, Framer, Limits, Message};
use sip_ptls::time::Duration as CoreDuration;
use sip_ptls::{CallOutcome, Event};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server pours onto the connection once the phone has registered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flood {
    /// Endless CRLFs, as fast as the socket takes them.
    Crlf,
    /// `n` 180 Ringing responses to the first INVITE, then a 486.
    Ringing(u64),
}

/// What the server saw and did.
#[derive(Default)]
struct Log {
    pings: Vec<Instant>,
    registers: Vec<Instant>,
}

/// A TLS SIP server on loopback that answers REGISTER with 200 (Expires 4) and floods.
struct FloodServer {
    addr: std::net::SocketAddr,
    log: Arc<Mutex<Log>>,
    flooded: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FloodServer {
    fn start(lab: &Lab, flood: Flood) -> FloodServer {
        let cert = lab.loopback_cert().expect("server certificate");
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("key PEM");
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server TLS");
        let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = FloodServer {
            addr,
            log: Arc::default(),
            flooded: Arc::default(),
            done: Arc::default(),
            stop: Arc::default(),
        };
        let (log, flooded, done, stop) =
            (server.log.clone(), server.flooded.clone(), server.done.clone(), server.stop.clone());
        std::thread::spawn(move || {
            // One connection is all this test needs.
            let Ok((tcp, _)) = listener.accept() else { return };
            let _ = tcp.set_nodelay(true);
            let Ok(tcp) = async_net::TcpStream::try_from(tcp) else { return };
            async_io::block_on(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                serve(tls, flood, log, flooded, done, stop).await;
            });
        });
        server
    }
}

impl Drop for FloodServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A response to `req` with the headers a UAC matches on.
fn response(req: &Message, status: u16, reason: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut r = Message::response(status, reason);
    for via in req.header_values("Via") {
        r.push_header("Via", via);
    }
    for name in ["From", "Call-ID", "CSeq"] {
        if let Some(v) = req.header(name) {
            r.push_header(name, v);
        }
    }
    let to = req.header("To").unwrap_or_default();
    r.push_header("To", if to.contains("tag=") { to.to_owned() } else { format!("{to};tag=flood") });
    for (name, value) in extra {
        r.push_header(name, *value);
    }
    r.to_bytes()
}

async fn serve(
    tls: futures_rustls::server::TlsStream<async_net::TcpStream>,
    flood: Flood,
    log: Arc<Mutex<Log>>,
    flooded: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let (mut rd, mut wr) = futures_lite::io::split(tls);
    let (replies_tx, replies) = async_channel::unbounded::<Vec<u8>>();
    let (invite_tx, invite) = async_channel::bounded::<Message>(1);
    let registered = Arc::new(AtomicBool::new(false));
    let reader = {
        let registered = registered.clone();
        async move {
            let mut framer = Framer::new(Limits::default());
            let mut buf = vec![0u8; 16 * 1024];
            let mut crlfs = 0;
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                while let Ok(Some(frame)) = framer.next_frame() {
                    match frame {
                        Frame::Crlf => {
                            crlfs += 1;
                            if crlfs == 2 {
                                crlfs = 0;
                                log.lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .pings
                                    .push(Instant::now());
                            }
                        }
                        Frame::Message(msg) => {
                            crlfs = 0;
                            match msg.method() {
                                Some("REGISTER") => {
                                    log.lock()
                                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                                        .registers
                                        .push(Instant::now());
                                    let _ = replies_tx.try_send(response(&msg, 200, "OK", &[("Expires", "4")]));
                                    registered.store(true, Ordering::SeqCst);
                                }
                                Some("INVITE") => {
                                    let _ = invite_tx.try_send(msg);
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    };
    let writer = async move {
        let crlfs = b"\r\n".repeat(8 * 1024);
        let mut ringing: Option<(Message, u64)> = None;
        while !stop.load(Ordering::SeqCst) {
            while let Ok(r) = replies.try_recv() {
                if wr.write_all(&r).await.is_err() {
                    return;
                }
            }
            let flooding = registered.load(Ordering::SeqCst) && !done.load(Ordering::SeqCst);
            let chunk = match flood {
                Flood::Crlf if flooding => crlfs.clone(),
                Flood::Ringing(n) if flooding => {
                    if ringing.is_none()
                        && let Ok(inv) = invite.try_recv()
                    {
                        ringing = Some((inv, 0));
                    }
                    match &mut ringing {
                        Some((inv, sent)) if *sent < n => {
                            let one = response(inv, 180, "Ringing", &[("Content-Length", "0")]);
                            let batch = (n - *sent).min(64);
                            *sent += batch;
                            one.repeat(batch as usize)
                        }
                        Some((inv, _)) => {
                            done.store(true, Ordering::SeqCst);
                            response(inv, 486, "Busy Here", &[("Content-Length", "0")])
                        }
                        None => Vec::new(),
                    }
                }
                _ => Vec::new(),
            };
            if chunk.is_empty() {
                async_io::Timer::after(Duration::from_millis(5)).await;
                continue;
            }
            if wr.write_all(&chunk).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            flooded.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            // Let the reader take the phone's pings.
            future::yield_now().await;
        }
    };
    future::or(reader, writer).await;
}

fn config(server: &FloodServer, keepalive_ms: u64) -> Config {
    let mut config =
        lab::phone_config(runtime_support::DOMAIN, vec![AccountConfig::new("1001", "secret-one")], server.addr, None);
    config.keepalive_interval = CoreDuration::from_millis(keepalive_ms);
    config.pong_timeout = CoreDuration::from_millis(1000);
    config.connect_timeout = CoreDuration::from_millis(2000);
    config
}

/// How long a `status` command takes, or `None` if it took more than `limit`.
fn status_latency(handle: &PhoneHandle, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    async_io::block_on(future::or(async { handle.status().await.map(|_| ()) }, async {
        async_io::Timer::after(limit).await;
        None
    }))?;
    Some(t.elapsed())
}

fn wait_event(phone: &Phone, limit: Duration, want: impl Fn(&Event) -> bool) -> Option<Event> {
    let end = Instant::now() + limit;
    while let Some(e) = phone.events.next_timeout(end.saturating_duration_since(Instant::now())) {
        if want(&e.event) {
            return Some(e.event);
        }
    }
    None
}

#[test]
fn a_flood_of_bytes_does_not_starve_pings_refreshes_or_commands() {
    let _w = watchdog("flood fairness", Duration::from_secs(90));
    let lab = Lab::new();
    let server = FloodServer::start(&lab, Flood::Crlf);
    let keepalive = Duration::from_millis(1000);
    let (phone, recording) = lab.raw_phone(config(&server, 1000));
    wait_event(&phone, Duration::from_secs(10), |e| matches!(e, Event::Registered { server: Server::Primary, .. }))
        .expect("registered");
    // The flood starts once registered; measure over 8 s of it.
    let start = Instant::now();
    let window = Duration::from_secs(8);
    let mut worst_command = Duration::ZERO;
    let mut commands = 0;
    while start.elapsed() < window {
        let latency = status_latency(&phone.handle, Duration::from_secs(5));
        let latency = latency.unwrap_or_else(|| panic!("a status command got no answer within 5 s under the flood"));
        worst_command = worst_command.max(latency);
        commands += 1;
        while phone.events.try_next().is_some() {}
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = Instant::now();
    let flooded = server.flooded.load(Ordering::SeqCst);
    let log = server.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let in_window =
        |ts: &[Instant]| -> Vec<Instant> { ts.iter().copied().filter(|t| *t >= start && *t <= end).collect() };
    let max_gap = |ts: &[Instant]| -> Duration {
        let mut marks = vec![start];
        marks.extend(in_window(ts));
        marks.push(end);
        marks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    };
    let ping_gap = max_gap(&log.pings);
    let register_gap = max_gap(&log.registers);
    let pings = in_window(&log.pings).len();
    let registers = in_window(&log.registers).len();
    println!(
        "flood: {:.1} MB of CRLF in {:?} ({:.0} MB/s); pings: {pings}, longest gap {ping_gap:?} (interval {keepalive:?}, \
         jittered 0.8-1.0); REGISTER refreshes: {registers}, longest gap {register_gap:?} (every 2 s); \
         status commands: {commands}, worst latency {worst_command:?}",
        flooded as f64 / 1e6,
        end - start,
        flooded as f64 / 1e6 / (end - start).as_secs_f64(),
    );
    assert!(flooded > 10_000_000, "the server flooded only {flooded} bytes");
    assert!(ping_gap <= keepalive * 3, "a ping came {ping_gap:?} after the previous one (interval {keepalive:?})");
    assert!(register_gap <= Duration::from_secs(6), "a REGISTER refresh came {register_gap:?} after the previous one");
    assert!(worst_command <= Duration::from_secs(1), "a status command took {worst_command:?}");
    drop(log);
    drop(server);
    recording.shut_down_and_check(phone, Duration::from_secs(5));
}

#[test]
fn a_flood_of_informational_events_is_bounded_and_the_outcome_is_kept() {
    let _w = watchdog("event bound", Duration::from_secs(90));
    let lab = Lab::new();
    let ringing = 50_000;
    let server = FloodServer::start(&lab, Flood::Ringing(ringing));
    let (phone, recording) = lab.raw_phone(config(&server, 30_000));
    wait_event(&phone, Duration::from_secs(10), |e| matches!(e, Event::Registered { server: Server::Primary, .. }))
        .expect("registered");
    let call = phone.handle.place_call_blocking(AccountId(0), "2000", Vec::new()).expect("place a call");
    // The application reads nothing while the server sends 50 000 180s and then a 486.
    let t = Instant::now();
    while !server.done.load(Ordering::SeqCst) {
        assert!(t.elapsed() < Duration::from_secs(30), "the server did not finish its flood");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The phone has taken everything once a command goes through after the last bytes.
    std::thread::sleep(Duration::from_millis(500));
    let status = phone.handle.status_blocking().expect("status");
    let mut waiting = Vec::new();
    while let Some(e) = phone.events.try_next() {
        waiting.push(e.event);
    }
    let progress = waiting.iter().filter(|e| matches!(e, Event::CallProgress { .. })).count();
    // Should the phone still be busy with the tail of the flood, the outcome follows.
    let outcome = waiting
        .iter()
        .find(|e| matches!(e, Event::CallOutcome { .. }))
        .cloned()
        .or_else(|| wait_event(&phone, Duration::from_secs(10), |e| matches!(e, Event::CallOutcome { .. })));
    println!(
        "events: {ringing} x 180 sent; {} events waiting unread, {progress} of them CallProgress; {} dropped (Status)",
        waiting.len(),
        status.dropped_events,
    );
    assert_eq!(outcome, Some(Event::CallOutcome { call, outcome: CallOutcome::Rejected { status: 486 } }));
    assert!(waiting.len() <= sip_ptls::runtime::INFORMATIONAL_CAPACITY + 8, "{} events were waiting", waiting.len());
    assert!(status.dropped_events + progress as u64 >= ringing - 1, "{} dropped", status.dropped_events);
    recording.shut_down_and_check(phone, Duration::from_secs(5));
}
