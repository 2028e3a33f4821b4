//! [`Condition`]: a condition variable that owns its robust lock (Python's
//! `multiprocessing.Condition`).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (cv_name, ready_name) = (format!("doc-cv-{}", std::process::id()), format!("doc-cv-ready-{}", std::process::id()));
//! let cv = ringshm::Condition::create(&cv_name)?;          // others: Condition::open(&cv_name)
//! let ready = ringshm::Value::<u32>::create(&ready_name, 0)?;
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         // the notifier (any thread, any process): change the state under the lock, then notify
//!         let _g = cv.lock().unwrap_or_else(|e| e.into_inner());
//!         ready.store(1);
//!         cv.notify_all();
//!     });
//!     let g = cv.lock().unwrap_or_else(|e| e.into_inner());
//!     let _g = cv.wait_while(g, |_| ready.load() == 0).unwrap_or_else(|e| e.into_inner());
//! });
//! assert_eq!(ready.load(), 1);
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! The lock is a robust lock word (see [`crate::sync::raw`]). Each waiter
//! takes a *waiter slot* — a 32-bit word of its own — while it holds the
//! lock, releases the lock and sleeps on that word; `notify(n)` marks up to
//! `n` waiting slots notified and wakes exactly those words (the slot
//! protocol and its state table are in [`crate::sync::raw`], modelled with
//! loom there). So `notify_one` wakes one waiter, as Python's `notify()`
//! does, and a timed-out waiter never swallows a notification meant for
//! another: its cancel fails if it was picked, and it returns as notified.
//!
//! | body word    | meaning                                                      |
//! |--------------|--------------------------------------------------------------|
//! | `lock`       | the robust lock word                                         |
//! | `seq`        | bumped by notifies while overflow waiters exist (futex word) |
//! | `overflow`   | waiters that found every slot taken and sleep on `seq`       |
//! | `next`       | where the next notify starts scanning (round robin)          |
//! | `slots[64]`  | waiter slots                                                 |
//!
//! Waiter slots name their waiter by its lock holder id (owner slot and
//! tid), so a waiter that died is recognised like a dead lock holder: the
//! other waiters' liveness scans (every sleep slice) free its slot and pass
//! on a notification it had received but not used. More than 64 concurrent
//! waiters fall back to sleeping on `seq`, where a notify wakes all of them
//! (spuriously: [`Condition::wait_while`] re-checks). Sleeps are bounded
//! slices of the one wait loop ([`crate::sync::wait`]).

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::primitive::Padded;
use crate::shm::header::Kind;
use crate::shm::object::{self, fixed_object};
use crate::shm::segment::ShmSafe;
use crate::shm::{Options, Segment};
use crate::sync::futex;
use crate::sync::lock::{
    wrap, wrap_timeout, wrap_try, Acquired, LockGuard, LockResult, LockTimeoutError, OwnerDied, RawLock, TryLockError,
};
use crate::sync::raw;
use crate::sync::wait::{self, Deadline, Sleep, Waited};

/// Waiter slots of a condition.
const WAIT_SLOTS: usize = 64;

#[repr(C)]
struct CondBody {
    /// The lock word.
    lock: Padded<AtomicU32>,
    /// Overflow sequence (futex word); any value is valid.
    seq: Padded<AtomicU32>,
    /// Waiters sleeping on `seq` (a hint: a dead one only costs spare wakes).
    overflow: Padded<AtomicU32>,
    /// Where the next notify starts; any value is valid.
    next: Padded<AtomicU32>,
    /// Waiter slots (see [`crate::sync::raw`]); any value is valid.
    slots: [AtomicU32; WAIT_SLOTS],
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

/// Where a waiter sleeps between `wait_begin` and `wait_end`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CvWait {
    /// In waiter slot `i`, as holder `id`.
    Slot { i: usize, id: u32 },
    /// On the overflow sequence, which read `seq`.
    Overflow { seq: u32 },
}

/// A named condition variable with its own robust lock.
///
/// # Memory ordering
/// The lock gives Acquire/Release as for [`crate::Lock`]; `wait` re-acquires
/// the lock before returning, so data changed under the lock by the notifier
/// is visible to the woken waiter.
///
/// # Across processes
/// Any process may open it by name. `notify_one` wakes one waiter of any
/// process, `notify(n)` at most `n`. If a process dies holding the lock, the
/// next `lock` or the re-acquisition inside `wait` returns
/// `Err(OwnerDied(..))` with the lock held. A waiter that dies after it was
/// notified does not swallow the notification: within one sleep slice
/// another waiter gets it. Up to 64 waiters have a slot of their own and are
/// woken one by one; waiters beyond that are all woken by any notify (a
/// spurious wake-up: use [`Condition::wait_while`]).
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
        // SAFETY: the lock word and the waiter slots live in `seg`'s mapping,
        // and the descriptor is `seg`'s, both owned by `self`.
        let raw = unsafe { RawLock::new(&body.lock, seg.fd(), opts.wait).with_waiter_slots(&body.slots) };
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
        wrap(self.raw.lock_until(Deadline::NEVER).unwrap_or(Acquired::Clean), LockGuard::new(&self.raw))
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
        wrap_timeout(self.raw.lock_until(Deadline::after(timeout)), || LockGuard::new(&self.raw))
    }

    fn check_guard(&self, g: &LockGuard<'_>) {
        assert!(core::ptr::eq(g.raw(), &self.raw), "Condition::wait called with the guard of another lock");
    }

    /// Registers as a waiter and releases the lock (the first half of a wait).
    pub(crate) fn wait_begin(&self, g: LockGuard<'_>) -> CvWait {
        self.check_guard(&g);
        let b = self.b();
        // We hold the lock, so we have a holder id.
        let id = self.raw.claim_id();
        let w = match id.and_then(|id| Some((id, raw::cv_register(&b.slots, id, id as usize % WAIT_SLOTS)?))) {
            Some((id, i)) => CvWait::Slot { i, id },
            None => {
                // Every slot taken: sleep on the overflow sequence.
                // SeqCst: with the notifier's SeqCst `overflow` load after its
                // `seq` bump, a store-buffer pair: it sees us or we see the bump.
                let seq = b.seq.load(Ordering::SeqCst);
                b.overflow.fetch_add(1, Ordering::SeqCst);
                CvWait::Overflow { seq }
            }
        };
        drop(g);
        w
    }

    /// The futex word a waiter sleeps on and the value it sleeps while.
    pub(crate) fn wait_word(&self, w: CvWait) -> (&AtomicU32, u32) {
        let b = self.b();
        match w {
            CvWait::Slot { i, id } => (&b.slots[i], raw::CV_WAITING | (id & raw::OWNER_MASK)),
            CvWait::Overflow { seq } => (&b.seq, seq),
        }
    }

    /// Whether the waiter was notified (or, on the overflow sequence, may have been).
    pub(crate) fn wait_ready(&self, w: CvWait) -> bool {
        let b = self.b();
        match w {
            CvWait::Slot { i, id } => raw::cv_notified(&b.slots[i], id),
            // SeqCst: see `wait_begin`.
            CvWait::Overflow { seq } => b.seq.load(Ordering::SeqCst) != seq,
        }
    }

    /// At every liveness slice: notifications of dead waiters go on.
    pub(crate) fn wait_gone(&self, w: CvWait) -> bool {
        if let CvWait::Slot { id, .. } = w {
            self.pass_on_dead(id);
        }
        false
    }

    /// Leaves the waiter slot (the second half of a wait); `true` if a
    /// notification was received in it.
    pub(crate) fn wait_end(&self, w: CvWait) -> bool {
        let b = self.b();
        match w {
            CvWait::Slot { i, id } => raw::cv_leave(&b.slots[i], id),
            CvWait::Overflow { .. } => {
                // Relaxed: only a hint for notifiers.
                let _ = b.overflow.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
                false
            }
        }
    }

    /// Sleeps (lock released) until notified or `deadline`; returns with the
    /// lock held again. `true` if it timed out.
    fn wait_inner<'a>(&'a self, g: LockGuard<'a>, deadline: Deadline) -> (LockGuard<'a>, Acquired, bool) {
        let w = self.wait_begin(g);
        let (word, value) = self.wait_word(w);
        let r = wait::wait(
            self.raw.wait_strategy(),
            deadline,
            Sleep::Value(word, value),
            |_| self.wait_ready(w).then_some(()),
            || self.wait_gone(w),
        );
        let notified = self.wait_end(w);
        let timed_out = !notified && r == Waited::TimedOut;
        let a = self.raw.lock_until(Deadline::NEVER).unwrap_or(Acquired::Clean);
        (LockGuard::new(&self.raw), a, timed_out)
    }

    /// Frees the slots of dead waiters (other than `me`) and passes on the
    /// notifications they had received but not used.
    fn pass_on_dead(&self, me: u32) {
        let slots = &self.b().slots;
        let lost = raw::cv_retire(slots, |id| id != me & raw::OWNER_MASK && self.raw.holder_dead(id));
        if lost > 0 {
            self.notify(lost);
        }
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
        let (g, a, _) = self.wait_inner(guard, Deadline::NEVER);
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
        let (g, a, t) = self.wait_inner(guard, Deadline::after(timeout));
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
            let (g, a, _) = self.wait_inner(guard, Deadline::NEVER);
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
        let d = Deadline::after(timeout);
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

    /// Wakes up to `n` waiters (Python's `notify(n)`); returns how many
    /// it picked. Each picked waiter returns from its wait (after taking the
    /// lock); the others keep waiting. Waiters beyond the 64 that have a slot
    /// of their own are all woken by any notify (spuriously).
    pub fn notify(&self, n: usize) -> usize {
        let b = self.b();
        // Relaxed: only spreads where scans start.
        let start = b.next.fetch_add(1, Ordering::Relaxed) as usize;
        let picked = raw::cv_notify(&b.slots, n, start, |s| futex::wake(s, 1));
        if picked < n {
            // SeqCst: see `wait_inner`.
            b.seq.fetch_add(1, Ordering::SeqCst);
            if b.overflow.load(Ordering::SeqCst) != 0 {
                futex::wake_all(&b.seq);
            }
        }
        picked
    }

    /// Wakes one waiter (of any process), if any waits.
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter (of every process).
    pub fn notify_all(&self) {
        self.notify(usize::MAX);
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }
}

#[cfg(feature = "async")]
impl Condition {
    /// For `crate::asynch`: the lock under the condition.
    pub(crate) fn raw_lock(&self) -> &RawLock {
        &self.raw
    }
}
