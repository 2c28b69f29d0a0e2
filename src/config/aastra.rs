//! Reader for Aastra-style configuration files (`name: value` lines).
//!
//! Part of the pure core: the caller reads the files (`aastra.cfg`, `<model>.cfg`,
//! `<mac>.cfg`) and passes their texts in, in that order; [`load`] layers them (a later
//! file overrides an earlier one), maps the Aastra parameters onto a [`Config`], runs
//! [`Config::validate`] and reports every problem at once, each tied to the file and
//! line where the parameter was set. [`render_effective`] writes a [`Config`] back out
//! in the same format (passwords masked) for `sip-ptls check-config`.
//!
//! The file format, every parameter and every decision taken where the Aastra guides
//! are ambiguous are described in `docs/configuration.md`. In short:
//!
//! - a line is `name: value`; the space after the colon is optional; surrounding
//!   whitespace is trimmed; names are compared case-insensitively with runs of
//!   whitespace folded into one space;
//! - a line whose first non-blank character is `#` is a comment; inside a value, a `#`
//!   starts a comment only when it is preceded by whitespace, so `sip password: a#b`
//!   keeps `a#b` while `sip password: ab # old` keeps `ab`;
//! - an empty value is the same as leaving the parameter out (it still overrides an
//!   earlier file);
//! - only the value that wins the layering is checked.

pub mod local;

use super::{AccountConfig, Backoff, Config, ConfigError, DnsQueryType, Failback, Seed, ServerAddr, TransportMode};
use crate::time::Duration;
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeMap, BTreeSet};

/// One configuration file: its name (used in messages only) and its contents.
///
/// Its `Debug` shows the name and the length, never the text, which holds passwords.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    /// File name as it should appear in messages, e.g. `aastra.cfg`.
    pub name: &'a str,
    /// The whole text of the file.
    pub text: &'a str,
}

impl fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source").field("name", &self.name).field("len", &self.text.len()).finish()
    }
}

/// An error or a warning about the configuration, tied to a file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name, as given in [`Source::name`].
    pub file: String,
    /// Line number, starting at 1; 0 when the problem is not tied to a line (for
    /// example a required parameter that no file sets).
    pub line: usize,
    /// The parameter concerned, in Aastra spelling, when there is one.
    pub parameter: Option<String>,
    /// What is wrong, for a human.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parameter {
            Some(p) => write!(f, "{}:{}: {}: {}", self.file, self.line, p, self.message),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.message),
        }
    }
}

/// A configuration that loaded, with what the administrator should still look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration, validated.
    pub config: Config,
    /// Unknown parameters, parameters accepted but not used, values adjusted, …
    pub warnings: Vec<Diagnostic>,
    /// True when `sip persistent tls seed` was set; otherwise `config.seed` is
    /// [`Seed::ZERO`] and the runtime should draw one (`runtime::os_seed`).
    pub seed_configured: bool,
    /// `line_numbers[i]` is the Aastra line number (1 to 9) of `config.accounts[i]`.
    pub line_numbers: Vec<u8>,
    /// `admin password`: the web interface's login (`sip-ptls run --web`). Not part of
    /// [`Config`]: the phone's core never needs it.
    pub admin_password: Option<String>,
    /// Parameters some file wrote with a leading `!` (`!sip proxy ip: …`), by canonical
    /// name: the Aastra convention for a setting the phone's own interfaces show but must
    /// not change.
    pub locked: BTreeSet<String>,
}

/// The account behind an Aastra line number (1 to 9), given `line_numbers` as in
/// [`Loaded::line_numbers`]; `None` when the line is not configured.
pub fn account_of_line(line: u8, line_numbers: &[u8]) -> Option<crate::ids::AccountId> {
    line_numbers.iter().position(|l| *l == line).and_then(|i| u8::try_from(i).ok()).map(crate::ids::AccountId)
}

/// What [`render_effective`] writes instead of a password.
pub const PASSWORD_MASK: &str = "********";

/// Largest value of the Aastra "0-2147483647" integer parameters.
const I32_MAX: u64 = 2_147_483_647;

/// The per-line authentication set: if one of these is given for a line, the line uses
/// its own four values and ignores the global ones.
const AUTH_SET: &[&str] = &["user name", "auth name", "password", "display name"];

/// Per-line server parameters; sip-ptls keeps one set of servers for the whole phone.
const LINE_SERVER: &[&str] = &[
    "proxy ip",
    "proxy port",
    "backup proxy ip",
    "backup proxy port",
    "registrar ip",
    "registrar port",
    "backup registrar ip",
    "backup registrar port",
    "outbound proxy",
    "outbound proxy port",
    "backup outbound proxy",
    "backup outbound proxy port",
];

/// Per-line Aastra parameters that are valid but mean nothing to sip-ptls.
const LINE_UNUSED: &[&str] = &["screen name", "screen name 2", "mode", "bla number", "vmail"];

/// Global parameters this reader maps onto [`Config`].
const GLOBAL_USED: &[&str] = &[
    "sip transport protocol",
    "sips persistent tls",
    "sip persistent tls keep alive",
    "sip send sips over tls",
    "sip outbound support",
    "sip proxy ip",
    "sip proxy port",
    "sip backup proxy ip",
    "sip backup proxy port",
    "sip registrar ip",
    "sip registrar port",
    "sip backup registrar ip",
    "sip backup registrar port",
    "sip outbound proxy",
    "sip outbound proxy port",
    "sip backup outbound proxy",
    "sip backup outbound proxy port",
    "sip registration period",
    "sip registration renewal timer",
    "sip registration retry timer",
    "sip registration timeout retry timer",
    "sip transaction timer",
    "sips root and intermediate certificates",
    "sips local certificate",
    "sips private key",
    "sips trusted certificates",
    "sips certificate revocation list",
    "sip user name",
    "sip auth name",
    "sip password",
    "sip display name",
    "sip persistent tls pong timeout",
    "sip persistent tls connect timeout",
    "sip persistent tls reconnect base",
    "sip persistent tls reconnect max",
    "sip persistent tls failback interval",
    "sip persistent tls failback probes",
    "sip persistent tls call queue",
    "sip persistent tls call timeout",
    "sip persistent tls seed",
    "sip persistent tls instance id",
    "sip persistent tls dns servers",
    "sip dns query type",
    "admin password",
];

/// Global Aastra parameters that are valid but not used by sip-ptls.
const GLOBAL_UNUSED: &[&str] = &[
    "sip t1 timer",
    "sip t2 timer",
    "sip screen name",
    "sip screen name 2",
    "sip mode",
    "sip vmail",
    "sip bla number",
    "sip contact matching",
    "sip gruu",
    "sips symmetric tls signaling",
    "sip session timer",
    "sip send mac",
    "sip send line",
    "sip services transport protocol",
];

/// Other spellings of a parameter, mapped to the one this reader uses.
const ALIASES: &[(&str, &str)] = &[("sips trusted certificate", "sips trusted certificates")];

/// A parameter's winning value and where it was set.
#[derive(Clone, Debug)]
struct Setting<'a> {
    value: &'a str,
    file: usize,
    line: usize,
    /// The name as written (normalised), for messages.
    written: String,
}

/// How one line of a file reads.
#[derive(Debug, PartialEq, Eq)]
enum LineKind<'a> {
    /// Blank or comment.
    Nothing,
    /// `name: value`, with the name normalised and the value trimmed and uncommented;
    /// `locked` when the name was written with a leading `!` (the Aastra convention for a
    /// parameter the phone's own interfaces must not change).
    Entry { name: String, value: &'a str, locked: bool },
    /// Text without a colon.
    NoColon,
}

/// Reads one line of a configuration file.
fn parse_line(raw: &str) -> LineKind<'_> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return LineKind::Nothing;
    }
    match line.split_once(':') {
        None => LineKind::NoColon,
        Some((name, rest)) => {
            let (name, locked) = match name.trim_start().strip_prefix('!') {
                Some(unlocked) => (unlocked, true),
                None => (name, false),
            };
            LineKind::Entry { name: normalize_name(name), value: strip_comment(rest).trim(), locked }
        }
    }
}

/// Lower-case ASCII, whitespace trimmed and runs of whitespace folded into one space.
fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    out
}

/// Cuts a value at the first `#` that follows whitespace.
fn strip_comment(value: &str) -> &str {
    let mut after_space = false;
    for (i, c) in value.char_indices() {
        if c == '#' && after_space {
            return value.get(..i).unwrap_or(value);
        }
        after_space = c.is_whitespace();
    }
    value
}

/// Splits `sip lineN rest` into the line number text and the rest.
fn split_line_name(name: &str) -> Option<(&str, &str)> {
    let tail = name.strip_prefix("sip line")?;
    let digits_end = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
    if digits_end == 0 {
        return None;
    }
    let (digits, rest) = tail.split_at(digits_end);
    Some((digits, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// Why a text is not an accepted unsigned integer.
enum NumberError {
    NotANumber,
    TooLarge,
}

/// Decimal digits only (no sign, no spaces).
fn parse_uint(value: &str) -> Result<u64, NumberError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::NotANumber);
    }
    value.parse::<u64>().map_err(|_| NumberError::TooLarge)
}

/// A decimal 64-bit number; `0x` and 1 to 64 hex digits, a 256-bit number; or exactly 64
/// hex digits without `0x`, the 32 bytes of a full seed (most significant first). A
/// number is the seed whose low bytes it fills (see [`Seed`]), so `7` and `0x07` and
/// `000…007` are one seed.
fn parse_seed(value: &str) -> Option<Seed> {
    let hex = match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => hex,
        None if value.len() == 64 => value,
        None => return parse_uint(value).ok().map(Seed::from),
    };
    if hex.is_empty() || hex.len() > 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    // From the last digit: fewer digits are a smaller number.
    for (i, digit) in hex.bytes().rev().enumerate() {
        let nibble = u8::try_from(char::from(digit).to_digit(16)?).ok()?;
        bytes[31 - i / 2] |= nibble << (4 * (i % 2));
    }
    Some(Seed::from_bytes(bytes))
}

/// How the writer spells a non-zero seed: `0x` and its hex digits when it fits 64 bits
/// (as such seeds are usually written), its 64 hex digits otherwise.
fn render_seed(seed: Seed) -> String {
    match seed.as_u64() {
        Some(n) => format!("{n:#x}"),
        None => seed.to_bytes().iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// An address value that means "not set".
fn unset_host(value: &str) -> bool {
    value.is_empty() || value == "0.0.0.0"
}

/// Where each account came from: its Aastra line and whether the global set defined it.
#[derive(Clone, Copy, Debug)]
struct Origin {
    line: u8,
    global: bool,
}

/// The state of one [`load`].
struct Loader<'s, 'a> {
    sources: &'s [Source<'a>],
    settings: BTreeMap<String, Setting<'a>>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Canonical names that already have an error (validation does not repeat them).
    failed: BTreeSet<String>,
    /// Canonical names some file wrote with a leading `!`.
    locked: BTreeSet<String>,
}

impl<'s, 'a> Loader<'s, 'a> {
    fn file_name(&self, file: usize) -> String {
        self.sources.get(file).map(|s| s.name.to_owned()).unwrap_or_default()
    }

    fn at(&self, s: &Setting<'_>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file_name(s.file),
            line: s.line,
            parameter: Some(s.written.clone()),
            message: message.into(),
        }
    }

    fn line_diag(&self, file: usize, line: usize, parameter: Option<&str>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file_name(file),
            line,
            parameter: parameter.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Reads every file into `settings`, reporting syntax errors and unknown names.
    fn read(&mut self) {
        let sources = self.sources;
        for (file, source) in sources.iter().enumerate() {
            let text = source.text.strip_prefix('\u{feff}').unwrap_or(source.text);
            for (index, raw) in text.lines().enumerate() {
                let line = index + 1;
                match parse_line(raw) {
                    LineKind::Nothing => {}
                    LineKind::NoColon => {
                        let d = self.line_diag(file, line, None, "expected `name: value` but found no colon");
                        self.errors.push(d);
                    }
                    LineKind::Entry { name, value, locked } => {
                        let canonical = self.entry(file, line, name, value);
                        if let Some(c) = canonical.filter(|_| locked) {
                            self.locked.insert(c);
                        }
                    }
                }
            }
        }
    }

    /// Handles one `name: value` line; the parameter's canonical name when it is one
    /// sip-ptls uses.
    fn entry(&mut self, file: usize, line: usize, written: String, value: &'a str) -> Option<String> {
        if written.is_empty() {
            let d = self.line_diag(file, line, None, "a parameter name is missing before the colon");
            self.errors.push(d);
            return None;
        }
        let canonical = ALIASES
            .iter()
            .find(|(alias, _)| *alias == written)
            .map_or_else(|| written.clone(), |(_, c)| (*c).to_owned());
        if let Some((digits, rest)) = split_line_name(&canonical) {
            let known = AUTH_SET.contains(&rest)
                || rest == "registration period"
                || LINE_SERVER.contains(&rest)
                || LINE_UNUSED.contains(&rest);
            let number = digits.parse::<u8>().ok().filter(|n| (1..=9).contains(n));
            if number.is_none() {
                let d = self.line_diag(file, line, Some(&written), format!("line number {digits} is outside 1 to 9"));
                self.errors.push(d);
                self.failed.insert(canonical);
                return None;
            }
            if !known {
                let d = self.line_diag(file, line, Some(&written), "unknown parameter; ignored");
                self.warnings.push(d);
                return None;
            }
            if LINE_UNUSED.contains(&rest) {
                let d =
                    self.line_diag(file, line, Some(&written), "Aastra parameter accepted but not used by sip-ptls");
                self.warnings.push(d);
                return None;
            }
        } else if GLOBAL_UNUSED.contains(&canonical.as_str()) {
            let d = self.line_diag(file, line, Some(&written), "Aastra parameter accepted but not used by sip-ptls");
            self.warnings.push(d);
            return None;
        } else if !GLOBAL_USED.contains(&canonical.as_str()) {
            let d = self.line_diag(file, line, Some(&written), "unknown parameter; ignored");
            self.warnings.push(d);
            return None;
        }
        if let Some(previous) = self.settings.get(&canonical)
            && previous.file == file
        {
            let d = self.line_diag(
                file,
                line,
                Some(&written),
                format!("set again in the same file; the value on line {} is overridden", previous.line),
            );
            self.warnings.push(d);
        }
        self.settings.insert(canonical.clone(), Setting { value, file, line, written });
        Some(canonical)
    }

    /// The winning setting of a parameter, if its value is not empty.
    fn get(&self, name: &str) -> Option<Setting<'a>> {
        self.settings.get(name).filter(|s| !s.value.is_empty()).cloned()
    }

    fn error(&mut self, name: &str, s: &Setting<'_>, message: impl Into<String>) {
        let d = self.at(s, message);
        self.errors.push(d);
        self.failed.insert(name.to_owned());
    }

    fn warn(&mut self, s: &Setting<'_>, message: impl Into<String>) {
        let d = self.at(s, message);
        self.warnings.push(d);
    }

    /// An integer parameter in `lo..=hi`; `None` when absent or wrong (wrong is reported).
    fn uint(&mut self, name: &str, lo: u64, hi: u64, unit: &str) -> Option<u64> {
        let s = self.get(name)?;
        let range = if unit.is_empty() { format!("{lo} to {hi}") } else { format!("{lo} to {hi} {unit}") };
        match parse_uint(s.value) {
            Ok(v) if (lo..=hi).contains(&v) => Some(v),
            Ok(_) | Err(NumberError::TooLarge) => {
                self.error(name, &s, format!("`{}` is out of range; accepted: {range}", s.value));
                None
            }
            Err(NumberError::NotANumber) => {
                self.error(name, &s, format!("`{}` is not a number; accepted: {range}", s.value));
                None
            }
        }
    }

    fn uint32(&mut self, name: &str, lo: u64, hi: u64, unit: &str) -> Option<u32> {
        self.uint(name, lo, hi, unit).and_then(|v| u32::try_from(v).ok())
    }

    fn uint8(&mut self, name: &str, lo: u64, hi: u64) -> Option<u8> {
        self.uint(name, lo, hi, "").and_then(|v| u8::try_from(v).ok())
    }

    fn secs(&mut self, name: &str, lo: u64, hi: u64) -> Option<Duration> {
        self.uint(name, lo, hi, "s").map(Duration::from_secs)
    }

    fn millis(&mut self, name: &str, lo: u64, hi: u64) -> Option<Duration> {
        self.uint(name, lo, hi, "ms").map(Duration::from_millis)
    }

    /// `0` or `1`.
    fn boolean(&mut self, name: &str) -> Option<bool> {
        let s = self.get(name)?;
        match s.value {
            "0" => Some(false),
            "1" => Some(true),
            other => {
                self.error(name, &s, format!("`{other}` is not a boolean; accepted: 0 or 1"));
                None
            }
        }
    }

    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|s| s.value.to_owned())
    }

    /// An address parameter; `0.0.0.0` and empty mean not set.
    fn host(&self, name: &str) -> Option<String> {
        self.get(name).filter(|s| !unset_host(s.value)).map(|s| s.value.to_owned())
    }

    /// An address and its port. A non-zero port without an address is a warning.
    fn server(&mut self, ip: &str, port: &str) -> Option<ServerAddr> {
        let host = self.host(ip);
        let number = self.uint(port, 0, 65535, "").and_then(|p| u16::try_from(p).ok());
        match host {
            Some(h) => Some(ServerAddr::new(h, number.unwrap_or(0))),
            None => {
                if number.is_some_and(|p| p != 0)
                    && let Some(s) = self.get(port)
                {
                    self.warn(&s, format!("a port without `{ip}`; ignored"));
                }
                None
            }
        }
    }

    /// Maps the settings onto a [`Config`]; returns it with the accounts' origins.
    fn map(&mut self) -> (Config, Vec<Origin>, bool) {
        let mut c = Config::default();

        if let Some(s) = self.get("sip transport protocol") {
            match parse_uint(s.value) {
                Ok(4) => {}
                Ok(0..=2) => self.error("sip transport protocol", &s, "sip-ptls only speaks TLS; set 4"),
                _ => self.error(
                    "sip transport protocol",
                    &s,
                    format!("`{}` is not a transport; accepted: 4 (TLS) (0, 1 and 2 are not supported)", s.value),
                ),
            }
        }
        if let Some(persistent) = self.boolean("sips persistent tls") {
            c.mode = if persistent { TransportMode::PersistentTls } else { TransportMode::PerCallTls };
        }
        if let Some(d) = self.secs("sip persistent tls keep alive", 0, 86_400) {
            c.keepalive_interval = d;
        }
        if let Some(b) = self.boolean("sip send sips over tls") {
            c.sips_scheme = b;
        }
        if let Some(b) = self.boolean("sip outbound support") {
            c.outbound = b;
        }

        c.proxy = self.server("sip proxy ip", "sip proxy port");
        c.backup_proxy = self.server("sip backup proxy ip", "sip backup proxy port");
        c.registrar = self.server("sip registrar ip", "sip registrar port");
        c.backup_registrar = self.server("sip backup registrar ip", "sip backup registrar port");
        let outbound = self.server("sip outbound proxy", "sip outbound proxy port");
        let backup_outbound = self.server("sip backup outbound proxy", "sip backup outbound proxy port");
        let outbound_is_proxy = c.proxy.is_none() && outbound.is_some();
        if let Some(s) = self.get("sip outbound proxy").filter(|_| outbound.is_some()) {
            if outbound_is_proxy {
                self.warn(&s, "used as the proxy because `sip proxy ip` is not set (firmware 2.4 behaviour)");
                c.proxy = outbound;
            } else {
                self.warn(&s, "accepted but not used: sip-ptls connects to `sip proxy ip`");
            }
        }
        if let Some(s) = self.get("sip backup outbound proxy").filter(|_| backup_outbound.is_some()) {
            if outbound_is_proxy && c.backup_proxy.is_none() {
                self.warn(&s, "used as the backup proxy because the outbound proxy is the proxy");
                c.backup_proxy = backup_outbound;
            } else {
                self.warn(&s, "accepted but not used: sip-ptls connects to `sip proxy ip` and `sip backup proxy ip`");
            }
        }

        if let Some(v) = self.uint32("sip registration period", 0, I32_MAX, "s") {
            c.registration_period = v;
        }
        if let Some(v) = self.uint32("sip registration renewal timer", 0, I32_MAX, "s") {
            c.registration_renewal = v;
        }
        if let Some(v) = self.uint32("sip registration retry timer", 30, 1800, "s") {
            c.registration_retry = v;
        }
        if let Some(v) = self.uint32("sip registration timeout retry timer", 0, I32_MAX, "s") {
            if v < 30
                && let Some(s) = self.get("sip registration timeout retry timer")
            {
                self.warn(&s, format!("{v} s is below the minimum; 30 s is used"));
            }
            c.registration_timeout_retry = v.max(30);
        }
        if let Some(d) = self.millis("sip transaction timer", 4000, 64_000) {
            c.transaction_timeout = d;
        }

        c.certificates.root_and_intermediate = self.string("sips root and intermediate certificates");
        c.certificates.local_certificate = self.string("sips local certificate");
        c.certificates.private_key = self.string("sips private key");
        c.certificates.trusted_certificates = self.string("sips trusted certificates");
        c.certificates.revocation_list = self.string("sips certificate revocation list");

        if let Some(d) = self.secs("sip persistent tls pong timeout", 1, 3600) {
            c.pong_timeout = d;
        }
        if let Some(d) = self.millis("sip persistent tls connect timeout", 1, 600_000) {
            c.connect_timeout = d;
        }
        let base = self.millis("sip persistent tls reconnect base", 1, 3_600_000);
        let max = self.secs("sip persistent tls reconnect max", 1, 86_400);
        c.backoff = Backoff { base: base.unwrap_or(c.backoff.base), max: max.unwrap_or(c.backoff.max) };
        let interval = self.secs("sip persistent tls failback interval", 1, 86_400);
        let probes = self.uint8("sip persistent tls failback probes", 1, 255);
        c.failback = Failback {
            probe_interval: interval.unwrap_or(c.failback.probe_interval),
            stable_probes: probes.unwrap_or(c.failback.stable_probes),
        };
        if let Some(v) = self.uint8("sip persistent tls call queue", 0, 255) {
            c.call_queue_limit = v;
        }
        if let Some(d) = self.secs("sip persistent tls call timeout", 1, 3600) {
            c.call_setup_timeout = d;
        }
        let mut seed_configured = false;
        if let Some(s) = self.get("sip persistent tls seed") {
            match parse_seed(s.value) {
                Some(v) => {
                    c.seed = v;
                    seed_configured = true;
                }
                None => self.error(
                    "sip persistent tls seed",
                    &s,
                    format!(
                        "`{}` is not a seed; accepted: 0 to 18446744073709551615, 0x and up to 64 hex digits, \
                         or 64 hex digits",
                        s.value
                    ),
                ),
            }
        }
        if let Some(s) = self.get("sip persistent tls instance id") {
            if s.value.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
                c.instance_id = Some(s.value.to_owned());
            } else {
                self.error("sip persistent tls instance id", &s, format!("`{}` must start with `urn:`", s.value));
            }
        }

        if let Some(v) = self.uint("sip dns query type", 0, 2, "")
            && let Some(t) = DnsQueryType::from_number(v as i64)
        {
            c.dns_query_type = t;
        }
        if let Some(s) = self.get("sip persistent tls dns servers") {
            match parse_dns_servers(s.value) {
                Ok(servers) => c.dns_servers = servers,
                Err(why) => self.error("sip persistent tls dns servers", &s, why),
            }
        }

        self.check_line_servers(c.mode);
        let origins = self.accounts(&mut c);
        (c, origins, seed_configured)
    }

    /// `admin password`: printable, no spaces, at most 64 characters. The Aastra phone
    /// takes digits only; other characters are kept, with a warning.
    fn admin_password(&mut self) -> Option<String> {
        let s = self.get("admin password")?;
        let value = s.value;
        if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            self.error(
                "admin password",
                &s,
                "must be 1 to 64 printable characters without spaces (the Aastra phone takes digits only)",
            );
            return None;
        }
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            self.warn(&s, "admin password: the Aastra phone takes digits only; sip-ptls accepts this one");
        }
        Some(value.to_owned())
    }

    /// Per-line servers: sip-ptls has one set of servers for every line.
    fn check_line_servers(&mut self, mode: TransportMode) {
        for n in 1..=9u8 {
            for suffix in LINE_SERVER {
                let name = format!("sip line{n} {suffix}");
                let global = format!("sip {suffix}");
                let Some(s) = self.get(&name) else { continue };
                let is_port = suffix.ends_with("port");
                let same = if is_port {
                    let Some(port) = self.uint(&name, 0, 65535, "") else {
                        continue;
                    };
                    if port == 0 {
                        continue;
                    }
                    let global_port = self.get(&global).and_then(|g| parse_uint(g.value).ok()).unwrap_or(0);
                    let global_port = if global_port == 0 { 5061 } else { global_port };
                    port == global_port
                } else {
                    if unset_host(s.value) {
                        continue;
                    }
                    self.host(&global).is_some_and(|g| g.eq_ignore_ascii_case(s.value))
                };
                if mode == TransportMode::PersistentTls && !same {
                    let shown = self.get(&global).map_or_else(|| "not set".to_owned(), |g| format!("`{}`", g.value));
                    self.error(
                        &name,
                        &s,
                        format!(
                            "Persistent TLS uses one connection for every line; this differs from `{global}` ({shown}); \
                             set it in `{global}` or remove it"
                        ),
                    );
                } else {
                    self.warn(&s, format!("ignored: sip-ptls uses `{global}` for every line"));
                }
            }
        }
    }

    /// Builds the accounts from the per-line and global authentication sets.
    fn accounts(&mut self, c: &mut Config) -> Vec<Origin> {
        let mut origins = Vec::new();
        for n in 1..=9u8 {
            let own_set = AUTH_SET.iter().any(|p| self.get(&format!("sip line{n} {p}")).is_some());
            let period_name = format!("sip line{n} registration period");
            let period = self.uint32(&period_name, 0, I32_MAX, "s");
            let (prefix, global) = if own_set {
                (format!("sip line{n} "), false)
            } else if n == 1 {
                ("sip ".to_owned(), true)
            } else {
                if let Some(s) = self.get(&period_name) {
                    self.warn(&s, format!("ignored: line {n} has no `sip line{n} user name`"));
                }
                continue;
            };
            if own_set
                && n == 1
                && let Some(s) = AUTH_SET.iter().find_map(|p| self.get(&format!("sip {p}")))
            {
                self.warn(&s, "ignored: line 1 has its own authentication set (`sip line1 ...`)");
            }
            let field =
                |l: &Self, p: &str| l.get(&format!("{prefix}{p}")).map(|s| s.value.to_owned()).unwrap_or_default();
            let account = AccountConfig {
                user_name: field(self, "user name"),
                auth_name: field(self, "auth name"),
                password: field(self, "password"),
                display_name: field(self, "display name"),
                registration_period: period,
            };
            if account.user_name.is_empty() {
                if own_set {
                    let first = AUTH_SET
                        .iter()
                        .chain(["registration period"].iter())
                        .find_map(|p| self.get(&format!("{prefix}{p}")));
                    if let Some(s) = first {
                        self.warn(&s, format!("ignored: line {n} has no `sip line{n} user name`"));
                    }
                } else if let Some(s) = self.get(&period_name) {
                    self.warn(&s, "ignored: line 1 has no user name");
                }
                continue;
            }
            c.accounts.push(account);
            origins.push(Origin { line: n, global });
        }
        origins
    }

    /// Where a parameter named by [`Config::validate`] was last set.
    fn locate(&self, parameter: &str, origins: &[Origin]) -> Diagnostic {
        let mut candidates = vec![parameter.to_owned()];
        // Validation names accounts by their index; the files name them by line, or by
        // the global set for line 1.
        if let Some((digits, field)) = split_line_name(parameter).filter(|(_, f)| AUTH_SET.contains(f)) {
            let index = digits.parse::<usize>().ok().and_then(|k| k.checked_sub(1));
            match index.and_then(|i| origins.get(i)) {
                Some(o) if o.global => candidates = vec![format!("sip {field}")],
                Some(o) => candidates = vec![format!("sip line{} {field}", o.line)],
                None if origins.is_empty() => candidates.push(format!("sip {field}")),
                None => {}
            }
        }
        // The outbound proxies stand in for unset proxies (section 3 of the reference).
        match parameter {
            "sip proxy ip" => candidates.push("sip outbound proxy".to_owned()),
            "sip backup proxy ip" => candidates.push("sip backup outbound proxy".to_owned()),
            _ => {}
        }
        for name in &candidates {
            if let Some(s) = self.settings.get(name) {
                return self.at(s, String::new());
            }
        }
        Diagnostic {
            file: self.sources.last().map(|s| s.name.to_owned()).unwrap_or_default(),
            line: 0,
            parameter: candidates.into_iter().next(),
            message: String::new(),
        }
    }

    /// Maps validation errors to diagnostics on the lines that caused them.
    fn validation(&mut self, config: &Config, origins: &[Origin]) {
        let Err(errors) = config.validate() else {
            return;
        };
        for e in errors {
            let (parameter, message) = match &e {
                ConfigError::Missing { parameter, why } => ((*parameter).to_owned(), format!("required: {why}")),
                ConfigError::Invalid { parameter, why } => (parameter.clone(), why.clone()),
            };
            if self.failed.contains(&parameter) {
                continue;
            }
            let mut d = self.locate(&parameter, origins);
            d.message = message;
            self.errors.push(d);
        }
    }
}

/// Reads, layers, maps and validates configuration files.
///
/// `sources` are in increasing precedence (`aastra.cfg`, then `<model>.cfg`, then
/// `<mac>.cfg`). On success the warnings are in [`Loaded::warnings`]; on failure every
/// error found is returned (warnings are dropped then).
pub fn load(sources: &[Source<'_>]) -> Result<Loaded, Vec<Diagnostic>> {
    let mut loader = Loader {
        sources,
        settings: BTreeMap::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        failed: BTreeSet::new(),
        locked: BTreeSet::new(),
    };
    loader.read();
    let (config, origins, seed_configured) = loader.map();
    let admin_password = loader.admin_password();
    loader.validation(&config, &origins);
    if loader.errors.is_empty() {
        Ok(Loaded {
            config,
            warnings: loader.warnings,
            seed_configured,
            line_numbers: origins.iter().map(|o| o.line).collect(),
            admin_password,
            locked: loader.locked,
        })
    } else {
        Err(loader.errors)
    }
}

/// Whole seconds, rounded up so that a non-zero duration stays non-zero.
fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000)
}

/// Writes `name: value`, noting values the format cannot carry.
fn put(out: &mut String, name: &str, value: &str) {
    let lossy = value.trim() != value || value.contains('\n') || strip_comment(value) != value;
    // A line break in a value would start a new parameter line: never write one.
    let flattened;
    // (The reader splits lines at `\n` only; a lone `\r` stays inside its line.)
    let value = if value.contains('\n') {
        flattened = value.replace('\n', " ");
        flattened.as_str()
    } else {
        value
    };
    if lossy {
        out.push_str(&format!("# note: the value of `{name}` below cannot be written exactly in this format\n"));
    }
    if value.starts_with('#') {
        out.push_str(&format!("{name}:{value}\n"));
    } else if value.is_empty() {
        out.push_str(&format!("{name}:\n"));
    } else {
        out.push_str(&format!("{name}: {value}\n"));
    }
}

/// `sip persistent tls dns servers`: addresses separated by commas or blanks, each an
/// IPv4 address, an IPv6 address, or either with a port (`127.0.0.1:5353`,
/// `[::1]:5353`); port 53 when none is given.
fn parse_dns_servers(value: &str) -> Result<Vec<SocketAddr>, String> {
    let mut servers = Vec::new();
    for item in value.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
        let addr = item
            .parse::<SocketAddr>()
            .or_else(|_| item.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| format!("`{item}` is not an IP address or an address with a port"))?;
        servers.push(addr);
    }
    if servers.len() > 3 {
        return Err(format!("{} servers given; at most 3, as in resolv.conf", servers.len()));
    }
    Ok(servers)
}

fn put_server(out: &mut String, ip: &str, port: &str, server: Option<&ServerAddr>) {
    if let Some(s) = server {
        put(out, ip, &s.host);
        put(out, port, &s.port.to_string());
    }
}

/// The configuration in force, as Aastra `name: value` lines.
///
/// Every value is written out, defaults included, so the output documents what
/// sip-ptls will do. Passwords are written as [`PASSWORD_MASK`] (an empty password as an
/// empty value). Accounts use their per-line sets, `sip lineN ...` with `N` from
/// `line_numbers` (an account whose number is missing, out of 1 to 9 or already used
/// gets the next free line). The seed is written only when it is not 0, so that copying
/// the output does not give every phone the same seed.
///
/// For any [`Config`] that [`load`] produced, loading the output (with the real
/// passwords put back) gives the same [`Config`] and the same line numbers.
pub fn render_effective(config: &Config, line_numbers: &[u8]) -> String {
    let mut out = String::new();
    out.push_str("# Effective sip-ptls configuration (passwords masked)\n");
    put(&mut out, "sip transport protocol", "4");
    let persistent = if config.mode == TransportMode::PersistentTls { "1" } else { "0" };
    put(&mut out, "sips persistent tls", persistent);
    put(&mut out, "sip persistent tls keep alive", &ceil_secs(config.keepalive_interval).to_string());
    put(&mut out, "sip send sips over tls", if config.sips_scheme { "1" } else { "0" });
    put(&mut out, "sip outbound support", if config.outbound { "1" } else { "0" });
    put_server(&mut out, "sip proxy ip", "sip proxy port", config.proxy.as_ref());
    put_server(&mut out, "sip backup proxy ip", "sip backup proxy port", config.backup_proxy.as_ref());
    put_server(&mut out, "sip registrar ip", "sip registrar port", config.registrar.as_ref());
    put_server(&mut out, "sip backup registrar ip", "sip backup registrar port", config.backup_registrar.as_ref());
    put(&mut out, "sip registration period", &config.registration_period.to_string());
    put(&mut out, "sip registration renewal timer", &config.registration_renewal.to_string());
    put(&mut out, "sip registration retry timer", &config.registration_retry.to_string());
    put(&mut out, "sip registration timeout retry timer", &config.registration_timeout_retry.to_string());
    put(&mut out, "sip transaction timer", &config.transaction_timeout.as_millis().to_string());
    put(&mut out, "sip dns query type", &config.dns_query_type.to_string());
    if !config.dns_servers.is_empty() {
        let servers: Vec<String> = config.dns_servers.iter().map(ToString::to_string).collect();
        put(&mut out, "sip persistent tls dns servers", &servers.join(", "));
    }
    let certs = [
        ("sips root and intermediate certificates", &config.certificates.root_and_intermediate),
        ("sips local certificate", &config.certificates.local_certificate),
        ("sips private key", &config.certificates.private_key),
        ("sips trusted certificates", &config.certificates.trusted_certificates),
        ("sips certificate revocation list", &config.certificates.revocation_list),
    ];
    for (name, value) in certs {
        if let Some(v) = value {
            put(&mut out, name, v);
        }
    }

    let mut used = [false; 10];
    for (i, account) in config.accounts.iter().enumerate() {
        let wanted = line_numbers.get(i).copied().filter(|n| (1..=9).contains(n) && !used[usize::from(*n)]);
        let Some(n) = wanted.or_else(|| (1..=9u8).find(|n| !used[usize::from(*n)])) else {
            out.push_str(&format!("# account {} (`{}`) cannot be written: only 9 lines\n", i + 1, account.user_name));
            continue;
        };
        used[usize::from(n)] = true;
        put(&mut out, &format!("sip line{n} user name"), &account.user_name);
        put(&mut out, &format!("sip line{n} auth name"), &account.auth_name);
        let password = if account.password.is_empty() { "" } else { PASSWORD_MASK };
        put(&mut out, &format!("sip line{n} password"), password);
        put(&mut out, &format!("sip line{n} display name"), &account.display_name);
        if let Some(p) = account.registration_period {
            put(&mut out, &format!("sip line{n} registration period"), &p.to_string());
        }
    }

    put(&mut out, "sip persistent tls pong timeout", &ceil_secs(config.pong_timeout).to_string());
    put(&mut out, "sip persistent tls connect timeout", &config.connect_timeout.as_millis().to_string());
    put(&mut out, "sip persistent tls reconnect base", &config.backoff.base.as_millis().to_string());
    put(&mut out, "sip persistent tls reconnect max", &ceil_secs(config.backoff.max).to_string());
    put(&mut out, "sip persistent tls failback interval", &ceil_secs(config.failback.probe_interval).to_string());
    put(&mut out, "sip persistent tls failback probes", &config.failback.stable_probes.to_string());
    put(&mut out, "sip persistent tls call queue", &config.call_queue_limit.to_string());
    put(&mut out, "sip persistent tls call timeout", &ceil_secs(config.call_setup_timeout).to_string());
    if !config.seed.is_zero() {
        put(&mut out, "sip persistent tls seed", &render_seed(config.seed));
    }
    if let Some(id) = &config.instance_id {
        put(&mut out, "sip persistent tls instance id", id);
    }
    out
}

/// `rendered` (an output of [`render_effective`] for `config` and `line_numbers`) with
/// each masked password replaced by the real one: the text that must load back into the
/// same [`Config`]. For the round-trip checks of the tests and the fuzz target only.
#[cfg(any(test, feature = "sim"))]
pub fn unmask_passwords(rendered: &str, config: &Config, line_numbers: &[u8]) -> String {
    let mut text = rendered.to_owned();
    for (account, n) in config.accounts.iter().zip(line_numbers) {
        let masked = format!("sip line{n} password: {PASSWORD_MASK}\n");
        text = text.replace(&masked, &format!("sip line{n} password:{}\n", account.password));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CertificateFiles;

    const BASE: &str = "\
sip transport protocol: 4
sips persistent tls: 1
sip proxy ip: proxy.example.com
sip proxy port: 5061
sips trusted certificates: ca.pem
sip line1 user name: 1001
sip line1 password: secret
";

    fn one(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
        load(&[Source { name: "mac.cfg", text }])
    }

    fn ok(text: &str) -> Loaded {
        match one(text) {
            Ok(l) => l,
            Err(e) => panic!("expected success, got {e:#?}"),
        }
    }

    fn err(text: &str) -> Vec<Diagnostic> {
        match one(text) {
            Ok(l) => panic!("expected errors, got {l:#?}"),
            Err(e) => e,
        }
    }

    fn with(extra: &str) -> String {
        format!("{BASE}{extra}")
    }

    fn has_warning(l: &Loaded, parameter: &str, fragment: &str) -> bool {
        l.warnings.iter().any(|w| w.parameter.as_deref() == Some(parameter) && w.message.contains(fragment))
    }

    #[test]
    fn a_minimal_file_loads_with_defaults() {
        let l = ok(BASE);
        assert_eq!(l.config.mode, TransportMode::PersistentTls);
        assert_eq!(l.config.proxy, Some(ServerAddr::new("proxy.example.com", 5061)));
        assert_eq!(l.config.accounts.len(), 1);
        assert_eq!(l.config.accounts[0].user_name, "1001");
        assert_eq!(l.config.accounts[0].password, "secret");
        assert_eq!(l.config.accounts[0].auth_name, "");
        assert_eq!(l.line_numbers, [1]);
        assert!(!l.seed_configured);
        assert_eq!(l.warnings, []);
        let expected = Config {
            proxy: Some(ServerAddr::new("proxy.example.com", 5061)),
            accounts: l.config.accounts.clone(),
            certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
            ..Config::default()
        };
        assert_eq!(l.config, expected);
    }

    #[test]
    fn transport_and_persistent_tls_default_to_tls_and_on() {
        let text = BASE.replace("sip transport protocol: 4\n", "").replace("sips persistent tls: 1\n", "");
        assert_eq!(ok(&text).config.mode, TransportMode::PersistentTls);
        let l = ok(&with("sips persistent tls: 0\n"));
        assert_eq!(l.config.mode, TransportMode::PerCallTls);
    }

    #[test]
    fn non_tls_transports_are_errors_naming_the_parameter() {
        for v in ["0", "1", "2"] {
            let e = err(&BASE.replace("sip transport protocol: 4", &format!("sip transport protocol: {v}")));
            assert_eq!(e.len(), 1, "{e:#?}");
            assert_eq!((e[0].file.as_str(), e[0].line), ("mac.cfg", 1));
            assert_eq!(e[0].parameter.as_deref(), Some("sip transport protocol"));
            assert!(e[0].message.contains("sip-ptls only speaks TLS; set 4"), "{}", e[0]);
        }
        let e = err(&BASE.replace("sip transport protocol: 4", "sip transport protocol: 3"));
        assert!(e[0].message.contains("accepted: 4"));
    }

    #[test]
    fn later_sources_override_earlier_ones() {
        let aastra = "sip proxy ip: old.example.com\nsip transport protocol: 1\nsip registration retry timer: 60\n";
        let model = "sip transport protocol: 4\nsip registration retry timer: 90\n";
        let mac = BASE.replace("sip transport protocol: 4\n", "").replace("proxy.example.com", "new.example.com");
        let sources = [
            Source { name: "aastra.cfg", text: aastra },
            Source { name: "6737i.cfg", text: model },
            Source { name: "00085D1A2B3C.cfg", text: &mac },
        ];
        let l = load(&sources).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(l.config.proxy, Some(ServerAddr::new("new.example.com", 5061)));
        assert_eq!(l.config.registration_retry, 90);
    }

    #[test]
    fn an_empty_value_in_a_later_file_unsets_the_parameter() {
        let sources = [
            Source { name: "aastra.cfg", text: &with("sip backup proxy ip: backup.example.com\n") },
            Source { name: "mac.cfg", text: "sip backup proxy ip:\n" },
        ];
        let l = load(&sources).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(l.config.backup_proxy, None);
    }

    #[test]
    fn comments_blank_lines_and_the_hash_rule() {
        let text = "# a comment\n\n   # indented comment: with colon\n\t\n".to_owned()
            + &BASE.replace("sip line1 password: secret", "sip line1 password: se#cr#et   # the old one was 1234")
            + "sip line1 display name: Alice#1 #comment\n";
        let l = ok(&text);
        assert_eq!(l.config.accounts[0].password, "se#cr#et");
        assert_eq!(l.config.accounts[0].display_name, "Alice#1");
        let l = ok(&with("sip line1 auth name:#hash\n"));
        assert_eq!(l.config.accounts[0].auth_name, "#hash");
        let l = ok(&with("sip line1 auth name: #just a comment\n"));
        assert_eq!(l.config.accounts[0].auth_name, "");
    }

    #[test]
    fn spacing_and_case_do_not_matter_in_names() {
        let text = "SIP   Transport\tProtocol:4\n  Sips Persistent TLS :1  \nsip proxy ip:proxy.example.com\n\
                    sip PROXY port :   5062\nsips trusted certificates:ca.pem\nSip Line1 User Name:  1001  \n";
        let l = ok(text);
        assert_eq!(l.config.proxy, Some(ServerAddr::new("proxy.example.com", 5062)));
        assert_eq!(l.config.accounts[0].user_name, "1001");
    }

    #[test]
    fn carriage_returns_and_a_byte_order_mark_are_accepted() {
        let text = format!("\u{feff}{}", BASE.replace('\n', "\r\n"));
        assert_eq!(ok(&text).config.accounts[0].user_name, "1001");
    }

    #[test]
    fn a_line_without_colon_is_an_error_with_file_and_line() {
        let e = err(&with("sip outbound support 1\n"));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].file.as_str(), e[0].line, e[0].parameter.as_deref()), ("mac.cfg", 8, None));
        assert_eq!(e[0].to_string(), "mac.cfg:8: expected `name: value` but found no colon");
        let e = err(&with(": 1\n"));
        assert_eq!(e[0].line, 8);
    }

    #[test]
    fn unknown_parameters_are_warnings_with_file_and_line() {
        let l = ok(&with("sip frobnicate: 1\nsip line2 frobnicate: 1\n"));
        assert_eq!(l.warnings.len(), 2);
        assert_eq!(l.warnings[0].to_string(), "mac.cfg:8: sip frobnicate: unknown parameter; ignored");
        assert_eq!(l.warnings[1].line, 9);
    }

    #[test]
    fn known_unused_parameters_are_accepted_with_a_warning() {
        let unused = "sip T1 timer: 500\nsip T2 timer: 4000\nsip screen name: Bob\n\
                      sip line1 screen name: Bob\nsip mode: 0\nsip vmail: *97\nsip contact matching: 0\n\
                      sip gruu: 1\nsips symmetric tls signaling: 1\nsip line3 vmail: *98\n";
        let l = ok(&with(unused));
        assert_eq!(l.warnings.len(), 10, "{:#?}", l.warnings);
        assert!(l.warnings.iter().all(|w| w.message.contains("accepted but not used")));
        assert_eq!(l.warnings[0].parameter.as_deref(), Some("sip t1 timer"));
    }

    #[test]
    fn the_singular_trusted_certificate_spelling_is_accepted() {
        let text = BASE.replace("sips trusted certificates: ca.pem", "sips Trusted Certificate: servers.pem");
        let l = ok(&text);
        assert_eq!(l.config.certificates.trusted_certificates.as_deref(), Some("servers.pem"));
        assert_eq!(l.warnings, []);
    }

    #[test]
    fn missing_trusted_certificates_points_at_the_parameter_or_the_last_file() {
        let text = BASE.replace("sips trusted certificates: ca.pem", "sips trusted certificates:");
        let e = err(&text);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].file.as_str(), e[0].line), ("mac.cfg", 5));
        assert_eq!(e[0].parameter.as_deref(), Some("sips trusted certificates"));
        assert!(e[0].message.starts_with("required"));

        let text = BASE.replace("sips trusted certificates: ca.pem\n", "");
        let sources = [Source { name: "aastra.cfg", text: &text }, Source { name: "mac.cfg", text: "" }];
        let e = load(&sources).err().unwrap_or_default();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].file.as_str(), e[0].line), ("mac.cfg", 0));
        assert_eq!(e[0].parameter.as_deref(), Some("sips trusted certificates"));

        // Per-call TLS verifies the proxy too: the trusted certificates are required there as well.
        let text = BASE.replace("sips trusted certificates: ca.pem\n", "sips persistent tls: 0\n");
        assert_eq!(err(&text)[0].parameter.as_deref(), Some("sips trusted certificates"));
    }

    #[test]
    fn validation_errors_are_all_reported_with_their_lines() {
        let e = load(&[Source { name: "a.cfg", text: "sip registration retry timer: 60\n" }]).err().unwrap_or_default();
        let names: Vec<_> = e.iter().filter_map(|d| d.parameter.as_deref()).collect();
        assert_eq!(names, ["sip proxy ip", "sips trusted certificates", "sip line1 user name"]);
        assert!(e.iter().all(|d| d.file == "a.cfg" && d.line == 0));

        let e = err(&with("sips local certificate: me.pem\n"));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (0, Some("sips private key")));
        let e = err(&with("sips local certificate: me.pem\nsips private key:\n"));
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (9, Some("sips private key")));
    }

    #[test]
    fn a_bad_user_name_is_reported_on_its_own_line() {
        let text = with("sip line4 user name: bad name\nsip line4 password: x\n");
        let e = err(&text);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (8, Some("sip line4 user name")));
        let text = "sip user name: a@b\n".to_owned()
            + &BASE.replace("sip line1 user name: 1001\nsip line1 password: secret\n", "");
        let e = err(&text);
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (1, Some("sip user name")));
    }

    #[test]
    fn values_that_would_break_a_message_are_reported_on_their_lines() {
        // A CR inside a line is part of the value (only LF ends a line): it would have
        // added an `Injected: yes` header to every REGISTER and INVITE.
        let text = with("sip line4 user name: 1004\nsip line4 display name: \"Al\rInjected: yes\"\n");
        let e = err(&text);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (9, Some("sip line4 display name")));
        assert!(e[0].message.contains("U+000D") && !e[0].message.contains('\r'), "{}", e[0]);

        let text = "sip auth name: a\tb\nsip user name: 1\n".to_owned()
            + &BASE.replace("sip line1 user name: 1001\nsip line1 password: secret\n", "");
        let e = err(&text);
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (1, Some("sip auth name")));

        let e = err(&with("sip registrar ip: bad host\nsip persistent tls instance id: urn:a\"b\n"));
        let found: Vec<_> = e.iter().map(|d| (d.line, d.parameter.as_deref())).collect();
        assert_eq!(found, [(8, Some("sip registrar ip")), (9, Some("sip persistent tls instance id"))]);

        let e = err(&BASE.replace("sip proxy ip: proxy.example.com\n", "sip outbound proxy: a_b\n"));
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (3, Some("sip outbound proxy")));
    }

    #[test]
    fn the_global_set_defines_line_one_only() {
        let text = BASE.replace("sip line1 user name: 1001\nsip line1 password: secret\n", "")
            + "sip user name: 2000\nsip auth name: auth2000\nsip password: pw\nsip display name: Reception\n";
        let l = ok(&text);
        assert_eq!(l.line_numbers, [1]);
        let a = &l.config.accounts[0];
        assert_eq!((a.user_name.as_str(), a.auth_name.as_str(), a.password.as_str()), ("2000", "auth2000", "pw"));
        assert_eq!(a.display_name, "Reception");
        assert_eq!(a.registration_period, None);
    }

    #[test]
    fn a_per_line_set_replaces_the_whole_global_set() {
        let text = with("sip auth name: globalauth\nsip password: globalpw\nsip display name: Global\n");
        let l = ok(&text);
        let a = &l.config.accounts[0];
        // Line 1 gave user name and password: auth name and display name stay empty.
        assert_eq!((a.auth_name.as_str(), a.password.as_str(), a.display_name.as_str()), ("", "secret", ""));
        assert!(has_warning(&l, "sip auth name", "own authentication set"));
    }

    #[test]
    fn lines_come_out_in_order_with_their_numbers() {
        let text = with(
            "sip line7 user name: 1007\nsip line3 user name: 1003\nsip line3 registration period: 600\n\
             sip line5 password: orphan\nsip line6 registration period: 60\n",
        );
        let l = ok(&text);
        let users: Vec<_> = l.config.accounts.iter().map(|a| a.user_name.as_str()).collect();
        assert_eq!(users, ["1001", "1003", "1007"]);
        assert_eq!(l.line_numbers, [1, 3, 7]);
        assert_eq!(l.config.accounts[1].registration_period, Some(600));
        assert_eq!(l.config.period_for(1), 600);
        assert!(has_warning(&l, "sip line5 password", "no `sip line5 user name`"));
        assert!(has_warning(&l, "sip line6 registration period", "no `sip line6 user name`"));
    }

    #[test]
    fn a_line_number_outside_one_to_nine_is_an_error() {
        for n in ["0", "10", "99999999999999999999999"] {
            let e = err(&with(&format!("sip line{n} user name: 1010\n")));
            assert_eq!(e.len(), 1, "{e:#?}");
            assert_eq!(e[0].line, 8);
            assert!(e[0].message.contains("outside 1 to 9"));
        }
    }

    #[test]
    fn per_line_servers_must_match_in_persistent_tls() {
        let e = err(&with("sip line1 proxy ip: other.example.com\nsip line2 registrar port: 5070\n"));
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (8, Some("sip line1 proxy ip")));
        assert!(e[0].message.contains("Persistent TLS uses one connection for every line"));
        assert_eq!(e[1].line, 9);

        let l = ok(&with(
            "sip line1 proxy ip: PROXY.example.com\nsip line2 proxy port: 5061\nsip line3 registrar ip: 0.0.0.0\n",
        ));
        assert!(has_warning(&l, "sip line1 proxy ip", "ignored"));
        assert!(has_warning(&l, "sip line2 proxy port", "ignored"));
        assert_eq!(l.warnings.len(), 2);

        let l = ok(&with("sips persistent tls: 0\nsip line1 proxy ip: other.example.com\n"));
        assert!(has_warning(&l, "sip line1 proxy ip", "ignored"));
    }

    #[test]
    fn servers_ports_and_unset_addresses() {
        let l = ok(&with(
            "sip backup proxy ip: backup.example.com\nsip registrar ip: 0.0.0.0\nsip registrar port: 5061\n\
             sip backup registrar ip: reg2.example.com\nsip backup registrar port: 0\n",
        ));
        assert_eq!(l.config.backup_proxy, Some(ServerAddr::new("backup.example.com", 0)));
        assert_eq!(l.config.registrar, None);
        assert_eq!(l.config.backup_registrar, Some(ServerAddr::new("reg2.example.com", 0)));
        assert_eq!(l.config.backup_registrar.as_ref().map(ServerAddr::effective_port), Some(5061));
        assert!(has_warning(&l, "sip registrar port", "a port without `sip registrar ip`"));
        let e = err(&with("sip proxy port: 65536\n"));
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (8, Some("sip proxy port")));
        assert!(e[0].message.contains("accepted: 0 to 65535"));
    }

    #[test]
    fn dns_query_type_and_servers_are_read_checked_and_written_back() {
        let l = ok(&with("sip dns query type: 2\nsip persistent tls dns servers: 127.0.0.1:5353, ::1 [::1]:54\n"));
        assert_eq!(l.config.dns_query_type, DnsQueryType::NaptrSrvAndA);
        let servers: Vec<String> = l.config.dns_servers.iter().map(ToString::to_string).collect();
        assert_eq!(servers, ["127.0.0.1:5353", "[::1]:53", "[::1]:54"]);
        let again = ok(&render_effective(&l.config, &l.line_numbers)
            .replace("sip line1 password: ********", "sip line1 password: pw"));
        assert_eq!(
            (again.config.dns_query_type, &again.config.dns_servers),
            (l.config.dns_query_type, &l.config.dns_servers)
        );
        assert_eq!(ok(&with("")).config.dns_query_type, DnsQueryType::SrvAndA);

        let e = err(&with("sip dns query type: 3\n"));
        assert_eq!(e[0].parameter.as_deref(), Some("sip dns query type"));
        assert!(e[0].message.contains("accepted: 0 to 2"), "{}", e[0].message);
        let e = err(&with("sip persistent tls dns servers: 127.0.0.1, dns.example.com\n"));
        assert_eq!(e[0].parameter.as_deref(), Some("sip persistent tls dns servers"));
        assert!(e[0].message.contains("`dns.example.com` is not an IP address"), "{}", e[0].message);
        let e = err(&with("sip persistent tls dns servers: 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4\n"));
        assert!(e[0].message.contains("at most 3"), "{}", e[0].message);
    }

    #[test]
    fn a_proxy_name_dns_cannot_carry_is_an_error_naming_it() {
        let e = err(&with("sip backup proxy ip: bad..example.com\n"));
        assert!(
            e.iter().any(|e| e.parameter.as_deref() == Some("sip backup proxy ip")
                && e.message.contains("`bad..example.com` is neither an IP address nor a host name")),
            "{e:#?}"
        );
    }

    #[test]
    fn the_outbound_proxy_is_the_proxy_only_without_a_proxy() {
        let text = BASE.replace("sip proxy ip: proxy.example.com\nsip proxy port: 5061\n", "")
            + "sip outbound proxy: obp.example.com\nsip outbound proxy port: 5071\n\
               sip backup outbound proxy: obp2.example.com\n";
        let l = ok(&text);
        assert_eq!(l.config.proxy, Some(ServerAddr::new("obp.example.com", 5071)));
        assert_eq!(l.config.backup_proxy, Some(ServerAddr::new("obp2.example.com", 0)));
        assert!(has_warning(&l, "sip outbound proxy", "used as the proxy"));

        let l = ok(&with("sip outbound proxy: obp.example.com\n"));
        assert_eq!(l.config.proxy, Some(ServerAddr::new("proxy.example.com", 5061)));
        assert!(has_warning(&l, "sip outbound proxy", "not used"));
    }

    #[test]
    fn timers_map_with_their_units() {
        let l = ok(&with(
            "sip persistent tls keep alive: 0\nsip registration period: 3600\nsip registration renewal timer: 60\n\
             sip registration retry timer: 30\nsip registration timeout retry timer: 45\nsip transaction timer: 8000\n\
             sip send sips over tls: 0\nsip outbound support: 1\n",
        ));
        let c = &l.config;
        assert_eq!(c.keepalive_interval, Duration::ZERO);
        assert_eq!(c.effective_keepalive(None), Duration::from_secs(120));
        assert_eq!((c.registration_period, c.registration_renewal), (3600, 60));
        assert_eq!((c.registration_retry, c.registration_timeout_retry), (30, 45));
        assert_eq!(c.transaction_timeout, Duration::from_millis(8000));
        assert!(!c.sips_scheme && c.outbound);
        assert_eq!(ok(&with("sip persistent tls keep alive: 25\n")).config.keepalive_interval, Duration::from_secs(25));
    }

    #[test]
    fn a_short_timeout_retry_is_raised_to_thirty_with_a_warning() {
        let l = ok(&with("sip registration timeout retry timer: 10\n"));
        assert_eq!(l.config.registration_timeout_retry, 30);
        assert!(has_warning(&l, "sip registration timeout retry timer", "30 s is used"));
    }

    #[test]
    fn bad_numbers_and_ranges_name_file_line_parameter_and_range() {
        let cases = [
            ("sip registration retry timer: 10", "accepted: 30 to 1800 s", "out of range"),
            ("sip registration retry timer: 2000", "accepted: 30 to 1800 s", "out of range"),
            ("sip transaction timer: 3999", "accepted: 4000 to 64000 ms", "out of range"),
            ("sip transaction timer: 4s", "accepted: 4000 to 64000 ms", "not a number"),
            ("sip registration period: -1", "accepted: 0 to 2147483647 s", "not a number"),
            ("sip registration period: 2147483648", "accepted: 0 to 2147483647 s", "out of range"),
            ("sip persistent tls keep alive: 99999999999999999999999", "accepted: 0 to 86400 s", "out of range"),
            ("sip persistent tls pong timeout: 0", "accepted: 1 to 3600 s", "out of range"),
            ("sip persistent tls failback probes: 256", "accepted: 1 to 255", "out of range"),
            ("sip persistent tls call queue: 300", "accepted: 0 to 255", "out of range"),
            ("sip line2 registration period: x", "accepted: 0 to 2147483647 s", "not a number"),
            ("sips persistent tls: yes", "accepted: 0 or 1", "not a boolean"),
            ("sip outbound support: 2", "accepted: 0 or 1", "not a boolean"),
            ("sip persistent tls seed: 0xZZ", "0x", "not a seed"),
            ("sip persistent tls instance id: uuid:1234", "urn:", "must start"),
        ];
        for (line, range, what) in cases {
            let text = with(&format!("sip line2 user name: 1002\n{line}\n"));
            let e = err(&text);
            assert_eq!(e.len(), 1, "{line}: {e:#?}");
            let name = line.split(':').next().unwrap_or_default();
            assert_eq!((e[0].file.as_str(), e[0].line, e[0].parameter.as_deref()), ("mac.cfg", 9, Some(name)));
            assert!(e[0].message.contains(range) && e[0].message.contains(what), "{line}: {}", e[0]);
        }
    }

    #[test]
    fn extensions_map_onto_the_config() {
        let l = ok(&with(
            "sip persistent tls pong timeout: 5\nsip persistent tls connect timeout: 3000\n\
             sip persistent tls reconnect base: 500\nsip persistent tls reconnect max: 60\n\
             sip persistent tls failback interval: 45\nsip persistent tls failback probes: 2\n\
             sip persistent tls call queue: 0\nsip persistent tls call timeout: 20\n\
             sip persistent tls seed: 0xDEADbeef\nsip persistent tls instance id: urn:uuid:00000000-0000-1000-8000-00085D1A2B3C\n",
        ));
        let c = &l.config;
        assert_eq!(c.pong_timeout, Duration::from_secs(5));
        assert_eq!(c.connect_timeout, Duration::from_millis(3000));
        assert_eq!(c.backoff, Backoff { base: Duration::from_millis(500), max: Duration::from_secs(60) });
        assert_eq!(c.failback, Failback { probe_interval: Duration::from_secs(45), stable_probes: 2 });
        assert_eq!((c.call_queue_limit, c.call_setup_timeout), (0, Duration::from_secs(20)));
        assert_eq!(c.seed, Seed::from(0xdead_beef));
        assert!(l.seed_configured);
        assert_eq!(c.instance_id.as_deref(), Some("urn:uuid:00000000-0000-1000-8000-00085D1A2B3C"));
        assert_eq!(ok(&with("sip persistent tls seed: 42\n")).config.seed, Seed::from(42));
    }

    #[test]
    fn a_full_seed_is_64_hex_digits() {
        let full = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8 % 16) * 0x11;
        }
        let seed = |text: &str| ok(&with(&format!("sip persistent tls seed: {text}\n"))).config.seed;
        assert_eq!(seed(full), Seed::from_bytes(bytes));
        assert_eq!(seed(&format!("0x{full}")), Seed::from_bytes(bytes));
        // Fewer digits after 0x are a smaller number: the same seed as the decimal.
        assert_eq!(seed("0x0000000000000000000000000000000000000000000000000000000000000007"), Seed::from(7));
        assert_eq!(seed("0x7"), Seed::from(7));
        assert_eq!(render_seed(Seed::from_bytes(bytes)), full.to_lowercase());
        assert_eq!(render_seed(Seed::from(0x5eed)), "0x5eed");
        let too_long = format!("0x{full}0");
        for bad in [&full[1..], &format!("{full}0"), too_long.as_str(), "0x", "1f", "-1"] {
            let e = err(&with(&format!("sip persistent tls seed: {bad}\n")));
            assert!(e.len() == 1 && e[0].message.contains("64 hex digits"), "{bad}: {e:#?}");
        }
    }

    #[test]
    fn a_reconnect_cap_below_the_base_is_reported_on_the_cap() {
        let e = err(&with("sip persistent tls reconnect base: 10000\nsip persistent tls reconnect max: 5\n"));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].line, e[0].parameter.as_deref()), (9, Some("sip persistent tls reconnect max")));
    }

    #[test]
    fn the_same_parameter_twice_in_one_file_warns() {
        let l = ok(&with("sip proxy port: 5062\n"));
        assert_eq!(l.config.proxy, Some(ServerAddr::new("proxy.example.com", 5062)));
        assert!(has_warning(&l, "sip proxy port", "line 4 is overridden"));
    }

    #[test]
    fn every_error_is_returned_at_once() {
        let e = err("sip transport protocol: 1\nnonsense\nsip transaction timer: 1\nsip line12 user name: x\n");
        let lines: Vec<_> = e.iter().map(|d| d.line).collect();
        assert_eq!(lines, [2, 4, 1, 3, 0, 0, 0]);
    }

    #[test]
    fn no_sources_gives_errors_not_a_panic() {
        let e = load(&[]).err().unwrap_or_default();
        assert!(!e.is_empty());
        assert!(e.iter().all(|d| d.line == 0));
    }

    #[test]
    fn diagnostics_display_as_file_line_parameter_message() {
        let d = Diagnostic {
            file: "mac.cfg".into(),
            line: 3,
            parameter: Some("sip proxy ip".into()),
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "mac.cfg:3: sip proxy ip: bad");
    }

    #[test]
    fn the_documented_example_loads() {
        let doc = include_str!("../../docs/configuration.md");
        let example = doc.split("## 10. Complete example").nth(1).unwrap_or_default();
        let blocks: Vec<&str> = example.split("```").skip(1).step_by(2).collect();
        assert_eq!(blocks.len(), 2);
        let sources =
            [Source { name: "aastra.cfg", text: blocks[0] }, Source { name: "00085D1A2B3C.cfg", text: blocks[1] }];
        let l = load(&sources).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(l.line_numbers, [1, 2]);
        assert_eq!(l.config.accounts[0].password, "s3cr#t");
        assert_eq!(l.config.seed, Seed::from(0x5eed));
        assert_eq!(l.config.backup_proxy, Some(ServerAddr::new("sip2.example.com", 5061)));
        assert_eq!(l.config.dns_query_type, DnsQueryType::SrvAndA);
        assert!(l.warnings.is_empty(), "{:#?}", l.warnings);
    }

    #[test]
    fn a_leading_bang_locks_a_parameter_and_is_not_part_of_its_name() {
        let l = ok(&with("!sip registration period: 600\n ! admin password: 4321\n"));
        assert_eq!(l.config.registration_period, 600);
        assert_eq!(l.admin_password.as_deref(), Some("4321"));
        let locked: Vec<&str> = l.locked.iter().map(String::as_str).collect();
        assert_eq!(locked, ["admin password", "sip registration period"]);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert!(ok(&with("")).locked.is_empty());
    }

    #[test]
    fn an_admin_password_must_be_printable_and_digits_are_what_aastra_takes() {
        let e = err(&with("admin password: two words\n"));
        assert!(e.iter().any(|d| d.parameter.as_deref() == Some("admin password")), "{e:?}");
        let l = ok(&with("admin password: s3cret\n"));
        assert_eq!(l.admin_password.as_deref(), Some("s3cret"));
        assert!(l.warnings.iter().any(|w| w.message.contains("digits only")), "{:?}", l.warnings);
    }

    #[test]
    fn render_effective_masks_passwords_and_round_trips() {
        let l = ok(&with(
            "sip line4 user name: 1004\nsip line4 auth name: a4\nsip line4 password: p#4 word\n\
             sip line4 display name: Desk 4\nsip line4 registration period: 300\n\
             sip backup proxy ip: b.example.com\nsip backup proxy port: 5062\nsip registrar ip: example.com\n\
             sips local certificate: me.pem\nsips private key: me.key\nsip persistent tls seed: 7\n\
             sip persistent tls instance id: urn:uuid:1\nsip persistent tls keep alive: 30\n",
        ));
        let rendered = render_effective(&l.config, &l.line_numbers);
        assert!(!rendered.contains("secret") && !rendered.contains("p#4"));
        assert!(rendered.contains("sip line1 password: ********\n"));
        assert!(rendered.contains("sip line4 password: ********\n"));
        assert!(rendered.contains("sip transport protocol: 4\n"));
        let again = ok(&unmask_passwords(&rendered, &l.config, &l.line_numbers));
        assert_eq!(again.config, l.config);
        assert_eq!(again.line_numbers, l.line_numbers);
        assert_eq!(again.warnings, []);
    }

    #[test]
    fn render_effective_survives_odd_line_numbers_and_values() {
        let mut c = ok(BASE).config;
        c.accounts = (0..11).map(|i| AccountConfig::new(&format!("u{i}"), "")).collect();
        c.accounts[0].display_name = " x # y".into();
        let text = render_effective(&c, &[3, 3, 0, 200]);
        assert!(text.contains("sip line3 user name: u0\n"));
        assert!(text.contains("sip line1 user name: u1\n"));
        assert!(text.contains("cannot be written: only 9 lines"));
        assert!(text.contains("# note: the value of `sip line3 display name`"));
        assert!(text.contains("sip line1 password:\n"));
        c.accounts.truncate(1);
        c.accounts[0].display_name = "x\nsip proxy ip: elsewhere".into();
        let text = render_effective(&c, &[1]);
        assert!(text.contains("sip line1 display name: x sip proxy ip: elsewhere\n"));
        assert!(!text.contains("\nsip proxy ip: elsewhere"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::config::CertificateFiles;
    use proptest::collection::{btree_map, vec};
    use proptest::option;
    use proptest::prelude::*;
    use proptest::sample::select;
    use proptest::test_runner::FileFailurePersistence;

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
            ..Default::default()
        }
    }

    const VALID: &str = "sip proxy ip: p.example.com\nsips trusted certificates: ca.pem\nsip line1 user name: 1\n";

    /// Parameter names: known ones (some with line numbers out of range) and noise.
    fn name() -> impl Strategy<Value = String> {
        let line_suffixes: Vec<&str> =
            AUTH_SET.iter().chain(LINE_SERVER).chain(LINE_UNUSED).chain(&["registration period"]).copied().collect();
        prop_oneof![
            select(GLOBAL_USED).prop_map(str::to_owned),
            select(GLOBAL_UNUSED).prop_map(str::to_owned),
            (0u32..12, select(line_suffixes)).prop_map(|(n, s)| format!("sip line{n} {s}")),
            "[ -~]{0,20}",
            "\\PC{0,12}",
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{0,6}",
            "0x[0-9a-fA-F]{0,18}",
            "(0x)?[0-9a-fA-F]{63,65}",
            "[01]",
            "[ -~]{0,16}",
            "\\PC{0,8}",
            Just("0.0.0.0".to_owned())
        ]
    }

    /// One line of a file: mostly `name: value` with optional comments, sometimes noise.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (name(), "[ \t]{0,2}", value(), option::of("[ \t]{1,2}#[ -~]{0,8}"))
                .prop_map(|(n, sp, v, c)| format!("{n}:{sp}{v}{}", c.unwrap_or_default())),
            1 => "#[ -~]{0,10}",
            1 => "[ -~]{0,30}",
            1 => ".{0,30}",
        ]
    }

    fn file() -> impl Strategy<Value = String> {
        (any::<bool>(), vec(line(), 0..25), prop_oneof![Just("\n"), Just("\r\n"), Just("\r")])
            .prop_map(|(valid, lines, eol)| format!("{}{}", if valid { VALID } else { "" }, lines.join(eol)))
    }

    fn server() -> impl Strategy<Value = ServerAddr> {
        ("[a-z]([a-z0-9-]{0,9}[a-z0-9])?(\\.[a-z]{2,5}){0,2}", 1u16..=65535).prop_map(|(h, p)| ServerAddr::new(h, p))
    }

    fn account() -> impl Strategy<Value = AccountConfig> {
        (
            "[a-z0-9]{1,8}",
            "[a-z0-9]{0,8}",
            "[!-~]{0,12}",
            "([A-Za-z0-9][A-Za-z0-9#]{0,3}( [A-Za-z0-9][A-Za-z0-9#]{0,3}){0,2})?",
            option::of(0u32..=2_147_483_647),
        )
            .prop_map(|(user_name, auth_name, password, display_name, registration_period)| AccountConfig {
                user_name,
                auth_name,
                password,
                display_name,
                registration_period,
            })
    }

    /// Small numbers, and full 32-byte seeds.
    fn seed() -> impl Strategy<Value = Seed> {
        prop_oneof![any::<u64>().prop_map(Seed::from), any::<[u8; 32]>().prop_map(Seed::from)]
    }

    fn valid_config() -> impl Strategy<Value = (Config, Vec<u8>)> {
        let servers = (any::<bool>(), server(), option::of(server()), option::of(server()), option::of(server()));
        let timers = (
            0u64..=86_400,
            1u64..=3600,
            any::<u32>().prop_map(|v| v % 2_147_483_648),
            any::<u32>().prop_map(|v| v % 2_147_483_648),
            30u32..=1800,
            30u32..=2_147_483_647,
            4000u64..=64_000,
            1u64..=600_000,
        );
        let misc = (
            any::<bool>(),
            any::<bool>(),
            option::of("urn:uuid:[0-9a-f]{8}"),
            option::of("[a-z]{1,8}\\.pem"),
            any::<bool>(),
            option::of("[a-z]{1,8}\\.pem"),
        );
        let extensions = (1u64..=60_000, 60u64..=86_400, 1u64..=86_400, 1u8..=255, any::<u8>(), 1u64..=3600, seed());
        (servers, btree_map(1u8..=9, account(), 1..=9), timers, misc, extensions).prop_map(
            |((persistent, proxy, backup_proxy, registrar, backup_registrar), accounts, t, m, e)| {
                let mode = if persistent { TransportMode::PersistentTls } else { TransportMode::PerCallTls };
                let (sips_scheme, outbound, instance_id, root, mutual, trusted) = m;
                let trusted = trusted.or(Some("ca.pem".to_owned()));
                let config = Config {
                    mode,
                    proxy: Some(proxy),
                    backup_proxy,
                    registrar,
                    backup_registrar,
                    accounts: accounts.values().cloned().collect(),
                    keepalive_interval: Duration::from_secs(t.0),
                    pong_timeout: Duration::from_secs(t.1),
                    registration_period: t.2,
                    registration_renewal: t.3,
                    registration_retry: t.4,
                    registration_timeout_retry: t.5,
                    transaction_timeout: Duration::from_millis(t.6),
                    connect_timeout: Duration::from_millis(t.7),
                    sips_scheme,
                    outbound,
                    instance_id,
                    certificates: CertificateFiles {
                        root_and_intermediate: root,
                        local_certificate: mutual.then(|| "me.pem".to_owned()),
                        private_key: mutual.then(|| "me.key".to_owned()),
                        trusted_certificates: trusted,
                        revocation_list: (!mutual).then(|| "crl.pem".to_owned()),
                    },
                    backoff: Backoff { base: Duration::from_millis(e.0), max: Duration::from_secs(e.1) },
                    failback: Failback { probe_interval: Duration::from_secs(e.2), stable_probes: e.3 },
                    call_queue_limit: e.4,
                    call_setup_timeout: Duration::from_secs(e.5),
                    seed: e.6,
                    // Limits with no Aastra parameter keep their defaults through a file.
                    ..Config::default()
                };
                (config, accounts.keys().copied().collect())
            },
        )
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_text_loads_or_fails_without_panicking_and_within_the_file(files in vec(file(), 1..=3)) {
            let names = ["aastra.cfg", "6737i.cfg", "mac.cfg"];
            let sources: Vec<Source<'_>> =
                files.iter().zip(names).map(|(text, name)| Source { name, text }).collect();
            let (diagnostics, loaded) = match load(&sources) {
                Ok(l) => (l.warnings.clone(), Some(l)),
                Err(e) => (e, None),
            };
            for d in &diagnostics {
                let source = sources.iter().find(|s| s.name == d.file);
                prop_assert!(source.is_some(), "unknown file in {}", d);
                let lines = source.map_or(0, |s| s.text.lines().count());
                prop_assert!(d.line <= lines, "{} is past the end ({} lines)", d, lines);
                prop_assert!(!d.to_string().is_empty());
            }
            if let Some(l) = loaded {
                prop_assert_eq!(l.line_numbers.len(), l.config.accounts.len());
                let rendered = render_effective(&l.config, &l.line_numbers);
                let text = unmask_passwords(&rendered, &l.config, &l.line_numbers);
                let again = load(&[Source { name: "effective.cfg", text: &text }]);
                prop_assert!(again.is_ok(), "{:?}\n{}", again, text);
                if let Ok(again) = again {
                    prop_assert_eq!(again.config, l.config);
                    prop_assert_eq!(again.line_numbers, l.line_numbers);
                }
            }
        }

        #[test]
        fn render_effective_round_trips_valid_configs((config, lines) in valid_config()) {
            prop_assert_eq!(config.validate(), Ok(()));
            let rendered = render_effective(&config, &lines);
            for a in &config.accounts {
                if !a.password.is_empty() {
                    let shown = rendered.contains(&format!("password: {}\n", a.password));
                    prop_assert!(!shown, "password of {} shown", a.user_name);
                }
            }
            let text = unmask_passwords(&rendered, &config, &lines);
            let loaded = load(&[Source { name: "effective.cfg", text: &text }]);
            prop_assert!(loaded.is_ok(), "{:?}\n{}", loaded, text);
            if let Ok(loaded) = loaded {
                prop_assert_eq!(&loaded.config, &config);
                prop_assert_eq!(&loaded.line_numbers, &lines);
                prop_assert_eq!(loaded.seed_configured, !config.seed.is_zero());
            }
        }
    }
}
