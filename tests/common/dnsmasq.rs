//! Debian's dnsmasq as a DNS server of the tests' own: started on a free loopback port
//! (UDP and TCP), serving A, AAAA, SRV and NAPTR records given as data, waited for until
//! it answers, restarted on the same port with new records, killed on drop.
//!
//! dnsmasq answers from its configuration alone here: no upstream server, no hosts file,
//! and the zone's domains declared local, so a name without a record of the type asked
//! is NXDOMAIN or NODATA rather than REFUSED. It runs with `--no-daemon` (in the
//! foreground, no pid file, no change of user, TCP served in the same process), so the
//! one process this helper starts is the whole server and no system service is involved.
//!
//! SIGHUP makes dnsmasq read its hosts files again (`--addn-hosts`), not its
//! configuration file, which holds the SRV and NAPTR records and the A/AAAA records with
//! a TTL of their own. New records therefore mean a restart on the same port:
//! [`Dnsmasq::set_zone`].
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where Debian's dnsmasq-base puts the program.
pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// How long a start may take before the test fails: dnsmasq answers within milliseconds.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The name the readiness probe asks; left out of [`Dnsmasq::queries`].
const PROBE_NAME: &str = "ready.probe.invalid";

/// The dnsmasq processes alive, for [`kill_all`].
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// One record of the zone. Names are absolute, written without the final dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// An A or an AAAA record (by the address's family), with a TTL of its own or the
    /// zone's.
    Address { name: String, addr: IpAddr, ttl: Option<u32> },
    /// An SRV record (RFC 2782); it takes the zone's TTL (dnsmasq gives SRV records no
    /// TTL of their own).
    Srv { name: String, priority: u16, weight: u16, port: u16, target: String },
    /// A NAPTR record (RFC 3403); the zone's TTL too.
    Naptr {
        name: String,
        order: u16,
        preference: u16,
        flags: String,
        service: String,
        regexp: String,
        replacement: String,
    },
}

impl Record {
    /// An A or AAAA record of `name` for `addr`, with the zone's TTL.
    pub fn address(name: &str, addr: &str) -> Record {
        let addr = addr.parse().unwrap_or_else(|_| panic!("{addr:?} is not an IP address"));
        Record::Address { name: name.into(), addr, ttl: None }
    }

    /// An A or AAAA record with a TTL of its own.
    pub fn address_ttl(name: &str, addr: &str, ttl: u32) -> Record {
        match Record::address(name, addr) {
            Record::Address { name, addr, .. } => Record::Address { name, addr, ttl: Some(ttl) },
            _ => unreachable!(),
        }
    }

    /// An SRV record of `name` (such as `_sips._tcp.example.test`).
    pub fn srv(name: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
        Record::Srv { name: name.into(), priority, weight, port, target: target.into() }
    }

    /// A NAPTR record of `name` with flags `s` and an empty regexp: `service` leads to
    /// the SRV name `replacement`.
    pub fn naptr(name: &str, order: u16, preference: u16, service: &str, replacement: &str) -> Record {
        Record::Naptr {
            name: name.into(),
            order,
            preference,
            flags: "s".into(),
            service: service.into(),
            regexp: String::new(),
            replacement: replacement.into(),
        }
    }

    /// The record as a line of dnsmasq's configuration file.
    fn config_line(&self) -> String {
        match self {
            Record::Address { name, addr, ttl } => {
                let ttl = ttl.map(|t| format!(",{t}")).unwrap_or_default();
                format!("host-record={},{addr}{ttl}", field(name))
            }
            // dnsmasq's order is target, port, priority, weight (not a zone file's).
            Record::Srv { name, priority, weight, port, target } => {
                format!("srv-host={},{},{port},{priority},{weight}", field(name), field(target))
            }
            Record::Naptr { name, order, preference, flags, service, regexp, replacement } => format!(
                "naptr-record={},{order},{preference},{},{},{},{}",
                field(name),
                field(flags),
                field(service),
                field(regexp),
                field(replacement)
            ),
        }
    }
}

/// A value of a configuration line: dnsmasq splits at commas and lines at newlines, and
/// has no escape for them.
fn field(value: &str) -> &str {
    assert!(!value.contains([',', '\n', '\r']), "{value:?} cannot be written in a dnsmasq configuration line");
    value
}

/// What the server serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// Domains answered from the records alone (dnsmasq's `--local`): a name under them
    /// without a record of the type asked gets NXDOMAIN or NODATA. Names outside them are
    /// REFUSED (there is no upstream server).
    pub local: Vec<String>,
    /// The TTL, in seconds, of every record without one of its own (`--local-ttl`).
    pub ttl: u32,
    /// The records.
    pub records: Vec<Record>,
}

impl Zone {
    /// `records` under the local domain `test`, with a TTL of `ttl` seconds.
    pub fn new(ttl: u32, records: Vec<Record>) -> Zone {
        Zone { local: vec!["test".into()], ttl, records }
    }

    /// The configuration file: the zone's options and records.
    fn config(&self) -> String {
        let mut text = String::from("# Written by tests/common/dnsmasq.rs\n");
        writeln!(text, "local-ttl={}", self.ttl).unwrap();
        for domain in &self.local {
            writeln!(text, "local=/{}/", field(domain)).unwrap();
        }
        for record in &self.records {
            writeln!(text, "{}", record.config_line()).unwrap();
        }
        text
    }
}

/// A running dnsmasq on 127.0.0.1, UDP and TCP on one port, until dropped.
pub struct Dnsmasq {
    program: PathBuf,
    addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    /// Where the current process's lines begin in the log.
    log_from: usize,
}

impl Dnsmasq {
    /// Starts dnsmasq serving `zone` on a free loopback port and waits until it answers
    /// over UDP and TCP. Fails the test, naming what went wrong, when dnsmasq is missing,
    /// cannot start or does not answer in time.
    pub fn start(zone: &Zone) -> Dnsmasq {
        Dnsmasq::start_program(Path::new(DNSMASQ), zone)
    }

    /// As [`start`](Self::start), running `program` (a test of the helper itself gives a
    /// path that does not exist).
    pub fn start_program(program: &Path, zone: &Zone) -> Dnsmasq {
        if !program.exists() {
            panic!("{} is missing: `bash scripts/deps.sh` installs it (Debian's dnsmasq-base)", program.display());
        }
        let dir = fresh_dir();
        fs::write(dir.join("dnsmasq.conf"), zone.config()).expect("write dnsmasq.conf");
        // The port is free when chosen but may be taken before dnsmasq binds it: a few
        // ports are tried.
        let mut server = Dnsmasq { program: program.to_owned(), addr: free_port(), dir, child: None, log_from: 0 };
        let mut failures = Vec::new();
        for _ in 0..5 {
            match server.launch() {
                Ok(()) => return server,
                Err(failure) => failures.push(failure),
            }
            server.addr = free_port();
        }
        panic!("dnsmasq did not start on a free loopback port:\n{}", failures.join("\n"));
    }

    /// The address to ask: 127.0.0.1 and the port, for UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `zone` from now on: stops dnsmasq, writes the new configuration and starts
    /// it again on the same port, waiting until it answers. dnsmasq keeps no cache of its
    /// own records, so the first query after this gets the new ones.
    pub fn set_zone(&mut self, zone: &Zone) {
        self.stop();
        fs::write(self.dir.join("dnsmasq.conf"), zone.config()).expect("write dnsmasq.conf");
        // The port was just released; an odd process may have taken it meanwhile.
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(failure) if Instant::now() > deadline => {
                    panic!("dnsmasq did not start again on {}: {failure}", self.addr)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The queries dnsmasq logged since it last started, in order, as `name TYPE` (the
    /// way `sip_ptls::dns::Query` shows), its readiness probes left out. dnsmasq writes
    /// the line when the query comes in, before it answers.
    pub fn queries(&self) -> Vec<String> {
        let log = self.log();
        log.get(self.log_from..)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let rest = &line[line.find("query[")? + "query[".len()..];
                let (qtype, rest) = rest.split_once("] ")?;
                let name = rest.split(' ').next()?;
                (name != PROBE_NAME).then(|| format!("{name} {qtype}"))
            })
            .collect()
    }

    /// Everything dnsmasq wrote (its start-up lines and one line per query and reply).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dnsmasq.log")).unwrap_or_default()
    }

    /// Starts dnsmasq on `self.addr` with the configuration file in `self.dir`, and
    /// waits until it answers; on failure the process is gone and the error says why.
    fn launch(&mut self) -> Result<(), String> {
        let log = OpenOptions::new().create(true).append(true).open(self.dir.join("dnsmasq.log")).expect("open log");
        self.log_from = self.log().len();
        let child = Command::new(&self.program)
            .arg("--no-daemon")
            .arg(format!("--conf-file={}", self.dir.join("dnsmasq.conf").display()))
            .args(["--no-resolv", "--no-hosts", "--bind-interfaces"])
            .arg(format!("--listen-address={}", self.addr.ip()))
            .arg(format!("--port={}", self.addr.port()))
            .args(["--log-queries", "--log-facility=-"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "{} is missing: `bash scripts/deps.sh` installs it (Debian's dnsmasq-base)",
                self.program.display()
            ),
            Err(e) => panic!("cannot run {}: {e}", self.program.display()),
        };
        RUNNING.lock().unwrap().push(child.id());
        self.child = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(problem) => {
                self.stop();
                let log = self.log();
                Err(format!("{problem}; its log:\n{}", log.get(self.log_from..).unwrap_or(&log)))
            }
        }
    }

    /// Waits until dnsmasq answers a query over UDP and another over TCP, or exits.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        let mut udp_ok = false;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("dnsmasq on {} exited at start ({status})", self.addr));
            }
            if !udp_ok {
                match probe_udp(self.addr) {
                    Ok(()) => udp_ok = true,
                    Err(e) => last = format!("UDP: {e}"),
                }
            }
            if udp_ok {
                match probe_tcp(self.addr) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = format!("TCP: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("dnsmasq on {} did not answer within {READY_WITHIN:?} (last {last})", self.addr))
    }

    /// Kills the process and waits for it.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            RUNNING.lock().unwrap().retain(|pid| *pid != child.id());
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("dnsmasq on {}, its log:\n{}", self.addr, self.log());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Kills every dnsmasq this helper started and still runs: for a watchdog's last
/// clean-up, when the test process ends without running destructors.
pub fn kill_all() {
    let pids = RUNNING.lock().map(|pids| pids.clone()).unwrap_or_default();
    for pid in pids {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
}

/// A new empty directory for one server's configuration and log.
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("sip-ptls-dnsmasq-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the dnsmasq directory");
    dir
}

/// A loopback port free for both UDP and TCP when asked.
fn free_port() -> SocketAddr {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP on loopback");
        let addr = udp.local_addr().expect("local address");
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// A query for the probe name, type A, with this id: built by hand, so that readiness
/// does not depend on the code under test.
fn probe_query(id: u16) -> Vec<u8> {
    let mut message = id.to_be_bytes().to_vec();
    // Recursion desired; one question.
    message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in PROBE_NAME.split('.') {
        message.push(u8::try_from(label.len()).unwrap());
        message.extend_from_slice(label.as_bytes());
    }
    message.extend_from_slice(&[0, 0, 1, 0, 1]);
    message
}

/// Whether `reply` is a response to the probe with this id (any RCODE: dnsmasq refuses
/// the probe's name, which is an answer all the same).
fn answers(reply: &[u8], id: u16) -> bool {
    reply.len() >= 12 && reply[..2] == id.to_be_bytes() && reply[2] & 0x80 != 0
}

fn probe_udp(addr: SocketAddr) -> std::io::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(addr)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    socket.send(&probe_query(0x5150))?;
    let mut reply = [0u8; 512];
    let len = socket.recv(&mut reply)?;
    if answers(&reply[..len], 0x5150) { Ok(()) } else { Err(ErrorKind::InvalidData.into()) }
}

fn probe_tcp(addr: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let query = probe_query(0x5151);
    let mut framed = u16::try_from(query.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply)?;
    if answers(&reply, 0x5151) { Ok(()) } else { Err(ErrorKind::InvalidData.into()) }
}
