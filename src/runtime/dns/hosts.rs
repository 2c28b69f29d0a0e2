//! The hosts file (`/etc/hosts`) as a table of names and addresses, and RFC 6761's
//! `localhost`: the answers the shell gives before it asks a DNS server, as the C library
//! does with `hosts: files dns`. Without it a configured `localhost` or a name pinned in
//! the file (a lab proxy, a test rig) would go to DNS and fail where every other program
//! on the machine finds it.
//!
//! Pure apart from [`HostsTable::read`] and [`HostsTable::system`], which read the file.

use super::records::{AddressRecord, Answer, Negative, NegativeKind, QueryType};
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The system's hosts file.
pub const HOSTS: &str = "/etc/hosts";

/// The TTL, in seconds, of every address answered from the table (the file has none).
/// The core's cache keeps an answer at least 5 s whatever its TTL, so a smaller value
/// would change nothing; a minute is short enough that, once the shell reads an edited
/// file again, the core uses the new addresses within a minute, and long enough that the
/// A and AAAA queries of one location are not asked again on every connection attempt.
pub const HOSTS_TTL: u32 = 60;

/// The names of a hosts file and their addresses. Names are kept in lower case without
/// a final dot, since DNS names compare without case and `name.` is `name`; each name
/// keeps its addresses, IPv4 and IPv6, in the file's order, over every line naming it.
#[derive(Clone, Debug, Default)]
pub struct HostsTable {
    names: BTreeMap<String, Vec<IpAddr>>,
}

impl HostsTable {
    /// Parses hosts file text the way the C library (glibc) reads it: `#` starts a comment
    /// anywhere on a line; fields are separated by blanks or tabs; the first is an IPv4 or
    /// IPv6 address, the others are the canonical name and its aliases, all looked up
    /// alike. A line that does not parse is skipped without a word, as glibc skips it, so
    /// that one bad line does not cost the rest of the file. An IPv6 address with a
    /// `%scope` is such a line (glibc's address parser refuses it too), and so are
    /// addresses only the old `inet_aton` forms can read (`127.1`, `0x7f.0.0.1`),
    /// which hosts files hardly ever hold.
    pub fn parse(text: &str) -> HostsTable {
        let mut table = HostsTable::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            // C's `isspace`, which glibc splits on: blanks and tabs, and also a stray
            // carriage return (a file edited on Windows), vertical tab or form feed.
            let mut fields = line.split([' ', '\t', '\r', '\x0b', '\x0c']).filter(|field| !field.is_empty());
            // `IpAddr`'s parser refuses a `%scope` suffix: a scoped line goes here.
            let Some(addr) = fields.next().and_then(|field| field.parse::<IpAddr>().ok()) else { continue };
            for name in fields {
                let name = key(name);
                // A bare `.` names the root, which no query asks for.
                if name.is_empty() {
                    continue;
                }
                let addresses = table.names.entry(name).or_default();
                // The same address on two lines is one address: giving it twice would
                // only make the core try the same host twice.
                if !addresses.contains(&addr) {
                    addresses.push(addr);
                }
            }
        }
        table
    }

    /// Reads and parses the hosts file at `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be read. A missing file is among them, and is no fault: a machine
    /// may have no hosts file, and the caller then goes on with an empty table, as
    /// [`HostsTable::system`] does.
    pub fn read(path: &Path) -> io::Result<HostsTable> {
        Ok(HostsTable::parse(&std::fs::read_to_string(path)?))
    }

    /// The table of `/etc/hosts`, or an empty one when the file is missing or
    /// unreadable: the lookups then all go to DNS, which is what the C library does too.
    /// The reason is logged at debug level, since a machine without the file is normal.
    pub fn system() -> HostsTable {
        match HostsTable::read(Path::new(HOSTS)) {
            Ok(table) => {
                tracing::debug!(path = HOSTS, names = table.names.len(), "hosts file read");
                table
            }
            Err(error) => {
                tracing::debug!(path = HOSTS, %error, "no hosts file: every name goes to DNS");
                HostsTable::default()
            }
        }
    }

    /// The answer to an A or AAAA query for `name` (with or without the final dot, in any
    /// case), or `None` when the table has nothing to say and DNS must be asked.
    ///
    /// - `localhost` and every name under `.localhost` are the loopback address, 127.0.0.1
    ///   or ::1, whatever the file says (RFC 6761 §6.3: such names never leave the
    ///   machine, so a DNS server or a stray line cannot send them elsewhere).
    /// - A name in the table answers with its addresses of the family asked, each with
    ///   [`HOSTS_TTL`]. A name there without an address of that family is NODATA, not a
    ///   question for DNS: the file speaks for the names it lists, as it does for
    ///   `getaddrinfo` asking both families, so a name pinned to one IPv4 address is not
    ///   given an IPv6 one by DNS. The NODATA carries no TTL, so the core does not cache
    ///   it (RFC 2308) and asks the table again next time, which costs no packet.
    /// - SRV and NAPTR queries are never answered here: the file holds no such records.
    pub fn lookup(&self, name: &str, qtype: QueryType) -> Option<Answer<AddressRecord>> {
        let ipv4 = match qtype {
            QueryType::A => true,
            QueryType::Aaaa => false,
            QueryType::Srv | QueryType::Naptr => return None,
        };
        if is_localhost(name) {
            let addr = if ipv4 { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) };
            return Some(records(vec![AddressRecord { addr, ttl: HOSTS_TTL }]));
        }
        let addresses = self.names.get(&key(name))?;
        let found: Vec<AddressRecord> = addresses
            .iter()
            .filter(|addr| addr.is_ipv4() == ipv4)
            .map(|&addr| AddressRecord { addr, ttl: HOSTS_TTL })
            .collect();
        if found.is_empty() {
            return Some(Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: None }));
        }
        Some(records(found))
    }
}

/// A name as the table keys it: lower case (ASCII: host names are ASCII, and a Unicode
/// mapping could make two different names meet), without one final dot.
fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

fn records(records: Vec<AddressRecord>) -> Answer<AddressRecord> {
    // The file has no additional section to volunteer.
    Answer::Records { records, additional: Vec::new() }
}

/// Whether `name` is `localhost` or a name under it (RFC 6761 §6.3), case and a final
/// dot ignored.
pub fn is_localhost(name: &str) -> bool {
    let name = key(name);
    name == "localhost" || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(table: &HostsTable, name: &str, qtype: QueryType) -> Option<Vec<String>> {
        match table.lookup(name, qtype)? {
            Answer::Records { records, additional } => {
                assert!(additional.is_empty());
                assert!(records.iter().all(|r| r.ttl == HOSTS_TTL), "{records:?}");
                Some(records.iter().map(|r| r.addr.to_string()).collect())
            }
            Answer::Negative(n) => panic!("{name} {qtype}: negative {n:?}"),
        }
    }

    fn a(table: &HostsTable, name: &str) -> Option<Vec<String>> {
        addresses(table, name, QueryType::A)
    }

    const NODATA: Answer<AddressRecord> = Answer::Negative(Negative { kind: NegativeKind::NoData, ttl: None });

    #[test]
    fn comments_end_a_line_wherever_they_start() {
        let table = HostsTable::parse(
            "# 192.0.2.1 commented.example\n\
             192.0.2.2 first.example # second.example\n\
             192.0.2.3 third.example#fourth.example\n\
             \t  # indented comment\n\
             #192.0.2.5 fifth.example\n",
        );
        assert_eq!(a(&table, "first.example"), Some(vec!["192.0.2.2".into()]));
        assert_eq!(a(&table, "third.example"), Some(vec!["192.0.2.3".into()]));
        for name in ["commented.example", "second.example", "fourth.example", "fifth.example", "#"] {
            assert_eq!(table.lookup(name, QueryType::A), None, "{name}");
        }
    }

    #[test]
    fn every_name_on_a_line_is_looked_up_alike() {
        let table = HostsTable::parse("192.0.2.10\tsip.example.com  sip\t proxy  \n");
        for name in ["sip.example.com", "sip", "proxy"] {
            assert_eq!(a(&table, name), Some(vec!["192.0.2.10".into()]), "{name}");
        }
        assert_eq!(table.lookup("example.com", QueryType::A), None);
    }

    #[test]
    fn names_compare_without_case_or_final_dot() {
        let table = HostsTable::parse("192.0.2.20 Sip.Example.COM\n192.0.2.21 dotted.example.\n");
        for name in ["sip.example.com", "SIP.EXAMPLE.COM", "sip.example.com."] {
            assert_eq!(a(&table, name), Some(vec!["192.0.2.20".into()]), "{name}");
        }
        for name in ["dotted.example", "Dotted.Example."] {
            assert_eq!(a(&table, name), Some(vec!["192.0.2.21".into()]), "{name}");
        }
        // One final dot, not any number of them.
        assert_eq!(table.lookup("dotted.example..", QueryType::A), None);
    }

    #[test]
    fn ipv6_addresses_answer_aaaa_and_lines_add_up_in_file_order() {
        let table = HostsTable::parse(
            "2001:db8::1 dual.example\n\
             192.0.2.30 dual.example\n\
             2001:db8::2 other.example dual.example\n\
             192.0.2.31 dual.example\n\
             2001:db8::1 dual.example\n",
        );
        assert_eq!(
            addresses(&table, "dual.example", QueryType::Aaaa),
            Some(vec!["2001:db8::1".into(), "2001:db8::2".into()])
        );
        assert_eq!(a(&table, "dual.example"), Some(vec!["192.0.2.30".into(), "192.0.2.31".into()]));
    }

    #[test]
    fn a_scoped_ipv6_line_is_skipped() {
        let table = HostsTable::parse("fe80::1%eth0 scoped.example\nfe80::2 link.example\n");
        assert_eq!(table.lookup("scoped.example", QueryType::Aaaa), None);
        assert_eq!(table.lookup("scoped.example", QueryType::A), None);
        assert_eq!(addresses(&table, "link.example", QueryType::Aaaa), Some(vec!["fe80::2".into()]));
    }

    #[test]
    fn lines_that_do_not_parse_are_skipped_and_the_rest_is_kept() {
        let table = HostsTable::parse(
            "not-an-address bad1.example\n\
             192.0.2.300 bad2.example\n\
             127.1 bad3.example\n\
             [2001:db8::1] bad4.example\n\
             192.0.2.40\n\
             bad5.example 192.0.2.41\n\
             \n\
             192.0.2.42\x0cgood.example\r.\n",
        );
        for name in ["bad1.example", "bad2.example", "bad3.example", "bad4.example", "bad5.example", "192.0.2.41"] {
            assert_eq!(table.lookup(name, QueryType::A), None, "{name}");
        }
        assert_eq!(a(&table, "good.example"), Some(vec!["192.0.2.42".into()]));
        // `good.example`, nothing for the bare root or for any bad line.
        assert_eq!(table.names.len(), 1, "{table:?}");
    }

    #[test]
    fn localhost_is_always_the_loopback_address() {
        let table = HostsTable::parse(
            "192.0.2.50 localhost phone.localhost\n2001:db8::50 localhost\n192.0.2.51 notlocalhost\n",
        );
        for name in ["localhost", "LocalHost.", "phone.localhost", "a.b.localhost", "x.LOCALHOST."] {
            assert_eq!(a(&table, name), Some(vec!["127.0.0.1".into()]), "{name}");
            assert_eq!(addresses(&table, name, QueryType::Aaaa), Some(vec!["::1".into()]), "{name}");
        }
        // Also with no file at all.
        assert_eq!(a(&HostsTable::default(), "localhost"), Some(vec!["127.0.0.1".into()]));
        // Only the label `localhost` is special, not a name ending in the letters.
        assert_eq!(a(&table, "notlocalhost"), Some(vec!["192.0.2.51".into()]));
        assert_eq!(table.lookup("localhost.example", QueryType::A), None);
    }

    #[test]
    fn a_listed_name_without_the_family_asked_is_nodata_not_to_be_cached() {
        let table = HostsTable::parse("192.0.2.60 v4.example\n2001:db8::60 v6.example\n");
        assert_eq!(table.lookup("v4.example", QueryType::Aaaa), Some(NODATA));
        assert_eq!(table.lookup("v6.example", QueryType::A), Some(NODATA));
        assert_eq!(table.lookup("unlisted.example", QueryType::Aaaa), None);
    }

    #[test]
    fn srv_and_naptr_queries_go_to_dns() {
        let table = HostsTable::parse("192.0.2.70 sip.example\n");
        for qtype in [QueryType::Srv, QueryType::Naptr] {
            assert_eq!(table.lookup("sip.example", qtype), None);
            assert_eq!(table.lookup("localhost", qtype), None);
        }
    }

    #[test]
    fn a_file_is_read_and_a_missing_one_is_an_error() {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).unwrap();
        let path =
            std::env::temp_dir().join(format!("sip-ptls-hosts-{}-{}", std::process::id(), u64::from_le_bytes(random)));
        std::fs::write(&path, "192.0.2.80 file.example\n").unwrap();
        let read = HostsTable::read(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(a(&read.unwrap(), "file.example"), Some(vec!["192.0.2.80".into()]));
        let missing = HostsTable::read(&path).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
