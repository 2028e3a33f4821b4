//! Robust inter-process mutexes: [`Lock`] and the re-entrant [`RLock`].
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lock = ringshm::Lock::create("db-lock")?;      // any process: Lock::open("db-lock")
//! let guard = match lock.lock() {
//!     Ok(g) => g,
//!     Err(died) => died.into_inner(),   // the last holder died holding it: check your data
//! };
//! drop(guard);
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! One 32-bit futex word holding the owner's thread id (see the state table
//! in [`crate::sync::raw`]). The uncontended path is one CAS to lock and one
//! `swap` to unlock, exactly like `std::sync::Mutex`; the kernel is entered
//! only when the `WAITERS` bit says somebody sleeps.
//!
//! Waiters sleep in bounded slices ([`PARK_SLICE`]) and, after every slice,
//! ask `/proc` whether the owner thread still exists. If it does not (its
//! process was killed, or the thread ended holding the lock), one waiter CASes
//! its own tid over the dead one and gets [`OwnerDied`]. A word scribbled with
//! a tid that does not exist is the same case, so a corrupted word cannot wedge
//! the lock.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::shm::header::Kind;
use crate::shm::lock::ProcId;
use crate::shm::object::{self, fixed_object};
use crate::shm::segment::ShmSafe;
use crate::shm::{Options, Segment, WaitStrategy};
use crate::sync::futex;
use crate::sync::raw::{self, TID_MASK, WAITERS};
use crate::sync::wait::PARK_SLICE;

// ---------------------------------------------------------------------------
// Thread identity

thread_local! {
    /// `(pid << 32) | tid` of this thread, cached; the pid part detects a
    /// forked child (which has a new tid but inherits thread-locals).
    static TID: Cell<u64> = const { Cell::new(0) };
}

/// This thread's id (as the kernel numbers it), without a system call after
/// the first per thread and per process.
#[inline]
pub(crate) fn current_tid() -> u32 {
    let pid = crate::shm::lock::current_pid();
    let c = TID.with(Cell::get);
    if (c >> 32) as u32 == pid && c != 0 {
        return c as u32;
    }
    tid_slow(pid)
}

#[cold]
fn tid_slow(pid: u32) -> u32 {
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    TID.with(|c| c.set(u64::from(pid) << 32 | u64::from(tid)));
    tid
}

/// Whether thread `tid` still runs (anywhere in the pid namespace).
pub(crate) fn tid_alive(tid: u32) -> bool {
    ProcId { pid: tid, start: 0 }.is_alive()
}

// ---------------------------------------------------------------------------
// Segment plumbing shared by every sync primitive

// ---------------------------------------------------------------------------
// The raw robust lock

/// How an acquisition went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The previous holder released it.
    Clean,
    /// The previous holder died holding it; we took it over.
    OwnerDied,
}

/// How long `Adaptive` spins before yielding, in polls.
const SPIN_POLLS: u32 = 64;
/// How many times `Adaptive` yields before sleeping.
const YIELDS: u32 = 16;
/// How often a waiter that does not sleep (`Spin`) checks the owner.
const CHECK_EVERY: Duration = Duration::from_millis(5);

/// A robust lock word in shared memory, plus this handle's wait strategy.
/// The raw core behind [`Lock`], [`RLock`], `Condition` and `Array`.
pub(crate) struct RawLock {
    word: NonNull<AtomicU32>,
    wait: WaitStrategy,
}

// SAFETY: the word is an atomic in a mapping that outlives the `RawLock` (see
// `RawLock::new`); atomics may be used from any thread.
unsafe impl Send for RawLock {}
// SAFETY: as above.
unsafe impl Sync for RawLock {}

impl RawLock {
    /// # Safety
    /// `word` stays valid (mapped) for the life of the returned value.
    pub(crate) unsafe fn new(word: &AtomicU32, wait: WaitStrategy) -> Self {
        RawLock { word: NonNull::from(word), wait }
    }

    #[inline(always)]
    pub(crate) fn word(&self) -> &AtomicU32 {
        // SAFETY: valid for our life by the contract of `new`.
        unsafe { self.word.as_ref() }
    }

    /// Blocks until acquired (`None` deadline) or the deadline passes (`None`).
    #[inline]
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> Option<Acquired> {
        if raw::lock_fast(self.word(), current_tid()) {
            return Some(Acquired::Clean);
        }
        self.lock_slow(deadline)
    }

    /// One attempt, no waiting. A dead owner is checked (one `/proc` read).
    pub(crate) fn try_lock(&self) -> Option<Acquired> {
        let me = current_tid();
        let w = self.word();
        if raw::lock_fast(w, me) {
            return Some(Acquired::Clean);
        }
        match raw::lock_try(w, me, 0) {
            Ok(()) => Some(Acquired::Clean),
            Err(cur) => self.take_if_dead(cur, me).then_some(Acquired::OwnerDied),
        }
    }

    /// Takes the word over if its owner (as read in `cur`) is dead.
    fn take_if_dead(&self, cur: u32, me: u32) -> bool {
        let owner = cur & TID_MASK;
        owner != 0 && owner != me && !tid_alive(owner) && raw::lock_take_over(self.word(), cur, me)
    }

    #[cold]
    #[inline(never)]
    fn lock_slow(&self, deadline: Option<Instant>) -> Option<Acquired> {
        let w = self.word();
        let me = current_tid();
        let mut extra = 0;
        let mut polls: u32 = 0;
        let mut last_check: Option<Instant> = None;
        loop {
            let cur = match raw::lock_try(w, me, extra) {
                Ok(()) => return Some(Acquired::Clean),
                Err(cur) => cur,
            };
            if cur & TID_MASK == 0 {
                continue; // lost a CAS race on a free word: retry at once
            }
            polls = polls.wrapping_add(1);
            let park = match self.wait {
                WaitStrategy::Spin => false,
                WaitStrategy::Park => true,
                WaitStrategy::Adaptive => polls > SPIN_POLLS + YIELDS,
            };
            if !park && polls % 32 != 0 {
                if self.wait == WaitStrategy::Adaptive && polls > SPIN_POLLS {
                    std::thread::yield_now();
                } else {
                    core::hint::spin_loop();
                }
                continue;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return None;
            }
            if last_check.is_none_or(|t| now.duration_since(t) >= CHECK_EVERY) {
                last_check = Some(now);
                if self.take_if_dead(cur, me) {
                    return Some(Acquired::OwnerDied);
                }
            }
            if park {
                if !raw::lock_mark_waiting(w, cur) {
                    continue;
                }
                extra = WAITERS;
                let slice = deadline.map_or(PARK_SLICE, |d| d.saturating_duration_since(now).min(PARK_SLICE));
                futex::wait(w, cur | WAITERS, Some(slice));
                // After a sleep, always look at the owner again.
                last_check = None;
            }
        }
    }

    /// Releases the lock, waking one sleeper if the word says there are any.
    #[inline]
    pub(crate) fn unlock(&self) {
        if raw::unlock(self.word()) {
            futex::wake(self.word(), 1);
        }
    }

    /// Whether the calling thread holds the word.
    #[inline]
    pub(crate) fn held_by_me(&self) -> bool {
        self.word().load(Ordering::Relaxed) & TID_MASK == current_tid()
    }

    /// Whether anybody holds the word (a snapshot).
    pub(crate) fn is_locked(&self) -> bool {
        self.word().load(Ordering::Relaxed) & TID_MASK != 0
    }
}

impl fmt::Debug for RawLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.word().load(Ordering::Relaxed);
        f.debug_struct("RawLock").field("owner_tid", &(w & TID_MASK)).field("waiters", &(w & WAITERS != 0)).finish()
    }
}

// ---------------------------------------------------------------------------
// Errors

pub use crate::error::{LockResult, LockTimeoutError, OwnerDied, TryLockError};

pub(crate) fn wrap<G>(a: Acquired, g: G) -> LockResult<G> {
    match a {
        Acquired::Clean => Ok(g),
        Acquired::OwnerDied => Err(OwnerDied::new(g)),
    }
}

pub(crate) fn wrap_try<G>(a: Option<Acquired>, g: impl FnOnce() -> G) -> std::result::Result<G, TryLockError<G>> {
    match a {
        Some(Acquired::Clean) => Ok(g()),
        Some(Acquired::OwnerDied) => Err(TryLockError::OwnerDied(OwnerDied::new(g()))),
        None => Err(TryLockError::WouldBlock),
    }
}

pub(crate) fn wrap_timeout<G>(
    a: Option<Acquired>,
    g: impl FnOnce() -> G,
) -> std::result::Result<G, LockTimeoutError<G>> {
    match a {
        Some(Acquired::Clean) => Ok(g()),
        Some(Acquired::OwnerDied) => Err(LockTimeoutError::OwnerDied(OwnerDied::new(g()))),
        None => Err(LockTimeoutError::Timeout),
    }
}

// ---------------------------------------------------------------------------
// Lock

/// The shared body of a `Lock`/`RLock`: one word on its own cache-line pair.
#[repr(C)]
pub(crate) struct LockBody {
    /// The lock word (see [`crate::sync::raw`]); any value is valid.
    pub word: AtomicU32,
}
// SAFETY: `#[repr(C)]`, one atomic.
unsafe impl ShmSafe for LockBody {}

const LOCK_BODY: usize = 128;

fixed_object!(Lock, Kind::Lock, LOCK_BODY, |seg, opts| Lock { h: LockHandle::new(seg, opts.wait) });
fixed_object!(RLock, Kind::RLock, LOCK_BODY, |seg, opts| RLock { h: LockHandle::new(seg, opts.wait) });

/// A lock handle: segment plus raw lock over its word.
struct LockHandle {
    raw: RawLock,
    seg: Segment,
}

impl LockHandle {
    fn new(seg: Segment, wait: WaitStrategy) -> Self {
        let body = seg.body_at::<LockBody>(0);
        // SAFETY: the word lies in `seg`'s mapping, which `seg` keeps mapped
        // as long as this handle (which owns both) lives.
        let raw = unsafe { RawLock::new(&body.word, wait) };
        LockHandle { raw, seg }
    }
}

/// A named, robust inter-process mutex (Python's `multiprocessing.Lock`).
///
/// `lock()` returns a guard that unlocks when dropped. If the holder's
/// process is killed (or its thread ends) while holding it, the next `lock()`
/// gets the lock with `Err(OwnerDied(guard))` within a few tens of
/// milliseconds instead of waiting forever.
///
/// Locking a `Lock` twice from the same thread deadlocks (use [`RLock`]);
/// `lock_timeout` still returns.
///
/// # Memory ordering
/// Acquiring synchronises-with the previous release (Acquire/Release on the
/// lock word): everything the previous holder wrote, in any process, is
/// visible to the next holder.
///
/// # Across processes
/// Any process may [`Lock::open`] it by name. Ownership is recorded as the
/// holder's thread id in the shared word, so a waiter can check through
/// `/proc` whether the holder still exists. All processes must share a pid
/// namespace.
pub struct Lock {
    h: LockHandle,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("name", &self.h.seg.name()).field("raw", &self.h.raw).finish()
    }
}

/// Held lock of a [`Lock`], [`crate::Condition`] or similar; unlocks on drop.
/// Not `Send`: the lock is owned by the thread that took it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    raw: &'a RawLock,
    _not_send: PhantomData<*const ()>,
}

impl<'a> LockGuard<'a> {
    pub(crate) fn new(raw: &'a RawLock) -> Self {
        LockGuard { raw, _not_send: PhantomData }
    }
    pub(crate) fn raw(&self) -> &'a RawLock {
        self.raw
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.raw.unlock();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

impl Lock {
    /// Creates a new, unlocked lock.
    ///
    /// # Errors
    /// [`crate::Error::InvalidName`], [`crate::Error::AlreadyExists`], [`crate::Error::NoSpace`],
    /// [`crate::Error::PermissionDenied`], [`crate::Error::Io`].
    pub fn create(name: &str) -> Result<Self> {
        Self::create_with(name, &Options::new())
    }
    /// [`Lock::create`] with options (mode, persist, wait strategy).
    pub fn create_with(name: &str, opts: &Options) -> Result<Self> {
        object::create(name, (), opts)
    }
    /// Opens an existing lock.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], [`crate::Error::WrongKind`], [`crate::Error::Corrupted`],
    /// [`crate::Error::VersionMismatch`], [`crate::Error::PermissionDenied`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }
    /// [`Lock::open`] with options (wait strategy).
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }
    /// Opens the lock, or creates it if it does not exist; race-free.
    pub fn open_or_create(name: &str) -> Result<Self> {
        Self::open_or_create_with(name, &Options::new())
    }
    /// [`Lock::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, opts: &Options) -> Result<Self> {
        object::open_or_create(name, (), opts)
    }

    /// Blocks until the lock is acquired.
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` if the previous holder died holding it: the
    /// lock is held all the same.
    #[inline]
    pub fn lock(&self) -> LockResult<LockGuard<'_>> {
        let a = self.h.raw.lock_until(None).unwrap_or(Acquired::Clean);
        wrap(a, LockGuard::new(&self.h.raw))
    }

    /// Takes the lock if it is free now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if held; [`TryLockError::OwnerDied`] if it
    /// was taken over from a dead holder (the caller holds it).
    pub fn try_lock(&self) -> std::result::Result<LockGuard<'_>, TryLockError<LockGuard<'_>>> {
        wrap_try(self.h.raw.try_lock(), || LockGuard::new(&self.h.raw))
    }

    /// Blocks for at most `timeout`.
    ///
    /// # Errors
    /// [`LockTimeoutError::Timeout`]; [`LockTimeoutError::OwnerDied`] as for
    /// [`Lock::lock`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<LockGuard<'_>, LockTimeoutError<LockGuard<'_>>> {
        let d = crate::sync::wait::deadline(Some(timeout));
        wrap_timeout(self.h.raw.lock_until(d.or(Some(far_future()))), || LockGuard::new(&self.h.raw))
    }

    /// Whether anybody holds the lock right now (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.h.raw.is_locked()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.h.seg.name()
    }
}

/// A deadline for a timeout too large to represent: effectively never.
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

// ---------------------------------------------------------------------------
// RLock

/// A named, robust, re-entrant inter-process mutex (Python's
/// `multiprocessing.RLock`): the thread that holds it may lock it again.
///
/// The lock is released when the guard that first took it is dropped; guards
/// of nested acquisitions do nothing when dropped. Robust like [`Lock`].
///
/// # Memory ordering
/// As for [`Lock`]: the outermost acquisition synchronises-with the previous
/// outermost release.
///
/// # Across processes
/// As for [`Lock`]. Re-entrancy is per thread: another thread of the same
/// process waits like any other process would.
pub struct RLock {
    h: LockHandle,
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock").field("name", &self.h.seg.name()).field("raw", &self.h.raw).finish()
    }
}

/// Held [`RLock`]; the outermost guard unlocks on drop. Not `Send`.
#[must_use = "the lock is released as soon as the outermost guard is dropped"]
pub struct RLockGuard<'a> {
    raw: &'a RawLock,
    outer: bool,
    _not_send: PhantomData<*const ()>,
}

impl RLockGuard<'_> {
    /// Whether this guard took the lock (and releases it when dropped), as
    /// opposed to a nested re-acquisition.
    pub fn is_outermost(&self) -> bool {
        self.outer
    }
}

impl Drop for RLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.outer && self.raw.held_by_me() {
            self.raw.unlock();
        }
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").field("outermost", &self.outer).finish()
    }
}

impl RLock {
    /// Creates a new, unlocked re-entrant lock.
    ///
    /// # Errors
    /// As for [`Lock::create`].
    pub fn create(name: &str) -> Result<Self> {
        Self::create_with(name, &Options::new())
    }
    /// [`RLock::create`] with options.
    pub fn create_with(name: &str, opts: &Options) -> Result<Self> {
        object::create(name, (), opts)
    }
    /// Opens an existing re-entrant lock.
    ///
    /// # Errors
    /// As for [`Lock::open`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }
    /// [`RLock::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }
    /// Opens or creates, race-free.
    pub fn open_or_create(name: &str) -> Result<Self> {
        Self::open_or_create_with(name, &Options::new())
    }
    /// [`RLock::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, opts: &Options) -> Result<Self> {
        object::open_or_create(name, (), opts)
    }

    fn guard(&self, outer: bool) -> RLockGuard<'_> {
        RLockGuard { raw: &self.h.raw, outer, _not_send: PhantomData }
    }

    /// Blocks until acquired; returns at once if this thread holds it.
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` as for [`Lock::lock`].
    pub fn lock(&self) -> LockResult<RLockGuard<'_>> {
        if self.h.raw.held_by_me() {
            return Ok(self.guard(false));
        }
        let a = self.h.raw.lock_until(None).unwrap_or(Acquired::Clean);
        wrap(a, self.guard(true))
    }

    /// Takes the lock if it is free or held by this thread.
    ///
    /// # Errors
    /// As for [`Lock::try_lock`].
    pub fn try_lock(&self) -> std::result::Result<RLockGuard<'_>, TryLockError<RLockGuard<'_>>> {
        if self.h.raw.held_by_me() {
            return Ok(self.guard(false));
        }
        wrap_try(self.h.raw.try_lock(), || self.guard(true))
    }

    /// Blocks for at most `timeout`.
    ///
    /// # Errors
    /// As for [`Lock::lock_timeout`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<RLockGuard<'_>, LockTimeoutError<RLockGuard<'_>>> {
        if self.h.raw.held_by_me() {
            return Ok(self.guard(false));
        }
        let d = crate::sync::wait::deadline(Some(timeout)).or(Some(far_future()));
        wrap_timeout(self.h.raw.lock_until(d), || self.guard(true))
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned(&self) -> bool {
        self.h.raw.held_by_me()
    }

    /// Whether anybody holds the lock right now (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.h.raw.is_locked()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.h.seg.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tid_is_cached_and_alive() {
        let t = current_tid();
        assert_eq!(t, current_tid());
        assert!(tid_alive(t));
        let other = std::thread::spawn(current_tid).join().unwrap();
        assert_ne!(other, t);
        let deadline = Instant::now() + Duration::from_secs(5);
        while tid_alive(other) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!tid_alive(other), "an ended thread counts as dead");
    }

    #[test]
    fn raw_lock_on_heap_word() {
        let w = AtomicU32::new(0);
        // SAFETY: `w` outlives `raw`.
        let raw = unsafe { RawLock::new(&w, WaitStrategy::Adaptive) };
        assert_eq!(raw.try_lock(), Some(Acquired::Clean));
        assert!(raw.held_by_me());
        raw.unlock();
        // A word scribbled with a tid that does not exist is taken over.
        w.store(0x3FFF_FFF0, Ordering::Relaxed);
        assert_eq!(raw.lock_until(None), Some(Acquired::OwnerDied));
        raw.unlock();
        // A held word times out.
        w.store(current_tid(), Ordering::Relaxed);
        let other = std::thread::scope(|s| {
            s.spawn(|| raw.lock_until(Some(Instant::now() + Duration::from_millis(30)))).join().unwrap()
        });
        assert_eq!(other, None);
    }
}
