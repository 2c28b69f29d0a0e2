//! A per-test watchdog shared by the runtime and Kamailio suites: if a test is still
//! running after its limit, it runs a last clean-up and ends the whole test process, so a
//! hang fails quickly instead of stalling CI.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Ends the whole test process if the guard is still alive after its limit.
pub struct Watchdog(Arc<AtomicBool>);

/// Starts a watchdog for the test `name`; `before_abort` runs just before the exit.
pub fn watchdog_with(name: &'static str, limit: Duration, before_abort: fn()) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("watchdog: {name} still running after {limit:?}: aborting");
        before_abort();
        std::process::exit(101);
    });
    Watchdog(done)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
