//! Tests of `on_reactor::block_on`: which thread polls, hand-overs, outputs and panics.

use super::{INLINE_POLLS, block_on};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The name of the thread that polls, each time a future is polled.
fn poller_names(log: &Arc<Mutex<Vec<String>>>) {
    let name = std::thread::current().name().unwrap_or("").to_owned();
    log.lock().unwrap().push(name);
}

#[test]
fn a_future_woken_by_a_timer_is_polled_on_the_reactor_thread() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let out = std::thread::Builder::new()
        .name("owner".into())
        .spawn(move || {
            block_on(async move {
                poller_names(&seen);
                async_io::Timer::after(Duration::from_millis(20)).await;
                poller_names(&seen);
                async_io::Timer::after(Duration::from_millis(20)).await;
                poller_names(&seen);
                7
            })
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(out, 7);
    assert_eq!(*log.lock().unwrap(), ["owner", "async-io", "async-io"]);
}

#[test]
fn a_future_woken_from_another_thread_is_polled_on_its_owner() {
    let (tx, rx) = async_channel::bounded::<u32>(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let owner = std::thread::Builder::new()
        .name("owner".into())
        .spawn(move || {
            block_on(async move {
                poller_names(&seen);
                let got = rx.recv().await.unwrap_or(0);
                poller_names(&seen);
                got
            })
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    tx.send_blocking(5).unwrap();
    assert_eq!(owner.join().unwrap(), 5);
    assert_eq!(*log.lock().unwrap(), ["owner", "owner"]);
}

/// Wakes itself on every poll, `left` times, and counts the polls per thread.
struct Restless {
    left: u32,
    on_reactor: Arc<Mutex<u32>>,
    elsewhere: Arc<Mutex<u32>>,
}

impl Future for Restless {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let count = match std::thread::current().name() == Some("async-io") {
            true => &self.on_reactor,
            false => &self.elsewhere,
        };
        *count.lock().unwrap() += 1;
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_busy_future_leaves_the_reactor_thread_after_its_budget() {
    let on_reactor = Arc::new(Mutex::new(0));
    let elsewhere = Arc::new(Mutex::new(0));
    let (a, b) = (on_reactor.clone(), elsewhere.clone());
    block_on(async move {
        // Woken by the reactor once, then busy for a hundred polls.
        async_io::Timer::after(Duration::from_millis(10)).await;
        Restless { left: 100, on_reactor: a, elsewhere: b }.await;
    });
    assert_eq!(*on_reactor.lock().unwrap(), INLINE_POLLS);
    assert_eq!(*elsewhere.lock().unwrap(), 101 - INLINE_POLLS);
}

#[test]
fn a_panic_inside_the_future_comes_out_of_block_on() {
    let caught = std::thread::spawn(|| {
        block_on(async {
            async_io::Timer::after(Duration::from_millis(5)).await;
            panic!("planted");
        })
    })
    .join();
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"planted"));
}

#[test]
fn a_future_ready_at_once_never_sleeps() {
    assert_eq!(block_on(async { 3 }), 3);
}
