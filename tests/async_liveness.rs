//! Liveness and scale of async waits across real processes: a SIGKILLed
//! peer ends a waiting future; 1,000 futures on 1,000 objects are all woken,
//! with `futex_waitv` and with the single-word fallback.
#![cfg(feature = "async")]

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringshm::{Event, Lock, Pipe, RecvError};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Kills `child` from another thread after `ms`, while the caller awaits.
fn kill_later(child: std::process::Child, ms: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        common::kill9(child);
    })
}

/// A pipe peer SIGKILLed while `recv_bytes_async` waits: the future ends
/// with end-of-file (`RecvError`), after the message sent before the kill.
#[test]
fn sigkilled_pipe_peer_ends_recv_async() {
    if let Some(role) = common::role() {
        assert_eq!(role, "sleeper");
        let p = Pipe::open(&common::args()[0]).unwrap();
        p.send_bytes(b"ready").unwrap();
        std::thread::sleep(Duration::from_secs(300));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("akill-pipe");
    let p = Pipe::create(&name, 1024).unwrap();
    let child = common::spawn("sigkilled_pipe_peer_ends_recv_async", "sleeper", &[&name]);
    rt().block_on(async {
        assert_eq!(p.recv_bytes_async().await.unwrap(), b"ready");
        let killer = kill_later(child, 100);
        assert_eq!(p.recv_bytes_async().await, Err(RecvError), "a dead peer must end the wait");
        killer.join().unwrap();
    });
}

/// A lock holder SIGKILLed while `lock_async` waits: the future gets the
/// lock with `OwnerDied`.
#[test]
fn sigkilled_lock_holder_ends_lock_async_with_owner_died() {
    if let Some(role) = common::role() {
        assert_eq!(role, "holder");
        let a = common::args();
        let l = Lock::open(&a[0]).unwrap();
        let _g = l.lock().unwrap();
        Event::open(&a[1]).unwrap().set();
        std::thread::sleep(Duration::from_secs(300));
        return;
    }
    let _wd = common::watchdog(60);
    let (ln, en) = (common::unique("akill-lock"), common::unique("akill-ev"));
    let l = Lock::create(&ln).unwrap();
    let ev = Event::create(&en).unwrap();
    let child = common::spawn("sigkilled_lock_holder_ends_lock_async_with_owner_died", "holder", &[&ln, &en]);
    rt().block_on(async {
        ev.wait_async().await;
        assert!(l.is_locked());
        let killer = kill_later(child, 100);
        let r = l.lock_async().await;
        assert!(r.is_err(), "the holder died holding the lock: OwnerDied expected");
        drop(r);
        killer.join().unwrap();
    });
    assert!(!l.is_locked());
}

/// Threads of this process named `ringshm-waiter`.
fn waiter_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == "ringshm-waiter")
        .count()
}

/// The child: opens `n` events named `prefix-i` and sets them in a
/// scrambled order, pausing now and then.
fn setter(prefix: &str, n: usize) {
    let evs: Vec<Event> = (0..n).map(|i| Event::open(&format!("{prefix}-{i}")).unwrap()).collect();
    for k in 0..n {
        let i = (k * 7919) % n; // 7919 is prime: a permutation of 0..n
        evs[i].set();
        if k % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// `n` futures on one runtime, each awaiting its own event; another process
/// sets them all: every future completes, each after its own `set`.
fn many_futures(test: &str, n: usize) {
    let prefix = common::unique("amany");
    let evs: Vec<Arc<Event>> = (0..n).map(|i| Arc::new(Event::create(&format!("{prefix}-{i}")).unwrap())).collect();
    let done = Arc::new(AtomicUsize::new(0));
    let rt = rt();
    rt.block_on(async {
        let tasks: Vec<_> = evs
            .iter()
            .map(|ev| {
                let (ev, done) = (ev.clone(), done.clone());
                tokio::spawn(async move {
                    ev.wait_async().await;
                    assert!(ev.is_set());
                    done.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        // Let every future register before the setter starts.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(done.load(Ordering::Relaxed), 0, "a future completed before any set");
        let threads = waiter_threads();
        if std::env::var("RINGSHM_ASYNC_WAITER").as_deref() == Ok("single") {
            assert!(threads >= n, "the fallback sleeps one thread per waiting future: {threads} for {n}");
        } else {
            // futex_waitv: 127 words per thread (a few more shards may serve
            // other tests of this binary running at the same time).
            assert!(threads <= n / 127 + 8, "{threads} waiter threads for {n} futures: a thread per future?");
        }
        let child = common::spawn(test, "setter", &[&prefix, &n.to_string()]);
        for t in tasks {
            t.await.unwrap();
        }
        common::expect_success(child, 60);
    });
    assert_eq!(done.load(Ordering::Relaxed), n);
}

#[test]
fn thousand_futures_on_thousand_events() {
    if let Some(role) = common::role() {
        assert_eq!(role, "setter");
        let a = common::args();
        return setter(&a[0], a[1].parse().unwrap());
    }
    let _wd = common::watchdog(120);
    many_futures("thousand_futures_on_thousand_events", 1000);
}

/// The same with the waiter's fallback for kernels without `futex_waitv`
/// (forced with `RINGSHM_ASYNC_WAITER=single`, in a child process of its own).
#[test]
fn many_futures_with_the_single_word_fallback() {
    const TEST: &str = "many_futures_with_the_single_word_fallback";
    match common::role().as_deref() {
        Some("setter") => {
            let a = common::args();
            return setter(&a[0], a[1].parse().unwrap());
        }
        Some("fallback") => {
            assert_eq!(std::env::var("RINGSHM_ASYNC_WAITER").as_deref(), Ok("single"));
            return many_futures(TEST, 200);
        }
        Some(r) => panic!("unknown role {r}"),
        None => {}
    }
    let _wd = common::watchdog(120);
    let child = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env("RINGSHM_TEST_ROLE", "fallback")
        .env("RINGSHM_ASYNC_WAITER", "single")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    common::expect_success(child, 110);
}
