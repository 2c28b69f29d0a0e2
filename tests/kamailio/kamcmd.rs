//! Parsers for what `kamcmd` prints: the registration table (`ul.dump`) and the
//! connection lists (`core.tcp_list`, `tls.list`). Kamailio prints nested structures as
//! indented `key: value` lines and `{`/`}`; only the fields the tests assert on are kept.

use std::collections::BTreeMap;

/// One contact of the registration table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// The address of record (user part, usrloc without domains).
    pub aor: String,
    /// The Contact URI as registered.
    pub address: String,
    /// Where the REGISTER came from (`received_avp`), e.g. `sip:127.0.0.1:40000;transport=tls`.
    pub received: String,
    /// Seconds left.
    pub expires: String,
    /// `+sip.instance`, or `[not set]`.
    pub instance: String,
    /// RFC 5626 reg-id (0 when none).
    pub reg_id: u32,
    /// Kamailio's id of the connection the binding is tied to.
    pub tcpconn_id: i64,
    /// The listening socket, e.g. `tls:127.0.0.1:5061`.
    pub socket: String,
}

impl Binding {
    /// The source port recorded from `Received` (the phone's side of its connection).
    pub fn received_port(&self) -> Option<u16> {
        self.received.split(';').next()?.rsplit(':').next()?.parse().ok()
    }
}

/// One TCP/TLS connection Kamailio holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpConn {
    /// Kamailio's connection id.
    pub id: i64,
    /// The remote (phone) address.
    pub src_ip: String,
    /// The remote (phone) port.
    pub src_port: u16,
    /// The local (Kamailio) port.
    pub dst_port: u16,
    /// Every field as printed.
    pub fields: BTreeMap<String, String>,
}

fn key_value(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.trim().split_once(':')?;
    Some((k.trim(), v.trim()))
}

/// Parses `kamcmd ul.dump`.
pub fn parse_ul_dump(text: &str) -> Vec<Binding> {
    let mut out = Vec::new();
    let mut aor = String::new();
    let mut current: Option<Binding> = None;
    for line in text.lines() {
        let t = line.trim();
        if t == "Contact: {" {
            current = Some(Binding { aor: aor.clone(), ..Binding::default() });
            continue;
        }
        if t == "}" {
            if let Some(b) = current.take() {
                out.push(b);
            }
            continue;
        }
        let Some((k, v)) = key_value(t) else { continue };
        match (&mut current, k) {
            (None, "AoR") => aor = v.to_owned(),
            (Some(b), "Address") => b.address = v.to_owned(),
            (Some(b), "Received") => b.received = v.to_owned(),
            (Some(b), "Expires") => b.expires = v.to_owned(),
            (Some(b), "Instance") => b.instance = v.to_owned(),
            (Some(b), "Reg-Id") => b.reg_id = v.parse().unwrap_or(0),
            (Some(b), "Tcpconn-Id") => b.tcpconn_id = v.parse().unwrap_or(-1),
            (Some(b), "Socket") => b.socket = v.to_owned(),
            _ => {}
        }
    }
    out
}

/// Parses `kamcmd core.tcp_list` or `kamcmd tls.list`: one `{ ... }` block per connection.
pub fn parse_tcp_list(text: &str) -> Vec<TcpConn> {
    let mut out = Vec::new();
    let mut fields: Option<BTreeMap<String, String>> = None;
    for line in text.lines() {
        let t = line.trim();
        if t == "{" {
            fields = Some(BTreeMap::new());
        } else if t == "}" {
            if let Some(f) = fields.take() {
                let get = |k: &str| f.get(k).cloned().unwrap_or_default();
                out.push(TcpConn {
                    id: get("id").parse().unwrap_or(-1),
                    src_ip: get("src_ip"),
                    src_port: get("src_port").parse().unwrap_or(0),
                    dst_port: get("dst_port").parse().unwrap_or(0),
                    fields: f,
                });
            }
        } else if let (Some(f), Some((k, v))) = (fields.as_mut(), key_value(t)) {
            f.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    // Named through `super::`: a glob import is unused where this file is compiled
    // without the test harness (the call-move benchmark includes it).
    #[test]
    fn parses_a_binding_and_a_connection() {
        let ul = "{\n\tDomains: {\n\t\tDomain: {\n\t\t\tAoRs: {\n\t\t\t\tInfo: {\n\t\t\t\t\tAoR: alice\n\
                  \t\t\t\t\tContacts: {\n\t\t\t\t\t\tContact: {\n\t\t\t\t\t\t\tAddress: sips:alice@127.0.0.1:55100\n\
                  \t\t\t\t\t\t\tReceived: sip:127.0.0.1:55100;transport=tls\n\t\t\t\t\t\t\tReg-Id: 1\n\
                  \t\t\t\t\t\t\tTcpconn-Id: 7\n\t\t\t\t\t\t}\n\t\t\t\t\t}\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}\n";
        let b = super::parse_ul_dump(ul);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].aor, "alice");
        assert_eq!(b[0].received_port(), Some(55100));
        assert_eq!((b[0].reg_id, b[0].tcpconn_id), (1, 7));
        let tcp = "{\n\tid: 1\n\ttype: TLS\n\tsrc_ip: 127.0.0.1\n\tsrc_port: 55100\n\tdst_port: 34687\n}\n";
        let c = super::parse_tcp_list(tcp);
        assert_eq!((c[0].id, c[0].src_port, c[0].dst_port), (1, 55100, 34687));
        assert_eq!(c[0].fields.get("type").map(String::as_str), Some("TLS"));
    }
}
