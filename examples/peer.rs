//! The peer, beside us, in the same run (issue 14): baresip and sip-ptls, one after the
//! other, against the same pair of Kamailio TLS registrars (primary and backup, the set-up
//! of the interop tests in tests/kamailio/), and a table of each figure for both with the
//! ratio.
//!
//! ```sh
//! cargo build --release --bin sip-ptls
//! cargo run --release --features registrar --example peer -- --out target/peer
//! ```
//!
//! Three clients are measured, each with two lines (alice calls bob, bob auto-answers;
//! the callee is the second line of the same client):
//!
//! - `sip-ptls`: `sip-ptls run` from an Aastra file, primary and backup proxy;
//! - `baresip-1`: baresip with one RFC 5626 outbound flow to `sip:sip-ptls.test`, found by
//!   DNS SRV (`_sips._tcp`) from a loopback DNS server of this harness: the primary at
//!   priority 10, the backup at 20;
//! - `baresip-2`: baresip with two outbound flows, `outbound` to the primary and
//!   `outbound2` to the backup.
//!
//! Scenarios, each with fresh Kamailio instances and a fresh client: `setup` (call setup
//! times), `kill` (primary SIGKILLed, then started again: failover, the call placed at
//! the fault, failback) and `freeze` (primary SIGSTOPped). Each writes its figures into
//! `OUT/<client>-<scenario>.txt`; a scenario whose file exists is not run again, so an
//! interrupted run resumes where it stopped. The table is printed from those files at the
//! end (`--report` prints it without running anything). Every wait is capped; a figure
//! whose cap was hit is reported as `> N s`.

#[path = "../tests/kamailio/config.rs"]
#[allow(dead_code)]
mod config;
#[path = "../tests/kamailio/instance.rs"]
#[allow(dead_code)]
mod instance;
#[path = "../tests/kamailio/kamcmd.rs"]
#[allow(dead_code)]
mod kamcmd;
#[path = "../tests/kamailio/pki.rs"]
#[allow(dead_code)]
mod pki;

use config::{KamailioConfig, password};
use instance::{Kamailio, free_port};
use pki::{Pki, ServerCert};
use sip_ptls::registrar::{Keep, TestDir};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The Flow-Timer both Kamailio instances grant (s): the keep-alive interval of every
/// client (baresip takes it from the Flow-Timer; sip-ptls is configured with the same).
const FLOW_TIMER: u32 = 5;
/// sip-ptls probes the primary this often while on the backup (s), three in a row.
const FAILBACK_INTERVAL: u32 = 5;
/// Calls measured for call setup (after one warm-up call).
const SETUP_CALLS: usize = 5;
/// Cap on the first registration of a client.
const REGISTER_CAP: Duration = Duration::from_secs(20);
/// Cap on one call in normal operation.
const CALL_CAP: Duration = Duration::from_secs(10);
/// Cap on everything after a fault (the call placed at the fault, a call that succeeds,
/// every line on the backup).
const OUTAGE_CAP: Duration = Duration::from_secs(40);
/// Cap on failback once the killed primary runs again.
const FAILBACK_CAP: Duration = Duration::from_secs(60);
/// The lines: the caller and the callee.
const CALLER: &str = "alice";
const CALLEE: &str = "bob";
/// The SIP domain of baresip's one-flow mode, resolved by the harness's DNS server.
const DOMAIN: &str = "sip-ptls.test";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    SipPtls,
    BaresipOne,
    BaresipTwo,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::SipPtls, Kind::BaresipOne, Kind::BaresipTwo];
    fn name(self) -> &'static str {
        match self {
            Kind::SipPtls => "sip-ptls",
            Kind::BaresipOne => "baresip-1",
            Kind::BaresipTwo => "baresip-2",
        }
    }
}

const SCENARIOS: [&str; 3] = ["setup", "kill", "freeze"];

// ---------------------------------------------------------------------------------------
// Figures

/// One measured figure: the text shown and, when it is a time that was reached, its value
/// in milliseconds (for the ratio).
#[derive(Clone, Debug)]
struct Figure {
    text: String,
    ms: Option<f64>,
}

impl Figure {
    fn time(d: Duration) -> Figure {
        let ms = d.as_secs_f64() * 1000.0;
        Figure { text: fmt_ms(ms), ms: Some(ms) }
    }
    fn capped(cap: Duration) -> Figure {
        Figure { text: format!("> {} s", cap.as_secs()), ms: None }
    }
    fn text(text: impl Into<String>) -> Figure {
        Figure { text: text.into(), ms: None }
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// What one call came to.
#[derive(Clone, Debug)]
enum CallResult {
    Answered(Duration),
    Failed(Duration, String),
    Capped(Duration),
}

impl CallResult {
    fn describe(&self) -> Figure {
        match self {
            CallResult::Answered(d) => Figure { text: format!("answered, {}", Figure::time(*d).text), ms: None },
            CallResult::Failed(d, why) => Figure::text(format!("failed ({why}), {}", Figure::time(*d).text)),
            CallResult::Capped(cap) => Figure::text(format!("no outcome, > {} s", cap.as_secs())),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Line readers

/// The lines of a child's stream, each with the instant it was read.
fn lines_of(stream: impl Read + Send + 'static, copy: Option<PathBuf>) -> Receiver<(Instant, String)> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut file = copy.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until `rx` yields an item for which `pick` returns something, up to `deadline`.
fn wait_for<T, R>(rx: &Receiver<T>, deadline: Instant, mut pick: impl FnMut(&T) -> Option<R>) -> Option<R> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(item) => {
                if let Some(r) = pick(&item) {
                    return Some(r);
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

fn drain<T>(rx: &Receiver<T>) {
    while rx.try_recv().is_ok() {}
}

// ---------------------------------------------------------------------------------------
// The clients

trait Client {
    /// Places a call from the caller's line to the callee (who auto-answers), and hangs
    /// it up once answered.
    fn call(&mut self, cap: Duration) -> CallResult;
    /// How it was configured, for the report.
    fn describe(&self) -> String;
}

/// `sip-ptls run --json --auto-answer` from an Aastra file.
struct SipPtls {
    child: Child,
    stdin: ChildStdin,
    out: Receiver<(Instant, String)>,
    log: Receiver<(Instant, String)>,
    cfg: String,
}

impl SipPtls {
    fn start(bin: &Path, lab: &Lab) -> SipPtls {
        let cfg = format!(
            "sip transport protocol: 4\n\
             sips persistent tls: 1\n\
             sip outbound support: 1\n\
             sip persistent tls keep alive: {FLOW_TIMER}\n\
             sip persistent tls failback interval: {FAILBACK_INTERVAL}\n\
             sip persistent tls failback probes: 3\n\
             sip proxy ip: 127.0.0.1\n\
             sip proxy port: {p}\n\
             sip backup proxy ip: 127.0.0.1\n\
             sip backup proxy port: {b}\n\
             sips trusted certificates: ca.pem\n\
             sip line1 user name: {CALLER}\n\
             sip line1 password: {cp}\n\
             sip line2 user name: {CALLEE}\n\
             sip line2 password: {bp}\n",
            p = lab.primary.cfg.port,
            b = lab.backup.cfg.port,
            cp = password(CALLER),
            bp = password(CALLEE),
        );
        let path = lab.dir.write("aastra.cfg", &cfg).expect("write aastra.cfg");
        let mut child = Command::new(bin)
            .args(["run", "--json", "--auto-answer", "--config"])
            .arg(&path)
            .current_dir(lab.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        client_alive(child.id(), true);
        let stdin = child.stdin.take().expect("stdin");
        let out = lines_of(child.stdout.take().expect("stdout"), Some(lab.dir.path().join("sip-ptls.out")));
        let log = lines_of(child.stderr.take().expect("stderr"), Some(lab.dir.path().join("sip-ptls.log")));
        SipPtls { child, stdin, out, log, cfg }
    }

    fn say(&mut self, text: &str) {
        writeln!(self.stdin, "{text}").expect("write to sip-ptls");
    }
}

impl Client for SipPtls {
    fn call(&mut self, cap: Duration) -> CallResult {
        drain(&self.out);
        drain(&self.log);
        let start = Instant::now();
        let deadline = start + cap;
        self.say(&format!("dial 1 {CALLEE}"));
        let placed = wait_for(&self.out, deadline, |(_, l)| {
            if let Some(rest) = l.strip_prefix("ok: call#") {
                rest.split(' ').next().and_then(|n| n.parse::<u32>().ok()).map(Ok)
            } else if l.starts_with("error:") {
                Some(Err(l.clone()))
            } else {
                None
            }
        });
        let id = match placed {
            None => return CallResult::Capped(cap),
            Some(Err(e)) => return CallResult::Failed(start.elapsed(), e),
            Some(Ok(id)) => id,
        };
        let tag = format!("call#{id}\"");
        let outcome = wait_for(&self.log, deadline, |(at, l)| {
            (l.contains("\"event\":\"call_outcome\"") && l.contains(&tag)).then(|| (*at, l.clone()))
        });
        let Some((at, line)) = outcome else { return CallResult::Capped(cap) };
        let took = at - start;
        if line.contains("\"Answered\"") {
            self.say(&format!("hangup {id}"));
            let _ = wait_for(&self.log, Instant::now() + Duration::from_secs(3), |(_, l)| {
                l.contains("\"event\":\"call_ended\"").then_some(())
            });
            std::thread::sleep(Duration::from_millis(200));
            CallResult::Answered(took)
        } else {
            let why = line.split("\"outcome\":").nth(1).and_then(|s| s.split(',').next()).unwrap_or("?");
            let why = why.trim_matches('"');
            let why = why.strip_prefix("Failed(").and_then(|w| w.strip_suffix(')')).unwrap_or(why);
            CallResult::Failed(took, why.to_owned())
        }
    }

    fn describe(&self) -> String {
        self.cfg.clone()
    }
}

impl Drop for SipPtls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        client_alive(self.child.id(), false);
    }
}

/// baresip driven through its ctrl_tcp module (netstring-framed JSON).
struct Baresip {
    child: Child,
    ctrl: TcpStream,
    events: Receiver<serde_json::Value>,
    token: u32,
    config: String,
    accounts: String,
    callee_uri: String,
}

impl Baresip {
    fn start(lab: &Lab, two_flows: bool) -> Baresip {
        let home = lab.dir.path().join("baresip");
        std::fs::create_dir_all(&home).expect("baresip dir");
        let ctrl_port = free_port();
        let sip_port = free_port();
        let dns_port = lab.dns.as_ref().map_or_else(free_port, |d| d.port);
        let config = format!(
            "poll_method\tepoll\n\
             sip_listen\t127.0.0.1:{sip_port}\n\
             sip_cafile\t{ca}\n\
             call_local_timeout\t120\n\
             call_max_calls\t4\n\
             audio_player\taubridge,peer\n\
             audio_source\taubridge,peer\n\
             audio_alert\taubridge,peer\n\
             net_interface\t127.0.0.1\n\
             dns_server\t127.0.0.1:{dns_port}\n\
             module_path\t/usr/lib/baresip/modules\n\
             module\tg711.so\n\
             module\taubridge.so\n\
             module_tmp\tuuid.so\n\
             module_tmp\taccount.so\n\
             module_app\tmenu.so\n\
             module_app\tctrl_tcp.so\n\
             ctrl_tcp_listen\t127.0.0.1:{ctrl_port}\n",
            ca = lab.pki.ca.display(),
        );
        let (p, b) = (lab.primary.cfg.port, lab.backup.cfg.port);
        let account = |user: &str| {
            if two_flows {
                format!(
                    "<sip:{user}@127.0.0.1;transport=tls>;auth_pass={pw};answermode=auto;\
                     outbound=\"sip:127.0.0.1:{p};transport=tls\";outbound2=\"sip:127.0.0.1:{b};transport=tls\";\
                     sipnat=outbound;regint=3600\n",
                    pw = password(user)
                )
            } else {
                format!(
                    "<sip:{user}@{DOMAIN};transport=tls>;auth_pass={pw};answermode=auto;\
                     outbound=\"sip:{DOMAIN};transport=tls\";sipnat=outbound;regint=3600\n",
                    pw = password(user)
                )
            }
        };
        let accounts = format!("{}{}", account(CALLER), account(CALLEE));
        std::fs::write(home.join("config"), &config).expect("baresip config");
        std::fs::write(home.join("accounts"), &accounts).expect("baresip accounts");
        std::fs::write(home.join("contacts"), "").expect("baresip contacts");
        let log = std::fs::File::create(lab.dir.path().join("baresip.log")).expect("baresip log");
        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(&home)
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start baresip (run scripts/deps.sh)");
        client_alive(child.id(), true);
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(s) => break s,
                Err(e) => {
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("baresip's ctrl_tcp did not listen: {e}; see {}", lab.dir.path().display());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        ctrl.set_nodelay(true).expect("nodelay");
        let events = netstrings(ctrl.try_clone().expect("clone ctrl"), lab.dir.path().join("baresip-ctrl.log"));
        let domain = if two_flows { "127.0.0.1" } else { DOMAIN };
        Baresip { child, ctrl, events, token: 0, config, accounts, callee_uri: format!("sip:{CALLEE}@{domain}") }
    }

    fn command(&mut self, command: &str, params: &str) {
        self.token += 1;
        let body = serde_json::json!({"command": command, "params": params, "token": self.token.to_string()});
        let body = body.to_string();
        self.ctrl.write_all(format!("{}:{body},", body.len()).as_bytes()).expect("write to baresip");
    }
}

/// The netstring-framed JSON messages of baresip's ctrl_tcp.
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

fn field<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|x| x.as_str()).unwrap_or("")
}

impl Client for Baresip {
    fn call(&mut self, cap: Duration) -> CallResult {
        drain(&self.events);
        let start = Instant::now();
        let deadline = start + cap;
        let uri = self.callee_uri.clone();
        self.command("dial", &uri);
        let caller = format!("sip:{CALLER}@");
        let outcome = wait_for(&self.events, deadline, |v| {
            if v.get("event").is_none() || !field(v, "accountaor").starts_with(&caller) {
                return None;
            }
            match field(v, "type") {
                "CALL_ESTABLISHED" => Some(Ok(start.elapsed())),
                "CALL_CLOSED" => Some(Err((start.elapsed(), field(v, "param").to_owned()))),
                _ => None,
            }
        });
        match outcome {
            None => {
                self.command("hangup", "");
                CallResult::Capped(cap)
            }
            Some(Err((d, why))) => CallResult::Failed(d, why),
            Some(Ok(d)) => {
                self.command("hangup", "");
                let mut closed = 0;
                let _ = wait_for(&self.events, Instant::now() + Duration::from_secs(3), |v| {
                    if field(v, "type") == "CALL_CLOSED" {
                        closed += 1;
                    }
                    (closed == 2).then_some(())
                });
                std::thread::sleep(Duration::from_millis(200));
                CallResult::Answered(d)
            }
        }
    }

    fn describe(&self) -> String {
        format!("config:\n{}accounts:\n{}", self.config, self.accounts)
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        client_alive(self.child.id(), false);
    }
}

// ---------------------------------------------------------------------------------------
// DNS: `_sips._tcp.sip-ptls.test` SRV to the primary (priority 10) and the backup (20).

struct Dns {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Dns {
    fn start(primary: u16, backup: u16, log: PathBuf) -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind DNS");
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).ok();
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                let Ok(query) = hickory_proto::op::Message::from_vec(&buf[..n]) else { continue };
                let reply = dns_answer(&query, primary, backup);
                if let (Some(f), Some(q)) = (file.as_mut(), query.queries.first()) {
                    let _ = writeln!(f, "{} {} -> {} answers", q.name(), q.query_type(), reply.answers.len());
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        Dns { port, stop }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn dns_answer(query: &hickory_proto::op::Message, primary: u16, backup: u16) -> hickory_proto::op::Message {
    use hickory_proto::op::{Message, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::str::FromStr as _;
    let name = |s: &str| Name::from_str(s).expect("a name");
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_queries(query.queries.clone());
    let Some(q) = query.queries.first() else { return reply };
    let owner = q.name().to_lowercase().to_ascii();
    let p_host = format!("{}.", pki::PRIMARY_NAME);
    let b_host = format!("{}.", pki::BACKUP_NAME);
    let localhost = |owner: &str| Record::from_rdata(name(owner), 60, RData::A(A::new(127, 0, 0, 1)));
    match (owner.as_str(), q.query_type()) {
        ("_sips._tcp.sip-ptls.test." | "_sip._tls.sip-ptls.test.", RecordType::SRV) => {
            for (prio, port, host) in [(10, primary, &p_host), (20, backup, &b_host)] {
                reply.add_answer(Record::from_rdata(
                    name(&owner),
                    60,
                    RData::SRV(SRV::new(prio, 10, port, name(host))),
                ));
            }
            reply.add_additional(localhost(&p_host));
            reply.add_additional(localhost(&b_host));
        }
        (o, RecordType::A) if o == p_host || o == b_host => {
            reply.add_answer(localhost(o));
        }
        (o, _) if o == p_host || o == b_host || o.ends_with("sip-ptls.test.") => {}
        _ => reply.metadata.response_code = ResponseCode::NXDomain,
    }
    reply
}

// ---------------------------------------------------------------------------------------
// The lab

struct Lab {
    primary: Kamailio,
    backup: Kamailio,
    dns: Option<Dns>,
    pki: Pki,
    dir: TestDir,
}

impl Lab {
    fn start(label: &str, with_dns: bool) -> Lab {
        let dir = TestDir::new(&format!("peer-{label}")).expect("temp dir").keep(Keep::Always);
        let pki = pki::generate(&dir);
        let adjust = |c: &mut KamailioConfig| {
            c.flow_timer = FLOW_TIMER;
            c.outbound_mode = 1;
        };
        let mut p = KamailioConfig::new("primary", free_port(), ServerCert::Primary);
        let mut b = KamailioConfig::new("backup", free_port(), ServerCert::Backup);
        adjust(&mut p);
        adjust(&mut b);
        let primary = Kamailio::start(dir.path(), &pki, p);
        let backup = Kamailio::start(dir.path(), &pki, b);
        let dns = with_dns.then(|| Dns::start(primary.cfg.port, backup.cfg.port, dir.path().join("dns.log")));
        Lab { primary, backup, dns, pki, dir }
    }
}

/// Whether both lines have a binding on `k` (from `ul.dump`; false while it does not answer).
fn both_bound(k: &Kamailio) -> bool {
    let Ok(dump) = k.try_kamcmd(&["ul.dump"]) else { return false };
    let b = kamcmd::parse_ul_dump(&dump);
    [CALLER, CALLEE].iter().all(|u| b.iter().any(|x| x.aor == *u || x.aor.starts_with(&format!("{u}@"))))
}

/// Time until `cond` holds, polled every 20 ms, capped.
fn time_until(start: Instant, cap: Duration, mut cond: impl FnMut() -> bool) -> Figure {
    loop {
        if cond() {
            return Figure::time(start.elapsed());
        }
        if start.elapsed() >= cap {
            return Figure::capped(cap);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_client(kind: Kind, bin: &Path, lab: &Lab) -> Box<dyn Client> {
    match kind {
        Kind::SipPtls => Box::new(SipPtls::start(bin, lab)),
        Kind::BaresipOne => Box::new(Baresip::start(lab, false)),
        Kind::BaresipTwo => Box::new(Baresip::start(lab, true)),
    }
}

/// Starts the lab and the client and waits until both lines are registered (on both
/// servers for baresip's two flows).
fn ready(kind: Kind, bin: &Path, label: &str) -> (Lab, Box<dyn Client>, BTreeMap<String, Figure>) {
    let lab = Lab::start(label, kind == Kind::BaresipOne);
    let mut figures = BTreeMap::new();
    let start = Instant::now();
    let client = start_client(kind, bin, &lab);
    let reg = time_until(start, REGISTER_CAP, || {
        both_bound(&lab.primary) && (kind != Kind::BaresipTwo || both_bound(&lab.backup))
    });
    println!("  [{}] registered: {}", kind.name(), reg.text);
    if reg.ms.is_none() {
        panic!("{} did not register within {REGISTER_CAP:?}; files in {}", kind.name(), lab.dir.path().display());
    }
    figures.insert("00 first registration (all lines)".into(), reg);
    std::thread::sleep(Duration::from_millis(500));
    (lab, client, figures)
}

fn scenario_setup(kind: Kind, bin: &Path) -> BTreeMap<String, Figure> {
    let (lab, mut client, mut figures) = ready(kind, bin, &format!("{}-setup", kind.name()));
    let mut times = Vec::new();
    for i in 0..=SETUP_CALLS {
        let r = client.call(CALL_CAP);
        println!("  [{}] call {i}: {:?}", kind.name(), r);
        match r {
            CallResult::Answered(d) if i > 0 => times.push(d),
            CallResult::Answered(_) => {}
            other => {
                figures.insert("01 dial to call established (median)".into(), other.describe());
                return figures;
            }
        }
    }
    println!("  [{}] configured as:", kind.name());
    for line in client.describe().lines() {
        println!("    {line}");
    }
    times.sort();
    figures.insert("01 dial to call established (median)".into(), Figure::time(times[times.len() / 2]));
    figures.insert("02 dial to call established (min)".into(), Figure::time(times[0]));
    let _ = std::fs::write(lab.dir.path().join("client-config.txt"), client.describe());
    figures
}

fn scenario_fault(kind: Kind, bin: &Path, freeze: bool) -> BTreeMap<String, Figure> {
    let what = if freeze { "frozen" } else { "killed" };
    let (mut lab, mut client, mut figures) = ready(kind, bin, &format!("{}-{what}", kind.name()));
    let warm = client.call(CALL_CAP);
    println!("  [{}] warm-up call: {warm:?}", kind.name());
    // baresip's second flow registers on the backup from the start: say so rather than
    // time the first poll.
    let before = both_bound(&lab.backup);
    let fault = Instant::now();
    if freeze {
        lab.primary.freeze();
    } else {
        lab.primary.kill();
    }
    // Every line registered on the backup, watched beside the calls.
    let registered = std::thread::scope(|s| {
        let backup = &lab.backup;
        let watcher = s.spawn(move || {
            if before {
                Figure::text("0 (registered before the fault)")
            } else {
                time_until(fault, OUTAGE_CAP, || both_bound(backup))
            }
        });
        let first = client.call(OUTAGE_CAP);
        println!("  [{}] call placed at the fault: {first:?}", kind.name());
        figures.insert(format!("{} {what}: call placed at the fault", 10 + 3 * u8::from(freeze)), first.describe());
        // The first call left at the fault; a new call 250 ms after each failure.
        let mut success = match first {
            CallResult::Answered(d) => Some(d),
            _ => None,
        };
        let mut failed: BTreeMap<String, u32> = BTreeMap::new();
        while success.is_none() && fault.elapsed() < OUTAGE_CAP {
            std::thread::sleep(Duration::from_millis(250));
            let left = OUTAGE_CAP.saturating_sub(fault.elapsed());
            if left.is_zero() {
                break;
            }
            let placed = fault.elapsed();
            match client.call(left) {
                CallResult::Answered(d) => success = Some(placed + d),
                CallResult::Failed(_, why) => *failed.entry(why).or_default() += 1,
                CallResult::Capped(_) => *failed.entry("no outcome".into()).or_default() += 1,
            }
        }
        println!("  [{}] later calls that failed: {failed:?}; first success: {success:?}", kind.name());
        figures.insert(
            format!("{} {what}: until a new call succeeds", 11 + 3 * u8::from(freeze)),
            success.map_or(Figure::capped(OUTAGE_CAP), Figure::time),
        );
        watcher.join().expect("watcher")
    });
    println!("  [{}] every line on the backup: {}", kind.name(), registered.text);
    figures.insert(format!("{} {what}: every line registered on the backup", 12 + 3 * u8::from(freeze)), registered);
    if freeze {
        lab.primary.thaw();
    } else {
        let back = Instant::now();
        lab.primary.restart();
        let fb = time_until(back, FAILBACK_CAP, || both_bound(&lab.primary));
        println!("  [{}] failback (every line on the restarted primary): {}", kind.name(), fb.text);
        figures.insert("19 failback: every line registered on the restarted primary".into(), fb);
    }
    let _ = std::fs::write(lab.dir.path().join("client-config.txt"), client.describe());
    drop(client);
    figures
}

// ---------------------------------------------------------------------------------------
// Results and the table

fn result_path(out: &Path, kind: Kind, scenario: &str) -> PathBuf {
    out.join(format!("{}-{scenario}.txt", kind.name()))
}

fn save(path: &Path, figures: &BTreeMap<String, Figure>) {
    let mut text = String::new();
    for (k, f) in figures {
        text.push_str(&format!("{k}\t{}\t{}\n", f.text, f.ms.map(|m| m.to_string()).unwrap_or_default()));
    }
    std::fs::write(path, text).expect("write results");
}

fn load(path: &Path) -> BTreeMap<String, Figure> {
    let Ok(text) = std::fs::read_to_string(path) else { return BTreeMap::new() };
    text.lines()
        .filter_map(|l| {
            let mut it = l.split('\t');
            let (k, t, ms) = (it.next()?, it.next()?, it.next().unwrap_or(""));
            Some((k.to_owned(), Figure { text: t.to_owned(), ms: ms.parse().ok() }))
        })
        .collect()
}

fn ratio(ours: &Figure, theirs: &Figure) -> String {
    match (ours.ms, theirs.ms) {
        (Some(a), Some(b)) if a > 0.0 && b / a >= 100.0 => format!("{:.0}x", b / a),
        (Some(a), Some(b)) if a > 0.0 => format!("{:.1}x", b / a),
        (Some(a), None) if a > 0.0 && theirs.text.starts_with("> ") => {
            let cap: f64 = theirs.text[2..].trim_end_matches(" s").parse().unwrap_or(0.0);
            format!("> {:.0}x", cap * 1000.0 / a)
        }
        _ => "-".into(),
    }
}

fn report(out: &Path) -> String {
    let mut rows: BTreeMap<String, [Figure; 3]> = BTreeMap::new();
    for scenario in SCENARIOS {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            for (k, f) in load(&result_path(out, *kind, scenario)) {
                // The first registration is measured in every scenario: keep the setup one.
                if k.starts_with("00") && scenario != "setup" {
                    continue;
                }
                rows.entry(k).or_insert_with(|| std::array::from_fn(|_| Figure::text("not run")))[i] = f;
            }
        }
    }
    let header = [
        "figure",
        "sip-ptls",
        "baresip (1 flow, SRV)",
        "baresip (2 flows)",
        "ratio 1 flow / sip-ptls",
        "ratio 2 flows / sip-ptls",
    ];
    let mut table = vec![header.map(str::to_owned).to_vec()];
    for (k, f) in &rows {
        let name = k.split_once(' ').map_or(k.as_str(), |(_, n)| n);
        table.push(vec![
            name.to_owned(),
            f[0].text.clone(),
            f[1].text.clone(),
            f[2].text.clone(),
            ratio(&f[0], &f[1]),
            ratio(&f[0], &f[2]),
        ]);
    }
    let mut s = String::new();
    for (i, row) in table.iter().enumerate() {
        s.push_str(&format!("| {} |\n", row.join(" | ")));
        if i == 0 {
            s.push_str(&format!("|{}\n", " --- |".repeat(row.len())));
        }
    }
    s
}

/// The clients alive (process ids), killed with the Kamailio groups on Ctrl-C or SIGTERM.
static CLIENTS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn client_alive(pid: u32, alive: bool) {
    if let Ok(mut c) = CLIENTS.lock() {
        c.retain(|p| *p != pid);
        if alive {
            c.push(pid);
        }
    }
}

/// On SIGINT or SIGTERM, kills the Kamailio process groups (they lead their own groups,
/// so a Ctrl-C does not reach them) and the clients, then exits: an interrupted run
/// leaves nothing behind, and the next one resumes.
fn clean_up_on_signal() {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt as _;
    let Ok(mut signals) = Signals::new([Signal::Int, Signal::Term]) else { return };
    std::thread::spawn(move || {
        let _ = futures_lite::future::block_on(signals.next());
        instance::kill_all_live();
        for pid in CLIENTS.lock().map(|c| c.clone()).unwrap_or_default() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        eprintln!("peer: interrupted; the finished scenarios are kept, the next run resumes");
        std::process::exit(130);
    });
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("target/peer");
    let mut only_report = false;
    let mut only: Vec<String> = Vec::new();
    let mut bin =
        std::env::current_exe().ok().and_then(|e| Some(e.parent()?.parent()?.join("sip-ptls"))).unwrap_or_default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(args.next().expect("--out DIR")),
            "--report" => only_report = true,
            "--only" => only.push(args.next().expect("--only CLIENT-SCENARIO")),
            "--sip-ptls" => bin = PathBuf::from(args.next().expect("--sip-ptls PATH")),
            other => panic!("unknown argument {other} (--out DIR, --report, --only CLIENT-SCENARIO, --sip-ptls PATH)"),
        }
    }
    std::fs::create_dir_all(&out).expect("create the output directory");
    clean_up_on_signal();
    if !only_report {
        assert!(bin.exists(), "{} missing: cargo build --release --bin sip-ptls", bin.display());
        // The phone runs in its lab directory (its configuration names ca.pem there).
        bin = bin.canonicalize().expect("the sip-ptls binary");
        for scenario in SCENARIOS {
            for kind in Kind::ALL {
                let id = format!("{}-{scenario}", kind.name());
                let path = result_path(&out, kind, scenario);
                if path.exists() || (!only.is_empty() && !only.contains(&id)) {
                    continue;
                }
                println!("== {id} (load average {})", loadavg());
                let started = Instant::now();
                let figures = match scenario {
                    "setup" => scenario_setup(kind, &bin),
                    "kill" => scenario_fault(kind, &bin, false),
                    _ => scenario_fault(kind, &bin, true),
                };
                save(&path, &figures);
                println!("   ({:.1} s, load average {})", started.elapsed().as_secs_f64(), loadavg());
            }
        }
    }
    print!("{}", report(&out));
}
