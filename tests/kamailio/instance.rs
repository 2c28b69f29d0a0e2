//! One running Kamailio: started in its own process group so that a signal reaches the
//! main process and every worker (`kill -SIG -- -PGID`), waited for until it listens and
//! answers on its control socket, queried with `kamcmd`, and killed when dropped, also
//! when a test panics.

use super::config::{self, Files, KamailioConfig};
use super::pki::Pki;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Process groups of every instance alive in this test binary, so that a watchdog that
/// ends a hung test can kill them first (Drop does not run on `process::exit`).
static LIVE: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// SIGKILLs every live instance of this test binary.
pub fn kill_all_live() {
    let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for pgid in live {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
    }
}

fn set_live(pgid: u32, live: bool) {
    if let Ok(mut l) = LIVE.lock() {
        l.retain(|p| *p != pgid);
        if live {
            l.push(pgid);
        }
    }
}

/// How long an instance may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The Kamailio binary, or a panic saying how to install it: these tests must fail, not
/// pass silently, on a machine without Kamailio.
pub fn kamailio_binary() -> PathBuf {
    let bin = PathBuf::from("/usr/sbin/kamailio");
    let kamcmd = Path::new("/usr/sbin/kamcmd");
    assert!(
        bin.exists() && kamcmd.exists(),
        "Kamailio is not installed (/usr/sbin/kamailio, /usr/sbin/kamcmd missing): these interop tests need it; \
         run `bash scripts/deps.sh` (scripts/test-all.sh and .ci/run do)"
    );
    assert!(
        config::module_dir().is_some_and(|d| d.join("outbound.so").exists()),
        "Kamailio's TLS or outbound module is missing: run `bash scripts/deps.sh`"
    );
    bin
}

/// A free TCP port on 127.0.0.1 (bound then released; the kernel does not hand it out
/// again at once).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// Process state as signals left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Running.
    Running,
    /// SIGSTOPped (frozen).
    Stopped,
    /// SIGKILLed.
    Dead,
}

/// A Kamailio process group.
pub struct Kamailio {
    /// Its configuration.
    pub cfg: KamailioConfig,
    files: Files,
    child: Option<Child>,
    state: State,
    /// When the current process was started.
    pub started: Instant,
}

impl Kamailio {
    /// Writes the configuration into `dir` and starts the instance.
    pub fn start(dir: &Path, pki: &Pki, cfg: KamailioConfig) -> Kamailio {
        let bin = kamailio_binary();
        let files = Files::new(dir, &cfg.name);
        let modules = config::module_dir().expect("module dir checked by kamailio_binary");
        let server = pki.server(cfg.cert);
        std::fs::write(&files.tls, config::render_tls(&cfg, &server.cert, &server.key, &pki.ca)).expect("tls.cfg");
        std::fs::write(&files.cfg, config::render_kamailio(&cfg, &files, &modules)).expect("kamailio.cfg");
        std::fs::create_dir_all(&files.run).expect("runtime dir");
        let check = Command::new(&bin).arg("-c").arg("-f").arg(&files.cfg).output().expect("run kamailio -c");
        assert!(
            check.status.success(),
            "kamailio -c refused {}:\n{}",
            files.cfg.display(),
            String::from_utf8_lossy(&check.stderr)
        );
        let mut k = Kamailio { cfg, files, child: None, state: State::Dead, started: Instant::now() };
        k.spawn();
        k
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.files.log).expect("open log");
        let _ = std::fs::remove_file(&self.files.ctl);
        let child = Command::new(kamailio_binary())
            .arg("-f")
            .arg(&self.files.cfg)
            .args(["-DD", "-E", "-m", "48", "-M", "8", "-Y"])
            .arg(&self.files.run)
            .arg("-P")
            .arg(self.files.run.join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn kamailio");
        set_live(child.id(), true);
        self.child = Some(child);
        self.state = State::Running;
        self.started = Instant::now();
        self.wait_ready();
    }

    /// Waits until the TLS port is listening and the control socket answers.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited at start ({status}); log:\n{}", self.cfg.name, self.log());
            }
            if listening(&self.cfg.ip, self.cfg.port)
                && (!self.cfg.listen_ipv6 || listening("::1", self.cfg.port))
                && self.try_kamcmd(&["core.uptime"]).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen within {START_TIMEOUT:?}; log:\n{}",
                self.cfg.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process group id (the main process id, since it leads its own group).
    pub fn pgid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, sig: &str) {
        if let Some(pgid) = self.pgid() {
            let status = Command::new("kill").args([sig, "--", &format!("-{pgid}")]).status().expect("run kill");
            assert!(status.success(), "kill {sig} -- -{pgid} failed");
        }
    }

    /// SIGKILL to the whole group: the crash of a server, every socket reset by the kernel.
    pub fn kill(&mut self) {
        if self.state == State::Dead {
            return;
        }
        self.signal("-KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
            set_live(child.id(), false);
        }
        // Workers are reaped by init; wait until the port is really free.
        let deadline = Instant::now() + Duration::from_secs(5);
        while listening(&self.cfg.ip, self.cfg.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.state = State::Dead;
    }

    /// SIGSTOP to the whole group: the server hangs, its sockets stay open and silent.
    pub fn freeze(&mut self) {
        assert_eq!(self.state, State::Running, "freeze a running instance");
        self.signal("-STOP");
        self.state = State::Stopped;
    }

    /// SIGCONT to the whole group.
    pub fn thaw(&mut self) {
        assert_eq!(self.state, State::Stopped, "thaw a stopped instance");
        self.signal("-CONT");
        self.state = State::Running;
    }

    /// Starts a killed instance again with the same configuration and port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// `kamcmd <args>` against this instance's control socket.
    pub fn try_kamcmd(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("/usr/sbin/kamcmd")
            .arg("-s")
            .arg(format!("unix:{}", self.files.ctl.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run kamcmd: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "kamcmd {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `kamcmd <args>`, panicking on failure.
    pub fn kamcmd(&self, args: &[&str]) -> String {
        assert_eq!(self.state, State::Running, "kamcmd needs a running {}", self.cfg.name);
        self.try_kamcmd(args).unwrap_or_else(|e| panic!("{}: {e}", self.cfg.name))
    }

    /// The registration table (`ul.dump`).
    pub fn bindings(&self) -> Vec<super::kamcmd::Binding> {
        super::kamcmd::parse_ul_dump(&self.kamcmd(&["ul.dump"]))
    }

    /// Kamailio's TCP connection list (`core.tcp_list`).
    pub fn tcp_connections(&self) -> Vec<super::kamcmd::TcpConn> {
        super::kamcmd::parse_tcp_list(&self.kamcmd(&["core.tcp_list"]))
    }

    /// Kamailio's TLS connection list (`tls.list`).
    pub fn tls_connections(&self) -> Vec<super::kamcmd::TcpConn> {
        super::kamcmd::parse_tcp_list(&self.kamcmd(&["tls.list"]))
    }

    /// Everything the instance logged so far (all its runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.files.log).unwrap_or_default()
    }

    /// The log lines containing every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.log().lines().filter(|l| needles.iter().all(|n| l.contains(n))).map(str::to_owned).collect()
    }

    /// The path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.files.log
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if self.state == State::Stopped {
            self.signal("-CONT");
        }
        if let Some(pgid) = self.pgid() {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
            set_live(child.id(), false);
        }
    }
}

/// Whether something listens on `ip`:`port` (from /proc/net/tcp or /proc/net/tcp6, without
/// connecting: a probe connection would show up in Kamailio's own lists).
pub fn listening(ip: &str, port: u16) -> bool {
    let (table, octets) = match ip.parse::<std::net::IpAddr>().expect("an IP listen address") {
        std::net::IpAddr::V4(v4) => ("/proc/net/tcp", v4.octets().to_vec()),
        std::net::IpAddr::V6(v6) => ("/proc/net/tcp6", v6.octets().to_vec()),
    };
    // The kernel prints the address as host-order (little-endian) 32-bit words.
    let words: String = octets.chunks(4).flat_map(|w| w.iter().rev()).map(|b| format!("{b:02X}")).collect();
    let want = format!("{words}:{port:04X}");
    std::fs::read_to_string(table)
        .map(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == want && f[3] == "0A"
            })
        })
        .unwrap_or(false)
}
