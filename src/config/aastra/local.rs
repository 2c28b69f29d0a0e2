//! The Web UI's layer of the configuration: the value of every parameter as a settings
//! page shows it, and the local file that a page writes its changes into. The local file
//! is read after the files given on the command line, so that it wins, as the Aastra
//! phone keeps the values set in its Web UI apart from the server's files; those files
//! are never rewritten.

use super::{LineKind, Loaded, parse_line, put, render_effective};
use std::collections::BTreeMap;

/// Every parameter in force, by canonical name, with its value as text: defaults
/// included, accounts under their `sip lineN` names, passwords masked.
pub fn effective_values(loaded: &Loaded) -> BTreeMap<String, String> {
    let text = render_effective(&loaded.config, &loaded.line_numbers);
    let mut values = BTreeMap::new();
    for raw in text.lines() {
        if let LineKind::Entry { name, value, .. } = parse_line(raw) {
            values.insert(name, value.to_owned());
        }
    }
    if let Some(p) = &loaded.admin_password {
        values.insert("admin password".to_owned(), if p.is_empty() { "" } else { super::PASSWORD_MASK }.to_owned());
    }
    values
}

/// The local file's text with `changes` (canonical name → new value) made: a parameter
/// the file already sets is rewritten where it stands (its later repetitions dropped),
/// the others are added at the end; comments and every other line stay as they were.
pub fn merge(local: &str, changes: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut written = std::collections::BTreeSet::new();
    for raw in local.lines() {
        match parse_line(raw) {
            LineKind::Entry { name, .. } if changes.contains_key(&name) => {
                if written.insert(name.clone()) {
                    put(&mut out, &name, &changes[&name]);
                }
            }
            _ => {
                out.push_str(raw);
                out.push('\n');
            }
        }
    }
    let added: Vec<_> = changes.iter().filter(|(name, _)| !written.contains(*name)).collect();
    if !added.is_empty() && !local.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    for (name, value) in added {
        put(&mut out, name, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aastra::{Source, load};

    fn changes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_change_is_made_where_the_parameter_stands_and_a_new_one_is_added_at_the_end() {
        let local = "# set from the web interface\nsip proxy ip: old.example\nSIP  Proxy IP: again.example\nsip proxy port: 5061\n";
        let merged = merge(local, &changes(&[("sip proxy ip", "new.example"), ("sip transaction timer", "8000")]));
        assert_eq!(
            merged,
            "# set from the web interface\nsip proxy ip: new.example\nsip proxy port: 5061\n\nsip transaction timer: 8000\n"
        );
        assert_eq!(merge("", &changes(&[("sip proxy port", "5062")])), "sip proxy port: 5062\n");
        assert_eq!(merge(local, &BTreeMap::new()), local, "no change, same text");
    }

    #[test]
    fn the_values_shown_are_those_in_force_with_passwords_masked() {
        let text = "sip transport protocol: 4\nsips persistent tls: 1\nsips trusted certificates: ca.pem\n\
                    sip proxy ip: pbx.example\nsip proxy port: 5061\nsip line2 user name: 1002\n\
                    sip line2 password: secret\nadmin password: 1234\n";
        let loaded = load(&[Source { name: "aastra.cfg", text }]).unwrap();
        let values = effective_values(&loaded);
        assert_eq!(values.get("sip proxy ip").map(String::as_str), Some("pbx.example"));
        assert_eq!(values.get("sip line2 user name").map(String::as_str), Some("1002"));
        assert_eq!(values.get("sip line2 password").map(String::as_str), Some(crate::config::aastra::PASSWORD_MASK));
        assert_eq!(values.get("admin password").map(String::as_str), Some(crate::config::aastra::PASSWORD_MASK));
        assert!(values.contains_key("sip transaction timer"), "defaults are shown too");
        assert!(!values.values().any(|v| v.contains("secret") || v.contains("1234")));
    }
}
