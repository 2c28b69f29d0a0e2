//! Test support for running the phone against Kamailio over TLS on loopback: generated
//! certificates ([`pki`]), the Kamailio configuration ([`config`]), running instances with
//! fault injection ([`instance`]), `kamcmd` output parsing ([`kamcmd`]) and a raw SIP
//! client ([`client`]).
//!
//! Every test binary that includes this module uses a different part of it, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

pub mod client;
pub mod config;
pub mod instance;
pub mod kamcmd;
pub mod phone;
pub mod pki;
#[path = "../common/test_phone.rs"]
pub mod test_phone;
#[path = "../common/watchdog.rs"]
pub mod watchdog;

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the machine for one scenario: the timing bounds assume that no other Kamailio
/// scenario competes for the two cores. Poisoning by a failed test is ignored.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh temporary directory for one test (removed when dropped unless
/// `SIP_PTLS_KEEP_KAMAILIO` is set, so a failing run can be inspected).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/sip-ptls-kamailio-<test>-<pid>-<n>`.
    pub fn new(test: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sip-ptls-kamailio-{test}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SIP_PTLS_KEEP_KAMAILIO").is_none() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
