//! Byte messages in MPMC slots plus an arena: the storage under
//! [`crate::ByteQueue`], whose memory follows what is queued rather than
//! `capacity x max_message_bytes`.
//!
//! # Implementation details
//!
//! The slots are those of the MPMC ring ([`super::mpmc`], protocol
//! unchanged). Each slot's payload starts with a *frame header*, then a
//! small inline area; each slot also owns one *extent* of the arena, laid
//! out after the slot array in the same segment:
//!
//! ```text
//! | Shared | slot 0 | slot 1 | ... | slot n-1 | pad to a page | extent 0 | extent 1 | ... | extent n-1 |
//!            seq | len | backed | touched | inline (104 or 232 bytes)
//! ```
//!
//! | field     | bytes | meaning                                                          |
//! |-----------|-------|------------------------------------------------------------------|
//! | `len`     | 8     | the message length; `<= inline`: the bytes are inline, else they fill the start of the slot's extent; [`DROPPED`]: no message (its put found no memory) |
//! | `backed`  | 4     | bytes at the start of the extent known to be backed by memory (a multiple of [`PAGE`]) |
//! | `touched` | 4     | bytes at the start of the extent that may be backed (`>= backed`) |
//!
//! A slot is one cache line (stride 128, 104 inline bytes) when every
//! message fits inline, else two (stride 256, 232 inline bytes); a queue
//! whose `max_message_bytes` fits inline has no arena at all. An extent is
//! `max_message_bytes` rounded up to a page, page-aligned in the file, so
//! the arena's virtual size is `slots x extent` (at most [`MAX_ARENA`]).
//!
//! ## Memory follows what is queued
//!
//! The segment is sized to hold everything, but only the part before the
//! arena is reserved (`fallocate`) at create: the arena is a hole in the
//! tmpfs (or memfd) file, and nothing at create, open or `init` touches it.
//! A page of an extent is backed when a message first needs it:
//!
//! - *put* of a message longer than the inline area, into the extent of the
//!   slot it claimed: if the message needs more than `backed` bytes, it
//!   raises `touched` first, then `fallocate`s the missing pages (a full
//!   tmpfs answers `ENOSPC`: the slot is published as [`DROPPED`] and the
//!   put fails with `PutBytesError::NoSpace`, instead of a `SIGBUS` on the
//!   first write), then raises `backed`, then copies. A message that fits
//!   in what is backed costs no system call.
//! - *get*, after copying the message out and *before* freeing the slot
//!   (so no producer writes the extent meanwhile): if `touched` is above the
//!   slot's *warm* size, the pages beyond the warm size are given back with
//!   `fallocate(PUNCH_HOLE | KEEP_SIZE)` (tmpfs unmaps them from every
//!   process), and `backed`/`touched` are lowered to at most the warm size.
//!
//! The warm size is `WARM_BUDGET / slots` bytes rounded down to a page, at
//! most [`MAX_WARM`]
//! (a queue keeps at most 32 MiB of arena pages while empty): messages up to
//! inline plus the warm size reuse their pages with no system call once the
//! slot has carried one, and bigger ones pay for the memory they use only
//! while they are queued. Measured on the 2-vCPU VM this was written on,
//! copying a message in and out costs 0.2 us for 4 KiB and 140 us for
//! 1 MiB when its pages stay backed, and 4-7 us (4 KiB) or 570 us (1 MiB)
//! when they are given back and faulted in again (one zeroed page fault
//! per 4 KiB plus the two `fallocate` calls): the price of giving memory
//! back, paid only by messages bigger than the warm size.
//!
//! A small message makes no system call (unless its slot still holds pages
//! of a big message whose consumer died): `backed`/`touched` live in the
//! same cache line as `len`, so the check is free.
//!
//! ## Never trusting the segment
//!
//! `len` is checked against `max_message_bytes` (else the queue is
//! poisoned); `backed` and `touched` are clamped to the extent and rounded
//! down to a page before use, so a scribbled value can at worst make this
//! process give back or reserve pages of the extent of the slot it holds, or
//! skip a reservation (a `SIGBUS` risk only if the tmpfs is also full, as
//! for any writer who can `ftruncate` the file). A claim recovered from a
//! dead producer or consumer leaves `touched` as it was: the next consumer
//! of that slot gives the pages back.

use std::ptr::NonNull;

use rustix::fs::FallocateFlags;
use rustix::io::Errno;

use super::mpmc::{self, RawRing, SlotLayout};
use super::mpmc_core::Blocked;
use super::{align_up, poison};
use crate::error::{Error, Result};
use crate::shm::header::HEADER_SIZE;
use crate::shm::Segment;
use crate::sync::futex;

/// The granule of the arena: extents start on and are sized in pages.
pub(crate) const PAGE: usize = 4096;
/// Largest arena (virtual bytes: slots x extent), 16 TiB. A process has
/// 128 TiB of address space; this leaves room for several such queues.
pub(crate) const MAX_ARENA: u64 = 1 << 44;
/// Largest `max_message_bytes` (1 GiB; `backed`/`touched` are 32-bit).
pub(crate) const MAX_MESSAGE: usize = 1 << 30;
/// Arena pages a queue keeps backed while empty, at most (all slots).
const WARM_BUDGET: usize = 32 << 20;
/// Warm size of one slot, at most.
pub(crate) const MAX_WARM: usize = 64 << 10;
/// `len` of a slot whose put found no memory for its message.
pub(crate) const DROPPED: u64 = u64::MAX;
/// Bytes of the frame header: `len`, `backed`, `touched`.
const FRAME: usize = 16;
const OFF_BACKED: usize = 8;
const OFF_TOUCHED: usize = 12;

/// Where everything of a byte queue lies, derived from its slot count and
/// `max_message_bytes` only (both validated), never from the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// The ring's slots; `extra` covers the pad and the arena.
    pub layout: SlotLayout,
    /// Largest message.
    pub max: usize,
    /// Bytes a slot holds inline.
    pub inline: usize,
    /// Bytes of one extent (0: no arena).
    pub extent: usize,
    /// Body offset of extent 0 (page-aligned in the file).
    pub arena_off: usize,
    /// Number of slots.
    pub slots: usize,
    /// Extent bytes a slot keeps backed after a get.
    pub warm: usize,
}

impl Geometry {
    /// The slot layout for messages of up to `max` bytes, without the arena.
    fn slot_layout(max: usize) -> SlotLayout {
        // Payload = frame header + inline bytes; the slot starts with the
        // 8-byte `seq` word.
        let stride = if max <= 128 - 8 - FRAME { 128 } else { 256 };
        SlotLayout::new(stride - 8, 8)
    }

    /// The geometry of a new queue of `capacity` messages of up to `max`
    /// bytes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `max` or the arena is too large.
    pub(crate) fn new(capacity: usize, max: usize) -> Result<Geometry> {
        if max > MAX_MESSAGE {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "max_message_bytes {max} is larger than the limit of {MAX_MESSAGE}: split messages, or send \
                     big payloads through a file"
                ),
            });
        }
        let slots = mpmc::slot_count(capacity, Self::slot_layout(max))?;
        Self::for_slots(slots, max).map_err(|arena| Error::InvalidArgument {
            reason: format!(
                "a queue of capacity {capacity} ({slots} slots) x max_message_bytes {max} needs {arena} bytes of \
                 address space, more than the limit of {MAX_ARENA} (16 TiB): lower the capacity or \
                 max_message_bytes"
            ),
        })
    }

    /// The geometry of `slots` slots (a power of two) for messages of up to
    /// `max <= MAX_MESSAGE` bytes; `Err(arena bytes)` if the arena is too
    /// large.
    pub(crate) fn for_slots(slots: usize, max: usize) -> core::result::Result<Geometry, u128> {
        let base = Self::slot_layout(max);
        let inline = base.payload_len - FRAME;
        let extent = if max <= inline { 0 } else { align_up(max, PAGE) };
        let arena = slots as u128 * extent as u128;
        if arena > u128::from(MAX_ARENA) {
            return Err(arena);
        }
        let slots_end = base.extra_offset(slots);
        let arena_off = if extent == 0 { slots_end } else { align_up(HEADER_SIZE + slots_end, PAGE) - HEADER_SIZE };
        let layout = base.with_extra(arena_off - slots_end + arena as usize);
        let warm = (WARM_BUDGET / slots).min(MAX_WARM) / PAGE * PAGE;
        Ok(Geometry { layout, max, inline, extent, arena_off, slots, warm: warm.min(extent) })
    }

    /// Body bytes before the arena (the part reserved at create).
    pub(crate) fn dense_body(&self) -> usize {
        self.layout.extra_offset(self.slots)
    }
}

/// The arena of a mapped queue.
pub(crate) struct Arena {
    geo: Geometry,
    /// Address of extent 0 in this process.
    base: NonNull<u8>,
    /// File offset of extent 0.
    file_off: u64,
}

// SAFETY: `base` points into the mapping of the segment that the owning
// `ByteQueue` keeps alive alongside; all access to it goes through slots the
// caller holds a claim on.
unsafe impl Send for Arena {}
// SAFETY: as above.
unsafe impl Sync for Arena {}

/// The outcome of one get.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Got {
    /// A message.
    Msg(Vec<u8>),
    /// A slot whose put found no memory: take the next one.
    Dropped,
    /// A length no put writes: the queue was poisoned.
    Corrupt,
}

/// A put found no memory for its message (`ENOSPC`); nothing was put.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NoSpace;

/// Clamps a `backed`/`touched` value read from the segment.
#[inline]
fn clamp(v: u32, extent: usize) -> usize {
    (v as usize).min(extent) / PAGE * PAGE
}

impl Arena {
    /// The arena of `raw` laid out as `geo`.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if the mapping is too small for it (the caller
    /// checked the segment size against `geo`, so this is a bug guard).
    pub(crate) fn new(raw: &RawRing, geo: Geometry) -> Result<Arena> {
        let seg = raw.segment();
        let end = geo.arena_off as u128 + geo.slots as u128 * geo.extent as u128;
        if raw.slot_count() != geo.slots || raw.layout() != geo.layout || end > seg.body_len() as u128 {
            return Err(Error::Corrupted {
                name: seg.name().into(),
                reason: "the arena does not fit the segment".into(),
            });
        }
        // SAFETY: `arena_off <= body_len` (checked above): inside the mapping
        // or one past its end (an empty arena).
        let base = unsafe { NonNull::new_unchecked(seg.body_ptr().as_ptr().add(geo.arena_off)) };
        Ok(Arena { geo, base, file_off: (HEADER_SIZE + geo.arena_off) as u64 })
    }

    /// The extent of slot `i`.
    #[inline]
    fn extent(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.geo.slots);
        // SAFETY: `i < slots` (slot indices come masked from the ring), and
        // extent `i` lies inside the arena, inside the mapping (checked in
        // `new`).
        unsafe { self.base.as_ptr().add(i * self.geo.extent) }
    }

    /// Gives back the pages of extent `i` in `[from, to)` (page multiples).
    fn punch(&self, seg: &Segment, i: usize, from: usize, to: usize) {
        let Some(fd) = seg.fd() else { return };
        let off = self.file_off + (i * self.geo.extent + from) as u64;
        // Errors leave the pages where they are: memory, not correctness.
        let _ =
            rustix::fs::fallocate(fd, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, off, (to - from) as u64);
    }

    /// Backs the pages of extent `i` in `[from, to)` with memory.
    fn reserve(&self, seg: &Segment, i: usize, from: usize, to: usize) -> core::result::Result<(), NoSpace> {
        let Some(fd) = seg.fd() else { return Ok(()) };
        let off = self.file_off + (i * self.geo.extent + from) as u64;
        match rustix::fs::fallocate(fd, FallocateFlags::empty(), off, (to - from) as u64) {
            // A file system without `fallocate` backs pages as they are written.
            Ok(()) | Err(Errno::OPNOTSUPP | Errno::NOSYS) => Ok(()),
            Err(_) => Err(NoSpace),
        }
    }

    /// Writes `msg` into slot `i`, whose frame is `f`.
    ///
    /// # Safety
    /// The caller holds the write claim of slot `i` (`f` is its frame), and
    /// `msg.len() <= max`.
    unsafe fn write(&self, seg: &Segment, i: usize, f: Frame, msg: &[u8]) -> core::result::Result<(), NoSpace> {
        let len = msg.len();
        debug_assert!(len <= self.geo.max);
        if len <= self.geo.inline {
            // SAFETY: the inline area holds `inline >= len` bytes of a slot we
            // hold the claim of: no other process writes it until we publish.
            unsafe { core::ptr::copy_nonoverlapping(msg.as_ptr(), f.inline(), len) };
            f.set_len(len as u64);
            return Ok(());
        }
        let ext = self.geo.extent;
        let (backed, touched) = f.pages(ext);
        let need = align_up(len, PAGE);
        if need > backed {
            // `touched` first: if we die after reserving, the next consumer
            // of the slot gives the pages back.
            f.set_pages(backed, need.max(touched));
            if self.reserve(seg, i, backed, need).is_err() {
                f.set_len(DROPPED);
                return Err(NoSpace);
            }
            f.set_pages(need, need.max(touched));
        }
        // SAFETY: `len <= max <= extent`: the bytes lie in the extent of slot
        // `i`, which is ours while we hold its claim.
        unsafe { core::ptr::copy_nonoverlapping(msg.as_ptr(), self.extent(i), len) };
        f.set_len(len as u64);
        Ok(())
    }

    /// Reads the message of slot `i`, whose frame is `f`, then gives back the
    /// slot's extent pages beyond its warm size.
    ///
    /// # Safety
    /// The caller holds the read claim of slot `i` (`f` is its frame).
    unsafe fn read(&self, seg: &Segment, i: usize, f: Frame) -> Got {
        // The header words may hold anything (another process can scribble
        // on them): each is read once and checked or clamped before use.
        let len = f.len();
        let got = if len == DROPPED {
            Got::Dropped
        } else if len > self.geo.max as u64 {
            Got::Corrupt
        } else {
            let len = len as usize;
            let src = if len <= self.geo.inline { f.inline() } else { self.extent(i) };
            let mut v = Vec::with_capacity(len);
            // SAFETY: `len <= inline` bytes of the inline area, or
            // `len <= max <= extent` bytes of slot `i`'s extent: in bounds,
            // and not written by anyone until we free the slot; `v` has room
            // for `len` bytes, all initialised by the copy.
            unsafe {
                core::ptr::copy_nonoverlapping(src, v.as_mut_ptr(), len);
                v.set_len(len);
            }
            Got::Msg(v)
        };
        let (backed, touched) = f.pages(self.geo.extent);
        let warm = self.geo.warm;
        if touched > warm {
            self.punch(seg, i, warm, touched);
            f.set_pages(backed.min(warm), warm);
        }
        got
    }
}

/// The frame header and inline area of a slot whose claim the holder of
/// this value holds (see the module docs for the fields).
#[derive(Clone, Copy)]
struct Frame(*mut u8);

impl Frame {
    /// # Safety
    /// `p` is the payload of a slot of a byte queue (`FRAME + inline`
    /// bytes, 8-aligned) whose write or read claim the caller holds for as
    /// long as the frame is used.
    unsafe fn new(p: *mut u8) -> Frame {
        Frame(p)
    }

    fn len(self) -> u64 {
        // SAFETY: the first 8 bytes of the frame, aligned (`Frame::new`);
        // any bits are a valid `u64` and are validated by the caller.
        unsafe { self.0.cast::<u64>().read() }
    }

    fn set_len(self, len: u64) {
        // SAFETY: as in `len`; the claim makes the write ours alone.
        unsafe { self.0.cast::<u64>().write(len) }
    }

    /// `(backed, touched)`, clamped to the extent size `ext`, page multiples,
    /// `backed <= touched`.
    fn pages(self, ext: usize) -> (usize, usize) {
        // SAFETY: bytes 8..16 of the frame, 4-aligned (`Frame::new`); any
        // bits are valid and clamped here.
        let (b, t) =
            unsafe { (self.0.add(OFF_BACKED).cast::<u32>().read(), self.0.add(OFF_TOUCHED).cast::<u32>().read()) };
        let t = clamp(t, ext);
        (clamp(b, ext).min(t), t)
    }

    /// Stores `backed` and `touched` (at most `MAX_MESSAGE` rounded to a page: they fit 32 bits).
    fn set_pages(self, backed: usize, touched: usize) {
        // SAFETY: as in `pages`; the claim makes the writes ours alone.
        unsafe {
            self.0.add(OFF_BACKED).cast::<u32>().write(backed as u32);
            self.0.add(OFF_TOUCHED).cast::<u32>().write(touched as u32);
        }
    }

    /// The inline area.
    fn inline(self) -> *mut u8 {
        // SAFETY: `FRAME` bytes into the payload, inside it.
        unsafe { self.0.add(FRAME) }
    }
}

/// Puts `msg` (at most `max` bytes: checked by the caller) into one slot of
/// `raw` if there is room. `Ok(Err(NoSpace))`: a slot was used but no memory
/// was found for the message (the slot carries [`DROPPED`]).
pub(crate) fn try_put(
    raw: &RawRing,
    arena: &Arena,
    linear: bool,
    msg: &[u8],
) -> core::result::Result<core::result::Result<(), NoSpace>, Blocked> {
    assert!(msg.len() <= arena.geo.max, "message longer than max_message_bytes");
    let out = core::cell::Cell::new(Ok(()));
    raw.try_send_at(linear, |i, p| {
        // SAFETY: `try_send_at` hands us the index and payload of a slot this
        // sender claimed exclusively; `msg.len() <= max` (asserted above).
        out.set(unsafe { arena.write(raw.segment(), i, Frame::new(p), msg) });
    })?;
    Ok(out.into_inner())
}

/// Gets one message from `raw`. A corrupt length poisons the queue (the
/// slot itself is freed).
pub(crate) fn try_get(raw: &RawRing, arena: &Arena, linear: bool) -> core::result::Result<Got, Blocked> {
    let got = raw.try_recv_at(linear, |i, p| {
        // SAFETY: `try_recv_at` hands us the index and payload of a
        // published slot this receiver claimed; it is freed after we return.
        unsafe { arena.read(raw.segment(), i, Frame::new(p)) }
    })?;
    if got == Got::Corrupt {
        let sh = raw.shared();
        poison(&sh.send);
        poison(&sh.recv);
        futex::wake_all(&sh.send);
        futex::wake_all(&sh.recv);
    }
    Ok(got)
}

/// Claims a slot, writes the header and the first half of `msg` and never
/// publishes it: a producer killed in the middle of copying a message.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn abandon_half_put(raw: &RawRing, arena: &Arena, msg: &[u8]) -> bool {
    assert!(msg.len() <= arena.geo.max, "message longer than max_message_bytes");
    raw.claim_only_with(|i, p| {
        // SAFETY: the slot is claimed by us (and stays so: never published);
        // half of `msg` is at most `max` bytes.
        let f = unsafe { Frame::new(p) };
        // SAFETY: as above.
        let _ = unsafe { arena.write(raw.segment(), i, f, &msg[..msg.len() / 2]) };
        f.set_len(msg.len() as u64);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometries() {
        let g = Geometry::new(4, 100).unwrap();
        assert_eq!((g.layout.stride, g.inline, g.extent), (128, 104, 0));
        assert_eq!(g.layout.body_size(4), g.dense_body(), "no arena");
        let g = Geometry::new(4, 232).unwrap();
        assert_eq!((g.layout.stride, g.inline, g.extent), (256, 232, 0));
        let g = Geometry::new(4, 233).unwrap();
        assert_eq!((g.layout.stride, g.inline, g.extent), (256, 232, PAGE));
        assert_eq!((HEADER_SIZE + g.arena_off) % PAGE, 0);
        assert_eq!(g.layout.body_size(4), g.arena_off + 4 * PAGE);
        assert_eq!(g.warm, PAGE);
        let g = Geometry::new(100_000, 1 << 20).unwrap();
        assert_eq!(g.slots, 131_072);
        assert_eq!(g.warm, 0, "32 MiB over 131072 slots is less than a page");
        assert!(g.dense_body() < 64 << 20);
        let g = Geometry::new(4096, 64 << 20).unwrap();
        assert_eq!(g.warm, 8192);
        assert!(Geometry::new(1 << 20, 1 << 30).is_err());
        assert!(Geometry::new(4, MAX_MESSAGE + 1).is_err());
        assert!(Geometry::new(16, MAX_MESSAGE).is_ok());
    }

    #[test]
    fn clamps() {
        assert_eq!(clamp(u32::MAX, 8192), 8192);
        assert_eq!(clamp(5000, 8192), 4096);
        assert_eq!(clamp(5000, 0), 0);
    }
}
