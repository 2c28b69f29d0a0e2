//! Domain names as the core compares them: written without the final dot and in lower
//! case, since DNS compares names without regard to ASCII case (RFC 4343), and checked
//! for the lengths DNS allows before any query is asked.

/// `name` as the core keys and compares it: surrounding blanks and one final dot
/// removed, ASCII letters in lower case. The root `"."` becomes the empty string.
pub fn normalize(name: &str) -> String {
    let trimmed = name.trim();
    trimmed.strip_suffix('.').unwrap_or(trimmed).to_ascii_lowercase()
}

/// Whether a normalized name can be asked in DNS: 1 to 253 characters, labels of 1 to
/// 63 characters, made of letters, digits, `-` and `_` (the service labels of SRV names
/// begin with one). Anything else (blanks, control characters, an empty label as in
/// `a..b`) is refused before it reaches the resolver.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_dot_and_case_do_not_matter() {
        assert_eq!(normalize("SIP.Example.COM."), "sip.example.com");
        assert_eq!(normalize(" sip.example.com "), "sip.example.com");
        assert_eq!(normalize("."), "");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn names_dns_cannot_carry_are_refused() {
        assert!(is_valid("sip.example.com"));
        assert!(is_valid("_sips._tcp.example.com"));
        assert!(is_valid("localhost"));
        assert!(!is_valid(""));
        assert!(!is_valid("a..b"));
        assert!(!is_valid("a b.example.com"));
        assert!(!is_valid("a\r\n.example.com"));
        assert!(!is_valid(&"a".repeat(64)));
        assert!(is_valid(&"a".repeat(63)));
        let long = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join(".");
        assert_eq!(long.len(), 254);
        assert!(!is_valid(&long));
        assert!(is_valid(&long[1..]));
    }
}
