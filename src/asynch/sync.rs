//! `_async` twins of the synchronisation calls: `acquire_async`,
//! `lock_async`, `wait_async`.
//!
//! # `RLock` has no `lock_async`
//! An [`RLock`](crate::RLock) is re-entrant *per thread*: its owner is the
//! thread that holds it. Async tasks are not threads — one thread runs many
//! tasks, and a task may move between threads at every `.await` — so a
//! thread-owned re-entrant lock would let two tasks on one thread both "hold"
//! it, and a task that moved could not release it. Re-entrancy per task
//! would need a task identity that `core::task` does not provide. So
//! `RLock` has no `lock_async`: restructure the code to take a [`Lock`] once
//! (async code passes the guard down instead of re-locking), or take the
//! `RLock` in `spawn_blocking`.

use core::future::{poll_fn, Future};
use core::task::Poll;

use super::{Hook, Step, Waiter};
use crate::error::{BarrierError, LockResult};
use crate::sync::barrier::{Barrier, BarrierWaitResult};
use crate::sync::condition::{Condition, CvWait};
use crate::sync::event::Event;
use crate::sync::lock::{wrap, Lock, LockGuard, RawLock};
use crate::sync::semaphore::{BoundedSemaphore, Semaphore};

macro_rules! acquire_async {
    ($ty:ty) => {
        impl $ty {
            /// Takes a permit, waiting without blocking the thread while
            /// there is none: the async twin of [`acquire`](Self::acquire).
            ///
            /// Permits of processes that die holding them come back to the
            /// pool while this future waits (the repair scan runs at every
            /// liveness slice, as in the blocking form).
            ///
            /// # Cancel safety
            /// Cancel-safe: a permit is taken only inside the `poll` that
            /// completes the future. Dropping it before that takes no permit
            /// (the count is unchanged) and leaves no waker registered.
            pub fn acquire_async(&self) -> impl Future<Output = ()> + Send + '_ {
                let mut hook = self.async_hook();
                let mut w = Waiter::new();
                poll_fn(move |cx| w.poll_op(cx, &mut hook, |_| self.try_acquire().then_some(())))
            }
        }
    };
}
acquire_async!(Semaphore);
acquire_async!(BoundedSemaphore);

impl Event {
    /// Waits without blocking the thread until the flag is set (at once if
    /// it is): the async twin of [`wait`](Self::wait). A `set` after this
    /// call began counts even if the flag was cleared again before the
    /// future was polled.
    ///
    /// # Cancel safety
    /// Cancel-safe: waiting changes nothing; dropping the future leaves no
    /// waker registered.
    pub fn wait_async(&self) -> impl Future<Output = ()> + Send + '_ {
        let (mut hook, ready) = self.async_parts();
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |_| ready().then_some(())))
    }
}

impl Lock {
    /// Acquires the lock, waiting without blocking the thread: the async twin
    /// of [`lock`](Self::lock).
    ///
    /// The guard is not `Send` (the lock belongs to the thread that took it):
    /// a future that holds it across an `.await` is not `Send` either, so
    /// keep the critical section free of `.await`s on a multi-thread runtime,
    /// as with `std::sync::Mutex`.
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` if the previous holder died holding it (noticed
    /// within one 20 ms liveness slice): the lock is held all the same.
    ///
    /// # Cancel safety
    /// Cancel-safe: the lock is taken only inside the `poll` that returns the
    /// guard. Dropping the future before that holds nothing and leaves no
    /// waker registered (at most the lock word's waiters bit, which costs the
    /// next unlock one spurious wake call, as after a blocking `lock_timeout`).
    pub fn lock_async(&self) -> impl Future<Output = LockResult<LockGuard<'_>>> + Send + '_ {
        lock_raw_async(self.raw_lock())
    }
}

/// A party that arrived at a barrier and has not seen its generation end;
/// dropped before that, it breaks the generation.
struct Arrived<'a> {
    barrier: &'a Barrier,
    gen: Option<u32>,
}

impl Drop for Arrived<'_> {
    fn drop(&mut self) {
        if let Some(gen) = self.gen {
            self.barrier.async_abandon(gen);
        }
    }
}

impl Barrier {
    /// Arrives and waits without blocking the thread until every party has
    /// arrived: the async twin of [`wait`](Self::wait). The party arrives
    /// when the future is first polled.
    ///
    /// # Errors
    /// [`BarrierError::Broken`] if the barrier is or gets broken (by
    /// `abort`, by a party that died waiting — noticed within one liveness
    /// slice — or by a party that gave up).
    ///
    /// # Cancel safety
    /// Dropping the future before its first poll does nothing. Dropping it
    /// after it arrived and before the barrier released it cannot take the
    /// arrival back (other parties may already count on it), so it breaks
    /// the barrier for the parties of that generation, exactly as a timed-out
    /// [`wait_timeout`](Self::wait_timeout) does: they get
    /// [`BarrierError::Broken`] instead of waiting for a party that left.
    /// Nothing stays registered either way.
    pub fn wait_async(&self) -> impl Future<Output = Result<BarrierWaitResult, BarrierError>> + Send + '_ {
        let mut hook = self.async_hook();
        let mut w = Waiter::new();
        let mut arrived = Arrived { barrier: self, gen: None };
        poll_fn(move |cx| {
            // The whole guard moves into the closure (not just its field), so
            // that dropping the future drops it.
            let arrived = &mut arrived;
            let gen = match arrived.gen {
                Some(gen) => gen,
                None => match self.async_arrive() {
                    Ok(gen) => *arrived.gen.insert(gen),
                    Err(done) => return Poll::Ready(done),
                },
            };
            let r = w.poll_op(cx, &mut hook, |step| self.async_outcome(gen, step.gone));
            if r.is_ready() {
                arrived.gen = None;
            }
            r
        })
    }
}

/// Where a `Condition::wait_async` is.
enum Phase<'a> {
    /// Not polled yet: holds the caller's guard.
    Start(LockGuard<'a>),
    /// Registered as a waiter, lock released.
    Waiting(CvWait, Hook<'a>),
    /// Notified (`owed`: a notification was received in our slot), taking
    /// the lock again.
    Locking { owed: bool },
    /// Returned.
    Done,
}

/// The state of a `Condition::wait_async`; dropped early, it leaves its
/// waiter slot and passes on a notification it had received.
struct CondWait<'a> {
    cv: &'a Condition,
    phase: Phase<'a>,
}

impl Drop for CondWait<'_> {
    fn drop(&mut self) {
        let owed = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Waiting(w, _) => self.cv.wait_end(w),
            Phase::Locking { owed } => owed,
            Phase::Start(_) | Phase::Done => false,
        };
        if owed {
            self.cv.notify(1);
        }
    }
}

impl Condition {
    /// Releases the lock, waits without blocking the thread until notified,
    /// and takes the lock again: the async twin of [`wait`](Self::wait).
    /// The lock is released when the future is first polled. Spurious
    /// wake-ups are possible, as for `wait`: re-check the condition in a loop.
    ///
    /// The future holds a `LockGuard` (not `Send`) until its first poll, so
    /// it is not `Send`: await it on the thread that locked.
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` if the lock's holder died while we waited.
    ///
    /// # Panics
    /// If `guard` belongs to another lock.
    ///
    /// # Cancel safety
    /// Dropping the future before its first poll just drops `guard` (the
    /// lock is released). Dropping it later leaves the lock released (it is
    /// not taken again) and the waiter slot freed; a notification this
    /// waiter had already received is passed on with `notify(1)`, so no
    /// notification is lost. No waker stays registered.
    pub fn wait_async<'a>(&'a self, guard: LockGuard<'a>) -> impl Future<Output = LockResult<LockGuard<'a>>> + 'a {
        let raw = self.raw_lock();
        let mut lock_hook = raw.async_hook();
        let mut w = Waiter::new();
        let mut seen = 0u32;
        let mut st = CondWait { cv: self, phase: Phase::Start(guard) };
        poll_fn(move |cx| {
            // The whole state moves into the closure, so that dropping the
            // future drops it.
            let st = &mut st;
            loop {
                match &mut st.phase {
                    Phase::Start(_) => {
                        let Phase::Start(g) = std::mem::replace(&mut st.phase, Phase::Done) else { unreachable!() };
                        let cw = self.wait_begin(g);
                        let (word, value) = self.wait_word(cw);
                        let hook =
                            Hook::new(raw.wait_strategy(), word, super::How::Value(value), move || self.wait_gone(cw));
                        st.phase = Phase::Waiting(cw, hook);
                    }
                    Phase::Waiting(cw, hook) => {
                        let cw = *cw;
                        if w.poll_op(cx, hook, |_| self.wait_ready(cw).then_some(())).is_pending() {
                            return Poll::Pending;
                        }
                        let owed = self.wait_end(cw);
                        st.phase = Phase::Locking { owed };
                    }
                    Phase::Locking { .. } => {
                        let Poll::Ready(a) = w.poll_op(cx, &mut lock_hook, |step: Step| {
                            raw.async_attempt(step.announced, step.gone, &mut seen)
                        }) else {
                            return Poll::Pending;
                        };
                        st.phase = Phase::Done;
                        return Poll::Ready(wrap(a, LockGuard::new(raw)));
                    }
                    Phase::Done => panic!("Condition::wait_async polled after it completed"),
                }
            }
        })
    }
}

impl Condition {
    /// Takes the condition's lock, waiting without blocking the thread: the
    /// async twin of [`lock`](Self::lock).
    ///
    /// # Errors
    /// `Err(OwnerDied(guard))` if the last holder died holding it.
    ///
    /// # Cancel safety
    /// As [`Lock::lock_async`].
    pub fn lock_async(&self) -> impl Future<Output = LockResult<LockGuard<'_>>> + Send + '_ {
        lock_raw_async(self.raw_lock())
    }
}

/// Takes `raw` as `lock_slow` does, asynchronously.
fn lock_raw_async(raw: &RawLock) -> impl Future<Output = LockResult<LockGuard<'_>>> + Send + '_ {
    let mut hook = raw.async_hook();
    let mut w = Waiter::new();
    let mut seen = 0u32;
    poll_fn(move |cx| {
        w.poll_op(cx, &mut hook, |step: Step| raw.async_attempt(step.announced, step.gone, &mut seen))
            .map(|a| wrap(a, LockGuard::new(raw)))
    })
}
