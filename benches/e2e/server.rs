//! The registrar in a process of its own, so that the client's and the server's CPU do
//! not mix: the benchmark binary re-executes itself with a hidden argument and drives the
//! child through its standard input (`kill`, `reset`, `freeze`, `thaw`, `restore`,
//! `stats`), one command per line, one answer line each. A registrar process started with
//! [`RegistrarProcess::start_answering`] answers INVITEs itself instead of routing them.

use sip_ptls::registrar::lab::Lab;
use sip_ptls::registrar::{PemFiles, Registrar, RegistrarConfig};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The hidden argument that turns the benchmark binary into a registrar.
pub const ARG: &str = "--sip-ptls-registrar-process";

/// The SIP domain of every benchmark.
pub const DOMAIN: &str = "bench.sip-ptls.test";

/// User `i` (from 0): name and password.
pub fn user(i: usize) -> (String, String) {
    (format!("{}", 100_000 + i), format!("pw{i}"))
}

/// The registrar's counters as the child reports them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Pings received.
    pub pings: u64,
    /// INVITEs received.
    pub invites: u64,
    /// INVITEs the registrar answered itself.
    pub answered: u64,
    /// Challenges sent with `stale=true`.
    pub stale: u64,
}

/// A registrar process and the pipe to it.
pub struct RegistrarProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// The name of the registrar processes' certificate files (`server.pem`, `server.key`).
const CERT: &str = "server";

/// Writes a loopback server certificate from the lab's CA into its directory, where the
/// registrar processes read it.
pub fn write_server_cert(lab: &Lab) {
    let cert = lab.loopback_cert().expect("server certificate");
    lab.dir.write_cert(CERT, &cert).expect("write the server certificate");
}

impl RegistrarProcess {
    /// Starts a registrar process knowing `users` users, with the certificate in `dir`.
    pub fn start(dir: &Path, users: usize, tls12_only: bool) -> RegistrarProcess {
        RegistrarProcess::start_with(dir, users, tls12_only, false)
    }

    /// [`RegistrarProcess::start`] (TLS 1.2 and 1.3) for a registrar that answers every
    /// INVITE itself (`RegistrarConfig::answer_invites`): the call-setup floor.
    pub fn start_answering(dir: &Path, users: usize) -> RegistrarProcess {
        RegistrarProcess::start_with(dir, users, false, true)
    }

    fn start_with(dir: &Path, users: usize, tls12_only: bool, answer_invites: bool) -> RegistrarProcess {
        RegistrarProcess::spawn(dir, 0..users, tls12_only, answer_invites, None)
    }

    /// A registrar process knowing users `users` (TLS 1.2 and 1.3, routing INVITEs), on
    /// `bind` (port 0: any): one of the scale benchmark's registrars, which is started again
    /// on the address it had.
    pub fn start_part(dir: &Path, users: std::ops::Range<usize>, bind: SocketAddr) -> RegistrarProcess {
        RegistrarProcess::spawn(dir, users, false, false, Some(bind))
    }

    fn spawn(
        dir: &Path,
        users: std::ops::Range<usize>,
        tls12_only: bool,
        answer_invites: bool,
        bind: Option<SocketAddr>,
    ) -> RegistrarProcess {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let bind = bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let mut child = Command::new(exe)
            .arg(ARG)
            .arg(dir)
            .arg(users.end.to_string())
            .arg(if tls12_only { "tls12" } else { "tls13" })
            .arg(if answer_invites { "answer" } else { "route" })
            .arg(users.start.to_string())
            .arg(bind.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the registrar process");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the registrar's first line");
        let addr = line.trim().strip_prefix("LISTENING ").and_then(|a| a.parse().ok());
        let addr = addr.unwrap_or_else(|| panic!("registrar process said {line:?}"));
        RegistrarProcess { child, stdin, stdout, addr }
    }

    /// Sends one command and returns the answer line.
    pub fn cmd(&mut self, c: &str) -> String {
        writeln!(self.stdin, "{c}").expect("write to the registrar");
        self.stdin.flush().expect("flush to the registrar");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from the registrar");
        line.trim().to_string()
    }

    /// Sends a command without waiting for its answer (call [`RegistrarProcess::answer`]).
    pub fn send(&mut self, c: &str) {
        writeln!(self.stdin, "{c}").expect("write to the registrar");
        self.stdin.flush().expect("flush to the registrar");
    }

    /// The answer to a command sent with [`RegistrarProcess::send`].
    pub fn answer(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from the registrar");
        line.trim().to_string()
    }

    /// The counters.
    pub fn counts(&mut self) -> Counts {
        let v = self.stats_line();
        let g = |i: usize| v.get(i).copied().unwrap_or(0);
        Counts { accepted: g(0), pings: g(3), invites: g(4), answered: g(6), stale: g(7) }
    }

    /// The registrar process's CPU time so far (user + system), from /proc.
    pub fn cpu(&self) -> std::time::Duration {
        crate::measure::process_cpu(self.child.id())
    }

    /// Kills the process at once (SIGKILL: the kernel closes its connections) and waits
    /// for it to end.
    pub fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every counter of the child's `stats` answer, in its order.
    pub fn stats_line(&mut self) -> Vec<u64> {
        self.cmd("stats").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect()
    }

    /// The registrar process's resident memory in bytes.
    pub fn rss(&self) -> u64 {
        crate::measure::rss(&format!("/proc/{}/status", self.child.id()))
    }
}

impl Drop for RegistrarProcess {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side: `ARG dir end tls12|tls13 answer|route start bind`: users `start..end`,
/// listening on `bind`.
pub fn child_main(args: &[String]) {
    let dir = Path::new(&args[0]);
    let end: usize = args[1].parse().expect("user count");
    let start: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let cert = PemFiles::named(dir, CERT).read().expect("the server certificate");
    let users: Vec<(String, String)> = (start..end).map(user).collect();
    let refs: Vec<(&str, &str)> = users.iter().map(|(u, p)| (u.as_str(), p.as_str())).collect();
    let mut cfg = RegistrarConfig::new(DOMAIN, &refs, cert);
    cfg.tls12_only = args[2] == "tls12";
    cfg.answer_invites = args.get(3).is_some_and(|a| a == "answer");
    if let Some(bind) = args.get(5).and_then(|a| a.parse().ok()) {
        cfg.bind = bind;
    }
    let registrar = Registrar::start(cfg).expect("start the registrar");
    let mut out = std::io::stdout().lock();
    writeln!(out, "LISTENING {}", registrar.addr()).expect("stdout");
    out.flush().expect("stdout");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match line.trim() {
            "kill" => {
                registrar.kill();
                "ok".to_string()
            }
            "reset" => {
                registrar.reset();
                "ok".to_string()
            }
            "freeze" => {
                registrar.freeze();
                "ok".to_string()
            }
            "thaw" => {
                registrar.thaw();
                "ok".to_string()
            }
            "restore" => match registrar.restore() {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("error {e}"),
            },
            "stats" => {
                let s = registrar.stats();
                format!(
                    "stats {} {} {} {} {} {} {} {}",
                    s.accepted,
                    s.open,
                    s.registers,
                    s.pings,
                    s.invites,
                    s.handshakes_ok,
                    s.invites_answered,
                    s.stale_challenges
                )
            }
            "quit" => break,
            other => format!("error unknown command {other:?}"),
        };
        writeln!(out, "{answer}").expect("stdout");
        out.flush().expect("stdout");
    }
    drop(registrar);
}
