//! Which servers the resolver asks, how long it waits for each and how many rounds it
//! makes: from the system's `/etc/resolv.conf`, or an explicit list (tests, and the
//! configuration parameter that may later name the phone's own DNS servers).

use super::error::ResolvConfError;
use super::resolv_conf::{self, DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT, DNS_PORT};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The system's resolver configuration file.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The resolver's settings. A lookup makes `attempts` rounds; each round tries every
/// server in order, each exchange bounded by `timeout`; it stops at the first answer
/// (records or a negative answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverConfig {
    /// The servers, asked in this order.
    pub servers: Vec<SocketAddr>,
    /// The bound on one exchange with one server (UDP, or the TCP retry after a
    /// truncated UDP reply, which gets a bound of its own).
    pub timeout: Duration,
    /// Rounds over the server list, at least 1.
    pub attempts: u32,
}

impl ResolverConfig {
    /// These servers, with the C library's default timeout and attempts.
    pub fn with_servers(servers: Vec<SocketAddr>) -> ResolverConfig {
        ResolverConfig { servers, timeout: DEFAULT_TIMEOUT, attempts: DEFAULT_ATTEMPTS }
    }

    /// The servers and options of `/etc/resolv.conf`.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or it names no usable nameserver.
    pub fn system() -> Result<ResolverConfig, ResolvConfError> {
        ResolverConfig::from_file(Path::new(RESOLV_CONF))
    }

    /// Like [`ResolverConfig::system`], but where that fails, the C library's fallback:
    /// a DNS server on this machine (127.0.0.1:53), with the error for the caller to log,
    /// since a phone that silently asks a server that is not there is hard to diagnose.
    pub fn system_or_local() -> (ResolverConfig, Option<ResolvConfError>) {
        ResolverConfig::from_file_or_local(Path::new(RESOLV_CONF))
    }

    /// The servers and options of a resolv.conf file at `path`.
    ///
    /// # Errors
    ///
    /// As [`ResolverConfig::system`].
    pub fn from_file(path: &Path) -> Result<ResolverConfig, ResolvConfError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ResolvConfError::Read { path: path.to_path_buf(), error: e.to_string() })?;
        let conf = resolv_conf::parse(&text);
        if conf.nameservers.is_empty() {
            return Err(ResolvConfError::NoNameserver { path: path.to_path_buf() });
        }
        Ok(ResolverConfig { servers: conf.nameservers, timeout: conf.timeout, attempts: conf.attempts })
    }

    /// [`ResolverConfig::from_file`], falling back as [`ResolverConfig::system_or_local`]
    /// does. The options of a file without a nameserver still apply.
    pub fn from_file_or_local(path: &Path) -> (ResolverConfig, Option<ResolvConfError>) {
        match ResolverConfig::from_file(path) {
            Ok(config) => (config, None),
            Err(e) => {
                let conf = std::fs::read_to_string(path).map(|text| resolv_conf::parse(&text)).ok();
                let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DNS_PORT);
                let config = ResolverConfig {
                    servers: vec![local],
                    timeout: conf.as_ref().map_or(DEFAULT_TIMEOUT, |c| c.timeout),
                    attempts: conf.as_ref().map_or(DEFAULT_ATTEMPTS, |c| c.attempts),
                };
                (config, Some(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A resolv.conf file in a fresh temporary directory, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            let mut random = [0u8; 8];
            getrandom::fill(&mut random).unwrap();
            let dir = std::env::temp_dir().join(format!(
                "sip-ptls-dns-{}-{}",
                std::process::id(),
                u64::from_le_bytes(random)
            ));
            std::fs::create_dir(&dir).unwrap();
            let path = dir.join(name);
            std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn a_file_with_nameservers_gives_them_with_its_options() {
        let file = TempFile::new("resolv.conf", "nameserver 192.0.2.1\noptions timeout:1 attempts:3\n");
        let config = ResolverConfig::from_file(&file.0).unwrap();
        assert_eq!(config.servers, ["192.0.2.1:53".parse::<SocketAddr>().unwrap()]);
        assert_eq!((config.timeout, config.attempts), (Duration::from_secs(1), 3));
        assert_eq!(ResolverConfig::from_file_or_local(&file.0), (config, None));
    }

    #[test]
    fn a_file_without_nameserver_is_an_error_naming_it_and_falls_back_to_this_machine() {
        let file = TempFile::new("resolv.conf", "search example.com\noptions timeout:2\n");
        let error = ResolverConfig::from_file(&file.0).unwrap_err();
        assert_eq!(error, ResolvConfError::NoNameserver { path: file.0.clone() });
        assert!(error.to_string().contains("resolv.conf names no usable nameserver"), "{error}");
        let (config, reported) = ResolverConfig::from_file_or_local(&file.0);
        assert_eq!(reported, Some(error));
        assert_eq!(config.servers, ["127.0.0.1:53".parse::<SocketAddr>().unwrap()]);
        assert_eq!((config.timeout, config.attempts), (Duration::from_secs(2), DEFAULT_ATTEMPTS));
    }

    #[test]
    fn a_missing_file_is_an_error_and_falls_back_to_this_machine() {
        let file = TempFile::new("present", "");
        let missing = file.0.with_file_name("absent");
        let error = ResolverConfig::from_file(&missing).unwrap_err();
        assert!(matches!(&error, ResolvConfError::Read { path, .. } if path == &missing), "{error:?}");
        let (config, reported) = ResolverConfig::from_file_or_local(&missing);
        assert_eq!(reported, Some(error));
        assert_eq!(config, ResolverConfig::with_servers(vec!["127.0.0.1:53".parse().unwrap()]));
    }
}
