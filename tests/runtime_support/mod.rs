//! Shared set-up of the runtime tests: a test PKI, registrars on loopback, certificate
//! files in a temporary directory, a phone with short timers, bounded waits for its
//! events, and a watchdog so that a hang fails the test binary quickly. Every phone
//! records its trace in the test's directory, and the trace is replayed and checked by
//! the invariant monitor once the phone has stopped (`tests/common/trace_check.rs`); the
//! directory is kept when the test fails, trace included.
#![allow(dead_code)]

use sip_ptls::config::{AccountConfig, Backoff, Config, Failback, ServerAddr};
use sip_ptls::registrar::{Keep, Registrar, RegistrarConfig, TestDir, lab};
use sip_ptls::time::Duration as CoreDuration;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[path = "../common/test_phone.rs"]
mod test_phone;
pub use test_phone::TestPhone;

#[path = "../common/trace_check.rs"]
mod trace_check;
#[allow(unused_imports)]
pub use trace_check::{Recording, assert_replays};

pub const DOMAIN: &str = "test.sip-ptls.test";
pub const USERS: [(&str, &str); 2] = [("1001", "secret-one"), ("1002", "secret-two")];

#[path = "../common/watchdog.rs"]
mod watchdog_impl;
pub use watchdog_impl::Watchdog;

/// Starts a watchdog for one test.
pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    watchdog_impl::watchdog_with(name, limit, || {})
}

/// A fresh temporary directory for one test.
pub fn temp_dir() -> TestDir {
    TestDir::new("test").expect("create a temporary directory")
}

/// The shared lab (its `pki`, and its `dir` holding `ca.pem`) with helpers to start
/// registrars and phones with the runtime tests' domain, users and timers.
pub struct Lab(lab::Lab);

impl std::ops::Deref for Lab {
    type Target = lab::Lab;
    fn deref(&self) -> &lab::Lab {
        &self.0
    }
}

impl Lab {
    pub fn new() -> Lab {
        let lab::Lab { pki, dir } = lab::Lab::new("test").expect("test PKI and its directory");
        Lab(lab::Lab { pki, dir: dir.keep(Keep::OnPanic) })
    }

    pub fn registrar(&self) -> Registrar {
        self.registrar_with(|_| {})
    }

    pub fn registrar_with(&self, adjust: impl FnOnce(&mut RegistrarConfig)) -> Registrar {
        self.0.registrar(DOMAIN, &USERS, adjust).expect("start a registrar")
    }

    /// Two lines against `primary` (and `backup`), with timers short enough for tests.
    pub fn config(&self, primary: &Registrar, backup: Option<&Registrar>) -> Config {
        let accounts = USERS.iter().map(|(u, p)| AccountConfig::new(u, p)).collect();
        Config {
            keepalive_interval: CoreDuration::from_millis(1000),
            pong_timeout: CoreDuration::from_millis(1000),
            connect_timeout: CoreDuration::from_millis(2000),
            backoff: Backoff { base: CoreDuration::from_millis(300), max: CoreDuration::from_millis(1000) },
            failback: Failback { probe_interval: CoreDuration::from_millis(500), stable_probes: 3 },
            call_setup_timeout: CoreDuration::from_secs(8),
            ..lab::phone_config(DOMAIN, accounts, primary.addr(), backup.map(Registrar::addr))
        }
    }

    /// A phone running `config`, recording its trace into the lab's directory; the trace
    /// is checked once the phone has shut down ([`TestPhone::shutdown`], or its drop).
    pub fn phone(&self, config: Config) -> TestPhone {
        TestPhone::spawn(config, self.dir.path())
    }

    /// A phone recording its trace to `trace` (which must not exist), checked like
    /// [`Lab::phone`]'s.
    pub fn phone_recording(&self, config: Config, trace: &std::path::Path) -> TestPhone {
        TestPhone::spawn_recording(Recording::at(trace, config), self.dir.path())
    }

    /// `aastra.cfg` in the lab's directory for `sip-ptls run --web`: the sample
    /// configuration against `registrar`, the administrator password 4321, then `extra`.
    pub fn web_config(&self, registrar: &Registrar, extra: &str) -> std::path::PathBuf {
        let text = format!("{}admin password: 4321\n{extra}", sample_aastra_cfg("127.0.0.1", registrar.addr().port()));
        self.dir.write("aastra.cfg", text).expect("write a test file")
    }

    /// The flags that make the web interface serve HTTPS with a certificate for
    /// 127.0.0.1 from the lab's CA.
    pub fn web_https_flags(&self) -> Vec<std::ffi::OsString> {
        let identity = self.loopback_cert().expect("a certificate for 127.0.0.1");
        let cert = self.dir.write("web.pem", &identity.cert_pem).expect("write the certificate");
        let key = self.dir.write("web.key", &identity.key_pem).expect("write the key");
        vec!["--web-cert".into(), cert.into_os_string(), "--web-key".into(), key.into_os_string()]
    }

    /// A phone without [`TestPhone`]'s event handling, recording like [`Lab::phone`]:
    /// check its trace with [`Recording::shut_down_and_check`].
    pub fn raw_phone(&self, config: Config) -> (sip_ptls::runtime::Phone, Recording) {
        let recording = Recording::new(self.dir.path(), config);
        (recording.spawn(self.dir.path()), recording)
    }
}

pub fn addr(r: &Registrar) -> ServerAddr {
    ServerAddr::new(r.addr().ip().to_string(), r.addr().port())
}

/// A TCP relay on loopback in front of a registrar, to cut one phone's path without
/// touching the others: `cut` closes every relayed connection and refuses new ones,
/// `restore` accepts again on the same port.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    target: std::net::SocketAddr,
    state: Arc<std::sync::Mutex<RelayState>>,
}

#[derive(Default)]
struct RelayState {
    open: Vec<std::net::TcpStream>,
    listening: Option<Arc<AtomicBool>>,
}

impl Relay {
    pub fn start(target: std::net::SocketAddr) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let relay = Relay { addr, target, state: Arc::default() };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        self.state.lock().expect("relay state").listening = Some(stop.clone());
        let (state, target) = (self.state.clone(), self.target);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let Ok(server) = std::net::TcpStream::connect(target) else { continue };
                let _ = client.set_nonblocking(false);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { continue };
                state
                    .lock()
                    .expect("relay state")
                    .open
                    .extend([client.try_clone(), server.try_clone()].into_iter().flatten());
                pipe(client, s2);
                pipe(server, c2);
            }
        });
    }

    /// Closes every relayed connection and stops listening (connects are refused).
    pub fn cut(&self) {
        let mut st = self.state.lock().expect("relay state");
        if let Some(stop) = st.listening.take() {
            stop.store(true, Ordering::SeqCst);
        }
        for s in st.open.drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        drop(st);
        // Let the accept thread see the flag and drop the listener.
        std::thread::sleep(Duration::from_millis(30));
    }

    /// Listens again on the same port.
    pub fn restore(&self) {
        let listener = std::net::TcpListener::bind(self.addr).expect("re-bind the relay port");
        self.serve(listener);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}

/// The `sip-ptls` command.
#[cfg(feature = "cli")]
pub const BIN: &str = env!("CARGO_BIN_EXE_sip-ptls");

/// `sip-ptls replay TRACE --config CFG`: its exit status, standard output and error.
#[cfg(feature = "cli")]
pub fn cli_replay(trace: &std::path::Path, cfg: &std::path::Path) -> (i32, String, String) {
    let out =
        std::process::Command::new(BIN).arg("replay").arg(trace).arg("--config").arg(cfg).output().expect("run replay");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// The check of [`assert_replays`] for the trace of a `sip-ptls run --record --config
/// CFG`, made by `sip-ptls replay` with the same file (the configuration is built from it
/// the way `run` built it): every output identical, no invariant broken, no warning.
/// Returns the number of outputs compared.
#[cfg(feature = "cli")]
pub fn assert_cli_replays(trace: &std::path::Path, cfg: &std::path::Path) -> usize {
    let (code, out, err) = cli_replay(trace, cfg);
    assert_eq!(code, 0, "sip-ptls replay {}:\nstdout:\n{out}\nstderr:\n{err}", trace.display());
    assert!(!err.contains("warning"), "{err}");
    assert!(out.contains("[ok] no invariant broken"), "{out}");
    let outputs = out
        .split_once("every one of the ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of identical outputs in:\n{out}"));
    eprintln!("trace: {outputs} outputs replayed, monitor clean ({})", trace.display());
    outputs
}

/// A sample `aastra.cfg` for the command line: Persistent TLS to `proxy:port`, two lines,
/// the lab's domain and CA file.
pub fn sample_aastra_cfg(proxy: &str, port: u16) -> String {
    format!(
        "# sample aastra.cfg\n\
         sip transport protocol: 4\n\
         sips persistent tls: 1\n\
         sip persistent tls keep alive: 1\n\
         sip proxy ip: {proxy}\n\
         sip proxy port: {port}\n\
         sip registrar ip: {DOMAIN}\n\
         sips trusted certificates: ca.pem\n\
         sip line1 user name: 1001\n\
         sip line1 password: secret-one\n\
         sip line2 user name: 1002\n\
         sip line2 password: secret-two\n"
    )
}
