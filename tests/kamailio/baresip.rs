//! baresip (Debian's 1.0.0), a user agent nobody on the team wrote, as the far end of a
//! call: its own configuration directory, one account registered on every proxy given at
//! once (RFC 5626 `outbound` and `outbound2`, two flows), auto-answer, audio through
//! `aubridge` (no sound card), `dns_server` pointing at the test's DNS server, the test CA
//! trusted, SIP traced into its log (`-s`), and commands and events over `ctrl_tcp`
//! (netstring-framed JSON). Killed on drop, and by [`kill_all`] from a watchdog.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Where Debian's baresip-core puts the program and its modules.
pub const BARESIP: &str = "/usr/bin/baresip";
const MODULES: &str = "/usr/lib/baresip/modules";

/// How long baresip may take to open its control port.
const START_WITHIN: Duration = Duration::from_secs(10);

/// The baresip processes alive, for [`kill_all`].
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// SIGKILLs every baresip this helper started and still runs (a watchdog's last clean-up,
/// when the test process ends without running destructors).
pub fn kill_all() {
    for pid in LIVE.lock().map(|l| l.clone()).unwrap_or_default() {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
}

/// What one baresip is set up with.
#[derive(Clone, Debug)]
pub struct BaresipConfig {
    /// The account's user (a user of `super::config::USERS`).
    pub user: String,
    /// The password it answers challenges with.
    pub password: String,
    /// The domain of its address of record.
    pub domain: String,
    /// Its outbound proxies, each a flow of its own (`outbound`, `outbound2`), as SIP URIs.
    pub outbound: Vec<String>,
    /// The DNS server it asks (UDP).
    pub dns: SocketAddr,
    /// The CA it trusts.
    pub ca: PathBuf,
    /// How many calls it holds at once (`call_max_calls`; baresip's own default is 4).
    pub max_calls: u32,
}

/// A running baresip.
pub struct Baresip {
    child: Child,
    ctrl: TcpStream,
    messages: Receiver<serde_json::Value>,
    /// Every event received so far, in order.
    pub events: Vec<serde_json::Value>,
    /// Where [`Baresip::wait_event`] looks from: after the last event it returned.
    cursor: usize,
    token: u32,
    dir: PathBuf,
}

impl Baresip {
    /// Writes the configuration into `dir/baresip/` and starts baresip, waiting until its
    /// control port answers. Fails the test when baresip is missing or does not start.
    pub fn start(dir: &Path, cfg: &BaresipConfig) -> Baresip {
        assert!(Path::new(BARESIP).exists(), "{BARESIP} is missing: `bash scripts/deps.sh` installs baresip");
        assert!(cfg.outbound.len() <= 2, "baresip 1.0.0 has two outbound proxies at most");
        let home = dir.join("baresip");
        std::fs::create_dir_all(&home).expect("baresip directory");
        let ctrl_port = super::instance::free_port();
        let sip_port = super::instance::free_port();
        let config = format!(
            "poll_method\tepoll\n\
             sip_listen\t127.0.0.1:{sip_port}\n\
             sip_cafile\t{ca}\n\
             call_local_timeout\t120\n\
             call_max_calls\t{max_calls}\n\
             audio_player\taubridge,far\n\
             audio_source\taubridge,far\n\
             audio_alert\taubridge,far\n\
             net_interface\t127.0.0.1\n\
             dns_server\t{dns}\n\
             module_path\t{MODULES}\n\
             module\tg711.so\n\
             module\taubridge.so\n\
             module_tmp\tuuid.so\n\
             module_tmp\taccount.so\n\
             module_app\tmenu.so\n\
             module_app\tctrl_tcp.so\n\
             ctrl_tcp_listen\t127.0.0.1:{ctrl_port}\n",
            ca = cfg.ca.display(),
            dns = cfg.dns,
            max_calls = cfg.max_calls,
        );
        let mut account = format!(
            "<sip:{}@{};transport=tls>;auth_pass={};answermode=auto;sipnat=outbound;regint=600",
            cfg.user, cfg.domain, cfg.password
        );
        for (i, proxy) in cfg.outbound.iter().enumerate() {
            let n = if i == 0 { String::new() } else { (i + 1).to_string() };
            account.push_str(&format!(";outbound{n}=\"{proxy}\""));
        }
        account.push('\n');
        std::fs::write(home.join("config"), &config).expect("baresip config");
        std::fs::write(home.join("accounts"), &account).expect("baresip accounts");
        std::fs::write(home.join("contacts"), "").expect("baresip contacts");
        let log = std::fs::File::create(dir.join("baresip.log")).expect("baresip log");
        let mut child = Command::new(BARESIP)
            .arg("-s")
            .arg("-f")
            .arg(&home)
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {BARESIP}: {e} (`bash scripts/deps.sh` installs it)"));
        if let Ok(mut l) = LIVE.lock() {
            l.push(child.id());
        }
        let deadline = Instant::now() + START_WITHIN;
        let ctrl = loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("baresip exited at start ({status}); its log:\n{}", read(&dir.join("baresip.log")));
            }
            match TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    panic!("baresip's ctrl_tcp did not listen within {START_WITHIN:?}: {e}");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let messages = netstrings(ctrl.try_clone().expect("clone the control socket"), dir.join("baresip-ctrl.log"));
        Baresip { child, ctrl, messages, events: Vec::new(), cursor: 0, token: 0, dir: dir.to_owned() }
    }

    /// Sends a `ctrl_tcp` command (a `menu` command such as `hangup` or `reinvite`) and
    /// waits up to 10 s for its response, which is returned.
    pub fn command(&mut self, command: &str, params: &str) -> serde_json::Value {
        self.token += 1;
        let token = self.token.to_string();
        let body = serde_json::json!({"command": command, "params": params, "token": token}).to_string();
        self.ctrl.write_all(format!("{}:{body},", body.len()).as_bytes()).expect("write to baresip");
        let want = token.clone();
        self.next(&format!("response to {command}"), Duration::from_secs(10), move |v| {
            v.get("response").is_some() && v.get("token").and_then(|t| t.as_str()) == Some(want.as_str())
        })
    }

    /// Waits up to `limit` for an event of type `kind` (`CALL_ESTABLISHED`, `CALL_CLOSED`…)
    /// after the last one a wait returned, failing the test with every event so far.
    pub fn wait_event(&mut self, kind: &str, limit: Duration) -> serde_json::Value {
        if let Some(i) = self.events[self.cursor..].iter().position(|e| field(e, "type") == kind) {
            self.cursor += i + 1;
            return self.events[self.cursor - 1].clone();
        }
        let want = kind.to_owned();
        let v = self.next(kind, limit, move |v| v.get("event").is_some() && field(v, "type") == want);
        self.cursor = self.events.len();
        v
    }

    /// The next message that `matches`, keeping every event met on the way.
    fn next(&mut self, what: &str, limit: Duration, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(v) = self.messages.recv_timeout(left) else {
                panic!(
                    "baresip: no {what} within {limit:?}; events so far: {:?}\nits log: {}",
                    self.events,
                    self.log_path().display()
                )
            };
            if v.get("event").is_some() {
                self.events.push(v.clone());
            }
            if matches(&v) {
                return v;
            }
        }
    }

    /// Ends the current call (`hangup`).
    pub fn hang_up(&mut self) -> serde_json::Value {
        self.command("hangup", "")
    }

    /// The path of its log (its SIP trace included).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("baresip.log")
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        read(&self.log_path())
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(mut l) = LIVE.lock() {
            l.retain(|p| *p != self.child.id());
        }
    }
}

/// A field of a `ctrl_tcp` message as a string ("" when absent).
pub fn field<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|x| x.as_str()).unwrap_or("")
}

fn read(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// The netstring-framed JSON messages of `ctrl_tcp`, read on a thread, each also written
/// as a line into `copy`.
fn netstrings(stream: TcpStream, copy: PathBuf) -> Receiver<serde_json::Value> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(copy).ok();
        let mut r = BufReader::new(stream);
        loop {
            let mut len = Vec::new();
            if r.read_until(b':', &mut len).unwrap_or(0) == 0 {
                break;
            }
            let Some(n) = std::str::from_utf8(&len[..len.len() - 1]).ok().and_then(|s| s.trim().parse::<usize>().ok())
            else {
                break;
            };
            let mut body = vec![0; n + 1];
            if r.read_exact(&mut body).is_err() {
                break;
            }
            body.pop();
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{}", String::from_utf8_lossy(&body));
            }
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else { continue };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    rx
}
