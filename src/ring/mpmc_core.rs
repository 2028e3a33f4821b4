//! The MPMC algorithm, independent of where its memory lives, so that loom
//! can run it on the heap. See [`super::mpmc`] for the slot state table.
//!
//! # Implementation details
//!
//! A slot's `seq` word is `b << 8 | tag`. For a slot whose position `p` is
//! congruent to the slot index (mod `cap`), it is in one of four *phases* of
//! *lap* `p`:
//!
//! | `seq`              | lap   | phase     |
//! |--------------------|-------|-----------|
//! | `p << 8`           | `p`   | `Free`    |
//! | `p << 8 \| t`      | `p`   | `Writing` (owner `t`) |
//! | `(p + 1) << 8`     | `p`   | `Full`    |
//! | `(p + 1) << 8 \| t`| `p`   | `Reading` (owner `t`) |
//!
//! A finished read (or the recovery of a dead owner's claim) moves the slot
//! to `Free` of lap `p + cap`. `cap >= 2` keeps `b ≡ p` and `b ≡ p + 1`
//! apart. A word that fits none of the four rows for its slot was written by
//! a hostile or buggy process: *corrupt*.
//!
//! ## What contention cannot break
//!
//! Every step that moves a position or a slot on is a `Release` (the claim
//! CASes, the publish and free stores, the helping CASes on `tail`/`head`),
//! and every read of them an `Acquire`. So a sender that reached position
//! `pos` has seen the write claims of all positions below `pos`, and a
//! receiver has seen the read claims (or recoveries) of all positions below
//! its `pos`. From that, for a slot seen at position `pos`:
//!
//! - a sender never sees a lap below `pos - cap`, nor `Free` of lap
//!   `pos - cap`;
//! - a receiver never sees a lap below `pos - cap`, and of lap `pos - cap`
//!   only `Reading`;
//! - against `tail` loaded *after* the slot: a `Free` lap is at most
//!   `tail + cap - 1`, a `Writing` lap at most `tail`, a `Full` or
//!   `Reading` lap at most `tail - 1`; a receiver skipping `pos` has
//!   `pos < tail`, and every position below `tail - cap` is read or
//!   recovered (a sender claimed the position one lap later).
//!
//! Anything else is corruption, and only that poisons the ring. These
//! bounds are also what makes the skip loops finite on a scribbled
//! segment: a sender's skips move `tail` along with its `pos`, so a lap
//! bounded by `tail + cap` is passed within two laps; a receiver starts at
//! most one lap below `tail`, which a static scribble cannot move. (The previous "more than 2 × cap skips"
//! rule fired under plain contention: a thread can lose that many races in
//! a row to live peers.)
//!
//! ## Linearizable `try_` forms
//!
//! A receiver whose head slot is `Writing` for its own position, or a sender
//! whose tail slot is `Reading` of the previous lap, waits (with backoff)
//! for that owner instead of answering `Empty`/`Full`: as in
//! crossbeam-channel, the slot is in a transient state that a live owner
//! ends within a few instructions. If the owner is dead (its kernel lock is
//! free) the slot is recovered at once: moved to `Free` of the next lap and
//! counted in `lost`. There is no rate limit on recovery.

use super::{poison, WAITING};
use crate::primitive::{AtomicU32, AtomicU64, Ordering, Padded};
use crate::sync::futex;

/// Set on the senders' word by `close`: sending is over for good.
pub(crate) const SHUT: u32 = 16;
/// Positions must stay below this (they are shifted left by 8).
pub(crate) const POS_LIMIT: u64 = 1 << 56;
/// Owner tag of handles whose death the kernel cannot report (rings in
/// caller-provided memory): their claims are never recovered, and waiting
/// for them gives up after a backoff.
pub(crate) const UNKNOWN_TAG: u8 = 255;

/// The shared part of an MPMC ring.
#[derive(Default, Debug)]
#[repr(C)]
pub(crate) struct Shared {
    /// Next position to claim for sending (helped forward by anyone).
    /// Invariant: every position below it was claimed for writing.
    pub tail: Padded<AtomicU64>,
    /// Next position to claim for receiving. Invariant: every position
    /// below it was claimed for reading, or recovered.
    pub head: Padded<AtomicU64>,
    /// Senders' control word; senders sleep here while the ring is full.
    pub send: Padded<AtomicU32>,
    /// Receivers' control word; receivers sleep here while it is empty.
    pub recv: Padded<AtomicU32>,
    /// Messages lost with processes that died holding a slot.
    pub lost: Padded<AtomicU64>,
}

#[cfg(not(loom))]
// SAFETY: `#[repr(C)]`, made only of atomics (and padding never read).
unsafe impl crate::shm::segment::ShmSafe for Shared {}

/// Why an operation could not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// Full (sending) or empty (receiving).
    Wait,
    /// The slot in the way is held by a live owner that is still working on
    /// it (a sender writing the head slot, a receiver reading the tail
    /// slot's previous item): not full or empty, but not ready yet. A `try_`
    /// form calls again; a blocking form waits (the owner's publish or free
    /// wakes it).
    Busy,
    /// The shared state is inconsistent; the ring was poisoned.
    Corrupt,
}

/// Where a ring's memory lives.
pub(crate) trait Mem {
    /// The shared indices and control words.
    fn shared(&self) -> &Shared;
    /// The number of slots, a power of two >= 2.
    fn cap(&self) -> u64;
    /// The `seq` word of the slot for position `pos` (masked by the callee).
    fn seq(&self, pos: u64) -> &AtomicU64;
    /// Whether the process behind owner `tag` is known to be dead.
    fn owner_dead(&self, tag: u8) -> bool;
    /// Most items held at once; at most `cap`.
    fn bound(&self) -> u64 {
        self.cap()
    }
}

/// The phase of a slot within its lap (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Free for a sender at the lap's position.
    Free,
    /// Claimed by a sender with this owner tag.
    Writing(u8),
    /// Holds the item of the lap's position.
    Full,
    /// Claimed by a receiver with this owner tag.
    Reading(u8),
}

/// A decoded `seq` word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The position this slot is on.
    pub lap: u64,
    /// Where in that position's life it is.
    pub phase: Phase,
}

/// Decodes `s`, the `seq` word of the slot of `pos`; `None` if it fits no
/// legal state of that slot.
#[inline]
pub(crate) fn decode(s: u64, pos: u64, cap: u64) -> Option<Slot> {
    let b = s >> 8;
    let tag = (s & 0xff) as u8;
    let m = cap - 1;
    if b & m == pos & m {
        Some(Slot { lap: b, phase: if tag == 0 { Phase::Free } else { Phase::Writing(tag) } })
    } else if b & m == pos.wrapping_add(1) & m && b != 0 {
        Some(Slot { lap: b - 1, phase: if tag == 0 { Phase::Full } else { Phase::Reading(tag) } })
    } else {
        None
    }
}

/// Whether a slot state seen before loading `tail` is within the bounds
/// that every legal history keeps (module docs).
#[inline]
fn below_tail(slot: Slot, tail: u64, cap: u64) -> bool {
    match slot.phase {
        Phase::Free => slot.lap < tail.saturating_add(cap),
        Phase::Writing(_) => slot.lap <= tail,
        Phase::Full | Phase::Reading(_) => slot.lap < tail,
    }
}

/// Advances `word` from `pos` to `pos + 1` if nobody did yet.
#[inline]
fn help(word: &AtomicU64, pos: u64) {
    // AcqRel: Release pairs with the Acquire loads of `tail`/`head`: whoever
    // starts at `pos + 1` sees the claim of `pos` we saw (Acquire).
    let _ = word.compare_exchange(pos, pos + 1, Ordering::AcqRel, Ordering::Relaxed);
}

#[cold]
fn corrupt(m: &impl Mem) -> Blocked {
    let sh = m.shared();
    poison(&sh.send);
    poison(&sh.recv);
    futex::wake_all(&sh.send);
    futex::wake_all(&sh.recv);
    Blocked::Corrupt
}

/// Backoff while a live owner finishes its step.
struct Spin {
    #[cfg(not(loom))]
    backoff: crossbeam_utils::Backoff,
}

impl Spin {
    fn new() -> Spin {
        Spin {
            #[cfg(not(loom))]
            backoff: crossbeam_utils::Backoff::new(),
        }
    }

    /// Whether the owner had its chance: ask the kernel about it now.
    fn long(&self) -> bool {
        #[cfg(not(loom))]
        return self.backoff.is_completed();
        #[cfg(loom)]
        true
    }

    fn snooze(&self) {
        #[cfg(not(loom))]
        self.backoff.snooze();
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}

/// The slot of `pos`, seen as `s` (phase `Writing` or `Reading` of `tag`),
/// is held by an owner that is not done. Backs off a little and returns to
/// look again; once the backoff is spent, recovers the slot if the owner is
/// dead (and looks again), or reports `Busy` (`Wait` for an owner the
/// kernel cannot track).
#[inline(never)]
fn await_owner(m: &impl Mem, s: u64, pos: u64, tag: u8, spin: &Spin) -> Result<(), Blocked> {
    if spin.long() {
        if tag == UNKNOWN_TAG {
            return Err(Blocked::Wait);
        }
        if !m.owner_dead(tag) {
            return Err(Blocked::Busy);
        }
        release(m, s, pos)?;
        return Ok(());
    }
    spin.snooze();
    Ok(())
}

/// Claims a slot for sending with owner `tag`; returns its position. The
/// caller writes the payload and then calls [`publish`].
#[inline]
pub(crate) fn claim_send(m: &impl Mem, tag: u8) -> Result<u64, Blocked> {
    let sh = m.shared();
    let cap = m.cap();
    // Acquire: pairs with the Release of the helping CASes on `tail`: the
    // write claims of all positions below `pos` are visible.
    let mut pos = sh.tail.load(Ordering::Acquire);
    let spin = Spin::new();
    loop {
        if pos >= POS_LIMIT {
            return Err(corrupt(m));
        }
        let seq = m.seq(pos);
        // Acquire: pairs with the Release stores and CASes of `seq` (the
        // receiver that emptied this slot has finished reading it).
        let s = seq.load(Ordering::Acquire);
        let Some(slot) = decode(s, pos, cap) else { return Err(corrupt(m)) };
        if slot.lap == pos && slot.phase == Phase::Free {
            if m.bound() < cap && !room(m, pos) {
                return Err(Blocked::Wait);
            }
            // AcqRel: Acquire as for the load above; Release pairs with the
            // Acquire loads of `seq` by whoever sees our claim (they then see
            // everything we saw, e.g. `tail >= pos`).
            if seq.compare_exchange(s, s | u64::from(tag), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                help(&sh.tail, pos);
                return Ok(pos);
            }
            continue;
        }
        if slot.lap < pos {
            if slot.lap + cap != pos {
                return Err(corrupt(m));
            }
            match slot.phase {
                // The previous lap's item is unread (or still being
                // written): the ring is full.
                Phase::Full | Phase::Writing(_) => return Err(Blocked::Wait),
                Phase::Reading(t) => {
                    await_owner(m, s, pos, t, &spin)?;
                    continue;
                }
                Phase::Free => return Err(corrupt(m)),
            }
        }
        // Taken by another sender, or the slot is ahead: skip it.
        // Acquire: as at the top; loaded after `seq`, it bounds the lap.
        let tail = sh.tail.load(Ordering::Acquire);
        if !below_tail(slot, tail, cap) {
            return Err(corrupt(m));
        }
        help(&sh.tail, pos);
        pos = (pos + 1).max(tail);
    }
}

/// Publishes the item written into the claimed slot of `pos`.
#[inline]
pub(crate) fn publish(m: &impl Mem, pos: u64) {
    // Release: pairs with the Acquire load of `seq` in `claim_recv`: the
    // payload is written before it is seen.
    m.seq(pos).store((pos + 1) << 8, Ordering::Release);
    futex::notify(&m.shared().recv, WAITING);
}

/// Whether position `pos` is within the bound (a capacity that is not a
/// power of two). A stale `head` errs towards "full", so a `head` that lags
/// a receiver's claim is helped on first.
#[cold]
fn room(m: &impl Mem, pos: u64) -> bool {
    let sh = m.shared();
    for _ in 0..m.cap() {
        // Acquire: pairs with the helping CASes on `head`.
        let h = sh.head.load(Ordering::Acquire);
        if pos < h {
            return false;
        }
        if pos - h < m.bound() {
            return true;
        }
        // Acquire: pairs with the Release CASes and stores of `seq`.
        let s = m.seq(h).load(Ordering::Acquire);
        match decode(s, h, m.cap()) {
            Some(Slot { lap, phase: Phase::Reading(_) }) if lap == h => help(&sh.head, h),
            Some(Slot { lap, .. }) if lap > h => help(&sh.head, h),
            _ => return false,
        }
    }
    false
}

/// Sends one item: claims a slot with owner `tag`, lets `write` fill the
/// slot of the position it is given, publishes it.
#[inline]
pub(crate) fn try_send(m: &impl Mem, tag: u8, write: impl FnOnce(u64)) -> Result<(), Blocked> {
    let pos = claim_send(m, tag)?;
    write(pos);
    publish(m, pos);
    Ok(())
}

/// Claims a published slot for receiving with owner `tag`; returns its
/// position. The caller reads the payload and then calls [`free`].
#[inline]
pub(crate) fn claim_recv(m: &impl Mem, tag: u8) -> Result<u64, Blocked> {
    let sh = m.shared();
    let cap = m.cap();
    // Acquire: pairs with the Release of the helping CASes on `head`.
    let mut pos = sh.head.load(Ordering::Acquire);
    let spin = Spin::new();
    loop {
        if pos >= POS_LIMIT {
            return Err(corrupt(m));
        }
        let seq = m.seq(pos);
        // Acquire: pairs with the Release store of `seq` in `publish`.
        let s = seq.load(Ordering::Acquire);
        let Some(slot) = decode(s, pos, cap) else { return Err(corrupt(m)) };
        if slot.lap == pos {
            match slot.phase {
                Phase::Full => {
                    // AcqRel: Acquire as above; Release as in `claim_send`.
                    if seq.compare_exchange(s, s | u64::from(tag), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                        help(&sh.head, pos);
                        return Ok(pos);
                    }
                    continue;
                }
                // Nothing sent to `pos` yet: empty.
                Phase::Free => return Err(Blocked::Wait),
                // A sender is writing it: it is as good as sent.
                Phase::Writing(t) => {
                    await_owner(m, s, pos, t, &spin)?;
                    continue;
                }
                Phase::Reading(_) => {}
            }
        } else if slot.lap < pos {
            // The previous lap still being read: `pos` cannot be written yet.
            if slot.lap + cap == pos && matches!(slot.phase, Phase::Reading(_)) {
                return Err(Blocked::Wait);
            }
            return Err(corrupt(m));
        }
        // Taken by another receiver, or the slot is ahead: skip it.
        // Acquire: pairs with the helping CASes; loaded after `seq`, it
        // bounds the lap and the skip.
        let tail = sh.tail.load(Ordering::Acquire);
        if !below_tail(slot, tail, cap) || pos >= tail {
            return Err(corrupt(m));
        }
        help(&sh.head, pos);
        // Every position below `tail - cap` is read (or recovered): the
        // sender of the position one lap later found its slot free. So a
        // receiver far behind jumps there (and a scribbled `head` far below
        // `tail` costs at most one lap of skips).
        pos = (pos + 1).max(tail.saturating_sub(cap)).max(sh.head.load(Ordering::Relaxed));
    }
}

/// Frees the slot of `pos` after its item was read.
#[inline]
pub(crate) fn free(m: &impl Mem, pos: u64) {
    // Release: pairs with the Acquire load of `seq` in `claim_send`: our
    // read is done before the slot is reused.
    m.seq(pos).store((pos + m.cap()) << 8, Ordering::Release);
    futex::notify(&m.shared().send, WAITING);
}

/// Receives one item: claims a published slot with owner `tag`, lets `read`
/// take the item of the position it is given, frees the slot.
#[inline]
pub(crate) fn try_recv<R>(m: &impl Mem, tag: u8, read: impl FnOnce(u64) -> R) -> Result<R, Blocked> {
    let pos = claim_recv(m, tag)?;
    let r = read(pos);
    free(m, pos);
    Ok(r)
}

/// Releases the slot of `pos`, seen in state `s`, if its owner is dead: a
/// half-written or half-read slot becomes free for the next lap, and one
/// message is counted lost. `Ok(true)` if this call released it.
pub(crate) fn recover_now(m: &impl Mem, s: u64, pos: u64) -> Result<bool, Blocked> {
    let tag = (s & 0xff) as u8;
    if tag == 0 || tag == UNKNOWN_TAG || !m.owner_dead(tag) {
        return Ok(false);
    }
    release(m, s, pos)
}

/// Releases the slot of `pos` (any position on the same slot), held in
/// state `s` by an owner known to be dead. `Ok(false)` if the slot moved
/// on meanwhile; `Err(Corrupt)` (the ring is poisoned) if `s` is no claim.
pub(crate) fn release(m: &impl Mem, s: u64, pos: u64) -> Result<bool, Blocked> {
    let cap = m.cap();
    let sh = m.shared();
    let lap = match decode(s, pos, cap) {
        Some(Slot { lap, phase: Phase::Writing(_) }) => {
            // The dead sender may not have helped `tail` past its claim.
            help(&sh.tail, lap);
            lap
        }
        Some(Slot { lap, phase: Phase::Reading(_) }) => {
            help(&sh.head, lap);
            lap
        }
        // E.g. position 0 tagged on slot 1 (which would make `lap` underflow):
        // written by a hostile or buggy process.
        _ => return Err(corrupt(m)),
    };
    if lap + cap >= POS_LIMIT {
        return Err(corrupt(m));
    }
    // AcqRel: we take over the dead owner's slot (Acquire: after its last
    // step); Release pairs with the Acquire loads of `seq` by the next
    // sender or receiver (they see the helped index too).
    if m.seq(pos).compare_exchange(s, (lap + cap) << 8, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return Ok(false);
    }
    sh.lost.fetch_add(1, Ordering::Relaxed);
    futex::notify(&sh.send, WAITING);
    futex::notify(&sh.recv, WAITING);
    Ok(true)
}
