//! Moving an established call onto a new persistent connection. When the flow comes up
//! again (failover, failback, recovery) and the call's account is registered on it, each
//! call that lost its connection is refreshed there with a re-INVITE carrying the session
//! description the call already has and a Contact of the new connection (RFC 3261 §14,
//! a target refresh). A re-INVITE rather than UPDATE: every user agent must take a
//! re-INVITE, while UPDATE (RFC 3311) is optional and absent from common far ends
//! (baresip's Allow has none). In-dialog requests follow the dialog's route set, so the
//! move works when the route names something the new proxy answers for (a shared
//! record-route name); a route set whose first hop is the lost connection's own address
//! cannot work, and such a call is ended at once with a reason. See docs/architecture.md,
//! "Calls across a failover".

use super::{Call, State};
use crate::engine::io::{EndReason, Event};
use crate::engine::message::{ALLOW, USER_AGENT, contact_uri};
use crate::engine::timer::Timer;
use crate::engine::transaction::ClientTx;
use crate::engine::{Core, bugs::Bug};
use crate::ids::ConnId;
use crate::sip::Message;
use crate::sip::headers::{NameAddr, uri_host_port};
use crate::time::Duration;
use core::net::SocketAddr;

/// Whether a dialog's route set can only lead to the connection that was lost: its first
/// hop is that connection's own address (as a proxy's plain `record_route()` or an
/// outbound flow token names it). A name, or another address, may still be answered by
/// the new proxy.
pub(super) fn route_leads_only_to(route_set: &[String], lost: Option<SocketAddr>) -> bool {
    let Some(lost) = lost else { return false };
    let Some(first) = route_set.first() else { return false };
    let Some(uri) = NameAddr::parse(first).map(|n| n.uri) else { return false };
    let Some(host_port) = uri_host_port(&uri) else { return false };
    match host_port.parse::<SocketAddr>() {
        Ok(addr) => addr == lost,
        // No port: the address alone, at the SIPS default port the lost connection used.
        Err(_) => host_port.trim_matches(['[', ']']).parse().is_ok_and(|ip: core::net::IpAddr| ip == lost.ip()),
    }
}

impl Call {
    /// The call lost its connection while established (or moving): it waits for the
    /// next one. Where the lost one went stays in `lost_addr` for the route check.
    pub(super) fn orphaned(&mut self) {
        self.conn = None;
        self.state = State::Established;
    }
}

impl Core {
    /// Starts the move of call `i` (established, without a connection) onto the flow
    /// `conn`, where its account is registered; or ends it when its route set leads only
    /// to the connection it lost.
    pub(super) fn move_dialog(&mut self, i: usize, conn: ConnId) {
        let call = self.calls[i].id;
        if route_leads_only_to(&self.calls[i].route_set, self.calls[i].lost_addr) {
            self.emit(Event::CallEnded { call, reason: EndReason::RouteLost });
            // Nothing of the dialog reaches the far end through this route any more; the
            // BYE is sent anyway, in case the new proxy knows better.
            self.start_bye(i);
            return;
        }
        if self.planted(Bug::NoDialogMove) {
            return;
        }
        self.calls[i].conn = Some(conn);
        self.calls[i].move_challenged = false;
        self.send_reinvite(i, conn);
    }

    /// The re-INVITE of a move: the dialog's URI, route set, tags and next CSeq, a Contact
    /// of `conn`, and the session description the call already has (unchanged, so the
    /// far end keeps the media as it is).
    fn send_reinvite(&mut self, i: usize, conn: ConnId) {
        let account = self.calls[i].account;
        let mut contact = format!("<{}", contact_uri(&self.config, account, self.local_of(conn)));
        if self.config.outbound {
            contact.push_str(";ob");
        }
        contact.push('>');
        let (mut m, branch, uri) = self.in_dialog_request(i, "INVITE", conn);
        let c = &mut self.calls[i];
        m.push_header("Contact", contact);
        m.push_header("Allow", ALLOW);
        m.push_header("User-Agent", USER_AGENT);
        let body = c.body.clone();
        c.move_uri = uri.clone();
        // The credentials the account's INVITEs already carry (a proxy may challenge a
        // request inside a dialog too, and the phone never sends an INVITE without them
        // once it has them).
        if let Some((value, proxy)) = self.invite_credentials(i, &uri) {
            m.push_header(if proxy { "Proxy-Authorization" } else { "Authorization" }, value);
        }
        if !body.is_empty() {
            m.set_body("application/sdp", body);
        }
        let c = &mut self.calls[i];
        c.invite_via = m.top_via().unwrap_or_default().to_owned();
        let cseq = c.cseq;
        let id = c.id;
        self.send(conn, &m);
        self.calls[i].state = State::Moving { tx: Some(ClientTx { branch, conn, cseq }) };
        self.timers.set(Timer::Call(id), self.now + self.config.transaction_timeout);
    }

    /// A final or provisional answer to the move's re-INVITE on `conn`.
    pub(super) fn move_response(&mut self, i: usize, conn: ConnId, msg: &Message, status: u16) {
        let call = self.calls[i].id;
        if status < 200 {
            return;
        }
        if status < 300 {
            // The far end now reaches the call through the new connection.
            if let Some(target) = msg.header("Contact").and_then(NameAddr::parse).map(|n| n.uri) {
                self.calls[i].remote_target = Some(target);
            }
            self.send_ack(i, conn, msg, true);
            self.calls[i].state = State::Established;
            self.calls[i].lost_addr = None;
            self.timers.stop(Timer::Call(call));
            self.emit(Event::CallMoved { call, server: conn.server });
            return;
        }
        self.send_move_ack(i, conn, msg);
        if (status == 401 || status == 407) && !self.calls[i].move_challenged {
            // The new proxy (or the far end) asks for credentials of its own: answered once,
            // as the call's first INVITE was, in a new transaction with the next CSeq.
            if self.keep_challenge(i, msg, status) {
                self.calls[i].move_challenged = true;
                self.send_reinvite(i, conn);
                return;
            }
        }
        if status == 491 {
            // Glare (RFC 3261 §14.1): try again after a random wait, 2.1 to 4 s when the
            // phone placed the call (it owns the Call-ID), else up to 2 s.
            let wait_ms =
                if self.calls[i].outgoing { self.rng.between(2_100, 4_000) } else { self.rng.between(0, 2_000) };
            self.calls[i].state = State::Moving { tx: None };
            self.timers.set(Timer::Call(call), self.now + Duration::from_millis(wait_ms));
            return;
        }
        self.emit(Event::CallEnded { call, reason: EndReason::MoveRefused { status } });
        // 481 and 408 end the dialog itself (RFC 5057); any other refusal leaves a dialog
        // the far end still holds, which the BYE ends.
        if status == 481 || status == 408 {
            self.remove_call(i);
        } else {
            self.send_bye(i, conn);
        }
    }

    /// The ACK of a non-2xx answer to the move's re-INVITE: part of that transaction, so
    /// its Via and Request-URI.
    fn send_move_ack(&mut self, i: usize, conn: ConnId, resp: &Message) {
        let c = &self.calls[i];
        let mut m = Message::request("ACK", &c.move_uri);
        m.push_header("Via", c.invite_via.clone());
        m.push_header("Max-Forwards", "70");
        for r in &c.route_set {
            m.push_header("Route", r.clone());
        }
        m.push_header("From", c.local_uri.clone());
        m.push_header("To", resp.header("To").unwrap_or(&c.remote_uri).to_owned());
        m.push_header("Call-ID", c.call_id.clone());
        m.push_header("CSeq", format!("{} ACK", c.cseq));
        self.send(conn, &m);
    }

    /// The call's timer fired while it was moving: the re-INVITE got no final answer (the
    /// call ends), or the wait after a glare is over (the move is tried again if the flow
    /// still carries the account, else the call waits as an orphan again).
    pub(super) fn move_timer(&mut self, i: usize, waiting: bool) {
        let call = self.calls[i].id;
        if !waiting {
            self.emit(Event::CallEnded { call, reason: EndReason::MoveTimedOut });
            self.remove_call(i);
            return;
        }
        let account = self.calls[i].account;
        match self.calls[i].conn.filter(|c| Some(*c) == self.flow_up_conn() && self.account_registered_on(account, *c))
        {
            Some(conn) => self.send_reinvite(i, conn),
            None => {
                self.calls[i].orphaned();
                self.timers.set(Timer::Call(call), self.now + self.config.orphaned_call_timeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::route_leads_only_to;

    #[test]
    fn a_route_through_the_lost_address_is_recognised_and_a_name_is_not() {
        let lost = Some("127.0.0.1:5061".parse().unwrap());
        let r = |s: &str| vec![s.to_owned()];
        assert!(route_leads_only_to(&r("<sip:127.0.0.1:5061;transport=tls;lr>"), lost));
        assert!(route_leads_only_to(&r("<sip:AbCd@127.0.0.1:5061;transport=tls;lr;ob>"), lost));
        assert!(route_leads_only_to(&r("<sip:127.0.0.1;transport=tls;lr>"), lost));
        assert!(!route_leads_only_to(&r("<sip:example.test;transport=tls;lr>"), lost));
        assert!(!route_leads_only_to(&r("<sip:127.0.0.2:5061;transport=tls;lr>"), lost));
        assert!(!route_leads_only_to(&[], lost));
        assert!(!route_leads_only_to(&r("<sip:127.0.0.1:5061;lr>"), None));
    }
}
