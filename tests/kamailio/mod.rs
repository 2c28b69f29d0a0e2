//! Test support for running the phone against Kamailio over TLS on loopback: generated
//! certificates ([`pki`]), the Kamailio configuration ([`config`]), running instances with
//! fault injection ([`instance`]), `kamcmd` output parsing ([`kamcmd`]), a raw SIP
//! client ([`client`]) and baresip as a far end ([`baresip`]).
//!
//! Every test binary that includes this module uses a different part of it, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

pub mod baresip;
pub mod client;
pub mod config;
pub mod instance;
pub mod kamcmd;
pub mod phone;
pub mod pki;
#[path = "../common/test_phone.rs"]
pub mod test_phone;
#[path = "../common/trace_check.rs"]
pub mod trace_check;
#[path = "../common/watchdog.rs"]
pub mod watchdog;

use sip_ptls::registrar::{Keep, TestDir};
use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the machine for one scenario: the timing bounds assume that no other Kamailio
/// scenario competes for the two cores. Poisoning by a failed test is ignored.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh temporary directory for one test, `$TMPDIR/sip-ptls-kamailio-<test>-<pid>-<n>`:
/// kept when the test fails, or always with `SIP_PTLS_KEEP_KAMAILIO` set, so that its
/// configurations and logs can be inspected.
pub fn temp_dir(test: &str) -> TestDir {
    let keep = if std::env::var_os("SIP_PTLS_KEEP_KAMAILIO").is_some() { Keep::Always } else { Keep::OnPanic };
    TestDir::new(&format!("kamailio-{test}")).expect("create temp dir").keep(keep)
}
