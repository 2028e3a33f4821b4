//! Cancel safety across real processes: futures dropped by a 300 µs timeout,
//! thousands of times, lose nothing.
#![cfg(feature = "async")]

mod common;

use std::time::Duration;

use ringshm::{Queue, Semaphore};

const N: u64 = 20_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// An uneven pace: bursts, short pauses, pauses longer than the
/// receiver's timeout, and the odd long one.
fn pause(i: u64) {
    if i % 397 == 0 {
        std::thread::sleep(Duration::from_millis(3));
    } else if i % 10 == 0 {
        // Longer than the timeout (tokio's timer ticks in 1 ms).
        std::thread::sleep(Duration::from_micros(2_000));
    } else if i % 3 == 0 {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The receiver loops on `timeout(300 µs, q.get_async())` while another
/// process puts 20,000 items at an uneven pace: every item arrives exactly
/// once, in order, although many futures were dropped mid-wait.
#[test]
fn queue_get_async_under_timeouts() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let q = Queue::<u64>::open(&common::args()[0]).unwrap();
        for i in 0..N {
            pause(i);
            q.put(i).unwrap();
        }
        return;
    }
    let _wd = common::watchdog(180);
    let name = common::unique("acancel-q");
    let q = Queue::<u64>::create(&name, 16).unwrap();
    let child = common::spawn("queue_get_async_under_timeouts", "producer", &[&name]);
    let (got, dropped) = rt().block_on(async {
        let (mut next, mut dropped) = (0u64, 0u64);
        while next < N {
            match tokio::time::timeout(Duration::from_micros(300), q.get_async()).await {
                Ok(v) => {
                    assert_eq!(v.unwrap(), next, "item lost, duplicated or out of order");
                    next += 1;
                }
                Err(_) => dropped += 1,
            }
        }
        (next, dropped)
    });
    assert_eq!(got, N);
    assert!(dropped > 1000, "only {dropped} futures were cancelled: the test proved little");
    assert!(q.try_get().is_err(), "an item was left over");
    eprintln!("{dropped} get_async futures dropped mid-wait");
    common::expect_success(child, 60);
}

/// The same with `acquire_async`: another process takes and returns permits
/// while we acquire under a 300 µs timeout; no permit leaks or appears.
#[test]
fn semaphore_acquire_async_under_timeouts() {
    const PERMITS: usize = 2;
    const ROUNDS: u64 = 3_000;
    if let Some(role) = common::role() {
        assert_eq!(role, "churn");
        let s = Semaphore::open(&common::args()[0]).unwrap();
        for i in 0..ROUNDS {
            s.acquire();
            s.acquire();
            pause(i);
            s.release();
            s.release();
        }
        return;
    }
    let _wd = common::watchdog(180);
    let name = common::unique("acancel-s");
    let s = Semaphore::create(&name, PERMITS).unwrap();
    let mut child = common::spawn("semaphore_acquire_async_under_timeouts", "churn", &[&name]);
    let (taken, dropped) = rt().block_on(async {
        let (mut taken, mut dropped) = (0u64, 0u64);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                assert!(st.success(), "churn child failed: {st:?}");
                break;
            }
            match tokio::time::timeout(Duration::from_micros(300), s.acquire_async()).await {
                Ok(()) => {
                    taken += 1;
                    s.release();
                }
                Err(_) => dropped += 1,
            }
        }
        (taken, dropped)
    });
    assert_eq!(s.value(), PERMITS, "permits leaked or created by dropped futures");
    assert_eq!(s.held_by_this_process(), 0);
    assert!(taken > 0 && dropped > 0, "taken {taken}, dropped {dropped}: the test proved nothing");
    eprintln!("{taken} permits taken, {dropped} acquire_async futures dropped mid-wait");
}
