//! Scenario tests of the lifetime a registrar's 2xx grants, which mutation testing found
//! unchecked (docs/mutation-testing.md, `registration.rs`): among several Contacts (other
//! devices' bindings with their own lifetimes) ours is the one whose URI equals our
//! Contact, compared case-insensitively and ignoring URI parameters, and its `expires`
//! wins over the Expires header; a 2xx that names no lifetime at all grants the period
//! asked for, or the default 3600 s when the period is 0 (the registrar chooses).

use crate::engine::Event;
use crate::ids::{AccountId, Server};
use crate::sim::Sim;
use crate::time::Duration;

use super::super::tests_support::{assert_clean, cfg, secs};

/// Starts a one-line phone asking for `period` seconds and runs it until its first
/// REGISTER is on the way; returns it with the Contact URI that REGISTER carried.
fn first_register_sent(period: u32) -> (Sim, String) {
    let mut c = cfg(1);
    c.registration_period = period;
    let mut sim = Sim::new(c);
    sim.start();
    let deadline = sim.now + secs(5);
    while sim.sent_requests("REGISTER").is_empty() {
        sim.run_for(Duration::from_millis(1));
        assert!(sim.now < deadline, "no REGISTER went out");
    }
    let (_, _, m) = &sim.sent_requests("REGISTER")[0];
    let contact = m.header("Contact").expect("a Contact");
    let uri = contact.split_once('<').and_then(|(_, r)| r.split_once('>')).map(|(u, _)| u.to_owned());
    (sim, uri.expect("a Contact in angle brackets"))
}

/// The lifetimes of every `Registered` event.
fn registered_expires(sim: &Sim) -> Vec<u32> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Registered { account: AccountId(0), expires, .. } => Some(*expires),
            _ => None,
        })
        .collect()
}

/// Makes the primary answer every REGISTER, from the one in flight on, `200` with `headers`.
fn answer_200_with(sim: &mut Sim, headers: Vec<(String, String)>) {
    let b = &mut sim.server(Server::Primary).behaviour;
    b.register_status = Some(200);
    b.register_headers = headers;
}

#[test]
fn of_several_contacts_ours_is_found_case_insensitively_ignoring_uri_parameters() {
    let (mut sim, ours) = first_register_sent(0);
    assert!(ours.starts_with("sips:1001@"), "our Contact: {ours}");
    let port = ours.rsplit(':').next().unwrap();
    answer_200_with(
        &mut sim,
        vec![
            ("Contact".into(), "<sips:1001@10.9.9.9:5061>;expires=60".into()),
            ("Contact".into(), format!("<{};ob;transport=tls>;expires=1800", ours.to_ascii_uppercase())),
            ("Contact".into(), format!("<sips:1002@127.0.0.1:{port}>;expires=90")),
            ("Expires".into(), "900".into()),
        ],
    );
    sim.run_for(secs(1));
    assert_eq!(
        registered_expires(&sim),
        [1800],
        "the lifetime of our own Contact, not another device's, nor the Expires header"
    );
    assert_clean(&sim);
}

#[test]
fn of_several_contacts_none_ours_the_expires_header_counts() {
    let (mut sim, _) = first_register_sent(0);
    answer_200_with(
        &mut sim,
        vec![
            ("Contact".into(), "<sips:1001@10.9.9.9:5061>;expires=60".into()),
            ("Contact".into(), "<sips:1001@10.9.9.8:5061>;expires=90".into()),
            ("Expires".into(), "900".into()),
        ],
    );
    sim.run_for(secs(1));
    assert_eq!(registered_expires(&sim), [900], "other devices' lifetimes are not ours");
    assert_clean(&sim);
}

#[test]
fn a_2xx_naming_no_lifetime_grants_the_default_when_the_registrar_chooses() {
    let (mut sim, _) = first_register_sent(0);
    answer_200_with(&mut sim, Vec::new());
    sim.run_for(secs(1));
    assert_eq!(registered_expires(&sim), [3600], "period 0: the default 3600 s, not 0");
    assert_clean(&sim);
}

#[test]
fn a_2xx_naming_no_lifetime_grants_the_period_asked_for() {
    for period in [1, 600] {
        let (mut sim, _) = first_register_sent(period);
        answer_200_with(&mut sim, Vec::new());
        sim.run_for(Duration::from_millis(500));
        assert_eq!(registered_expires(&sim).first(), Some(&period), "the period asked for, {period} s");
    }
}
