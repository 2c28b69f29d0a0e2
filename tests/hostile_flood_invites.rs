//! Item a: the server floods the phone with INVITEs, each a new dialog, as fast as the
//! socket takes them.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod hostile;

#[test]
fn child_phone() {
    hostile::child_main();
}

#[test]
fn a_invite_flood() {
    hostile::flood::flood("a_invite_flood", hostile::Action::FloodInvites);
}
