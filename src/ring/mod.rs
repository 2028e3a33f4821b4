//! Ring buffers: [`spsc`] (one producer, one consumer), [`mpmc`] (Vyukov's
//! bounded queue), [`broadcast`] (one publisher, many subscribers), and the
//! pieces they share: side-control words, roles and capacity checks.
//!
//! | file            | what lives there                                                    |
//! |-----------------|---------------------------------------------------------------------|
//! | `spsc_core.rs`  | the SPSC index protocol (Lamport's ring with cached indices), validation, poisoning, liveness probes; loom runs it on the heap |
//! | `spsc.rs`       | the item ring: slot array, roles, the public `spsc` API             |
//! | `chunks.rs`     | zero-copy `WriteChunk`/`ReadChunk` on the item ring                  |
//! | `bytes.rs`      | byte frames on the same SPSC core: the transport under `Pipe`       |
//! | `mpmc_core.rs`, `mpmc.rs` | Vyukov's bounded MPMC queue, and its segment-backed facade |
//! | `arena.rs`      | byte messages in MPMC slots plus a sparse arena: the storage under `ByteQueue` |
//! | `loom_tests.rs` | loom models of both cores                                           |
//!
//! # Implementation details
//!
//! Each side of a ring (producers, consumers) has one 32-bit *control word*
//! in shared memory. It is also the futex word that side's sleepers wait on:
//!
//! | bits   | name       | meaning                                                        |
//! |--------|------------|----------------------------------------------------------------|
//! | 0      | `WAITING`  | a handle of this side sleeps on this word; the other side wakes it |
//! | 1      | `CLOSED`   | the last handle of this side was dropped                      |
//! | 2      | `ATTACHED` | a handle of this side has existed (before that, "no peer yet" is not "peer gone") |
//! | 3      | `POISONED` | an index read from the segment was out of range: the ring is unusable |
//! | 8..=31 | generation | bumped by every attach, so a late `close` cannot mark a new holder closed |
//!
//! A side is *gone* when `CLOSED` is set, or when it was `ATTACHED` and no
//! live process holds its role lock any more (a `SIGKILL`ed holder — the
//! kernel released its lock). The first is one load; the second a system
//! call, so it is only asked on slow paths and rate-limited.

#[cfg(not(loom))]
pub(crate) mod arena;
#[cfg(not(loom))]
pub mod broadcast;
pub(crate) mod broadcast_core;
pub(crate) mod bytes;
#[cfg(not(loom))]
pub(crate) mod chunks;
#[cfg(not(loom))]
pub mod mpmc;
pub(crate) mod mpmc_core;
pub mod spsc;
pub(crate) mod spsc_core;

#[cfg(not(loom))]
use crate::error::{Error, Result};
use crate::primitive::{AtomicU32, Ordering};

/// A sleeper waits on this word.
pub(crate) const WAITING: u32 = 1;
/// The last handle of the side was dropped.
pub(crate) const CLOSED: u32 = 2;
/// A handle of the side has existed.
pub(crate) const ATTACHED: u32 = 4;
/// The ring's shared indices were found out of range.
pub(crate) const POISONED: u32 = 8;
/// One generation step.
const GEN: u32 = 1 << 8;

/// Marks a side as (re)attached: clears `CLOSED`, sets `ATTACHED`, bumps the
/// generation. Call it after taking the side's lock. Returns the new
/// generation bits.
pub(crate) fn side_attach(word: &AtomicU32) -> u32 {
    // AcqRel: Release pairs with the Acquire of `side_gone`, Acquire with a
    // previous `side_close` (we see the state it left).
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        let new = ((cur & !CLOSED) | ATTACHED).wrapping_add(GEN);
        match word.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return new & !(GEN - 1),
            Err(c) => cur = c,
        }
    }
}

/// The side's current generation; read it *before* the liveness probe that
/// decides a close, and pass it to [`side_close`].
pub(crate) fn side_gen(word: &AtomicU32) -> u32 {
    // Acquire: pairs with the AcqRel CAS in `side_attach`.
    word.load(Ordering::Acquire) & !(GEN - 1)
}

/// Marks a side closed unless it was attached again since generation `gen`
/// (from [`side_gen`]): an attach that raced with our probe wins.
pub(crate) fn side_close(word: &AtomicU32, gen: u32) {
    let mut cur = word.load(Ordering::Relaxed);
    while cur & !(GEN - 1) == gen {
        // Release: pairs with the Acquire load in `side_gone`: whoever sees
        // CLOSED also sees everything this side published before.
        match word.compare_exchange_weak(cur, cur | CLOSED, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(c) => cur = c,
        }
    }
}

/// Sets `POISONED` on a side word.
pub(crate) fn poison(word: &AtomicU32) {
    // Release: pairs with the Acquire load in `side_gone_fast`.
    word.fetch_or(POISONED, Ordering::Release);
}

/// The fast part of "is the side gone": `Some(true)` if closed or poisoned,
/// `Some(false)` if never attached, `None` if a liveness probe must decide.
#[inline]
pub(crate) fn side_gone_fast(word: &AtomicU32) -> Option<bool> {
    // Acquire: pairs with the Release in `side_close` (see there).
    let c = word.load(Ordering::Acquire);
    if c & (CLOSED | POISONED) != 0 {
        Some(true)
    } else if c & ATTACHED == 0 {
        Some(false)
    } else {
        None
    }
}

/// Is the side whose control word is `word` gone? Closed or poisoned is one
/// load; a side that was attached is then asked about with `alive` (a system
/// call), but only if `due()` says a probe is due.
#[inline]
pub(crate) fn side_gone(word: &AtomicU32, due: impl FnOnce() -> bool, alive: impl FnOnce() -> bool) -> bool {
    match side_gone_fast(word) {
        Some(g) => g,
        None => due() && !alive(),
    }
}

/// Counts one poll of a non-blocking call; a kernel probe is due on every
/// `PROBE_EVERY`-th, or at once when `force`.
#[cfg(not(loom))]
#[inline]
pub(crate) fn probe_due(polls: &mut u32, force: bool) -> bool {
    *polls = polls.wrapping_add(1);
    force || *polls % PROBE_EVERY == 0
}

/// Rounds a requested capacity up to a power of two and checks the slot array
/// fits in a segment.
#[cfg(not(loom))]
pub(crate) fn ring_capacity(requested: usize, elem_size: usize) -> Result<usize> {
    let bad = |why: String| Err(Error::InvalidArgument { reason: why });
    if requested == 0 {
        return bad("capacity must be at least 1".into());
    }
    let Some(cap) = requested.checked_next_power_of_two() else {
        return bad(format!("capacity {requested} is too large"));
    };
    if cap > (1 << 40) || cap.checked_mul(elem_size.max(1)).is_none_or(|b| b > (1 << 42)) {
        return bad(format!("capacity {requested} of {elem_size}-byte elements is too large"));
    }
    Ok(cap)
}

/// Checks a capacity read from a segment header.
#[cfg(not(loom))]
pub(crate) fn stored_capacity(name: &str, cap: u64, elem_size: usize) -> Result<usize> {
    let ok = cap.is_power_of_two() && usize::try_from(cap).is_ok_and(|c| ring_capacity(c, elem_size).ok() == Some(c));
    if ok {
        Ok(cap as usize)
    } else {
        Err(Error::Corrupted {
            name: name.into(),
            reason: format!("stored capacity {cap} is not a valid ring capacity"),
        })
    }
}

/// The largest element alignment a ring supports: the page size. Segments
/// are mapped at page boundaries, so any alignment up to this can be given
/// to the slot array; larger ones are refused with
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
pub const MAX_ALIGN: usize = 4096;

/// Checks that `T`'s alignment is at most [`MAX_ALIGN`].
#[cfg(not(loom))]
pub(crate) fn check_align<T>() -> Result<()> {
    let align = core::mem::align_of::<T>();
    if align > MAX_ALIGN {
        return Err(Error::InvalidArgument {
            reason: format!(
                "{} is aligned to {align} bytes; rings support alignments up to {MAX_ALIGN} (the page size): \
                 lower the type's #[repr(align)]",
                core::any::type_name::<T>()
            ),
        });
    }
    Ok(())
}

/// Rounds `n` up to a multiple of `align` (a power of two).
#[cfg(not(loom))]
pub(crate) const fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// How often (in empty or full polls) a non-blocking call asks the kernel
/// whether the peer still lives.
#[cfg(not(loom))]
pub(crate) const PROBE_EVERY: u32 = 1024;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn capacities() {
        assert_eq!(ring_capacity(1, 8).unwrap(), 1);
        assert_eq!(ring_capacity(3, 8).unwrap(), 4);
        assert_eq!(ring_capacity(1024, 8).unwrap(), 1024);
        assert!(ring_capacity(0, 8).is_err());
        assert!(ring_capacity(usize::MAX, 8).is_err());
        assert!(stored_capacity("r", 3, 8).is_err());
        assert!(stored_capacity("r", 0, 8).is_err());
        assert_eq!(stored_capacity("r", 64, 8).unwrap(), 64);
    }

    #[test]
    fn side_words() {
        let w = AtomicU32::new(0);
        assert_eq!(side_gone_fast(&w), Some(false));
        side_attach(&w);
        let g = side_gen(&w);
        assert_eq!(side_gone_fast(&w), None);
        side_close(&w, g);
        assert_eq!(side_gone_fast(&w), Some(true));
        let g2 = side_attach(&w);
        assert_ne!(g, g2);
        side_close(&w, g); // stale close: ignored
        assert_eq!(side_gone_fast(&w), None);
        poison(&w);
        assert_eq!(side_gone_fast(&w), Some(true));
    }
}
