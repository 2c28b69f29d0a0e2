//! Keeps the SIP codec and the runtime free of module cycles: each module may name only
//! the sibling modules listed before it, so a change that makes two modules use each
//! other fails here instead of slowly tangling them again.
//!
//! The sources are read at compile time and scanned for `super::NAME` and
//! `crate::sip::NAME` paths outside comments; grouped `super::{...}` imports are refused,
//! since this scan could not see what they name.

/// The codec, bottom first: line syntax, size bounds and the error of a bad message, header views, the message, the
/// stream framer; digest authentication needs only the syntax.
const SIP: &[(&str, &str)] = &[
    ("syntax", include_str!("../src/sip/syntax.rs")),
    ("limits", include_str!("../src/sip/limits.rs")),
    ("framing_error", include_str!("../src/sip/framing_error.rs")),
    ("headers", include_str!("../src/sip/headers.rs")),
    ("message", include_str!("../src/sip/message.rs")),
    ("framer", include_str!("../src/sip/framer.rs")),
    ("digest", include_str!("../src/sip/digest.rs")),
];

/// The core's server location, bottom first: the records and names, the query and its
/// answer, the decisions that use them (configuration, NAPTR, SRV order, Happy Eyeballs,
/// the cache), the error, and the locator that drives them all; its tests on top.
const DNS: &[(&str, &str)] = &[
    ("records", include_str!("../src/dns/records.rs")),
    ("name", include_str!("../src/dns/name.rs")),
    ("lookup", include_str!("../src/dns/lookup.rs")),
    ("spec", include_str!("../src/dns/spec.rs")),
    ("naptr", include_str!("../src/dns/naptr.rs")),
    ("srv_order", include_str!("../src/dns/srv_order.rs")),
    ("eyeballs", include_str!("../src/dns/eyeballs.rs")),
    ("cache", include_str!("../src/dns/cache.rs")),
    ("error", include_str!("../src/dns/error.rs")),
    ("locator", include_str!("../src/dns/locator.rs")),
    ("locator_tests", include_str!("../src/dns/locator_tests.rs")),
];

/// The runtime, bottom first: the phone API starts the driver, never the reverse.
const RUNTIME: &[(&str, &str)] = &[
    // The stamps of the `timing` feature: named by the connection tasks and the driver.
    ("timing", include_str!("../src/runtime/timing.rs")),
    ("der", include_str!("../src/runtime/der.rs")),
    ("clock", include_str!("../src/runtime/clock.rs")),
    ("on_reactor", include_str!("../src/runtime/on_reactor.rs")),
    ("certs", include_str!("../src/runtime/certs.rs")),
    ("tls", include_str!("../src/runtime/tls.rs")),
    ("config_files", include_str!("../src/runtime/config_files.rs")),
    ("dns", include_str!("../src/runtime/dns/mod.rs")),
    ("conn", include_str!("../src/runtime/conn.rs")),
    ("command", include_str!("../src/runtime/command.rs")),
    ("trace", include_str!("../src/runtime/trace/mod.rs")),
    ("driver", include_str!("../src/runtime/driver.rs")),
    ("phone", include_str!("../src/runtime/phone.rs")),
];

/// The web interface, bottom first: the pages and helpers know nothing of the routes, and
/// the settings pages' handlers sit between them.
const WEB: &[(&str, &str)] = &[
    ("form", include_str!("../src/web/form.rs")),
    ("http", include_str!("../src/web/http.rs")),
    ("session", include_str!("../src/web/session.rs")),
    ("pages", include_str!("../src/web/pages.rs")),
    ("settings", include_str!("../src/web/settings.rs")),
    ("settings_page", include_str!("../src/web/settings_page.rs")),
    ("feed", include_str!("../src/web/feed.rs")),
    ("configure", include_str!("../src/web/configure.rs")),
    ("routes", include_str!("../src/web/routes.rs")),
];

/// The sibling modules `source` names through any of `prefixes`, in order of appearance.
fn sibling_uses(source: &str, prefixes: &[&str], siblings: &[&str]) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for line in source.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
        for prefix in prefixes {
            for (at, _) in line.match_indices(prefix) {
                let after = &line[at + prefix.len()..];
                if after.starts_with('{') {
                    return Err(format!("grouped import `{}` hides what it names", line.trim()));
                }
                let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if siblings.contains(&name.as_str()) && !found.contains(&name) {
                    found.push(name);
                }
            }
        }
    }
    Ok(found)
}

/// Every module's sibling uses, or the first one that points at its own layer or above.
fn check_layers(layers: &[(&str, &str)], prefixes: &[&str]) -> Result<Vec<(String, Vec<String>)>, String> {
    let names: Vec<&str> = layers.iter().map(|(name, _)| *name).collect();
    let mut report = Vec::new();
    for (i, (name, source)) in layers.iter().enumerate() {
        let uses = sibling_uses(source, prefixes, &names)?;
        if let Some(bad) = uses.iter().find(|u| !names[..i].contains(&u.as_str())) {
            return Err(format!("`{name}` uses `{bad}`, which is not below it in the layer order {names:?}"));
        }
        report.push((name.to_string(), uses));
    }
    Ok(report)
}

#[test]
fn sip_codec_is_layered() {
    let report = check_layers(SIP, &["super::", "crate::sip::"]);
    assert!(report.is_ok(), "{report:?}");
    // The point of the layering: the message value type no longer needs the stream framer.
    let message = report.unwrap_or_default().into_iter().find(|(name, _)| name == "message");
    assert_eq!(
        message.map(|(_, uses)| uses),
        Some(vec!["framing_error".to_string(), "headers".into(), "limits".into(), "syntax".into()])
    );
}

#[test]
fn dns_location_is_layered() {
    let report = check_layers(DNS, &["super::", "crate::dns::"]);
    assert!(report.is_ok(), "{report:?}");
    // The point of the layering: the decisions know nothing of the locator that drives
    // them, and the record types nothing of the core.
    let report = report.unwrap_or_default();
    let uses = |module: &str| report.iter().find(|(name, _)| name == module).map(|(_, uses)| uses.clone());
    assert_eq!(uses("records"), Some(vec![]));
    assert_eq!(uses("srv_order"), Some(vec!["name".to_string(), "records".into()]));
}

#[test]
fn runtime_is_layered() {
    let report = check_layers(RUNTIME, &["super::", "crate::runtime::"]);
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn web_interface_is_layered() {
    let report = check_layers(WEB, &["super::", "crate::web::"]);
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn the_check_catches_a_cycle() {
    let a = "use super::b::X;\n";
    let b = "// super::a in a comment does not count\npub fn f() {}\n";
    let b_cyclic = "fn g() { super::a::h() }\n";
    assert_eq!(check_layers(&[("b", b), ("a", a)], &["super::"]).map(|r| r.len()), Ok(2));
    assert!(check_layers(&[("a", a), ("b", b)], &["super::"]).is_err());
    assert!(check_layers(&[("b", b_cyclic), ("a", a)], &["super::"]).is_err());
    assert!(check_layers(&[("a", "use super::{b, c};")], &["super::"]).is_err());
}
