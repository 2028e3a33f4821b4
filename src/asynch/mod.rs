//! Async twins of the blocking calls (feature `async`): futures that work
//! under any executor and are woken across processes without polling.
//!
//! # Implementation details
//!
//! A future runs the same handshake as a blocking sleeper in
//! `crate::sync::wait`, with the futex sleep handed to one per-process
//! *waiter thread* ([`waiter`]):
//!
//! 1. `poll` tries the non-blocking operation (the `try_` form).
//! 2. If it would block, the first poll spins for 20 µs (as
//!    [`WaitStrategy::Adaptive`] does before it yields), retrying; not at all
//!    for a `Park` handle, and no longer for a `Spin` handle either: an
//!    executor thread must not spin.
//! 3. It announces itself exactly as a sleeper does ([`How`]): `Flag` sets the
//!    waiting bit and issues the heavy barrier, `Rmw` sets the bit, `Value`
//!    remembers the value to sleep on; then it retries once more.
//! 4. It registers `(address of the word, value expected, waker)` with the
//!    waiter thread and returns `Pending`. The waiter thread sleeps on every
//!    registered word at once with `futex_waitv` (Linux ≥ 5.16): the kernel
//!    compares each word with its expected value when the thread goes to
//!    sleep, so a publish that slipped in between the re-check and the
//!    registration (it changed the word: the publisher clears the waiting bit
//!    before it wakes) is seen at once — the "registered after the last wake"
//!    race, modelled with loom in `loom_tests`.
//! 5. A wake on a word, a changed word, or the end of a 20 ms liveness slice
//!    fires the registration: it is removed and its waker woken. The future's
//!    next `poll` retries; after a fired registration that still finds nothing
//!    it also asks whether the peer is gone (the same probe the blocking form
//!    runs after every 20 ms sleep), so a `SIGKILL`ed peer ends it with
//!    `Disconnected` / `OwnerDied` within one slice.
//!
//! The publisher's side is untouched: its fast path is one load of the word
//! after a compiler fence, and it makes a wake system call only when the bit
//! is set — which is now also set by futures.
//!
//! Cancel safety follows from the structure: every step that takes something
//! (an item, a slot, a permit, the lock) is one synchronous `try_` call inside
//! a single `poll`, never split across two; a dropped future only drops its
//! registration (removed under the shard's mutex, so no waker is left behind)
//! and may leave its waiting bit set, which costs the next publisher one
//! spurious wake call, exactly as a blocking sleeper that returned does.
//!
//! What this costs while waiting: nothing per future but one entry in the
//! waiter's table and one poll per 20 ms liveness slice.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::task::{Context, Poll};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::shm::WaitStrategy;
use crate::sync::futex;

mod pipe;
mod queue;
mod rings;
mod stream;
mod sync;
pub(crate) mod waiter;

/// How long the first poll of a wait spins, retrying, before it registers.
const SPIN_FOR: Duration = Duration::from_micros(20);

/// How a future announces itself on the word before it registers (the
/// `Sleep` of `crate::sync::wait`, for futures).
#[derive(Clone, Copy, Debug)]
pub(crate) enum How {
    /// Set this bit, heavy barrier, re-check; the waker publishes with a
    /// plain store and calls `futex::notify`.
    Flag(u32),
    /// Set this bit (a read-modify-write), re-check; the waker changes the
    /// word with a read-modify-write.
    Rmw(u32),
    /// Sleep while the word holds this value.
    Value(u32),
}

/// What a future needs from a handle to wait: the futex word, how to
/// announce itself on it, the handle's wait strategy, and a liveness probe.
pub(crate) struct Hook<'a> {
    /// Points into a mapping that outlives the hook: borrowed for `'a`, or
    /// kept alive by `gone` (see [`Hook::kept`]).
    word: NonNull<AtomicU32>,
    how: How,
    strategy: WaitStrategy,
    /// Whether the peer is gone; may make a system call.
    gone: Box<dyn FnMut() -> bool + Send + 'a>,
    _word: PhantomData<&'a AtomicU32>,
}

// SAFETY: `word` is a shared reference to an atomic in disguise (valid as the
// constructors require), and `AtomicU32` is `Sync`; `gone` is `Send`.
unsafe impl Send for Hook<'_> {}

impl<'a> Hook<'a> {
    /// A hook on a word borrowed for `'a`.
    pub(crate) fn new(
        strategy: WaitStrategy,
        word: &'a AtomicU32,
        how: How,
        gone: impl FnMut() -> bool + Send + 'a,
    ) -> Hook<'a> {
        Hook { word: NonNull::from(word), how, strategy, gone: Box::new(gone), _word: PhantomData }
    }

    /// A hook that keeps its word's mapping alive through `gone`.
    ///
    /// # Safety
    /// `word` must stay valid as long as `gone` lives (typically `gone` owns
    /// an `Arc` of the segment `word` lies in).
    pub(crate) unsafe fn kept(
        strategy: WaitStrategy,
        word: &AtomicU32,
        how: How,
        gone: impl FnMut() -> bool + Send + 'static,
    ) -> Hook<'static> {
        Hook { word: NonNull::from(word), how, strategy, gone: Box::new(gone), _word: PhantomData }
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: valid for as long as `self` lives, as the constructors
        // require (borrowed for `'a`, or kept alive by `self.gone`).
        unsafe { self.word.as_ref() }
    }
}

/// What an attempt is told.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    /// This future has announced itself on the word (set its bit) at least
    /// once: a lock taken now must keep the waiters bit for the others.
    pub announced: bool,
    /// The liveness probe just said the peer is gone: the attempt should
    /// drain what is left or return the "gone" error instead of `None`.
    pub gone: bool,
}

/// The per-future state of an async wait: whether it spun already, whether
/// it announced itself, and its registration with the waiter thread (dropped,
/// and so removed, with the future).
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    spun: bool,
    announced: bool,
    reg: Option<waiter::Registration>,
}

impl Waiter {
    /// A waiter that has not waited yet.
    pub(crate) fn new() -> Waiter {
        Waiter::default()
    }

    /// Forgets everything (the operation completed; a stream starts its next
    /// item afresh).
    fn reset(&mut self) {
        *self = Waiter::default();
    }

    /// Drives one operation: `attempt` is the non-blocking form (`None`:
    /// would block). Returns `Ready` with its result, or `Pending` with this
    /// task registered to be woken.
    pub(crate) fn poll_op<R>(
        &mut self,
        cx: &mut Context<'_>,
        hook: &mut Hook<'_>,
        mut attempt: impl FnMut(Step) -> Option<R>,
    ) -> Poll<R> {
        loop {
            if let Some(r) = attempt(Step { announced: self.announced, gone: false }) {
                self.reset();
                return Poll::Ready(r);
            }
            match self.poll_park(cx, hook, &mut attempt) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(r)) => {
                    self.reset();
                    return Poll::Ready(r);
                }
                Poll::Ready(None) => {
                    // The registration fired (a wake, or a liveness slice
                    // ended) and there is still nothing: is the peer gone?
                    if (hook.gone)() {
                        if let Some(r) = attempt(Step { announced: self.announced, gone: true }) {
                            self.reset();
                            return Poll::Ready(r);
                        }
                    }
                }
            }
        }
    }

    /// After an attempt that would block: `Pending` while a registration is
    /// outstanding (its waker refreshed), `Ready(None)` once it fired, else
    /// spins (first time), announces, re-checks and registers.
    fn poll_park<R>(
        &mut self,
        cx: &mut Context<'_>,
        hook: &Hook<'_>,
        attempt: &mut impl FnMut(Step) -> Option<R>,
    ) -> Poll<Option<R>> {
        if let Some(reg) = &self.reg {
            if reg.refresh(cx.waker()) {
                return Poll::Pending;
            }
            self.reg = None;
            return Poll::Ready(None);
        }
        if !self.spun {
            self.spun = true;
            if hook.strategy != WaitStrategy::Park {
                let start = Instant::now();
                let mut i = 0u32;
                loop {
                    core::hint::spin_loop();
                    if let Some(r) = attempt(Step { announced: self.announced, gone: false }) {
                        return Poll::Ready(Some(r));
                    }
                    i = i.wrapping_add(1);
                    if i % 32 == 0 && start.elapsed() >= SPIN_FOR {
                        break;
                    }
                }
            }
        }
        let word = hook.word();
        let expected = match hook.how {
            How::Flag(bit) | How::Rmw(bit) => {
                // Relaxed: as in `wait::park_once` — for `Flag` the heavy
                // barrier below orders this store before the re-check; for
                // `Rmw` the waker's RMW on the same word is ordered with it.
                let cur = word.fetch_or(bit, Ordering::Relaxed) | bit;
                self.announced = true;
                if matches!(hook.how, How::Flag(_)) {
                    futex::heavy_barrier();
                }
                cur
            }
            How::Value(v) => v,
        };
        if let Some(r) = attempt(Step { announced: self.announced, gone: false }) {
            return Poll::Ready(Some(r));
        }
        self.reg = Some(waiter::register(word, expected, cx.waker()));
        Poll::Pending
    }
}
