//! The settings pages' fields, laid out as the Aastra Web UI lays them out (Advanced
//! Settings → Global SIP, TLS Support, Line 1–9, with the Aastra labels), and what a
//! submitted form changes: a map from Aastra parameter to new value, which the local
//! configuration file then takes. Pure: no file, no phone.

use std::collections::BTreeMap;

/// A settings page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Advanced Settings → Global SIP.
    GlobalSip,
    /// Advanced Settings → TLS Support.
    TlsSupport,
    /// Advanced Settings → Line N (1 to 9).
    Line(u8),
}

impl Page {
    /// The page at `path` (`/settings/global-sip`, `/settings/tls`, `/settings/line/N`).
    pub fn from_path(path: &str) -> Option<Page> {
        match path.trim_end_matches('/') {
            "/settings" | "/settings/global-sip" => Some(Page::GlobalSip),
            "/settings/tls" => Some(Page::TlsSupport),
            other => {
                let n: u8 = other.strip_prefix("/settings/line/")?.parse().ok()?;
                (1..=9).contains(&n).then_some(Page::Line(n))
            }
        }
    }

    /// Where the page is served.
    pub fn path(self) -> String {
        match self {
            Page::GlobalSip => "/settings/global-sip".to_owned(),
            Page::TlsSupport => "/settings/tls".to_owned(),
            Page::Line(n) => format!("/settings/line/{n}"),
        }
    }

    /// The page's title, as the Aastra menu names it.
    pub fn title(self) -> String {
        match self {
            Page::GlobalSip => "Global SIP".to_owned(),
            Page::TlsSupport => "TLS Support".to_owned(),
            Page::Line(n) => format!("Line {n}"),
        }
    }
}

/// How a field is edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A text box.
    Text,
    /// A text box for a whole number.
    Number,
    /// Write-only: shown empty, left unchanged when left empty.
    Password,
    /// A check box for a `0`/`1` parameter.
    Check,
    /// The Transport Protocol list, into which the Aastra UI folds `sips persistent tls`.
    Transport,
    /// A certificate file's name, with an upload control beside it.
    CertificateFile,
}

/// One field of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The section of the page it sits in.
    pub section: &'static str,
    /// The Aastra Web UI's label.
    pub label: &'static str,
    /// The Aastra parameter (for [`Kind::Transport`], `sip transport protocol`).
    pub parameter: String,
    /// How it is edited.
    pub kind: Kind,
    /// A short help text (units, what 0 means).
    pub help: &'static str,
}

/// The parameter that the Transport Protocol list sets beside `sip transport protocol`.
pub const PERSISTENT_TLS: &str = "sips persistent tls";
/// The value of the Transport Protocol list that stands for Persistent TLS.
const PERSISTENT_CHOICE: &str = "persistent";

/// The choices of the Transport Protocol list: form value and label.
pub const TRANSPORTS: [(&str, &str); 5] =
    [("0", "UDP and TCP"), ("1", "UDP"), ("2", "TCP"), ("4", "TLS"), (PERSISTENT_CHOICE, "Persistent TLS")];

/// The four parameters of a line's authentication set: writing one of them makes the
/// line ignore the global set, so a change writes them all (see [`changes`]).
const LINE_SET: [&str; 4] = ["user name", "auth name", "password", "display name"];

const NETWORK: &str = "Basic SIP Network Settings";
const ADVANCED: &str = "Advanced SIP Settings";
const PERSISTENT: &str = "Persistent TLS";
const TLS: &str = "TLS Support";
const AUTH: &str = "Basic SIP Authentication Settings";

fn field(section: &'static str, label: &'static str, parameter: &str, kind: Kind, help: &'static str) -> Field {
    Field { section, label, parameter: parameter.to_owned(), kind, help }
}

/// The fields of `page`, in the order the page shows them.
pub fn fields(page: Page) -> Vec<Field> {
    use Kind::{CertificateFile, Check, Number, Password, Text, Transport};
    match page {
        Page::GlobalSip => vec![
            field(NETWORK, "Proxy Server", "sip proxy ip", Text, "host name or address"),
            field(NETWORK, "Proxy Port", "sip proxy port", Number, "0: the TLS default, 5061"),
            field(NETWORK, "Backup Proxy Server", "sip backup proxy ip", Text, "empty: no backup"),
            field(NETWORK, "Backup Proxy Port", "sip backup proxy port", Number, ""),
            field(NETWORK, "Registrar Server", "sip registrar ip", Text, "0.0.0.0: no registration"),
            field(NETWORK, "Registrar Port", "sip registrar port", Number, ""),
            field(NETWORK, "Backup Registrar Server", "sip backup registrar ip", Text, ""),
            field(NETWORK, "Backup Registrar Port", "sip backup registrar port", Number, ""),
            field(NETWORK, "Registration Period", "sip registration period", Number, "seconds; 0: the server's"),
            field(ADVANCED, "Transaction Timer", "sip transaction timer", Number, "milliseconds, 4000 to 64000"),
            field(ADVANCED, "Transport Protocol", "sip transport protocol", Transport, "sip-ptls speaks TLS only"),
            field(ADVANCED, "Registration Failed Retry Timer", "sip registration retry timer", Number, "seconds"),
            field(
                ADVANCED,
                "Registration Timeout Retry Timer",
                "sip registration timeout retry timer",
                Number,
                "seconds",
            ),
            field(ADVANCED, "Registration Renewal Timer", "sip registration renewal timer", Number, "seconds"),
            field(PERSISTENT, "Keep Alive Interval", "sip persistent tls keep alive", Number, "seconds between pings"),
            field(PERSISTENT, "Send SIPS over TLS", "sip send sips over tls", Check, "off: sip: URIs, still over TLS"),
        ],
        Page::TlsSupport => vec![
            field(
                TLS,
                "Root and Intermediate Certificates Filename",
                "sips root and intermediate certificates",
                CertificateFile,
                "PEM; the chain of the local certificate",
            ),
            field(TLS, "Local Certificate Filename", "sips local certificate", CertificateFile, "PEM"),
            field(TLS, "Private Key Filename", "sips private key", CertificateFile, "PEM; never shown again"),
            field(
                TLS,
                "Trusted Certificates Filename",
                "sips trusted certificates",
                CertificateFile,
                "PEM; required: the CAs of the proxies",
            ),
            field(
                TLS,
                "Certificate Revocation List Filename",
                "sips certificate revocation list",
                CertificateFile,
                "PEM X509 CRL; optional: the proxies' certificates it revokes are refused",
            ),
        ],
        Page::Line(n) => vec![
            field(AUTH, "Phone Number", &format!("sip line{n} user name"), Text, "the line's user"),
            field(AUTH, "Caller ID", &format!("sip line{n} display name"), Text, ""),
            field(AUTH, "Authentication Name", &format!("sip line{n} auth name"), Text, "empty: the Phone Number"),
            field(AUTH, "Password", &format!("sip line{n} password"), Password, "empty: unchanged"),
            field(
                NETWORK,
                "Registration Period",
                &format!("sip line{n} registration period"),
                Number,
                "seconds; empty: the global one",
            ),
        ],
    }
}

/// The value a field shows, from the values in force (`local::effective_values`).
pub fn shown(field: &Field, values: &BTreeMap<String, String>) -> String {
    match field.kind {
        Kind::Password => String::new(),
        Kind::Transport if values.get(PERSISTENT_TLS).is_some_and(|v| v == "1") => PERSISTENT_CHOICE.to_owned(),
        _ => values.get(&field.parameter).cloned().unwrap_or_default(),
    }
}

/// What a submitted form of `page` changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Parameter → new value, for the local file.
    pub values: BTreeMap<String, String>,
    /// Parameter → why the submitted value is refused before it is even checked (a
    /// locked parameter).
    pub refused: BTreeMap<String, String>,
}

/// The changes a form of `page` asks for. `form` holds the submitted text fields by
/// parameter; `values` the values in force; `locked` the parameters that a file locks;
/// `line_password` the password the line has now (so that a change to the line's set
/// can write the whole set without asking for it again).
pub fn changes(
    page: Page,
    form: &BTreeMap<String, String>,
    values: &BTreeMap<String, String>,
    locked: &std::collections::BTreeSet<String>,
    line_password: &str,
) -> Changes {
    let mut out = Changes::default();
    for f in fields(page) {
        let submitted = match f.kind {
            // An unchecked box is not posted.
            Kind::Check => Some(if form.get(&f.parameter).is_some_and(|v| v == "1") { "1" } else { "0" }.to_owned()),
            Kind::Password => form.get(&f.parameter).filter(|v| !v.is_empty()).cloned(),
            _ => form.get(&f.parameter).map(|v| v.trim().to_owned()),
        };
        let Some(new) = submitted else { continue };
        if new == shown(&f, values) {
            continue;
        }
        if locked.contains(&f.parameter) || (f.kind == Kind::Transport && locked.contains(PERSISTENT_TLS)) {
            out.refused.insert(
                f.parameter.clone(),
                format!("`{}` is locked by a configuration file (`!`): it cannot be changed here", f.parameter),
            );
            continue;
        }
        if f.kind == Kind::Transport {
            let (protocol, persistent) = if new == PERSISTENT_CHOICE { ("4".to_owned(), "1") } else { (new, "0") };
            out.values.insert(f.parameter.clone(), protocol);
            out.values.insert(PERSISTENT_TLS.to_owned(), persistent.to_owned());
        } else {
            out.values.insert(f.parameter.clone(), new);
        }
    }
    if let Page::Line(n) = page {
        let set: Vec<String> = LINE_SET.iter().map(|p| format!("sip line{n} {p}")).collect();
        if set.iter().any(|p| out.values.contains_key(p)) {
            for p in &set {
                if out.values.contains_key(p) {
                    continue;
                }
                let current = if p.ends_with("password") {
                    line_password.to_owned()
                } else {
                    values.get(p).cloned().unwrap_or_default()
                };
                out.values.insert(p.clone(), current);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn pages_are_found_by_path_and_back() {
        for page in [Page::GlobalSip, Page::TlsSupport, Page::Line(1), Page::Line(9)] {
            assert_eq!(Page::from_path(&page.path()), Some(page));
        }
        assert_eq!(Page::from_path("/settings"), Some(Page::GlobalSip));
        assert_eq!(Page::from_path("/settings/line/0"), None);
        assert_eq!(Page::from_path("/settings/line/10"), None);
        assert_eq!(Page::from_path("/settings/other"), None);
    }

    #[test]
    fn only_what_differs_from_the_values_in_force_is_changed() {
        let values = map(&[
            ("sip proxy ip", "pbx.example"),
            ("sip proxy port", "5061"),
            ("sip send sips over tls", "1"),
            ("sip transport protocol", "4"),
            (PERSISTENT_TLS, "1"),
        ]);
        let form =
            map(&[("sip proxy ip", " pbx.example "), ("sip proxy port", "5062"), ("sip transport protocol", "4")]);
        let c = changes(Page::GlobalSip, &form, &values, &Default::default(), "");
        assert_eq!(
            c.values,
            map(&[
                ("sip proxy port", "5062"),
                ("sip send sips over tls", "0"),
                ("sip transport protocol", "4"),
                (PERSISTENT_TLS, "0"),
            ]),
            "the unchecked box is 0, TLS turns Persistent TLS off"
        );
        assert!(c.refused.is_empty());
    }

    #[test]
    fn a_locked_parameter_is_refused_and_the_others_go_through() {
        let values = map(&[("sip proxy ip", "pbx.example"), ("sip proxy port", "5061"), (PERSISTENT_TLS, "1")]);
        let locked = ["sip proxy ip".to_owned(), PERSISTENT_TLS.to_owned()].into_iter().collect();
        let form = map(&[
            ("sip proxy ip", "evil.example"),
            ("sip proxy port", "5062"),
            ("sip transport protocol", "4"),
            ("sip send sips over tls", "1"),
        ]);
        let c = changes(Page::GlobalSip, &form, &values, &locked, "");
        assert_eq!(c.values, map(&[("sip proxy port", "5062"), ("sip send sips over tls", "1")]));
        assert_eq!(c.refused.keys().collect::<Vec<_>>(), ["sip proxy ip", "sip transport protocol"]);
    }

    #[test]
    fn a_change_to_a_line_writes_its_whole_set_and_an_empty_password_keeps_the_old_one() {
        let values = map(&[
            ("sip line1 user name", "1001"),
            ("sip line1 auth name", "1001"),
            ("sip line1 password", "********"),
            ("sip line1 display name", "Front desk"),
        ]);
        let form = map(&[
            ("sip line1 user name", "1001"),
            ("sip line1 display name", "Reception"),
            ("sip line1 auth name", "1001"),
            ("sip line1 password", ""),
        ]);
        let c = changes(Page::Line(1), &form, &values, &Default::default(), "secret");
        assert_eq!(
            c.values,
            map(&[
                ("sip line1 user name", "1001"),
                ("sip line1 auth name", "1001"),
                ("sip line1 password", "secret"),
                ("sip line1 display name", "Reception"),
            ])
        );
        let unchanged = map(&[("sip line1 user name", "1001"), ("sip line1 password", "")]);
        assert_eq!(changes(Page::Line(1), &unchanged, &values, &Default::default(), "secret"), Changes::default());
    }
}
