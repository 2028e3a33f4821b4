//! The only futex and membarrier call sites: sleeping on shared 32-bit words,
//! waking them, and the asymmetric barrier that keeps fences off the fast path.
//!
//! # Implementation details
//!
//! A waiter and a waker form the classic store-buffer (Dekker) pattern:
//!
//! ```text
//! waiter                              waker
//! word |= WAITING        (store A)    publish data        (store B)
//! HEAVY barrier                       LIGHT barrier
//! re-check data          (load B)     if word & WAITING   (load A) -> wake
//! ```
//!
//! Each side needs a StoreLoad barrier, or both loads may see old values and
//! the waiter sleeps through the publish. Publishing happens on every push, so
//! its barrier must cost nothing: the *light* barrier is a compiler fence, and
//! the waiter's *heavy* barrier is `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`,
//! which makes every CPU running a registered process execute a full barrier —
//! the same asymmetric-fence technique as userspace RCU and folly's
//! `asymmetricHeavyBarrier`. A waker process that could not register falls
//! back to a real `fence(SeqCst)` on its own light side, and a waiter whose
//! `membarrier` fails falls back to one too, so correctness never depends on
//! the kernel feature. Under `cfg(loom)` both sides are `fence(SeqCst)`.
//!
//! Futex words live in shared memory: never `FUTEX_PRIVATE_FLAG`. Every wait
//! has a bounded slice and the caller re-checks its condition after every
//! return (wake, timeout, `EINTR`, `EAGAIN` alike).

use std::time::Duration;

#[cfg(not(loom))]
use std::sync::atomic::{compiler_fence, fence, AtomicU32, Ordering};

#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicU32, Ordering};

/// The publisher's half of the Dekker pattern: free when the process is
/// registered for expedited barriers.
#[inline(always)]
pub(crate) fn light_barrier() {
    #[cfg(not(loom))]
    {
        if crate::process::barrier_registered() {
            // The heavy side's IPI orders our stores before our loads; only
            // keep the compiler from moving the load above the store.
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// The sleeper's half of the Dekker pattern: a full barrier on every CPU that
/// runs a registered process, plus our own.
pub(crate) fn heavy_barrier() {
    #[cfg(not(loom))]
    {
        use rustix::thread::{membarrier, MembarrierCommand};
        fence(Ordering::SeqCst);
        if membarrier(MembarrierCommand::GlobalExpedited).is_err() {
            // Not supported: every process fell back to a real light fence too
            // (their registration failed on the same kernel).
            fence(Ordering::SeqCst);
        }
    }
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// Sleeps while `*word == expected`, for at most `timeout` (`None`: until
/// woken). Returns on wake, timeout, signal or mismatch alike: the caller
/// re-checks its condition.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(not(loom))]
    {
        use rustix::thread::futex;
        let ts = timeout.map(|d| futex::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        // Shared futex (no PRIVATE flag): the word may be mapped by other
        // processes. FUTEX_WAIT's timeout is relative, on CLOCK_MONOTONIC.
        let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
    }
    #[cfg(loom)]
    {
        let _ = (word, expected, timeout);
        loom::thread::yield_now();
    }
}

/// Wakes up to `n` sleepers on `word`.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    #[cfg(not(loom))]
    {
        use rustix::thread::futex;
        let _ = futex::wake(word, futex::Flags::empty(), n);
    }
    #[cfg(loom)]
    let _ = (word, n);
}

/// Wakes every sleeper on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    wake(word, i32::MAX as u32);
}

/// The waker's side for a word whose `bit` marks sleepers: cheap when nobody
/// sleeps (one Relaxed load after the light barrier).
///
/// Call after the store that publishes what sleepers wait for.
#[inline]
pub(crate) fn notify(word: &AtomicU32, bit: u32) {
    light_barrier();
    // Relaxed: ordered after the publishing store by the light barrier (with
    // the sleeper's heavy barrier, see the module docs).
    if word.load(Ordering::Relaxed) & bit != 0 {
        notify_slow(word, bit);
    }
}

#[cold]
#[inline(never)]
fn notify_slow(word: &AtomicU32, bit: u32) {
    // Clear first: sleepers that register after this see their own bit and
    // are woken by the next publish; those already asleep are woken now.
    word.fetch_and(!bit, Ordering::Relaxed);
    wake_all(word);
}
