//! The one blocking loop every primitive uses: spin, then yield, then sleep on
//! a futex word in bounded slices, with a deadline and a periodic check that
//! the peer still lives.
//!
//! # Implementation details
//!
//! The caller gives a futex `word` and the `bit` in it that marks sleepers;
//! the other side calls [`futex::notify`] on the same word and bit after every
//! publish. Before sleeping the waiter sets the bit, issues the heavy barrier
//! and re-checks its condition (see [`futex`] for why that pairing cannot lose
//! a wake-up). Sleeps last at most [`PARK_SLICE`], so a peer that died without
//! a word is noticed within one slice by `gone()`.

use std::time::{Duration, Instant};

use crate::shm::WaitStrategy;
use crate::sync::futex;

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, Ordering};

/// Longest single futex sleep; bounds how late a dead peer is noticed.
pub(crate) const PARK_SLICE: Duration = Duration::from_millis(20);
/// How long `Adaptive` spins before yielding.
const SPIN_FOR: Duration = Duration::from_micros(30);
/// How long `Adaptive` yields before sleeping.
const YIELD_UNTIL: Duration = Duration::from_micros(200);
/// How often a spinning waiter asks whether the peer is gone.
const LIVENESS_EVERY: Duration = Duration::from_millis(5);

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waited<R> {
    /// `ready` returned a value.
    Ready(R),
    /// The deadline passed first.
    TimedOut,
    /// `gone` said the peer has left (and `ready` still had nothing).
    Gone,
}

/// A deadline from an optional timeout.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Waits until `ready` returns `Some`, the deadline passes or `gone` returns
/// `true` (checked only now and then: it may make a system call).
///
/// `ready` is called first, before any clock read, so a wait that need not
/// block costs one call.
pub(crate) fn wait_until<R>(
    strategy: WaitStrategy,
    deadline: Option<Instant>,
    word: &AtomicU32,
    bit: u32,
    mut ready: impl FnMut() -> Option<R>,
    mut gone: impl FnMut() -> bool,
) -> Waited<R> {
    if let Some(r) = ready() {
        return Waited::Ready(r);
    }
    let start = Instant::now();
    let mut last_check = start;
    let mut iter: u32 = 0;
    loop {
        iter = iter.wrapping_add(1);
        let now = if strategy == WaitStrategy::Park || iter % 64 == 0 { Some(Instant::now()) } else { None };
        if let Some(now) = now {
            if deadline.is_some_and(|d| now >= d) {
                return ready().map_or(Waited::TimedOut, Waited::Ready);
            }
            if now.duration_since(last_check) >= LIVENESS_EVERY {
                last_check = now;
                if gone() {
                    return ready().map_or(Waited::Gone, Waited::Ready);
                }
            }
            let waited = now.duration_since(start);
            let park = match strategy {
                WaitStrategy::Spin => false,
                WaitStrategy::Park => true,
                WaitStrategy::Adaptive => waited >= YIELD_UNTIL,
            };
            if park {
                if let Some(r) = park_once(word, bit, deadline, now, &mut ready) {
                    return Waited::Ready(r);
                }
                // After a sleep, always look at the peer.
                last_check = Instant::now();
                if gone() {
                    return ready().map_or(Waited::Gone, Waited::Ready);
                }
            } else if strategy == WaitStrategy::Adaptive && waited >= SPIN_FOR {
                std::thread::yield_now();
            }
        } else {
            core::hint::spin_loop();
        }
        if let Some(r) = ready() {
            return Waited::Ready(r);
        }
    }
}

/// Registers as a sleeper on `word`, re-checks, and sleeps one slice.
fn park_once<R>(
    word: &AtomicU32,
    bit: u32,
    deadline: Option<Instant>,
    now: Instant,
    ready: &mut impl FnMut() -> Option<R>,
) -> Option<R> {
    // Relaxed: the heavy barrier below orders this store before the re-check.
    let cur = word.fetch_or(bit, Ordering::Relaxed) | bit;
    futex::heavy_barrier();
    if let Some(r) = ready() {
        // The bit stays set; the next publish clears it at the cost of one
        // wake call. Clearing it here could erase another sleeper's bit.
        return Some(r);
    }
    let slice = match deadline {
        Some(d) => d.saturating_duration_since(now).min(PARK_SLICE),
        None => PARK_SLICE,
    };
    if !slice.is_zero() {
        futex::wait(word, cur, Some(slice));
    }
    None
}
