//! The phone's clock: the monotonic OS clock, read as milliseconds since the phone
//! started, which is the core's time.

use crate::time::Instant;

/// Converts between `std::time::Instant` and the core's [`Instant`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Clock {
        Clock { origin: std::time::Instant::now() }
    }

    /// The current time for the core.
    pub fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The OS instant of a core deadline (`None` if it is too far to represent).
    pub fn deadline(&self, t: Instant) -> Option<std::time::Instant> {
        self.origin.checked_add(std::time::Duration::from_millis(t.as_millis()))
    }
}
