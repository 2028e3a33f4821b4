//! Counting semaphores: [`Semaphore`] and [`BoundedSemaphore`], with permits
//! of dead processes returned to the pool.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rooms = ringshm::Semaphore::create("ktv-rooms", 4)?;   // others: Semaphore::open("ktv-rooms")
//! rooms.acquire();
//! /* sing */
//! rooms.release();
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! The count lives in a 64-bit commit word with a record of the last
//! operation, and each process has a ledger slot with the permits it holds
//! (net of its releases); see [`crate::sync::raw`] for the layout and for why
//! a `SIGKILL` at any instruction leaves count and ledger consistent.
//!
//! | owner word           | meaning                                        |
//! |----------------------|------------------------------------------------|
//! | `0`                  | free slot (its `held` is 0)                    |
//! | `pid`                | slot of live process `pid` (start time beside it guards against pid reuse) |
//! | `REPAIRING \| pid`   | process `pid` is returning a dead process's permits; taken over if `pid` dies too |
//!
//! Waiters (and failing `try_acquire`s, rate-limited) scan the owner table
//! every [`REPAIR_EVERY`] and repair slots of processes that no longer exist:
//! `count += max(held, 0)`, `held = 0`, slot freed. A process that finds all
//! [`LEDGER_SLOTS`] taken works untracked: its permits are not returned if it
//! dies.
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
use crate::shm::lock::{current_pid, current_proc, ProcId};
use crate::shm::object::{self, Shape, SharedObject};
use crate::shm::segment::ShmSafe;
use crate::shm::{Options, Segment, WaitStrategy};
use crate::sync::futex;
use crate::sync::raw::{self, Commit, LEDGER_SLOTS, MAX_COUNT, NO_SLOT};
use crate::sync::wait::{self, Waited};

/// How often waiters look for dead processes' permits.
pub(crate) const REPAIR_EVERY: Duration = Duration::from_millis(50);
/// The sleepers' bit on the sleep word.
const WAITING: u32 = 1;
/// Owner word: a repair is in progress (low bits: the repairer's pid).
const REPAIRING: u32 = 1 << 31;

/// Who owns a ledger slot.
#[repr(C)]
pub(crate) struct Owner {
    /// 0, a pid, or `REPAIRING | pid`.
    pid: AtomicU32,
    _reserved: AtomicU32,
    /// Start time of `pid` (0 if not yet written).
    start: AtomicU64,
}
// SAFETY: `#[repr(C)]`, only atomics.
unsafe impl ShmSafe for Owner {}

/// The shared body.
#[repr(C)]
pub(crate) struct SemBody {
    /// The commit word: count and last operation (see [`crate::sync::raw`]).
    commit: Padded<AtomicU64>,
    /// Sleepers' futex word (bit `WAITING`).
    sleep: Padded<AtomicU32>,
    /// Ledger: `held` (i32) and `applied` version per slot.
    ledger: [AtomicU64; LEDGER_SLOTS],
    /// Owner of each ledger slot.
    owners: [Owner; LEDGER_SLOTS],
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
    /// `(pid << 32) | (slot + 1)` of this process's ledger slot, 0 if none yet.
    slot: AtomicU64,
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
        Core { body, wait, max, slot: AtomicU64::new(0), last_repair: AtomicU64::new(0), born: Instant::now(), seg }
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

    /// This process's ledger slot (claimed on first use), or `NO_SLOT`.
    #[inline]
    fn my_slot(&self) -> u64 {
        let pid = current_pid();
        let c = self.slot.load(Ordering::Relaxed);
        if (c >> 32) as u32 == pid && c & 0xFFFF_FFFF != 0 {
            return (c & 0xFFFF_FFFF) - 1;
        }
        self.claim_slot(pid)
    }

    #[cold]
    fn claim_slot(&self, pid: u32) -> u64 {
        let me = current_proc();
        let owners = &self.b().owners;
        for attempt in 0..2 {
            // A slot this process already has (through another handle).
            let mine = owners
                .iter()
                .position(|o| o.pid.load(Ordering::Acquire) == pid && o.start.load(Ordering::Relaxed) == me.start);
            let found = mine.or_else(|| {
                owners.iter().position(|o| {
                    // Acquire: pairs with the Release store of 0 that freed
                    // the slot after its repair (its `held` is 0 now).
                    o.pid.load(Ordering::Acquire) == 0
                        && o.pid.compare_exchange(0, pid, Ordering::Acquire, Ordering::Relaxed).is_ok()
                        && {
                            o.start.store(me.start, Ordering::Relaxed);
                            true
                        }
                })
            });
            if let Some(i) = found {
                self.slot.store(u64::from(pid) << 32 | (i as u64 + 1), Ordering::Relaxed);
                return i as u64;
            }
            if attempt == 0 {
                self.repair_dead();
            }
        }
        NO_SLOT
    }

    /// Returns the permits of every dead process's slot; returns how many.
    fn repair_dead(&self) -> u64 {
        let b = self.b();
        let me = current_pid();
        let mut returned = 0;
        for (i, o) in b.owners.iter().enumerate() {
            // Acquire: pairs with the Release claim of the ledger slot's owner.
            let cur = o.pid.load(Ordering::Acquire);
            if cur == 0 {
                continue;
            }
            let dead = if cur & REPAIRING != 0 {
                let r = cur & !REPAIRING;
                r != me && !ProcId { pid: r, start: 0 }.is_alive()
            } else {
                let start = o.start.load(Ordering::Relaxed);
                !ProcId { pid: cur, start }.is_alive()
            };
            // Acquire: pairs with the dead process's last Release on the
            // ledger (through `sem_help`).
            if !dead || o.pid.compare_exchange(cur, REPAIRING | me, Ordering::Acquire, Ordering::Relaxed).is_err() {
                continue;
            }
            returned += raw::sem_repair(&b.commit, &b.ledger, i, self.max);
            o.start.store(0, Ordering::Relaxed);
            // Release: pairs with the Acquire CAS in `claim_slot`: the next
            // owner sees the zeroed ledger entry.
            o.pid.store(0, Ordering::Release);
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

    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
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
                self.core.acquire_until(None);
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
                let d = wait::deadline(Some(timeout)).or(Some(crate::sync::lock::far_future()));
                self.core.acquire_until(d)
            }
            /// Permits available now (Python's `get_value()`; a snapshot).
            pub fn value(&self) -> usize {
                self.core.value()
            }
            /// Net permits this process holds (acquired minus released by it):
            /// what would be returned to the pool if it died now.
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
/// Any process may open it by name. Each process's net acquisitions are
/// recorded in a ledger slot in the segment; when a process dies, waiters in
/// other processes return its permits to the pool within about 100 ms
/// (a dead process's permits come back even if another process had meant to
/// release them on its behalf). Up to 128 processes are tracked at once;
/// further processes work untracked. `release` above 4 194 303 saturates.
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
