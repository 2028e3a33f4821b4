//! Lock and RLock between real processes: exclusion, timeouts, and recovery
//! from a holder killed with SIGKILL.
mod common;

use std::time::Duration;

use ringshm::{Event, Lock, LockTimeoutError, RLock, TryLockError, Value};

const N: usize = 4;
const M: u64 = 2000;

#[test]
fn lock_counts_across_processes() {
    if let Some(role) = common::role() {
        assert_eq!(role, "incr");
        let a = common::args();
        let lock = Lock::open(&a[0]).unwrap();
        let v = Value::<u64>::open(&a[1]).unwrap();
        for _ in 0..M {
            let _g = lock.lock().unwrap();
            // A non-atomic read-modify-write: only exclusion makes it exact.
            let x = v.load();
            std::hint::spin_loop();
            v.store(x + 1);
        }
        return;
    }
    let _wd = common::watchdog(120);
    let (ln, vn) = (common::unique("lk"), common::unique("lkv"));
    let _lock = Lock::create(&ln).unwrap();
    let v = Value::<u64>::create(&vn, 0).unwrap();
    let kids: Vec<_> = (0..N).map(|_| common::spawn("lock_counts_across_processes", "incr", &[&ln, &vn])).collect();
    for k in kids {
        common::expect_success(k, 100);
    }
    assert_eq!(v.load(), N as u64 * M);
}

#[test]
fn lock_owner_killed_is_recovered() {
    if let Some(role) = common::role() {
        let a = common::args();
        let held = Event::open(&a[1]).unwrap();
        match role.as_str() {
            "hold" => {
                let lock = Lock::open(&a[0]).unwrap();
                let g = lock.lock().unwrap();
                held.set();
                std::thread::sleep(Duration::from_secs(600));
                drop(g);
            }
            "rhold" => {
                let lock = RLock::open(&a[0]).unwrap();
                let g1 = lock.lock().unwrap();
                let g2 = lock.lock().unwrap();
                assert!(g1.is_outermost() && !g2.is_outermost());
                held.set();
                std::thread::sleep(Duration::from_secs(600));
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(60);
    // Lock
    let (ln, en) = (common::unique("lkd"), common::unique("lkde"));
    let lock = Lock::create(&ln).unwrap();
    let held = Event::create(&en).unwrap();
    let child = common::spawn("lock_owner_killed_is_recovered", "hold", &[&ln, &en]);
    assert!(held.wait_timeout(Duration::from_secs(30)), "child never took the lock");
    assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    assert!(matches!(lock.lock_timeout(Duration::from_millis(30)), Err(LockTimeoutError::Timeout)));
    common::kill9(child);
    let g = match lock.lock() {
        Err(died) => died.into_inner(),
        Ok(_) => panic!("expected OwnerDied after the holder was killed"),
    };
    drop(g);
    // The lock is clean again.
    assert!(lock.try_lock().is_ok());

    // RLock, held twice by the killed process.
    let (rn, en2) = (common::unique("rlkd"), common::unique("rlkde"));
    let rlock = RLock::create(&rn).unwrap();
    let held2 = Event::create(&en2).unwrap();
    let child = common::spawn("lock_owner_killed_is_recovered", "rhold", &[&rn, &en2]);
    assert!(held2.wait_timeout(Duration::from_secs(30)));
    assert!(matches!(rlock.try_lock(), Err(TryLockError::WouldBlock)));
    common::kill9(child);
    match rlock.lock_timeout(Duration::from_secs(10)) {
        Err(LockTimeoutError::OwnerDied(d)) => {
            let g = d.into_inner();
            assert!(rlock.is_owned());
            let inner = rlock.lock().unwrap();
            assert!(!inner.is_outermost());
            drop(inner);
            drop(g);
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert!(!rlock.is_locked());
}

#[test]
fn try_lock_and_timeouts_between_processes() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let lock = Lock::open(&a[0]).unwrap();
        let held = Event::open(&a[1]).unwrap();
        let go = Event::open(&a[2]).unwrap();
        let g = lock.lock().unwrap();
        held.set();
        assert!(go.wait_timeout(Duration::from_secs(30)));
        drop(g);
        return;
    }
    let _wd = common::watchdog(60);
    let (ln, hn, gn) = (common::unique("lkt"), common::unique("lkth"), common::unique("lktg"));
    let lock = Lock::create(&ln).unwrap();
    let held = Event::create(&hn).unwrap();
    let go = Event::create(&gn).unwrap();
    let child = common::spawn("try_lock_and_timeouts_between_processes", "hold", &[&ln, &hn, &gn]);
    assert!(held.wait_timeout(Duration::from_secs(30)));
    assert!(lock.is_locked());
    assert!(lock.try_lock().unwrap_err().is_would_block());
    assert!(lock.lock_timeout(Duration::from_millis(50)).unwrap_err().is_timeout());
    go.set();
    // The holder releases: a blocking lock gets it cleanly.
    let g = lock.lock_timeout(Duration::from_secs(30)).unwrap();
    drop(g);
    common::expect_success(child, 30);
}

#[test]
fn rlock_reentrant_in_one_thread_exclusive_across_threads() {
    let _wd = common::watchdog(30);
    let n = common::unique("rl");
    let l = RLock::create(&n).unwrap();
    let g1 = l.lock().unwrap();
    let g2 = l.try_lock().unwrap();
    let g3 = l.lock_timeout(Duration::from_millis(1)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert!(l.try_lock().unwrap_err().is_would_block()));
    });
    drop((g3, g2));
    assert!(l.is_locked());
    drop(g1);
    assert!(!l.is_locked());
}

#[test]
fn wrong_kind_and_names() {
    let n = common::unique("wk");
    let _e = Event::create(&n).unwrap();
    assert!(matches!(Lock::open(&n), Err(ringshm::Error::WrongKind { .. })));
    assert!(matches!(Lock::create(&n), Err(ringshm::Error::AlreadyExists { .. })));
    assert!(matches!(Lock::create("bad name"), Err(ringshm::Error::InvalidName { .. })));
    assert!(matches!(Lock::open(&common::unique("none")), Err(ringshm::Error::NotFound { .. })));
    let l1 = Lock::open_or_create(&common::unique("ooc")).unwrap();
    drop(l1);
}

#[test]
fn bounds() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Lock>();
    send_sync::<RLock>();
    send_sync::<ringshm::Semaphore>();
    send_sync::<ringshm::BoundedSemaphore>();
    send_sync::<ringshm::Event>();
    send_sync::<ringshm::Condition>();
    send_sync::<ringshm::Barrier>();
    send_sync::<ringshm::Value<u64>>();
    send_sync::<ringshm::Array<u8>>();
}
