//! A bounded multi-producer multi-consumer ring in shared memory.
//!
//! ```
//! use ringshm::mpmc;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-mpmc-jobs-{}", std::process::id());
//! let q = mpmc::Ring::<[u8; 32]>::create(&name, 1024)?;
//! let tx = q.sender();                    // Clone + Send + Sync
//! let rx = mpmc::Ring::<[u8; 32]>::open(&name)?.receiver();   // any process
//! tx.send([7; 32])?;
//! assert_eq!(rx.recv()?, [7; 32]);
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! Vyukov's bounded MPMC queue (per-slot sequence numbers, free-running
//! `head`/`tail` positions; crossbeam-channel's `array` flavour is the same
//! algorithm), changed so that a process killed in the middle of an
//! operation can be recovered from *without guessing*: a slot is claimed by
//! a CAS on its own sequence word that writes the claimer's **owner tag**,
//! and only then is the shared position advanced (by the claimer, or by
//! anyone who finds the slot claimed — "helping", as in LCRQ).
//!
//! A slot's `seq` word is `b << 8 | tag`. For the slot of position `p`
//! (`p mod slots` is the slot index):
//!
//! | `seq`                  | state of position `p`                     | a sender at `p` | a receiver at `p` |
//! |------------------------|-------------------------------------------|-----------------|-------------------|
//! | `p << 8`               | `Free`: nothing sent to `p` yet           | claims it       | empty             |
//! | `p << 8 \| t` (t ≠ 0)  | `Writing`: sender `t` is writing it       | skips it        | waits for `t` (recovers it if `t` is dead) |
//! | `(p + 1) << 8`         | `Full`: holds the item of `p`             | skips it        | claims it         |
//! | `(p + 1) << 8 \| t`    | `Reading`: receiver `t` is reading it     | skips it        | skips it          |
//! | `(p + slots) << 8`     | read (or recovered); `Free` for the next lap | —            | —                 |
//!
//! Seen from position `p + slots` (one lap later), `Full` and `Writing` of
//! `p` mean the ring is full, and `Reading` of `p` makes the sender wait for
//! (or recover) that receiver. A word that fits no row for its slot, or a
//! lap that no history of legal steps reaches from the positions seen, is
//! corruption: it poisons the ring (every handle then sees
//! `Disconnected`, and [`Ring::open`] reports [`Error::Corrupted`]).
//! Contention never does: see `mpmc_core` for the bounds that hold.
//!
//! An owner tag (1..=254) names one process's registration on the ring, held
//! as a kernel OFD lock on the segment. A slot stuck in `Writing` or
//! `Reading` whose owner's lock is free belongs to a dead process: whoever
//! waits on it releases it at once (`CAS` to `Free` of the next lap,
//! counting one lost message in [`Ring::lost`]) and goes on. A slow but
//! live claimer is never robbed. Positions are below 2^56 (decades at 10^8
//! operations per second).
//!
//! The ring holds at most the capacity asked for (exactly, like Python's
//! `Queue(maxsize)`); the slot array is that rounded up to a power of two
//! (at least 2), and a sender refuses positions `capacity` or more ahead of
//! `head`.
//!
//! Each side (senders, receivers) has a control word (`src/ring/mod.rs`); a
//! queue [`Ring::close`]d by the user sets `SHUT` on the senders' word.

use core::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::mpmc_core::{self as alg, Blocked, Shared, POS_LIMIT, SHUT, UNKNOWN_TAG};
use super::{ring_capacity, side_attach, side_close, side_gen, side_gone, stored_capacity, PROBE_EVERY, WAITING};
use crate::error::{
    Error, RecvError, RecvTimeoutError, Result, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::shm::header::{ElemInfo, HeaderData, Kind};
use crate::shm::lock::{self, RoleLock};
use crate::shm::object::{self, Shape, SharedObject};
use crate::shm::{Options, Segment, WaitStrategy};
use crate::sync::futex;
use crate::sync::wait::{self, Waited};

/// Role slots: the senders' side, the receivers' side (shared locks), then
/// owner entries `ROLE_ENTRY0 + tag`.
const ROLE_SENDERS: u32 = 0;
const ROLE_RECEIVERS: u32 = 1;
const ROLE_ENTRY0: u32 = 2;
/// Largest owner tag handed out; `UNKNOWN_TAG` marks claims by handles the
/// kernel cannot track (caller-provided regions): never recovered.
const MAX_TAG: u8 = 254;
/// Largest item alignment supported: a segment's mapping is page-aligned.
pub(crate) const MAX_ALIGN: usize = 4096;
/// Layout of one slot: `seq` then the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotLayout {
    /// Bytes from a slot's start to its payload.
    pub payload_off: usize,
    /// Payload bytes.
    pub payload_len: usize,
    /// Bytes from one slot to the next.
    pub stride: usize,
    /// Alignment of the payload (at least 8).
    pub align: usize,
    /// Bytes of a kind-specific area after the slot array (128-aligned
    /// offset, see [`SlotLayout::extra_offset`]); 0 for plain rings.
    pub extra: usize,
}

impl SlotLayout {
    /// Slots for payloads of `len` bytes aligned to `align`.
    pub(crate) fn new(len: usize, align: usize) -> SlotLayout {
        let a = align.max(8);
        let payload_off = super::align_up(8, a);
        SlotLayout { payload_off, payload_len: len, stride: super::align_up(payload_off + len, a), align: a, extra: 0 }
    }

    /// Refuses alignments the segment cannot provide.
    pub(crate) fn check(&self) -> Result<()> {
        if self.align > MAX_ALIGN {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "items aligned to {} bytes are not supported: the largest alignment is {MAX_ALIGN} (the page size)",
                    self.align
                ),
            });
        }
        Ok(())
    }

    /// The same layout with `bytes` of kind-specific shared state after the
    /// slots (a `JoinableQueue`'s counters).
    pub(crate) fn with_extra(self, bytes: usize) -> SlotLayout {
        SlotLayout { extra: bytes, ..self }
    }

    /// Body offset of the extra area of a ring of `cap` slots.
    pub(crate) fn extra_offset(&self, cap: usize) -> usize {
        super::align_up(self.slots_offset() + cap * self.stride, 128)
    }

    /// Body offset of the slot array: slots start at an address aligned to
    /// the payload's alignment, given a mapping (or region) aligned to it
    /// (the body itself starts `HEADER_SIZE` bytes into the mapping).
    fn slots_offset(&self) -> usize {
        let hs = crate::shm::header::HEADER_SIZE;
        super::align_up(hs + core::mem::size_of::<Shared>(), self.align.max(128)) - hs
    }

    pub(crate) fn body_size(&self, cap: usize) -> usize {
        if self.extra == 0 {
            self.slots_offset() + cap * self.stride
        } else {
            self.extra_offset(cap) + self.extra
        }
    }
}

/// The `memfd` label of anonymous rings and queues (shown in
/// `/proc/PID/fd`).
pub(crate) const ANON_LABEL: &str = "ringshm-mpmc";

/// Per-process registration on one side (senders or receivers).
struct SideReg {
    count: usize,
    lock: Option<RoleLock>,
}

/// This process's owner tag and the lock that makes it visible.
struct Owner {
    pid: u32,
    tag: u8,
    _lock: Option<RoleLock>,
}

/// An untyped MPMC ring: the engine under [`Ring`] and the queues.
pub(crate) struct RawRing {
    /// Most items held at once (`<= cap`); the capacity the creator asked for.
    bound: u64,
    seg: Segment,
    /// `seg.body_at::<Shared>(0)`, checked once.
    shared: NonNull<Shared>,
    cap: u64,
    layout: SlotLayout,
    slots: NonNull<u8>,
    wait: WaitStrategy,
    senders: Mutex<SideReg>,
    receivers: Mutex<SideReg>,
    /// Owner tag of this process; re-taken in a forked child.
    owner_pid: AtomicU32,
    owner_tag: core::sync::atomic::AtomicU8,
    owners: Mutex<Vec<Owner>>,
    polls: AtomicU32,
}

// SAFETY: `slots` points into the mapping owned by `seg`, which lives as long
// as `self`; all shared state is atomics; the mutexes guard local state.
unsafe impl Send for RawRing {}
// SAFETY: as above.
unsafe impl Sync for RawRing {}

/// How long a `try_` form waits out a slot a live peer is still writing or
/// reading before it answers `Full`/`Empty` anyway: one liveness slice. A
/// live peer finishes its step within microseconds unless it is stopped
/// (`SIGSTOP`, a debugger) or the slot word was scribbled to name a live
/// owner; neither may turn a non-blocking call into an endless one.
pub(crate) const LINEAR_WAIT: std::time::Duration = crate::sync::wait::PARK_SLICE;

/// Whether a `try_` form may go on waiting out a `Busy` slot; starts the
/// clock at the first call (so the fast path never reads it).
#[cold]
fn linear_wait(since: &mut Option<std::time::Instant>) -> bool {
    since.get_or_insert_with(std::time::Instant::now).elapsed() < LINEAR_WAIT
}

impl RawRing {
    /// The shape of a new ring that holds at most `capacity` items laid out
    /// as `layout`, with kind-specific `params`.
    pub(crate) fn shape(capacity: usize, layout: SlotLayout, params: [u64; 4]) -> Result<Shape> {
        let cap = slot_count(capacity, layout)?;
        Ok(Shape { capacity: cap as u64, params: with_bound(params, capacity), body_size: layout.body_size(cap) })
    }

    /// Initialises the slots of a new ring (its header is written already).
    pub(crate) fn init(seg: &Segment, layout: SlotLayout) {
        init_slots(seg, seg.header().capacity as usize, layout);
    }

    /// Checks the capacity and bound of a stored ring header; returns its body size.
    pub(crate) fn check(name: &str, h: &HeaderData, layout: SlotLayout) -> Result<usize> {
        layout.check()?;
        let cap = stored_capacity(name, h.capacity, layout.stride)?;
        check_bound(name, h.params[BOUND_PARAM], cap as u64)?;
        if cap < 2 {
            return Err(Error::Corrupted { name: name.into(), reason: "an MPMC ring has at least 2 slots".into() });
        }
        Ok(layout.body_size(cap))
    }

    pub(crate) fn from_segment(seg: Segment, layout: SlotLayout, wait: WaitStrategy) -> Result<RawRing> {
        let cap = seg.header().capacity;
        check_bound(seg.name(), seg.header().params[BOUND_PARAM], cap)?;
        let off = layout.slots_offset();
        assert!(off + cap as usize * layout.stride <= seg.body_len());
        assert_eq!((seg.body_ptr().as_ptr() as usize + off) % layout.align, 0, "slots aligned (checked at create)");
        // SAFETY: the offset lies inside the body (asserted), which is mapped.
        let slots = unsafe { NonNull::new_unchecked(seg.body_ptr().as_ptr().add(off)) };
        let side = || Mutex::new(SideReg { count: 0, lock: None });
        let shared = NonNull::from(seg.body_at::<Shared>(0));
        let r = RawRing {
            bound: seg.header().params[BOUND_PARAM],
            seg,
            shared,
            cap,
            layout,
            slots,
            wait,
            senders: side(),
            receivers: side(),
            owner_pid: AtomicU32::new(0),
            owner_tag: core::sync::atomic::AtomicU8::new(0),
            owners: Mutex::new(Vec::new()),
            polls: AtomicU32::new(0),
        };
        let sh = r.shared();
        if (sh.send.load(Ordering::Relaxed) | sh.recv.load(Ordering::Relaxed)) & super::POISONED != 0 {
            return Err(Error::Corrupted {
                name: r.seg.name().into(),
                reason: "the ring was poisoned: its positions were found inconsistent".into(),
            });
        }
        let (t, h) = (sh.tail.load(Ordering::Relaxed), sh.head.load(Ordering::Relaxed));
        if t >= POS_LIMIT || h >= POS_LIMIT || t.wrapping_sub(h) > cap && h.wrapping_sub(t) > cap {
            return Err(Error::Corrupted {
                name: r.seg.name().into(),
                reason: format!("positions out of range (head {h}, tail {t})"),
            });
        }
        Ok(r)
    }

    #[inline]
    pub(crate) fn shared(&self) -> &Shared {
        alg::Mem::shared(self)
    }

    #[allow(dead_code)] // for the queues
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    /// How many items the ring holds at most (the capacity asked for).
    pub(crate) fn capacity(&self) -> usize {
        self.bound as usize
    }

    /// Number of slots (the capacity rounded up to a power of two, at least 2).
    pub(crate) fn slot_count(&self) -> usize {
        self.cap as usize
    }

    #[allow(dead_code)] // for the queues
    pub(crate) fn layout(&self) -> SlotLayout {
        self.layout
    }

    #[allow(dead_code)] // for the queues
    pub(crate) fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// The index of the slot of position `pos`.
    #[inline(always)]
    fn index(&self, pos: u64) -> usize {
        (pos & (self.cap - 1)) as usize
    }

    /// The start of slot `pos & (cap - 1)`.
    #[inline(always)]
    fn slot_ptr(&self, pos: u64) -> *mut u8 {
        let i = (pos & (self.cap - 1)) as usize;
        // SAFETY: `i < cap` (masked); slot `i` spans `stride` bytes at
        // `i * stride` inside the slot array (checked in `from_segment`).
        unsafe { self.slots.as_ptr().add(i * self.layout.stride) }
    }

    /// The payload of the slot for position `pos`.
    #[inline(always)]
    fn payload(&self, pos: u64) -> *mut u8 {
        // SAFETY: `payload_off + payload_len <= stride`, inside the slot.
        unsafe { self.slot_ptr(pos).add(self.layout.payload_off) }
    }

    /// Our owner tag, registering this process on first use (and again in a
    /// forked child, which must not share its parent's tag).
    #[inline]
    fn tag(&self) -> u8 {
        let me = lock::current_pid();
        // Acquire: pairs with the Release store in `register_owner`, so the
        // tag read next is the one registered for `me`.
        if self.owner_pid.load(Ordering::Acquire) == me {
            return self.owner_tag.load(Ordering::Relaxed);
        }
        self.register_owner(me)
    }

    #[cold]
    fn register_owner(&self, me: u32) -> u8 {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = owners.iter().find(|o| o.pid == me) {
            return o.tag;
        }
        // Entries of other pids are copies inherited through `fork`: closing
        // ours leaves the lock to the process that took it, so that its death
        // is still seen while we live.
        owners.clear();
        let mut got = (UNKNOWN_TAG, None);
        if self.seg.fd().is_some() {
            for tag in 1..=MAX_TAG {
                if let Ok(Some(l)) =
                    self.seg.take_role(ROLE_ENTRY0 + u32::from(tag), "owner entry", false).map_err(|_| ())
                {
                    got = (tag, Some(l));
                    break;
                }
            }
        }
        if got.1.is_some() {
            // The tag's lock was free, so whoever held it before is dead (or
            // gone with no claim in progress): slots still tagged with it are
            // a dead process's, and would look like ours from now on.
            for i in 0..self.cap {
                // Acquire: pairs with the Release stores of `seq` in `mpmc_core`.
                let s = alg::Mem::seq(self, i).load(Ordering::Acquire);
                if s & 0xff == u64::from(got.0) {
                    // A corrupt word poisons the ring; a slot that moved on
                    // needs nothing.
                    let _ = alg::release(self, s, i);
                }
            }
        }
        owners.push(Owner { pid: me, tag: got.0, _lock: got.1 });
        self.owner_tag.store(got.0, Ordering::Relaxed);
        // Release: pairs with the Acquire load in `tag`.
        self.owner_pid.store(me, Ordering::Release);
        got.0
    }

    /// Sends one payload written by `write` into the claimed slot. With
    /// `linear`, waits out `Busy` (a live receiver still reading the slot's
    /// previous item) for up to one liveness slice ([`LINEAR_WAIT`]), so that
    /// `Wait` means full; otherwise, or once that slice is spent (a peer
    /// stopped mid-operation, or a slot word scribbled to name a live owner),
    /// `Busy` is returned for the caller to map or wait out with its deadline.
    #[inline]
    pub(crate) fn try_send_with(&self, linear: bool, write: impl Fn(*mut u8)) -> core::result::Result<(), Blocked> {
        self.try_send_at(linear, |_, p| write(p))
    }

    /// [`RawRing::try_send_with`], also handing `write` the index of the
    /// claimed slot (`< slot_count()`).
    #[inline]
    pub(crate) fn try_send_at(
        &self,
        linear: bool,
        write: impl Fn(usize, *mut u8),
    ) -> core::result::Result<(), Blocked> {
        let mut since = None;
        loop {
            match alg::try_send(self, self.tag(), |pos| write(self.index(pos), self.payload(pos))) {
                Err(Blocked::Busy) if linear && linear_wait(&mut since) => std::thread::yield_now(),
                r => return r,
            }
        }
    }

    /// Receives one payload, handing the claimed slot to `read`. `linear`
    /// as for [`RawRing::try_send_with`]: with it, `Wait` means empty.
    #[inline]
    pub(crate) fn try_recv_with<R>(
        &self,
        linear: bool,
        read: impl Fn(*const u8) -> R,
    ) -> core::result::Result<R, Blocked> {
        self.try_recv_at(linear, |_, p| read(p))
    }

    /// [`RawRing::try_recv_with`], also handing `read` the index of the
    /// claimed slot (`< slot_count()`) and its payload as writable: the
    /// reader owns the slot until `read` returns.
    #[inline]
    pub(crate) fn try_recv_at<R>(
        &self,
        linear: bool,
        read: impl Fn(usize, *mut u8) -> R,
    ) -> core::result::Result<R, Blocked> {
        let mut since = None;
        loop {
            match alg::try_recv(self, self.tag(), |pos| read(self.index(pos), self.payload(pos))) {
                Err(Blocked::Busy) if linear && linear_wait(&mut since) => std::thread::yield_now(),
                r => return r,
            }
        }
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn claim_only(&self) -> bool {
        self.claim_only_with(|_, _| {})
    }

    /// Claims a slot, lets `write` fill part of it, and never publishes it
    /// (a sender killed in the middle of its write, for `crate::testing`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn claim_only_with(&self, write: impl FnOnce(usize, *mut u8)) -> bool {
        let Ok(pos) = alg::claim_send(self, self.tag()) else { return false };
        write(self.index(pos), self.payload(pos));
        true
    }

    /// The payload addresses of all slots (for `crate::testing`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn payload_addresses(&self) -> Vec<usize> {
        (0..self.cap).map(|i| self.payload(i) as usize).collect()
    }

    /// Items in the ring (a snapshot; claimed-but-unfinished slots count).
    pub(crate) fn len(&self) -> usize {
        let sh = self.shared();
        // Relaxed: a snapshot for `len`; nothing is read through it.
        let h = sh.head.load(Ordering::Relaxed);
        let t = sh.tail.load(Ordering::Relaxed);
        t.saturating_sub(h).min(self.bound) as usize
    }

    /// Messages lost with dead processes so far.
    pub(crate) fn lost(&self) -> u64 {
        self.shared().lost.load(Ordering::Relaxed)
    }

    /// Shuts sending down for good (see [`Ring::close`]).
    pub(crate) fn close(&self) {
        let sh = self.shared();
        // Release: pairs with the Acquire in `side_gone_fast` (receivers drain
        // what was sent before).
        sh.send.fetch_or(SHUT, Ordering::Release);
        futex::wake_all(&sh.send);
        futex::wake_all(&sh.recv);
    }

    /// Whether `close` was called.
    pub(crate) fn is_closed(&self) -> bool {
        // Acquire: pairs with the Release `fetch_or` in `close`.
        self.shared().send.load(Ordering::Acquire) & SHUT != 0
    }

    fn side(&self, sending: bool) -> (&Mutex<SideReg>, u32, &AtomicU32, &AtomicU32, &'static str) {
        let sh = self.shared();
        if sending {
            (&self.senders, ROLE_SENDERS, &sh.send, &sh.recv, "sender")
        } else {
            (&self.receivers, ROLE_RECEIVERS, &sh.recv, &sh.send, "receiver")
        }
    }

    /// Counts one more handle of a side in this process (taking the side's
    /// shared lock for the first). Shared locks never conflict with each
    /// other; should the kernel refuse one anyway, the side still works, only
    /// without death detection for this process's handles.
    pub(crate) fn join(&self, sending: bool) {
        let (reg, role, word, _, name) = self.side(sending);
        let mut r = reg.lock().unwrap_or_else(|e| e.into_inner());
        if r.count == 0 {
            r.lock = self.seg.take_role(role, name, true).ok().flatten();
            side_attach(word);
        }
        r.count += 1;
    }

    /// Counts one handle of a side less; the last one in the last process
    /// closes the side and wakes the other.
    pub(crate) fn leave(&self, sending: bool) {
        let (reg, role, word, other, _) = self.side(sending);
        let mut r = reg.lock().unwrap_or_else(|e| e.into_inner());
        r.count -= 1;
        if r.count > 0 {
            return;
        }
        let gen = side_gen(word);
        // In a caller-provided region the kernel cannot tell whether other
        // processes still hold the side: never close it from here.
        let last = r.lock.take().is_some() && self.seg.role_held(role) == Some(false);
        if last {
            side_close(word, gen);
            futex::notify(other, WAITING);
        }
    }

    /// Whether the other side (receivers when `sending`) is gone. Probes the
    /// kernel every `PROBE_EVERY` calls unless `force`.
    pub(crate) fn peer_gone(&self, sending: bool, force: bool) -> bool {
        let (_, _, _, other, _) = self.side(sending);
        let role = if sending { ROLE_RECEIVERS } else { ROLE_SENDERS };
        // Acquire: pairs with the Release `fetch_or` in `close`: what was sent
        // before it is visible to the drain that follows.
        if !sending && other.load(Ordering::Acquire) & SHUT != 0 {
            return true;
        }
        side_gone(
            other,
            || force || self.polls.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == 0,
            || self.seg.role_held(role) != Some(false),
        )
    }

    /// Whether sending is over: shut by `close`, receivers closed, or poisoned.
    #[inline]
    pub(crate) fn send_shut(&self) -> bool {
        let sh = self.shared();
        // Relaxed: a hint on the fast path; blocking paths confirm with Acquire.
        sh.send.load(Ordering::Relaxed) & (SHUT | super::POISONED) != 0
            || sh.recv.load(Ordering::Relaxed) & (super::POISONED | super::CLOSED) != 0
    }

    /// Blocks until `attempt` succeeds, the deadline passes or the peer side
    /// is gone. Stuck slots of dead owners are recovered while waiting.
    pub(crate) fn block<R>(
        &self,
        sending: bool,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Waited<R> {
        let (_, _, word, _, _) = self.side(sending);
        wait::wait_until(self.wait, deadline, word, WAITING, &mut attempt, || {
            self.recover_stuck(sending);
            self.peer_gone(sending, true)
        })
    }

    /// Looks at the slot a sender (or receiver) is stuck on and recovers it if
    /// its owner died.
    fn recover_stuck(&self, sending: bool) {
        let sh = self.shared();
        let pos = if sending { sh.tail.load(Ordering::Relaxed) } else { sh.head.load(Ordering::Relaxed) };
        if pos >= POS_LIMIT {
            return;
        }
        // Acquire: pairs with the Release stores of `seq` in `mpmc_core`.
        let s = alg::Mem::seq(self, pos).load(Ordering::Acquire);
        if s & 0xff != 0 {
            // A corrupt word poisons the ring, which the waiter sees next.
            let _ = alg::recover_now(self, s, pos);
        }
    }
}

impl alg::Mem for RawRing {
    #[inline(always)]
    fn shared(&self) -> &Shared {
        // SAFETY: checked by `body_at` in `from_segment`; the mapping lives as
        // long as `self.seg`, and `Shared` is `ShmSafe`.
        unsafe { self.shared.as_ref() }
    }
    #[inline(always)]
    fn cap(&self) -> u64 {
        self.cap
    }
    #[inline(always)]
    fn seq(&self, pos: u64) -> &AtomicU64 {
        // SAFETY: a slot's first 8 bytes are an 8-aligned `AtomicU64` (stride
        // and base are multiples of 8) that accepts any bit pattern, inside
        // the mapping `self` owns.
        unsafe { &*self.slot_ptr(pos).cast::<AtomicU64>() }
    }
    fn owner_dead(&self, tag: u8) -> bool {
        if tag == 0 || tag > MAX_TAG {
            return false;
        }
        self.seg.role_held(ROLE_ENTRY0 + u32::from(tag)) == Some(false)
    }
    #[inline(always)]
    fn bound(&self) -> u64 {
        self.bound
    }
}

/// Header parameter that records the capacity asked for (0: the slot count).
const BOUND_PARAM: usize = 3;

fn with_bound(mut params: [u64; 4], capacity: usize) -> [u64; 4] {
    debug_assert_eq!(params[BOUND_PARAM], 0, "params[3] is the ring's bound");
    params[BOUND_PARAM] = capacity as u64;
    params
}

/// The number of slots for a ring of `capacity` items: a power of two, at
/// least 2 (so that a write claim and a read claim of a slot differ).
///
/// # Errors
/// [`Error::InvalidArgument`] for capacity 0, a too large capacity, or an
/// alignment above [`MAX_ALIGN`].
pub(crate) fn slot_count(capacity: usize, layout: SlotLayout) -> Result<usize> {
    layout.check()?;
    Ok(ring_capacity(capacity, layout.stride)?.max(2))
}

/// Checks the bound (the capacity asked for) stored in a header against
/// the slot count.
fn check_bound(name: &str, bound: u64, cap: u64) -> Result<()> {
    if bound == 0 || bound > cap {
        return Err(Error::Corrupted {
            name: name.into(),
            reason: format!("stored capacity {bound} is not between 1 and the {cap} slots"),
        });
    }
    Ok(())
}

fn init_slots(seg: &Segment, cap: usize, layout: SlotLayout) {
    let off = layout.slots_offset();
    for i in 0..cap {
        let seq: &AtomicU64 = seg.body_at(off + i * layout.stride);
        seq.store((i as u64) << 8, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Typed public API.

/// A named MPMC ring of `T`. Get any number of [`Sender`]s and [`Receiver`]s,
/// in any processes.
///
/// # Memory ordering
/// A send *happens before* the receive that takes its item: the sender
/// publishes the slot with a `Release` store of its sequence word, the
/// receiver claims it after an `Acquire` load (as crossbeam-channel), so
/// everything the sender wrote before `send` is visible after `recv`.
/// Freeing a slot is `Release` and a sender's claim `Acquire`, so a
/// receiver's read is done before the slot is overwritten. The `try_`
/// forms are linearizable: `Empty` means no item was sent and not yet
/// taken at some instant during the call, `Full` that `capacity` items were
/// in the ring. The one exception is a peer stalled in the middle of its
/// step for longer than one liveness slice (20 ms: stopped with `SIGSTOP`,
/// or a slot word scribbled to name a live owner): a `try_` call does not
/// wait longer than that, and answers `Empty`/`Full`.
///
/// # Across processes
/// Every process that knows the name can [`Ring::open`] it. Receivers see
/// `Disconnected` once the ring is empty and every sender in every process is
/// gone (dropped, or its process died — the kernel tells); senders see it
/// once every receiver is gone. A process killed in the middle of a send or a
/// receive holds one slot; the next handle that meets it releases it at once
/// and counts the message in [`Ring::lost`]. Items with any alignment up to
/// the page size (4096) are supported; larger ones are refused with
/// [`Error::InvalidArgument`].
pub struct Ring<T> {
    raw: Arc<RawRing>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Ring<T> {
    fn clone(&self) -> Self {
        Ring { raw: self.raw.clone(), _t: PhantomData }
    }
}

impl<T> core::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("mpmc::Ring").field("name", &self.raw.seg.name()).field("capacity", &self.raw.cap).finish()
    }
}

/// A kind made of one MPMC ring of `Elem` slots (`mpmc::Ring`, `Queue`,
/// `JoinableQueue`): all it says is its kind, its slot layout and how to
/// wrap the ring; the lifecycle is the same for all of them.
pub(crate) trait TypedRing: Sized {
    /// The kind stored in the header.
    const KIND: Kind;
    /// The element type.
    type Elem: Pod;
    /// Slots and extra area.
    fn layout() -> SlotLayout;
    /// The handle on a validated ring; `created`: this call created it.
    fn from_raw(raw: RawRing, created: bool) -> Self;
}

impl<R: TypedRing> SharedObject for R {
    type Params<'a> = usize;
    const KIND: Kind = <R as TypedRing>::KIND;

    fn elem() -> Option<ElemInfo> {
        Some(ElemInfo::of::<R::Elem>())
    }

    fn shape(capacity: &usize, _: &Options) -> Result<Shape> {
        RawRing::shape(*capacity, R::layout(), [0; 4])
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        RawRing::check(name, h, R::layout())
    }

    fn init(seg: &Segment, _: &usize) {
        RawRing::init(seg, R::layout());
    }

    fn from_segment(seg: Segment, opts: &Options, created: bool) -> Result<Self> {
        Ok(R::from_raw(RawRing::from_segment(seg, R::layout(), opts.wait)?, created))
    }
}

impl<T: Pod> TypedRing for Ring<T> {
    const KIND: Kind = Kind::MpmcRing;
    type Elem = T;

    fn layout() -> SlotLayout {
        Self::layout()
    }

    fn from_raw(raw: RawRing, _created: bool) -> Self {
        Self::from_raw(raw)
    }
}

impl<T: Pod> Ring<T> {
    /// The slot layout of a ring of `T`.
    pub(crate) fn layout() -> SlotLayout {
        SlotLayout::new(core::mem::size_of::<T>(), core::mem::align_of::<T>())
    }

    /// The typed ring over `raw`.
    pub(crate) fn from_raw(raw: RawRing) -> Self {
        Ring { raw: Arc::new(raw), _t: PhantomData }
    }

    /// The untyped ring underneath (for the queues).
    pub(crate) fn raw(&self) -> &Arc<RawRing> {
        &self.raw
    }

    /// Creates a ring that holds at most `capacity` items (exactly, like
    /// Python's `Queue(maxsize)`).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`], [`Error::InvalidArgument`],
    /// [`Error::NoSpace`], [`Error::PermissionDenied`].
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// [`Ring::create`] with options.
    ///
    /// # Errors
    /// As [`Ring::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::create(name, capacity, opts)
    }

    /// Opens an existing ring, checking kind, element type and size. Waits
    /// while its creator is still initialising it.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::WrongKind`], [`Error::LayoutMismatch`],
    /// [`Error::VersionMismatch`], [`Error::Corrupted`], [`Error::PermissionDenied`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`Ring::open`] with options.
    ///
    /// # Errors
    /// As [`Ring::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }

    /// Opens the ring, or creates it if it does not exist; race-free.
    ///
    /// # Errors
    /// As [`Ring::create`] and [`Ring::open`].
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Ring::open_or_create`] with options.
    ///
    /// # Errors
    /// As [`Ring::open_or_create`].
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::open_or_create(name, capacity, opts)
    }

    /// An unnamed ring for this process and the children it forks.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`], [`Error::NoSpace`], [`Error::Io`].
    pub fn anonymous(capacity: usize) -> Result<Self> {
        object::anonymous(ANON_LABEL, capacity, &Options::new())
    }

    /// A new sending handle.
    pub fn sender(&self) -> Sender<T> {
        self.raw.join(true);
        Sender { raw: self.raw.clone(), _t: PhantomData }
    }

    /// A new receiving handle.
    pub fn receiver(&self) -> Receiver<T> {
        self.raw.join(false);
        Receiver { raw: self.raw.clone(), _t: PhantomData }
    }

    /// The capacity in items: the most the ring holds, as asked for at create.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full now.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Messages lost so far because a process died holding their slot (in
    /// the middle of a send or a receive).
    pub fn lost(&self) -> u64 {
        self.raw.lost()
    }

    /// Ends sending for everyone: sends fail with `Disconnected`, receivers
    /// drain what is left and then see `Disconnected`. Cannot be undone.
    pub fn close(&self) {
        self.raw.close()
    }

    /// Whether [`Ring::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.raw.is_closed()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.raw.seg.name()
    }

    /// Bytes a caller-provided region needs for a ring of `capacity` items.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for capacity 0 or too large.
    pub fn region_size(capacity: usize) -> Result<usize> {
        object::region_size::<Self>(&capacity)
    }

    /// Initialises a ring in memory the caller mapped (memfd, hugepages,
    /// another crate's mapping), with the same header as a named one.
    ///
    /// Without a named segment the kernel cannot track handles: receivers
    /// see `Disconnected` only after [`Ring::close`], and slots of dead
    /// processes are not recovered.
    ///
    /// # Safety
    /// `region` is valid for reads and writes, 128-byte aligned, at least
    /// [`Ring::region_size`] bytes, stays mapped as long as the ring or any
    /// handle of it lives, and is not accessed other than through ringshm.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the region is too small or misaligned.
    pub unsafe fn init_in(region: NonNull<[u8]>, capacity: usize) -> Result<Self> {
        check_region_align(region, Self::layout())?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { object::init_in(region, capacity) }
    }

    /// Attaches to a ring that [`Ring::init_in`] set up in shared memory,
    /// with the same checks as [`Ring::open`].
    ///
    /// # Safety
    /// As for [`Ring::init_in`].
    ///
    /// # Errors
    /// [`Error::Corrupted`], [`Error::WrongKind`], [`Error::LayoutMismatch`], ...
    pub unsafe fn attach_in(region: NonNull<[u8]>) -> Result<Self> {
        check_region_align(region, Self::layout())?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { object::attach_in(region) }
    }
}

/// A caller-provided region must be aligned for the slots.
fn check_region_align(region: NonNull<[u8]>, layout: SlotLayout) -> Result<()> {
    let addr = region.cast::<u8>().as_ptr() as usize;
    let need = layout.align.max(128);
    if addr % need != 0 {
        return Err(Error::InvalidArgument {
            reason: format!("region at {addr:#x} is not aligned to {need} bytes (the ring's item alignment)"),
        });
    }
    Ok(())
}

/// A sending handle: `Clone + Send + Sync`, usable from many threads and,
/// after `fork`, from the child.
///
/// # Memory ordering
/// Everything the sending thread wrote before a successful send is visible
/// to the thread that receives the item (`Release` publish, `Acquire`
/// claim; see [`Ring`]). A send that finds the ring full and sleeps is woken
/// by the receiver that frees a slot (futex on the senders' control word,
/// with a full barrier between "I sleep" and the last look at the ring).
///
/// # Across processes
/// A sender's process counts on the senders' side through a kernel lock: if
/// it dies, receivers see it gone without its help. A sender killed between
/// claiming a slot and publishing it costs that one item, recovered by the
/// next handle that meets the slot and counted in [`Ring::lost`].
pub struct Sender<T> {
    raw: Arc<RawRing>,
    _t: PhantomData<fn(T)>,
}

/// A receiving handle: `Clone + Send + Sync`.
///
/// # Memory ordering
/// A received item's sender *happens before* the receive (see [`Ring`]).
/// `try_recv` is linearizable: it answers `Empty` only if no item was in the
/// ring at some instant during the call; a head slot still being written by
/// a live sender is waited for (with backoff, for up to one 20 ms liveness
/// slice), not reported as empty.
///
/// # Across processes
/// `Disconnected` comes only after the ring is drained: once every sender
/// in every process is gone, one more attempt goes through the slots of
/// dead senders (recovering them) to any item published behind them, so a
/// receiver never reports `Disconnected` while a published item is in the
/// ring.
pub struct Receiver<T> {
    raw: Arc<RawRing>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.raw.join(true);
        Sender { raw: self.raw.clone(), _t: PhantomData }
    }
}
impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.raw.join(false);
        Receiver { raw: self.raw.clone(), _t: PhantomData }
    }
}
impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.raw.leave(true);
    }
}
impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.raw.leave(false);
    }
}
impl<T> core::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("mpmc::Sender").field("name", &self.raw.seg.name()).finish()
    }
}
impl<T> core::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("mpmc::Receiver").field("name", &self.raw.seg.name()).finish()
    }
}

/// Writes `v` as the payload of a slot laid out by `Ring::<T>::layout`.
#[inline(always)]
fn write_item<T: Pod>(v: T) -> impl FnOnce(*mut u8) {
    move |p| {
        // SAFETY: `try_send_with` hands us the payload of a slot this sender
        // claimed exclusively; it is aligned for `T` and `size_of::<T>()`
        // bytes long (`SlotLayout::new(size_of::<T>(), align_of::<T>())`).
        unsafe { p.cast::<T>().write(v) }
    }
}

/// Reads the payload of a slot laid out by `Ring::<T>::layout`.
#[inline(always)]
fn read_item<T: Pod>(p: *const u8) -> T {
    // SAFETY: `try_recv_with` hands us the payload of a published slot this
    // receiver claimed; aligned for `T`, `size_of::<T>()` bytes, and `T: Pod`
    // accepts any bytes a hostile writer may have left there.
    unsafe { p.cast::<T>().read() }
}

impl<T: Pod> Sender<T> {
    /// Sends `v` if there is room.
    ///
    /// # Errors
    /// [`TrySendError::Full`], or [`TrySendError::Disconnected`] if the ring
    /// was closed, every receiver is gone, or the ring is poisoned.
    #[inline]
    pub fn try_send(&self, v: T) -> core::result::Result<(), TrySendError<T>> {
        self.try_send_then(v, true, || {})
    }

    /// [`Sender::try_send`], running `on_claim` once a slot is ours (before
    /// the item is published). Without `linear`, `Full` also stands for
    /// "the slot is busy" (see [`RawRing::try_send_with`]).
    #[inline]
    fn try_send_then(&self, v: T, linear: bool, on_claim: impl Fn()) -> core::result::Result<(), TrySendError<T>> {
        if self.raw.send_shut() {
            return Err(TrySendError::Disconnected(v));
        }
        let write = |p| {
            on_claim();
            write_item(v)(p)
        };
        match self.raw.try_send_with(linear, write) {
            Ok(()) => Ok(()),
            Err(Blocked::Busy) => Err(TrySendError::Full(v)),
            Err(Blocked::Wait) if !self.raw.peer_gone(true, false) => Err(TrySendError::Full(v)),
            Err(_) => Err(TrySendError::Disconnected(v)),
        }
    }

    /// Sends `v`: once (`deadline` `None`), or waiting until the deadline
    /// (`Some(None)`: forever); `on_claim` runs when a slot is ours, before
    /// the item is published (the queues count tasks there).
    /// `Timeout` stands for "full" when the attempt was a single one.
    pub(crate) fn send_then(
        &self,
        v: T,
        deadline: Option<Option<Instant>>,
        on_claim: impl Fn(),
    ) -> core::result::Result<(), SendTimeoutError<T>> {
        match self.try_send_then(v, deadline.is_none(), &on_claim) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(v)) => return Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Full(v)) if deadline.is_none() => return Err(SendTimeoutError::Timeout(v)),
            Err(TrySendError::Full(_)) => {}
        }
        let out = self.raw.block(true, deadline.flatten(), || match self.try_send_then(v, false, &on_claim) {
            Ok(()) => Some(Ok(())),
            Err(TrySendError::Full(_)) => None,
            Err(TrySendError::Disconnected(v)) => Some(Err(SendTimeoutError::Disconnected(v))),
        });
        match out {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(SendTimeoutError::Timeout(v)),
            Waited::Gone => Err(SendTimeoutError::Disconnected(v)),
        }
    }

    /// Sends `v`, waiting while the ring is full.
    ///
    /// # Errors
    /// [`SendError`] holding `v` if the ring was closed or every receiver is gone.
    pub fn send(&self, v: T) -> core::result::Result<(), SendError<T>> {
        self.send_deadline(v, None).map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `v`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`],
    /// holding `v`.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> core::result::Result<(), SendTimeoutError<T>> {
        self.send_deadline(v, wait::deadline(Some(timeout)))
    }

    fn send_deadline(&self, v: T, deadline: Option<Instant>) -> core::result::Result<(), SendTimeoutError<T>> {
        self.send_then(v, Some(deadline), || {})
    }

    /// Sends items from `items` in order until the ring is full; returns how
    /// many were sent.
    pub fn send_many(&self, items: &[T]) -> usize {
        items.iter().take_while(|v| self.try_send(**v).is_ok()).count()
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full now.
    pub fn is_full(&self) -> bool {
        self.len() == self.raw.capacity()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// Whether every receiver is gone (asks the kernel).
    pub fn is_disconnected(&self) -> bool {
        self.raw.send_shut() || self.raw.peer_gone(true, true)
    }

    /// Claims the next slot and never publishes it, as a process killed in
    /// the middle of `send` would (for `crate::testing` and unit tests).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn claim_only(&self) -> bool {
        self.raw.claim_only()
    }
}

impl<T: Pod> Receiver<T> {
    /// Takes the oldest item if there is one.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once the ring
    /// is empty and every sender is gone (or it was closed).
    #[inline]
    pub fn try_recv(&self) -> core::result::Result<T, TryRecvError> {
        self.attempt(true)
    }

    /// One receive; without `linear`, `Empty` also stands for "the head
    /// slot is busy" (see [`RawRing::try_recv_with`]).
    #[inline]
    fn attempt(&self, linear: bool) -> core::result::Result<T, TryRecvError> {
        match self.raw.try_recv_with(linear, read_item::<T>) {
            Ok(v) => Ok(v),
            Err(Blocked::Busy) => Err(TryRecvError::Empty),
            Err(Blocked::Wait) => self.empty_or_gone(false),
            Err(Blocked::Corrupt) => Err(TryRecvError::Disconnected),
        }
    }

    #[cold]
    fn empty_or_gone(&self, force: bool) -> core::result::Result<T, TryRecvError> {
        if !self.raw.peer_gone(false, force) {
            return Err(TryRecvError::Empty);
        }
        // Gone: every item that will ever be published has been (a send's
        // Release precedes CLOSED; a dead sender publishes nothing more).
        // One more attempt takes the next one: it goes through the claims of
        // dead senders (recovering them) and stops only at a slot nobody
        // wrote, so `Disconnected` means nothing published is left.
        self.raw.try_recv_with(true, read_item::<T>).map_err(|_| TryRecvError::Disconnected)
    }

    /// Takes the oldest item, waiting while the ring is empty.
    ///
    /// # Errors
    /// [`RecvError`] once the ring is empty and every sender is gone.
    pub fn recv(&self) -> core::result::Result<T, RecvError> {
        self.recv_deadline(None).map_err(|_| RecvError)
    }

    /// Takes the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Disconnected`].
    pub fn recv_timeout(&self, timeout: Duration) -> core::result::Result<T, RecvTimeoutError> {
        self.recv_deadline(wait::deadline(Some(timeout)))
    }

    fn recv_deadline(&self, deadline: Option<Instant>) -> core::result::Result<T, RecvTimeoutError> {
        match self.attempt(false) {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        let out = self.raw.block(false, deadline, || match self.attempt(false) {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
        });
        match out {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(RecvTimeoutError::Timeout),
            Waited::Gone => self.empty_or_gone(true).map_err(|_| RecvTimeoutError::Disconnected),
        }
    }

    /// Takes available items into `out` in order; returns how many.
    pub fn recv_many(&self, out: &mut [T]) -> usize {
        let mut n = 0;
        while n < out.len() {
            match self.raw.try_recv_with(false, read_item::<T>) {
                Ok(v) => out[n] = v,
                Err(_) => break,
            }
            n += 1;
        }
        n
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full now.
    pub fn is_full(&self) -> bool {
        self.len() == self.raw.capacity()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// Messages lost so far with processes that died holding a slot.
    pub fn lost(&self) -> u64 {
        self.raw.lost()
    }

    /// Whether every sender is gone (asks the kernel).
    pub fn is_disconnected(&self) -> bool {
        self.raw.peer_gone(false, true)
    }
}

impl<T: Pod> Receiver<T> {
    /// A blocking iterator over received items: each `next` is a
    /// [`Receiver::recv`]; it ends once the ring is empty and every sender
    /// is gone (or it was closed).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-mpmc-iter-{}", std::process::id());
    /// let q = ringshm::mpmc::Ring::<u32>::create(&name, 4)?;
    /// let (tx, rx) = (q.sender(), q.receiver());
    /// tx.send(1)?;
    /// tx.send(2)?;
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: each `next` is a [`Receiver::try_recv`]; it
    /// ends at the first `Empty` or `Disconnected`.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

/// Blocking iterator over a [`Receiver`] (from [`Receiver::iter`]).
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Non-blocking iterator over a [`Receiver`] (from [`Receiver::try_iter`]).
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Blocking iterator that owns its [`Receiver`] (from `IntoIterator`).
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T: Pod> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T: Pod> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T: Pod> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T: Pod> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: Pod> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<T> core::fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("mpmc::Iter").field("rx", self.rx).finish()
    }
}
impl<T> core::fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("mpmc::TryIter").field("rx", self.rx).finish()
    }
}
impl<T> core::fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("mpmc::IntoIter").field("rx", &self.rx).finish()
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl RawRing {
    /// For `crate::asynch`: the word a sender (`sending`) or receiver sleeps
    /// on, and the probe the blocking form runs after each sleep.
    pub(crate) fn async_hook(&self, sending: bool) -> crate::asynch::Hook<'_> {
        let (_, _, word, _, _) = self.side(sending);
        crate::asynch::Hook::new(self.wait, word, crate::asynch::How::Flag(WAITING), move || {
            self.recover_stuck(sending);
            self.peer_gone(sending, true)
        })
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<T> Sender<T> {
    /// For `crate::asynch`.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'_> {
        self.raw.async_hook(true)
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<T> Receiver<T> {
    /// For `crate::asynch`.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'_> {
        self.raw.async_hook(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spsc;

    fn name(t: &str) -> String {
        format!("ringshm-ut-mpmc-{t}-{}", std::process::id())
    }

    #[test]
    fn fifo_and_wrap() {
        let q = Ring::<u32>::create(&name("fifo"), 4).unwrap();
        assert_eq!(q.capacity(), 4);
        let tx = q.sender();
        let rx = q.receiver();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let mut next = 0;
        let mut expect = 0;
        for round in 0..50 {
            for _ in 0..(round % 6) {
                if tx.try_send(next).is_ok() {
                    next += 1;
                }
            }
            while let Ok(v) = rx.try_recv() {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        assert_eq!(next, expect);
        assert_eq!(tx.send_many(&[1, 2, 3, 4, 5]), 4);
        assert!(q.is_full());
        assert!(tx.try_send(9).unwrap_err().is_full());
        let mut out = [0; 8];
        assert_eq!(rx.recv_many(&mut out), 4);
        assert_eq!(&out[..4], &[1, 2, 3, 4]);
        assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
        let tx2 = tx.clone();
        drop(tx);
        tx2.send(7).unwrap();
        drop(tx2);
        assert_eq!(rx.recv(), Ok(7));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(q.lost(), 0);
    }

    #[test]
    fn region_ring() {
        let size = Ring::<u64>::region_size(4).unwrap();
        let layout = std::alloc::Layout::from_size_align(size, 128).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { std::alloc::alloc(layout) };
        let region = NonNull::slice_from_raw_parts(NonNull::new(p).unwrap(), size);
        {
            // SAFETY: the allocation is large, aligned, and outlives the rings.
            let a = unsafe { Ring::<u64>::init_in(region, 4) }.unwrap();
            // SAFETY: as above.
            let b = unsafe { Ring::<u64>::attach_in(region) }.unwrap();
            // SAFETY: as above.
            assert!(matches!(unsafe { spsc::Ring::<u64>::attach_in(region) }, Err(Error::WrongKind { .. })));
            let tx = a.sender();
            let rx = b.receiver();
            tx.send(5).unwrap();
            assert_eq!(rx.recv(), Ok(5));
            drop(tx);
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "no close without kernel tracking");
            a.close();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        }
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(p, layout) };
    }

    #[test]
    fn dead_owner_claim_in_impossible_state_poisons() {
        // Found by fuzz/open_queue_file: slot 1 holding position 0 with an
        // owner tag is neither a write nor a read claim of that slot;
        // releasing it computed `0 - 1` (a panic in debug builds).
        let q = Ring::<u64>::create(&name("badclaim"), 4).unwrap();
        let (tx, rx) = (q.sender(), q.receiver());
        tx.send(1).unwrap();
        assert_eq!(rx.recv(), Ok(1));
        // Tag 7 is held by nobody, so its owner counts as dead.
        alg::Mem::seq(&**q.raw(), 1).store(7, Ordering::Relaxed);
        assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Disconnected));
        assert!(tx.try_send(2).unwrap_err().is_disconnected());
        assert_eq!(q.lost(), 0);
    }

    #[test]
    fn close_drains_then_disconnects() {
        let q = Ring::<u64>::create(&name("close"), 8).unwrap();
        let tx = q.sender();
        let rx = q.receiver();
        tx.send(1).unwrap();
        q.close();
        assert!(tx.try_send(2).unwrap_err().is_disconnected());
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn threads_count_every_message() {
        let q = Ring::<u64>::create(&name("mt"), 64).unwrap();
        let per = 20_000u64;
        std::thread::scope(|s| {
            for p in 0..2u64 {
                let tx = q.sender();
                s.spawn(move || {
                    for i in 0..per {
                        tx.send(p << 32 | i).unwrap();
                    }
                });
            }
            let mut hs = Vec::new();
            for _ in 0..2 {
                let rx = q.receiver();
                hs.push(s.spawn(move || {
                    let mut last = [None::<u64>; 2];
                    let mut got = Vec::new();
                    while let Ok(v) = rx.recv() {
                        let p = (v >> 32) as usize;
                        assert!(last[p].is_none_or(|l| l < (v & 0xffff_ffff)), "per-producer order");
                        last[p] = Some(v & 0xffff_ffff);
                        got.push(v);
                    }
                    got
                }));
            }
            let mut all: Vec<u64> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
            all.sort_unstable();
            let want: Vec<u64> = (0..2u64).flat_map(|p| (0..per).map(move |i| p << 32 | i)).collect();
            assert_eq!(all, want);
        });
    }
}
