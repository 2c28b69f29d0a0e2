//! Typed views over the header values the connection manager reads: name-addr fields
//! (Contact, From, To), Via, numeric fields (Expires, Min-Expires, Flow-Timer,
//! Retry-After), option-tag lists, and the parts of a SIP URI.
//!
//! Everything here is lenient where the grammar is ambiguous in practice and returns
//! `None` rather than guessing when a value cannot be understood; nothing panics.

use super::syntax::{WS, is_token_char};

/// Splits a comma-separated header value into its elements. Commas inside a
/// quoted-string or inside `<...>` are not separators. Elements are trimmed of SP/HT and
/// empty elements are dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut from = 0;
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    for (i, c) in value.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            ',' if !angle => {
                out.push(&value[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[from..]);
    out.into_iter().map(|s| s.trim_matches(WS)).filter(|s| !s.is_empty()).collect()
}

/// Removes the quotes and backslash escapes of a quoted-string; other text is returned
/// unchanged.
fn unquote(s: &str) -> String {
    let inner = match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner,
        None => return s.to_string(),
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Byte offset of the first `needle` outside a quoted-string.
fn find_unquoted(s: &str, needle: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
        } else if c == needle {
            return Some(i);
        }
    }
    None
}

/// Parses `;name=value;flag` parameters. Text before the first `;` is ignored, so the
/// whole remainder after a URI or after the `>` of a name-addr can be passed. Names are
/// lower-cased; quoted values are unquoted; a parameter without `=` has value `None`.
pub fn params(s: &str) -> Vec<(String, Option<String>)> {
    let Some(first) = find_unquoted(s, ';') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = &s[first + 1..];
    loop {
        let end = find_unquoted(rest, ';').unwrap_or(rest.len());
        let piece = rest[..end].trim_matches(WS);
        if !piece.is_empty() {
            let (name, value) = match piece.split_once('=') {
                Some((n, v)) => (n, Some(unquote(v.trim_matches(WS)))),
                None => (piece, None),
            };
            let name = name.trim_matches(WS);
            if !name.is_empty() {
                out.push((name.to_ascii_lowercase(), value));
            }
        }
        match rest.get(end + 1..) {
            Some(next) => rest = next,
            None => break,
        }
    }
    out
}

/// Case-insensitive look-up in a parameter list: `None` if absent, `Some(None)` for a
/// flag without value.
fn find_param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<Option<&'a str>> {
    params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
}

/// A `name-addr` or `addr-spec` header value (Contact, From, To, Route, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameAddr {
    /// Display name, unquoted; `None` when absent or empty.
    pub display: Option<String>,
    /// The URI, without angle brackets (URI parameters inside `<...>` stay in it).
    pub uri: String,
    /// Header parameters (`tag`, `expires`, `q`, `+sip.instance`, `reg-id`, ...).
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Parses one element (not a comma list). For a bare URI without `<...>`, every
    /// `;param` is a header parameter, as RFC 3261 §20 prescribes.
    pub fn parse(value: &str) -> Option<NameAddr> {
        let v = value.trim_matches(WS);
        let (display, after_display) = if v.starts_with('"') {
            // The closing quote is the first unescaped one after the opening quote.
            let mut escaped = false;
            let close = v.char_indices().skip(1).find_map(|(i, c)| match c {
                _ if escaped => {
                    escaped = false;
                    None
                }
                '\\' => {
                    escaped = true;
                    None
                }
                '"' => Some(i),
                _ => None,
            })?;
            let display = unquote(&v[..=close]);
            let rest = v[close + 1..].trim_start_matches(WS);
            if !rest.starts_with('<') {
                return None;
            }
            (Some(display), rest)
        } else if let Some(lt) = v.find('<') {
            let display = v[..lt].trim_matches(WS);
            ((!display.is_empty()).then(|| display.to_string()), &v[lt..])
        } else {
            let end = v.find(';').unwrap_or(v.len());
            let uri = v[..end].trim_matches(WS);
            if uri.is_empty() || uri.contains(WS) {
                return None;
            }
            return Some(NameAddr { display: None, uri: uri.to_string(), params: params(&v[end..]) });
        };
        let inside = after_display.strip_prefix('<')?;
        let gt = inside.find('>')?;
        let uri = inside[..gt].trim_matches(WS);
        if uri.is_empty() {
            return None;
        }
        Some(NameAddr {
            display: display.filter(|d| !d.is_empty()),
            uri: uri.to_string(),
            params: params(&inside[gt + 1..]),
        })
    }

    /// A header parameter: `None` if absent, `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `tag` parameter (From/To), if it has a value.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }
}

/// One Via element: `SIP/2.0/TLS host:port;branch=...;params`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Via {
    /// Transport token, upper-cased (`TLS`, `TCP`, `UDP`, ...).
    pub transport: String,
    /// `host[:port]` with any white space removed.
    pub sent_by: String,
    /// Via parameters (`branch`, `received`, `rport`, `keep`, `alias`, ...).
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses a Via value; if it is a comma list, only the first element.
    pub fn parse(value: &str) -> Option<Via> {
        let v = *split_list(value).first()?;
        let mut parts = v.splitn(3, '/');
        let (name, version, rest) = (parts.next()?, parts.next()?, parts.next()?);
        if !name.trim_matches(WS).eq_ignore_ascii_case("SIP") || version.trim_matches(WS) != "2.0" {
            return None;
        }
        let rest = rest.trim_start_matches(WS);
        let t_end = rest.find(WS)?;
        let transport = &rest[..t_end];
        if transport.is_empty() || !transport.chars().all(is_token_char) {
            return None;
        }
        let rest = &rest[t_end..];
        let p_start = rest.find(';').unwrap_or(rest.len());
        let sent_by: String = rest[..p_start].chars().filter(|c| !WS.contains(c)).collect();
        if sent_by.is_empty() {
            return None;
        }
        Some(Via { transport: transport.to_ascii_uppercase(), sent_by, params: params(&rest[p_start..]) })
    }

    /// The `branch` parameter value.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// A Via parameter: `None` if absent, `Some(None)` for a flag (`rport`, `keep`).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

/// Leading decimal number of Expires, Min-Expires, Flow-Timer or Retry-After. A comment
/// or parameters may follow after white space, `(` or `;` (`120 (busy);duration=5`).
/// Values above `u32::MAX` are clamped to it, as RFC 3261 §10.2 allows for Expires.
pub fn parse_u32(value: &str) -> Option<u32> {
    let t = value.trim_matches(WS);
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if end == 0 {
        return None;
    }
    let rest = &t[end..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t', '(', ';'])) {
        return None;
    }
    Some(t[..end].bytes().fold(0u32, |acc, d| acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))))
}

/// The part after `scheme:` of a URI, with surrounding `<...>` and white space removed.
fn after_scheme(uri: &str) -> Option<&str> {
    let u = uri.trim_matches(WS);
    let u = match u.strip_prefix('<') {
        Some(inner) => &inner[..inner.find('>').unwrap_or(inner.len())],
        None => u,
    };
    let colon = u.find(':')?;
    let scheme = &u[..colon];
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    scheme_ok.then(|| &u[colon + 1..])
}

/// The user part of a SIP URI (`sips:1001@host;p` → `1001`), without any password.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = after_scheme(uri)?;
    let at = rest.find('@')?;
    let user = &rest[..at];
    let user = &user[..user.find(':').unwrap_or(user.len())];
    (!user.is_empty()).then_some(user)
}

/// The `host[:port]` of a SIP URI (`sips:1001@host:5061;p` → `host:5061`).
pub fn uri_host_port(uri: &str) -> Option<&str> {
    let rest = after_scheme(uri)?;
    let rest = &rest[rest.find('@').map_or(0, |at| at + 1)..];
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    let host = rest[..end].trim_matches(WS);
    (!host.is_empty()).then_some(host)
}

/// True if `tag` is among the option tags of Require/Supported/Proxy-Require values
/// (case-insensitive; values that are themselves comma lists are split).
pub fn has_option_tag(values: &[&str], tag: &str) -> bool {
    values.iter().flat_map(|v| split_list(v)).any(|t| t.eq_ignore_ascii_case(tag.trim_matches(WS)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(name: &str, value: Option<&str>) -> (String, Option<String>) {
        (name.to_string(), value.map(str::to_string))
    }

    #[test]
    fn split_list_cases() {
        assert_eq!(split_list(""), Vec::<&str>::new());
        assert_eq!(split_list(" a ,, b,"), vec!["a", "b"]);
        assert_eq!(split_list(r#""a,\"b" <x,y>, z"#), vec![r#""a,\"b" <x,y>"#, "z"]);
    }

    #[test]
    fn params_cases() {
        assert_eq!(
            params(r#";Expires=60; q = 0.5 ;rport;X="a;b\"c";;"#),
            vec![p("expires", Some("60")), p("q", Some("0.5")), p("rport", None), p("x", Some("a;b\"c")),]
        );
        assert_eq!(params("no params"), vec![]);
        assert_eq!(params("sip:a@b;lr"), vec![p("lr", None)]);
    }

    #[test]
    fn name_addr_forms() {
        let full =
            NameAddr::parse(r#" "Bob \"B\"" <sips:bob@x;transport=tls>;tag=1;expires=60;+sip.instance="<urn:uuid:1>""#)
                .unwrap();
        assert_eq!(full.display.as_deref(), Some("Bob \"B\""));
        assert_eq!(full.uri, "sips:bob@x;transport=tls");
        assert_eq!(full.tag(), Some("1"));
        assert_eq!(full.param("EXPIRES"), Some(Some("60")));
        assert_eq!(full.param("+sip.instance"), Some(Some("<urn:uuid:1>")));
        assert_eq!(full.param("transport"), None);

        let angle = NameAddr::parse("<sip:a@b>").unwrap();
        assert_eq!((angle.display, angle.uri.as_str()), (None, "sip:a@b"));
        assert!(angle.params.is_empty());

        let token = NameAddr::parse("Alice Smith <sip:a@b>;ob").unwrap();
        assert_eq!(token.display.as_deref(), Some("Alice Smith"));
        assert_eq!(token.param("ob"), Some(None));

        let bare = NameAddr::parse("sip:a@b;tag=1;lr").unwrap();
        assert_eq!(bare.uri, "sip:a@b");
        assert_eq!(bare.tag(), Some("1"));
        assert_eq!(bare.param("lr"), Some(None));

        assert_eq!(NameAddr::parse("*").map(|n| n.uri), Some("*".to_string()));
        for bad in ["", "<sip:a@b", "<>", "\"Bob <sip:a@b>", "\"Bob\" sip:a@b", "Bob sip:a@b"] {
            assert_eq!(NameAddr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn via_forms() {
        let v = Via::parse("SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1;keep=30;rport, SIP/2.0/UDP x").unwrap();
        assert_eq!(v.transport, "TLS");
        assert_eq!(v.sent_by, "10.0.0.1:5061");
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.param("keep"), Some(Some("30")));
        assert_eq!(v.param("rport"), Some(None));
        assert_eq!(v.param("received"), None);

        let spaced = Via::parse("sip / 2.0 / tls  [::1] : 5061 ; Branch = z9hG4bKa").unwrap();
        assert_eq!(spaced.transport, "TLS");
        assert_eq!(spaced.sent_by, "[::1]:5061");
        assert_eq!(spaced.branch(), Some("z9hG4bKa"));

        for bad in ["", "SIP/2.0/TLS", "SIP/2.0/TLS ;branch=x", "SIP/3.0/TLS h", "HTTP/2.0/TLS h"] {
            assert_eq!(Via::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(" 3600 "), Some(3600));
        assert_eq!(parse_u32("120 (maintenance);duration=5"), Some(120));
        assert_eq!(parse_u32("120(x)"), Some(120));
        assert_eq!(parse_u32("30;x"), Some(30));
        assert_eq!(parse_u32("99999999999999"), Some(u32::MAX));
        for bad in ["", "-1", "x", "12a", "1.5", "+3"] {
            assert_eq!(parse_u32(bad), None, "{bad}");
        }
    }

    #[test]
    fn uri_parts() {
        assert_eq!(uri_user("sips:1001@host;p"), Some("1001"));
        assert_eq!(uri_user("sip:1001:secret@host"), Some("1001"));
        assert_eq!(uri_user("<sip:bob@x>;tag=1"), Some("bob"));
        assert_eq!(uri_user("sip:host"), None);
        assert_eq!(uri_user("sip:@host"), None);
        assert_eq!(uri_user("1001@host"), None);
        assert_eq!(uri_host_port("sips:1001@host:5061;p"), Some("host:5061"));
        assert_eq!(uri_host_port("sip:example.com"), Some("example.com"));
        assert_eq!(uri_host_port("sip:[::1]:5061?h=v"), Some("[::1]:5061"));
        assert_eq!(uri_host_port("<sip:a@b>"), Some("b"));
        assert_eq!(uri_host_port("sip:a@"), None);
        assert_eq!(uri_host_port("nonsense"), None);
    }

    #[test]
    fn option_tags() {
        assert!(has_option_tag(&["path", "Outbound"], "outbound"));
        assert!(has_option_tag(&["path, outbound"], "OUTBOUND"));
        assert!(!has_option_tag(&["path", "outbound-x"], "outbound"));
        assert!(!has_option_tag(&[], "outbound"));
    }

    proptest! {
        #![proptest_config(crate::sip::test_proptest_config())]

        #[test]
        fn views_never_panic(s in "[ -~é\t]{0,60}") {
            let _ = (split_list(&s), params(&s), NameAddr::parse(&s), Via::parse(&s));
            let _ = (parse_u32(&s), uri_user(&s), uri_host_port(&s), has_option_tag(&[&s], "x"));
        }

        #[test]
        fn name_addr_round_trip(
            display in proptest::option::of("[a-zA-Z0-9 ,;<>\"\\\\é]{1,12}"),
            uri in "sips?:[a-z0-9]{1,8}@[a-z.]{1,10}(;[a-z]{1,4}=[a-z0-9]{1,4})?",
            tag in "[a-zA-Z0-9]{1,10}",
        ) {
            let quoted = display.as_ref().map(|d| {
                format!("\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))
            });
            let text = format!("{}<{uri}>;tag={tag};ob", quoted.unwrap_or_default());
            let na = NameAddr::parse(&text);
            prop_assert_eq!(na, Some(NameAddr {
                display,
                uri,
                params: vec![p("tag", Some(&tag)), p("ob", None)],
            }));
        }
    }
}
