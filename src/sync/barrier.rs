//! [`Barrier`]: `n` parties wait until all have arrived (Python's
//! `multiprocessing.Barrier`); a party that dies while waiting breaks it.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-start-{}", std::process::id());
//! let start = ringshm::Barrier::create(&name, 3)?;   // the others: Barrier::open(&name)
//! // Three parties (threads here; processes alike): exactly one is the leader.
//! let leaders = std::thread::scope(|s| {
//!     let parties: Vec<_> = (0..3).map(|_| s.spawn(|| start.wait())).collect();
//!     parties.into_iter().map(|p| p.join().unwrap()).filter(|r| r.is_ok_and(|r| r.is_leader())).count()
//! });
//! assert_eq!(leaders, 1);
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! One 32-bit futex word:
//!
//! | bits    | name      | meaning                                              |
//! |---------|-----------|------------------------------------------------------|
//! | 0..=15  | count     | parties arrived in this generation (`< n`)           |
//! | 16      | `WAITING` | someone may sleep on the word                        |
//! | 17      | `BROKEN`  | aborted, timed out, or a waiting party died; sticky until `reset` |
//! | 18      | `RESET`   | the last generation change was a `reset`, not a completion |
//! | 19..=31 | gen       | generation, bumped by the last arrival (or `reset`)  |
//!
//! Before counting itself in, a party records `(k, gen)` in one of `n`
//! arrival slots, where `k` is its handle's owner slot: a kernel-held lock
//! byte (see [`crate::sync::owner`]) that is free once the handle's process
//! died, whatever happened to its pid since. Waiters scan the slots of their
//! generation every [`SCAN_EVERY`] and break the barrier if a recorded
//! party's owner slot has no live holder; a handle that reclaims a dead owner
//! slot breaks the generation the dead party was waiting in before it uses
//! the slot. A count read from the segment that is not below `n` also breaks
//! it, so a scribbled word never hangs anybody.
//!
//! | arrival slot (64 bits) | meaning                                   |
//! |------------------------|-------------------------------------------|
//! | low 32: `gen + 1`      | the generation the party arrived in       |
//! | high 32: `k`           | the party's owner slot (`NO_OWNER`: none) |

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
use crate::sync::wait::{self, Deadline, Waited};

const COUNT_MASK: u32 = 0xFFFF;
const WAITING: u32 = 1 << 16;
const BROKEN: u32 = 1 << 17;
const RESET: u32 = 1 << 18;
const GEN_SHIFT: u32 = 19;
/// Most parties a barrier can have.
pub const MAX_PARTIES: usize = COUNT_MASK as usize;
/// How often a waiter checks that the recorded parties still live.
const SCAN_EVERY: Duration = Duration::from_millis(50);
/// Owner slots of a barrier segment.
const OWNER_SLOTS: u32 = 1024;
/// An arrival recorded without an owner slot (all were taken): never dead.
const NO_OWNER: u32 = u32::MAX;

#[inline]
fn gen_of(c: u32) -> u32 {
    c >> GEN_SHIFT
}

#[repr(C)]
struct BarrierHead {
    /// The control word; any value is valid.
    ctl: Padded<AtomicU32>,
}
// SAFETY: `#[repr(C)]`, one atomic plus padding never read.
unsafe impl ShmSafe for BarrierHead {}

const HEAD: usize = core::mem::size_of::<BarrierHead>();

fn body_size(n: usize) -> usize {
    HEAD + 8 * n
}

pub use crate::error::BarrierError;

/// What a successful [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// `true` for exactly one party per generation: the last to arrive.
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// A named barrier for `n` parties.
///
/// # Memory ordering
/// Every party's writes before `wait` happen-before every party's return
/// from it (AcqRel read-modify-writes on the control word, Acquire loads by
/// the waiters).
///
/// # Across processes
/// Any process may open it by name. A party whose process dies while waiting
/// breaks the barrier within about 100 ms (neither pid reuse nor pid
/// namespaces can hide the death: liveness is a kernel-held lock): the others get
/// [`BarrierError::Broken`] instead of hanging. A party that never arrives at
/// all cannot be told from a slow one: use [`Barrier::wait_timeout`]. Up to
/// 1024 handles are tracked at once (each keeps an owner slot and one extra
/// file descriptor from its first `wait` until it is dropped); the death of a
/// party of a further handle is not noticed.
pub struct Barrier {
    head: NonNull<BarrierHead>,
    slots: NonNull<AtomicU64>,
    n: usize,
    wait: WaitStrategy,
    owners: Owners,
    seg: Segment,
}

// SAFETY: `head` and `slots` point into `seg`'s mapping, which lives as long
// as `self`; all shared state is atomics.
unsafe impl Send for Barrier {}
// SAFETY: as above.
unsafe impl Sync for Barrier {}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("name", &self.seg.name())
            .field("parties", &self.n)
            .field("waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// `Barrier::create` parameters: the number of parties.
impl SharedObject for Barrier {
    type Params<'a> = usize;
    const KIND: Kind = Kind::Barrier;

    fn shape(&n: &usize, _: &Options) -> Result<Shape> {
        if n == 0 || n > MAX_PARTIES {
            return Err(crate::Error::InvalidArgument {
                reason: format!("a barrier needs 1..={MAX_PARTIES} parties, not {n}"),
            });
        }
        Ok(Shape { capacity: n as u64, params: [n as u64, 0, 0, 0], body_size: body_size(n) })
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        let n = h.params[0];
        if n == 0 || n > MAX_PARTIES as u64 || h.capacity != n || h.params[1..] != [0; 3] {
            return Err(object::corrupted(name, format!("invalid barrier party count {n}")));
        }
        Ok(body_size(n as usize))
    }

    fn from_segment(seg: Segment, opts: &Options, _created: bool) -> Result<Self> {
        Ok(Self::new(seg, opts.wait))
    }
}

impl Barrier {
    fn new(seg: Segment, wait: WaitStrategy) -> Self {
        let n = seg.header().params[0] as usize;
        let head = NonNull::from(seg.body_at::<BarrierHead>(0));
        let slots = NonNull::from(&seg.body_at::<[AtomicU64; 1]>(HEAD)[0]);
        assert!(body_size(n) <= seg.body_len());
        // SAFETY: the descriptor is `seg`'s, open as long as `seg`, which the
        // barrier owns.
        let owners = unsafe { Owners::new(seg.fd(), OWNER_SLOTS) };
        Barrier { head, slots, n, wait, owners, seg }
    }

    fn ctl(&self) -> &AtomicU32 {
        // SAFETY: valid while `self.seg` lives.
        unsafe { &self.head.as_ref().ctl }
    }

    fn slots(&self) -> &[AtomicU64] {
        // SAFETY: `n` slots follow the head inside the body (asserted in
        // `new`), aligned for `AtomicU64`, valid while `self.seg` lives.
        unsafe { core::slice::from_raw_parts(self.slots.as_ptr(), self.n) }
    }

    /// Creates a barrier for `parties` parties.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for 0 or more than [`MAX_PARTIES`];
    /// [`crate::Error::InvalidName`], [`crate::Error::AlreadyExists`], ...
    pub fn create(name: &str, parties: usize) -> Result<Self> {
        Self::create_with(name, parties, &Options::new())
    }
    /// [`Barrier::create`] with options.
    pub fn create_with(name: &str, parties: usize, opts: &Options) -> Result<Self> {
        object::create(name, parties, opts)
    }
    /// Opens an existing barrier.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], [`crate::Error::WrongKind`], [`crate::Error::Corrupted`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }
    /// [`Barrier::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }
    /// Opens or creates (for `parties`), race-free.
    pub fn open_or_create(name: &str, parties: usize) -> Result<Self> {
        Self::open_or_create_with(name, parties, &Options::new())
    }
    /// [`Barrier::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, parties: usize, opts: &Options) -> Result<Self> {
        object::open_or_create(name, parties, opts)
    }

    /// Waits until all parties have arrived.
    ///
    /// # Errors
    /// [`BarrierError::Broken`] if the barrier is or becomes broken.
    pub fn wait(&self) -> std::result::Result<BarrierWaitResult, BarrierError> {
        self.wait_inner(Deadline::NEVER)
    }

    /// Waits at most `timeout`; on timeout the barrier breaks (as in Python).
    ///
    /// # Errors
    /// [`BarrierError::Timeout`] for this caller, [`BarrierError::Broken`].
    pub fn wait_timeout(&self, timeout: Duration) -> std::result::Result<BarrierWaitResult, BarrierError> {
        self.wait_inner(Deadline::after(timeout))
    }

    /// Records owner slot `me` in an arrival slot of generation `gen`.
    fn register(&self, gen: u32, me: u32) {
        let tag = u64::from(gen) + 1;
        for s in self.slots() {
            let cur = s.load(Ordering::Relaxed);
            if cur & 0xFFFF_FFFF == tag && (cur >> 32) as u32 == me {
                return; // already there (a retry)
            }
            // Relaxed: the slot is only read by liveness scans, which act
            // only through the control word.
            if cur & 0xFFFF_FFFF != tag
                && s.compare_exchange(cur, u64::from(me) << 32 | tag, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                return;
            }
        }
    }

    /// Whether a party recorded for `gen` has died.
    fn party_died(&self, gen: u32) -> bool {
        let tag = u64::from(gen) + 1;
        self.slots().iter().any(|s| {
            let v = s.load(Ordering::Relaxed);
            let k = (v >> 32) as u32;
            v & 0xFFFF_FFFF == tag && k != NO_OWNER && !self.owners.held(k)
        })
    }

    /// Our owner slot; a dead earlier holder of it that was waiting breaks
    /// its generation first.
    fn owner(&self) -> u32 {
        let scrub = |k: u32| {
            // Relaxed: a snapshot; `break_gen` acts only if still in that generation.
            let gen = gen_of(self.ctl().load(Ordering::Relaxed));
            let tag = u64::from(gen) + 1;
            let dead_waits = self.slots().iter().any(|s| {
                let v = s.load(Ordering::Relaxed);
                v & 0xFFFF_FFFF == tag && (v >> 32) as u32 == k
            });
            if dead_waits {
                self.break_gen(gen);
            }
        };
        self.owners.claim(scrub).unwrap_or(NO_OWNER)
    }

    /// Sets `BROKEN` if the barrier is still in generation `gen`.
    fn break_gen(&self, gen: u32) {
        let ctl = self.ctl();
        let mut c = ctl.load(Ordering::Relaxed);
        while gen_of(c) == gen && c & BROKEN == 0 {
            // AcqRel: pairs with the waiters' Acquire loads.
            match ctl.compare_exchange_weak(c, (c | BROKEN) & !WAITING, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    futex::wake_all(ctl);
                    return;
                }
                Err(now) => c = now,
            }
        }
    }

    fn outcome(c: u32, gen: u32) -> Option<std::result::Result<BarrierWaitResult, BarrierError>> {
        if gen_of(c) != gen {
            let completed = gen_of(c) == (gen + 1) & (u32::MAX >> GEN_SHIFT) && c & RESET == 0;
            Some(if completed { Ok(BarrierWaitResult { leader: false }) } else { Err(BarrierError::Broken) })
        } else if c & BROKEN != 0 {
            Some(Err(BarrierError::Broken))
        } else {
            None
        }
    }

    /// Arrives: `Ok(gen)` to wait for the last arrival of generation `gen`,
    /// or `Err` with the outcome already decided (we were last, or broken).
    fn arrive(&self) -> std::result::Result<u32, std::result::Result<BarrierWaitResult, BarrierError>> {
        let ctl = self.ctl();
        let me = self.owner();
        let n = self.n as u32;
        loop {
            // Acquire: pairs with the AcqRel CASes of earlier arrivals.
            let c = ctl.load(Ordering::Acquire);
            if c & BROKEN != 0 {
                return Err(Err(BarrierError::Broken));
            }
            let count = c & COUNT_MASK;
            let gen = gen_of(c);
            if count >= n {
                self.break_gen(gen); // scribbled: never wait on it
                return Err(Err(BarrierError::Broken));
            }
            self.register(gen, me);
            if count + 1 == n {
                let next = ((gen + 1) << GEN_SHIFT) & !(COUNT_MASK | WAITING | BROKEN | RESET);
                // AcqRel: Acquire pairs with the other arrivals' Release;
                // Release pairs with the waiters' Acquire loads.
                if ctl.compare_exchange(c, next, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    if c & WAITING != 0 {
                        futex::wake_all(ctl);
                    }
                    return Err(Ok(BarrierWaitResult { leader: true }));
                }
            } else if ctl.compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                // AcqRel as above.
                return Ok(gen);
            }
        }
    }

    fn wait_inner(&self, deadline: Deadline) -> std::result::Result<BarrierWaitResult, BarrierError> {
        let ctl = self.ctl();
        let gen = match self.arrive() {
            Ok(gen) => gen,
            Err(done) => return done,
        };
        // Wait for the last arrival.
        let mut last_scan = Instant::now();
        let r = wait::wait_until(
            self.wait,
            deadline,
            ctl,
            WAITING,
            // Acquire: pairs with the Release update of `ctl` by the last arrival
            // (or by `abort`/`break_gen`).
            || Self::outcome(ctl.load(Ordering::Acquire), gen),
            || {
                if last_scan.elapsed() >= SCAN_EVERY {
                    last_scan = Instant::now();
                    if self.party_died(gen) {
                        self.break_gen(gen);
                        return true;
                    }
                }
                false
            },
        );
        match r {
            Waited::Ready(r) => r,
            Waited::TimedOut => {
                self.break_gen(gen);
                // Acquire: as in the wait above.
                match Self::outcome(ctl.load(Ordering::Acquire), gen) {
                    Some(Ok(r)) => Ok(r),
                    _ => Err(BarrierError::Timeout),
                }
            }
            Waited::Gone => Self::outcome(ctl.load(Ordering::Acquire), gen).unwrap_or(Err(BarrierError::Broken)),
        }
    }

    /// Breaks the barrier: current and future waiters get
    /// [`BarrierError::Broken`] until [`Barrier::reset`].
    pub fn abort(&self) {
        let ctl = self.ctl();
        // AcqRel: pairs with the waiters' Acquire loads.
        if ctl.fetch_or(BROKEN, Ordering::AcqRel) & WAITING != 0 {
            futex::wake_all(ctl);
        }
    }

    /// Returns the barrier to its initial state; parties waiting now get
    /// [`BarrierError::Broken`].
    pub fn reset(&self) {
        let ctl = self.ctl();
        let mut c = ctl.load(Ordering::Relaxed);
        loop {
            let next = (((gen_of(c) + 1) << GEN_SHIFT) | RESET) & !(COUNT_MASK | WAITING | BROKEN);
            // AcqRel: pairs with the waiters' Acquire loads.
            match ctl.compare_exchange_weak(c, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    futex::wake_all(ctl);
                    return;
                }
                Err(now) => c = now,
            }
        }
    }

    /// Parties waiting now.
    pub fn n_waiting(&self) -> usize {
        ((self.ctl().load(Ordering::Relaxed) & COUNT_MASK) as usize).min(self.n)
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.n
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        // Acquire: pairs with the Release update that sets BROKEN.
        self.ctl().load(Ordering::Acquire) & BROKEN != 0
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }
}

#[cfg(feature = "async")]
impl Barrier {
    /// For `crate::asynch`: arrives (as `wait` does first); `Ok(gen)` to wait.
    pub(crate) fn async_arrive(
        &self,
    ) -> std::result::Result<u32, std::result::Result<BarrierWaitResult, BarrierError>> {
        self.arrive()
    }

    /// For `crate::asynch`: the outcome for a party of generation `gen`, if
    /// decided; with `gone`, the dead-party scan of the blocking form first.
    pub(crate) fn async_outcome(
        &self,
        gen: u32,
        gone: bool,
    ) -> Option<std::result::Result<BarrierWaitResult, BarrierError>> {
        if gone && self.party_died(gen) {
            self.break_gen(gen);
        }
        // Acquire: as in `wait_inner`.
        Self::outcome(self.ctl().load(Ordering::Acquire), gen)
    }

    /// For `crate::asynch`: a party of generation `gen` leaves before the
    /// end (its future was dropped): the generation breaks, as after a
    /// timed-out `wait_timeout`.
    pub(crate) fn async_abandon(&self, gen: u32) {
        self.break_gen(gen);
    }

    /// For `crate::asynch`: the word waiters sleep on; the dead-party scan
    /// runs after every wake and liveness slice.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'_> {
        crate::asynch::Hook::new(self.wait, self.ctl(), crate::asynch::How::Flag(WAITING), || true)
    }
}
