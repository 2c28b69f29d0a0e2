//! Item g: the server sends OPTIONS requests to the phone as fast as the socket takes
//! them.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod hostile;

#[test]
fn child_phone() {
    hostile::child_main();
}

#[test]
fn g_options_flood() {
    hostile::flood::flood("g_options_flood", hostile::Action::FloodOptions);
}
