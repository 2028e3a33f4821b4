//! Variable-length message framing over a single-producer single-consumer
//! byte ring: the transport under [`crate::Pipe`].
//!
//! # Implementation details
//!
//! The ring reuses the SPSC index core of [`super::spsc_core`] for its
//! shared block ([`Shared`]: free-running `tail`/`head` byte counters on
//! their own cache lines, one side-control word per end, validation and
//! poisoning) and for the writer's flow control ([`ProdIdx<8>`](super::spsc_core::ProdIdx)).
//! Counters count *bytes* of a power-of-two data area, in granules of 8.
//! The data area holds *records*, each starting on an 8-byte boundary:
//!
//! ```text
//! | header: u64 | payload (len bytes) | pad to 8 | header | payload ... | PAD | (unused to end) |
//! ```
//!
//! | header value               | meaning                                                           |
//! |----------------------------|-------------------------------------------------------------------|
//! | [`EMPTY`] (`0`)            | nothing published here yet: the reader waits                      |
//! | `1..=cap - 15`             | a message of `header - 1` bytes follows; the record is `8 + align8(len)` bytes |
//! | [`PAD`] (`u64::MAX`)       | padding: the rest of the data area up to its end is unused, the next record starts at offset 0 |
//! | anything else              | corruption: the ring is poisoned                                  |
//!
//! ## Header polling (lazy index publication)
//!
//! The reader does not read `tail`: it polls the header word at its own
//! read position (`head & (cap - 1)`) with `Acquire`, and the writer
//! publishes a record by storing its header with `Release` after the
//! payload. A small message therefore reaches the reader in the transfer of
//! the record's own cache line(s), not in two dependent misses (`tail`, then
//! the record), and the writer's `tail` line never leaves its cache. This is
//! FastForward's idea (Giacomoni, Moseley, Vachharajani, "FastForward for
//! efficient pipeline parallelism", PPoPP 2008) and Aeron's frame header,
//! for variable-length records.
//!
//! Stale bytes of an earlier lap must never look like a header. The writer
//! keeps this invariant: **the header word at the writer's position always
//! reads [`EMPTY`] until the writer publishes a record there.** Before it
//! publishes a record ending at offset `e` (or a padding record, which ends
//! at the end of the area: `e = 0`), it stores [`EMPTY`] into the header word
//! at `e & (cap - 1)`, the next record's position, then stores the record's
//! header with `Release`. A reader that acquired that header sees the
//! [`EMPTY`] (or the next real header, stored later still) when it moves on;
//! the initial data area is zero, so [`EMPTY`] everywhere. Those 8 bytes at
//! `e` must be free when the record is written, so a record of `r` bytes
//! needs `r + 8` free bytes and the largest message is `cap - 16` bytes.
//!
//! A record never wraps: a message that does not fit between the write
//! position and the end of the data area is preceded by a padding record, so
//! every message is one contiguous byte slice (what makes zero-copy
//! `send_with`/`recv_with` possible). The padding record is published on its
//! own as soon as it fits: a message of the largest size (`cap - 16` bytes)
//! then always finds the whole data area free once the reader has caught
//! up, so no sequence of sizes can deadlock.
//!
//! The indices serve flow control and resumption, and nothing else:
//!
//! - `head` (stored by the reader with `Release` after each record is read,
//!   [`Reader::consume`]) tells the writer which bytes it may reuse; the
//!   writer reads it only when its cached copy says "full".
//! - `tail` (stored by the writer after each header, [`ProdIdx::publish`](super::spsc_core::ProdIdx::publish))
//!   is read only by writers: by one that attaches ([`Writer::new`]): a
//!   writer killed between a header store and the `tail` store leaves
//!   `tail` one record behind, so the new writer walks the published
//!   headers from `tail` (one at most; two are tolerated) up to the
//!   [`EMPTY`] word the invariant guarantees; and by every send, below.
//!
//! ## One end shared by several processes
//!
//! `multiprocessing` lets several processes send on one end of a pipe (or
//! receive on one), taking turns under a lock; after `fork()` each of them
//! holds its own copy of the end, with its own private position. So each
//! send starts by comparing the writer's private `tail` with the stored one
//! (`Writer::sync`, a load of a line only writers write: a cache hit when
//! one process sends), and a writer that finds another copy's `tail` there
//! resumes from it with the attach walk. Each receive likewise compares the
//! reader's private `head` with the stored one (`Reader::sync`) and resumes
//! from the stored one. Copies that send (or receive) *at the same time*,
//! without a lock, are a usage error, as in Python: messages may then be
//! torn or lost and the ring poisoned, but every index and header is still
//! validated, so nothing is read or written out of bounds.
//!
//! `head` is published after every record, not lazily: a lazily published
//! `head` would still have to be published whenever the reader finds the
//! ring empty (a writer waiting for room for a large message would
//! otherwise wait on a reader with nothing left to read), which in a round
//! trip is after every message; and the lazy-head prototype of
//! `benches/layouts.rs` measured within noise of the eager one.
//!
//! # Memory ordering
//!
//! | store (side)                                   | load it pairs with (other side)        | orders                                      |
//! |------------------------------------------------|----------------------------------------|---------------------------------------------|
//! | header, `Release` ([`Writer::stage`], `wrap`)  | header poll, `Acquire` ([`Reader::peek`]) | payload and the next position's [`EMPTY`] before the reader's reads |
//! | `head`, `Release` ([`Reader::consume`])        | `head`, `Acquire` (`ProdIdx::refresh`) | the reader's reads of a record before the writer reuses its bytes |
//! | `tail`, `Release` (`ProdIdx::publish`)         | `tail`, `Acquire` (`Tx::attach`, `Writer::sync` of another copy of the end) | a writer's records and [`EMPTY`] word before the next writer's walk and writes; nothing the reader needs |
//! | `head`, `Release` ([`Reader::consume`])        | `head`, `Acquire` (`Reader::sync` of another copy of the end) | that reader's header loads before ours (no older header value is seen) |
//!
//! The [`EMPTY`] marker is stored `Relaxed`: the `Release` store of the
//! header that follows it orders it. Sleeping and waking use the side words
//! and [`crate::sync::futex::notify`], called after the publishing store
//! (header or `head`), as before.
//!
//! # Never trusting the segment
//!
//! Everything read from shared memory is checked before it is used as an
//! offset or a length, on a *copy* (never re-read after the check):
//!
//! | value                | check                                                            |
//! |----------------------|------------------------------------------------------------------|
//! | `head` (writer)      | multiple of 8 and `tail - head <= cap`                            |
//! | `head` (reader, at attach) | multiple of 8 and within `cap` of `tail` either way         |
//! | `tail` (writer, at attach) | after the walk over published headers: multiple of 8 and `tail - head <= cap` |
//! | header: message      | `1 <= header <= cap - 15` and the record fits before the end      |
//! | header: padding      | not at offset 0                                                   |
//!
//! A hostile process can still write a well-formed header where the reader
//! polls; the reader then delivers garbage of a valid length from inside
//! the data area, and at worst moves `head` past `tail`, which the writer's
//! next check of `head` reports. A failed check poisons both side words
//! ([`super::POISONED`]): every handle of the ring then reports it as
//! disconnected, and `open` refuses it with `Error::Corrupted`. Nothing is
//! read out of bounds and nobody waits forever: a padding record sends the
//! reader to offset 0, where padding is refused, so one `peek` reads at
//! most two headers.

#[cfg(not(loom))]
use std::ptr::NonNull;
#[cfg(not(loom))]
use std::sync::Arc;
#[cfg(not(loom))]
use std::time::Instant;

use super::spsc_core::{poison_ring, ConsIdx, Corrupt, ProdIdx, Shared};
use super::WAITING;
use crate::primitive::{AtomicU64, Ordering};
use crate::sync::futex;

#[cfg(not(loom))]
use super::spsc_core::Probe;
#[cfg(not(loom))]
use super::spsc_core::Side;
#[cfg(not(loom))]
use super::{side_attach, side_close, side_gone};
#[cfg(not(loom))]
use crate::error::{Error, RecvTimeoutError, Result, TryRecvError};
#[cfg(not(loom))]
use crate::shm::lock::RoleLock;
#[cfg(not(loom))]
use crate::shm::{Segment, WaitStrategy};
#[cfg(not(loom))]
use crate::sync::wait::{self, Waited};

/// Bytes of a record header.
pub(crate) const HDR: u64 = 8;
/// Alignment of every record.
pub(crate) const ALIGN: u64 = 8;
/// Header value of a position where nothing is published yet.
pub(crate) const EMPTY: u64 = 0;
/// Header value of a padding record.
pub(crate) const PAD: u64 = u64::MAX;
/// Bytes a message may not use: its header and the [`EMPTY`] word written
/// at the next record's position (see the module docs).
pub(crate) const OVERHEAD: u64 = 2 * HDR;
/// Smallest data area, in bytes (keeps every data area 128-aligned).
pub(crate) const MIN_CAP: usize = 128;
/// Largest data area, in bytes (1 TiB, as for item rings).
#[cfg(not(loom))]
pub(crate) const MAX_CAP: usize = 1 << 40;

/// Bytes a record of a `len`-byte message takes: header plus payload rounded
/// up to [`ALIGN`].
#[inline(always)]
pub(crate) const fn record_len(len: u64) -> u64 {
    HDR + ((len + ALIGN - 1) & !(ALIGN - 1))
}

/// The header word of a `len`-byte message.
#[inline(always)]
const fn msg_header(len: u64) -> u64 {
    len + 1
}

/// The data-area size for a ring that must accept messages of up to
/// `max_message` bytes: the smallest power of two holding one such record
/// and the [`EMPTY`] word after it (at least [`MIN_CAP`]).
///
/// # Errors
/// [`Error::InvalidArgument`] if that is larger than [`MAX_CAP`].
#[cfg(not(loom))]
pub(crate) fn data_capacity(max_message: usize) -> Result<usize> {
    let need = (max_message as u64).checked_add(OVERHEAD).map(|n| n.max(MIN_CAP as u64));
    match need.and_then(u64::checked_next_power_of_two) {
        Some(c) if c <= MAX_CAP as u64 => Ok(c as usize),
        _ => {
            Err(Error::InvalidArgument { reason: format!("a byte ring for {max_message}-byte messages is too large") })
        }
    }
}

/// Checks a data-area size read from a segment header.
#[cfg(not(loom))]
pub(crate) fn stored_data_capacity(name: &str, cap: u64) -> Result<usize> {
    if cap.is_power_of_two() && cap >= MIN_CAP as u64 && cap <= MAX_CAP as u64 {
        Ok(cap as usize)
    } else {
        Err(Error::Corrupted { name: name.into(), reason: format!("stored byte capacity {cap} is not valid") })
    }
}

/// A header word read at byte position `pos` of a data area of `cap` bytes,
/// decoded and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// [`EMPTY`]: nothing published here yet.
    Empty,
    /// A padding record up to the end of the area.
    Pad,
    /// A message of this many bytes, whose record fits before the end.
    Msg(u64),
    /// Anything else: corruption.
    Bad,
}

/// Decodes the header word `h` found at `pos` (a multiple of 8 below `cap`).
#[inline(always)]
fn decode(h: u64, pos: u64, cap: u64) -> Header {
    if h == EMPTY {
        return Header::Empty;
    }
    if h == PAD {
        return if pos == 0 { Header::Bad } else { Header::Pad };
    }
    let len = h - 1;
    if len <= cap - OVERHEAD && record_len(len) <= cap - pos {
        Header::Msg(len)
    } else {
        Header::Bad
    }
}

// ---------------------------------------------------------------------------
// Storage of the data area.

/// The data area: `len` bytes (a multiple of 8), 8-byte aligned.
#[cfg(not(loom))]
pub(crate) struct Buf {
    base: NonNull<u8>,
    len: usize,
}

#[cfg(not(loom))]
impl Buf {
    /// # Safety
    /// `base` is 8-byte aligned and valid for reads and writes of `len`
    /// bytes for the life of the returned value; `len` is a multiple of 8.
    pub(crate) unsafe fn new(base: NonNull<u8>, len: usize) -> Self {
        debug_assert!(base.as_ptr() as usize % 8 == 0 && len % 8 == 0);
        Buf { base, len }
    }

    /// Pointer to byte `off`.
    ///
    /// # Safety
    /// `off <= len` (one past the end is allowed). Callers pass masked
    /// counters and validated headers.
    #[inline(always)]
    pub(crate) unsafe fn ptr(&self, off: usize) -> *mut u8 {
        debug_assert!(off <= self.len);
        // SAFETY: `off <= len` by the caller's contract: inside the area or
        // one past its end.
        unsafe { self.base.as_ptr().add(off) }
    }

    /// The header word at `off`, as an atomic (the reader polls it while
    /// the writer stores it).
    ///
    /// # Safety
    /// `off` is a multiple of 8 below `len`.
    #[inline(always)]
    unsafe fn word(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % 8 == 0 && off < self.len);
        // Why the reference is sound: 1. in bounds and 8-aligned by the
        // caller's contract (the base is 8-aligned); 2. `AtomicU64` has the
        // size and alignment of `u64` and any bits are a valid value (a
        // hostile process may have written them: callers validate what they
        // load); 3. the mapping lives as long as `self`.
        // SAFETY: the three points above.
        unsafe { &*self.ptr(off).cast::<AtomicU64>() }
    }

    /// Loads the header word at `off`.
    ///
    /// # Safety
    /// `off` is a multiple of 8 below `len`.
    #[inline(always)]
    pub(crate) unsafe fn load_header(&self, off: usize, order: Ordering) -> u64 {
        // SAFETY: forwarded from the caller.
        unsafe { self.word(off) }.load(order)
    }

    /// Stores the header word at `off`.
    ///
    /// # Safety
    /// `off` is a multiple of 8 below `len`, and the writer owns the word
    /// (free, or the header of the record it is publishing).
    #[inline(always)]
    pub(crate) unsafe fn store_header(&self, off: usize, v: u64, order: Ordering) {
        // SAFETY: forwarded from the caller.
        unsafe { self.word(off) }.store(v, order)
    }

    /// Copies `src` to byte `off`.
    ///
    /// # Safety
    /// `off + src.len() <= len` and the writer owns those bytes.
    #[cfg(test)]
    pub(crate) unsafe fn write_bytes(&self, off: usize, src: &[u8]) {
        // SAFETY: in bounds and exclusively ours; `src` is a Rust slice, so it
        // cannot overlap the free part of the ring that only we write.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr(off), src.len()) }
    }

    /// Copies bytes at `off` into `dst`.
    ///
    /// # Safety
    /// `off + dst.len() <= len` and the reader owns those bytes.
    #[cfg(test)]
    pub(crate) unsafe fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        // SAFETY: in bounds and owned by the reader; `dst` is a distinct Rust slice.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr(off), dst.as_mut_ptr(), dst.len()) }
    }
}

/// The data area under loom. Each 8-byte word is an atomic (what header
/// loads and stores use) plus a tracked cell (what payload accesses use, so
/// loom reports a payload read racing a write). Payload writes also store
/// their value into the atomic, `Relaxed`: a header poll may then see stale
/// payload of an earlier lap, as it could in real memory, and the model
/// checks that the [`EMPTY`] marker protocol never lets it.
#[cfg(loom)]
#[derive(Clone)]
pub(crate) struct Buf {
    words: std::sync::Arc<Vec<AtomicU64>>,
    cells: crate::primitive::Slots<u64>,
}

#[cfg(loom)]
impl Buf {
    /// A zeroed heap data area of `len` bytes.
    pub(crate) fn new_heap(len: usize) -> Self {
        Buf {
            words: std::sync::Arc::new((0..len / 8).map(|_| AtomicU64::new(0)).collect()),
            cells: crate::primitive::Slots::new_heap(len / 8),
        }
    }
    pub(crate) unsafe fn load_header(&self, off: usize, order: Ordering) -> u64 {
        self.words[off / 8].load(order)
    }
    pub(crate) unsafe fn store_header(&self, off: usize, v: u64, order: Ordering) {
        self.words[off / 8].store(v, order)
    }
    pub(crate) unsafe fn write_bytes(&self, off: usize, src: &[u8]) {
        for (i, c) in src.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            let w = u64::from_le_bytes(w);
            // SAFETY: forwarded (records are 8-aligned, so whole words are ours).
            unsafe { self.cells.write(off / 8 + i, w) };
            // Relaxed: only makes stale payload visible to header polls.
            self.words[off / 8 + i].store(w, Ordering::Relaxed);
        }
    }
    pub(crate) unsafe fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        for (i, c) in dst.chunks_mut(8).enumerate() {
            // SAFETY: forwarded.
            let w = unsafe { self.cells.read(off / 8 + i) }.to_le_bytes();
            c.copy_from_slice(&w[..c.len()]);
        }
    }
}

// ---------------------------------------------------------------------------
// The framing algorithm, independent of where memory lives.

/// Writer-side state and algorithm: the core's producer indices over bytes.
pub(crate) struct Writer {
    /// `tail`/cached `head` in bytes, multiples of 8; `cap` (the data-area
    /// size) is a power of two `>= MIN_CAP`.
    pub idx: ProdIdx<ALIGN>,
    pub buf: Buf,
}

/// Where a message lies in the data area (validated: `off + len <= cap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Msg {
    /// Byte offset of the payload.
    pub off: usize,
    /// Payload length.
    pub len: usize,
}

impl Writer {
    /// A writer resuming at `tail`, with `head` read from the segment.
    /// Records published after the last `tail` store (by a writer killed
    /// between its header and `tail` stores) are walked over first.
    ///
    /// # Errors
    /// [`Corrupt`] if the pair is inconsistent or a header on the walk is
    /// invalid (nothing is poisoned: the caller refuses to attach).
    pub(crate) fn new(tail: u64, head: u64, cap: u64, buf: Buf) -> Result<Self, Corrupt> {
        Ok(Writer { idx: Self::resume(tail, head, cap, &buf)?, buf })
    }

    /// The indices of a writer resuming at the stored `tail`: walks over
    /// the records published after it (see [`Writer::new`]).
    fn resume(tail: u64, head: u64, cap: u64, buf: &Buf) -> Result<ProdIdx<ALIGN>, Corrupt> {
        debug_assert!(cap.is_power_of_two() && cap >= OVERHEAD);
        if tail % ALIGN != 0 {
            return Err(Corrupt);
        }
        let mut tail = tail;
        // A killed writer leaves at most one record published without its
        // `tail` store (`wrap` stores `tail` for a padding record before the
        // message after it is written); the walk tolerates two and calls a
        // third header corruption.
        for step in 0..3 {
            let pos = tail & (cap - 1);
            // Acquire: pairs with the Release store of this header in
            // `Writer::stage`/`wrap` (of the writer that published it).
            // SAFETY: `pos` is a multiple of 8 below `cap`.
            let h = unsafe { buf.load_header(pos as usize, Ordering::Acquire) };
            let rec = match decode(h, pos, cap) {
                Header::Empty => break,
                Header::Pad if step < 2 => cap - pos,
                Header::Msg(len) if step < 2 => record_len(len),
                _ => return Err(Corrupt),
            };
            tail = tail.wrapping_add(rec);
        }
        ProdIdx::new(tail, head, cap)
    }

    /// Catches up with what other copies of this end (fork siblings taking
    /// turns with us) sent since our last send: if the stored `tail` is not
    /// ours, resumes from it as a newly attached writer would.
    ///
    /// # Errors
    /// [`Corrupt`] (and the ring is poisoned) if the stored pair or a header
    /// on the walk is invalid: what concurrent, unserialized senders on one
    /// end may leave behind.
    #[inline(always)]
    fn sync(&mut self, sh: &Shared) -> Result<(), Corrupt> {
        // Acquire: pairs with the Release store of `tail` in
        // `ProdIdx::publish` by another copy of this end: the records and
        // the EMPTY word it published happen-before our walk over them and
        // our writes after them. In the single-writer case this is our own
        // last store, on a line only we write: a cache hit.
        let tail = sh.tail.load(Ordering::Acquire);
        if tail == self.idx.tail {
            return Ok(());
        }
        self.resync(sh, tail)
    }

    #[cold]
    fn resync(&mut self, sh: &Shared, tail: u64) -> Result<(), Corrupt> {
        // Acquire: pairs with the Release store of `head` in
        // `Reader::release`, as in `ProdIdx::refresh`.
        let head = sh.head.load(Ordering::Acquire);
        self.idx = Self::resume(tail, head, self.idx.cap, &self.buf).map_err(|_| poison_ring(sh))?;
        Ok(())
    }

    /// The largest message this ring accepts.
    #[inline]
    pub(crate) fn max_message(&self) -> usize {
        Self::max_for(self.idx.cap as usize)
    }

    /// The largest message a ring of `cap` data bytes accepts.
    pub(crate) const fn max_for(cap: usize) -> usize {
        cap.saturating_sub(OVERHEAD as usize)
    }

    /// Finds room for a `len`-byte message (`len <= max_message()`).
    /// `Ok(Some(off))`: write the payload at byte `off` (contiguous), then
    /// [`Writer::commit`]. `Ok(None)`: no room now. Calling it again before
    /// committing returns the same place.
    ///
    /// May publish a padding record first (see the module docs).
    #[inline]
    pub(crate) fn reserve(&mut self, sh: &Shared, len: usize) -> Result<Option<usize>, Corrupt> {
        debug_assert!(len <= self.max_message());
        self.sync(sh)?;
        let rec = record_len(len as u64);
        // The record and the EMPTY word after it (which may be at offset 0).
        let need = rec + HDR;
        let pos = self.idx.pos();
        let contiguous = self.idx.cap - pos;
        if rec <= contiguous {
            return Ok((self.idx.free(sh, need)? >= need).then_some((pos + HDR) as usize));
        }
        self.wrap(sh, pos, contiguous, need)
    }

    #[cold]
    fn wrap(&mut self, sh: &Shared, pos: u64, contiguous: u64, need: u64) -> Result<Option<usize>, Corrupt> {
        // The padding record and the EMPTY word at offset 0.
        if self.idx.free(sh, contiguous + need)? < contiguous + HDR {
            return Ok(None);
        }
        // SAFETY: `[pos, cap)` and the first word of the area are free
        // (`contiguous + 8` bytes from `pos` are) and only the writer touches
        // free bytes; `pos` is a multiple of 8 below cap.
        unsafe {
            // Relaxed: ordered by the Release store of PAD just below.
            self.buf.store_header(0, EMPTY, Ordering::Relaxed);
            // Release: pairs with the Acquire poll of the header in
            // `Reader::peek`: the EMPTY at offset 0 happens-before the
            // reader moves there.
            self.buf.store_header(pos as usize, PAD, Ordering::Release);
        }
        self.idx.commit(sh, contiguous);
        // Now at offset 0, where the whole data area is contiguous.
        Ok((self.idx.free(sh, need)? >= need).then_some(HDR as usize))
    }

    /// Publishes the message reserved with `len` bytes (its payload
    /// written): the reader may take it from now on, but `tail` is not yet
    /// stored nor the reader woken (see [`Writer::publish_staged`]).
    ///
    /// # Safety
    /// The last [`Writer::reserve`] (since the last `stage`/`commit`) was
    /// for `len` bytes and returned `Ok(Some(_))`.
    #[inline]
    pub(crate) unsafe fn stage(&mut self, len: usize) -> u64 {
        let pos = self.idx.pos();
        let rec = record_len(len as u64);
        let next = (pos + rec) & (self.idx.cap - 1);
        // SAFETY: by the caller's contract `reserve` found `rec + 8` free
        // bytes from `pos` (a multiple of 8 below cap), the record
        // contiguous; only the writer touches them until they are published,
        // and `next` is the word just after the record (or offset 0).
        unsafe {
            // Relaxed: ordered by the Release store of the header just below.
            self.buf.store_header(next as usize, EMPTY, Ordering::Relaxed);
            // Release: pairs with the Acquire poll of the header in
            // `Reader::peek`: the payload and the EMPTY at `next`
            // happen-before the reader's reads of them.
            self.buf.store_header(pos as usize, msg_header(len as u64), Ordering::Release);
        }
        self.idx.stage(rec);
        rec
    }

    /// Stores `tail` up to everything staged and wakes a sleeping reader.
    #[inline]
    pub(crate) fn publish_staged(&mut self, sh: &Shared) {
        self.idx.publish(sh);
    }

    /// Publishes the reserved `len`-byte message and wakes the reader.
    ///
    /// # Safety
    /// As for [`Writer::stage`].
    #[inline]
    pub(crate) unsafe fn commit(&mut self, sh: &Shared, len: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.stage(len) };
        self.publish_staged(sh);
    }

    /// Copies `msg` in if it fits now; `Ok(false)` when there is no room.
    #[cfg(any(test, loom))]
    pub(crate) fn try_write(&mut self, sh: &Shared, msg: &[u8]) -> Result<bool, Corrupt> {
        let Some(off) = self.reserve(sh, msg.len())? else { return Ok(false) };
        // SAFETY: `reserve` gave `off..off + len` as free, contiguous, ours.
        unsafe { self.buf.write_bytes(off, msg) };
        // SAFETY: `reserve` returned a place for `msg.len()` bytes just now.
        unsafe { self.commit(sh, msg.len()) };
        Ok(true)
    }
}

/// Reader-side state and algorithm: its own `head`, and no copy of `tail`
/// (it polls headers instead).
pub(crate) struct Reader {
    /// Our copy of `head` (we are its only writer), a multiple of 8.
    pub head: u64,
    /// Bytes in the data area, a power of two `>= MIN_CAP`.
    pub cap: u64,
    pub buf: Buf,
}

impl Reader {
    /// A reader resuming at `head`, with `tail` read from the segment (only
    /// checked: `tail` may lag `head` by the records a killed writer
    /// published without storing `tail`).
    ///
    /// # Errors
    /// [`Corrupt`] if the pair is inconsistent.
    pub(crate) fn new(head: u64, tail: u64, cap: u64, buf: Buf) -> Result<Self, Corrupt> {
        debug_assert!(cap.is_power_of_two() && cap >= OVERHEAD);
        Self::check(head, tail, cap)?;
        Ok(Reader { head, cap, buf })
    }

    /// Whether a reader may resume at `head` given the stored `tail`: both
    /// multiples of 8 and within `cap` of each other, either way.
    fn check(head: u64, tail: u64, cap: u64) -> Result<(), Corrupt> {
        ConsIdx::<ALIGN>::new(head, tail, cap).or_else(|_| ConsIdx::<ALIGN>::new(tail, head, cap))?;
        Ok(())
    }

    /// Catches up with what other copies of this end (fork siblings taking
    /// turns with us) received since our last receive: if the stored `head`
    /// is not ours, resumes from it.
    ///
    /// # Errors
    /// [`Corrupt`] (and the ring is poisoned) if the stored `head` is not a
    /// multiple of 8 or not within `cap` of `tail`.
    #[inline(always)]
    fn sync(&mut self, sh: &Shared) -> Result<(), Corrupt> {
        // Acquire: pairs with the Release store of `head` in
        // `Reader::release` by another copy of this end: its header loads
        // happen-before ours, so we never see an older value (a stale
        // record of an earlier lap) in a header word it already read. In
        // the single-reader case this is our own last store: a cache hit.
        let head = sh.head.load(Ordering::Acquire);
        if head == self.head {
            return Ok(());
        }
        self.resync(sh, head)
    }

    #[cold]
    fn resync(&mut self, sh: &Shared, head: u64) -> Result<(), Corrupt> {
        // Relaxed: only checked, as at attach.
        let tail = sh.tail.load(Ordering::Relaxed);
        Self::check(head, tail, self.cap).map_err(|_| poison_ring(sh))?;
        self.head = head;
        Ok(())
    }

    /// Storage position of `head`.
    #[inline(always)]
    fn pos(&self) -> u64 {
        self.head & (self.cap - 1)
    }

    /// The oldest message, if one is published; skips (and releases)
    /// padding records. Every field of the result is validated.
    #[inline]
    pub(crate) fn peek(&mut self, sh: &Shared) -> Result<Option<Msg>, Corrupt> {
        self.sync(sh)?;
        loop {
            let pos = self.pos();
            // Acquire: pairs with the Release store of the header in
            // `Writer::stage` (or of PAD in `Writer::wrap`): the payload and
            // the EMPTY word after the record happen-before our reads.
            // SAFETY: `pos` is a multiple of 8 below `cap`.
            let h = unsafe { self.buf.load_header(pos as usize, Ordering::Acquire) };
            match decode(h, pos, self.cap) {
                Header::Msg(len) => return Ok(Some(Msg { off: (pos + HDR) as usize, len: len as usize })),
                Header::Empty => return Ok(None),
                // At most once per `peek`: the next position is 0, where
                // padding is `Bad`.
                Header::Pad => self.release(sh, self.cap - pos),
                Header::Bad => return Err(poison_ring(sh)),
            }
        }
    }

    /// Releases the message `m` (the last one `peek` returned) to the writer.
    #[inline]
    pub(crate) fn consume(&mut self, sh: &Shared, m: Msg) {
        self.release(sh, record_len(m.len as u64));
    }

    /// Moves `head` on by `n` bytes and wakes the writer if it sleeps.
    #[inline(always)]
    fn release(&mut self, sh: &Shared, n: u64) {
        self.head = self.head.wrapping_add(n);
        // Release: pairs with the Acquire load of `head` in
        // `ProdIdx::refresh`: our reads of the released bytes happen-before
        // the writer overwrites them.
        sh.head.store(self.head, Ordering::Release);
        futex::notify(&sh.prod.ctl, WAITING);
    }

    /// Copies the oldest message into a new vector, if there is one.
    #[cfg(any(test, loom))]
    pub(crate) fn try_read(&mut self, sh: &Shared) -> Result<Option<Vec<u8>>, Corrupt> {
        let Some(m) = self.peek(sh)? else { return Ok(None) };
        let mut v = vec![0u8; m.len];
        // SAFETY: `m` is a validated, published, unreleased message.
        unsafe { self.buf.read_bytes(m.off, &mut v) };
        self.consume(sh, m);
        Ok(Some(v))
    }
}

// ---------------------------------------------------------------------------
// Segment-backed ends: a `Shared` block plus a data area inside a segment.

/// Where one byte ring lies inside a segment's body.
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    /// Offset of its [`Shared`] block (128-aligned).
    pub shared: usize,
    /// Offset of its data area (128-aligned).
    pub data: usize,
    /// Bytes in the data area (validated with [`stored_data_capacity`]).
    pub cap: usize,
}

/// Why a send did not happen.
#[cfg(not(loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxError {
    /// No room (try form) or still no room at the deadline.
    Full,
    /// The reader is gone, or the ring is poisoned.
    Disconnected,
    /// The message is larger than the ring accepts.
    TooLarge { len: usize, max: usize },
}

// SAFETY: the ends own their side of the ring; the data-area pointer they
// hold points into a mapping kept alive by the `Arc<Segment>` they own.
#[cfg(not(loom))]
unsafe impl Send for Tx {}
// SAFETY: as above.
#[cfg(not(loom))]
unsafe impl Send for Rx {}

/// Whether a peer end is gone: closed, poisoned, or its role lock no longer
/// held by any live process.
#[cfg(not(loom))]
fn peer_gone(seg: &Segment, role: u32, side: &Side) -> bool {
    side_gone(&side.ctl, || true, || seg.role_held(role) != Some(false))
}

/// The sending end of a byte ring inside a segment.
#[cfg(not(loom))]
pub(crate) struct Tx {
    core: Writer,
    /// The ring's shared header in `seg`, checked once by `shared_at`.
    shared: NonNull<Shared>,
    seg: Arc<Segment>,
    /// Role number of the reading end (for liveness probes).
    peer_role: u32,
    pub(crate) wait: WaitStrategy,
    /// Rate limit of liveness probes from non-blocking calls.
    polls: Probe,
    gen: u32,
}

/// The receiving end of a byte ring inside a segment.
#[cfg(not(loom))]
pub(crate) struct Rx {
    core: Reader,
    /// The ring's shared header in `seg`, checked once by `shared_at`.
    shared: NonNull<Shared>,
    seg: Arc<Segment>,
    /// Role number of the writing end.
    peer_role: u32,
    pub(crate) wait: WaitStrategy,
    /// Rate limit of liveness probes from non-blocking calls.
    polls: Probe,
    gen: u32,
}

#[cfg(not(loom))]
fn shared_at(seg: &Segment, place: Place) -> &Shared {
    seg.body_at::<Shared>(place.shared)
}

/// The shared header behind a pointer made from [`shared_at`].
#[cfg(not(loom))]
#[inline(always)]
fn view(p: &NonNull<Shared>) -> &Shared {
    // SAFETY: `p` came from `shared_at` (in range, aligned, `ShmSafe`) and
    // the `Tx`/`Rx` holding it also holds the `Arc<Segment>` that keeps the
    // mapping alive; callers copy it out of such a struct.
    unsafe { p.as_ref() }
}

#[cfg(not(loom))]
fn buf_at(seg: &Segment, place: Place) -> Buf {
    assert!(place.data % 128 == 0 && place.data + place.cap <= seg.body_len(), "byte ring data area out of range");
    // SAFETY: 1. the data area lies inside the body (asserted) and is
    // 128-aligned (the body is 512-aligned); 2. the mapping outlives the
    // `Buf`: both are owned next to an `Arc<Segment>`; 3. `cap` is a power
    // of two >= 64, so a multiple of 8.
    unsafe { Buf::new(NonNull::new_unchecked(seg.body_ptr().as_ptr().add(place.data)), place.cap) }
}

#[cfg(not(loom))]
fn corrupted(seg: &Segment) -> Error {
    Error::Corrupted { name: seg.name().into(), reason: "byte ring indices out of range".into() }
}

#[cfg(not(loom))]
impl Tx {
    /// The writing end of the ring at `place`; marks its side attached.
    /// The caller holds the writer's role.
    pub(crate) fn attach(seg: Arc<Segment>, place: Place, peer_role: u32, wait: WaitStrategy) -> Result<Tx> {
        let sh = shared_at(&seg, place);
        // Acquire: pairs with the Release stores of `tail` (a previous holder
        // of this end) and `head` (the reader).
        let tail = sh.tail.load(Ordering::Acquire);
        let head = sh.head.load(Ordering::Acquire);
        let core = Writer::new(tail, head, place.cap as u64, buf_at(&seg, place)).map_err(|_| corrupted(&seg))?;
        let gen = side_attach(&sh.prod.ctl);
        let shared = NonNull::from(shared_at(&seg, place));
        Ok(Tx { core, shared, seg, peer_role, wait, polls: Probe::default(), gen })
    }

    #[inline]
    fn sh(&self) -> &Shared {
        view(&self.shared)
    }

    /// Marks this end closed (if `last`) and wakes the reader.
    pub(crate) fn close(&self, last: bool) {
        let sh = self.sh();
        if last {
            side_close(&sh.prod.ctl, self.gen);
        }
        // Wake the reader so it sees CLOSED.
        futex::notify(&sh.cons.ctl, WAITING);
    }

    /// Is the reader gone? Probes the kernel only every `PROBE_EVERY` calls
    /// unless `force`.
    fn reader_gone(&mut self, force: bool) -> bool {
        let sh = view(&self.shared);
        self.polls.peer_gone(&sh.cons.ctl, force, || self.seg.role_held(self.peer_role) != Some(false))
    }

    /// Whether the reader is gone (asks the kernel).
    pub(crate) fn is_peer_gone(&mut self) -> bool {
        self.reader_gone(true)
    }

    /// Sends a `len`-byte message written in place by `fill`, waiting for
    /// room until `deadline` (`Some(None)`: do not wait, `None`: forever).
    pub(crate) fn send_with_deadline<R>(
        &mut self,
        len: usize,
        deadline: Option<Option<Instant>>,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, TxError> {
        let max = self.core.max_message();
        if len > max {
            return Err(TxError::TooLarge { len, max });
        }
        let shared = self.shared;
        let sh = view(&shared);
        // Relaxed: only a hint; a real disconnect is confirmed with Acquire.
        if sh.cons.ctl.load(Ordering::Relaxed) & (super::CLOSED | super::POISONED) != 0 {
            return Err(TxError::Disconnected);
        }
        let off = match self.core.reserve(sh, len) {
            Ok(Some(off)) => off,
            Ok(None) => self.reserve_slow(len, deadline)?,
            Err(Corrupt) => return Err(TxError::Disconnected),
        };
        // SAFETY: `reserve` returns offsets with `off + len <= cap`.
        let p = unsafe { self.core.buf.ptr(off) };
        // SAFETY: 1. `reserve` gave `off..off + len` as free, contiguous bytes
        // of the data area that only this writer touches until `commit`;
        // 2. the mapping stays alive (our `Arc<Segment>`), and `&mut self`
        // keeps the slice unique; 3. `u8` accepts whatever stale bytes are there.
        let r = fill(unsafe { core::slice::from_raw_parts_mut(p, len) });
        // SAFETY: `reserve` (above, or in `reserve_slow`) returned a place for
        // `len` bytes and nothing was staged since.
        unsafe { self.core.commit(view(&self.shared), len) };
        Ok(r)
    }

    #[cold]
    fn reserve_slow(&mut self, len: usize, deadline: Option<Option<Instant>>) -> Result<usize, TxError> {
        let Some(deadline) = deadline else { return self.wait_reserve(len, None) };
        if deadline.is_none() {
            return Err(if self.reader_gone(false) { TxError::Disconnected } else { TxError::Full });
        }
        self.wait_reserve(len, deadline)
    }

    fn wait_reserve(&mut self, len: usize, deadline: Option<Instant>) -> Result<usize, TxError> {
        let seg = self.seg.clone();
        let shared = self.shared;
        let sh = view(&shared);
        let peer = self.peer_role;
        let core = &mut self.core;
        let r = wait::wait_until(
            self.wait,
            deadline,
            &sh.prod.ctl,
            WAITING,
            || match core.reserve(sh, len) {
                Ok(Some(off)) => Some(Ok(off)),
                Ok(None) => None,
                Err(Corrupt) => Some(Err(TxError::Disconnected)),
            },
            || peer_gone(&seg, peer, &sh.cons),
        );
        match r {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(TxError::Full),
            Waited::Gone => Err(TxError::Disconnected),
        }
    }
}

/// What a receive closure decided about the message it saw.
#[cfg(not(loom))]
pub(crate) enum Take<R> {
    /// Consume the message and return this.
    Consume(R),
    /// Leave the message queued and return this.
    Keep(R),
}

#[cfg(not(loom))]
impl Rx {
    /// The reading end of the ring at `place`; marks its side attached.
    /// The caller holds the reader's role.
    pub(crate) fn attach(seg: Arc<Segment>, place: Place, peer_role: u32, wait: WaitStrategy) -> Result<Rx> {
        let sh = shared_at(&seg, place);
        // Acquire: pairs with the Release stores of `head` (a previous holder
        // of this end) and `tail` (the writer).
        let head = sh.head.load(Ordering::Acquire);
        let tail = sh.tail.load(Ordering::Acquire);
        let core = Reader::new(head, tail, place.cap as u64, buf_at(&seg, place)).map_err(|_| corrupted(&seg))?;
        let gen = side_attach(&sh.cons.ctl);
        let shared = NonNull::from(shared_at(&seg, place));
        Ok(Rx { core, shared, seg, peer_role, wait, polls: Probe::default(), gen })
    }

    fn sh(&self) -> &Shared {
        view(&self.shared)
    }

    /// Marks this end closed (if `last`) and wakes the writer.
    pub(crate) fn close(&self, last: bool) {
        let sh = self.sh();
        if last {
            side_close(&sh.cons.ctl, self.gen);
        }
        // Wake the writer so it sees CLOSED.
        futex::notify(&sh.prod.ctl, WAITING);
    }

    /// Is the writer gone? Probes the kernel only every `PROBE_EVERY` calls
    /// unless `force`.
    fn writer_gone(&mut self, force: bool) -> bool {
        let sh = view(&self.shared);
        self.polls.peer_gone(&sh.prod.ctl, force, || self.seg.role_held(self.peer_role) != Some(false))
    }

    /// Whether the writer is gone (asks the kernel).
    pub(crate) fn is_peer_gone(&mut self) -> bool {
        self.writer_gone(true)
    }

    /// The next message, waiting until `deadline` (`Some(None)`: do not
    /// wait; `None`: forever). Once the writer is gone, what it published is
    /// still delivered, then `Disconnected`.
    fn next(&mut self, deadline: Option<Option<Instant>>) -> Result<Msg, TryRecvError> {
        let shared = self.shared;
        let sh = view(&shared);
        match self.core.peek(sh) {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(Corrupt) => return Err(TryRecvError::Disconnected),
        }
        self.next_slow(deadline)
    }

    #[cold]
    fn next_slow(&mut self, deadline: Option<Option<Instant>>) -> Result<Msg, TryRecvError> {
        let shared = self.shared;
        let sh = view(&shared);
        let gone = match deadline {
            Some(None) => {
                if !self.writer_gone(false) {
                    return Err(TryRecvError::Empty);
                }
                true
            }
            Some(Some(d)) => match self.wait_msg(Some(d)) {
                Waited::Ready(r) => return r,
                Waited::TimedOut => return Err(TryRecvError::Empty),
                Waited::Gone => true,
            },
            None => match self.wait_msg(None) {
                Waited::Ready(r) => return r,
                Waited::TimedOut => unreachable!("no deadline"),
                Waited::Gone => true,
            },
        };
        debug_assert!(gone);
        // Gone: drain what it published before leaving (CLOSED was stored
        // with Release after its last publish; a dead process published
        // everything it ever will).
        match self.core.peek(sh) {
            Ok(Some(m)) => Ok(m),
            _ => Err(TryRecvError::Disconnected),
        }
    }

    fn wait_msg(&mut self, deadline: Option<Instant>) -> Waited<Result<Msg, TryRecvError>> {
        let seg = self.seg.clone();
        let shared = self.shared;
        let sh = view(&shared);
        let peer = self.peer_role;
        let core = &mut self.core;
        wait::wait_until(
            self.wait,
            deadline,
            &sh.cons.ctl,
            WAITING,
            || match core.peek(sh) {
                Ok(Some(m)) => Some(Ok(m)),
                Ok(None) => None,
                Err(Corrupt) => Some(Err(TryRecvError::Disconnected)),
            },
            || peer_gone(&seg, peer, &sh.prod),
        )
    }

    /// Shows the next message to `f` in place, then consumes it or leaves
    /// it queued as `f` says.
    ///
    /// # Errors
    /// `Empty` (no message by the deadline) or `Disconnected` (none, and the
    /// writer is gone or the ring poisoned).
    #[inline]
    pub(crate) fn recv_with<R>(
        &mut self,
        deadline: Option<Option<Instant>>,
        f: impl FnOnce(&[u8]) -> Take<R>,
    ) -> Result<R, TryRecvError> {
        let m = self.next(deadline)?;
        // SAFETY: 1. `m` was validated by `peek`: `off + len <= cap`, inside
        // the data area; 2. it is published and the writer does not reuse it
        // until we consume it, which happens only after `f` returns; 3. the
        // mapping stays alive (our `Arc<Segment>`).
        let msg = unsafe { core::slice::from_raw_parts(self.core.buf.ptr(m.off), m.len) };
        match f(msg) {
            Take::Consume(r) => {
                self.core.consume(view(&self.shared), m);
                Ok(r)
            }
            Take::Keep(r) => Ok(r),
        }
    }

    /// Waits until a message is waiting (`true`), the writer is gone
    /// (`true`: a receive would not block) or the deadline passes (`false`).
    pub(crate) fn poll(&mut self, deadline: Option<Option<Instant>>) -> bool {
        !matches!(self.next(deadline), Err(TryRecvError::Empty))
    }

    /// Whether a message is waiting now (never blocks, no system call).
    pub(crate) fn has_message(&mut self) -> bool {
        let shared = self.shared;
        let sh = view(&shared);
        matches!(self.core.peek(sh), Ok(Some(_)))
    }
}

/// Maps a [`TryRecvError`] from a wait with a deadline.
#[cfg(not(loom))]
pub(crate) fn timeout_err(e: TryRecvError) -> RecvTimeoutError {
    match e {
        TryRecvError::Empty => RecvTimeoutError::Timeout,
        TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
    }
}

/// Releases a role and tells whether no handle (in any process) holds it
/// any more, i.e. whether this was the last copy of the end.
#[cfg(not(loom))]
pub(crate) fn give_back_role(seg: &Segment, role: u32, lock: Option<RoleLock>) -> bool {
    match lock {
        Some(l) => {
            drop(l);
            seg.role_held(role) == Some(false)
        }
        None => true,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::primitive::AtomicU64;

    /// A heap ring: `Shared` plus a data area, 128-aligned.
    struct Heap {
        sh: Box<Shared>,
        mem: Vec<AtomicU64>,
    }

    impl Heap {
        fn new(cap: usize) -> Self {
            Heap { sh: Box::default(), mem: (0..cap / 8).map(|_| AtomicU64::new(0)).collect() }
        }
        fn buf(&self) -> Buf {
            // SAFETY: the vector holds `len / 8` 8-aligned words and outlives
            // the test's use of the buffer.
            unsafe { Buf::new(NonNull::new(self.mem.as_ptr() as *mut u8).unwrap(), self.mem.len() * 8) }
        }
    }

    fn pattern(seq: u64, len: usize) -> Vec<u8> {
        (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
    }

    #[test]
    fn capacities() {
        assert_eq!(data_capacity(0).unwrap(), 128);
        assert_eq!(data_capacity(112).unwrap(), 128);
        assert_eq!(data_capacity(113).unwrap(), 256);
        assert_eq!(data_capacity(64 * 1024).unwrap(), 128 * 1024);
        assert!(data_capacity(usize::MAX).is_err());
        assert!(stored_data_capacity("x", 64).is_err());
        assert!(stored_data_capacity("x", 100).is_err());
        assert_eq!(stored_data_capacity("x", 128).unwrap(), 128);
        assert_eq!(Writer::max_for(128), 112);
        assert_eq!(record_len(0), 8);
        assert_eq!(record_len(1), 16);
        assert_eq!(record_len(8), 16);
        assert_eq!(record_len(9), 24);
    }

    #[test]
    fn header_decoding() {
        let cap = 64;
        assert_eq!(decode(EMPTY, 8, cap), Header::Empty);
        assert_eq!(decode(PAD, 8, cap), Header::Pad);
        assert_eq!(decode(PAD, 0, cap), Header::Bad);
        assert_eq!(decode(msg_header(0), 56, cap), Header::Msg(0));
        assert_eq!(decode(msg_header(48), 0, cap), Header::Msg(48));
        assert_eq!(decode(msg_header(49), 0, cap), Header::Bad);
        // Exact fit at the end, then one byte too many.
        assert_eq!(decode(msg_header(8), 48, cap), Header::Msg(8));
        assert_eq!(decode(msg_header(9), 48, cap), Header::Bad);
        assert_eq!(decode(u64::MAX - 1, 0, cap), Header::Bad);
    }

    #[test]
    fn frames_in_order_with_wrap_and_every_size() {
        let h = Heap::new(64);
        let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
        let mut r = Reader::new(0, 0, 64, h.buf()).unwrap();
        let (mut sent, mut got) = (0u64, 0u64);
        let mut sizes = (0..=48usize).cycle();
        let mut pending = std::collections::VecDeque::new();
        for it in 0..100_000u64 {
            if sent >= 2000 {
                break;
            }
            let len = sizes.next().unwrap();
            let m = pattern(sent, len);
            if w.try_write(&h.sh, &m).unwrap() {
                pending.push_back(m);
                sent += 1;
            }
            // Read about every other time so the ring fills and wraps.
            if it % 3 != 0 {
                if let Some(v) = r.try_read(&h.sh).unwrap() {
                    assert_eq!(v, pending.pop_front().unwrap(), "message {got}");
                    got += 1;
                }
            }
        }
        while let Some(v) = r.try_read(&h.sh).unwrap() {
            assert_eq!(v, pending.pop_front().unwrap());
            got += 1;
        }
        assert_eq!(sent, got);
        assert_eq!(sent, 2000);
    }

    #[test]
    fn largest_message_always_fits_eventually() {
        let h = Heap::new(64);
        let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
        let mut r = Reader::new(0, 0, 64, h.buf()).unwrap();
        for first in [0usize, 8, 24, 40, 48] {
            let big = pattern(first as u64, 48);
            if !w.try_write(&h.sh, &pattern(1, first)).unwrap() {
                // A pad went first; the reader skips it.
                assert_eq!(r.try_read(&h.sh).unwrap(), None);
                assert!(w.try_write(&h.sh, &pattern(1, first)).unwrap());
            }
            assert_eq!(r.try_read(&h.sh).unwrap().unwrap().len(), first);
            // Empty now, write position mid-ring: the biggest message needs a pad.
            let mut ok = w.try_write(&h.sh, &big).unwrap();
            if !ok {
                // The pad was published; the reader skips it, then there is room.
                assert_eq!(r.try_read(&h.sh).unwrap(), None);
                ok = w.try_write(&h.sh, &big).unwrap();
            }
            assert!(ok);
            assert_eq!(r.try_read(&h.sh).unwrap().unwrap(), big);
        }
    }

    /// The reader never reads `tail`: a scribbled one does not disturb it.
    #[test]
    fn reader_polls_headers_not_tail() {
        let h = Heap::new(64);
        let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
        let mut r = Reader::new(0, 0, 64, h.buf()).unwrap();
        for i in 0..100u64 {
            assert!(w.try_write(&h.sh, &pattern(i, (i % 20) as usize)).unwrap());
            // (the writer does read it at its next send: put it back then)
            let tail = h.sh.tail.swap(3 + i * 1000, Ordering::Relaxed);
            assert_eq!(r.try_read(&h.sh).unwrap().unwrap(), pattern(i, (i % 20) as usize));
            assert_eq!(r.try_read(&h.sh).unwrap(), None);
            h.sh.tail.store(tail, Ordering::Relaxed);
        }
    }

    /// Copies of one end taking turns (fork siblings under a lock): each
    /// writer and each reader catches up with the others' stored index, so
    /// every message arrives once, whole and in order, across wraps.
    #[test]
    fn copies_of_an_end_taking_turns() {
        let h = Heap::new(128);
        let mut ws: Vec<Writer> = (0..3).map(|_| Writer::new(0, 0, 128, h.buf()).unwrap()).collect();
        let mut rs: Vec<Reader> = (0..2).map(|_| Reader::new(0, 0, 128, h.buf()).unwrap()).collect();
        let mut pending = std::collections::VecDeque::new();
        for i in 0..3000u64 {
            let m = pattern(i, (i * 7 % 60) as usize);
            let w = &mut ws[(i % 3) as usize];
            while !w.try_write(&h.sh, &m).unwrap() {
                // Full: a reader (a different copy each time) drains one.
                let v = rs[(i % 2) as usize].try_read(&h.sh).unwrap();
                if let Some(v) = v {
                    assert_eq!(v, pending.pop_front().unwrap());
                }
            }
            pending.push_back(m);
            if i % 5 == 0 {
                let v = rs[(i / 5 % 2) as usize].try_read(&h.sh).unwrap().unwrap();
                assert_eq!(v, pending.pop_front().unwrap());
            }
        }
        while let Some(v) = rs[1].try_read(&h.sh).unwrap() {
            assert_eq!(v, pending.pop_front().unwrap());
        }
        assert!(pending.is_empty());
        assert_eq!(rs[0].try_read(&h.sh).unwrap(), None);
    }

    /// Stored indices that no copy of the end could have left are refused
    /// at the next send or receive, and poison the ring.
    #[test]
    fn scribbled_stored_index_seen_by_a_copy_poisons() {
        for tail in [3u64, 1 << 20] {
            let h = Heap::new(64);
            let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
            assert!(w.try_write(&h.sh, b"hello").unwrap());
            h.sh.tail.store(tail, Ordering::Relaxed);
            assert_eq!(w.try_write(&h.sh, b"again"), Err(Corrupt));
            assert!(h.sh.prod.ctl.load(Ordering::Relaxed) & super::super::POISONED != 0);
        }
        for head in [3u64, 1 << 20] {
            let h = Heap::new(64);
            let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
            let mut r = Reader::new(0, 0, 64, h.buf()).unwrap();
            assert!(w.try_write(&h.sh, b"hello").unwrap());
            h.sh.head.store(head, Ordering::Relaxed);
            assert_eq!(r.peek(&h.sh), Err(Corrupt));
            assert!(h.sh.cons.ctl.load(Ordering::Relaxed) & super::super::POISONED != 0);
        }
    }

    /// A writer killed between its header store and its `tail` store: the
    /// next writer walks over what was published (a padding record and a
    /// message at most) and carries on after it.
    #[test]
    fn writer_resumes_after_published_but_unstored_records() {
        for (first, second) in [(8usize, 8usize), (40, 40), (0, 48)] {
            let h = Heap::new(64);
            let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
            let mut r = Reader::new(0, 0, 64, h.buf()).unwrap();
            assert!(w.try_write(&h.sh, &pattern(1, first)).unwrap());
            assert_eq!(r.try_read(&h.sh).unwrap().unwrap(), pattern(1, first));
            // Reserve (may publish a padding record with its tail), write
            // and publish the header, but "die" before storing tail.
            let off = match w.reserve(&h.sh, second).unwrap() {
                Some(off) => off,
                None => {
                    // A padding record was published (with its tail): skip it.
                    assert_eq!(r.try_read(&h.sh).unwrap(), None);
                    w.reserve(&h.sh, second).unwrap().unwrap()
                }
            };
            // SAFETY: `reserve` gave `off..off + second` as ours.
            unsafe { w.buf.write_bytes(off, &pattern(2, second)) };
            // SAFETY: `reserve` returned a place for `second` bytes just now.
            unsafe { w.stage(second) };
            // (the writer "dies" here: a new one attaches below)
            let tail = h.sh.tail.load(Ordering::Relaxed);
            let head = h.sh.head.load(Ordering::Relaxed);
            let mut w = Writer::new(tail, head, 64, h.buf()).unwrap();
            assert_eq!(w.idx.tail, tail + record_len(second as u64));
            assert_eq!(r.try_read(&h.sh).unwrap().unwrap(), pattern(2, second));
            // A reader attaching now finds `head` ahead of the stale `tail`.
            let mut r2 = Reader::new(r.head, tail, 64, h.buf()).unwrap();
            assert!(w.try_write(&h.sh, &pattern(3, 5)).unwrap());
            assert_eq!(r2.try_read(&h.sh).unwrap().unwrap(), pattern(3, 5));
            assert_eq!(r2.try_read(&h.sh).unwrap(), None);
        }
    }

    #[test]
    fn corrupt_headers_and_indices_poison() {
        // A length larger than the ring.
        let h = Heap::new(64);
        let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
        let mut r = Reader::new(0, 0, 64, h.buf()).unwrap();
        assert!(w.try_write(&h.sh, b"hello").unwrap());
        h.mem[0].store(1 << 40, Ordering::Relaxed);
        assert_eq!(r.peek(&h.sh), Err(Corrupt));
        assert!(h.sh.cons.ctl.load(Ordering::Relaxed) & super::super::POISONED != 0);

        // A length whose record runs past the end of the area.
        let h = Heap::new(64);
        let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
        let mut r = Reader::new(0, 0, 64, h.buf()).unwrap();
        assert!(w.try_write(&h.sh, &[7; 40]).unwrap());
        assert!(r.try_read(&h.sh).unwrap().is_some());
        assert!(w.try_write(&h.sh, b"hello").unwrap());
        h.mem[6].store(msg_header(16), Ordering::Relaxed);
        assert_eq!(r.peek(&h.sh), Err(Corrupt));

        // A padding record at offset 0.
        let h = Heap::new(64);
        let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
        let mut r = Reader::new(0, 0, 64, h.buf()).unwrap();
        assert!(w.try_write(&h.sh, b"hello").unwrap());
        h.mem[0].store(PAD, Ordering::Relaxed);
        assert_eq!(r.peek(&h.sh), Err(Corrupt));

        // Padding everywhere: one peek reads two headers, then refuses.
        let h = Heap::new(64);
        let mut r = Reader::new(8, 8, 64, h.buf()).unwrap();
        for word in &h.mem {
            word.store(PAD, Ordering::Relaxed);
        }
        assert_eq!(r.peek(&h.sh), Err(Corrupt));

        // An inconsistent stored pair is refused at attach.
        let h = Heap::new(64);
        assert!(Reader::new(0, 3, 64, h.buf()).is_err());
        assert!(Reader::new(0, 1 << 20, 64, h.buf()).is_err());
        assert!(Writer::new(1 << 20, 0, 64, h.buf()).is_err());
        // A writer's walk that finds more than two published records.
        let h = Heap::new(64);
        for (i, word) in h.mem.iter().enumerate() {
            word.store(if i % 2 == 0 { msg_header(8) } else { 0 }, Ordering::Relaxed);
        }
        assert!(Writer::new(0, 0, 64, h.buf()).is_err());

        // A scribbled head seen by the writer.
        let h = Heap::new(64);
        let mut w = Writer::new(0, 0, 64, h.buf()).unwrap();
        for _ in 0..3 {
            assert!(w.try_write(&h.sh, &[1; 8]).unwrap());
        }
        h.sh.head.store(u64::MAX - 63, Ordering::Relaxed);
        assert_eq!(w.try_write(&h.sh, &[1; 8]), Err(Corrupt));
    }
}

/// loom models of the header-polled protocol: a writer and a reader on a
/// tiny ring, with messages that force a padding record and a second lap
/// over stale bytes.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Message `i` of `len` bytes: every payload word reads as a valid
    /// header (of a 0-, 8- or 16-byte message), so a reader that polled a
    /// stale payload word as a header would deliver a wrong message.
    fn msg(i: usize, len: usize) -> Vec<u8> {
        let word = msg_header([0u64, 8, 16][i % 3]).to_le_bytes();
        (0..len).map(|j| word[j % 8]).collect()
    }

    /// The next message, polling (and yielding) until one is published.
    fn read_next(r: &mut Reader, sh: &Shared) -> Vec<u8> {
        loop {
            if let Some(v) = r.try_read(sh).unwrap() {
                return v;
            }
            loom::thread::yield_now();
        }
    }

    /// 32-byte ring (largest message 16 bytes). Sizes 8 (record 16 at 0),
    /// 0 (record 8 at 16), 16 (record 24: a pad at 24, then offset 0 again,
    /// over the first message's stale header and payload). The reader must
    /// get each message whole, in order, and then find the ring empty.
    #[test]
    fn loom_frames_delivered_whole_and_in_order() {
        loom::model(|| {
            let sh = Arc::new(Shared::default());
            let buf = Buf::new_heap(32);
            let sizes = [8usize, 0, 16];
            let (sh2, buf2) = (sh.clone(), buf.clone());
            let t = loom::thread::spawn(move || {
                let mut w = Writer::new(0, 0, 32, buf2).unwrap();
                for (i, &len) in sizes.iter().enumerate() {
                    let m = msg(i, len);
                    while !w.try_write(&sh2, &m).unwrap() {
                        loom::thread::yield_now();
                    }
                }
            });
            let mut r = Reader::new(0, 0, 32, buf).unwrap();
            for (i, &len) in sizes.iter().enumerate() {
                assert_eq!(read_next(&mut r, &sh), msg(i, len));
            }
            t.join().unwrap();
            assert_eq!(r.try_read(&sh).unwrap(), None);
        });
    }

    /// The reader polls while the writer publishes a record that ends
    /// exactly at the end of the area (its EMPTY word is at offset 0, over
    /// the stale header of the first lap): whenever the reader looks, it
    /// sees a whole message or nothing, never the stale header.
    #[test]
    fn loom_exact_fit_at_the_end_then_stale_offset_zero() {
        loom::model(|| {
            let sh = Arc::new(Shared::default());
            let buf = Buf::new_heap(32);
            // Before the race: a 0-byte message at 0 (header 1 stays there
            // as stale data), read, so the writer is at 8 with 24 bytes to
            // the end: a 16-byte message fits exactly.
            let mut w = Writer::new(0, 0, 32, buf.clone()).unwrap();
            let mut r = Reader::new(0, 0, 32, buf).unwrap();
            assert!(w.try_write(&sh, &msg(0, 0)).unwrap());
            assert_eq!(r.try_read(&sh).unwrap().unwrap(), msg(0, 0));
            let sh2 = sh.clone();
            let t = loom::thread::spawn(move || {
                assert!(w.try_write(&sh2, &msg(2, 16)).unwrap());
            });
            let mut got = Vec::new();
            for _ in 0..3 {
                if let Some(v) = r.try_read(&sh).unwrap() {
                    got.push(v);
                }
            }
            t.join().unwrap();
            if let Some(v) = r.try_read(&sh).unwrap() {
                got.push(v);
            }
            assert_eq!(got, vec![msg(2, 16)]);
            assert_eq!(r.try_read(&sh).unwrap(), None);
        });
    }

    /// Two copies of the writing end (fork siblings) take turns, the first
    /// handing over to the second as through a lock (here: the second
    /// joins the first): the second copy, whose private `tail` is still 0,
    /// catches up with the first one's stored `tail` and sends after it,
    /// while the reader polls. The reader gets both messages whole and in
    /// order.
    #[test]
    fn loom_writer_copies_take_turns() {
        loom::model(|| {
            let sh = Arc::new(Shared::default());
            let buf = Buf::new_heap(32);
            let mut w1 = Writer::new(0, 0, 32, buf.clone()).unwrap();
            let mut w2 = Writer::new(0, 0, 32, buf.clone()).unwrap();
            let sh1 = sh.clone();
            let t1 = loom::thread::spawn(move || {
                assert!(w1.try_write(&sh1, &msg(0, 0)).unwrap());
            });
            let sh2 = sh.clone();
            let t2 = loom::thread::spawn(move || {
                t1.join().unwrap();
                assert!(w2.try_write(&sh2, &msg(1, 8)).unwrap());
            });
            let mut r = Reader::new(0, 0, 32, buf).unwrap();
            for (i, len) in [(0usize, 0usize), (1, 8)] {
                assert_eq!(read_next(&mut r, &sh), msg(i, len));
            }
            t2.join().unwrap();
            assert_eq!(r.try_read(&sh).unwrap(), None);
        });
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl Tx {
    /// For `crate::asynch`: the word this writer sleeps on and the reader's
    /// liveness probe.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'static> {
        let (seg, shared, peer) = (self.seg.clone(), SendPtr(self.shared), self.peer_role);
        // SAFETY: the word lies in the mapping `seg` owns; the probe owns a
        // clone of `seg`.
        unsafe {
            crate::asynch::Hook::kept(
                self.wait,
                &view(&self.shared).prod.ctl,
                crate::asynch::How::Flag(WAITING),
                move || {
                    let sh = &shared;
                    peer_gone(&seg, peer, &view(&sh.0).cons)
                },
            )
        }
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl Rx {
    /// For `crate::asynch`: the word this reader sleeps on and the writer's
    /// liveness probe.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'static> {
        let (seg, shared, peer) = (self.seg.clone(), SendPtr(self.shared), self.peer_role);
        // SAFETY: as in `Tx::async_hook`.
        unsafe {
            crate::asynch::Hook::kept(
                self.wait,
                &view(&self.shared).cons.ctl,
                crate::asynch::How::Flag(WAITING),
                move || {
                    let sh = &shared;
                    peer_gone(&seg, peer, &view(&sh.0).prod)
                },
            )
        }
    }
}

/// The shared header pointer, moved into a liveness probe next to the
/// `Arc<Segment>` that keeps it valid.
#[cfg(all(feature = "async", not(loom)))]
struct SendPtr(NonNull<Shared>);

// SAFETY: it points to atomics in a shared mapping (`Shared` is `Sync`), kept
// alive by the `Arc<Segment>` moved along with it.
#[cfg(all(feature = "async", not(loom)))]
unsafe impl Send for SendPtr {}
