//! The phone side of the scenarios: a lab with a primary and a backup Kamailio and the
//! generated certificates, a phone configuration with short timers (every bound in the
//! scenarios is derived from these constants), a running phone with bounded waits for
//! its events, and a watchdog that ends a hung test after killing its Kamailio instances.

use super::config::{KamailioConfig, password};
use super::instance::{Kamailio, free_port, kill_all_live};
use super::pki::{self, Pki, ServerCert};
pub use super::test_phone::TestPhone;
use super::{serial, temp_dir};
use sip_ptls::config::{AccountConfig, Backoff, CertificateFiles, Config, Failback, ServerAddr};
use sip_ptls::ids::Server;
use sip_ptls::registrar::TestDir;
use sip_ptls::time::Duration as CoreDuration;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The phone's keep-alive interval I (pings every [0.8 I, I]).
pub const KEEPALIVE: Duration = Duration::from_secs(2);
/// The phone's pong timeout.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(2);
/// Connect plus TLS handshake bound.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Transaction timer (first response to REGISTER/INVITE/OPTIONS; the configuration
/// accepts 4 s at least).
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(4);
/// Probe interval of the primary while on the backup.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Good probes in a row before failback.
pub const STABLE_PROBES: u8 = 3;
/// Back-off base and cap after a round in which every server failed.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// See [`BACKOFF_BASE`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a queued call may wait.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Measured floor of connect + TLS 1.3 handshake against this Kamailio is ~2 ms and a
/// REGISTER/401/REGISTER/200 round ~1 ms (reference notes); this margin covers a loaded
/// 2-core test machine and the process wake-ups, not protocol waits.
pub const MARGIN: Duration = Duration::from_millis(1500);

/// The accounts of the scenarios, in phone order.
pub const ACCOUNTS: [&str; 3] = ["alice", "bob", "carol"];

fn core(d: Duration) -> CoreDuration {
    CoreDuration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub use super::watchdog::Watchdog;

/// Starts a watchdog for one test; on expiry it kills the Kamailio instances first.
pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    super::watchdog::watchdog_with(name, limit, kill_all_live)
}

/// One scenario's world. Field order matters: the phone (in the test) is dropped before
/// the lab, and the instances before the directory.
pub struct Lab {
    /// The primary instance.
    pub primary: Kamailio,
    /// The backup instance.
    pub backup: Kamailio,
    /// The certificates.
    pub pki: Pki,
    /// The directory of certificates, configurations and logs.
    pub dir: TestDir,
    _watchdog: Watchdog,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Lab {
    /// Starts a primary and a backup with the default configuration, adjusted by `adjust`
    /// (called with each configuration).
    pub fn start(name: &'static str, limit: Duration, adjust: impl Fn(&mut KamailioConfig)) -> Lab {
        let serial = serial();
        let watchdog = watchdog(name, limit);
        let dir = temp_dir(name);
        let pki = pki::generate(&dir);
        let mut p = KamailioConfig::new("primary", free_port(), ServerCert::Primary);
        let mut b = KamailioConfig::new("backup", free_port(), ServerCert::Backup);
        adjust(&mut p);
        adjust(&mut b);
        let primary = Kamailio::start(dir.path(), &pki, p);
        let backup = Kamailio::start(dir.path(), &pki, b);
        Lab { primary, backup, pki, dir, _watchdog: watchdog, _serial: serial }
    }

    /// A further instance beside the primary and the backup (a third DNS target), from
    /// the default configuration (certificate [`ServerCert::Domain`]) adjusted by
    /// `adjust`. Killed when dropped (before the lab, so declare it after) and by the
    /// watchdogs, like the others.
    pub fn start_another(&self, name: &str, adjust: impl FnOnce(&mut KamailioConfig)) -> Kamailio {
        let mut cfg = KamailioConfig::new(name, free_port(), ServerCert::Domain);
        adjust(&mut cfg);
        Kamailio::start(self.dir.path(), &self.pki, cfg)
    }

    /// The phone configuration: both servers on 127.0.0.1, our CA trusted, the scenario
    /// accounts, short timers.
    pub fn config(&self) -> Config {
        Config {
            proxy: Some(ServerAddr::new("127.0.0.1", self.primary.cfg.port)),
            backup_proxy: Some(ServerAddr::new("127.0.0.1", self.backup.cfg.port)),
            accounts: ACCOUNTS.iter().map(|u| AccountConfig::new(u, password(u))).collect(),
            certificates: CertificateFiles {
                trusted_certificates: Some(self.pki.ca.display().to_string()),
                ..Default::default()
            },
            keepalive_interval: core(KEEPALIVE),
            pong_timeout: core(PONG_TIMEOUT),
            connect_timeout: core(CONNECT_TIMEOUT),
            transaction_timeout: core(TRANSACTION_TIMEOUT),
            registration_period: 300,
            outbound: true,
            backoff: Backoff { base: core(BACKOFF_BASE), max: core(BACKOFF_MAX) },
            failback: Failback { probe_interval: core(PROBE_INTERVAL), stable_probes: STABLE_PROBES },
            call_setup_timeout: core(CALL_TIMEOUT),
            seed: sip_ptls::runtime::os_seed().expect("a seed from the OS"),
            ..Config::default()
        }
    }

    /// Starts a phone, recording its trace into the lab's directory; the trace is replayed
    /// and checked by the invariant monitor once the phone has shut down
    /// ([`TestPhone::shutdown`], or its drop).
    pub fn phone(&self, config: Config) -> TestPhone {
        TestPhone::spawn(config, self.dir.path())
    }

    /// The instance of `server`.
    pub fn instance(&self, server: Server) -> &Kamailio {
        match server {
            Server::Primary => &self.primary,
            Server::Backup => &self.backup,
        }
    }

    /// Polls `what` on an instance every 50 ms until it holds or `limit` passes.
    pub fn until(&self, what: &str, limit: Duration, mut check: impl FnMut(&Lab) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if check(self) {
                return start.elapsed();
            }
            assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Lab::kamailio_sees_all_on_one_connection`] on the primary, panicking otherwise.
    pub fn primary_one_connection(&self) -> u16 {
        self.kamailio_sees_all_on_one_connection(Server::Primary).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Lines of the primary's log containing `needle`.
    pub fn primary_log_count(&self, needle: &str) -> usize {
        self.primary.log_lines(&[needle]).len()
    }

    /// Every scenario account is bound on `server`, all through one connection from one
    /// source port, which is the only connection that instance holds. Returns that port.
    pub fn kamailio_sees_all_on_one_connection(&self, server: Server) -> Result<u16, String> {
        let k = self.instance(server);
        let bindings = k.bindings();
        let aors: BTreeSet<&str> = bindings.iter().map(|b| b.aor.as_str()).collect();
        if aors != ACCOUNTS.iter().copied().collect() {
            return Err(format!("{server} bindings {bindings:?}"));
        }
        let ports: BTreeSet<Option<u16>> = bindings.iter().map(|b| b.received_port()).collect();
        let conns = k.tcp_connections();
        match (ports.iter().next(), conns.as_slice()) {
            (Some(Some(port)), [only]) if ports.len() == 1 && only.src_port == *port => Ok(*port),
            _ => Err(format!("{server}: binding sources {ports:?}, connections {conns:?}")),
        }
    }
}
