//! crossbeam-channel's tests of its bounded (array) flavour
//! (`crossbeam-channel/tests/array.rs`), ported to `ringshm::mpmc`, plus a
//! cross-process version of `linearizable`.
//!
//! How they are adapted, test by test, is said at each one. Common to all:
//! - `bounded(n)` creates a named ring with a unique name (see `bounded`
//!   below); items must be `Pod`, so `()` messages are `u8` and `usize`
//!   ones `u64`.
//! - `capacity()` is a `usize`, not an `Option`.
//! - Where crossbeam orders events with `sleep` (e.g. "the sender sends
//!   after 1 s, the receiver looks after 1.5 s"), the port orders them with
//!   explicit hand-offs (`std::sync::mpsc` or `Barrier`): the machine is a
//!   loaded 2-vCPU VM, and tests here must not depend on timing.
//!
//! Not ported (nothing to test in ringshm): `drops`, `channel_through_channel`
//! and `panic_on_drop` (items are `Pod`: no destructors, no boxes),
//! `fairness`, `fairness_duplicates` and `recv_in_send` (there is no
//! `select!`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::Duration;

use ringshm::mpmc::{Receiver, Ring, Sender};
use ringshm::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// crossbeam's `bounded(cap)`: a fresh named ring and one handle per side.
fn bounded<T: bytemuck::Pod>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let ring = Ring::<T>::create(&common::unique("cb"), cap).unwrap();
    (ring.sender(), ring.receiver())
}

/// As crossbeam's (no sleeps to begin with).
#[test]
fn smoke() {
    let (s, r) = bounded(1);
    s.send(7u32).unwrap();
    assert_eq!(r.try_recv(), Ok(7));
    s.send(8).unwrap();
    assert_eq!(r.recv(), Ok(8));
    assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(r.recv_timeout(ms(100)), Err(RecvTimeoutError::Timeout));
}

/// Adapted: `capacity()` is `usize`.
#[test]
fn capacity() {
    for i in 1..10 {
        let (s, r) = bounded::<u8>(i);
        assert_eq!(s.capacity(), i);
        assert_eq!(r.capacity(), i);
    }
}

/// As crossbeam's.
#[test]
fn len_empty_full() {
    let (s, r) = bounded(2);
    assert_eq!((s.len(), s.is_empty(), s.is_full()), (0, true, false));
    assert_eq!((r.len(), r.is_empty(), r.is_full()), (0, true, false));
    s.send(0u8).unwrap();
    assert_eq!((s.len(), s.is_empty(), s.is_full()), (1, false, false));
    assert_eq!((r.len(), r.is_empty(), r.is_full()), (1, false, false));
    s.send(0).unwrap();
    assert_eq!((s.len(), s.is_empty(), s.is_full()), (2, false, true));
    assert_eq!((r.len(), r.is_empty(), r.is_full()), (2, false, true));
    r.recv().unwrap();
    assert_eq!((s.len(), s.is_empty(), s.is_full()), (1, false, false));
    assert_eq!((r.len(), r.is_empty(), r.is_full()), (1, false, false));
}

/// Adapted: hand-offs instead of sleeps.
#[test]
fn try_recv() {
    let (s, r) = bounded(100);
    let (step, go) = mpsc::channel();
    thread::scope(|sc| {
        sc.spawn(move || {
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
            step.send(()).unwrap();
            // The sender sends 7 and then drops.
            assert!(common::eventually(30, || r.len() == 1));
            assert_eq!(r.try_recv(), Ok(7));
            assert!(common::eventually(30, || r.try_recv() == Err(TryRecvError::Disconnected)));
        });
        sc.spawn(move || {
            go.recv().unwrap();
            s.send(7u32).unwrap();
        });
    });
}

/// Adapted: no sleeps (the order is fixed by the channel itself).
#[test]
fn recv() {
    let (s, r) = bounded(100);
    thread::scope(|sc| {
        sc.spawn(move || {
            assert_eq!(r.recv(), Ok(7u32));
            assert_eq!(r.recv(), Ok(8));
            assert_eq!(r.recv(), Ok(9));
            assert_eq!(r.recv(), Err(RecvError));
        });
        sc.spawn(move || {
            s.send(7).unwrap();
            s.send(8).unwrap();
            s.send(9).unwrap();
        });
    });
}

/// Adapted: the sender waits for the first timeout instead of sleeping
/// past it; the second wait is long, the sender sends promptly.
#[test]
fn recv_timeout() {
    let (s, r) = bounded::<i32>(100);
    let (step, go) = mpsc::channel();
    thread::scope(|sc| {
        sc.spawn(move || {
            assert_eq!(r.recv_timeout(ms(100)), Err(RecvTimeoutError::Timeout));
            step.send(()).unwrap();
            assert_eq!(r.recv_timeout(ms(30_000)), Ok(7));
            assert_eq!(r.recv_timeout(ms(30_000)), Err(RecvTimeoutError::Disconnected));
        });
        sc.spawn(move || {
            go.recv().unwrap();
            s.send(7).unwrap();
        });
    });
}

/// Adapted: hand-offs instead of sleeps.
#[test]
fn try_send() {
    let (s, r) = bounded(1);
    let (to_r, from_s) = mpsc::channel();
    let (to_s, from_r) = mpsc::channel();
    thread::scope(|sc| {
        sc.spawn(move || {
            assert_eq!(s.try_send(1u32), Ok(()));
            assert_eq!(s.try_send(2), Err(TrySendError::Full(2)));
            to_r.send(()).unwrap();
            from_r.recv().unwrap(); // the receiver took 1
            assert_eq!(s.try_send(3), Ok(()));
            from_r.recv().unwrap(); // the receiver is gone
            assert_eq!(s.try_send(4), Err(TrySendError::Disconnected(4)));
        });
        sc.spawn(move || {
            from_s.recv().unwrap();
            assert_eq!(r.try_recv(), Ok(1));
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
            to_s.send(()).unwrap();
            assert_eq!(r.recv(), Ok(3));
            drop(r);
            to_s.send(()).unwrap();
        });
    });
}

/// Adapted: no sleeps; the receiver stays until `10` is in the channel (in
/// crossbeam's test it lives to the end of the scope), then leaves, and the
/// sender's last send blocks until it is gone (crossbeam's test lets it
/// dangle on the full channel).
#[test]
fn send() {
    let (s, r) = bounded(1);
    let (sent_10, wait_10) = mpsc::channel();
    thread::scope(|sc| {
        sc.spawn(move || {
            s.send(7u32).unwrap();
            s.send(8).unwrap();
            s.send(9).unwrap();
            s.send(10).unwrap();
            sent_10.send(()).unwrap();
            assert_eq!(s.send(11), Err(SendError(11)));
        });
        sc.spawn(move || {
            assert_eq!(r.recv(), Ok(7));
            assert_eq!(r.recv(), Ok(8));
            assert_eq!(r.recv(), Ok(9));
            wait_10.recv().unwrap();
        });
    });
}

/// Adapted: hand-offs instead of sleeps.
#[test]
fn send_timeout() {
    let (s, r) = bounded(2);
    let (to_r, from_s) = mpsc::channel();
    let (to_s, from_r) = mpsc::channel();
    thread::scope(|sc| {
        sc.spawn(move || {
            assert_eq!(s.send_timeout(1u32, ms(1000)), Ok(()));
            assert_eq!(s.send_timeout(2, ms(1000)), Ok(()));
            assert_eq!(s.send_timeout(3, ms(100)), Err(SendTimeoutError::Timeout(3)));
            to_r.send(()).unwrap();
            from_r.recv().unwrap(); // 1 was taken
            assert_eq!(s.send_timeout(4, ms(30_000)), Ok(()));
            from_r.recv().unwrap(); // the receiver is gone
            assert_eq!(s.send(5), Err(SendError(5)));
        });
        sc.spawn(move || {
            from_s.recv().unwrap();
            assert_eq!(r.recv(), Ok(1));
            to_s.send(()).unwrap();
            assert_eq!(r.recv(), Ok(2));
            assert_eq!(r.recv(), Ok(4));
            drop(r);
            to_s.send(()).unwrap();
        });
    });
}

/// As crossbeam's.
#[test]
fn send_after_disconnect() {
    let (s, r) = bounded(100);
    s.send(1u32).unwrap();
    s.send(2).unwrap();
    s.send(3).unwrap();
    drop(r);
    assert_eq!(s.send(4), Err(SendError(4)));
    assert_eq!(s.try_send(5), Err(TrySendError::Disconnected(5)));
    assert_eq!(s.send_timeout(6, ms(500)), Err(SendTimeoutError::Disconnected(6)));
}

/// As crossbeam's.
#[test]
fn recv_after_disconnect() {
    let (s, r) = bounded(100);
    s.send(1u32).unwrap();
    s.send(2).unwrap();
    s.send(3).unwrap();
    drop(s);
    assert_eq!(r.recv(), Ok(1));
    assert_eq!(r.recv(), Ok(2));
    assert_eq!(r.recv(), Ok(3));
    assert_eq!(r.recv(), Err(RecvError));
}

/// As crossbeam's (`u64` items).
#[test]
fn len() {
    const COUNT: u64 = 25_000;
    const CAP: usize = 1000;
    let (s, r) = bounded::<u64>(CAP);
    assert_eq!(s.len(), 0);
    assert_eq!(r.len(), 0);
    for _ in 0..CAP / 10 {
        for i in 0..50 {
            s.send(i as u64).unwrap();
            assert_eq!(s.len(), i + 1);
        }
        for i in 0..50 {
            r.recv().unwrap();
            assert_eq!(r.len(), 50 - i - 1);
        }
    }
    assert_eq!(s.len(), 0);
    assert_eq!(r.len(), 0);
    for i in 0..CAP {
        s.send(i as u64).unwrap();
        assert_eq!(s.len(), i + 1);
    }
    for _ in 0..CAP {
        r.recv().unwrap();
    }
    assert_eq!(s.len(), 0);
    assert_eq!(r.len(), 0);
    thread::scope(|sc| {
        sc.spawn(|| {
            for i in 0..COUNT {
                assert_eq!(r.recv(), Ok(i));
                assert!(r.len() <= CAP);
            }
        });
        sc.spawn(|| {
            for i in 0..COUNT {
                s.send(i).unwrap();
                assert!(s.len() <= CAP);
            }
        });
    });
    assert_eq!(s.len(), 0);
    assert_eq!(r.len(), 0);
}

/// Adapted: the receiver is dropped once the sender is blocked (a hand-off
/// and a full ring instead of a 1 s sleep).
#[test]
fn disconnect_wakes_sender() {
    let (s, r) = bounded(1);
    let (step, go) = mpsc::channel();
    thread::scope(|sc| {
        sc.spawn(move || {
            assert_eq!(s.send(0u8), Ok(()));
            step.send(()).unwrap();
            assert_eq!(s.send(0), Err(SendError(0)));
        });
        sc.spawn(move || {
            go.recv().unwrap();
            drop(r);
        });
    });
}

/// Adapted: the sender is dropped without a sleep first (the receiver
/// blocks either way, or finds it gone).
#[test]
fn disconnect_wakes_receiver() {
    let (s, r) = bounded::<u8>(1);
    let barrier = Barrier::new(2);
    thread::scope(|sc| {
        sc.spawn(|| {
            barrier.wait();
            assert_eq!(r.recv(), Err(RecvError));
        });
        sc.spawn(|| {
            barrier.wait();
            drop(s);
        });
    });
}

/// As crossbeam's (`u64` items).
#[test]
fn spsc() {
    const COUNT: u64 = 100_000;
    let (s, r) = bounded(3);
    thread::scope(|sc| {
        sc.spawn(move || {
            for i in 0..COUNT {
                assert_eq!(r.recv(), Ok(i));
            }
            assert_eq!(r.recv(), Err(RecvError));
        });
        sc.spawn(move || {
            for i in 0..COUNT {
                s.send(i).unwrap();
            }
        });
    });
}

/// As crossbeam's (handles cloned per thread: ringshm's are `Sync` too,
/// but clones also exercise per-process side counting).
#[test]
fn mpmc() {
    const COUNT: usize = 25_000;
    const THREADS: usize = 4;
    let (s, r) = bounded::<u64>(3);
    let v = (0..COUNT).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>();
    thread::scope(|sc| {
        for _ in 0..THREADS {
            let r = r.clone();
            let v = &v;
            sc.spawn(move || {
                for _ in 0..COUNT {
                    let n = r.recv().unwrap();
                    v[n as usize].fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        for _ in 0..THREADS {
            let s = s.clone();
            sc.spawn(move || {
                for i in 0..COUNT {
                    s.send(i as u64).unwrap();
                }
            });
        }
    });
    for c in v {
        assert_eq!(c.load(Ordering::SeqCst), THREADS);
    }
}

/// As crossbeam's, with fewer rounds (each creates a segment).
#[test]
fn stress_oneshot() {
    const COUNT: usize = 1_000;
    for _ in 0..COUNT {
        let (s, r) = bounded(1);
        thread::scope(|sc| {
            sc.spawn(|| r.recv().unwrap());
            sc.spawn(|| s.send(0u8).unwrap());
        });
    }
}

/// As crossbeam's (`iter`/`try_iter`).
#[test]
fn stress_iter() {
    const COUNT: usize = 100_000;
    let (request_s, request_r) = bounded(1);
    let (response_s, response_r) = bounded(1);
    thread::scope(|sc| {
        sc.spawn(move || {
            let mut count = 0;
            loop {
                for x in response_r.try_iter() {
                    count += x as usize;
                    if count == COUNT {
                        return;
                    }
                }
                request_s.send(0u8).unwrap();
            }
        });
        for _ in request_r.iter() {
            if response_s.send(1u8).is_err() {
                break;
            }
        }
    });
}

/// As crossbeam's: its sleeps only shape the traffic, nothing asserts on
/// time.
#[test]
fn stress_timeout_two_threads() {
    const COUNT: u64 = 100;
    let (s, r) = bounded(2);
    thread::scope(|sc| {
        sc.spawn(|| {
            for i in 0..COUNT {
                if i % 2 == 0 {
                    thread::sleep(ms(50));
                }
                while s.send_timeout(i, ms(10)).is_err() {}
            }
        });
        sc.spawn(|| {
            for i in 0..COUNT {
                if i % 2 == 0 {
                    thread::sleep(ms(50));
                }
                loop {
                    if let Ok(x) = r.recv_timeout(ms(10)) {
                        assert_eq!(x, i);
                        break;
                    }
                }
            }
        });
    });
}

/// As crossbeam's: four threads each `send` then `try_recv().unwrap()` on
/// a ring of 4. Each thread about to `try_recv` has completed a send and
/// taken nothing since, so an item is there: `Empty` would be a lie.
#[test]
fn linearizable() {
    const COUNT: usize = 25_000;
    const THREADS: usize = 4;
    let (s, r) = bounded(THREADS);
    thread::scope(|sc| {
        for _ in 0..THREADS {
            sc.spawn(|| {
                for _ in 0..COUNT {
                    s.send(0u8).unwrap();
                    r.try_recv().unwrap();
                }
            });
        }
    });
}

/// Not in crossbeam: `linearizable` with four processes (two threads each)
/// on one named ring of 8.
#[test]
fn linearizable_across_processes() {
    const COUNT: usize = 20_000;
    if let Some(role) = common::role() {
        assert_eq!(role, "worker");
        let ring = Ring::<u8>::open(&common::args()[0]).unwrap();
        let (s, r) = (ring.sender(), ring.receiver());
        thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| {
                    for i in 0..COUNT {
                        s.send(0).unwrap();
                        if let Err(e) = r.try_recv() {
                            panic!("round {i}: try_recv after a send: {e}");
                        }
                    }
                });
            }
        });
        return;
    }
    let _wd = common::watchdog(240);
    let name = common::unique("cb-lin");
    let ring = Ring::<u8>::create(&name, 8).unwrap();
    // Both sides stay attached while the workers come and go.
    let (_s, _r) = (ring.sender(), ring.receiver());
    let kids: Vec<_> = (0..4).map(|_| common::spawn("linearizable_across_processes", "worker", &[&name])).collect();
    for k in kids {
        common::expect_success(k, 200);
    }
    assert_eq!(ring.len(), 0);
    assert_eq!(ring.lost(), 0);
}
