//! A bounded single-producer single-consumer ring in shared memory.
//!
//! ```
//! use ringshm::spsc;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-spsc-mod-{}", std::process::id());
//! // process 1
//! let ring = spsc::Ring::<u64>::create(&name, 1 << 10)?;
//! let mut tx = ring.producer()?;
//! tx.push(7)?;
//! // process 2 (here the same one)
//! let mut rx = spsc::Ring::<u64>::open(&name)?.consumer()?;
//! assert_eq!(rx.pop()?, 7);
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! Lamport's ring (L. Lamport, "Specifying Concurrent Program Modules",
//! TOPLAS 1983) with the refinements of rtrb and Rigtorp's SPSC queue:
//! free-running `head`/`tail` counters on their own cache lines, slot
//! `counter & mask`, and a *cached copy* of the opposite counter that is
//! re-read only when it says full (producer) or empty (consumer). The index
//! protocol — publishing, validation of everything read from the segment,
//! poisoning, wake-ups — is the shared core in `src/ring/spsc_core.rs`,
//! which the byte ring under [`crate::Pipe`] uses too; this file adds the
//! slot array, the roles and the public API, and `src/ring/chunks.rs` the
//! zero-copy chunks.
//!
//! | invariant                   | checked where                                   |
//! |-----------------------------|-------------------------------------------------|
//! | `0 <= tail - head <= cap`   | on attach and on every refresh of the opposite counter; a violation poisons the ring |
//! | slot `i` is written only while `i - head < cap`, read only while `i < tail` | by construction |
//! | the slot array is aligned to `align_of::<T>()` (up to [`MAX_ALIGN`]) | at create/open/attach |
//!
//! In steady state `try_push` is one load of the cached index, the slot
//! write, one `Release` store of `tail` and one Relaxed load of the
//! consumer's control word (to see whether it sleeps): no read-modify-write,
//! and no access to a line the consumer writes unless the ring looks full.

#[cfg(not(loom))]
use core::marker::PhantomData;
#[cfg(not(loom))]
use std::ptr::NonNull;
#[cfg(not(loom))]
use std::sync::Arc;
#[cfg(not(loom))]
use std::time::Duration;

#[cfg(not(loom))]
use bytemuck::Pod;

use super::spsc_core::{ConsIdx, ProdIdx};
pub(crate) use super::spsc_core::{Corrupt, Shared, Side};
use crate::primitive::Slots;

#[cfg(not(loom))]
pub use super::chunks::{ReadChunk, ReadChunkIntoIter, WriteChunk};
#[cfg(not(loom))]
pub use super::MAX_ALIGN;

#[cfg(not(loom))]
use super::spsc_core::{first_run, valid, Probe};
#[cfg(not(loom))]
use super::{check_align, ring_capacity, side_attach, side_close, side_gen, side_gone, stored_capacity};
#[cfg(not(loom))]
use super::{CLOSED, POISONED, WAITING};
#[cfg(not(loom))]
use crate::error::{
    Error, RecvError, RecvTimeoutError, Result, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
#[cfg(not(loom))]
use crate::primitive::Ordering;
#[cfg(not(loom))]
use crate::shm::header::{ElemInfo, HeaderData, Kind, HEADER_SIZE};
#[cfg(not(loom))]
use crate::shm::lock::RoleLock;
#[cfg(not(loom))]
use crate::shm::object::{self, Shape, SharedObject};
#[cfg(not(loom))]
use crate::shm::{Options, Segment, WaitStrategy};
#[cfg(not(loom))]
use crate::sync::futex;
#[cfg(not(loom))]
use crate::sync::wait::{self, Waited};

/// Role numbers (lock slots) of the two ends.
#[cfg(not(loom))]
const ROLE_PRODUCER: u32 = 0;
#[cfg(not(loom))]
const ROLE_CONSUMER: u32 = 1;

/// Producer side of the item ring: the index core plus the slot array,
/// independent of where memory lives (loom runs it on the heap).
pub(crate) struct ProdCore<T> {
    pub idx: ProdIdx<1>,
    pub slots: Slots<T>,
}

/// Consumer side of the item ring.
pub(crate) struct ConsCore<T> {
    pub idx: ConsIdx<1>,
    pub slots: Slots<T>,
}

impl<T: Copy> ProdCore<T> {
    /// Pushes one item; `Err(Ok(v))` when full, `Err(Err(Corrupt))` when poisoned.
    #[inline]
    pub(crate) fn try_push(&mut self, sh: &Shared, v: T) -> Result<(), Result<T, Corrupt>> {
        match self.idx.free(sh, 1) {
            Ok(0) => return Err(Ok(v)),
            Ok(_) => {}
            Err(c) => return Err(Err(c)),
        }
        let i = self.idx.pos() as usize;
        // SAFETY: 1. `i = tail & (cap - 1) < cap`, the slot count; 2. slot
        // `tail` is free (`tail - head < cap`) and only the producer writes
        // slots, so nobody else touches it until it is published.
        unsafe { self.slots.write(i, v) };
        self.idx.commit(sh, 1);
        Ok(())
    }
}

impl<T: Copy> ConsCore<T> {
    /// Pops one item; `Ok(None)` when empty.
    #[inline]
    pub(crate) fn try_pop(&mut self, sh: &Shared) -> Result<Option<T>, Corrupt> {
        if self.idx.available(sh, 1)? == 0 {
            return Ok(None);
        }
        let i = self.idx.pos() as usize;
        // SAFETY: 1. `i < cap` (masked); 2. `head < tail`: the slot was
        // published by the producer (Acquire in `refresh`) and is not reused
        // until we release it.
        let v = unsafe { self.slots.read(i) };
        self.idx.release(sh, 1);
        Ok(Some(v))
    }
}

/// Up to two runs of consecutive slots — from a position to the end of the
/// slot array, and from its start — that a side may access: free slots the
/// producer reserved, or published slots the consumer has not released.
#[cfg(not(loom))]
pub(crate) struct Runs<T> {
    a: *mut T,
    na: usize,
    b: *mut T,
    nb: usize,
}

#[cfg(not(loom))]
impl<T> Clone for Runs<T> {
    fn clone(&self) -> Self {
        *self
    }
}
#[cfg(not(loom))]
impl<T> Copy for Runs<T> {}

#[cfg(not(loom))]
impl<T: Pod> Runs<T> {
    /// The `n` slots from position `pos` of `slots` (`cap` of them).
    ///
    /// # Panics
    /// In debug builds, unless `pos < cap` and `n <= cap` (callers pass a
    /// masked counter and a count the index core vouched for).
    #[inline]
    fn new(slots: &Slots<T>, pos: u64, n: usize, cap: u64) -> Self {
        let (pos, cap) = (pos as usize, cap as usize);
        debug_assert!(n <= cap && pos < cap);
        let first = first_run(pos, n, cap);
        // SAFETY: `pos < cap` (a masked counter) and `0 < cap`: both in bounds.
        let (a, b) = unsafe { (slots.ptr(pos), slots.ptr(0)) };
        Runs { a, na: first, b, nb: n - first }
    }

    /// Slots in both runs.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.na + self.nb
    }

    /// The runs as slices.
    ///
    /// # Safety
    /// For `'a`, the mapping stays alive and the ring protocol gives the
    /// caller these slots (nobody writes them).
    #[inline]
    pub(crate) unsafe fn slices<'a>(self) -> (&'a [T], &'a [T]) {
        // SAFETY: 1. both runs lie inside the slot array (`new`), which is
        // aligned for `T`; 2. alive and not written for `'a` by the caller's
        // contract; 3. `T: Pod`: any bytes are a valid `T`.
        unsafe { (core::slice::from_raw_parts(self.a, self.na), core::slice::from_raw_parts(self.b, self.nb)) }
    }

    /// The runs as mutable slices.
    ///
    /// # Safety
    /// As for [`Runs::slices`], and the caller's access is exclusive for
    /// `'a` (no other slices of these runs exist).
    #[inline]
    pub(crate) unsafe fn slices_mut<'a>(self) -> (&'a mut [T], &'a mut [T]) {
        // SAFETY: as in `slices`; the runs do not overlap (the first ends at
        // the array's end, the second starts at its start and ends before the
        // first's start, as `n <= cap`), and access is exclusive by the contract.
        unsafe { (core::slice::from_raw_parts_mut(self.a, self.na), core::slice::from_raw_parts_mut(self.b, self.nb)) }
    }
}

// ---------------------------------------------------------------------------
// Public, segment-backed types.

#[cfg(not(loom))]
pub(super) struct Inner {
    seg: Segment,
    /// `seg.body_at::<Shared>(0)`, checked once.
    shared: NonNull<Shared>,
    cap: usize,
    wait: WaitStrategy,
}

// SAFETY: `shared` points into the mapping owned by `seg`; `Shared` is atomics.
#[cfg(not(loom))]
unsafe impl Send for Inner {}
// SAFETY: as above.
#[cfg(not(loom))]
unsafe impl Sync for Inner {}

#[cfg(not(loom))]
impl Inner {
    fn new(seg: Segment, cap: usize, wait: WaitStrategy) -> Inner {
        let shared = NonNull::from(seg.body_at::<Shared>(0));
        Inner { seg, shared, cap, wait }
    }

    #[inline(always)]
    pub(super) fn shared(&self) -> &Shared {
        // SAFETY: checked by `body_at` in `new`; the mapping lives as long as
        // `self.seg`, and `Shared` is `ShmSafe`.
        unsafe { self.shared.as_ref() }
    }

    /// Offset of the slot array in the body. The body starts
    /// [`HEADER_SIZE`] bytes into a page-aligned mapping, so the offset
    /// aligns the slots' *absolute* position to `align_of::<T>()` (at most
    /// [`MAX_ALIGN`], checked by the constructors): aligning only the offset
    /// would leave slots of an `align(1024)` type 512-aligned.
    fn slots_offset<T>() -> usize {
        let align = core::mem::align_of::<T>().max(128);
        super::align_up(HEADER_SIZE + core::mem::size_of::<Shared>(), align) - HEADER_SIZE
    }

    /// Whether the slot array is aligned for `T` in this mapping (always for
    /// named segments; a caller-provided region may be less aligned).
    fn slots_aligned<T>(&self) -> bool {
        let addr = self.seg.body_ptr().as_ptr() as usize + Self::slots_offset::<T>();
        addr % core::mem::align_of::<T>() == 0
    }

    fn body_size<T>(cap: usize) -> usize {
        Self::slots_offset::<T>() + cap * core::mem::size_of::<T>()
    }

    fn slots<T: Pod>(&self) -> Slots<T> {
        let off = Self::slots_offset::<T>();
        assert!(off + self.cap * core::mem::size_of::<T>() <= self.seg.body_len());
        // SAFETY: 1. the slot array lies inside the body (asserted) and is
        // aligned for `T` (checked by `slots_aligned` in `from_segment`);
        // 2. the mapping outlives the `Slots` (both are owned next to an
        // `Arc<Inner>`); 3. `T: Pod` accepts any bytes.
        unsafe {
            let p = self.seg.body_ptr().as_ptr().add(off).cast::<T>();
            Slots::new(NonNull::new_unchecked(p), self.cap)
        }
    }

    /// Is the end holding `role` (whose control word is `side`) gone?
    fn gone(&self, role: u32, side: &Side) -> bool {
        side_gone(&side.ctl, || true, || self.alive(role, side))
    }

    fn alive(&self, role: u32, side: &Side) -> bool {
        match self.seg.role_held(role) {
            Some(h) => h,
            None => {
                let o = side.owner.load(Ordering::Relaxed);
                o != 0 && crate::shm::lock::pid_exists(o)
            }
        }
    }

    /// Takes an exclusive end.
    fn take(&self, role: u32, role_name: &'static str, side: &Side) -> Result<Taken> {
        let lock = self.seg.take_role(role, role_name, false)?;
        let me = crate::shm::lock::current_pid();
        if lock.is_none() {
            // Caller-provided region: claim by pid (a dead holder's pid is taken over).
            let mut cur = side.owner.load(Ordering::Relaxed);
            loop {
                if cur != 0 && (cur == me || crate::shm::lock::pid_exists(cur)) {
                    return Err(Error::RoleTaken { name: self.seg.name().into(), role: role_name });
                }
                match side.owner.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(c) => cur = c,
                }
            }
        }
        side_attach(&side.ctl);
        Ok(Taken { lock, pid: me })
    }

    /// Gives an end back; marks it closed if no copy of it (after `fork`) is left.
    fn give_back(&self, role: u32, side: &Side, other: &Side, taken: &mut Taken) {
        let me = crate::shm::lock::current_pid();
        let gen = side_gen(&side.ctl);
        let last = match taken.lock.take() {
            Some(lock) => {
                drop(lock);
                self.seg.role_held(role) == Some(false)
            }
            None => me == taken.pid && side.owner.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok(),
        };
        if last {
            side_close(&side.ctl, gen);
            // Wake the other end so it sees CLOSED.
            futex::notify(&other.ctl, WAITING);
        }
    }
}

#[cfg(not(loom))]
struct Taken {
    lock: Option<RoleLock>,
    pid: u32,
}

/// A named SPSC ring of `T`. Get its two ends with [`Ring::producer`] and
/// [`Ring::consumer`], in the same or different processes.
///
/// ```
/// use ringshm::spsc::Ring;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let name = format!("doc-spsc-ring-{}", std::process::id());
/// let ring = Ring::<[u8; 16]>::create(&name, 100)?;
/// assert_eq!(ring.capacity(), 128); // rounded up to a power of two
/// let (mut tx, mut rx) = (ring.producer()?, ring.consumer()?);
/// tx.push(*b"sixteen bytes!!!")?;
/// assert_eq!(ring.len(), 1);
/// assert_eq!(&rx.pop()?, b"sixteen bytes!!!");
/// # Ok(()) }
/// ```
///
/// # Memory ordering
/// Everything a producer wrote before pushing an item (the item itself,
/// and any other memory) happens-before the consumer's return from the pop
/// that takes it: the push ends with a `Release` store of `tail`, the pop
/// starts with an `Acquire` load of it. Symmetrically, the consumer's reads
/// of a slot happen-before the producer overwrites it (`Release`/`Acquire`
/// on `head`). [`Ring::len`] is a Relaxed snapshot and orders nothing.
///
/// # Across processes
/// Any process that knows the name can [`Ring::open`] it. Each end is a role
/// that one live handle holds at a time ([`Error::RoleTaken`] otherwise); the
/// kernel frees it when that handle drops or its process dies, so a
/// restarted process takes it over where the dead one stopped. An end whose
/// peer is gone — dropped, or killed — sees `Disconnected` (after draining
/// what was sent). Everything read from the segment is validated: a ring
/// whose indices another process scribbled on is poisoned, and its ends
/// report `Disconnected` instead of reading out of bounds.
#[cfg(not(loom))]
pub struct Ring<T> {
    inner: Arc<Inner>,
    _t: PhantomData<fn() -> T>,
}

#[cfg(not(loom))]
impl<T> core::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("spsc::Ring").field("name", &self.inner.seg.name()).field("capacity", &self.inner.cap).finish()
    }
}

#[cfg(not(loom))]
impl<T: Pod> SharedObject for Ring<T> {
    type Params<'a> = usize;
    const KIND: Kind = Kind::SpscRing;

    fn elem() -> Option<ElemInfo> {
        Some(ElemInfo::of::<T>())
    }

    fn shape(capacity: &usize, _: &Options) -> Result<Shape> {
        check_align::<T>()?;
        let cap = ring_capacity(*capacity, core::mem::size_of::<T>())?;
        Ok(Shape { capacity: cap as u64, params: [0; 4], body_size: Inner::body_size::<T>(cap) })
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        check_align::<T>()?;
        Ok(Inner::body_size::<T>(stored_capacity(name, h.capacity, core::mem::size_of::<T>())?))
    }

    fn from_segment(seg: Segment, opts: &Options, _created: bool) -> Result<Self> {
        let cap = seg.header().capacity as usize;
        let inner = Inner::new(seg, cap, opts.wait);
        if !inner.slots_aligned::<T>() {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "the region is not aligned to {} bytes, the alignment of {}",
                    core::mem::align_of::<T>(),
                    core::any::type_name::<T>()
                ),
            });
        }
        let sh = inner.shared();
        if (sh.prod.ctl.load(Ordering::Relaxed) | sh.cons.ctl.load(Ordering::Relaxed)) & super::POISONED != 0 {
            return Err(Error::Corrupted {
                name: inner.seg.name().into(),
                reason: "the ring was poisoned: its indices were found out of range; remove it with `ringshm rm` and \
                         create it again"
                    .into(),
            });
        }
        Ok(Ring { inner: Arc::new(inner), _t: PhantomData })
    }
}

#[cfg(not(loom))]
impl<T: Pod> Ring<T> {
    /// Creates a ring of at least `capacity` items (rounded up to a power of two).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`], [`Error::InvalidArgument`]
    /// for capacity 0 or too large or for a `T` aligned to more than
    /// [`MAX_ALIGN`] (the page size), [`Error::NoSpace`], [`Error::PermissionDenied`].
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// [`Ring::create`] with options (mode, persist, wait strategy).
    ///
    /// # Errors
    /// As [`Ring::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::create(name, capacity, opts)
    }

    /// Opens an existing ring, checking kind, element type and size. Waits
    /// while its creator is still initialising it.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::WrongKind`], [`Error::LayoutMismatch`],
    /// [`Error::VersionMismatch`], [`Error::Corrupted`], [`Error::PermissionDenied`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`Ring::open`] with options (wait strategy).
    ///
    /// # Errors
    /// As [`Ring::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }

    /// Opens the ring, or creates it if it does not exist; race-free.
    ///
    /// # Errors
    /// As [`Ring::create`] and [`Ring::open`].
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Ring::open_or_create`] with options.
    ///
    /// # Errors
    /// As [`Ring::open_or_create`].
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::open_or_create(name, capacity, opts)
    }

    /// Bytes a caller-provided region needs for a ring of `capacity` items
    /// (after rounding up to a power of two).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for capacity 0 or too large.
    pub fn region_size(capacity: usize) -> Result<usize> {
        object::region_size::<Self>(&capacity)
    }

    /// Initialises a ring in memory the caller mapped (memfd, hugepages, a
    /// `shared_memory` mapping, ...), with the same header as a named one.
    ///
    /// Without a named segment the kernel cannot track the ends, so a dead
    /// peer is noticed only by pid (see [`Ring::attach_in`]).
    ///
    /// # Safety
    /// `region` is valid for reads and writes, aligned to 128 bytes and to
    /// `align_of::<T>()`, at least
    /// [`Ring::region_size`] bytes, stays mapped as long as the ring or any
    /// end of it lives, and is not accessed other than through ringshm.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the region is too small or misaligned,
    /// or `T` is aligned to more than [`MAX_ALIGN`].
    pub unsafe fn init_in(region: NonNull<[u8]>, capacity: usize) -> Result<Self> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { object::init_in(region, capacity) }
    }

    /// Attaches to a ring that [`Ring::init_in`] set up in shared memory,
    /// with the same checks as [`Ring::open`].
    ///
    /// # Safety
    /// As for [`Ring::init_in`].
    ///
    /// # Errors
    /// [`Error::Corrupted`], [`Error::WrongKind`], [`Error::LayoutMismatch`], ...
    pub unsafe fn attach_in(region: NonNull<[u8]>) -> Result<Self> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { object::attach_in(region) }
    }

    /// Takes the producer end.
    ///
    /// # Errors
    /// [`Error::RoleTaken`] if a live handle holds it.
    pub fn producer(&self) -> Result<Producer<T>> {
        let sh = self.inner.shared();
        let taken = self.inner.take(ROLE_PRODUCER, "producer", &sh.prod)?;
        // Acquire: pairs with the consumer's Release of `head`.
        let tail = sh.tail.load(Ordering::Acquire);
        // Acquire (both): pair with the Release stores of the previous holders
        // of the ends, so a taken-over end starts from what they published.
        let head = sh.head.load(Ordering::Acquire);
        // Checked by `check_start` once the end exists (so that dropping it
        // on failure gives the role back).
        let idx = ProdIdx { tail, cached_head: head, cap: self.inner.cap as u64 };
        let core = ProdCore { idx, slots: self.inner.slots() };
        let p = Producer { inner: self.inner.clone(), taken, wait: self.inner.wait, polls: Probe::default(), core };
        p.check_start()?;
        Ok(p)
    }

    /// Takes the consumer end.
    ///
    /// # Errors
    /// [`Error::RoleTaken`] if a live handle holds it.
    pub fn consumer(&self) -> Result<Consumer<T>> {
        let sh = self.inner.shared();
        let taken = self.inner.take(ROLE_CONSUMER, "consumer", &sh.cons)?;
        // Acquire (both): as in `producer`.
        let head = sh.head.load(Ordering::Acquire);
        let tail = sh.tail.load(Ordering::Acquire);
        let c = Consumer {
            inner: self.inner.clone(),
            taken,
            wait: self.inner.wait,
            polls: Probe::default(),
            core: ConsCore {
                idx: ConsIdx { head, cached_tail: head, cap: self.inner.cap as u64 },
                slots: self.inner.slots(),
            },
        };
        if !valid::<1>(tail, head, self.inner.cap as u64) {
            return Err(corrupted(&c.inner));
        }
        Ok(c)
    }

    /// The capacity in items (a power of two).
    pub fn capacity(&self) -> usize {
        self.inner.cap
    }

    /// Items in the ring now (a snapshot).
    pub fn len(&self) -> usize {
        let sh = self.inner.shared();
        // Relaxed: a snapshot for `len`; nothing is read through it.
        let h = sh.head.load(Ordering::Relaxed);
        let t = sh.tail.load(Ordering::Relaxed);
        (t.wrapping_sub(h)).min(self.inner.cap as u64) as usize
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.inner.seg.name()
    }
}

/// The sending end of an SPSC ring. `Send`, not `Sync`: one thread at a time.
///
/// Dropping it closes the end: the consumer drains what was pushed and then
/// sees `Disconnected`. A forked child's copy keeps the end open until both
/// copies are gone.
///
/// # Memory ordering
/// A successful push (or [`WriteChunk::commit`]) is a `Release` store of
/// `tail`: everything this thread wrote before it happens-before the
/// consumer's pop of those items. When the ring looks full the producer
/// loads `head` with `Acquire`, so the consumer's reads of a slot
/// happen-before the producer overwrites it. [`Producer::slots`],
/// [`Producer::len`] and [`Producer::is_full`] are snapshots and order
/// nothing.
///
/// # Across processes
/// The consumer may live in another process. If it dies, the producer
/// notices without its help (the kernel releases its role lock): blocked
/// pushes return `Disconnected` within a liveness slice, non-blocking ones
/// when the ring is full or on a later probe.
#[cfg(not(loom))]
pub struct Producer<T> {
    pub(super) core: ProdCore<T>,
    pub(super) inner: Arc<Inner>,
    taken: Taken,
    wait: WaitStrategy,
    /// Rate limit of liveness probes from non-blocking calls.
    polls: Probe,
}

/// The receiving end of an SPSC ring. `Send`, not `Sync`.
///
/// Dropping it closes the end: the producer's pushes then fail with
/// `Disconnected`.
///
/// # Memory ordering
/// A pop (or [`Consumer::peek`], [`Consumer::read_chunk`]) that sees an
/// item does so through an `Acquire` load of `tail` paired with the
/// producer's `Release` store: everything the producer wrote before pushing
/// it is visible. Releasing slots (pop, [`ReadChunk::commit`]) is a
/// `Release` store of `head`. [`Consumer::len`], [`Consumer::slots`] and
/// [`Consumer::is_empty`] are snapshots.
///
/// # Across processes
/// The producer may live in another process. If it dies, the consumer
/// still receives every item it pushed before dying, then `Disconnected`;
/// a blocked pop returns within a liveness slice.
#[cfg(not(loom))]
pub struct Consumer<T> {
    pub(super) core: ConsCore<T>,
    pub(super) inner: Arc<Inner>,
    taken: Taken,
    wait: WaitStrategy,
    /// Rate limit of liveness probes from non-blocking calls.
    polls: Probe,
}

// SAFETY: the ends own their role; the slot pointers they hold point into a
// mapping kept alive by the `Arc<Inner>` they own, and `T: Pod` is `Send`.
// (`polls` holds a `Cell`, which is `Send`; the ends are not `Sync`.)
#[cfg(not(loom))]
unsafe impl<T: Pod> Send for Producer<T> {}
// SAFETY: as above.
#[cfg(not(loom))]
unsafe impl<T: Pod> Send for Consumer<T> {}

#[cfg(not(loom))]
impl<T> core::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("spsc::Producer")
            .field("name", &self.inner.seg.name())
            .field("capacity", &self.core.idx.cap)
            .finish_non_exhaustive()
    }
}
#[cfg(not(loom))]
impl<T> core::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("spsc::Consumer")
            .field("name", &self.inner.seg.name())
            .field("capacity", &self.core.idx.cap)
            .finish_non_exhaustive()
    }
}

#[cfg(not(loom))]
fn corrupted(inner: &Inner) -> Error {
    Error::Corrupted { name: inner.seg.name().into(), reason: "ring indices out of range".into() }
}

#[cfg(not(loom))]
impl<T: Pod> Producer<T> {
    fn check_start(&self) -> Result<()> {
        let i = &self.core.idx;
        if valid::<1>(i.tail, i.cached_head, i.cap) {
            Ok(())
        } else {
            Err(corrupted(&self.inner))
        }
    }

    /// Is the consumer gone? Probes the kernel only every `PROBE_EVERY` calls
    /// unless `force`.
    fn consumer_gone(&self, force: bool) -> bool {
        let sh = self.inner.shared();
        self.polls.peer_gone(&sh.cons.ctl, force, || self.inner.alive(ROLE_CONSUMER, &sh.cons))
    }

    /// Whether the consumer's side word says closed or poisoned (one Relaxed
    /// load: a hint; the disconnect itself is confirmed with Acquire).
    #[inline(always)]
    pub(super) fn closed_hint(&self) -> bool {
        self.inner.shared().cons.ctl.load(Ordering::Relaxed) & (CLOSED | POISONED) != 0
    }

    /// Pushes `v` if there is room.
    ///
    /// ```
    /// # use ringshm::{spsc::Ring, TrySendError};
    /// # let name = format!("doc-spsc-try-push-{}", std::process::id());
    /// let ring = Ring::<u32>::create(&name, 1).unwrap();
    /// let mut tx = ring.producer().unwrap();
    /// tx.try_push(1).unwrap();
    /// assert_eq!(tx.try_push(2), Err(TrySendError::Full(2)));
    /// ```
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the ring is full, [`TrySendError::Disconnected`]
    /// if the consumer is gone (dropped, or its process died — noticed when
    /// the ring is full or on a later probe) or the ring is poisoned.
    #[inline]
    pub fn try_push(&mut self, v: T) -> Result<(), TrySendError<T>> {
        if self.closed_hint() {
            return Err(TrySendError::Disconnected(v));
        }
        let sh = self.inner.shared();
        match self.core.try_push(sh, v) {
            Ok(()) => Ok(()),
            Err(Ok(v)) => {
                if self.consumer_gone(false) {
                    Err(TrySendError::Disconnected(v))
                } else {
                    Err(TrySendError::Full(v))
                }
            }
            Err(Err(Corrupt)) => Err(TrySendError::Disconnected(v)),
        }
    }

    /// Pushes `v`, waiting while the ring is full.
    ///
    /// # Errors
    /// [`SendError`] (holding `v`) if the consumer is gone.
    pub fn push(&mut self, v: T) -> Result<(), SendError<T>> {
        self.push_deadline(v, None).map_err(|e| SendError(e.into_inner()))
    }

    /// Pushes `v`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`],
    /// both holding `v`.
    pub fn push_timeout(&mut self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.push_deadline(v, wait::deadline(Some(timeout)))
    }

    fn push_deadline(&mut self, mut v: T, deadline: Option<std::time::Instant>) -> Result<(), SendTimeoutError<T>> {
        loop {
            match self.try_push(v) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(x)) => return Err(SendTimeoutError::Disconnected(x)),
                Err(TrySendError::Full(x)) => v = x,
            }
            match self.wait_for(1, deadline) {
                Waited::Ready(()) => continue,
                Waited::TimedOut => return Err(SendTimeoutError::Timeout(v)),
                Waited::Gone => return Err(SendTimeoutError::Disconnected(v)),
            }
        }
    }

    /// Waits until at least `n` slots are free (or the consumer is gone).
    fn wait_for(&mut self, n: u64, deadline: Option<std::time::Instant>) -> Waited<()> {
        let inner = self.inner.clone();
        let sh = inner.shared();
        let idx = &mut self.core.idx;
        wait::wait_until(
            self.wait,
            deadline,
            &sh.prod.ctl,
            WAITING,
            || match idx.refresh(sh) {
                Ok(free) if free >= n => Some(()),
                Ok(_) => None,
                Err(Corrupt) => Some(()),
            },
            || inner.gone(ROLE_CONSUMER, &sh.cons),
        )
    }

    /// Pushes as many items of `items` as fit, with one publish; returns how
    /// many. 0 if the ring is full or the consumer is gone.
    ///
    /// ```
    /// # use ringshm::spsc::Ring;
    /// # let name = format!("doc-spsc-push-slice-{}", std::process::id());
    /// let ring = Ring::<u8>::create(&name, 4).unwrap();
    /// let (mut tx, mut rx) = (ring.producer().unwrap(), ring.consumer().unwrap());
    /// assert_eq!(tx.push_slice(b"hello"), 4);
    /// let mut buf = [0; 8];
    /// assert_eq!(rx.pop_slice(&mut buf), 4);
    /// assert_eq!(&buf[..4], b"hell");
    /// ```
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        if self.closed_hint() {
            return 0;
        }
        let sh = self.inner.shared();
        let Ok(free) = self.core.idx.free(sh, items.len() as u64) else { return 0 };
        let n = (free as usize).min(items.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: the next `n` slots are free (`free >= n`), only the
        // producer touches them until it publishes them, and the slices are
        // dropped before that; the mapping lives in `self.inner`.
        let (a, b) = unsafe { self.runs(n).slices_mut() };
        let (x, y) = items[..n].split_at(a.len());
        a.copy_from_slice(x);
        b.copy_from_slice(y);
        self.core.idx.commit(sh, n as u64);
        n
    }

    /// The next `n` slots (`n` at most the free count) as up to two runs.
    #[inline]
    pub(super) fn runs(&self, n: usize) -> Runs<T> {
        Runs::new(&self.core.slots, self.core.idx.pos(), n, self.core.idx.cap)
    }

    /// Free slots now (a snapshot: the consumer may free more at any time).
    pub fn slots(&self) -> usize {
        self.core.idx.free_now(self.inner.shared()) as usize
    }

    /// Whether the ring is full now.
    pub fn is_full(&self) -> bool {
        self.slots() == 0
    }

    /// Items in the ring now (a snapshot).
    pub fn len(&self) -> usize {
        self.capacity() - self.slots()
    }

    /// Whether the ring is empty now (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.core.idx.cap as usize
    }

    /// Whether the consumer is gone (dropped or dead); asks the kernel.
    pub fn is_abandoned(&self) -> bool {
        self.consumer_gone(true)
    }

    /// Changes how this end's blocking calls wait.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
    }
}

#[cfg(not(loom))]
impl<T: Pod> Consumer<T> {
    /// Is the producer gone? Probes the kernel only every `PROBE_EVERY` calls
    /// unless `force`.
    pub(super) fn producer_gone(&self, force: bool) -> bool {
        let sh = self.inner.shared();
        self.polls.peer_gone(&sh.prod.ctl, force, || self.inner.alive(ROLE_PRODUCER, &sh.prod))
    }

    /// Takes the oldest item if there is one.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once the ring
    /// is empty and the producer is gone (dropped, or its process died).
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryRecvError> {
        let sh = self.inner.shared();
        match self.core.try_pop(sh) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => self.empty_or_gone(false),
            Err(Corrupt) => Err(TryRecvError::Disconnected),
        }
    }

    #[cold]
    fn empty_or_gone(&mut self, force: bool) -> Result<T, TryRecvError> {
        if !self.producer_gone(force) {
            return Err(TryRecvError::Empty);
        }
        // Gone: drain what it published before leaving (CLOSED was stored
        // with Release after its last publish).
        let sh = self.inner.shared();
        match self.core.try_pop(sh) {
            Ok(Some(v)) => Ok(v),
            _ => Err(TryRecvError::Disconnected),
        }
    }

    /// The oldest item, left in the ring (a later pop takes it).
    ///
    /// ```
    /// # use ringshm::{spsc::Ring, TryRecvError};
    /// # let name = format!("doc-spsc-peek-{}", std::process::id());
    /// let ring = Ring::<u32>::create(&name, 4).unwrap();
    /// let (mut tx, mut rx) = (ring.producer().unwrap(), ring.consumer().unwrap());
    /// assert_eq!(rx.peek(), Err(TryRecvError::Empty));
    /// tx.push(5).unwrap();
    /// assert_eq!(rx.peek(), Ok(&5));
    /// assert_eq!(rx.pop(), Ok(5));
    /// ```
    ///
    /// # Errors
    /// As [`Consumer::try_pop`].
    pub fn peek(&self) -> Result<&T, TryRecvError> {
        let sh = self.inner.shared();
        let mut avail = self.core.idx.available_now(sh, 1);
        if avail == 0 && self.producer_gone(false) {
            // Gone: what it published before leaving is still there.
            avail = self.core.idx.available_now(sh, 1);
            if avail == 0 {
                return Err(TryRecvError::Disconnected);
            }
        }
        if avail == 0 {
            return Err(TryRecvError::Empty);
        }
        let i = self.core.idx.pos() as usize;
        // Why the reference is sound: 1. `i < cap` (masked); 2. `head < tail`
        // by an Acquire load of `tail`: the slot is published, and the
        // producer does not reuse it until `head` moves past it, which needs
        // `&mut self` while the returned reference borrows `self`; 3. the
        // mapping lives as long as `self.inner`; `T: Pod` accepts any bytes.
        // SAFETY: the three points above.
        let item = unsafe { &*self.core.slots.ptr(i) };
        Ok(item)
    }

    /// Takes the oldest item, waiting while the ring is empty.
    ///
    /// # Errors
    /// [`RecvError`] once the ring is empty and the producer is gone.
    pub fn pop(&mut self) -> Result<T, RecvError> {
        self.pop_deadline(None).map_err(|_| RecvError)
    }

    /// Takes the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Disconnected`].
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.pop_deadline(wait::deadline(Some(timeout)))
    }

    fn pop_deadline(&mut self, deadline: Option<std::time::Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            match self.try_pop() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            match self.wait_for(1, deadline) {
                Waited::Ready(()) => continue,
                Waited::TimedOut => return Err(RecvTimeoutError::Timeout),
                Waited::Gone => {
                    return self.empty_or_gone(true).map_err(|_| RecvTimeoutError::Disconnected);
                }
            }
        }
    }

    /// Waits until at least `n` items are available (or the producer is gone).
    fn wait_for(&mut self, n: u64, deadline: Option<std::time::Instant>) -> Waited<()> {
        let inner = self.inner.clone();
        let sh = inner.shared();
        let idx = &mut self.core.idx;
        wait::wait_until(
            self.wait,
            deadline,
            &sh.cons.ctl,
            WAITING,
            || match idx.refresh(sh) {
                Ok(avail) if avail >= n => Some(()),
                Ok(_) => None,
                Err(Corrupt) => Some(()),
            },
            || inner.gone(ROLE_PRODUCER, &sh.prod),
        )
    }

    /// Takes as many items as are available (up to `out.len()`), with one
    /// publish; returns how many.
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize {
        let sh = self.inner.shared();
        let Ok(avail) = self.core.idx.available(sh, out.len() as u64) else { return 0 };
        let n = (avail as usize).min(out.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: the next `n` slots are published (`avail >= n`) and the
        // producer does not reuse them until we release them, after the
        // slices are dropped; the mapping lives in `self.inner`.
        let (a, b) = unsafe { self.runs(n).slices() };
        let (x, y) = out[..n].split_at_mut(a.len());
        x.copy_from_slice(a);
        y.copy_from_slice(b);
        self.core.idx.release(sh, n as u64);
        n
    }

    /// The next `n` slots (`n` at most the available count) as up to two runs.
    #[inline]
    pub(super) fn runs(&self, n: usize) -> Runs<T> {
        Runs::new(&self.core.slots, self.core.idx.pos(), n, self.core.idx.cap)
    }

    /// An iterator that pops items, waiting for each, until the producer is
    /// gone and the ring drained (crossbeam's `Receiver::iter`).
    ///
    /// ```
    /// # use ringshm::spsc::Ring;
    /// # let name = format!("doc-spsc-iter-{}", std::process::id());
    /// let ring = Ring::<u32>::create(&name, 8).unwrap();
    /// let (mut tx, mut rx) = (ring.producer().unwrap(), ring.consumer().unwrap());
    /// tx.push_slice(&[1, 2, 3]);
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2, 3]);
    /// ```
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator that pops the items available now, without waiting
    /// (crossbeam's `Receiver::try_iter`).
    pub fn try_iter(&mut self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Items available now (a snapshot: the producer may add more at any time).
    pub fn slots(&self) -> usize {
        self.core.idx.available_now(self.inner.shared(), u64::MAX) as usize
    }

    /// Items in the ring now; the same as [`Consumer::slots`].
    pub fn len(&self) -> usize {
        self.slots()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.core.idx.available_now(self.inner.shared(), 1) == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.core.idx.cap as usize
    }

    /// Whether the producer is gone (dropped or dead); asks the kernel.
    pub fn is_abandoned(&self) -> bool {
        self.producer_gone(true)
    }

    /// Changes how this end's blocking calls wait.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
    }
}

/// Blocking iterator over a [`Consumer`]'s items: see [`Consumer::iter`].
#[cfg(not(loom))]
pub struct Iter<'a, T> {
    rx: &'a mut Consumer<T>,
}

/// Non-blocking iterator over a [`Consumer`]'s items: see [`Consumer::try_iter`].
#[cfg(not(loom))]
pub struct TryIter<'a, T> {
    rx: &'a mut Consumer<T>,
}

/// Owning blocking iterator over a [`Consumer`]'s items (from
/// `IntoIterator`): ends once the producer is gone and the ring drained.
#[cfg(not(loom))]
pub struct IntoIter<T> {
    rx: Consumer<T>,
}

#[cfg(not(loom))]
impl<T: Pod> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.pop().ok()
    }
}

#[cfg(not(loom))]
impl<T: Pod> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_pop().ok()
    }
}

#[cfg(not(loom))]
impl<T: Pod> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.pop().ok()
    }
}

#[cfg(not(loom))]
impl<'a, T: Pod> IntoIterator for &'a mut Consumer<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

#[cfg(not(loom))]
impl<T: Pod> IntoIterator for Consumer<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

#[cfg(not(loom))]
impl<T> core::fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("spsc::Iter").finish_non_exhaustive()
    }
}
#[cfg(not(loom))]
impl<T> core::fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("spsc::TryIter").finish_non_exhaustive()
    }
}
#[cfg(not(loom))]
impl<T> core::fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("spsc::IntoIter").finish_non_exhaustive()
    }
}

/// Bytes in, as many as fit (rtrb's `impl Write for Producer<u8>`).
///
/// `write` returns `ErrorKind::WouldBlock` when the ring is full, and
/// `ErrorKind::BrokenPipe` once the consumer is gone; `flush` does nothing.
#[cfg(not(loom))]
impl std::io::Write for Producer<u8> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.push_slice(buf) {
            0 if self.closed_hint() || self.consumer_gone(false) => Err(std::io::ErrorKind::BrokenPipe.into()),
            0 => Err(std::io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes out, as many as are there (rtrb's `impl Read for Consumer<u8>`).
///
/// `read` returns `ErrorKind::WouldBlock` when the ring is empty, and
/// `Ok(0)` (end of file) once it is empty and the producer is gone.
#[cfg(not(loom))]
impl std::io::Read for Consumer<u8> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.pop_slice(buf) {
            0 if self.producer_gone(false) => Ok(self.pop_slice(buf)),
            0 => Err(std::io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
}

#[cfg(not(loom))]
impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        let sh = self.inner.shared();
        self.inner.give_back(ROLE_PRODUCER, &sh.prod, &sh.cons, &mut self.taken);
    }
}

#[cfg(not(loom))]
impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        let sh = self.inner.shared();
        self.inner.give_back(ROLE_CONSUMER, &sh.cons, &sh.prod, &mut self.taken);
    }
}

#[cfg(not(loom))]
pub use crate::error::ChunkError;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn name(t: &str) -> String {
        format!("ringshm-ut-spsc-{t}-{}", std::process::id())
    }

    #[test]
    fn push_pop_wrap_and_chunks() {
        let r = Ring::<u64>::create(&name("basic"), 5).unwrap();
        assert_eq!(r.capacity(), 8);
        let mut tx = r.producer().unwrap();
        let mut rx = r.consumer().unwrap();
        assert!(matches!(r.producer(), Err(Error::RoleTaken { .. })));
        assert_eq!(rx.try_pop(), Err(TryRecvError::Empty));
        let mut next = 0u64;
        let mut expect = 0u64;
        for round in 0..100 {
            let k = round % 9;
            for _ in 0..k {
                match tx.try_push(next) {
                    Ok(()) => next += 1,
                    Err(TrySendError::Full(_)) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            while let Ok(v) = rx.try_pop() {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        assert_eq!(next, expect);
        assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), 8);
        assert!(tx.is_full());
        let mut buf = [0u64; 3];
        assert_eq!(rx.pop_slice(&mut buf), 3);
        assert_eq!(buf, [1, 2, 3]);
        let mut w = tx.write_chunk(3).unwrap();
        let (a, b) = w.as_mut_slices();
        for (i, x) in a.iter_mut().chain(b.iter_mut()).enumerate() {
            *x = 100 + i as u64;
        }
        w.commit_all();
        assert_eq!(tx.write_chunk(1).err(), Some(ChunkError::TooFewSlots(0)));
        let r5 = rx.read_chunk(8).unwrap();
        let (a, b) = r5.as_slices();
        let all: Vec<u64> = a.iter().chain(b).copied().collect();
        assert_eq!(all, [4, 5, 6, 7, 8, 100, 101, 102]);
        r5.commit(5);
        assert_eq!(rx.len(), 3);
        drop(tx);
        assert_eq!(rx.pop().unwrap(), 100);
        assert_eq!(rx.pop().unwrap(), 101);
        assert_eq!(rx.pop().unwrap(), 102);
        assert_eq!(rx.pop(), Err(RecvError));
        // The role is free again.
        let mut tx2 = r.producer().unwrap();
        tx2.push(9).unwrap();
        assert_eq!(rx.pop_timeout(Duration::from_secs(1)), Ok(9));
        assert_eq!(rx.pop_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
    }

    #[test]
    fn push_fails_once_consumer_dropped() {
        let r = Ring::<u32>::create(&name("drop"), 2).unwrap();
        let mut tx = r.producer().unwrap();
        let rx = r.consumer().unwrap();
        tx.push(1).unwrap();
        drop(rx);
        assert_eq!(tx.try_push(2), Err(TrySendError::Disconnected(2)));
        assert!(tx.push_timeout(3, Duration::from_millis(5)).unwrap_err().is_disconnected());
    }

    #[test]
    fn region_rings() {
        let size = Ring::<u16>::region_size(16).unwrap();
        let layout = std::alloc::Layout::from_size_align(size, 128).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        let region = NonNull::slice_from_raw_parts(NonNull::new(p).unwrap(), size);
        {
            // SAFETY: the allocation is large, aligned and outlives the rings.
            let a = unsafe { Ring::<u16>::init_in(region, 16) }.unwrap();
            // SAFETY: as above.
            let b = unsafe { Ring::<u16>::attach_in(region) }.unwrap();
            // SAFETY: as above.
            assert!(matches!(unsafe { Ring::<u32>::attach_in(region) }, Err(Error::LayoutMismatch { .. })));
            let mut tx = a.producer().unwrap();
            assert!(matches!(b.producer(), Err(Error::RoleTaken { .. })));
            let mut rx = b.consumer().unwrap();
            tx.push(5).unwrap();
            assert_eq!(rx.pop().unwrap(), 5);
            drop(tx);
            assert_eq!(rx.pop(), Err(RecvError));
        }
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(p, layout) };
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<T> Producer<T> {
    /// For `crate::asynch`: the word this producer sleeps on and the
    /// consumer's liveness probe.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'static> {
        let inner = self.inner.clone();
        // SAFETY: the word lies in the mapping `inner` owns, and the probe
        // owns a clone of `inner`.
        unsafe {
            crate::asynch::Hook::kept(
                self.wait,
                &self.inner.shared().prod.ctl,
                crate::asynch::How::Flag(WAITING),
                move || inner.gone(ROLE_CONSUMER, &inner.shared().cons),
            )
        }
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<T> Consumer<T> {
    /// For `crate::asynch`: the word this consumer sleeps on and the
    /// producer's liveness probe.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'static> {
        let inner = self.inner.clone();
        // SAFETY: as in `Producer::async_hook`.
        unsafe {
            crate::asynch::Hook::kept(
                self.wait,
                &self.inner.shared().cons.ctl,
                crate::asynch::How::Flag(WAITING),
                move || inner.gone(ROLE_PRODUCER, &inner.shared().prod),
            )
        }
    }
}
