//! Tests of the timer table's getter for the shutdown deadline, which mutation testing
//! found unchecked (docs/mutation-testing.md, `timer.rs`): the core itself only asks the
//! table for its earliest deadline, so nothing in a scenario reads one timer by name.

use crate::engine::Timer;
use crate::engine::timer::TimerTable;
use crate::time::Instant;

#[test]
fn the_shutdown_deadline_is_read_back_while_armed() {
    let mut t = TimerTable::default();
    assert_eq!(t.get(Timer::Shutdown), None);
    assert!(!t.is_armed(Timer::Shutdown));
    t.set(Timer::Shutdown, Instant::from_millis(5));
    assert_eq!(t.get(Timer::Shutdown), Some(Instant::from_millis(5)), "armed at 5 ms");
    assert!(t.is_armed(Timer::Shutdown));
    t.set(Timer::Shutdown, Instant::from_millis(7));
    assert_eq!(t.get(Timer::Shutdown), Some(Instant::from_millis(7)), "re-armed at 7 ms");
    t.stop(Timer::Shutdown);
    assert_eq!(t.get(Timer::Shutdown), None, "disarmed");
}
