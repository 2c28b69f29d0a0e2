//! The queue of events from the driver to the application, bounded whether or not the
//! application reads it.
//!
//! Two kinds of events share one queue, in the order they happened:
//!
//! - **Outcomes** ([`is_outcome`]: a call's outcome or end, an incoming call, a
//!   registration result, the end of the shutdown) are never dropped. When
//!   [`OUTCOME_CAPACITY`] of them wait unread, the driver stops taking reports from its
//!   connections (the readers stop reading their sockets) until the application takes one;
//!   timers and commands go on, so while it waits only timers and commands can add
//!   outcomes, at most a few per call and per account, which the core bounds.
//! - **Informational** events (flow changes, connect failures, back-off, call progress…):
//!   at most [`INFORMATIONAL_CAPACITY`] wait; one more drops the oldest waiting
//!   informational event and counts it (`Status::dropped_events`).

use super::command::PhoneEvent;
use crate::engine::Event;
use async_channel::{Receiver, Sender};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Informational events that may wait unread; beyond it the oldest is dropped.
pub const INFORMATIONAL_CAPACITY: usize = 256;

/// Outcome events waiting unread at which the driver stops reading its connections.
pub const OUTCOME_CAPACITY: usize = 1024;

/// Whether an event carries an outcome the application must see (never dropped).
pub fn is_outcome(event: &Event) -> bool {
    matches!(
        event,
        Event::CallOutcome { .. }
            | Event::CallEnded { .. }
            | Event::CallMoved { .. }
            | Event::IncomingCall { .. }
            | Event::Registered { .. }
            | Event::RegistrationFailed { .. }
            | Event::RegistrationLost { .. }
            | Event::Unregistered { .. }
            | Event::ShutdownComplete
    )
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<PhoneEvent>,
    outcomes: usize,
    dropped: u64,
    closed: bool,
}

/// The queue (shared by the driver and every clone of `Events`).
#[derive(Debug)]
pub(crate) struct EventQueue {
    inner: Mutex<Inner>,
    /// A token: "look at the queue" for a waiting reader (capacity 1).
    ready_tx: Sender<()>,
    ready_rx: Receiver<()>,
    /// A token: "outcomes went below the capacity" for the driver (capacity 1).
    room_tx: Sender<()>,
    room_rx: Receiver<()>,
}

impl Default for EventQueue {
    fn default() -> EventQueue {
        let (ready_tx, ready_rx) = async_channel::bounded(1);
        let (room_tx, room_rx) = async_channel::bounded(1);
        EventQueue { inner: Mutex::default(), ready_tx, ready_rx, room_tx, room_rx }
    }
}

impl EventQueue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an event (the driver). Never blocks.
    pub fn push(&self, e: PhoneEvent) {
        let mut inner = self.lock();
        if is_outcome(&e.event) {
            inner.outcomes += 1;
        } else if inner.queue.len() - inner.outcomes >= INFORMATIONAL_CAPACITY {
            if let Some(oldest) = inner.queue.iter().position(|e| !is_outcome(&e.event)) {
                inner.queue.remove(oldest);
            }
            inner.dropped += 1;
        }
        inner.queue.push_back(e);
        drop(inner);
        let _ = self.ready_tx.try_send(());
    }

    /// No more events will come (the driver, at its end).
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready_tx.close();
    }

    pub fn is_closed(&self) -> bool {
        let inner = self.lock();
        inner.closed && inner.queue.is_empty()
    }

    /// Informational events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Whether [`OUTCOME_CAPACITY`] outcomes wait unread.
    pub fn outcomes_full(&self) -> bool {
        self.lock().outcomes >= OUTCOME_CAPACITY
    }

    /// Waits until the application took an outcome (the driver, while
    /// [`EventQueue::outcomes_full`]).
    pub async fn room(&self) {
        let _ = self.room_rx.recv().await;
    }

    /// The next waiting event, if any.
    pub fn try_pop(&self) -> Option<PhoneEvent> {
        let mut inner = self.lock();
        let e = inner.queue.pop_front()?;
        if is_outcome(&e.event) {
            inner.outcomes -= 1;
            if inner.outcomes + 1 == OUTCOME_CAPACITY {
                let _ = self.room_tx.try_send(());
            }
        }
        let more = !inner.queue.is_empty();
        drop(inner);
        if more {
            // Another reader (a clone of `Events`) may be waiting for the token this one took.
            let _ = self.ready_tx.try_send(());
        }
        Some(e)
    }

    /// The next event, waiting for one; `None` once closed and empty.
    pub async fn pop(&self) -> Option<PhoneEvent> {
        loop {
            if let Some(e) = self.try_pop() {
                return Some(e);
            }
            if self.lock().closed {
                return None;
            }
            // An `Err` means closed meanwhile: look once more, then end.
            let _ = self.ready_rx.recv().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, CallId};
    use crate::time::Instant;

    fn at(ms: u64, event: Event) -> PhoneEvent {
        PhoneEvent { at: Instant::from_millis(ms), event }
    }

    #[test]
    fn informational_events_are_bounded_and_outcomes_are_kept_in_order() {
        let q = EventQueue::default();
        for i in 0..10_000u64 {
            q.push(at(i, Event::CallProgress { call: CallId(1), status: 180 }));
            if i % 1000 == 0 {
                q.push(at(i, Event::Unregistered { account: AccountId(0) }));
            }
        }
        q.push(at(10_000, Event::ShutdownComplete));
        q.close();
        assert_eq!(q.dropped(), 10_000 - INFORMATIONAL_CAPACITY as u64);
        let all: Vec<PhoneEvent> = std::iter::from_fn(|| q.try_pop()).collect();
        let outcomes: Vec<&PhoneEvent> = all.iter().filter(|e| is_outcome(&e.event)).collect();
        assert_eq!(outcomes.len(), 11, "every outcome kept");
        assert_eq!(all.len(), INFORMATIONAL_CAPACITY + 11);
        assert!(all.windows(2).all(|w| w[0].at <= w[1].at), "in order");
        assert_eq!(all.last().map(|e| &e.event), Some(&Event::ShutdownComplete));
        // The newest informational events are the ones kept.
        assert_eq!(all.iter().find(|e| !is_outcome(&e.event)).map(|e| e.at.as_millis()), Some(10_000 - 256));
        assert!(q.is_closed());
        assert!(futures_lite::future::block_on(q.pop()).is_none());
    }

    #[test]
    fn a_full_outcome_queue_is_reported_and_room_is_signalled() {
        let q = EventQueue::default();
        for i in 0..OUTCOME_CAPACITY as u64 {
            assert!(!q.outcomes_full());
            q.push(at(i, Event::RegistrationLost { account: AccountId(0) }));
        }
        assert!(q.outcomes_full());
        assert!(q.room_rx.try_recv().is_err());
        assert!(q.try_pop().is_some());
        assert!(!q.outcomes_full());
        assert!(q.room_rx.try_recv().is_ok(), "the driver is woken");
    }
}
