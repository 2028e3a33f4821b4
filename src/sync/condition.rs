//! [`Condition`]: a condition variable that owns its robust lock (Python's
//! `multiprocessing.Condition`).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cv = ringshm::Condition::create("cv")?;
//! let ready = ringshm::Value::<u32>::create("ready", 0)?;
//! // waiter
//! let g = cv.lock().unwrap_or_else(|e| e.into_inner());
//! let _g = cv.wait_while(g, |_| ready.load() == 0).unwrap_or_else(|e| e.into_inner());
//! // notifier (another process): set `ready` under cv.lock(), then cv.notify_all()
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! The lock is a robust lock word (see [`crate::sync::lock`]). Notifications
//! bump a sequence word that waiters sleep on. A waiter reads the sequence
//! *before* releasing the lock and counts itself in `sleepers`; a notifier bumps
//! the sequence and wakes only if `sleepers` is non-zero. Both pairs are
//! SeqCst read-modify-writes followed by SeqCst loads (a store-buffer
//! pattern), and `FUTEX_WAIT` compares the sequence atomically with going to
//! sleep, so a notification sent after the waiter released the lock is never
//! lost. Sleeps are bounded slices; spurious wake-ups are allowed (use
//! [`Condition::wait_while`]).

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::primitive::Padded;
use crate::shm::header::Kind;
use crate::shm::object::{self, fixed_object};
use crate::shm::segment::ShmSafe;
use crate::shm::{Options, Segment};
use crate::sync::futex;
use crate::sync::lock::{
    far_future, wrap, wrap_timeout, wrap_try, Acquired, LockGuard, LockResult, LockTimeoutError, OwnerDied, RawLock,
    TryLockError,
};
use crate::sync::wait::PARK_SLICE;

#[repr(C)]
struct CondBody {
    /// The lock word.
    lock: Padded<AtomicU32>,
    /// Notification sequence (futex word); any value is valid.
    seq: Padded<AtomicU32>,
    /// Threads sleeping (or about to) on `seq`; a dead sleeper only costs spare wakes.
    sleepers: Padded<AtomicU32>,
}
// SAFETY: `#[repr(C)]`, only atomics and padding never read.
unsafe impl ShmSafe for CondBody {}

const BODY: usize = core::mem::size_of::<CondBody>();

fixed_object!(Condition, Kind::Condition, BODY, |seg, opts| Self::new(seg, opts));

/// Whether a timed wait returned because the timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait timed out (rather than being notified).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A named condition variable with its own robust lock.
///
/// # Memory ordering
/// The lock gives Acquire/Release as for [`crate::Lock`]; `wait` re-acquires
/// the lock before returning, so data changed under the lock by the notifier
/// is visible to the woken waiter.
///
/// # Across processes
/// Any process may open it by name. If a process dies holding the lock, the
/// next `lock` or the re-acquisition inside `wait` returns
/// `Err(OwnerDied(..))` with the lock held.
pub struct Condition {
    raw: RawLock,
    body: NonNull<CondBody>,
    seg: Segment,
}

// SAFETY: `body` points into `seg`'s mapping, which lives as long as `self`;
// all shared state is atomics.
unsafe impl Send for Condition {}
// SAFETY: as above.
unsafe impl Sync for Condition {}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").field("name", &self.seg.name()).field("lock", &self.raw).finish()
    }
}

impl Condition {
    fn new(seg: Segment, opts: &Options) -> Self {
        let body = seg.body_at::<CondBody>(0);
        // SAFETY: the lock word lives in `seg`'s mapping, owned by `self`.
        let raw = unsafe { RawLock::new(&body.lock, opts.wait) };
        Condition { raw, body: NonNull::from(body), seg }
    }

    fn b(&self) -> &CondBody {
        // SAFETY: valid while `self.seg` lives.
        unsafe { self.body.as_ref() }
    }

    /// Creates a condition variable (and its lock, unlocked).
    ///
    /// # Errors
    /// [`crate::Error::InvalidName`], [`crate::Error::AlreadyExists`],
    /// [`crate::Error::NoSpace`], [`crate::Error::PermissionDenied`].
    pub fn create(name: &str) -> Result<Self> {
        Self::create_with(name, &Options::new())
    }
    /// [`Condition::create`] with options.
    pub fn create_with(name: &str, opts: &Options) -> Result<Self> {
        object::create(name, (), opts)
    }
    /// Opens an existing condition variable.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], [`crate::Error::WrongKind`], [`crate::Error::Corrupted`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }
    /// [`Condition::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }
    /// Opens or creates, race-free.
    pub fn open_or_create(name: &str) -> Result<Self> {
        Self::open_or_create_with(name, &Options::new())
    }
    /// [`Condition::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, opts: &Options) -> Result<Self> {
        object::open_or_create(name, (), opts)
    }

    /// Takes the condition's lock.
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` if the last holder died holding it.
    pub fn lock(&self) -> LockResult<LockGuard<'_>> {
        wrap(self.raw.lock_until(None).unwrap_or(Acquired::Clean), LockGuard::new(&self.raw))
    }

    /// Takes the lock if it is free.
    ///
    /// # Errors
    /// As for [`crate::Lock::try_lock`].
    pub fn try_lock(&self) -> std::result::Result<LockGuard<'_>, TryLockError<LockGuard<'_>>> {
        wrap_try(self.raw.try_lock(), || LockGuard::new(&self.raw))
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// # Errors
    /// As for [`crate::Lock::lock_timeout`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<LockGuard<'_>, LockTimeoutError<LockGuard<'_>>> {
        let d = crate::sync::wait::deadline(Some(timeout)).or(Some(far_future()));
        wrap_timeout(self.raw.lock_until(d), || LockGuard::new(&self.raw))
    }

    fn check_guard(&self, g: &LockGuard<'_>) {
        assert!(core::ptr::eq(g.raw(), &self.raw), "Condition::wait called with the guard of another lock");
    }

    /// Sleeps (lock released) until notified or `deadline`; returns with the
    /// lock held again. `true` if it timed out.
    fn wait_inner<'a>(&'a self, g: LockGuard<'a>, deadline: Option<Instant>) -> (LockGuard<'a>, Acquired, bool) {
        self.check_guard(&g);
        let b = self.b();
        // SeqCst: with the SeqCst `sleepers` RMW below and the notifier's
        // SeqCst `seq` RMW + `sleepers` load, a store-buffer pair (see the
        // module docs).
        let seq = b.seq.load(Ordering::SeqCst);
        b.sleepers.fetch_add(1, Ordering::SeqCst);
        drop(g);
        let mut timed_out = false;
        loop {
            // SeqCst: in one total order with the `seq` bump of `notify_*`, so a
            // notify after our unlock is never missed.
            if b.seq.load(Ordering::SeqCst) != seq {
                break;
            }
            let slice = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        timed_out = true;
                        break;
                    }
                    left.min(PARK_SLICE)
                }
                None => PARK_SLICE,
            };
            futex::wait(&b.seq, seq, Some(slice));
        }
        // Relaxed: only a hint for notifiers; a lost decrement costs spare wakes.
        let _ = b.sleepers.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
        let a = self.raw.lock_until(None).unwrap_or(Acquired::Clean);
        (LockGuard::new(&self.raw), a, timed_out)
    }

    /// Releases the lock, sleeps until notified, and takes the lock again.
    /// Spurious wake-ups are possible: re-check your condition, or use
    /// [`Condition::wait_while`].
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` if the lock's holder died while we slept.
    ///
    /// # Panics
    /// If `guard` belongs to another lock.
    pub fn wait<'a>(&'a self, guard: LockGuard<'a>) -> LockResult<LockGuard<'a>> {
        let (g, a, _) = self.wait_inner(guard, None);
        wrap(a, g)
    }

    /// As [`Condition::wait`], for at most `timeout`.
    ///
    /// # Errors
    /// As for [`Condition::wait`].
    ///
    /// # Panics
    /// If `guard` belongs to another lock.
    pub fn wait_timeout<'a>(
        &'a self,
        guard: LockGuard<'a>,
        timeout: Duration,
    ) -> LockResult<(LockGuard<'a>, WaitTimeoutResult)> {
        let d = crate::sync::wait::deadline(Some(timeout)).or(Some(far_future()));
        let (g, a, t) = self.wait_inner(guard, d);
        wrap(a, (g, WaitTimeoutResult(t)))
    }

    /// Waits while `condition(&mut guard)` returns `true` (checked under the
    /// lock), like `std::sync::Condvar::wait_while`.
    ///
    /// # Errors
    /// As for [`Condition::wait`]; the waiting goes on after a takeover
    /// and the `OwnerDied` is reported at the end.
    ///
    /// # Panics
    /// If `guard` belongs to another lock.
    pub fn wait_while<'a>(
        &'a self,
        mut guard: LockGuard<'a>,
        mut condition: impl FnMut(&mut LockGuard<'a>) -> bool,
    ) -> LockResult<LockGuard<'a>> {
        let mut died = false;
        while condition(&mut guard) {
            let (g, a, _) = self.wait_inner(guard, None);
            died |= a == Acquired::OwnerDied;
            guard = g;
        }
        if died {
            Err(OwnerDied::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// As [`Condition::wait_while`], for at most `timeout` in total.
    ///
    /// # Errors
    /// As for [`Condition::wait_while`].
    pub fn wait_timeout_while<'a>(
        &'a self,
        mut guard: LockGuard<'a>,
        timeout: Duration,
        mut condition: impl FnMut(&mut LockGuard<'a>) -> bool,
    ) -> LockResult<(LockGuard<'a>, WaitTimeoutResult)> {
        let d = crate::sync::wait::deadline(Some(timeout)).or(Some(far_future()));
        let mut died = false;
        let mut timed_out = false;
        loop {
            if !condition(&mut guard) {
                timed_out = false;
                break;
            }
            if timed_out {
                break;
            }
            let (g, a, t) = self.wait_inner(guard, d);
            died |= a == Acquired::OwnerDied;
            timed_out = t;
            guard = g;
        }
        let r = (guard, WaitTimeoutResult(timed_out));
        if died {
            Err(OwnerDied::new(r))
        } else {
            Ok(r)
        }
    }

    fn notify(&self, n: u32) {
        let b = self.b();
        // SeqCst: see `wait_inner`.
        b.seq.fetch_add(1, Ordering::SeqCst);
        if b.sleepers.load(Ordering::SeqCst) != 0 {
            futex::wake(&b.seq, n);
        }
    }

    /// Wakes one waiter (of any process).
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter (of every process).
    pub fn notify_all(&self) {
        self.notify(i32::MAX as u32);
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }
}
