//! Semaphore and BoundedSemaphore between real processes: the count is never
//! exceeded, timeouts return, and a killed holder's permits come back.
mod common;

use std::time::Duration;

use ringshm::{BoundedSemaphore, Event, Semaphore, Value};

const PERMITS: usize = 3;
const PROCS: usize = 6;
const ROUNDS: usize = 300;

#[test]
fn semaphore_never_exceeds_its_count() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let sem = Semaphore::open(&a[0]).unwrap();
        let inside = Value::<u32>::open(&a[1]).unwrap();
        let max = Value::<u32>::open(&a[2]).unwrap();
        for _ in 0..ROUNDS {
            sem.acquire();
            let now = inside.fetch_add(1) + 1;
            max.update(|m| m.max(now));
            std::thread::yield_now();
            inside.fetch_sub(1);
            sem.release();
        }
        assert_eq!(sem.held_by_this_process(), 0);
        return;
    }
    let _wd = common::watchdog(120);
    let (s, i, m) = (common::unique("sem"), common::unique("semi"), common::unique("semm"));
    let sem = Semaphore::create(&s, PERMITS).unwrap();
    let _inside = Value::<u32>::create(&i, 0).unwrap();
    let max = Value::<u32>::create(&m, 0).unwrap();
    let kids: Vec<_> =
        (0..PROCS).map(|_| common::spawn("semaphore_never_exceeds_its_count", "w", &[&s, &i, &m])).collect();
    for k in kids {
        common::expect_success(k, 100);
    }
    let max = max.load();
    assert!(max >= 1 && max <= PERMITS as u32, "max inside = {max}");
    assert_eq!(sem.value(), PERMITS);
}

#[test]
fn semaphore_killed_holder_permits_return() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let sem = Semaphore::open(&a[0]).unwrap();
        let held = Event::open(&a[1]).unwrap();
        sem.acquire();
        sem.acquire();
        assert_eq!(sem.held_by_this_process(), 2);
        held.set();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(60);
    let (s, e) = (common::unique("semk"), common::unique("semke"));
    let sem = Semaphore::create(&s, 2).unwrap();
    let held = Event::create(&e).unwrap();
    let child = common::spawn("semaphore_killed_holder_permits_return", "hold", &[&s, &e]);
    assert!(held.wait_timeout(Duration::from_secs(30)));
    assert_eq!(sem.value(), 0);
    // The live child holds both permits: nothing to take, nothing to repair.
    assert!(!sem.try_acquire(), "a permit of a live holder was handed out");
    assert_eq!(sem.value(), 0);
    common::kill9(child);
    // Waiters repair the ledger on their own.
    assert!(sem.acquire_timeout(Duration::from_secs(10)), "dead holder's permit never came back");
    assert!(sem.acquire_timeout(Duration::from_secs(10)));
    assert!(!sem.try_acquire());
    sem.release();
    sem.release();
    assert_eq!(sem.value(), 2);
}

#[test]
fn semaphore_timeouts_and_try() {
    let _wd = common::watchdog(30);
    let sem = Semaphore::create(&common::unique("semt"), 1).unwrap();
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
    assert!(!sem.acquire_timeout(Duration::from_millis(30)));
    sem.release();
    assert!(sem.acquire_timeout(Duration::from_millis(30)));
    sem.release();
    // Python's Semaphore allows releasing above the initial value.
    sem.release();
    assert_eq!(sem.value(), 2);
    assert_eq!(Semaphore::open(sem.name()).unwrap().value(), 2);
}

#[test]
fn bounded_semaphore_refuses_extra_release() {
    let b = BoundedSemaphore::create(&common::unique("bsem"), 2).unwrap();
    assert!(b.release().is_err());
    b.acquire();
    assert!(b.release().is_ok());
    assert_eq!(b.value(), 2);
    let err = b.release().unwrap_err();
    assert_eq!(err.max, 2);
    assert!(matches!(Semaphore::open(b.name()), Err(ringshm::Error::WrongKind { .. })));
}

#[test]
fn semaphore_wakes_waiter_in_other_process() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let sem = Semaphore::open(&a[0]).unwrap();
        let done = ringshm::Event::open(&a[1]).unwrap();
        // Blocks until the parent releases; then holds the permit until the
        // parent has counted (a holder that exits gives its permit back to
        // the next process that takes its slot).
        sem.acquire();
        assert!(done.wait_timeout(Duration::from_secs(30)));
        return;
    }
    let _wd = common::watchdog(60);
    let s = common::unique("semw");
    let sem = Semaphore::create(&s, 0).unwrap();
    let done = ringshm::Event::create(&format!("{s}-done")).unwrap();
    let kids: Vec<_> =
        (0..3).map(|_| common::spawn("semaphore_wakes_waiter_in_other_process", "w", &[&s, done.name()])).collect();
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..3 {
        sem.release();
    }
    // Each release woke one waiter in another process, which holds it.
    assert!(common::eventually(30, || sem.value() == 0));
    done.set();
    for k in kids {
        common::expect_success(k, 30);
    }
}
