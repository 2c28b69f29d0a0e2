//! Which NAPTR records (RFC 3403, as RFC 3263 §4.1 uses them) lead to an SRV name: only
//! those of the service `SIPS+D2T` (SIP over TLS over TCP) with the flag `s`, best
//! first. Any other service (`SIP+D2T`, `SIP+D2U`, `SIPS+D2S`, …) is ignored, so NAPTR
//! never changes the phone's transport or its TLS.

use super::name;
use super::records::NaptrRecord;

/// The NAPTR service of SIP over TLS over TCP (RFC 3263 §4.1).
pub const SIPS_OVER_TCP: &str = "SIPS+D2T";

/// The SRV names the usable records point at, in the order RFC 3403 gives them
/// (ascending order, then ascending preference; records equal in both keep the
/// server's order), normalized, each once, at most `limit` of them.
///
/// A record is usable when its service is [`SIPS_OVER_TCP`] and its flag `s` (both
/// compared without regard to case) and its replacement is a name DNS can carry (not the
/// root `"."`, which goes with a regular expression SIP does not use).
pub fn srv_names(records: &[NaptrRecord], limit: usize) -> Vec<String> {
    let mut usable: Vec<&NaptrRecord> = records
        .iter()
        .filter(|r| r.services.trim().eq_ignore_ascii_case(SIPS_OVER_TCP) && r.flags.trim().eq_ignore_ascii_case("s"))
        .collect();
    // A stable sort: records equal in order and preference stay in the server's order.
    usable.sort_by_key(|r| (r.order, r.preference));
    let mut names: Vec<String> = Vec::new();
    for record in usable {
        let target = name::normalize(&record.replacement);
        if names.len() < limit && name::is_valid(&target) && !names.contains(&target) {
            names.push(target);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::srv_names;
    use crate::dns::records::NaptrRecord;

    fn naptr(order: u16, preference: u16, flags: &str, services: &str, replacement: &str) -> NaptrRecord {
        NaptrRecord {
            order,
            preference,
            flags: flags.into(),
            services: services.into(),
            regexp: String::new(),
            replacement: replacement.into(),
            ttl: 300,
        }
    }

    #[test]
    fn only_sips_over_tcp_with_flag_s_is_used() {
        let records = [
            naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.example.com"),
            naptr(10, 20, "s", "SIP+D2U", "_sip._udp.example.com"),
            naptr(20, 10, "S", "sips+d2t", "_sips._tcp.example.com."),
            naptr(5, 10, "a", "SIPS+D2T", "sip.example.com"),
            naptr(5, 10, "", "SIPS+D2T", "_sips._tcp.other.example.com"),
            naptr(5, 10, "s", "SIPS+D2S", "_sips._sctp.example.com"),
        ];
        assert_eq!(srv_names(&records, 8), ["_sips._tcp.example.com"]);
    }

    #[test]
    fn order_then_preference_then_the_servers_order() {
        let records = [
            naptr(20, 10, "s", "SIPS+D2T", "d.example.com"),
            naptr(10, 50, "s", "SIPS+D2T", "b.example.com"),
            naptr(10, 10, "s", "SIPS+D2T", "a.example.com"),
            naptr(10, 50, "s", "SIPS+D2T", "c.example.com"),
        ];
        assert_eq!(srv_names(&records, 8), ["a.example.com", "b.example.com", "c.example.com", "d.example.com"]);
        assert_eq!(srv_names(&records, 2), ["a.example.com", "b.example.com"]);
    }

    #[test]
    fn nothing_usable_gives_no_name() {
        assert!(srv_names(&[], 8).is_empty());
        let records = [
            naptr(10, 10, "s", "SIPS+D2T", "."),
            naptr(10, 10, "s", "SIPS+D2T", ""),
            naptr(10, 10, "s", "SIPS+D2T", "bad name.example.com"),
            naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.example.com"),
        ];
        assert!(srv_names(&records, 8).is_empty());
        assert!(srv_names(&[naptr(1, 1, "s", "SIPS+D2T", "a.example.com")], 0).is_empty());
    }

    #[test]
    fn a_name_given_twice_is_asked_once() {
        let records = [
            naptr(10, 10, "s", "SIPS+D2T", "_sips._tcp.example.com"),
            naptr(20, 10, "s", "SIPS+D2T", "_SIPS._tcp.example.com."),
        ];
        assert_eq!(srv_names(&records, 8), ["_sips._tcp.example.com"]);
    }
}
