//! The one blocking loop every primitive uses — rings, queues, locks, the
//! condition, the semaphore, the event and the barrier: spin, then yield,
//! then sleep on a futex word in bounded slices, with a [`Deadline`] and a
//! periodic check that the peer still lives.
//!
//! # Implementation details
//!
//! The caller says how to sleep ([`Sleep`]) and gives two callbacks: `ready`
//! (try the operation; `Some` ends the wait) and `gone` (is the peer dead? it
//! may make a system call, so it runs at most every [`LIVENESS_EVERY`] while
//! spinning and after every sleep). Phases, per [`WaitStrategy`]:
//!
//! | strategy   | 0 – 30 µs | 30 – 200 µs | after 200 µs          |
//! |------------|-----------|-------------|-----------------------|
//! | `Spin`     | spin      | spin        | spin                  |
//! | `Adaptive` | spin      | yield       | sleep in slices       |
//! | `Park`     | sleep in slices from the start                  |||
//!
//! How a sleep is made safe against a wake-up that races with it:
//!
//! | [`Sleep`] | before sleeping                         | the waker                          |
//! |-----------|-----------------------------------------|------------------------------------|
//! | `Flag`    | set `bit`, heavy barrier, re-check      | publish, then [`futex::notify`]    |
//! | `Rmw`     | set `bit` (an RMW), re-check            | an RMW on the same word, then wake |
//! | `Value`   | nothing: `FUTEX_WAIT` compares the word | changes the word (RMW), then wakes |
//!
//! `Flag` is the store-buffer (Dekker) pattern of [`futex`]: the waker's
//! publish is a plain store, so both sides need a StoreLoad barrier, and the
//! sleeper pays for both. With `Rmw` and `Value` waker and sleeper write the
//! same word with read-modify-writes, which are totally ordered, and
//! `FUTEX_WAIT` re-reads the word atomically with going to sleep: no barrier.
//! Every sleep lasts at most [`PARK_SLICE`], so a peer that died without a
//! word is noticed within one slice by `gone`.

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

/// When a wait gives up: an instant, or never. A timeout too large to
/// represent as an [`Instant`] is "never".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// A wait without a timeout.
    pub(crate) const NEVER: Deadline = Deadline(None);

    /// `timeout` from now (saturating to [`Deadline::NEVER`]).
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// From an optional timeout: `None` is never.
    pub(crate) fn from_timeout(timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::NEVER, Deadline::after)
    }

    /// The instant, if any.
    pub(crate) fn instant(self) -> Option<Instant> {
        self.0
    }

    /// Whether the deadline has passed at `now`.
    #[inline]
    pub(crate) fn passed(self, now: Instant) -> bool {
        self.0.is_some_and(|d| now >= d)
    }

    /// The next sleep from `now`: what is left, at most [`PARK_SLICE`].
    #[inline]
    pub(crate) fn slice(self, now: Instant) -> Duration {
        self.0.map_or(PARK_SLICE, |d| d.saturating_duration_since(now).min(PARK_SLICE))
    }
}

impl From<Option<Instant>> for Deadline {
    fn from(d: Option<Instant>) -> Deadline {
        Deadline(d)
    }
}

/// A deadline from an optional timeout, as an `Option<Instant>` (for callers
/// that carry it that way; [`Deadline::from_timeout`] is the same).
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    Deadline::from_timeout(timeout).instant()
}

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

/// How a waiter sleeps (see the table in the module docs).
#[derive(Clone, Copy)]
pub(crate) enum Sleep<'a> {
    /// Set `bit` in the word, heavy barrier, re-check; the waker publishes
    /// with a plain store and calls [`futex::notify`].
    Flag(&'a AtomicU32, u32),
    /// Set `bit` in the word, re-check; the waker changes the word with a
    /// read-modify-write and wakes when it saw the bit.
    Rmw(&'a AtomicU32, u32),
    /// Sleep while the word holds this value; the waker changes it with a
    /// read-modify-write and wakes.
    Value(&'a AtomicU32, u32),
}

/// Waits until `ready` returns `Some`, the deadline passes or `gone` returns
/// `true`, sleeping on a futex word with the Dekker pattern of [`futex`]
/// (`Sleep::Flag`). The form the rings and queues use.
pub(crate) fn wait_until<R>(
    strategy: WaitStrategy,
    deadline: impl Into<Deadline>,
    word: &AtomicU32,
    bit: u32,
    mut ready: impl FnMut() -> Option<R>,
    gone: impl FnMut() -> bool,
) -> Waited<R> {
    wait(strategy, deadline.into(), Sleep::Flag(word, bit), |_| ready(), gone)
}

/// The wait loop. `ready(slept)` is told whether this waiter has announced
/// itself on the word (set its bit) at least once — a lock acquired after a
/// sleep must keep the waiters bit for the others.
///
/// `ready` is called first, before any clock read, so a wait that need not
/// block costs one call.
pub(crate) fn wait<R>(
    strategy: WaitStrategy,
    deadline: Deadline,
    sleep: Sleep<'_>,
    mut ready: impl FnMut(bool) -> Option<R>,
    mut gone: impl FnMut() -> bool,
) -> Waited<R> {
    if let Some(r) = ready(false) {
        return Waited::Ready(r);
    }
    let start = Instant::now();
    let mut last_check = start;
    let mut slept = false;
    let mut iter: u32 = 0;
    loop {
        iter = iter.wrapping_add(1);
        let now = if strategy == WaitStrategy::Park || iter % 64 == 0 { Some(Instant::now()) } else { None };
        if let Some(now) = now {
            if deadline.passed(now) {
                return ready(slept).map_or(Waited::TimedOut, Waited::Ready);
            }
            if now.duration_since(last_check) >= LIVENESS_EVERY {
                last_check = now;
                if gone() {
                    return ready(slept).map_or(Waited::Gone, Waited::Ready);
                }
            }
            let waited = now.duration_since(start);
            let park = match strategy {
                WaitStrategy::Spin => false,
                WaitStrategy::Park => true,
                WaitStrategy::Adaptive => waited >= YIELD_UNTIL,
            };
            if park {
                if let Some(r) = park_once(sleep, deadline.slice(now), &mut slept, &mut ready) {
                    return Waited::Ready(r);
                }
                // After a sleep, always look at the peer.
                last_check = Instant::now();
                if gone() {
                    return ready(slept).map_or(Waited::Gone, Waited::Ready);
                }
            } else if strategy == WaitStrategy::Adaptive && waited >= SPIN_FOR {
                std::thread::yield_now();
            }
        } else {
            core::hint::spin_loop();
        }
        if let Some(r) = ready(slept) {
            return Waited::Ready(r);
        }
    }
}

/// Announces this waiter on the word as `sleep` says, re-checks, and sleeps
/// at most `slice`.
fn park_once<R>(
    sleep: Sleep<'_>,
    slice: Duration,
    slept: &mut bool,
    ready: &mut impl FnMut(bool) -> Option<R>,
) -> Option<R> {
    let (word, expected) = match sleep {
        Sleep::Flag(word, bit) | Sleep::Rmw(word, bit) => {
            // Relaxed: for `Flag` the heavy barrier below orders this store
            // before the re-check; for `Rmw` the waker's RMW on the same word
            // is ordered with it by the word's modification order.
            let cur = word.fetch_or(bit, Ordering::Relaxed) | bit;
            *slept = true;
            if matches!(sleep, Sleep::Flag(..)) {
                futex::heavy_barrier();
            }
            if let Some(r) = ready(true) {
                // The bit stays set; the next publish clears it at the cost of
                // one wake call. Clearing it here could erase another sleeper's bit.
                return Some(r);
            }
            (word, cur)
        }
        Sleep::Value(word, value) => (word, value),
    };
    if !slice.is_zero() {
        futex::wait(word, expected, Some(slice));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert_eq!(Deadline::after(Duration::MAX), Deadline::NEVER);
        assert_eq!(Deadline::from_timeout(None), Deadline::NEVER);
        let now = Instant::now();
        assert!(!Deadline::NEVER.passed(now));
        assert_eq!(Deadline::NEVER.slice(now), PARK_SLICE);
        let d = Deadline::from(Some(now));
        assert!(d.passed(now));
        assert_eq!(d.slice(now), Duration::ZERO);
        assert!(Deadline::after(Duration::from_secs(60)).slice(now) <= PARK_SLICE);
    }

    #[test]
    fn value_sleep_times_out_and_reports_gone() {
        let w = AtomicU32::new(5);
        let d = Deadline::after(Duration::from_millis(30));
        let r: Waited<()> = wait(WaitStrategy::Park, d, Sleep::Value(&w, 5), |_| None, || false);
        assert_eq!(r, Waited::TimedOut);
        let r: Waited<()> = wait(WaitStrategy::Adaptive, Deadline::NEVER, Sleep::Value(&w, 5), |_| None, || true);
        assert_eq!(r, Waited::Gone);
    }
}
