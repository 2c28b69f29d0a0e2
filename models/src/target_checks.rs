//! The checks of the primary's targets (`Bounds::targets`, `sites.rs`): where each
//! connection attempt goes, the one-connection invariant restated for racing attempts,
//! every target tried before the primary fails, and the flow staying where it came up.
//! Called from the model's output and event handlers as the core's outputs come out.

use crate::model::{Mode, PtlsModel, State, reach, viol};
use crate::sites::{self, BACKUP, T2};
use sip_ptls::ids::{ConnId, Server};
use sip_ptls::{ConnPurpose, FlowState};
use std::net::SocketAddr;

impl PtlsModel {
    /// The site of a connection the core asked for at `addr`. An address the zone never
    /// gave is a violation (counted as a skipped target: the core went somewhere it was
    /// not sent); the connection is then kept as the backup's, so the run can go on to
    /// report it.
    pub(crate) fn dial_site(&self, s: &mut State, addr: SocketAddr) -> usize {
        sites::site_of(addr).unwrap_or_else(|| {
            s.ghost.viol |= viol::TARGET_SKIPPED;
            BACKUP
        })
    }

    /// A new attempt for `purpose` to `site`, checked before it joins the network:
    /// - a second persistent connection may only be an attempt racing the first, to the
    ///   same target, while none of them is up (the one-connection invariant, restated
    ///   for Happy Eyeballs in `docs/architecture.md`);
    /// - while the flow is up on an address of the primary, no other address of the
    ///   primary is dialed (stickiness);
    /// - a round of attempts to the primary starts at its best target's first address.
    pub(crate) fn check_dial(&self, s: &mut State, conn: ConnId, site: usize, purpose: Option<ConnPurpose>) {
        if purpose == Some(ConnPurpose::Flow) {
            let rival_bad = s
                .net
                .iter()
                .filter(|c| c.purpose == Some(ConnPurpose::Flow))
                .any(|c| c.up || c.id.server != conn.server || sites::target_of(c.site) != sites::target_of(site));
            if rival_bad {
                s.ghost.viol |= viol::TWO_FLOWS;
            }
        }
        if sites::server_of(site) != Server::Primary {
            return;
        }
        let flow_site =
            s.net.iter().find(|c| c.up && c.purpose == Some(ConnPurpose::Flow) && c.id.server == Server::Primary);
        if s.core.flow_state() == (FlowState::Up { server: Server::Primary })
            && flow_site.is_some_and(|c| c.site != site)
        {
            s.ghost.viol |= viol::NOT_STICKY;
        }
        if !self.bounds.targets {
            return;
        }
        let first = sites::primary_first_site(true);
        if site == first {
            s.ghost.round = 1 << site;
        } else if s.ghost.round == 0 {
            s.ghost.viol |= viol::TARGET_SKIPPED;
        } else {
            s.ghost.round |= 1 << site;
        }
    }

    /// Checked after each drain: more than one persistent connection is only allowed as
    /// attempts racing for one target, none of them up.
    pub(crate) fn check_flows(&self, s: &mut State) {
        let flows: Vec<(ConnId, bool)> =
            s.core.connections().filter(|(_, p, _)| *p == ConnPurpose::Flow).map(|(id, _, up)| (id, up)).collect();
        if flows.len() < 2 {
            return;
        }
        let target = |id: ConnId| s.net.iter().find(|c| c.id == id).map(|c| (id.server, sites::target_of(c.site)));
        let first = target(flows[0].0);
        if flows.iter().any(|(id, up)| *up || target(*id) != first) {
            s.ghost.viol |= viol::TWO_FLOWS;
        }
    }

    /// The core closes `conn`: a persistent connection on the primary that is up, whose
    /// address answers and has lost nothing, is only left for a shutdown.
    pub(crate) fn check_close(&self, s: &mut State, conn: ConnId) {
        let Some(c) = s.net.iter().find(|c| c.id == conn) else { return };
        let healthy = c.up
            && c.purpose == Some(ConnPurpose::Flow)
            && conn.server == Server::Primary
            && s.modes[c.site] == Mode::Up
            && !c.unanswered
            && c.queue.is_empty()
            && c.finals.iter().all(|f| f.is_some_and(|st| (200..300).contains(&st)));
        if healthy && !self.shutting_down(s) {
            s.ghost.viol |= viol::NOT_STICKY;
        }
    }

    /// The primary failed (`ConnectFailed`, for the flow or a probe): every one of its
    /// addresses was dialed since the round began at the first, whether an address
    /// refused, timed out, or took the connection and then answered nothing (such an
    /// address is left for the next one too, `docs/dns.md`). The next round must begin
    /// at the first address again.
    pub(crate) fn primary_failed(&self, s: &mut State) {
        if !self.bounds.targets {
            return;
        }
        if s.ghost.round != sites::primary_sites(true) {
            s.ghost.viol |= viol::TARGET_SKIPPED;
        }
        s.ghost.round = 0;
    }

    /// The flow came up on the primary: reaching the second target is a goal of the
    /// exploration.
    pub(crate) fn flow_up(&self, s: &mut State, up_on_primary: bool) {
        if !self.bounds.targets {
            return;
        }
        let on_t2 = s.net.iter().any(|c| c.up && c.purpose == Some(ConnPurpose::Flow) && c.site == T2);
        if up_on_primary && on_t2 {
            s.ghost.reached |= reach::SECOND_TARGET;
        }
    }
}
