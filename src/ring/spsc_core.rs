//! The single-producer single-consumer index core, shared by the item ring
//! ([`super::spsc`]) and the byte ring under `Pipe` ([`super::bytes`]).
//!
//! # Implementation details
//!
//! Lamport's ring buffer (L. Lamport, "Specifying Concurrent Program
//! Modules", TOPLAS 1983) with the refinements of rtrb and Rigtorp's SPSC
//! queue:
//!
//! - `head` and `tail` are free-running `u64` counters, each on its own
//!   cache-line pair ([`Shared`]); the storage position of counter `i` is
//!   `i & (cap - 1)` (`cap` is a power of two), and `tail - head` (wrapping)
//!   is the number of units in the ring. A unit is one item (item ring) or
//!   one byte (byte ring; there every counter is a multiple of 8).
//! - Only the producer stores `tail`, only the consumer stores `head`. Each
//!   side keeps its own counter in private memory ([`ProdIdx::tail`],
//!   [`ConsIdx::head`]) and a *cached copy* of the other side's counter. It
//!   reads the shared opposite counter only when the cached copy says
//!   "full" (producer) or "empty" (consumer); in steady state a push
//!   touches only the producer's own line and the slot's line.
//! - Publishing is one `Release` store of the own counter after the slots are
//!   written (or read), paired with the `Acquire` load of that counter in the
//!   other side's `refresh`. So the other side sees a slot whole or not at
//!   all, and a slot is reused only after its reader is done with it.
//! - After publishing, the side wakes the other one if its side-control word
//!   has `WAITING` set ([`crate::sync::futex::notify`]: one Relaxed load when
//!   nobody sleeps; the no-lost-wakeup argument is in `src/sync/futex.rs` and
//!   checked by the loom models in `loom_tests.rs`).
//!
//! | state of `(tail, head)` as read by a side       | meaning                                    |
//! |-------------------------------------------------|--------------------------------------------|
//! | `tail - head == 0`                              | empty                                      |
//! | `0 < tail - head < cap`                         | partly full                                |
//! | `tail - head == cap`                            | full                                       |
//! | `tail - head > cap`, or a counter not a multiple of the unit granule `G` | corrupted: the ring is poisoned |
//!
//! # Never trusting the segment
//!
//! Another process may write anything into [`Shared`]. Each side checks the
//! opposite counter on every refresh (`tail - head <= cap`, multiple of `G`)
//! and its own pair when it attaches ([`ProdIdx::new`], [`ConsIdx::new`]); a
//! violation sets `POISONED` on both side words ([`super::poison`]), after
//! which every handle reports the ring as disconnected and `open` refuses it.
//! A checked counter is kept in private memory and never re-read, so a later
//! scribble cannot turn a checked value into an out-of-range one.
//!
//! The core is generic over where its memory lives: it only needs a
//! `&Shared`, which under `cfg(loom)` is made of loom's atomics on the heap.

use super::{poison, WAITING};
use crate::primitive::{AtomicU32, AtomicU64, Ordering, Padded};
use crate::sync::futex;

/// The control state of one end.
#[derive(Default, Debug)]
#[repr(C)]
pub(crate) struct Side {
    /// Side-control word (see [`super`]); this end's sleepers wait on it.
    pub ctl: AtomicU32,
    /// Pid of the holder, for caller-provided regions only (named segments
    /// use kernel locks); 0 when free.
    pub owner: AtomicU32,
}

/// The shared part of an SPSC ring. Each field sits on its own cache-line
/// pair: `tail` is written only by the producer, `head` only by the consumer.
#[derive(Default, Debug)]
#[repr(C)]
pub(crate) struct Shared {
    /// Count of units ever pushed. `tail - head` is in `0..=capacity`.
    pub tail: Padded<AtomicU64>,
    /// Count of units ever popped.
    pub head: Padded<AtomicU64>,
    /// The producer's control word (it sleeps here when full).
    pub prod: Padded<Side>,
    /// The consumer's control word (it sleeps here when empty).
    pub cons: Padded<Side>,
}

#[cfg(not(loom))]
// SAFETY: `#[repr(C)]`, made only of atomics (and padding never read).
unsafe impl crate::shm::segment::ShmSafe for Shared {}
#[cfg(not(loom))]
// SAFETY: as above.
unsafe impl crate::shm::segment::ShmSafe for Side {}

/// The shared counters were found inconsistent; the ring is now poisoned.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) struct Corrupt;

/// Poisons both side words of the ring.
#[cold]
pub(crate) fn poison_ring(sh: &Shared) -> Corrupt {
    poison(&sh.prod.ctl);
    poison(&sh.cons.ctl);
    Corrupt
}

/// Whether a `(tail, head)` pair is consistent for a ring of `cap` units
/// whose counters are multiples of `G`.
#[inline(always)]
pub(crate) const fn valid<const G: u64>(tail: u64, head: u64, cap: u64) -> bool {
    tail.wrapping_sub(head) <= cap && tail % G == 0 && head % G == 0
}

/// Splits `n` units starting at position `pos` of a ring of `cap` units into
/// the run up to the end of storage and the run that wraps to position 0:
/// returns the length of the first run (the second is `n - first`).
#[inline(always)]
pub(crate) const fn first_run(pos: usize, n: usize, cap: usize) -> usize {
    let to_end = cap - pos;
    if n < to_end {
        n
    } else {
        to_end
    }
}

/// Producer-side indices: its own `tail` and a cached `head`. `G` is the
/// granule every counter is a multiple of (1 for items, 8 for bytes).
///
/// Invariants: `cap` is a power of two; `tail - cached_head <= cap`; both
/// are multiples of `G`.
#[derive(Debug)]
pub(crate) struct ProdIdx<const G: u64> {
    /// Our copy of `tail` (we are its only writer), including staged units.
    pub tail: u64,
    /// Last `head` we read.
    pub cached_head: u64,
    /// Units in the ring, a power of two.
    pub cap: u64,
}

impl<const G: u64> ProdIdx<G> {
    /// A producer resuming at `tail`, with `head` read from the segment.
    ///
    /// # Errors
    /// [`Corrupt`] if the pair is inconsistent (nothing is poisoned: the
    /// caller refuses to attach).
    pub(crate) fn new(tail: u64, head: u64, cap: u64) -> Result<Self, Corrupt> {
        debug_assert!(cap.is_power_of_two());
        if valid::<G>(tail, head, cap) {
            Ok(ProdIdx { tail, cached_head: head, cap })
        } else {
            Err(Corrupt)
        }
    }

    /// Storage position of `tail`.
    #[inline(always)]
    pub(crate) fn pos(&self) -> u64 {
        self.tail & (self.cap - 1)
    }

    /// Re-reads `head`; returns the free unit count.
    ///
    /// # Errors
    /// [`Corrupt`] (and the ring is poisoned) if `head` is out of range.
    #[inline]
    pub(crate) fn refresh(&mut self, sh: &Shared) -> Result<u64, Corrupt> {
        // Acquire: pairs with the Release store of `head` in
        // `ConsIdx::release`: the consumer's reads of the units we are about
        // to reuse happen-before our writes.
        let h = sh.head.load(Ordering::Acquire);
        if !valid::<G>(self.tail, h, self.cap) {
            return Err(poison_ring(sh));
        }
        self.cached_head = h;
        Ok(self.cap - self.tail.wrapping_sub(h))
    }

    /// Free units by the cached `head`, refreshed when that says fewer than
    /// `want`.
    #[inline(always)]
    pub(crate) fn free(&mut self, sh: &Shared, want: u64) -> Result<u64, Corrupt> {
        let free = self.cap - self.tail.wrapping_sub(self.cached_head);
        if free >= want {
            Ok(free)
        } else {
            self.refresh(sh)
        }
    }

    /// Free units now, without touching the cache (a snapshot for `&self`
    /// callers; 0, and the ring poisoned, if `head` is out of range).
    #[inline]
    pub(crate) fn free_now(&self, sh: &Shared) -> u64 {
        // Relaxed: a snapshot; nothing is read or written through it.
        let h = sh.head.load(Ordering::Relaxed);
        if valid::<G>(self.tail, h, self.cap) {
            self.cap - self.tail.wrapping_sub(h)
        } else {
            poison_ring(sh);
            0
        }
    }

    /// Counts `n` written units as ours to publish, without publishing them.
    /// The caller checked that `n` units were free.
    #[inline(always)]
    pub(crate) fn stage(&mut self, n: u64) {
        debug_assert!(n <= self.cap - self.tail.wrapping_sub(self.cached_head));
        self.tail = self.tail.wrapping_add(n);
    }

    /// Publishes everything staged and wakes a sleeping consumer.
    #[inline(always)]
    pub(crate) fn publish(&mut self, sh: &Shared) {
        // Release: pairs with the Acquire load of `tail` in
        // `ConsIdx::refresh`: the unit writes happen-before the consumer's reads.
        sh.tail.store(self.tail, Ordering::Release);
        futex::notify(&sh.cons.ctl, WAITING);
    }

    /// Stages `n` units and publishes.
    #[inline(always)]
    pub(crate) fn commit(&mut self, sh: &Shared, n: u64) {
        self.stage(n);
        self.publish(sh);
    }
}

/// Consumer-side indices: its own `head` and a cached `tail`.
///
/// Invariants: `cap` is a power of two; `cached_tail - head <= cap`; both
/// are multiples of `G`.
#[derive(Debug)]
pub(crate) struct ConsIdx<const G: u64> {
    /// Our copy of `head` (we are its only writer).
    pub head: u64,
    /// Last `tail` we read.
    pub cached_tail: u64,
    /// Units in the ring, a power of two.
    pub cap: u64,
}

impl<const G: u64> ConsIdx<G> {
    /// A consumer resuming at `head`, with `tail` read from the segment.
    ///
    /// # Errors
    /// [`Corrupt`] if the pair is inconsistent.
    pub(crate) fn new(head: u64, tail: u64, cap: u64) -> Result<Self, Corrupt> {
        debug_assert!(cap.is_power_of_two());
        if valid::<G>(tail, head, cap) {
            // The cache starts at `head`: the first pop refreshes.
            Ok(ConsIdx { head, cached_tail: head, cap })
        } else {
            Err(Corrupt)
        }
    }

    /// Storage position of `head`.
    #[inline(always)]
    pub(crate) fn pos(&self) -> u64 {
        self.head & (self.cap - 1)
    }

    /// Available units by the cached `tail` (no shared access).
    #[inline(always)]
    pub(crate) fn cached(&self) -> u64 {
        self.cached_tail.wrapping_sub(self.head)
    }

    /// Re-reads `tail`; returns the available unit count.
    ///
    /// # Errors
    /// [`Corrupt`] (and the ring is poisoned) if `tail` is out of range.
    #[inline]
    pub(crate) fn refresh(&mut self, sh: &Shared) -> Result<u64, Corrupt> {
        // Acquire: pairs with the Release store of `tail` in
        // `ProdIdx::publish`: the producer's unit writes happen-before our reads.
        let t = sh.tail.load(Ordering::Acquire);
        if !valid::<G>(t, self.head, self.cap) {
            return Err(poison_ring(sh));
        }
        self.cached_tail = t;
        Ok(t.wrapping_sub(self.head))
    }

    /// Available units by the cached `tail`, refreshed when that says fewer
    /// than `want`.
    #[inline(always)]
    pub(crate) fn available(&mut self, sh: &Shared, want: u64) -> Result<u64, Corrupt> {
        let avail = self.cached();
        if avail >= want {
            Ok(avail)
        } else {
            self.refresh(sh)
        }
    }

    /// Available units now, for `&self` callers: the cached count, or, if
    /// that is below `want`, a fresh `Acquire` read of `tail` (not cached; 0,
    /// and the ring poisoned, if out of range).
    #[inline]
    pub(crate) fn available_now(&self, sh: &Shared, want: u64) -> u64 {
        let avail = self.cached();
        if avail >= want {
            return avail;
        }
        // Acquire: as in `refresh` — callers may read the units it covers.
        let t = sh.tail.load(Ordering::Acquire);
        if valid::<G>(t, self.head, self.cap) {
            t.wrapping_sub(self.head)
        } else {
            poison_ring(sh);
            0
        }
    }

    /// Releases `n` read units to the producer and wakes it if it sleeps.
    #[inline(always)]
    pub(crate) fn release(&mut self, sh: &Shared, n: u64) {
        debug_assert!(n <= self.cached());
        self.head = self.head.wrapping_add(n);
        // Release: pairs with the Acquire load of `head` in
        // `ProdIdx::refresh`: our reads of the released units happen-before
        // the producer overwrites them.
        sh.head.store(self.head, Ordering::Release);
        futex::notify(&sh.prod.ctl, WAITING);
    }
}

/// Rate-limits an end's liveness probes of its peer: the one place both
/// rings ask "is the other end gone?" from their non-blocking calls.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct Probe(core::cell::Cell<u32>);

#[cfg(not(loom))]
impl Probe {
    /// Is the peer whose side word is `word` gone? Closed, poisoned or never
    /// attached is one load ([`super::side_gone`]); otherwise `alive` (a
    /// system call) decides, but only on every `PROBE_EVERY`-th call, or at
    /// once when `force`.
    #[inline]
    pub(crate) fn peer_gone(&self, word: &AtomicU32, force: bool, alive: impl FnOnce() -> bool) -> bool {
        super::side_gone(
            word,
            || {
                let mut n = self.0.get();
                let due = super::probe_due(&mut n, force);
                self.0.set(n);
                due
            },
            alive,
        )
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn index_arithmetic() {
        let sh = Shared::default();
        let mut p = ProdIdx::<1>::new(0, 0, 4).unwrap();
        let mut c = ConsIdx::<1>::new(0, 0, 4).unwrap();
        assert_eq!(p.free(&sh, 1), Ok(4));
        p.commit(&sh, 3);
        assert_eq!(c.cached(), 0);
        assert_eq!(c.available(&sh, 1), Ok(3));
        c.release(&sh, 2);
        assert_eq!(p.free(&sh, 1), Ok(1));
        assert_eq!(p.free(&sh, 2), Ok(3));
        assert_eq!(p.pos(), 3);
        p.commit(&sh, 3);
        assert_eq!(p.pos(), 2);
        assert_eq!(first_run(3, 3, 4), 1);
        assert_eq!(first_run(0, 4, 4), 4);
        assert_eq!(first_run(2, 1, 4), 1);
        // Wrap-around of the counters themselves.
        let sh = Shared::default();
        let start = u64::MAX - 7;
        sh.tail.store(start, Ordering::Relaxed);
        sh.head.store(start, Ordering::Relaxed);
        let mut p = ProdIdx::<8>::new(start, start, 64).unwrap();
        let mut c = ConsIdx::<8>::new(start, start, 64).unwrap();
        p.commit(&sh, 16);
        assert_eq!(p.tail, 8);
        assert_eq!(c.refresh(&sh), Ok(16));
        c.release(&sh, 16);
        assert_eq!(p.free(&sh, 64), Ok(64));
    }

    #[test]
    fn out_of_range_poisons() {
        assert_eq!(ProdIdx::<1>::new(5, 0, 4).unwrap_err(), Corrupt);
        assert_eq!(ConsIdx::<8>::new(0, 4, 64).unwrap_err(), Corrupt);
        let sh = Shared::default();
        let mut c = ConsIdx::<1>::new(0, 0, 4).unwrap();
        sh.tail.store(9, Ordering::Relaxed);
        assert_eq!(c.refresh(&sh), Err(Corrupt));
        assert_ne!(sh.prod.ctl.load(Ordering::Relaxed) & super::super::POISONED, 0);
        assert_ne!(sh.cons.ctl.load(Ordering::Relaxed) & super::super::POISONED, 0);
        assert_eq!(c.available_now(&sh, 1), 0);
        let sh = Shared::default();
        let mut p = ProdIdx::<8>::new(0, 0, 64).unwrap();
        sh.head.store(3, Ordering::Relaxed);
        assert_eq!(p.free_now(&sh), 0);
        assert_ne!(sh.cons.ctl.load(Ordering::Relaxed) & super::super::POISONED, 0);
        assert_eq!(p.free(&sh, 65), Err(Corrupt));
    }
}
