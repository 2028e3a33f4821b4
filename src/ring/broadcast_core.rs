//! The broadcast algorithm, independent of where its memory lives, so that
//! loom can run it on the heap. See [`super::broadcast`] for the protocol and
//! the state table of a slot's sequence word.
//!
//! Everything here reads shared memory that another process may scribble on:
//! positions and cursors are range-checked before use, and an inconsistency
//! poisons the ring ([`Corrupt`]) instead of panicking or looping.

use super::{poison, WAITING};
use crate::primitive::{AtomicU32, AtomicU64, Ordering, Padded};
use crate::sync::futex;

#[cfg(loom)]
use loom::sync::atomic::fence;
#[cfg(not(loom))]
use std::sync::atomic::fence;

/// Positions stay below this, so that `2 * position + 2` never overflows.
pub(crate) const POS_LIMIT: u64 = 1 << 62;
/// Bit 0 of an entry's `state`: a subscriber holds the entry. Bits 1.. are a
/// generation, bumped by every join, so a stale detach cannot free a new
/// holder's entry.
pub(crate) const ACTIVE: u32 = 1;

/// The shared control block of a broadcast ring.
#[derive(Default, Debug)]
#[repr(C)]
pub(crate) struct Shared {
    /// Count of messages ever published; only the publisher writes it.
    /// Message `p` lives in slot `p % capacity`.
    pub tail: Padded<AtomicU64>,
    /// The publisher's side-control word (see [`super`]): `ATTACHED`,
    /// `CLOSED`, `POISONED`, and `WAITING` while a lossless publisher sleeps
    /// on a full ring.
    pub pub_ctl: Padded<AtomicU32>,
    /// The subscribers' futex word: `WAITING` while any of them sleeps on an
    /// empty ring; `POISONED` mirrors the publisher's word.
    pub sub_ctl: Padded<AtomicU32>,
    /// One past the highest subscriber entry ever used (a hint that bounds
    /// the publisher's scan; clamped to the table size when read).
    pub hi: Padded<AtomicU32>,
}

/// One subscriber's entry in the shared table, on its own cache-line pair.
#[derive(Default, Debug)]
#[repr(C)]
pub(crate) struct Entry {
    /// The next position this subscriber will read, published lazily: every
    /// `batch` messages, before it sleeps, and when the publisher waits.
    /// For a live subscriber of a lossless ring, `tail - cap <= cursor <= tail`.
    pub cursor: AtomicU64,
    /// [`ACTIVE`] and the generation.
    pub state: AtomicU32,
    /// Pid of the holder (informational, for `ringshm info`).
    pub pid: AtomicU32,
}

#[cfg(not(loom))]
// SAFETY: `#[repr(C)]`, made only of atomics (and padding never read).
unsafe impl crate::shm::segment::ShmSafe for Shared {}
#[cfg(not(loom))]
// SAFETY: as above.
unsafe impl crate::shm::segment::ShmSafe for Entry {}

/// The shared state was found inconsistent; the ring is now poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// Where a ring's memory is: the control block, the subscriber table and the
/// slots, each slot `stride` words: the sequence word, then the payload.
pub(crate) struct View<'a> {
    pub sh: &'a Shared,
    pub entries: &'a [Padded<Entry>],
    /// `cap * stride` words.
    pub slots: &'a [AtomicU64],
    /// A power of two.
    pub cap: u64,
    /// Words per slot: 1 + the payload's words.
    pub stride: usize,
}

impl View<'_> {
    /// The slot of position `pos`: its sequence word first.
    #[inline(always)]
    fn slot(&self, pos: u64) -> &[AtomicU64] {
        let i = (pos & (self.cap - 1)) as usize * self.stride;
        &self.slots[i..i + self.stride]
    }
}

/// Payload words needed for one `T`.
pub(crate) const fn words_of<T>() -> usize {
    core::mem::size_of::<T>().div_ceil(8)
}

/// Poisons both control words and wakes every sleeper.
#[cold]
pub(crate) fn corrupt(v: &View<'_>) -> Corrupt {
    poison(&v.sh.pub_ctl);
    poison(&v.sh.sub_ctl);
    futex::wake_all(&v.sh.pub_ctl);
    futex::wake_all(&v.sh.sub_ctl);
    Corrupt
}

/// Copies `msg` into payload words with Relaxed atomic stores (readers may
/// copy concurrently in overwrite mode; atomics keep that race defined).
#[inline(always)]
fn store_words<T: bytemuck::Pod>(dst: &[AtomicU64], msg: &T) {
    let bytes = bytemuck::bytes_of(msg);
    let mut chunks = bytes.chunks_exact(8);
    for (w, c) in dst.iter().zip(&mut chunks) {
        w.store(u64::from_ne_bytes(c.try_into().expect("8 bytes")), Ordering::Relaxed);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut b = [0u8; 8];
        b[..rem.len()].copy_from_slice(rem);
        dst[bytes.len() / 8].store(u64::from_ne_bytes(b), Ordering::Relaxed);
    }
}

/// Copies payload words into a local `T` with Relaxed atomic loads; the
/// caller validates the copy with the slot's sequence word before using it.
#[inline(always)]
fn load_words<T: bytemuck::Pod>(src: &[AtomicU64]) -> T {
    let mut v = T::zeroed();
    let bytes = bytemuck::bytes_of_mut(&mut v);
    let n = bytes.len();
    let mut chunks = bytes.chunks_exact_mut(8);
    for (w, c) in src.iter().zip(&mut chunks) {
        c.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
    }
    let rem = chunks.into_remainder();
    if !rem.is_empty() {
        let k = rem.len();
        rem.copy_from_slice(&src[n / 8].load(Ordering::Relaxed).to_ne_bytes()[..k]);
    }
    v
}

/// The publisher's state and algorithm.
pub(crate) struct PubCore {
    /// Our copy of `tail` (we are its only writer).
    pub tail: u64,
    /// Cached slowest cursor (lossless); `tail - min <= cap`.
    pub min: u64,
    /// Overwrite mode: never wait for subscribers.
    pub overwrite: bool,
}

impl PubCore {
    /// The state of a publisher taking the role: goes on from `tail`, after
    /// adopting messages a dead predecessor completed but did not count yet
    /// (`send_slice` stores `tail` once per batch, and subscribers read by
    /// sequence words, so some may have read them already).
    pub(crate) fn take_over(v: &View<'_>, overwrite: bool) -> Result<PubCore, Corrupt> {
        // Acquire: pairs with the Release store of the previous publisher in
        // `publish`: we go on from what it published.
        let mut tail = v.sh.tail.load(Ordering::Acquire);
        if tail >= POS_LIMIT - v.cap {
            return Err(corrupt(v));
        }
        let start = tail;
        // Acquire: pairs with the Release store of the even sequence word.
        while tail - start < v.cap && v.slot(tail)[0].load(Ordering::Acquire) == 2 * tail + 2 {
            tail += 1;
        }
        if tail != start {
            // Release: as in `publish`.
            v.sh.tail.store(tail, Ordering::Release);
        }
        let mut p = PubCore { tail, min: tail.saturating_sub(v.cap), overwrite };
        if !overwrite {
            p.refresh(v)?;
        }
        Ok(p)
    }

    /// Free slots by the cached slowest cursor, refreshed when that says
    /// fewer than `want`. Unbounded (`u64::MAX`) in overwrite mode.
    #[inline]
    pub(crate) fn free(&mut self, v: &View<'_>, want: u64) -> Result<u64, Corrupt> {
        if self.overwrite {
            return Ok(u64::MAX);
        }
        let free = v.cap - self.tail.wrapping_sub(self.min);
        if free >= want {
            Ok(free)
        } else {
            self.refresh(v)
        }
    }

    /// Re-reads every active subscriber's cursor; returns the free slot count.
    #[cold]
    pub(crate) fn refresh(&mut self, v: &View<'_>) -> Result<u64, Corrupt> {
        // SeqCst: pairs with the SeqCst fence in `join` (store-buffer
        // pattern): either this scan sees the joining subscriber's entry, or
        // its read of `tail` after its fence sees every tail we stored
        // before this fence.
        fence(Ordering::SeqCst);
        // Relaxed: ordered after `join`'s store by the fences above.
        let hi = (v.sh.hi.load(Ordering::Relaxed) as usize).min(v.entries.len());
        // A cursor below `tail - cap` can only be a subscriber that joined
        // after our last scan; it starts at a tail it read after its fence,
        // which is at least this floor (see `join`).
        let floor = self.tail.saturating_sub(v.cap);
        let mut min = self.tail;
        for e in &v.entries[..hi] {
            // Acquire: pairs with the Release store of `state` in `join`: the
            // cursor stored before it is visible.
            if e.state.load(Ordering::Acquire) & ACTIVE == 0 {
                continue;
            }
            // Acquire: pairs with the Release store of `cursor` in
            // `SubCore::publish`: the subscriber's reads of the slots below
            // it happen-before we overwrite them.
            let c = e.cursor.load(Ordering::Acquire);
            if c > self.tail {
                return Err(corrupt(v));
            }
            min = min.min(c.max(floor));
        }
        self.min = min;
        Ok(v.cap - (self.tail - min))
    }

    /// Writes message `msg` at position `self.tail + k` (not yet published).
    #[inline]
    pub(crate) fn write<T: bytemuck::Pod>(&self, v: &View<'_>, k: u64, msg: &T) {
        let pos = self.tail + k;
        let slot = v.slot(pos);
        // Relaxed + Release fence: a reader whose payload copy saw any word
        // stored below also sees (after its Acquire fence) this odd value.
        slot[0].store(2 * pos + 1, Ordering::Relaxed);
        // Release: pairs with the Acquire fence in `SubCore::try_recv`.
        fence(Ordering::Release);
        store_words(&slot[1..], msg);
        // Release: pairs with the Acquire load of the sequence word in
        // `SubCore::try_recv`: the payload is visible to whoever sees it.
        slot[0].store(2 * pos + 2, Ordering::Release);
    }

    /// Makes `n` written messages visible and wakes sleeping subscribers.
    #[inline]
    pub(crate) fn publish(&mut self, v: &View<'_>, n: u64) {
        self.tail += n;
        // Release: pairs with the Acquire loads of `tail` in `join`, `lapped`
        // and `check_empty`: every slot written so far is complete for them.
        v.sh.tail.store(self.tail, Ordering::Release);
        futex::notify(&v.sh.sub_ctl, WAITING);
    }

    /// Sends one message; `Ok(false)` when full (lossless only).
    #[inline]
    pub(crate) fn try_send<T: bytemuck::Pod>(&mut self, v: &View<'_>, msg: &T) -> Result<bool, Corrupt> {
        if self.free(v, 1)? == 0 {
            return Ok(false);
        }
        self.write(v, 0, msg);
        self.publish(v, 1);
        Ok(true)
    }
}

/// A subscriber's state and algorithm.
pub(crate) struct SubCore {
    /// The next position to read.
    pub next: u64,
    /// The last cursor stored into our entry.
    pub published: u64,
    /// Messages skipped because the publisher lapped us (overwrite mode).
    pub missed: u64,
    /// Our entry in the table.
    pub idx: usize,
    /// Our entry's `state` value while we hold it.
    pub state: u32,
    /// Publish the cursor at least every `batch` messages.
    pub batch: u64,
    /// Overwrite mode: being lapped is normal (not corruption).
    pub overwrite: bool,
}

/// Joins as the subscriber of entry `idx` (whose liveness lock the caller
/// holds); the subscriber starts at the next message sent.
pub(crate) fn join(v: &View<'_>, idx: usize, overwrite: bool) -> Result<SubCore, Corrupt> {
    let e = &v.entries[idx];
    let state = (((e.state.load(Ordering::Relaxed) >> 1).wrapping_add(1)) << 1) | ACTIVE;
    // Acquire: pairs with the Release store in `PubCore::publish`.
    let t0 = v.sh.tail.load(Ordering::Acquire);
    if t0 >= POS_LIMIT {
        return Err(corrupt(v));
    }
    e.cursor.store(t0, Ordering::Relaxed);
    // Release: pairs with the Acquire load of `state` in `PubCore::refresh`.
    e.state.store(state, Ordering::Release);
    // Relaxed: ordered before the publisher's scan by the fences.
    v.sh.hi.fetch_max(idx as u32 + 1, Ordering::Relaxed);
    // SeqCst: pairs with the SeqCst fence in `PubCore::refresh` (see there).
    fence(Ordering::SeqCst);
    // Acquire: as above.
    let t = v.sh.tail.load(Ordering::Acquire);
    if t < t0 || t >= POS_LIMIT {
        return Err(corrupt(v));
    }
    // Release: pairs with the Acquire load of `cursor` in `PubCore::refresh`.
    e.cursor.store(t, Ordering::Release);
    let batch = (v.cap / 4).clamp(1, 1024);
    Ok(SubCore { next: t, published: t, missed: 0, idx, state, batch, overwrite })
}

impl SubCore {
    /// Receives the next message; `Ok(None)` when there is none yet.
    #[inline]
    pub(crate) fn try_recv<T: bytemuck::Pod>(&mut self, v: &View<'_>) -> Result<Option<T>, Corrupt> {
        loop {
            let p = self.next;
            let slot = v.slot(p);
            let want = 2 * p + 2;
            // Acquire: pairs with the Release store of the even sequence
            // word in `PubCore::write`: the payload of message `p` is visible.
            let s1 = slot[0].load(Ordering::Acquire);
            if s1 == want {
                let msg = load_words::<T>(&slot[1..]);
                // Acquire: pairs with the Release fence in `PubCore::write`:
                // if the copy saw a word of a later message, the re-read
                // below sees that message's odd sequence (or later).
                fence(Ordering::Acquire);
                if slot[0].load(Ordering::Relaxed) == want {
                    self.next = p + 1;
                    self.after_read(v);
                    return Ok(Some(msg));
                }
            } else if s1 < want {
                return Ok(None);
            }
            // The slot holds, or is being overwritten with, a later message.
            if !self.lapped(v, p)? {
                return Ok(None);
            }
        }
    }

    /// Receives up to `out.len()` messages; returns how many.
    pub(crate) fn recv_slice<T: bytemuck::Pod>(&mut self, v: &View<'_>, out: &mut [T]) -> Result<usize, Corrupt> {
        let batch = self.batch;
        // Publish once at the end, not per message.
        self.batch = u64::MAX;
        let mut n = 0;
        let r = loop {
            if n == out.len() {
                break Ok(n);
            }
            match self.try_recv(v) {
                Ok(Some(m)) => {
                    out[n] = m;
                    n += 1;
                }
                Ok(None) => break Ok(n),
                Err(c) => break Err(c),
            }
        };
        self.batch = batch;
        if n > 0 {
            self.after_read(v);
        }
        r
    }

    /// Whether `try_recv` can make progress now: read message `next`, skip
    /// to a later one, or report corruption. Must not say yes when
    /// `try_recv` would find nothing, or a waiter would spin past its
    /// deadline.
    pub(crate) fn ready(&self, v: &View<'_>) -> bool {
        let want = 2 * self.next + 2;
        // Acquire: as in `try_recv`.
        let s = v.slot(self.next)[0].load(Ordering::Acquire);
        // Acquire: as in `lapped`, which needs a `tail` past `next`.
        s == want || (s > want && (!self.overwrite || v.sh.tail.load(Ordering::Acquire) > self.next))
    }

    /// Lapped at `p`: skips to the oldest message still held. `Ok(false)` if
    /// the publisher's newer `tail` is not visible yet (try again later).
    #[cold]
    fn lapped(&mut self, v: &View<'_>, p: u64) -> Result<bool, Corrupt> {
        if !self.overwrite {
            // A lossless publisher never overwrites a live subscriber's next
            // message: the sequence word was scribbled.
            return Err(corrupt(v));
        }
        // Acquire: pairs with the Release store in `PubCore::publish`.
        let t = v.sh.tail.load(Ordering::Acquire);
        if t >= POS_LIMIT {
            return Err(corrupt(v));
        }
        if t <= p {
            return Ok(false);
        }
        let to = (p + 1).max(t.saturating_sub(v.cap));
        self.missed += to - p;
        self.next = to;
        Ok(true)
    }

    /// Checks, on the empty path, that our position agrees with `tail`:
    /// at most one past what we can see, and nothing published at it that
    /// its sequence word does not show.
    #[cold]
    pub(crate) fn check_empty(&self, v: &View<'_>) -> Result<(), Corrupt> {
        // Acquire: pairs with the Release store in `PubCore::publish`: every
        // message below `t` has its even sequence word stored.
        let t = v.sh.tail.load(Ordering::Acquire);
        let p = self.next;
        if t >= POS_LIMIT || t.saturating_add(1) < p {
            return Err(corrupt(v));
        }
        // Relaxed: ordered after the Acquire load of `tail` above.
        if t > p && v.slot(p)[0].load(Ordering::Relaxed) < 2 * p + 2 {
            return Err(corrupt(v));
        }
        Ok(())
    }

    #[inline(always)]
    fn after_read(&mut self, v: &View<'_>) {
        // Relaxed: a hint; a sleeping publisher is woken by `notify`'s
        // barrier pairing, and we publish before we sleep anyway.
        if self.next - self.published >= self.batch || v.sh.pub_ctl.load(Ordering::Relaxed) & WAITING != 0 {
            self.publish(v);
        }
    }

    /// Stores our cursor and wakes a publisher that waits for room.
    pub(crate) fn publish(&mut self, v: &View<'_>) {
        self.published = self.next;
        // Release: pairs with the Acquire load of `cursor` in
        // `PubCore::refresh`: our slot reads happen-before it reuses them.
        v.entries[self.idx].cursor.store(self.next, Ordering::Release);
        futex::notify(&v.sh.pub_ctl, WAITING);
    }

    /// Leaves the table: the entry is free for the next subscriber and no
    /// longer holds a lossless publisher back.
    pub(crate) fn leave(&self, v: &View<'_>) {
        let e = &v.entries[self.idx];
        // Release: pairs with the Acquire load of `state` in `refresh`.
        let _ = e.state.compare_exchange(self.state, self.state & !ACTIVE, Ordering::Release, Ordering::Relaxed);
        futex::notify(&v.sh.pub_ctl, WAITING);
    }
}

/// Detaches entry `idx` if it still holds generation `state` (its holder
/// was found dead by the caller's liveness probe).
pub(crate) fn detach(v: &View<'_>, idx: usize, state: u32) -> bool {
    // Relaxed: the publisher re-scans with Acquire loads afterwards; a
    // subscriber that joined since has another generation and is kept.
    v.entries[idx].state.compare_exchange(state, state & !ACTIVE, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}
