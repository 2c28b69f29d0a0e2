//! Parsing `/etc/resolv.conf` text the way the C library reads it, for the parts this
//! resolver uses: the `nameserver` lines and the `timeout:` and `attempts:` options.
//! Everything else (`search`, `domain`, `sortlist`, `ndots:`, `rotate`, ...) is ignored,
//! as are lines that cannot be read, so that a file written for another resolver never
//! stops the phone. Pure: the caller reads the file.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// The C library uses the first three `nameserver` lines only (MAXNS); the rest are
/// ignored here too, so that the phone asks the same servers as every other program on
/// the machine.
pub const MAX_NAMESERVERS: usize = 3;
/// resolv.conf has no port syntax: servers listen on the DNS port.
pub const DNS_PORT: u16 = 53;
/// The C library's defaults and bounds (resolv.conf(5)): 5 s per attempt, at most 30 s;
/// 2 attempts, at most 5. A timeout of 0 is taken as 1 s, as the C library does when it
/// waits, and 0 attempts as 1, so that a lookup always asks at least once.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TIMEOUT_SECS: u64 = 30;
/// The C library's default number of rounds over the servers.
pub const DEFAULT_ATTEMPTS: u32 = 2;
const MAX_ATTEMPTS: u32 = 5;

/// What the file says, before any fallback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// At most [`MAX_NAMESERVERS`], in the file's order; possibly none.
    pub nameservers: Vec<SocketAddr>,
    /// `options timeout:`, held to 1..=30 s.
    pub timeout: Duration,
    /// `options attempts:`, held to 1..=5.
    pub attempts: u32,
}

/// Parses the text of a resolv.conf file. Never fails: what cannot be read is skipped.
pub fn parse(text: &str) -> ResolvConf {
    let mut conf = ResolvConf { nameservers: Vec::new(), timeout: DEFAULT_TIMEOUT, attempts: DEFAULT_ATTEMPTS };
    for line in text.lines() {
        // A comment starts with `#` or `;`; neither can appear in an address or option.
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(server) = words.next().and_then(nameserver)
                    && conf.nameservers.len() < MAX_NAMESERVERS
                {
                    conf.nameservers.push(server);
                }
            }
            Some("options") => words.for_each(|option| apply_option(&mut conf, option)),
            _ => {}
        }
    }
    conf
}

/// A `nameserver` address: IPv4, or IPv6 with an optional numeric `%scope` (a link-local
/// server). An interface name as scope would need the OS's name-to-index lookup; such a
/// line is skipped.
fn nameserver(word: &str) -> Option<SocketAddr> {
    let (address, scope) = match word.split_once('%') {
        Some((address, scope)) => (address, Some(scope.parse::<u32>().ok()?)),
        None => (word, None),
    };
    match (address.parse::<IpAddr>().ok()?, scope) {
        (IpAddr::V6(v6), Some(scope)) => Some(SocketAddrV6::new(v6, DNS_PORT, 0, scope).into()),
        (IpAddr::V4(_), Some(_)) => None,
        (ip, None) => Some(SocketAddr::new(ip, DNS_PORT)),
    }
}

fn apply_option(conf: &mut ResolvConf, option: &str) {
    if let Some(value) = option.strip_prefix("timeout:").and_then(|v| v.parse::<u64>().ok()) {
        conf.timeout = Duration::from_secs(value.clamp(1, MAX_TIMEOUT_SECS));
    } else if let Some(value) = option.strip_prefix("attempts:").and_then(|v| v.parse::<u32>().ok()) {
        conf.attempts = value.clamp(1, MAX_ATTEMPTS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(conf: &ResolvConf) -> Vec<String> {
        conf.nameservers.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn nameservers_and_options_are_read() {
        let conf = parse(
            "# written by NetworkManager\n\
             search example.com corp.example.com\n\
             nameserver 192.0.2.53\n\
             nameserver   2001:db8::53  \n\
             options ndots:2 timeout:3 attempts:4 rotate\n",
        );
        assert_eq!(servers(&conf), ["192.0.2.53:53", "[2001:db8::53]:53"]);
        assert_eq!(conf.timeout, Duration::from_secs(3));
        assert_eq!(conf.attempts, 4);
    }

    #[test]
    fn an_empty_file_gives_the_defaults_and_no_server() {
        let conf = parse("");
        assert!(conf.nameservers.is_empty());
        assert_eq!((conf.timeout, conf.attempts), (DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS));
    }

    #[test]
    fn only_the_first_three_nameservers_count() {
        let conf = parse("nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n");
        assert_eq!(servers(&conf), ["192.0.2.1:53", "192.0.2.2:53", "192.0.2.3:53"]);
    }

    #[test]
    fn what_cannot_be_read_is_skipped() {
        let conf = parse(
            "nameserver\n\
             nameserver dns.example.com\n\
             nameserver 192.0.2.999\n\
             nameserver fe80::1%eth0\n\
             nameserver 192.0.2.1%3\n\
             ; nameserver 192.0.2.8\n\
             nameserver 192.0.2.9 # the office one\n\
             nameserver fe80::1%2\n\
             options timeout:x attempts: timeout\n\
             garbage line \u{0}\u{ff}\n",
        );
        assert_eq!(servers(&conf), ["192.0.2.9:53", "[fe80::1%2]:53"]);
        assert_eq!((conf.timeout, conf.attempts), (DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS));
    }

    #[test]
    fn options_are_held_to_the_c_library_bounds_and_the_last_wins() {
        let conf = parse("options timeout:0 attempts:0\n");
        assert_eq!((conf.timeout, conf.attempts), (Duration::from_secs(1), 1));
        let conf = parse("options timeout:1000 attempts:99\n");
        assert_eq!((conf.timeout, conf.attempts), (Duration::from_secs(30), 5));
        let conf = parse("options timeout:2\noptions timeout:7\n");
        assert_eq!(conf.timeout, Duration::from_secs(7));
    }
}
