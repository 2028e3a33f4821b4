//! `Condition::wait_async` across real processes: a ping-pong with a
//! blocking peer, and a future dropped after it was notified passing the
//! notification on.
#![cfg(feature = "async")]

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use ringshm::{Condition, Event, Value};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn ping_pong_with_a_blocking_peer() {
    const ROUNDS: u64 = 200;
    if let Some(role) = common::role() {
        assert_eq!(role, "odd");
        let a = common::args();
        let (cv, turn) = (Condition::open(&a[0]).unwrap(), Value::<u64>::open(&a[1]).unwrap());
        let mut g = cv.lock().unwrap();
        while turn.load() < 2 * ROUNDS {
            while turn.load() % 2 == 0 {
                g = cv.wait(g).unwrap();
            }
            turn.store(turn.load() + 1);
            cv.notify_all();
        }
        return;
    }
    let _wd = common::watchdog(120);
    let (cn, vn) = (common::unique("acv"), common::unique("acv-turn"));
    let cv = Condition::create(&cn).unwrap();
    let turn = Value::<u64>::create(&vn, 0).unwrap();
    let child = common::spawn("ping_pong_with_a_blocking_peer", "odd", &[&cn, &vn]);
    rt().block_on(async {
        let mut g = cv.lock_async().await.unwrap();
        for _ in 0..ROUNDS {
            // Our turn: even values.
            turn.store(turn.load() + 1);
            cv.notify_all();
            while turn.load() % 2 == 1 {
                g = cv.wait_async(g).await.unwrap();
            }
        }
        drop(g);
    });
    assert_eq!(turn.load(), 2 * ROUNDS);
    common::expect_success(child, 60);
}

#[test]
fn dropped_waiter_passes_its_notification_on() {
    if let Some(role) = common::role() {
        assert_eq!(role, "waiter");
        let a = common::args();
        let cv = Condition::open(&a[0]).unwrap();
        let g = cv.lock().unwrap();
        Event::open(&a[1]).unwrap().set();
        let (_g, r) = cv.wait_timeout(g, Duration::from_secs(20)).unwrap();
        assert!(!r.timed_out(), "the notification was lost");
        return;
    }
    let _wd = common::watchdog(60);
    let (cn, en) = (common::unique("acv-drop"), common::unique("acv-drop-ev"));
    let cv = Condition::create(&cn).unwrap();
    let ev = Event::create(&en).unwrap();
    let child = common::spawn("dropped_waiter_passes_its_notification_on", "waiter", &[&cn, &en]);
    rt().block_on(async {
        ev.wait_async().await;
        // The child registered before it released the lock inside `wait`.
        let g = cv.lock_async().await.unwrap();
        let mut fut = pin!(cv.wait_async(g));
        // One poll: registered as a second waiter, lock released.
        std::future::poll_fn(|cx| {
            assert!(fut.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        // One notification for two waiters; if it picked us, dropping our
        // future must hand it to the child.
        cv.notify(1);
    });
    common::expect_success(child, 40);
}
