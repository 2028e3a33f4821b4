//! loom model of the async register/wake handshake (`crate::asynch`): a
//! future that announces itself, re-checks and registers with the waiter
//! thread can never sleep through a publish — in particular one that lands
//! after the future's re-check but before its registration reaches the
//! waiter ("registered after the last wake").
//!
//! The kernel's futex is modelled by a mutex (the futex bucket lock) and a
//! condition variable: `futex_waitv` compares the word with the expected
//! value and enqueues under the lock; `FUTEX_WAKE` dequeues under it. If the
//! handshake could lose the wake-up, loom finds a schedule where the future
//! waits forever and reports a deadlock.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom`

use loom::sync::atomic::{fence, AtomicU32, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use crate::sync::futex;

const WAITING: u32 = 1;

#[derive(Default)]
struct Kernel {
    /// The future's registration: the value it expects in the word.
    registered: Option<u32>,
    /// The waiter thread sleeps in the (modelled) `futex_waitv`.
    sleeping: bool,
    /// The waiter thread fired the registration (called the waker).
    fired: bool,
    /// The future is done: the waiter thread may leave.
    exit: bool,
}

struct World {
    word: AtomicU32,
    data: AtomicU32,
    k: Mutex<Kernel>,
    cv: Condvar,
}

/// The publisher: the ring's `commit` + `futex::notify`.
fn publish(w: &World) {
    // Release: pairs with the future's Acquire loads of `data`.
    w.data.store(1, Ordering::Release);
    futex::light_barrier();
    if w.word.load(Ordering::Relaxed) & WAITING != 0 {
        // `notify_slow`: clear, then FUTEX_WAKE.
        w.word.fetch_and(!WAITING, Ordering::Relaxed);
        let mut k = w.k.lock().unwrap();
        if k.sleeping {
            k.sleeping = false;
            k.fired = true;
            w.cv.notify_all();
        }
    }
}

/// The waiter thread: waits for a registration, then `futex_waitv` on it.
fn waiter(w: &World) {
    let mut k = w.k.lock().unwrap();
    loop {
        if k.exit || k.fired {
            return;
        }
        if let Some(expected) = k.registered {
            if !k.sleeping {
                // futex_waitv: compare under the bucket lock, then sleep.
                // The kernel's read is followed by a full barrier (the
                // `smp_mb()` of the futex wait path; a system call besides).
                let cur = w.word.load(Ordering::Relaxed);
                fence(Ordering::SeqCst);
                if cur != expected {
                    k.fired = true; // EAGAIN: the waiter fires the registration
                    w.cv.notify_all();
                    return;
                }
                k.sleeping = true;
            }
        }
        k = w.cv.wait(k).unwrap();
    }
}

/// The future's `poll`: attempt, announce (bit + heavy barrier), re-check,
/// register; then it sleeps until its waker is called and polls again.
fn future(w: &World) {
    // Acquire: pairs with the Release store in `publish`.
    if w.data.load(Ordering::Acquire) == 1 {
        return;
    }
    let cur = w.word.fetch_or(WAITING, Ordering::Relaxed) | WAITING;
    futex::heavy_barrier();
    // Acquire: as above.
    if w.data.load(Ordering::Acquire) == 1 {
        return;
    }
    let mut k = w.k.lock().unwrap();
    k.registered = Some(cur);
    w.cv.notify_all(); // the control-word wake: the waiter rebuilds its array
    while !k.fired {
        k = w.cv.wait(k).unwrap();
    }
    drop(k);
    // Woken: the next poll's attempt must succeed (no liveness slice here).
    // Acquire: as above.
    assert_eq!(w.data.load(Ordering::Acquire), 1, "woken without a publish");
}

#[test]
fn loom_async_register_after_last_wake() {
    loom::model(|| {
        let w = Arc::new(World {
            word: AtomicU32::new(0),
            data: AtomicU32::new(0),
            k: Mutex::new(Kernel::default()),
            cv: Condvar::new(),
        });
        let (w1, w2) = (w.clone(), w.clone());
        let p = thread::spawn(move || publish(&w1));
        let t = thread::spawn(move || waiter(&w2));
        future(&w);
        {
            let mut k = w.k.lock().unwrap();
            k.exit = true;
            w.cv.notify_all();
        }
        p.join().unwrap();
        t.join().unwrap();
    });
}
