//! A bounded single-producer single-consumer ring in shared memory.
//!
//! ```no_run
//! use ringshm::spsc;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // process 1
//! let ring = spsc::Ring::<u64>::create("ticks", 1 << 16)?;
//! let mut tx = ring.producer()?;
//! tx.push(7)?;
//! // process 2
//! let mut rx = spsc::Ring::<u64>::open("ticks")?.consumer()?;
//! assert_eq!(rx.pop()?, 7);
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! Lamport's ring with the usual refinements (as in rtrb and the Rigtorp
//! SPSC queue): `head` and `tail` are free-running `u64` counters on their own
//! cache lines, slots are `counter & mask`, and each side keeps a *cached copy*
//! of the other side's counter, re-reading the shared one only when the cached
//! value says full (producer) or empty (consumer). In steady state a push
//! touches only the producer's own line and a slot line.
//!
//! | invariant                   | checked where                                   |
//! |-----------------------------|-------------------------------------------------|
//! | `0 <= tail - head <= cap`   | every refresh of the opposite counter; a violation poisons the ring |
//! | slot `i` is written only while `i - head < cap`, read only while `i < tail` | by construction |
//!
//! Publishing is a `Release` store of the own counter, paired with the
//! `Acquire` load in the other side's refresh; waking a sleeper costs one
//! Relaxed load when nobody sleeps (see `src/sync/futex.rs`).

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

use super::{poison, WAITING};
use crate::primitive::{AtomicU32, AtomicU64, Ordering, Padded, Slots};
use crate::sync::futex;

#[cfg(not(loom))]
use super::{probe_due, ring_capacity, side_attach, side_close, side_gen, side_gone, stored_capacity};
#[cfg(not(loom))]
use crate::error::{
    Error, RecvError, RecvTimeoutError, Result, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
#[cfg(not(loom))]
use crate::shm::header::{ElemInfo, HeaderData, Kind};
#[cfg(not(loom))]
use crate::shm::lock::RoleLock;
#[cfg(not(loom))]
use crate::shm::object::{self, Shape, SharedObject};
#[cfg(not(loom))]
use crate::shm::segment::ShmSafe;
#[cfg(not(loom))]
use crate::shm::{Options, Segment, WaitStrategy};
#[cfg(not(loom))]
use crate::sync::wait::{self, Waited};

/// Role numbers (lock slots) of the two ends.
#[cfg(not(loom))]
const ROLE_PRODUCER: u32 = 0;
#[cfg(not(loom))]
const ROLE_CONSUMER: u32 = 1;

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
    /// Count of items ever pushed. `tail - head` is in `0..=capacity`.
    pub tail: Padded<AtomicU64>,
    /// Count of items ever popped.
    pub head: Padded<AtomicU64>,
    /// The producer's control word (it sleeps here when full).
    pub prod: Padded<Side>,
    /// The consumer's control word (it sleeps here when empty).
    pub cons: Padded<Side>,
}

#[cfg(not(loom))]
// SAFETY: `#[repr(C)]`, made only of atomics (and padding never read).
unsafe impl ShmSafe for Shared {}
#[cfg(not(loom))]
// SAFETY: as above.
unsafe impl ShmSafe for Side {}

/// The shared counters were found inconsistent; the ring is now poisoned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// Producer-side state and algorithm, independent of where memory lives.
pub(crate) struct ProdCore<T> {
    /// Our copy of `tail` (we are its only writer).
    pub tail: u64,
    /// Last `head` we read; `tail - cached_head <= cap`.
    pub cached_head: u64,
    pub cap: u64,
    pub slots: Slots<T>,
}

/// Consumer-side state and algorithm.
pub(crate) struct ConsCore<T> {
    /// Our copy of `head` (we are its only writer).
    pub head: u64,
    /// Last `tail` we read; `cached_tail - head <= cap`.
    pub cached_tail: u64,
    pub cap: u64,
    pub slots: Slots<T>,
}

impl<T: Copy> ProdCore<T> {
    /// Re-reads `head`; returns the free slot count.
    #[inline]
    pub(crate) fn refresh(&mut self, sh: &Shared) -> Result<u64, Corrupt> {
        // Acquire: pairs with the Release store of `head` in the consumer's
        // publish, so its reads of the slots we are about to reuse are done.
        let h = sh.head.load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(h);
        if used > self.cap {
            poison(&sh.prod.ctl);
            poison(&sh.cons.ctl);
            return Err(Corrupt);
        }
        self.cached_head = h;
        Ok(self.cap - used)
    }

    /// Free slots by the cached head, refreshed when that says fewer than `want`.
    #[inline]
    pub(crate) fn free(&mut self, sh: &Shared, want: u64) -> Result<u64, Corrupt> {
        let free = self.cap - self.tail.wrapping_sub(self.cached_head);
        if free >= want {
            Ok(free)
        } else {
            self.refresh(sh)
        }
    }

    /// Makes `n` written slots visible and wakes a sleeping consumer.
    #[inline]
    pub(crate) fn publish(&mut self, sh: &Shared, n: u64) {
        self.tail = self.tail.wrapping_add(n);
        // Release: pairs with the Acquire load of `tail` in `ConsCore::refresh`:
        // the slot writes happen-before the consumer's reads.
        sh.tail.store(self.tail, Ordering::Release);
        futex::notify(&sh.cons.ctl, WAITING);
    }

    /// Pushes one item; `Err(Ok(v))` when full, `Err(Err(Corrupt))` when poisoned.
    #[inline]
    pub(crate) fn try_push(&mut self, sh: &Shared, v: T) -> Result<(), Result<T, Corrupt>> {
        match self.free(sh, 1) {
            Ok(0) => return Err(Ok(v)),
            Ok(_) => {}
            Err(c) => return Err(Err(c)),
        }
        let i = (self.tail & (self.cap - 1)) as usize;
        // SAFETY: slot `tail` is free (`tail - head < cap`) and only the
        // producer writes slots, so nobody else touches it until published.
        unsafe { self.slots.write(i, v) };
        self.publish(sh, 1);
        Ok(())
    }
}

impl<T: Copy> ConsCore<T> {
    /// Re-reads `tail`; returns the available item count.
    #[inline]
    pub(crate) fn refresh(&mut self, sh: &Shared) -> Result<u64, Corrupt> {
        // Acquire: pairs with the Release store of `tail` in `ProdCore::publish`.
        let t = sh.tail.load(Ordering::Acquire);
        let avail = t.wrapping_sub(self.head);
        if avail > self.cap {
            poison(&sh.prod.ctl);
            poison(&sh.cons.ctl);
            return Err(Corrupt);
        }
        self.cached_tail = t;
        Ok(avail)
    }

    /// Available items by the cached tail, refreshed when that says fewer than `want`.
    #[inline]
    pub(crate) fn available(&mut self, sh: &Shared, want: u64) -> Result<u64, Corrupt> {
        let avail = self.cached_tail.wrapping_sub(self.head);
        if avail >= want {
            Ok(avail)
        } else {
            self.refresh(sh)
        }
    }

    /// Releases `n` read slots to the producer and wakes it if it sleeps.
    #[inline]
    pub(crate) fn release(&mut self, sh: &Shared, n: u64) {
        self.head = self.head.wrapping_add(n);
        // Release: pairs with the Acquire load of `head` in `ProdCore::refresh`:
        // our slot reads happen-before the producer overwrites them.
        sh.head.store(self.head, Ordering::Release);
        futex::notify(&sh.prod.ctl, WAITING);
    }

    /// Pops one item; `Ok(None)` when empty.
    #[inline]
    pub(crate) fn try_pop(&mut self, sh: &Shared) -> Result<Option<T>, Corrupt> {
        if self.available(sh, 1)? == 0 {
            return Ok(None);
        }
        let i = (self.head & (self.cap - 1)) as usize;
        // SAFETY: `head < tail`: the slot was published by the producer
        // (Acquire in `refresh`) and is not reused until we release it.
        let v = unsafe { self.slots.read(i) };
        self.release(sh, 1);
        Ok(Some(v))
    }
}

// ---------------------------------------------------------------------------
// Public, segment-backed types.

#[cfg(not(loom))]
struct Inner {
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
    fn shared(&self) -> &Shared {
        // SAFETY: checked by `body_at` in `new`; the mapping lives as long as
        // `self.seg`, and `Shared` is `ShmSafe`.
        unsafe { self.shared.as_ref() }
    }

    fn slots_offset<T>() -> usize {
        super::align_up(core::mem::size_of::<Shared>(), core::mem::align_of::<T>().max(128))
    }

    fn body_size<T>(cap: usize) -> usize {
        Self::slots_offset::<T>() + cap * core::mem::size_of::<T>()
    }

    fn slots<T: Pod>(&self) -> Slots<T> {
        let off = Self::slots_offset::<T>();
        assert!(off + self.cap * core::mem::size_of::<T>() <= self.seg.body_len());
        // SAFETY: 1. the slot array lies inside the body (asserted) and is
        // aligned for `T` (offset multiple of its alignment, base 512-aligned);
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
/// # Across processes
/// Any process that knows the name can [`Ring::open`] it. Each end is a role
/// that one live handle holds at a time ([`Error::RoleTaken`] otherwise); the
/// kernel frees it when that handle drops or its process dies, so a
/// restarted process takes it over. An end whose peer is gone — dropped, or
/// killed — sees `Disconnected` (after draining what was sent).
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
        let cap = ring_capacity(*capacity, core::mem::size_of::<T>())?;
        Ok(Shape { capacity: cap as u64, params: [0; 4], body_size: Inner::body_size::<T>(cap) })
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        Ok(Inner::body_size::<T>(stored_capacity(name, h.capacity, core::mem::size_of::<T>())?))
    }

    fn from_segment(seg: Segment, opts: &Options, _created: bool) -> Result<Self> {
        let cap = seg.header().capacity as usize;
        let inner = Inner::new(seg, cap, opts.wait);
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
    /// for capacity 0 or too large, [`Error::NoSpace`], [`Error::PermissionDenied`].
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
    /// `region` is valid for reads and writes, 128-byte aligned, at least
    /// [`Ring::region_size`] bytes, stays mapped as long as the ring or any
    /// end of it lives, and is not accessed other than through ringshm.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the region is too small or misaligned.
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
        let core = ProdCore { tail, cached_head: head, cap: self.inner.cap as u64, slots: self.inner.slots() };
        let p = Producer { inner: self.inner.clone(), taken, wait: self.inner.wait, polls: 0, core };
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
            polls: 0,
            core: ConsCore { head, cached_tail: head, cap: self.inner.cap as u64, slots: self.inner.slots() },
        };
        if tail.wrapping_sub(head) > self.inner.cap as u64 {
            return Err(c.corrupted());
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
#[cfg(not(loom))]
pub struct Producer<T> {
    core: ProdCore<T>,
    inner: Arc<Inner>,
    taken: Taken,
    wait: WaitStrategy,
    polls: u32,
}

/// The receiving end of an SPSC ring. `Send`, not `Sync`.
#[cfg(not(loom))]
pub struct Consumer<T> {
    core: ConsCore<T>,
    inner: Arc<Inner>,
    taken: Taken,
    wait: WaitStrategy,
    polls: u32,
}

// SAFETY: the ends own their role; the slot pointers they hold point into a
// mapping kept alive by the `Arc<Inner>` they own, and `T: Pod` is `Send`.
#[cfg(not(loom))]
unsafe impl<T: Pod> Send for Producer<T> {}
// SAFETY: as above.
#[cfg(not(loom))]
unsafe impl<T: Pod> Send for Consumer<T> {}

#[cfg(not(loom))]
impl<T> core::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("spsc::Producer").field("name", &self.inner.seg.name()).finish_non_exhaustive()
    }
}
#[cfg(not(loom))]
impl<T> core::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("spsc::Consumer").field("name", &self.inner.seg.name()).finish_non_exhaustive()
    }
}

#[cfg(not(loom))]
impl<T: Pod> Producer<T> {
    fn check_start(&self) -> Result<()> {
        if self.core.tail.wrapping_sub(self.core.cached_head) > self.core.cap {
            return Err(Error::Corrupted {
                name: self.inner.seg.name().into(),
                reason: "ring indices out of range".into(),
            });
        }
        Ok(())
    }

    /// Is the consumer gone? Probes the kernel only every `PROBE_EVERY` calls
    /// unless `force`.
    fn consumer_gone(&mut self, force: bool) -> bool {
        let sh = self.inner.shared();
        side_gone(&sh.cons.ctl, || probe_due(&mut self.polls, force), || self.inner.alive(ROLE_CONSUMER, &sh.cons))
    }

    /// Pushes `v` if there is room.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the ring is full, [`TrySendError::Disconnected`]
    /// if the consumer is gone (dropped, or its process died — noticed when
    /// the ring is full or on a later probe) or the ring is poisoned.
    #[inline]
    pub fn try_push(&mut self, v: T) -> Result<(), TrySendError<T>> {
        let inner = &*self.inner;
        let sh = inner.shared();
        // Relaxed: only a hint; the disconnect itself is confirmed with Acquire.
        if sh.cons.ctl.load(Ordering::Relaxed) & (super::CLOSED | super::POISONED) != 0 {
            return Err(TrySendError::Disconnected(v));
        }
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
        let core = &mut self.core;
        wait::wait_until(
            self.wait,
            deadline,
            &sh.prod.ctl,
            WAITING,
            || match core.refresh(sh) {
                Ok(free) if free >= n => Some(()),
                Ok(_) => None,
                Err(Corrupt) => Some(()),
            },
            || inner.gone(ROLE_CONSUMER, &sh.cons),
        )
    }

    /// Pushes as many items of `items` as fit, with one publish; returns how
    /// many. 0 if the ring is full or the consumer is gone.
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        let inner = &*self.inner;
        let sh = inner.shared();
        if sh.cons.ctl.load(Ordering::Relaxed) & (super::CLOSED | super::POISONED) != 0 {
            return 0;
        }
        let Ok(free) = self.core.free(sh, items.len() as u64) else { return 0 };
        let n = (free as usize).min(items.len());
        if n == 0 {
            return 0;
        }
        let (a, b) = self.core_slices(n);
        // SAFETY: `a`/`b` are the next `n` free slots (see `core_slices`); the
        // source is a distinct Rust slice.
        unsafe {
            core::ptr::copy_nonoverlapping(items.as_ptr(), a.0, a.1);
            core::ptr::copy_nonoverlapping(items.as_ptr().add(a.1), b.0, b.1);
        }
        self.core.publish(sh, n as u64);
        n
    }

    /// The next `n` slots as up to two (pointer, length) runs.
    fn core_slices(&self, n: usize) -> ((*mut T, usize), (*mut T, usize)) {
        let cap = self.core.cap as usize;
        let start = (self.core.tail & (self.core.cap - 1)) as usize;
        let first = n.min(cap - start);
        ((self.core.slots.ptr(start), first), (self.core.slots.ptr(0), n - first))
    }

    /// Reserves `n` free slots to fill in place; publish them with
    /// [`WriteChunk::commit`] or [`WriteChunk::commit_all`] (dropping the
    /// chunk publishes nothing).
    ///
    /// # Errors
    /// [`ChunkError::TooFewSlots`] with the number free now, or
    /// [`ChunkError::Disconnected`].
    pub fn write_chunk(&mut self, n: usize) -> Result<WriteChunk<'_, T>, ChunkError> {
        let sh = self.inner.shared();
        if sh.cons.ctl.load(Ordering::Relaxed) & (super::CLOSED | super::POISONED) != 0 {
            return Err(ChunkError::Disconnected);
        }
        let free = self.core.free(sh, n as u64).map_err(|_| ChunkError::Disconnected)? as usize;
        if free < n {
            return Err(ChunkError::TooFewSlots(free));
        }
        let (a, b) = self.core_slices(n);
        Ok(WriteChunk { a, b, producer: self })
    }

    /// Free slots now.
    pub fn slots(&mut self) -> usize {
        let sh = self.inner.shared();
        self.core.refresh(sh).unwrap_or(0) as usize
    }

    /// Whether the ring is full now.
    pub fn is_full(&mut self) -> bool {
        self.slots() == 0
    }

    /// Items in the ring now.
    pub fn len(&mut self) -> usize {
        self.core.cap as usize - self.slots()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.core.cap as usize
    }

    /// Whether the consumer is gone (dropped or dead); asks the kernel.
    pub fn is_abandoned(&mut self) -> bool {
        self.consumer_gone(true)
    }

    /// Changes how this end's blocking calls wait.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
    }
}

#[cfg(not(loom))]
impl<T: Pod> Consumer<T> {
    fn corrupted(&self) -> Error {
        Error::Corrupted { name: self.inner.seg.name().into(), reason: "ring indices out of range".into() }
    }

    /// Is the producer gone? Probes the kernel only every `PROBE_EVERY` calls
    /// unless `force`.
    fn producer_gone(&mut self, force: bool) -> bool {
        let sh = self.inner.shared();
        side_gone(&sh.prod.ctl, || probe_due(&mut self.polls, force), || self.inner.alive(ROLE_PRODUCER, &sh.prod))
    }

    /// Takes the oldest item if there is one.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once the ring
    /// is empty and the producer is gone (dropped, or its process died).
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryRecvError> {
        let inner = &*self.inner;
        let sh = inner.shared();
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
        let core = &mut self.core;
        wait::wait_until(
            self.wait,
            deadline,
            &sh.cons.ctl,
            WAITING,
            || match core.refresh(sh) {
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
        let Ok(avail) = self.core.available(sh, out.len() as u64) else { return 0 };
        let n = (avail as usize).min(out.len());
        if n == 0 {
            return 0;
        }
        let (a, b) = self.core_slices(n);
        // SAFETY: `a`/`b` are the next `n` published slots (see `core_slices`);
        // `out` is a distinct Rust slice of at least `n` items.
        unsafe {
            core::ptr::copy_nonoverlapping(a.0, out.as_mut_ptr(), a.1);
            core::ptr::copy_nonoverlapping(b.0, out.as_mut_ptr().add(a.1), b.1);
        }
        self.core.release(sh, n as u64);
        n
    }

    fn core_slices(&self, n: usize) -> ((*mut T, usize), (*mut T, usize)) {
        let cap = self.core.cap as usize;
        let start = (self.core.head & (self.core.cap - 1)) as usize;
        let first = n.min(cap - start);
        ((self.core.slots.ptr(start), first), (self.core.slots.ptr(0), n - first))
    }

    /// Borrows `n` available items in place; release them with
    /// [`ReadChunk::commit`] / [`ReadChunk::commit_all`] (dropping the chunk
    /// releases nothing).
    ///
    /// # Errors
    /// [`ChunkError::TooFewSlots`] with the number available now, or
    /// [`ChunkError::Disconnected`] if fewer than `n` are available and the
    /// producer is gone.
    pub fn read_chunk(&mut self, n: usize) -> Result<ReadChunk<'_, T>, ChunkError> {
        let inner = self.inner.clone();
        let sh = inner.shared();
        let avail = self.core.available(sh, n as u64).map_err(|_| ChunkError::Disconnected)? as usize;
        if avail < n {
            if avail == 0 && self.producer_gone(false) && self.core.refresh(sh) == Ok(0) {
                return Err(ChunkError::Disconnected);
            }
            return Err(ChunkError::TooFewSlots(avail));
        }
        let (a, b) = self.core_slices(n);
        Ok(ReadChunk { a, b, consumer: self })
    }

    /// Items available now.
    pub fn slots(&mut self) -> usize {
        let sh = self.inner.shared();
        self.core.refresh(sh).unwrap_or(0) as usize
    }

    /// Items available now.
    pub fn len(&mut self) -> usize {
        self.slots()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&mut self) -> bool {
        self.slots() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.core.cap as usize
    }

    /// Whether the producer is gone (dropped or dead); asks the kernel.
    pub fn is_abandoned(&mut self) -> bool {
        self.producer_gone(true)
    }

    /// Changes how this end's blocking calls wait.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
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

/// Free slots reserved by [`Producer::write_chunk`], written in place.
#[cfg(not(loom))]
pub struct WriteChunk<'a, T: Pod> {
    a: (*mut T, usize),
    b: (*mut T, usize),
    producer: &'a mut Producer<T>,
}

#[cfg(not(loom))]
impl<T: Pod> WriteChunk<'_, T> {
    /// The reserved slots as two runs (the second is empty unless the chunk
    /// wraps around). They hold stale items: overwrite what you commit.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        // SAFETY: the runs are free slots that only this producer may touch
        // until it publishes them, lying inside the mapping that `producer`
        // keeps alive; they do not overlap; `T: Pod` accepts the stale bytes.
        unsafe {
            (core::slice::from_raw_parts_mut(self.a.0, self.a.1), core::slice::from_raw_parts_mut(self.b.0, self.b.1))
        }
    }

    /// Number of reserved slots.
    pub fn len(&self) -> usize {
        self.a.1 + self.b.1
    }

    /// Whether no slots were reserved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes the first `n` reserved slots.
    ///
    /// # Panics
    /// If `n` exceeds the chunk length.
    pub fn commit(self, n: usize) {
        assert!(n <= self.len(), "commit({n}) on a chunk of {}", self.len());
        let p = self.producer;
        let sh = p.inner.shared();
        p.core.publish(sh, n as u64);
    }

    /// Publishes every reserved slot.
    pub fn commit_all(self) {
        let n = self.len();
        self.commit(n);
    }
}

/// Filled slots borrowed by [`Consumer::read_chunk`], read in place.
#[cfg(not(loom))]
pub struct ReadChunk<'a, T: Pod> {
    a: (*mut T, usize),
    b: (*mut T, usize),
    consumer: &'a mut Consumer<T>,
}

#[cfg(not(loom))]
impl<T: Pod> ReadChunk<'_, T> {
    /// The borrowed items, oldest first, as two runs.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        // SAFETY: published slots that the producer does not reuse until we
        // release them, inside the mapping `consumer` keeps alive.
        unsafe { (core::slice::from_raw_parts(self.a.0, self.a.1), core::slice::from_raw_parts(self.b.0, self.b.1)) }
    }

    /// Number of borrowed items.
    pub fn len(&self) -> usize {
        self.a.1 + self.b.1
    }

    /// Whether no items were borrowed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Releases the first `n` items to the producer.
    ///
    /// # Panics
    /// If `n` exceeds the chunk length.
    pub fn commit(self, n: usize) {
        assert!(n <= self.len(), "commit({n}) on a chunk of {}", self.len());
        let c = self.consumer;
        let sh = c.inner.shared();
        c.core.release(sh, n as u64);
    }

    /// Releases every borrowed item.
    pub fn commit_all(self) {
        let n = self.len();
        self.commit(n);
    }
}

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
