//! The MPMC algorithm, independent of where its memory lives, so that loom
//! can run it on the heap. See [`super::mpmc`] for the protocol and the state
//! table of a slot's `seq` word.

use super::{poison, WAITING};
use crate::primitive::{AtomicU32, AtomicU64, Ordering, Padded};
use crate::sync::futex;

/// Set on the senders' word by `close`: sending is over for good.
pub(crate) const SHUT: u32 = 16;
/// Positions must stay below this (they are shifted left by 8).
pub(crate) const POS_LIMIT: u64 = 1 << 56;

/// The shared part of an MPMC ring.
#[derive(Default, Debug)]
#[repr(C)]
pub(crate) struct Shared {
    /// Next position to claim for sending (helped forward by anyone).
    pub tail: Padded<AtomicU64>,
    /// Next position to claim for receiving.
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
    /// The shared state is inconsistent; the ring was poisoned.
    Corrupt,
}

/// Where a ring's memory lives.
pub(crate) trait Mem {
    /// The shared indices and control words.
    fn shared(&self) -> &Shared;
    /// The capacity, a power of two >= 2.
    fn cap(&self) -> u64;
    /// The `seq` word of the slot for position `pos` (masked by the callee).
    fn seq(&self, pos: u64) -> &AtomicU64;
    /// Whether the process behind owner `tag` is known to be dead.
    fn owner_dead(&self, tag: u8) -> bool;
    /// A counter that rate-limits liveness probes.
    fn polls(&self) -> &AtomicU32;
    /// Most items held at once; at most `cap`.
    fn bound(&self) -> u64 {
        self.cap()
    }
}

/// Advances `word` from `pos` to `pos + 1` if nobody did yet.
#[inline]
fn help(word: &AtomicU64, pos: u64) {
    // Relaxed: positions are hints; the slots' `seq` words carry the data.
    let _ = word.compare_exchange(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed);
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

/// Sends one item: claims a slot with owner `tag`, lets `write` fill the
/// slot of the position it is given, publishes it.
#[inline]
pub(crate) fn try_send(m: &impl Mem, tag: u8, write: impl FnOnce(u64)) -> Result<(), Blocked> {
    let sh = m.shared();
    let cap = m.cap();
    let mut pos = sh.tail.load(Ordering::Relaxed);
    let mut skips = 0u64;
    loop {
        if pos >= POS_LIMIT || skips > 2 * cap {
            return Err(corrupt(m));
        }
        let seq = m.seq(pos);
        // Acquire: pairs with the Release store of `seq` by the receiver that
        // emptied this slot, so its read is done before we write.
        let s = seq.load(Ordering::Acquire);
        let free = pos << 8;
        if s == free {
            // A capacity that is not a power of two: refuse positions at or
            // past `head + bound`. A stale `head` only errs towards "full".
            // Relaxed: a bound, not a hand-off; `seq` carries the data.
            if m.bound() < cap && pos.wrapping_sub(sh.head.load(Ordering::Relaxed)) >= m.bound() {
                return Err(Blocked::Wait);
            }
            // Acquire: as above (the CAS reads the same store).
            if seq.compare_exchange(s, free | u64::from(tag), Ordering::Acquire, Ordering::Relaxed).is_ok() {
                help(&sh.tail, pos);
                write(pos);
                // Release: pairs with the Acquire load of `seq` in `try_recv`:
                // the payload is written before it is seen.
                seq.store((pos + 1) << 8, Ordering::Release);
                futex::notify(&sh.recv, WAITING);
                return Ok(());
            }
            continue;
        }
        let b = s >> 8;
        if (b.wrapping_sub(pos) as i64) < 0 {
            // The previous lap's item is still there (or being read): full.
            if s & 0xff != 0 && recover(m, s, pos) {
                continue;
            }
            return Err(Blocked::Wait);
        }
        // Claimed by another sender, or already past: help `tail` on.
        help(&sh.tail, pos);
        skips += 1;
        pos = (pos + 1).max(sh.tail.load(Ordering::Relaxed));
    }
}

/// Receives one item: claims a published slot with owner `tag`, lets `read`
/// take the item of the position it is given, frees the slot.
#[inline]
pub(crate) fn try_recv<R>(m: &impl Mem, tag: u8, read: impl FnOnce(u64) -> R) -> Result<R, Blocked> {
    let sh = m.shared();
    let cap = m.cap();
    let mut pos = sh.head.load(Ordering::Relaxed);
    let mut skips = 0u64;
    loop {
        if pos >= POS_LIMIT || skips > 2 * cap {
            return Err(corrupt(m));
        }
        let seq = m.seq(pos);
        // Acquire: pairs with the Release store of `seq` in `try_send`.
        let s = seq.load(Ordering::Acquire);
        let full = (pos + 1) << 8;
        if s == full {
            if seq.compare_exchange(s, full | u64::from(tag), Ordering::Acquire, Ordering::Relaxed).is_ok() {
                help(&sh.head, pos);
                let r = read(pos);
                // Release: pairs with the Acquire load of `seq` in `try_send`:
                // our read is done before the slot is reused.
                seq.store((pos + cap) << 8, Ordering::Release);
                futex::notify(&sh.send, WAITING);
                return Ok(r);
            }
            continue;
        }
        let b = s >> 8;
        if (b.wrapping_sub(pos + 1) as i64) < 0 {
            // Not published yet: empty, or a sender is still writing it.
            if s & 0xff != 0 && recover(m, s, pos) {
                continue;
            }
            return Err(Blocked::Wait);
        }
        // Claimed by another receiver, or already done: help `head` on.
        help(&sh.head, pos);
        skips += 1;
        pos = (pos + 1).max(sh.head.load(Ordering::Relaxed));
    }
}

/// The claim half of `try_send` alone: what a sender killed between claim
/// and publish leaves behind (for crash tests).
pub(crate) fn claim_only(m: &impl Mem, tag: u8) -> bool {
    let sh = m.shared();
    let pos = sh.tail.load(Ordering::Relaxed);
    let seq = m.seq(pos);
    let ok = seq.compare_exchange(pos << 8, pos << 8 | u64::from(tag), Ordering::Acquire, Ordering::Relaxed).is_ok();
    if ok {
        help(&sh.tail, pos);
    }
    ok
}

/// A slot is held (`s` carries an owner tag); release it if the owner is
/// dead. Rate-limited: the liveness probe may be a system call.
fn recover(m: &impl Mem, s: u64, pos: u64) -> bool {
    if m.polls().fetch_add(1, Ordering::Relaxed) % 64 != 0 {
        return false;
    }
    recover_now(m, s, pos)
}

/// Releases the slot of `pos`, seen in state `s`, if its owner is dead: a
/// half-written or half-read slot becomes free for the next lap, and one
/// message is counted lost.
pub(crate) fn recover_now(m: &impl Mem, s: u64, pos: u64) -> bool {
    let tag = (s & 0xff) as u8;
    if tag == 0 || !m.owner_dead(tag) {
        return false;
    }
    release(m, s, pos)
}

/// Releases the slot of `pos` (any position with the same slot index), held
/// in state `s` by an owner known to be dead.
pub(crate) fn release(m: &impl Mem, s: u64, pos: u64) -> bool {
    let cap = m.cap();
    let b = s >> 8;
    // A write claim of position p is `p << 8 | t` with p ≡ slot (mod cap); a
    // read claim is `(p + 1) << 8 | t`. Capacity >= 2 tells them apart.
    // Anything else (e.g. position 0 tagged on slot 1, which would make
    // `b - 1` underflow) was written by a hostile or buggy process: poison.
    let next = if b & (cap - 1) == pos & (cap - 1) {
        b + cap
    } else if b != 0 && b & (cap - 1) == pos.wrapping_add(1) & (cap - 1) {
        b - 1 + cap
    } else {
        corrupt(m);
        return false;
    };
    // AcqRel: we take over the dead owner's slot; Release pairs with the
    // Acquire loads of `seq` by the next sender or receiver.
    if m.seq(pos).compare_exchange(s, next << 8, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return false;
    }
    let sh = m.shared();
    sh.lost.fetch_add(1, Ordering::Relaxed);
    futex::notify(&sh.send, WAITING);
    futex::notify(&sh.recv, WAITING);
    true
}
