//! What each configured text may contain so that it survives the SIP message it is
//! written into (RFC 3261 §25.1), used by [`super::Config::validate`].
//!
//! A value that would not come back unchanged from the message is rejected, never
//! silently altered: a control character in a display name would let a configuration
//! (or a Web UI form) add header lines of its own to every request the phone sends.
//! Where the grammar can carry a character escaped (`"` and `\` as quoted-pairs in a
//! display name or a digest user name), the message builder escapes it instead.

/// Why a text written inside a quoted-string (display name, digest user name) cannot
/// be carried, or `None`. RFC 3261: `qdtext = LWS / %x21 / %x23-5B / %x5D-7E /
/// UTF8-NONASCII` and `quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)`: every printable
/// character fits (`"` and `\` escaped), no control character does reliably (CR and LF
/// end the header line; tab and the others are folded or refused by peers).
pub(super) fn quoted_text(value: &str) -> Option<String> {
    value.chars().find(|c| c.is_control()).map(|c| format!("contains the control character {}", shown(c)))
}

/// Why a user part cannot be written into a SIP URI as it is, or `None`. RFC 3261:
/// `user = 1*( unreserved / escaped / user-unreserved )`. `;` and `?` are also
/// user-unreserved, but they start URI parameters and headers for most peers' parsers
/// (and for the addresses of record the registrar echoes), so they are refused too.
pub(super) fn user_part(value: &str) -> Option<String> {
    let mut chars = value.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '%' {
            let hex = value.get(i + 1..i + 3).is_some_and(|h| h.chars().all(|d| d.is_ascii_hexdigit()));
            if !hex {
                return Some("`%` must be followed by two hex digits (an escaped character)".to_owned());
            }
            chars.next();
            chars.next();
        } else if !(c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,/".contains(c)) {
            return Some(format!(
                "contains {}, which a SIP user part cannot carry (escape it as %XX, RFC 3261 §25.1)",
                shown(c)
            ));
        }
    }
    None
}

/// Why a host cannot be the host part of a SIP URI and a TLS server name, or `None`.
/// RFC 3261: `host = hostname / IPv4address / IPv6reference`; an IPv6 address must be
/// written in brackets, since its colons would otherwise read as a port.
pub(super) fn host(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<core::net::Ipv6Addr>) {
            Some(Ok(_)) => None,
            _ => Some("not an IPv6 address in brackets".to_owned()),
        };
    }
    if value.parse::<core::net::Ipv6Addr>().is_ok() {
        return Some(format!("write an IPv6 address in brackets: [{value}]"));
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Some("not a host name or IP address (letters, digits, `-` and `.`; IPv6 in brackets)".to_owned());
    }
    None
}

/// Why an instance identifier cannot be the `+sip.instance` value, or `None`.
/// RFC 5626 §4.1: a URN (`"<" instance-val ">"` inside a quoted-string), so only URI
/// characters (`uric`: reserved, unreserved, escaped) after `urn:`.
pub(super) fn instance_id(value: &str) -> Option<String> {
    if !value.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) || value.len() == 4 {
        return Some("must be a URN (`urn:uuid:...`)".to_owned());
    }
    let bad = value.chars().find(|c| !(c.is_ascii_alphanumeric() || ";/?:@&=+$,-_.!~*'()%".contains(*c)));
    bad.map(|c| format!("contains {}, which a URN cannot carry", shown(c)))
}

/// A character named for a message without writing it raw (a CR would break the
/// message it is reported in).
fn shown(c: char) -> String {
    if c.is_control() || c.is_whitespace() { format!("U+{:04X}", u32::from(c)) } else { format!("`{c}`") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_refuses_control_characters_only() {
        assert_eq!(quoted_text("Al \"Big\" \\ Ünïcode #1"), None);
        assert!(quoted_text("Al\rInjected: yes").is_some_and(|w| w.contains("U+000D")));
        assert!(quoted_text("tab\there").is_some());
        assert!(quoted_text("nul\0").is_some());
        assert!(quoted_text("del\u{7f}").is_some());
    }

    #[test]
    fn user_parts_follow_the_rfc_3261_grammar() {
        for ok in ["1001", "alice.smith", "+49301234", "a%40b", "x-y_z!~*'()&=$,/"] {
            assert_eq!(user_part(ok), None, "{ok}");
        }
        for bad in ["a b", "a@b", "a;b", "a?b", "a<b", "a%4", "a%zz", "é", "a\rb", "a:b", "\"a\""] {
            assert!(user_part(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn hosts_are_names_ipv4_or_bracketed_ipv6() {
        for ok in ["proxy.example.com", "example.com.", "127.0.0.1", "[::1]", "[2001:db8::1]", "localhost"] {
            assert_eq!(host(ok), None, "{ok}");
        }
        for bad in ["", "a b", "-a.com", "a-.com", "a..b", "::1", "[::1", "[nope]", "a_b.com", "a\r\nX: y", "a>b"] {
            assert!(host(bad).is_some(), "{bad}");
        }
        assert!(host("2001:db8::1").is_some_and(|w| w.contains("[2001:db8::1]")));
    }

    #[test]
    fn instance_ids_are_urns_of_uri_characters() {
        assert_eq!(instance_id("urn:uuid:00000000-0000-1000-8000-00085D1A2B3C"), None);
        assert_eq!(instance_id("URN:foo:bar"), None);
        for bad in ["uuid:1", "urn:", "urn:a\"b", "urn:a>b", "urn:a b", "urn:a\r\nb", "urn:a\\b"] {
            assert!(instance_id(bad).is_some(), "{bad}");
        }
    }
}
