//! [`Event`]: a flag that processes wait on (Python's `multiprocessing.Event`).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-green-light-{}", std::process::id());
//! let green = ringshm::Event::create(&name)?;   // cars: Event::open(&name)
//! std::thread::scope(|s| {
//!     let car = s.spawn(|| green.wait_timeout(std::time::Duration::from_secs(30)));
//!     green.set();      // every waiter, in every process, wakes
//!     assert!(car.join().unwrap());
//! });
//! green.clear();
//! assert!(!green.is_set());
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! One 32-bit futex word: `SET`, `WAITING` and a generation counter (see the
//! table in [`crate::sync::raw`]). Waiters go through
//! [`crate::sync::wait::wait_until`], which sets `WAITING` and re-checks
//! before sleeping; `set` is one CAS on the same word, so either the waiter's
//! re-check sees the flag or `set` sees `WAITING` and wakes everybody — a
//! wake-up cannot be lost (modelled with loom in `raw`). A waiter also returns
//! when the generation moved, so a `set` immediately followed by `clear`
//! still releases everybody who was waiting.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::primitive::Padded;
use crate::shm::header::Kind;
use crate::shm::object::{self, fixed_object};
use crate::shm::segment::ShmSafe;
use crate::shm::{Options, Segment, WaitStrategy};
use crate::sync::futex;
use crate::sync::raw::{self, EV_WAITING};
use crate::sync::wait::{self, Waited};

#[repr(C)]
struct EventBody {
    /// The event word; any value is valid.
    word: Padded<AtomicU32>,
}
// SAFETY: `#[repr(C)]`, one atomic plus padding never read.
unsafe impl ShmSafe for EventBody {}

const BODY: usize = core::mem::size_of::<EventBody>();

fixed_object!(Event, Kind::Event, BODY, |seg, opts| Self::new(seg, opts.wait));

/// A named event: a boolean flag with `set`, `clear`, `is_set` and `wait`.
///
/// # Memory ordering
/// `set` is a Release operation and a waiter that returns because of it (or
/// `is_set` returning `true`) performs an Acquire: writes made before `set`
/// are visible after `wait`.
///
/// # Across processes
/// Any process may open it by name; `set` wakes every waiter of every
/// process. Waiters sleep in bounded slices, so even a scribbled word cannot
/// make one miss a later `set` for more than 20 ms.
pub struct Event {
    word: NonNull<AtomicU32>,
    wait: WaitStrategy,
    seg: Segment,
}

// SAFETY: `word` points into `seg`'s mapping, which lives as long as `self`;
// it is an atomic.
unsafe impl Send for Event {}
// SAFETY: as above.
unsafe impl Sync for Event {}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("name", &self.seg.name()).field("set", &self.is_set()).finish()
    }
}

impl Event {
    fn new(seg: Segment, wait: WaitStrategy) -> Self {
        let word = NonNull::from(&*seg.body_at::<EventBody>(0).word);
        Event { word, wait, seg }
    }

    #[inline(always)]
    fn w(&self) -> &AtomicU32 {
        // SAFETY: valid while `self.seg` lives (see the `Send` impl).
        unsafe { self.word.as_ref() }
    }

    /// Creates an event, initially clear.
    ///
    /// # Errors
    /// [`crate::Error::InvalidName`], [`crate::Error::AlreadyExists`],
    /// [`crate::Error::NoSpace`], [`crate::Error::PermissionDenied`].
    pub fn create(name: &str) -> Result<Self> {
        Self::create_with(name, &Options::new())
    }
    /// [`Event::create`] with options.
    pub fn create_with(name: &str, opts: &Options) -> Result<Self> {
        object::create(name, (), opts)
    }
    /// Opens an existing event.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], [`crate::Error::WrongKind`], [`crate::Error::Corrupted`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }
    /// [`Event::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }
    /// Opens or creates, race-free.
    pub fn open_or_create(name: &str) -> Result<Self> {
        Self::open_or_create_with(name, &Options::new())
    }
    /// [`Event::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, opts: &Options) -> Result<Self> {
        object::open_or_create(name, (), opts)
    }

    /// Sets the flag and wakes every waiter.
    #[inline]
    pub fn set(&self) {
        if raw::event_set(self.w()) {
            futex::wake_all(self.w());
        }
    }

    /// Clears the flag.
    #[inline]
    pub fn clear(&self) {
        raw::event_clear(self.w());
    }

    /// Whether the flag is set.
    #[inline]
    pub fn is_set(&self) -> bool {
        // Acquire: pairs with the AcqRel CAS in `raw::event_set`.
        self.w().load(Ordering::Acquire) & raw::EV_SET != 0
    }

    /// Blocks until the flag is set (returns at once if it is).
    pub fn wait(&self) {
        self.wait_inner(wait::Deadline::NEVER);
    }

    /// Blocks until the flag is set or `timeout` passes; returns whether it
    /// was set (Python's `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_inner(wait::Deadline::after(timeout))
    }

    fn wait_inner(&self, deadline: wait::Deadline) -> bool {
        let w = self.w();
        let start = w.load(Ordering::Relaxed);
        let r =
            wait::wait_until(self.wait, deadline, w, EV_WAITING, || raw::event_ready(w, start).then_some(()), || false);
        matches!(r, Waited::Ready(()))
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }
}

#[cfg(feature = "async")]
impl Event {
    /// For `crate::asynch`: the word waiters sleep on, and whether a `set`
    /// happened since this call (the blocking form's readiness test).
    pub(crate) fn async_parts(&self) -> (crate::asynch::Hook<'_>, impl Fn() -> bool + Send + '_) {
        let w = self.w();
        // Relaxed: as in `wait_inner`.
        let start = w.load(Ordering::Relaxed);
        (crate::asynch::Hook::new(self.wait, w, crate::asynch::How::Flag(EV_WAITING), || false), move || {
            raw::event_ready(w, start)
        })
    }
}
