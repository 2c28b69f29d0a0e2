//! The phone's global configuration as plain data, its defaults, and its validation.
//!
//! The Aastra-style file reader (`aastra`) produces a [`Config`]; embedders may also build
//! one in code. [`Config::validate`] names the parameter behind every error, using the
//! Aastra spelling so that an administrator can find it in the configuration files.

pub mod aastra;
mod debug;
pub mod instance;
mod syntax;

pub use crate::dns::DnsQueryType;
pub use crate::rng::Seed;
use crate::time::Duration;
use core::net::SocketAddr;
use thiserror::Error;

/// Most accounts (lines) a phone has: `sip line1` … `sip line9`.
pub const MAX_ACCOUNTS: usize = 9;

/// Where a connection goes: a host name or address literal and a TCP port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    /// Host name or IP address literal, as configured (also the TLS server name).
    pub host: String,
    /// TCP port as configured. 0 means "not given": the core locates the server as
    /// `sip dns query type` says (SRV for a name, 5061 for an address), see docs/dns.md.
    pub port: u16,
}

impl ServerAddr {
    /// A server address; port 0 leaves the port to DNS (SRV) or to the SIPS default 5061.
    pub fn new(host: impl Into<String>, port: u16) -> ServerAddr {
        ServerAddr { host: host.into(), port }
    }

    /// The port a connection goes to when no SRV record gives one: the configured port,
    /// or 5061 (RFC 3263 §4.2) for 0.
    pub fn effective_port(&self) -> u16 {
        if self.port == 0 { crate::dns::SIPS_PORT } else { self.port }
    }

    /// This server as the locator takes it, with the procedure of `query_type`.
    pub fn spec(&self, query_type: DnsQueryType) -> crate::dns::ServerSpec {
        crate::dns::ServerSpec::new(self.host.clone(), self.port, query_type)
    }
}

/// `sip transport protocol: 4` with `sips persistent tls: 0` or `1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportMode {
    /// A new TLS connection for every registration exchange and every call.
    PerCallTls,
    /// One TLS connection per phone, opened at start and shared by everything.
    PersistentTls,
}

/// One line of the phone.
/// `Debug` is written by hand (`debug.rs`): it never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccountConfig {
    /// `sip lineN user name`: user part of the address of record.
    pub user_name: String,
    /// `sip lineN auth name`: digest user name (the user name when empty).
    pub auth_name: String,
    /// `sip lineN password`.
    pub password: String,
    /// `sip lineN display name`: display name in From.
    pub display_name: String,
    /// `sip lineN registration period` in seconds; `None` uses the global period.
    pub registration_period: Option<u32>,
}

impl AccountConfig {
    /// An account whose auth name is its user name.
    pub fn new(user: &str, password: &str) -> AccountConfig {
        AccountConfig {
            user_name: user.to_owned(),
            auth_name: user.to_owned(),
            password: password.to_owned(),
            display_name: String::new(),
            registration_period: None,
        }
    }

    /// The name used in digest responses.
    pub fn digest_user(&self) -> &str {
        if self.auth_name.is_empty() { &self.user_name } else { &self.auth_name }
    }
}

/// The certificate file names, exactly as configured (the runtime resolves and reads them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CertificateFiles {
    /// `sips root and intermediate certificates`: chain sent with the local certificate.
    pub root_and_intermediate: Option<String>,
    /// `sips local certificate`: the phone's own certificate (mutual TLS).
    pub local_certificate: Option<String>,
    /// `sips private key`: key of the local certificate.
    pub private_key: Option<String>,
    /// `sips trusted certificates`: the CAs that verify the proxy.
    pub trusted_certificates: Option<String>,
    /// `sips certificate revocation list` (an extension of the Aastra set): certificate
    /// revocation lists (PEM `X509 CRL`) against which the proxy's chain is checked.
    pub revocation_list: Option<String>,
}

/// Reconnect back-off: RFC 5626 §4.5 shape with shorter defaults, because a phone that
/// waits 30 s to 30 min after an outage is the peers' worst complaint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// First wait bound W0; the wait after `n` failed rounds is drawn in `[W/2, W]`,
    /// `W = min(max, base * 2^n)`.
    pub base: Duration,
    /// Cap on W.
    pub max: Duration,
}

/// When to go back from the backup to the primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Failback {
    /// Time between two probes of the primary while the phone runs on the backup.
    pub probe_interval: Duration,
    /// Consecutive good probes before the primary counts as stable. A probe is a TLS
    /// connection to the primary carrying one OPTIONS request; any final answer makes it
    /// good, and a failed probe (no connection, no answer in time) starts the count again.
    pub stable_probes: u8,
}

/// Everything the core needs to know. Plain data: `Clone + Eq + Hash`; `Debug` is written
/// by hand (`debug.rs`) so that no password reaches a log.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Config {
    /// Per-call TLS or Persistent TLS.
    pub mode: TransportMode,
    /// `sip proxy ip` / `sip proxy port`.
    pub proxy: Option<ServerAddr>,
    /// `sip backup proxy ip` / `sip backup proxy port`.
    pub backup_proxy: Option<ServerAddr>,
    /// `sip registrar ip` / `sip registrar port`: the domain of REGISTERs and of the
    /// addresses of record when it differs from the proxy.
    pub registrar: Option<ServerAddr>,
    /// `sip backup registrar ip` / `sip backup registrar port`.
    pub backup_registrar: Option<ServerAddr>,
    /// The lines, 1 to 9.
    pub accounts: Vec<AccountConfig>,
    /// `sip persistent tls keep alive`: ping interval; zero means "not set" (see
    /// [`Config::effective_keepalive`]).
    pub keepalive_interval: Duration,
    /// How long to wait for the pong (RFC 5626: 10 s).
    pub pong_timeout: Duration,
    /// `sip registration period` in seconds; 0 lets the registrar choose.
    pub registration_period: u32,
    /// `sip registration renewal timer` in seconds.
    pub registration_renewal: u32,
    /// `sip registration retry timer` in seconds, after a rejected REGISTER (30..=1800).
    pub registration_retry: u32,
    /// `sip registration timeout retry timer` in seconds, after a REGISTER timed out
    /// or was answered 408 (at least 30).
    pub registration_timeout_retry: u32,
    /// `sip transaction timer`: how long a request may wait for its first response.
    pub transaction_timeout: Duration,
    /// How long TCP connect plus TLS handshake may take before the attempt fails.
    pub connect_timeout: Duration,
    /// `sip dns query type`: how a server configured by name is located (A only; SRV and
    /// A; NAPTR, SRV and A).
    pub dns_query_type: DnsQueryType,
    /// `sip persistent tls dns servers` (our extension): the recursive DNS servers the
    /// shell asks; empty means the system's (`/etc/resolv.conf`). The core never reads it.
    pub dns_servers: Vec<SocketAddr>,
    /// `sip send sips over tls`: `sips:` URIs when true, `sip:` when false.
    pub sips_scheme: bool,
    /// `sip outbound support`: RFC 5626 `Supported: outbound`, `+sip.instance`, `reg-id`.
    pub outbound: bool,
    /// The `+sip.instance` URN (`sip persistent tls instance id`). Embedders should set it
    /// from the device's identity ([`instance`], `runtime::device_instance_id`); when it
    /// is absent the core falls back to one derived from the seed, which is stable only
    /// while the seed is, and shared by every device given the same seed.
    pub instance_id: Option<String>,
    /// Certificate file names.
    pub certificates: CertificateFiles,
    /// Reconnect back-off.
    pub backoff: Backoff,
    /// Failback hysteresis.
    pub failback: Failback,
    /// Calls the phone may hold while it has no usable connection.
    pub call_queue_limit: u8,
    /// How long a placed call may wait for a connection and a final answer's first sign
    /// of life before it fails.
    pub call_setup_timeout: Duration,
    /// A peer that takes none of the bytes waiting for it for this long is dead.
    pub write_stall_timeout: Duration,
    /// A peer that leaves more unsent bytes than this is dead.
    pub max_write_backlog: usize,
    /// Incoming calls that may ring at once; the next one is answered 486 Busy Here.
    pub max_ringing_calls: u8,
    /// An incoming call that rings this long unanswered is ended (RFC 3261 Timer C).
    pub ringing_timeout: Duration,
    /// An established call whose connection is gone is ended after this, since the far
    /// end can no longer reach it.
    pub orphaned_call_timeout: Duration,
    /// Seed of every jitter and identifier: the key of the core's ChaCha20 generator.
    pub seed: Seed,
}

/// RFC 5626 §4.4.1 default keep-alive bound for a mains-powered device.
pub const RFC5626_KEEPALIVE: Duration = Duration::from_secs(120);

impl Default for Config {
    fn default() -> Config {
        Config {
            mode: TransportMode::PersistentTls,
            proxy: None,
            backup_proxy: None,
            registrar: None,
            backup_registrar: None,
            accounts: Vec::new(),
            keepalive_interval: Duration::ZERO,
            pong_timeout: Duration::from_secs(10),
            registration_period: 0,
            registration_renewal: 15,
            registration_retry: 1800,
            registration_timeout_retry: 120,
            transaction_timeout: Duration::from_millis(4000),
            connect_timeout: Duration::from_secs(5),
            dns_query_type: DnsQueryType::SrvAndA,
            dns_servers: Vec::new(),
            sips_scheme: true,
            outbound: false,
            instance_id: None,
            certificates: CertificateFiles::default(),
            backoff: Backoff { base: Duration::from_secs(2), max: Duration::from_secs(120) },
            failback: Failback { probe_interval: Duration::from_secs(30), stable_probes: 3 },
            call_queue_limit: 8,
            call_setup_timeout: Duration::from_secs(32),
            write_stall_timeout: Duration::from_secs(10),
            max_write_backlog: 256 * 1024,
            max_ringing_calls: 4,
            ringing_timeout: Duration::from_secs(180),
            orphaned_call_timeout: Duration::from_secs(120),
            seed: Seed::ZERO,
        }
    }
}

/// A configuration that cannot work, naming the parameter at fault.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A parameter needed by another one is missing.
    #[error("`{parameter}` is required: {why}")]
    Missing {
        /// Aastra name of the missing parameter.
        parameter: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// A parameter has a value outside what it accepts.
    #[error("`{parameter}` is invalid: {why}")]
    Invalid {
        /// Aastra name of the parameter.
        parameter: String,
        /// What is wrong with the value.
        why: String,
    },
}

fn invalid(parameter: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { parameter: parameter.to_owned(), why: why.into() }
}

impl Config {
    /// Checks every rule that makes a configuration unusable, and returns all violations.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        match &self.proxy {
            None => errors
                .push(ConfigError::Missing { parameter: "sip proxy ip", why: "the phone has no server to connect to" }),
            Some(p) if p.host.is_empty() || p.host == "0.0.0.0" => {
                errors.push(invalid("sip proxy ip", "no proxy address is set"))
            }
            Some(_) => {}
        }
        if let Some(b) = &self.backup_proxy
            && (b.host.is_empty() || b.host == "0.0.0.0")
        {
            errors.push(invalid("sip backup proxy ip", "empty address"));
        }
        let servers = [("sip proxy ip", &self.proxy), ("sip backup proxy ip", &self.backup_proxy)];
        for (parameter, server) in servers {
            if let Some(s) = server
                && !s.host.is_empty()
                && s.host != "0.0.0.0"
                && s.spec(self.dns_query_type).plan().is_none()
            {
                errors.push(invalid(
                    parameter,
                    format!("`{}` is neither an IP address nor a host name DNS can carry", s.host),
                ));
            }
        }
        // Both modes verify the proxy; there is no switch to turn verification off.
        if self.certificates.trusted_certificates.as_deref().is_none_or(str::is_empty) {
            errors.push(ConfigError::Missing {
                parameter: "sips trusted certificates",
                why: "the proxy's certificate is verified against the trusted certificates",
            });
        }
        let has_cert = self.certificates.local_certificate.as_deref().is_some_and(|s| !s.is_empty());
        let has_key = self.certificates.private_key.as_deref().is_some_and(|s| !s.is_empty());
        if has_cert && !has_key {
            errors.push(ConfigError::Missing {
                parameter: "sips private key",
                why: "a local certificate is configured without its private key",
            });
        }
        if has_key && !has_cert {
            errors.push(ConfigError::Missing {
                parameter: "sips local certificate",
                why: "a private key is configured without its certificate",
            });
        }
        if self.accounts.is_empty() {
            errors
                .push(ConfigError::Missing { parameter: "sip line1 user name", why: "at least one account is needed" });
        }
        if self.accounts.len() > MAX_ACCOUNTS {
            errors.push(invalid("sip lineN", format!("at most {MAX_ACCOUNTS} lines, got {}", self.accounts.len())));
        }
        for (i, a) in self.accounts.iter().enumerate() {
            let name = |field: &str| format!("sip line{} {field}", i + 1);
            if a.user_name.is_empty() {
                errors.push(invalid(&name("user name"), "empty"));
            } else if let Some(why) = syntax::user_part(&a.user_name) {
                errors.push(invalid(&name("user name"), why));
            }
            // The auth name travels as a quoted-string in Authorization; the password is
            // only ever hashed, so it may hold any character.
            if let Some(why) = syntax::quoted_text(&a.auth_name) {
                errors.push(invalid(&name("auth name"), why));
            }
            if let Some(why) = syntax::quoted_text(&a.display_name) {
                errors.push(invalid(&name("display name"), why));
            }
        }
        let hosts = [
            ("sip proxy ip", &self.proxy),
            ("sip backup proxy ip", &self.backup_proxy),
            ("sip registrar ip", &self.registrar),
            ("sip backup registrar ip", &self.backup_registrar),
        ];
        for (parameter, server) in hosts {
            let Some(s) = server else { continue };
            if s.host.is_empty() || s.host == "0.0.0.0" {
                // The proxies' unset addresses are reported above in their own words.
                if parameter.contains("registrar") {
                    errors.push(invalid(parameter, "empty address; leave the registrar out instead"));
                }
            } else if let Some(why) = syntax::host(&s.host) {
                errors.push(invalid(parameter, why));
            }
        }
        if let Some(id) = &self.instance_id
            && let Some(why) = syntax::instance_id(id)
        {
            errors.push(invalid("sip persistent tls instance id", why));
        }
        if self.pong_timeout.is_zero() {
            errors.push(invalid("sip persistent tls pong timeout", "must be at least 1 ms"));
        }
        if !(4000..=64000).contains(&self.transaction_timeout.as_millis()) {
            errors.push(invalid("sip transaction timer", "must be 4000 to 64000 ms"));
        }
        if self.connect_timeout.is_zero() {
            errors.push(invalid("sip persistent tls connect timeout", "must be at least 1 ms"));
        }
        if self.write_stall_timeout.is_zero() || self.max_write_backlog == 0 {
            errors
                .push(invalid("write stall limits", "the write-stall timeout and the backlog limit must be non-zero"));
        }
        if self.max_ringing_calls == 0 || self.ringing_timeout.is_zero() || self.orphaned_call_timeout.is_zero() {
            errors.push(invalid("call limits", "the ringing limit and the call timeouts must be non-zero"));
        }
        if !(30..=1800).contains(&self.registration_retry) {
            errors.push(invalid("sip registration retry timer", "must be 30 to 1800 s"));
        }
        if self.registration_timeout_retry < 30 {
            errors.push(invalid("sip registration timeout retry timer", "must be at least 30 s"));
        }
        if self.backoff.base.is_zero() || self.backoff.max < self.backoff.base {
            errors.push(invalid(
                "sip persistent tls reconnect max",
                "the back-off cap must be at least the (non-zero) base",
            ));
        }
        if self.failback.probe_interval.is_zero() || self.failback.stable_probes == 0 {
            errors.push(invalid("sip persistent tls failback interval", "interval and probe count must be non-zero"));
        }
        if self.call_setup_timeout.is_zero() {
            errors.push(invalid("sip persistent tls call timeout", "must be non-zero"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The keep-alive interval in force: the configured one, or RFC 5626's 120 s when the
    /// parameter is 0, capped by a server's Flow-Timer when it sent one.
    pub fn effective_keepalive(&self, flow_timer: Option<Duration>) -> Duration {
        let configured = if self.keepalive_interval.is_zero() { RFC5626_KEEPALIVE } else { self.keepalive_interval };
        match flow_timer {
            Some(f) if !f.is_zero() => configured.min(f),
            _ => configured,
        }
    }

    /// The registration period asked for on `account`, in seconds (0: the registrar chooses).
    pub fn period_for(&self, account: usize) -> u32 {
        self.accounts.get(account).and_then(|a| a.registration_period).unwrap_or(self.registration_period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_timer_of_zero_leaves_the_keepalive_interval_alone() {
        let c = Config { keepalive_interval: Duration::from_secs(30), ..Config::default() };
        assert_eq!(c.effective_keepalive(Some(Duration::ZERO)), Duration::from_secs(30));
        assert_eq!(c.effective_keepalive(Some(Duration::from_secs(20))), Duration::from_secs(20));
        assert_eq!(c.effective_keepalive(Some(Duration::from_secs(90))), Duration::from_secs(30));
        let unset = Config { keepalive_interval: Duration::ZERO, ..Config::default() };
        assert_eq!(unset.effective_keepalive(Some(Duration::ZERO)), Duration::from_secs(120));
    }

    fn good() -> Config {
        Config {
            proxy: Some(ServerAddr::new("proxy.example.com", 5061)),
            accounts: vec![AccountConfig::new("1001", "secret")],
            certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
            ..Config::default()
        }
    }

    fn names(errors: &[ConfigError]) -> Vec<String> {
        errors
            .iter()
            .map(|e| match e {
                ConfigError::Missing { parameter, .. } => (*parameter).to_owned(),
                ConfigError::Invalid { parameter, .. } => parameter.clone(),
            })
            .collect()
    }

    #[test]
    fn a_complete_configuration_is_valid() {
        assert_eq!(good().validate(), Ok(()));
    }

    #[test]
    fn both_modes_need_trusted_certificates() {
        let mut c = good();
        c.certificates.trusted_certificates = None;
        assert_eq!(names(&c.validate().unwrap_err()), ["sips trusted certificates"]);
        c.mode = TransportMode::PerCallTls;
        assert_eq!(names(&c.validate().unwrap_err()), ["sips trusted certificates"]);
    }

    #[test]
    fn certificate_and_key_come_together() {
        let mut c = good();
        c.certificates.local_certificate = Some("me.pem".into());
        assert_eq!(names(&c.validate().unwrap_err()), ["sips private key"]);
        c.certificates.private_key = Some("me.key".into());
        assert_eq!(c.validate(), Ok(()));
        c.certificates.local_certificate = None;
        assert_eq!(names(&c.validate().unwrap_err()), ["sips local certificate"]);
    }

    #[test]
    fn no_proxy_is_an_error_naming_the_proxy() {
        let mut c = good();
        c.proxy = None;
        assert_eq!(names(&c.validate().unwrap_err()), ["sip proxy ip"]);
        c.proxy = Some(ServerAddr::new("0.0.0.0", 0));
        assert_eq!(names(&c.validate().unwrap_err()), ["sip proxy ip"]);
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let c = Config::default();
        let n = names(&c.validate().unwrap_err());
        assert!(n.contains(&"sip proxy ip".to_owned()));
        assert!(n.contains(&"sips trusted certificates".to_owned()));
        assert!(n.contains(&"sip line1 user name".to_owned()));
    }

    #[test]
    fn keepalive_zero_means_rfc_default_and_flow_timer_caps() {
        let mut c = good();
        assert_eq!(c.effective_keepalive(None), RFC5626_KEEPALIVE);
        assert_eq!(c.effective_keepalive(Some(Duration::from_secs(30))), Duration::from_secs(30));
        c.keepalive_interval = Duration::from_secs(20);
        assert_eq!(c.effective_keepalive(Some(Duration::from_secs(30))), Duration::from_secs(20));
    }

    #[test]
    fn ranges_are_checked() {
        let mut c = good();
        c.registration_retry = 10;
        c.transaction_timeout = Duration::from_millis(100);
        let n = names(&c.validate().unwrap_err());
        assert_eq!(n, ["sip transaction timer", "sip registration retry timer"]);
    }
}
