//! Counting semaphores: [`Semaphore`] and [`BoundedSemaphore`], with permits
//! of dead processes returned to the pool.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-ktv-rooms-{}", std::process::id());
//! let rooms = ringshm::Semaphore::create(&name, 4)?;   // others: Semaphore::open(&name)
//! rooms.acquire();
//! assert_eq!(rooms.value(), 3);
//! /* sing */
//! rooms.release();
//! assert_eq!(rooms.value(), 4);
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! The count lives in a 64-bit commit word with a record of the last
//! operation, and each handle has a ledger slot with the permits it holds
//! (net of its releases); see [`crate::sync::raw`] for the layout and for why
//! a `SIGKILL` at any instruction leaves count and ledger consistent.
//!
//! Ledger slot `k` belongs to whoever holds owner slot `k` of the segment, a
//! kernel-held lock byte (see [`crate::sync::owner`]):
//!
//! | owner byte `k`          | ledger slot `k`                                   |
//! |-------------------------|---------------------------------------------------|
//! | held by a live handle   | that handle's net permits                         |
//! | free, `held == 0`       | free                                              |
//! | free, `held != 0`       | left by a dead process: to be repaired            |
//! | held by a repairer      | being repaired: `count += max(held, 0)`, `held = 0` |
//!
//! A handle claiming slot `k` repairs it first. Waiters (and failing
//! `try_acquire`s, rate-limited) scan the ledger every [`REPAIR_EVERY`] and
//! repair slots with permits whose owner byte is free: they hold the byte
//! while they repair, so no claimer and no other repairer touches the slot
//! meanwhile. Neither pid nor tid reuse nor pid namespaces can make a dead
//! holder look alive. A handle that finds all [`LEDGER_SLOTS`] taken works
//! untracked: its permits are not returned if it dies.
//!
//! Sleepers wait on a separate 32-bit futex word with the `WAITING` bit of
//! [`crate::sync::wait`]; `release` publishes with the commit CAS and then
//! calls [`futex::notify`] (one Relaxed load when nobody sleeps).

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::primitive::Padded;
use crate::shm::header::{HeaderData, Kind};
use crate::shm::object::{self, Shape, SharedObject};
use crate::shm::segment::ShmSafe;
use crate::shm::{Options, Segment, WaitStrategy};
use crate::sync::futex;
use crate::sync::owner::Owners;
use crate::sync::raw::{self, Commit, LEDGER_SLOTS, MAX_COUNT, NO_SLOT};
use crate::sync::wait::{self, Deadline, Waited};

/// How often waiters look for dead processes' permits.
pub(crate) const REPAIR_EVERY: Duration = Duration::from_millis(50);
/// The sleepers' bit on the sleep word.
const WAITING: u32 = 1;

/// The shared body.
#[repr(C)]
pub(crate) struct SemBody {
    /// The commit word: count and last operation (see [`crate::sync::raw`]).
    commit: Padded<AtomicU64>,
    /// Sleepers' futex word (bit `WAITING`).
    sleep: Padded<AtomicU32>,
    /// Ledger: `held` (i32) and `applied` version per slot; slot `k` belongs
    /// to the holder of owner slot `k`.
    ledger: [AtomicU64; LEDGER_SLOTS],
}
// SAFETY: `#[repr(C)]`, only atomics (and padding never read).
unsafe impl ShmSafe for SemBody {}

const BODY: usize = core::mem::size_of::<SemBody>();

/// The core shared by both semaphore types.
struct Core {
    body: NonNull<SemBody>,
    wait: WaitStrategy,
    /// Release refuses to go above this (the initial value for bounded ones).
    max: u64,
    /// Our ledger slot is our owner slot.
    owners: Owners,
    /// Milliseconds since `born` of the last repair scan.
    last_repair: AtomicU64,
    born: Instant,
    seg: Segment,
}

// SAFETY: `body` points into `seg`'s mapping, owned alongside and mapped as
// long as `Core` lives; all shared state is atomics.
unsafe impl Send for Core {}
// SAFETY: as above.
unsafe impl Sync for Core {}

impl Core {
    fn new(seg: Segment, wait: WaitStrategy, bounded: bool) -> Self {
        let initial = seg.header().params[0];
        let body = NonNull::from(seg.body_at::<SemBody>(0));
        let max = if bounded { initial } else { MAX_COUNT };
        // SAFETY: the descriptor is `seg`'s, open as long as `seg`, which
        // `Core` owns.
        let owners = unsafe { Owners::new(seg.fd(), LEDGER_SLOTS as u32) };
        Core { body, wait, max, owners, last_repair: AtomicU64::new(0), born: Instant::now(), seg }
    }

    #[inline(always)]
    fn b(&self) -> &SemBody {
        // SAFETY: see the `Send` impl: valid while `self.seg` lives.
        unsafe { self.body.as_ref() }
    }

    fn init(seg: &Segment, value: u64) {
        let b = seg.body_at::<SemBody>(0);
        b.commit.store(raw::sem_initial(value), Ordering::Relaxed);
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        if h.capacity != LEDGER_SLOTS as u64 || h.params[0] > MAX_COUNT || h.params[1..] != [0; 3] {
            return Err(object::corrupted(name, "semaphore header has an invalid initial value or ledger size"));
        }
        Ok(BODY)
    }

    fn shape(value: usize) -> Result<Shape> {
        if value as u64 > MAX_COUNT {
            return Err(crate::Error::InvalidArgument {
                reason: format!("semaphore value {value} is larger than the maximum {MAX_COUNT}"),
            });
        }
        Ok(Shape { capacity: LEDGER_SLOTS as u64, params: [value as u64, 0, 0, 0], body_size: BODY })
    }

    /// This handle's ledger slot (claimed, and repaired, on first use), or
    /// `NO_SLOT` if every slot is taken.
    #[inline]
    fn my_slot(&self) -> u64 {
        match self.owners.mine() {
            Some(k) => u64::from(k),
            None => self.claim_slot(),
        }
    }

    #[cold]
    fn claim_slot(&self) -> u64 {
        let b = self.b();
        let returned = std::cell::Cell::new(0);
        // Repair what a dead earlier owner of the slot left before using it.
        let slot = self.owners.claim(|k| returned.set(raw::sem_repair(&b.commit, &b.ledger, k as usize, self.max)));
        if returned.get() > 0 {
            futex::notify(&b.sleep, WAITING);
        }
        slot.map_or(NO_SLOT, u64::from)
    }

    /// Returns the permits of every dead owner's slot; returns how many.
    fn repair_dead(&self) -> u64 {
        let b = self.b();
        // Acquire: pairs with the AcqRel commit CAS of the pending operation;
        // once applied, every dead slot's `held` is final.
        raw::sem_help(&b.commit, b.commit.load(Ordering::Acquire), &b.ledger);
        let mut returned = 0;
        for (k, slot) in b.ledger.iter().enumerate() {
            // Acquire: pairs with the Release CAS in `sem_help`.
            if raw::ledger_held(slot.load(Ordering::Acquire)) == 0 || self.owners.held(k as u32) {
                continue;
            }
            // Holding the dead slot's byte keeps claimers and other repairers out.
            returned +=
                self.owners.with_dead(k as u32, || raw::sem_repair(&b.commit, &b.ledger, k, self.max)).unwrap_or(0);
        }
        if returned > 0 {
            futex::notify(&b.sleep, WAITING);
        }
        returned
    }

    /// Repair scan, at most once per `REPAIR_EVERY` per handle.
    fn maybe_repair(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.last_repair.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= REPAIR_EVERY.as_millis() as u64)
            && self.last_repair.compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.repair_dead();
        }
    }

    #[inline]
    fn try_acquire(&self) -> bool {
        let b = self.b();
        raw::sem_try_acquire(&b.commit, &b.ledger, self.my_slot())
    }

    fn acquire_until(&self, deadline: Deadline) -> bool {
        if self.try_acquire() {
            return true;
        }
        let b = self.b();
        let me = self.my_slot();
        let r = wait::wait_until(
            self.wait,
            deadline,
            &b.sleep,
            WAITING,
            || raw::sem_try_acquire(&b.commit, &b.ledger, me).then_some(()),
            || {
                self.maybe_repair();
                false
            },
        );
        matches!(r, Waited::Ready(()))
    }

    #[inline]
    fn release(&self) -> std::result::Result<(), u64> {
        let b = self.b();
        raw::sem_release(&b.commit, &b.ledger, self.my_slot(), self.max)?;
        futex::notify(&b.sleep, WAITING);
        Ok(())
    }

    fn value(&self) -> usize {
        // Acquire: pairs with the AcqRel commit CASes.
        Commit::decode(self.b().commit.load(Ordering::Acquire)).count as usize
    }

    fn held_by_this_process(&self) -> isize {
        let s = self.my_slot();
        let b = self.b();
        match b.ledger.get(s as usize) {
            Some(w) => {
                // Acquire: pairs with the AcqRel commit CAS of the pending operation.
                raw::sem_help(&b.commit, b.commit.load(Ordering::Acquire), &b.ledger);
                raw::ledger_held(w.load(Ordering::Acquire)) as isize
            }
            None => 0,
        }
    }
}

macro_rules! sem_common {
    ($ty:ident, $kind:expr) => {
        /// `create` parameters: the initial number of permits.
        impl SharedObject for $ty {
            type Params<'a> = usize;
            const KIND: Kind = $kind;

            fn shape(&value: &usize, _: &Options) -> Result<Shape> {
                Core::shape(value)
            }

            fn check(name: &str, h: &HeaderData) -> Result<usize> {
                Core::check(name, h)
            }

            fn init(seg: &Segment, &value: &usize) {
                Core::init(seg, value as u64);
            }

            fn from_segment(seg: Segment, opts: &Options, _created: bool) -> Result<Self> {
                Ok($ty { core: Core::new(seg, opts.wait, $kind == Kind::BoundedSemaphore) })
            }
        }

        impl $ty {
            /// Creates a semaphore with `value` permits.
            ///
            /// # Errors
            /// [`crate::Error::InvalidArgument`] if `value` exceeds 4 194 303;
            /// [`crate::Error::InvalidName`], [`crate::Error::AlreadyExists`],
            /// [`crate::Error::NoSpace`], [`crate::Error::PermissionDenied`].
            pub fn create(name: &str, value: usize) -> Result<Self> {
                Self::create_with(name, value, &Options::new())
            }
            /// `create` with options (mode, persist, wait strategy).
            pub fn create_with(name: &str, value: usize, opts: &Options) -> Result<Self> {
                object::create(name, value, opts)
            }
            /// Opens an existing semaphore.
            ///
            /// # Errors
            /// [`crate::Error::NotFound`], [`crate::Error::WrongKind`],
            /// [`crate::Error::Corrupted`], [`crate::Error::VersionMismatch`].
            pub fn open(name: &str) -> Result<Self> {
                Self::open_with(name, &Options::new())
            }
            /// `open` with options (wait strategy).
            pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
                object::open(name, opts)
            }
            /// Opens the semaphore, or creates it with `value` permits; race-free.
            pub fn open_or_create(name: &str, value: usize) -> Result<Self> {
                Self::open_or_create_with(name, value, &Options::new())
            }
            /// `open_or_create` with options.
            pub fn open_or_create_with(name: &str, value: usize, opts: &Options) -> Result<Self> {
                object::open_or_create(name, value, opts)
            }

            /// Takes a permit, blocking while there is none.
            #[inline]
            pub fn acquire(&self) {
                self.core.acquire_until(Deadline::NEVER);
            }
            /// Takes a permit if one is available now.
            #[inline]
            pub fn try_acquire(&self) -> bool {
                self.core.try_acquire() || {
                    self.core.maybe_repair();
                    self.core.try_acquire()
                }
            }
            /// Takes a permit, blocking for at most `timeout`; `false` on timeout.
            pub fn acquire_timeout(&self, timeout: Duration) -> bool {
                self.core.acquire_until(Deadline::after(timeout))
            }
            /// Permits available now (Python's `get_value()`; a snapshot).
            pub fn value(&self) -> usize {
                self.core.value()
            }
            /// Net permits this handle holds (acquired minus released through
            /// it): what would be returned to the pool if its process died now.
            pub fn held_by_this_process(&self) -> isize {
                self.core.held_by_this_process()
            }
            /// Returns the permits of processes that died holding them, now
            /// (waiters do this on their own every 50 ms); returns how many.
            pub fn recover_dead(&self) -> usize {
                self.core.repair_dead() as usize
            }
            /// The segment name.
            pub fn name(&self) -> &str {
                self.core.seg.name()
            }
            /// For `crate::asynch`: the word acquirers sleep on, and the
            /// repair scan the blocking form runs after each sleep.
            #[cfg(feature = "async")]
            pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'_> {
                let b = self.core.b();
                crate::asynch::Hook::new(self.core.wait, &b.sleep, crate::asynch::How::Flag(WAITING), move || {
                    self.core.maybe_repair();
                    false
                })
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("name", &self.core.seg.name())
                    .field("value", &self.value())
                    .finish()
            }
        }
    };
}

/// A named counting semaphore (Python's `multiprocessing.Semaphore`).
///
/// # Memory ordering
/// A `release` synchronises-with the `acquire` that takes that permit
/// (Release/Acquire on the commit word).
///
/// # Across processes
/// Any process may open it by name. Each handle's net acquisitions are
/// recorded in a ledger slot in the segment, owned through a kernel-held lock;
/// when a process dies, waiters in other processes return its permits to the
/// pool within about 100 ms (a dead process's permits come back even if
/// another process had meant to release them on its behalf). Pid reuse and
/// pid namespaces cannot hide a death. Up to 128 handles are tracked at once;
/// further handles work untracked. `release` above 4 194 303 saturates.
pub struct Semaphore {
    core: Core,
}
sem_common!(Semaphore, Kind::Semaphore);

impl Semaphore {
    /// Returns a permit and wakes a waiter. The count saturates at
    /// 4 194 303.
    #[inline]
    pub fn release(&self) {
        let _ = self.core.release();
    }
}

/// A semaphore whose count may not be released above its initial value
/// (Python's `multiprocessing.BoundedSemaphore`).
///
/// # Memory ordering
/// As for [`Semaphore`].
///
/// # Across processes
/// As for [`Semaphore`]; permits of a dead process are returned, never above
/// the initial value.
pub struct BoundedSemaphore {
    core: Core,
}
sem_common!(BoundedSemaphore, Kind::BoundedSemaphore);

pub use crate::error::ReleaseError;

impl BoundedSemaphore {
    /// Returns a permit and wakes a waiter.
    ///
    /// # Errors
    /// [`ReleaseError`] if the count is already at its initial value.
    pub fn release(&self) -> std::result::Result<(), ReleaseError> {
        self.core.release().map_err(|_| ReleaseError { max: self.core.max as usize })
    }
}

// The body stays small and cache-line-pair aligned.
const _: () = assert!(BODY < 8192 && core::mem::align_of::<SemBody>() == 128);
