//! Robust inter-process mutexes: [`Lock`] and the re-entrant [`RLock`].
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-db-lock-{}", std::process::id());
//! let lock = ringshm::Lock::create(&name)?;      // any process: Lock::open(&name)
//! let guard = match lock.lock() {
//!     Ok(g) => g,
//!     Err(died) => died.into_inner(),   // the last holder died holding it: check your data
//! };
//! assert!(lock.try_lock().unwrap_err().is_would_block());
//! drop(guard);
//! assert!(!lock.is_locked());
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! One 32-bit futex word naming its holder by owner slot and thread id (see
//! the state table in [`crate::sync::raw`]). The owner slot is a kernel-held
//! lock byte of the holder's handle ([`crate::sync::owner`]), claimed once
//! per handle and process; after that the uncontended path is one CAS to
//! lock and one `swap` to unlock, exactly like `std::sync::Mutex`, and the
//! kernel is entered only when the `WAITERS` bit says somebody sleeps.
//!
//! Waiters go through the one wait loop ([`crate::sync::wait`], sleeping on
//! the word itself with `Sleep::Rmw`) in bounded slices of
//! [`crate::sync::wait::PARK_SLICE`], and after every slice ask the kernel
//! whether the holder's owner slot is still held (one `F_OFD_GETLK`). If it
//! is not — the holder's process was killed or dropped its handle — one
//! waiter CASes its own id over the dead one and gets [`OwnerDied`]. A holder
//! thread that ended while its process lives is recognised by waiters of the
//! same handle (`/proc/self/task`). A word scribbled with a slot nobody holds
//! is the same case as a dead holder, so a corrupted word cannot wedge the
//! lock.
//!
//! | the holder named by the word   | how a waiter tells                        | outcome      |
//! |--------------------------------|-------------------------------------------|--------------|
//! | alive                          | its owner slot is held                    | wait         |
//! | its process died               | the owner slot is free                    | `OwnerDied`  |
//! | died, slot since reclaimed     | the reclaimer set `DIED` in the word      | `OwnerDied`  |
//! | its thread ended (same handle) | `/proc/self/task/TID` is gone             | `OwnerDied`  |

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::process::{current_tid, own_thread_alive};
use crate::shm::header::Kind;
use crate::shm::object::{self, fixed_object};
use crate::shm::segment::ShmSafe;
use crate::shm::{Options, Segment, WaitStrategy};
use crate::sync::futex;
use crate::sync::owner::Owners;
use crate::sync::raw::{self, OWNER_MASK, WAITERS};
use crate::sync::wait::{self, Deadline, Sleep, Waited};

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

/// A robust lock word in shared memory, plus this handle's owner slot and
/// wait strategy. The raw core behind [`Lock`], [`RLock`], `Condition`,
/// `Array` and the seqlock writers of `Value`.
pub(crate) struct RawLock {
    word: NonNull<AtomicU32>,
    owners: Owners,
    wait: WaitStrategy,
    /// Condition waiter slots that name owner slots too (see
    /// [`RawLock::with_waiter_slots`]).
    waiters: Option<NonNull<[AtomicU32]>>,
}

// SAFETY: the word is an atomic in a mapping that outlives the `RawLock` (see
// `RawLock::new`); atomics may be used from any thread; `Owners` is `Sync`.
unsafe impl Send for RawLock {}
// SAFETY: as above.
unsafe impl Sync for RawLock {}

impl RawLock {
    /// A lock over `word`, whose holders are tracked through owner slots of
    /// the segment open as `file`.
    ///
    /// # Safety
    /// `word` stays valid (mapped) and `file` (if any) open for the life of
    /// the returned value.
    pub(crate) unsafe fn new(word: &AtomicU32, file: Option<BorrowedFd<'_>>, wait: WaitStrategy) -> Self {
        // SAFETY: `file` stays open as long as we live (our contract).
        let owners = unsafe { Owners::new(file, raw::LOCK_SLOTS) };
        RawLock { word: NonNull::from(word), owners, wait, waiters: None }
    }

    /// Also retires the condition waiter slots `slots` of a dead owner slot
    /// when this handle reclaims it (see [`raw::cv_retire`]).
    ///
    /// # Safety
    /// `slots` stay valid as long as `self`.
    pub(crate) unsafe fn with_waiter_slots(mut self, slots: &[AtomicU32]) -> Self {
        self.waiters = Some(NonNull::from(slots));
        self
    }

    /// The condition waiter slots, if any.
    pub(crate) fn waiter_slots(&self) -> &[AtomicU32] {
        // SAFETY: valid for our life by the contract of `with_waiter_slots`.
        self.waiters.map_or(&[], |p| unsafe { p.as_ref() })
    }

    /// The wait strategy of this handle.
    pub(crate) fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    #[inline(always)]
    pub(crate) fn word(&self) -> &AtomicU32 {
        // SAFETY: valid for our life by the contract of `new`.
        unsafe { self.word.as_ref() }
    }

    /// The calling thread's holder id, without a system call once this
    /// handle has its owner slot in this process.
    #[inline(always)]
    fn my_id(&self) -> Option<u32> {
        self.owners.mine().map(|k| raw::owner_id(k, current_tid()))
    }

    /// The calling thread's holder id, claiming an owner slot if needed
    /// (`None` if all are taken: the caller waits, as for a held lock).
    pub(crate) fn claim_id(&self) -> Option<u32> {
        let w = self.word();
        let scrub = |k| {
            // The dead earlier holder of slot `k` may hold the lock or wait
            // on the condition: retire both before `k` names us.
            raw::lock_scrub(w, k);
            let slots = self.waiter_slots();
            let lost = raw::cv_retire(slots, |id| raw::owner_slot(id) == k);
            raw::cv_notify(slots, lost, 0, |s| futex::wake(s, 1));
        };
        self.owners.claim(scrub).map(|k| raw::owner_id(k, current_tid()))
    }

    /// Blocks until acquired, or `None` once `deadline` passes.
    #[inline]
    pub(crate) fn lock_until(&self, deadline: Deadline) -> Option<Acquired> {
        if self.my_id().is_some_and(|me| raw::lock_fast(self.word(), me)) {
            return Some(Acquired::Clean);
        }
        self.lock_slow(deadline)
    }

    /// One attempt, no waiting. A dead holder is checked (one `fcntl`).
    pub(crate) fn try_lock(&self) -> Option<Acquired> {
        let me = self.claim_id()?;
        let w = self.word();
        if raw::lock_fast(w, me) {
            return Some(Acquired::Clean);
        }
        match raw::lock_try(w, me, 0) {
            Ok(()) => Some(Acquired::Clean),
            Err(cur) => self.take_if_dead(cur, me).then_some(Acquired::OwnerDied),
        }
    }

    /// Whether the holder named by `cur` is dead: its slot was reclaimed
    /// (`DIED`), has no live holder, or — for our own slot — its thread ended.
    pub(crate) fn holder_dead(&self, cur: u32) -> bool {
        if cur & raw::DIED != 0 {
            return true;
        }
        let k = raw::owner_slot(cur);
        if self.owners.mine() == Some(k) {
            !own_thread_alive(cur & raw::TID_MASK)
        } else {
            !self.owners.held(k)
        }
    }

    /// Takes the word over if its holder (as read in `cur`) is dead.
    fn take_if_dead(&self, cur: u32, me: u32) -> bool {
        let owner = cur & OWNER_MASK;
        owner != 0 && owner != me && self.holder_dead(cur) && raw::lock_take_over(self.word(), cur, me)
    }

    #[cold]
    #[inline(never)]
    fn lock_slow(&self, deadline: Deadline) -> Option<Acquired> {
        let w = self.word();
        let me = Cell::new(self.claim_id());
        let seen = Cell::new(0);
        let r = wait::wait(
            self.wait,
            deadline,
            Sleep::Rmw(w, WAITERS),
            |slept| {
                let id = me.get().or_else(|| self.claim_id())?;
                me.set(Some(id));
                match raw::lock_try(w, id, if slept { WAITERS } else { 0 }) {
                    Ok(()) => Some(Acquired::Clean),
                    Err(cur) => {
                        seen.set(cur);
                        None
                    }
                }
            },
            || me.get().is_some_and(|id| self.take_if_dead(seen.get(), id)),
        );
        match r {
            Waited::Ready(a) => Some(a),
            Waited::Gone => Some(Acquired::OwnerDied),
            Waited::TimedOut => None,
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
        self.my_id().is_some_and(|me| self.word().load(Ordering::Relaxed) & OWNER_MASK == me)
    }

    /// Whether anybody holds the word (a snapshot).
    pub(crate) fn is_locked(&self) -> bool {
        self.word().load(Ordering::Relaxed) & OWNER_MASK != 0
    }
}

impl fmt::Debug for RawLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.word().load(Ordering::Relaxed);
        f.debug_struct("RawLock")
            .field("locked", &(w & OWNER_MASK != 0))
            .field("owner_slot", &raw::owner_slot(w))
            .field("owner_tid", &(w & raw::TID_MASK))
            .field("waiters", &(w & WAITERS != 0))
            .finish()
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
        // SAFETY: the word lies in `seg`'s mapping, and the descriptor is
        // `seg`'s, which `seg` keeps mapped and open as long as this handle
        // (which owns both) lives.
        let raw = unsafe { RawLock::new(&body.word, seg.fd(), wait) };
        LockHandle { raw, seg }
    }
}

/// A named, robust inter-process mutex (Python's `multiprocessing.Lock`).
///
/// `lock()` returns a guard that unlocks when dropped. If the holder's
/// process is killed while holding it, the next `lock()` gets the lock with
/// `Err(OwnerDied(guard))` within a few tens of milliseconds instead of
/// waiting forever.
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
/// Any process may [`Lock::open`] it by name. The holder is recorded as an
/// owner slot: a lock byte on the segment file that the kernel holds for the
/// holder's handle and releases when its process dies. So a death is noticed
/// whatever happens to its pid or thread ids afterwards, and processes in
/// different pid namespaces may share the lock. A thread that ends holding
/// the lock while its process lives is noticed only by threads using the
/// same handle; others see it held (as in Python). Each handle that locks
/// keeps one extra file descriptor open and an owner slot until it is
/// dropped; up to 256 handles of one lock can hold slots at once, and a
/// further handle waits (or times out) until one is dropped.
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
        let a = self.h.raw.lock_until(Deadline::NEVER).unwrap_or(Acquired::Clean);
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
        wrap_timeout(self.h.raw.lock_until(Deadline::after(timeout)), || LockGuard::new(&self.h.raw))
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
/// As for [`Lock`]. Re-entrancy is per thread and handle: another thread of
/// the same process waits like any other process would, and so does the same
/// thread locking through a second handle (another `RLock::open` of the same
/// name) — share one handle between the places that nest.
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
        let a = self.h.raw.lock_until(Deadline::NEVER).unwrap_or(Acquired::Clean);
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
        wrap_timeout(self.h.raw.lock_until(Deadline::after(timeout)), || self.guard(true))
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

#[cfg(feature = "async")]
impl RawLock {
    /// For `crate::asynch`: one attempt of `lock_slow`'s loop for the calling
    /// thread (`announced`: keep the waiters bit). With `gone`, the
    /// dead-holder check of the holder last seen (in `seen`) instead.
    pub(crate) fn async_attempt(&self, announced: bool, gone: bool, seen: &mut u32) -> Option<Acquired> {
        let id = self.claim_id()?;
        if gone {
            return self.take_if_dead(*seen, id).then_some(Acquired::OwnerDied);
        }
        match raw::lock_try(self.word(), id, if announced { WAITERS } else { 0 }) {
            Ok(()) => Some(Acquired::Clean),
            Err(cur) => {
                *seen = cur;
                None
            }
        }
    }

    /// For `crate::asynch`: the word lockers sleep on (announcing with the
    /// waiters bit); the dead-holder check runs after every wake.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'_> {
        crate::asynch::Hook::new(self.wait, self.word(), crate::asynch::How::Rmw(WAITERS), || true)
    }
}

#[cfg(feature = "async")]
impl Lock {
    /// For `crate::asynch`.
    pub(crate) fn raw_lock(&self) -> &RawLock {
        &self.h.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(tag: &str) -> Segment {
        let name = format!("rshm-unit-rawlock-{tag}-{}", std::process::id());
        object::create_segment::<Lock>(&name, &(), &Options::new()).unwrap()
    }

    #[test]
    fn raw_lock_takes_over_dead_and_times_out_on_live() {
        let s = seg("a");
        let w = &s.body_at::<LockBody>(0).word;
        // SAFETY: `w` and the descriptor belong to `s`, which outlives `raw`.
        let raw = unsafe { RawLock::new(w, s.fd(), WaitStrategy::Adaptive) };
        assert_eq!(raw.try_lock(), Some(Acquired::Clean));
        assert!(raw.held_by_me());
        raw.unlock();
        // A word naming a slot nobody holds is taken over.
        w.store(raw::owner_id(200, 12345), Ordering::Relaxed);
        assert_eq!(raw.lock_until(Deadline::NEVER), Some(Acquired::OwnerDied));
        raw.unlock();
        // So is one marked DIED, whatever its slot.
        let mine = raw.owners.mine().unwrap();
        w.store(raw::owner_id(mine, 1) | raw::DIED, Ordering::Relaxed);
        assert_eq!(raw.try_lock(), Some(Acquired::OwnerDied));
        raw.unlock();
        // A word held by a live thread of ours times out.
        assert_eq!(raw.try_lock(), Some(Acquired::Clean));
        let other = std::thread::scope(|sc| {
            sc.spawn(|| raw.lock_until(Deadline::after(Duration::from_millis(30)))).join().unwrap()
        });
        assert_eq!(other, None);
        // A thread of ours that ended holding it is dead.
        raw.unlock();
        std::thread::scope(|sc| {
            sc.spawn(|| assert_eq!(raw.try_lock(), Some(Acquired::Clean)));
        });
        assert_eq!(raw.lock_until(Deadline::after(Duration::from_secs(10))), Some(Acquired::OwnerDied));
        raw.unlock();
    }

    #[test]
    fn a_second_handle_sees_the_first_alive_and_then_dropped() {
        let s = seg("b");
        let w = &s.body_at::<LockBody>(0).word;
        // SAFETY: as above.
        let a = unsafe { RawLock::new(w, s.fd(), WaitStrategy::Park) };
        // SAFETY: as above.
        let b = unsafe { RawLock::new(w, s.fd(), WaitStrategy::Park) };
        assert_eq!(a.try_lock(), Some(Acquired::Clean));
        assert_ne!(a.owners.mine(), None);
        assert_eq!(b.try_lock(), None, "the holder's slot is alive");
        assert!(!b.held_by_me());
        // Dropping `a` (its description) frees its slot: `b` takes over.
        drop(a);
        assert_eq!(b.try_lock(), Some(Acquired::OwnerDied));
        b.unlock();
    }
}
