//! Building the SIP messages the core sends: addresses, Via, Contact, requests and
//! responses, in the scheme `sip send sips over tls` selects.

use super::Core;
use crate::config::Config;
use crate::ids::{AccountId, ConnId, Server};
use crate::sip::Message;
use crate::sip::headers::{NameAddr, Via};
use core::net::SocketAddr;

/// Methods we accept in dialogs and say so in Allow.
pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";
pub(super) const USER_AGENT: &str = concat!("sip-ptls/", env!("CARGO_PKG_VERSION"));

/// `sips` or `sip`, as `sip send sips over tls` says.
pub(super) fn scheme(config: &Config) -> &'static str {
    if config.sips_scheme { "sips" } else { "sip" }
}

/// The domain of addresses of record and REGISTER Request-URIs while on `server`.
pub(super) fn domain(config: &Config, server: Server) -> String {
    let addr = match server {
        Server::Primary => config.registrar.as_ref().or(config.proxy.as_ref()),
        Server::Backup => {
            config.backup_registrar.as_ref().or(config.registrar.as_ref()).or(config.backup_proxy.as_ref())
        }
    };
    addr.map(|a| a.host.clone()).unwrap_or_default()
}

/// The account's address of record on `server`.
pub(super) fn aor(config: &Config, account: AccountId, server: Server) -> String {
    let user = config.accounts.get(usize::from(account.0)).map(|a| a.user_name.as_str()).unwrap_or("");
    format!("{}:{}@{}", scheme(config), user, domain(config, server))
}

/// Where the account can be reached on this connection. With `sip:` the TLS transport is
/// stated explicitly, since a bare `sip:` Contact would default to UDP.
pub(super) fn contact_uri(config: &Config, account: AccountId, local: SocketAddr) -> String {
    let user = config.accounts.get(usize::from(account.0)).map(|a| a.user_name.as_str()).unwrap_or("");
    if config.sips_scheme { format!("sips:{user}@{local}") } else { format!("sip:{user}@{local};transport=tls") }
}

/// The Via we put on every request: TLS whatever the URI scheme.
pub(super) fn via(local: SocketAddr, branch: &str) -> String {
    format!("SIP/2.0/TLS {local};branch={branch};rport")
}

/// The `From`/`To` value for an address with an optional display name and tag.
///
/// The display name is a quoted-string with `"` and `\` written as quoted-pairs
/// (RFC 3261 §25.1), so a name such as `Al "Big" Smith` arrives as configured.
/// Control characters cannot be carried; `Config::validate` refuses them.
pub(super) fn name_addr(display: &str, uri: &str, tag: Option<&str>) -> String {
    let mut s = if display.is_empty() {
        format!("<{uri}>")
    } else {
        let mut quoted = String::with_capacity(display.len() + uri.len() + 6);
        quoted.push('"');
        for c in display.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push_str("\" <");
        quoted.push_str(uri);
        quoted.push('>');
        quoted
    };
    if let Some(t) = tag {
        s.push_str(";tag=");
        s.push_str(t);
    }
    s
}

/// The branch of the top Via of a message.
pub(super) fn top_branch(msg: &Message) -> Option<String> {
    Via::parse(msg.top_via()?)?.branch().map(str::to_owned)
}

/// The tag of a From or To header.
pub(super) fn tag_of(msg: &Message, header: &str) -> Option<String> {
    NameAddr::parse(msg.header(header)?)?.tag().map(str::to_owned)
}

/// A response to `req` that copies what RFC 3261 §8.2.6 says to copy, adding our To tag.
pub(super) fn response_to(req: &Message, status: u16, reason: &str, to_tag: Option<&str>) -> Message {
    let mut resp = Message::response(status, reason);
    for h in &req.headers {
        let n = h.name.to_ascii_lowercase();
        if n == "via" || n == "v" {
            resp.push_header("Via", h.value.clone());
        }
    }
    if let Some(from) = req.header("From") {
        resp.push_header("From", from);
    }
    if let Some(to) = req.header("To") {
        let has_tag = NameAddr::parse(to).is_some_and(|n| n.tag().is_some());
        match to_tag {
            Some(t) if !has_tag => resp.push_header("To", format!("{to};tag={t}")),
            _ => resp.push_header("To", to),
        }
    }
    if let Some(cid) = req.call_id() {
        resp.push_header("Call-ID", cid);
    }
    if let Some(cseq) = req.header("CSeq") {
        resp.push_header("CSeq", cseq);
    }
    // A response that creates a dialog carries the route set back (RFC 3261 §12.1.1).
    if req.method() == Some("INVITE") && (101..300).contains(&status) {
        for rr in req.header_all("Record-Route") {
            resp.push_header("Record-Route", rr);
        }
    }
    resp.push_header("Server", USER_AGENT);
    resp
}

impl Core {
    /// The local address of an up connection (the unspecified address otherwise, which
    /// never happens for a connection the core transmits on).
    pub(super) fn local_of(&self, conn: ConnId) -> SocketAddr {
        self.conn(conn)
            .and_then(|c| c.local)
            .unwrap_or(SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0))
    }

    /// A new branch for a new transaction.
    pub(super) fn new_branch(&mut self) -> String {
        format!("z9hG4bK{}", self.rng.hex(16))
    }

    /// A new tag or Call-ID.
    pub(super) fn new_token(&mut self) -> String {
        self.rng.hex(16)
    }

    /// A request with the headers every request we originate carries.
    pub(super) fn base_request(&mut self, method: &str, uri: &str, conn: ConnId) -> (Message, String) {
        let branch = self.new_branch();
        let local = self.local_of(conn);
        let mut m = Message::request(method, uri);
        m.push_header("Via", via(local, &branch));
        m.push_header("Max-Forwards", "70");
        (m, branch)
    }

    /// Sends a response on the connection the request came from.
    pub(super) fn respond(&mut self, conn: ConnId, req: &Message, status: u16, reason: &str) {
        let resp = response_to(req, status, reason, None);
        self.send(conn, &resp);
    }
}
