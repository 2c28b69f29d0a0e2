//! Runs a phone's future on the thread that is already awake: whoever drives async-io's
//! reactor when a socket or a timer wakes the future, and the calling thread otherwise.
//!
//! An idle phone wakes for its own deadlines and for the server's pongs and nothing
//! else. With a plain `block_on` every such event costs two wakeups: async-io's reactor
//! thread (named `async-io`) leaves `epoll_wait`, then wakes the phone's thread to poll
//! the future. [`block_on`] lets the reactor thread poll the future itself when the waker
//! is called there, so the event costs one. A wake from any other thread (a command from
//! the application) hands the future over to the calling thread of [`block_on`], which
//! sleeps until then. After [`INLINE_POLLS`] polls in a row on the reactor thread, the
//! future is handed over too, so that a busy phone cannot keep the reactor from other
//! sockets. The future is the same whichever thread polls it; nothing here decides
//! anything for the phone (docs/benchmarks.md, "Idle cost").

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// The name async-io gives the thread that drives its reactor.
const REACTOR_THREAD: &str = "async-io";

/// Polls in a row on the reactor thread before the future goes to its own thread.
pub const INLINE_POLLS: u32 = 16;

/// Who may poll the future now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nobody: it waits for a wake.
    Idle,
    /// Woken off the reactor thread: the owner thread polls it.
    Handed,
    /// Being polled.
    Polling,
    /// Woken while being polled: poll it once more.
    PollAgain,
    /// Finished (or panicked); never polled again.
    Done,
}

/// The future's state shared between its owner and its wakers.
struct Task<F: Future> {
    phase: Mutex<Phase>,
    /// The future until it finishes, then its output (or the panic it raised).
    slot: Mutex<Slot<F>>,
    owner: Thread,
}

enum Slot<F: Future> {
    Running(Pin<Box<F>>),
    Finished(thread::Result<F::Output>),
    Taken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside `poll` is caught before it could poison a lock that matters; a
    // poisoned lock still holds a consistent value.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F> Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// Polls until the future is pending with no wake in between, finished, or out of
    /// `budget` polls; the caller has set `Polling`.
    fn poll_while_woken(self: &Arc<Self>, mut budget: u32) {
        let waker = Waker::from(self.clone());
        loop {
            let finished = {
                let mut slot = lock(&self.slot);
                let Slot::Running(future) = &mut *slot else { return };
                let mut cx = Context::from_waker(&waker);
                match panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
                    Ok(Poll::Pending) => false,
                    Ok(Poll::Ready(output)) => {
                        *slot = Slot::Finished(Ok(output));
                        true
                    }
                    Err(payload) => {
                        *slot = Slot::Finished(Err(payload));
                        true
                    }
                }
            };
            let mut phase = lock(&self.phase);
            if finished {
                *phase = Phase::Done;
                drop(phase);
                self.owner.unpark();
                return;
            }
            match *phase {
                Phase::PollAgain => {
                    budget = budget.saturating_sub(1);
                    if budget == 0 {
                        *phase = Phase::Handed;
                        drop(phase);
                        self.owner.unpark();
                        return;
                    }
                    *phase = Phase::Polling;
                }
                _ => {
                    *phase = Phase::Idle;
                    return;
                }
            }
        }
    }
}

impl<F> Wake for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut phase = lock(&self.phase);
        match *phase {
            Phase::Idle => {
                if thread::current().name() == Some(REACTOR_THREAD) {
                    *phase = Phase::Polling;
                    drop(phase);
                    self.poll_while_woken(INLINE_POLLS);
                } else {
                    *phase = Phase::Handed;
                    drop(phase);
                    self.owner.unpark();
                }
            }
            Phase::Polling => *phase = Phase::PollAgain,
            Phase::Handed | Phase::PollAgain | Phase::Done => {}
        }
    }
}

/// Runs `future` to its end and returns its output, polling it on async-io's reactor
/// thread when that thread wakes it and on the calling thread otherwise. A panic inside
/// the future comes out of this call.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = Arc::new(Task {
        phase: Mutex::new(Phase::Polling),
        slot: Mutex::new(Slot::Running(Box::pin(future))),
        owner: thread::current(),
    });
    task.poll_while_woken(u32::MAX);
    loop {
        let mut phase = lock(&task.phase);
        match *phase {
            Phase::Done => break,
            Phase::Handed => {
                *phase = Phase::Polling;
                drop(phase);
                task.poll_while_woken(u32::MAX);
            }
            Phase::Idle | Phase::Polling | Phase::PollAgain => {
                drop(phase);
                thread::park();
            }
        }
    }
    let finished = std::mem::replace(&mut *lock(&task.slot), Slot::Taken);
    match finished {
        Slot::Finished(Ok(output)) => output,
        Slot::Finished(Err(payload)) => panic::resume_unwind(payload),
        // `Done` is set only after the slot holds the output.
        Slot::Running(_) | Slot::Taken => unreachable!("a finished task holds its output"),
    }
}

#[cfg(test)]
#[path = "on_reactor_tests.rs"]
mod tests;
