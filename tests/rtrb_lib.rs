//! rtrb's `tests/lib.rs` (mgeier/rtrb, commit 9dfc2b8), ported to
//! `ringshm::spsc`. Each test says what was adapted and why. The general
//! differences:
//! - rtrb's `RingBuffer::new(n)` is `Ring::create(unique_name, n)` plus
//!   `producer()`/`consumer()`; the ring lives in a named shared-memory
//!   segment.
//! - Capacities are rounded up to a power of two, and 0 is refused with
//!   `Error::InvalidArgument` (rtrb keeps the exact capacity and allows 0).
//! - Items are `T: bytemuck::Pod` (they cross processes), so there are no
//!   `Drop` types; rtrb's `push`/`pop` are `try_push`/`try_pop`.
//! - rtrb's `PushError::Full`/`PopError::Empty`/`PeekError::Empty` are
//!   `TrySendError::Full`/`TryRecvError::Empty`.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use bytemuck::Pod;
use ringshm::spsc::{Consumer, Producer, Ring};
use ringshm::{Error, TryRecvError, TrySendError};

fn new<T: Pod>(tag: &str, cap: usize) -> (Producer<T>, Consumer<T>) {
    let ring = Ring::<T>::create(&common::unique(tag), cap).unwrap();
    (ring.producer().unwrap(), ring.consumer().unwrap())
}

/// Adapted: capacities are rounded up to a power of two, and 0 is refused.
#[test]
fn capacity() {
    for i in 1..10usize {
        let (p, c) = new::<i32>("cap", i);
        assert_eq!(p.capacity(), i.next_power_of_two());
        assert_eq!(c.capacity(), i.next_power_of_two());
    }
    assert!(matches!(Ring::<i32>::create(&common::unique("cap0"), 0), Err(Error::InvalidArgument { .. })));
}

/// Adapted: a ring of capacity 0 cannot be made (see `capacity`); what rtrb
/// checks on it — a producer with no free slot is full and cannot push, a
/// consumer with no item is empty and cannot pop — is checked on a full and
/// an empty ring of capacity 1.
#[test]
fn zero_capacity() {
    let (mut p, mut c) = new::<i32>("zcap", 1);
    assert_eq!(c.slots(), 0);
    assert!(c.is_empty());
    assert!(c.try_pop().is_err());
    p.try_push(1).unwrap();
    assert_eq!(p.slots(), 0);
    assert!(p.is_full());
    assert!(p.try_push(10).is_err());
}

/// Adapted: the zero-sized type is `()` (a `Pod` ZST) instead of a
/// user-defined struct.
#[test]
fn zero_sized_type() {
    assert_eq!(std::mem::size_of::<()>(), 0);

    let (mut p, mut c) = new::<()>("zst", 1);
    assert_eq!(p.capacity(), 1);
    assert_eq!(p.slots(), 1);
    assert_eq!(c.slots(), 0);
    assert!(p.try_push(()).is_ok());
    assert_eq!(p.slots(), 0);
    assert_eq!(c.slots(), 1);
    assert!(p.try_push(()).is_err());
    assert!(c.peek().is_ok());
    assert!(c.try_pop().is_ok());
    assert_eq!(c.slots(), 0);
    assert!(c.peek().is_err());
}

const COUNT: usize = 100_000;

// Adapted in `parallel`, `parallel_across_processes` and `drops`: a failed
// `try_push`/`try_pop` yields the CPU before retrying (rtrb spins). Without
// it, when the two sides share a CPU (2-core CI running two of these tests
// at once, or `taskset -c 0`), every handoff of 4 items waited for a
// scheduler tick: 100 000 items took minutes.

/// Unchanged apart from names (capacity 3 becomes 4).
#[test]
fn parallel() {
    let _wd = common::watchdog(120);
    let (mut p, mut c) = new::<usize>("par", 3);
    let pop_thread = std::thread::spawn(move || {
        for i in 0..COUNT {
            loop {
                if let Ok(x) = c.try_pop() {
                    assert_eq!(x, i);
                    break;
                }
                std::thread::yield_now();
            }
        }
        assert!(c.try_pop().is_err());
    });
    let push_thread = std::thread::spawn(move || {
        for i in 0..COUNT {
            while p.try_push(i).is_err() {
                std::thread::yield_now();
            }
        }
    });
    push_thread.join().unwrap();
    pop_thread.join().unwrap();
}

/// Added: `parallel` with the producer in a child process. After the child
/// exits, the consumer sees `Disconnected` (rtrb's threads cannot die
/// separately, so it only checks "empty").
#[test]
fn parallel_across_processes() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let ring = Ring::<usize>::open(&common::args()[0]).unwrap();
        let mut p = ring.producer().unwrap();
        for i in 0..COUNT {
            while p.try_push(i).is_err() {
                std::thread::yield_now();
            }
        }
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("parx");
    let ring = Ring::<usize>::create(&name, 3).unwrap();
    let mut c = ring.consumer().unwrap();
    let child = common::spawn("parallel_across_processes", "producer", &[&name]);
    for i in 0..COUNT {
        loop {
            if let Ok(x) = c.try_pop() {
                assert_eq!(x, i);
                break;
            }
            std::thread::yield_now();
        }
    }
    common::expect_success(child, 60);
    assert_eq!(c.pop_timeout(std::time::Duration::from_secs(10)), Err(ringshm::RecvTimeoutError::Disconnected));
}

/// Adapted: `Pod` items have no destructor, so instead of counting drops
/// this counts items: every pushed item is popped exactly once, in order,
/// and the `additional` items pushed at the end are all still in the ring
/// when the producer is dropped. The random numbers come from a fixed LCG
/// instead of the `rand` crate.
#[test]
fn drops() {
    const RUNS: usize = 20;
    let _wd = common::watchdog(120);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for _ in 0..RUNS {
        let steps = random(10_000);
        let additional = random(50);

        let (mut p, mut c) = new::<u64>("drops", 50);
        let pop_thread = std::thread::spawn(move || {
            for i in 0..steps {
                loop {
                    if let Ok(x) = c.try_pop() {
                        assert_eq!(x, i);
                        break;
                    }
                }
            }
            c
        });
        let push_thread = std::thread::spawn(move || {
            for i in 0..steps {
                while p.try_push(i).is_err() {
                    std::thread::yield_now();
                }
            }
            p
        });
        p = push_thread.join().unwrap();
        let mut c = pop_thread.join().unwrap();

        for i in 0..additional {
            p.try_push(steps + i).unwrap();
        }
        assert_eq!(c.len(), additional as usize);
        drop(p);
        let rest: Vec<u64> = c.iter().collect();
        assert_eq!(rest, (steps..steps + additional).collect::<Vec<_>>());
    }
}

/// Adapted: ringshm's `Debug` output names the module (`spsc::Producer`)
/// and its error types are crossbeam's, with their own texts; handles are
/// not `PartialEq` (rtrb compares buffer identity), so that part is left out.
/// A capacity-1 ring stands in for rtrb's capacity 0 (full for the
/// producer, empty for the consumer).
#[test]
fn trait_impls() {
    let name = common::unique("traits");
    let ring = Ring::<u8>::create(&name, 1).unwrap();
    let (mut p, c) = (ring.producer().unwrap(), ring.consumer().unwrap());
    p.try_push(0).unwrap();

    assert!(format!("{ring:?}").starts_with("spsc::Ring {"));
    assert!(format!("{p:?}").starts_with("spsc::Producer {"));
    assert!(format!("{c:?}").starts_with("spsc::Consumer {"));

    assert!(format!("{:?}", p.try_push(42).unwrap_err()).starts_with("Full"));
    assert!(p.try_push(42).unwrap_err().to_string().contains("full"));
    let other = Ring::<u8>::create(&common::unique("traits2"), 1).unwrap();
    let (_op, mut oc) = (other.producer().unwrap(), other.consumer().unwrap());
    assert_eq!(format!("{:?}", oc.try_pop().unwrap_err()), "Empty");
    assert!(oc.try_pop().unwrap_err().to_string().contains("empty"));
    assert_eq!(format!("{:?}", oc.peek().unwrap_err()), "Empty");
    assert_eq!(oc.peek().unwrap_err(), TryRecvError::Empty);
    assert!(matches!(p.try_push(1), Err(TrySendError::Full(1))));
}

/// Adapted: rtrb's test is for Miri (a data race on a `static mut` if
/// `is_abandoned` did not synchronise). Here the write is a Relaxed atomic
/// store before the drop, and the test asserts what the race-freedom
/// promises: once `is_abandoned()` is true, the write is visible (dropping
/// the producer is a Release, `is_abandoned` an Acquire).
#[test]
fn no_race_with_is_abandoned() {
    static V: AtomicU32 = AtomicU32::new(0);
    for _ in 0..5 {
        V.store(0, Ordering::Relaxed);
        let (p, c) = new::<u8>("abandon", 7);
        let t = std::thread::spawn(move || {
            V.store(10, Ordering::Relaxed);
            drop(p);
        });
        std::thread::yield_now();
        if c.is_abandoned() {
            assert_eq!(V.load(Ordering::Relaxed), 10);
        }
        t.join().unwrap();
        assert!(c.is_abandoned());
    }
}
