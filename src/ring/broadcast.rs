//! Publish/subscribe across processes: one publisher, and every subscriber
//! sees every message.
//!
//! ```
//! use ringshm::broadcast;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let name = format!("doc-bcast-{}", std::process::id());
//! let topic = broadcast::Ring::<[u8; 16]>::create(&name, 64)?;   // lossless
//! let mut a = topic.subscribe()?;
//! let mut b = broadcast::Ring::<[u8; 16]>::open(&name)?.subscribe()?;
//! let mut tx = topic.publisher()?;
//! tx.send(*b"EURUSD 1.0841 ..")?;
//! assert_eq!(&a.recv()?[..6], b"EURUSD");
//! assert_eq!(&b.recv()?[..6], b"EURUSD");
//! assert_eq!(tx.subscribers(), 2);
//! # Ok(()) }
//! ```
//!
//! Across processes, each process opens the ring by name; a subscriber in
//! another process sees the publisher's messages, and `Disconnected` once the
//! publisher has gone (dropped, or killed) and it has read everything:
//!
//! ```
//! use ringshm::broadcast;
//! use std::process::Command;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! if let Ok(name) = std::env::var("RINGSHM_DOC_BCAST_CHILD") {
//!     let mut rx = broadcast::Ring::<u64>::open(&name)?.subscribe()?;
//!     let ready = ringshm::Event::open(&format!("{name}-ready"))?;
//!     ready.set();
//!     let mut sum = 0;
//!     while let Ok(v) = rx.recv() {
//!         sum += v;
//!     }
//!     assert_eq!(sum, 999 * 1000 / 2);
//!     return Ok(());
//! }
//! let name = format!("doc-bcast-x-{}", std::process::id());
//! let topic = broadcast::Ring::<u64>::create(&name, 128)?;
//! let ready = ringshm::Event::create(&format!("{name}-ready"))?;
//! let mut tx = topic.publisher()?;
//! let mut child = Command::new(std::env::current_exe()?).env("RINGSHM_DOC_BCAST_CHILD", &name).spawn()?;
//! assert!(ready.wait_timeout(std::time::Duration::from_secs(30)));
//! for i in 0..1000 {
//!     tx.send(i)?; // waits for the subscriber when 128 messages are unread
//! }
//! drop(tx); // the subscriber drains, then sees Disconnected
//! assert!(child.wait()?.success());
//! # Ok(()) }
//! ```
//!
//! # Modes
//!
//! * **Lossless** (the default): the publisher waits ([`TrySendError::Full`])
//!   for the slowest *live* subscriber. A subscriber that is dropped leaves
//!   the table at once; one whose process dies is detached by the publisher
//!   within one liveness slice (20 ms) of its wait, so a dead reader never
//!   stalls it for longer.
//! * **Overwrite** (`Options::new().overwrite(true)`): sending never waits. A
//!   subscriber that falls a whole lap behind skips to the oldest message
//!   still held, and [`Subscriber::missed`] counts exactly what it skipped.
//!
//! The mode is stored in the segment; opening with the other mode is
//! [`Error::LayoutMismatch`], as is opening with another element type.
//!
//! # Implementation details
//!
//! The ring is `capacity` slots; message `p` (positions count from 0) goes
//! into slot `p % capacity`. Each slot is a 64-bit *sequence word* followed
//! by the payload, stored as 64-bit words. The publisher keeps `tail` (the
//! count of messages published); each subscriber keeps its own position and
//! a lazily published copy of it, its *cursor*, in its entry of a table of
//! [`MAX_SUBSCRIBERS`] entries.
//!
//! A slot's sequence word, seen by a subscriber that wants position `p`:
//!
//! | sequence word `s`     | meaning                                              | the subscriber           |
//! |-----------------------|------------------------------------------------------|--------------------------|
//! | `0`                   | never written                                        | empty                    |
//! | `2q + 1` (odd)        | message `q` is being written                         | `q <= p`: empty; `q > p`: lapped |
//! | `2q + 2` (even)       | message `q` is complete                              | `q < p`: empty; `q == p`: read it; `q > p`: lapped |
//!
//! **Publishing** message `p`: store `2p + 1`, a Release fence, the payload
//! words (Relaxed atomic stores), then `2p + 2` with Release, then `tail = p + 1`
//! with Release, then wake sleeping subscribers if their waiting bit is set.
//! No read-modify-write, no system call. In lossless mode the publisher first
//! checks a *cached copy of the slowest cursor*; only when that copy says
//! full does it re-read the table (`refresh`).
//!
//! **Receiving** is a seqlock read per slot: load `s` (Acquire); if it is
//! `2p + 2`, copy the payload with Relaxed atomic loads into a local value,
//! an Acquire fence, and load `s` again: unchanged means the copy is whole;
//! anything else means the publisher started overwriting the slot during
//! the copy, and the copy is thrown away. A reference into a slot is never
//! handed out. In overwrite mode, *lapped* means: skip to
//! `max(p + 1, tail - capacity)` and count the skipped positions in
//! `missed`; in lossless mode it cannot happen to a live subscriber and
//! means the segment was scribbled on (the ring is poisoned).
//!
//! A subscriber stores its cursor every `capacity / 4` messages (at most
//! 1024), before it sleeps, and whenever it sees the publisher's waiting bit.
//!
//! **Joining**: a subscriber takes a free entry's liveness lock, stores
//! `cursor = tail` and marks the entry active, issues a SeqCst fence, reads
//! `tail` again and starts there. The publisher's `refresh` begins with a
//! SeqCst fence too, so either the scan sees the new entry, or the new
//! subscriber's second read of `tail` sees everything published before the
//! scan; either way the publisher never overwrites a message the new
//! subscriber is due to read. A cursor found below `tail - capacity` (a
//! subscriber that joined after the last scan) counts as `tail - capacity`.
//!
//! **Liveness**: the publisher holds role lock 0 and subscriber entry `i`
//! holds role lock `1 + i` (OFD locks, see `src/shm/lock.rs`); the kernel
//! drops them when the process dies. A waiting lossless publisher asks the
//! kernel about the subscribers that hold it back once per liveness slice
//! and detaches the dead ones (a compare-and-swap of the entry's state with
//! its generation, so a subscriber that joined since is never detached).
//! Subscribers find a dead publisher the same way and report `Disconnected`
//! after draining; a new process may take the publisher role over and goes
//! on from `tail`.
//!
//! # Memory ordering
//!
//! The even sequence word is stored with Release and loaded with Acquire:
//! whoever reads message `p` sees its payload. The odd store, the Release
//! fence after it and the Acquire fence before the re-check make a torn
//! copy detectable (Boehm's seqlock with fences). A subscriber's cursor is
//! stored with Release after its slot reads and loaded with Acquire by the
//! publisher before it reuses those slots. `tail` is stored with Release
//! after the slots it covers. Sleep and wake-up use the waiting-bit
//! handshake of `src/sync/futex.rs` (the sleeper pays the heavy barrier).
//!
//! # Across processes
//!
//! Any process that knows the name can [`Ring::open`] it and subscribe, or
//! take the publisher role. The segment is never trusted: `tail`, cursors,
//! sequence words and table entries are range-checked when read; an
//! inconsistency poisons the ring (`Disconnected` on both sides,
//! [`Error::Corrupted`] on `open`) and never panics, reads out of bounds or
//! hangs.

use core::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;

use super::broadcast_core::{self as core_, Corrupt, Entry, PubCore, Shared, SubCore, View, ACTIVE};
use super::{
    probe_due, ring_capacity, side_attach, side_close, side_gen, side_gone, stored_capacity, POISONED, WAITING,
};
use crate::error::{
    Error, RecvError, RecvTimeoutError, Result, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::primitive::{AtomicU64, Ordering, Padded};
use crate::shm::header::{ElemInfo, HeaderData, Kind};
use crate::shm::lock::RoleLock;
use crate::shm::object::{self, Shape, SharedObject};
use crate::shm::{Options, Segment, WaitStrategy};
use crate::sync::futex;
use crate::sync::wait::{self, Waited};

/// The most subscribers a ring has at once; subscribing past it is
/// [`Error::RoleTaken`] (role `"subscriber (all 64 places are in use)"`).
pub const MAX_SUBSCRIBERS: usize = 64;

/// Role (lock slot) of the publisher; subscriber entry `i` is role `1 + i`.
const ROLE_PUBLISHER: u32 = 0;
/// `header.params[0]`: 0 lossless, 1 overwrite.
const PARAM_MODE: usize = 0;
/// `header.params[1]`: the table size, [`MAX_SUBSCRIBERS`].
const PARAM_TABLE: usize = 1;

/// Body layout: control block, subscriber table, slots.
const ENTRIES_OFFSET: usize = core::mem::size_of::<Shared>();
pub(crate) const SLOTS_OFFSET: usize = ENTRIES_OFFSET + MAX_SUBSCRIBERS * core::mem::size_of::<Padded<Entry>>();
const _: () = assert!(SLOTS_OFFSET % 128 == 0);

struct Inner {
    seg: Segment,
    shared: NonNull<Shared>,
    entries: NonNull<[Padded<Entry>; MAX_SUBSCRIBERS]>,
    slots: NonNull<AtomicU64>,
    cap: usize,
    stride: usize,
    overwrite: bool,
    wait: WaitStrategy,
}

// SAFETY: the pointers point into the mapping owned by `seg`, which lives as
// long as `Inner`; everything they point to is atomics.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

impl Inner {
    fn new(seg: Segment, cap: usize, stride: usize, overwrite: bool, wait: WaitStrategy) -> Inner {
        let shared = NonNull::from(seg.body_at::<Shared>(0));
        let entries = NonNull::from(seg.body_at::<[Padded<Entry>; MAX_SUBSCRIBERS]>(ENTRIES_OFFSET));
        assert!(SLOTS_OFFSET + cap * stride * 8 <= seg.body_len(), "slots out of range");
        // SAFETY: in range (asserted); the body is 512-aligned and the offset
        // a multiple of 128, so the words are 8-aligned.
        let slots = unsafe { NonNull::new_unchecked(seg.body_ptr().as_ptr().add(SLOTS_OFFSET).cast::<AtomicU64>()) };
        Inner { seg, shared, entries, slots, cap, stride, overwrite, wait }
    }

    #[inline(always)]
    fn view(&self) -> View<'_> {
        // SAFETY: 1. every pointer was checked to lie inside the body, aligned
        // (`body_at` and the assert in `new`); 2. the mapping lives as long as
        // `self.seg`; 3. atomics accept any bits another process writes.
        unsafe {
            View {
                sh: self.shared.as_ref(),
                entries: self.entries.as_ref(),
                slots: core::slice::from_raw_parts(self.slots.as_ptr(), self.cap * self.stride),
                cap: self.cap as u64,
                stride: self.stride,
            }
        }
    }

    fn alive(&self, role: u32) -> bool {
        // `None` cannot happen (broadcast rings are always named); count it
        // as alive, never declaring a live peer dead.
        self.seg.role_held(role) != Some(false)
    }

    fn publisher_gone(&self, due: impl FnOnce() -> bool) -> bool {
        side_gone(&self.view().sh.pub_ctl, due, || self.alive(ROLE_PUBLISHER))
    }

    /// Asks the kernel about the active subscribers whose cursor holds a
    /// publisher at `tail` back, and detaches the dead ones. Returns how
    /// many were detached.
    fn detach_dead(&self, tail: u64) -> usize {
        let v = self.view();
        let floor = tail.saturating_sub(v.cap);
        let mut n = 0;
        for (i, e) in v.entries.iter().enumerate() {
            // Acquire: pairs with the Release store of `state` in `join`.
            let st = e.state.load(Ordering::Acquire);
            // Relaxed: a hint; only a kernel-confirmed death detaches.
            if st & ACTIVE != 0
                && e.cursor.load(Ordering::Relaxed) <= floor
                && !self.alive(1 + i as u32)
                && core_::detach(&v, i, st)
            {
                n += 1;
            }
        }
        n
    }

    /// Active entries whose holder lives.
    fn subscribers(&self) -> usize {
        let v = self.view();
        v.entries
            .iter()
            .enumerate()
            // Relaxed: a snapshot for counting.
            .filter(|(i, e)| e.state.load(Ordering::Relaxed) & ACTIVE != 0 && self.alive(1 + *i as u32))
            .count()
    }
}

/// A named broadcast ring of `T`: one [`Publisher`] at a time, up to
/// [`MAX_SUBSCRIBERS`] [`Subscriber`]s, each of which sees every message sent
/// while it is subscribed.
///
/// # Memory ordering
/// Everything the publisher wrote into a message happens-before the
/// subscriber's `recv` of it returns (Release/Acquire on the slot's sequence
/// word); see the [module docs](self) for the protocol.
///
/// # Across processes
/// Any process can [`Ring::open`] the ring by name. The publisher role is
/// held by one live handle at a time ([`Error::RoleTaken`] otherwise) and is
/// taken over after its process dies; subscribers come and go freely, and a
/// dead one is detached without its help.
pub struct Ring<T> {
    inner: Arc<Inner>,
    _t: PhantomData<fn() -> T>,
}

impl<T> core::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("broadcast::Ring")
            .field("name", &self.inner.seg.name())
            .field("capacity", &self.inner.cap)
            .field("overwrite", &self.inner.overwrite)
            .finish()
    }
}

fn mode_name(overwrite: bool) -> &'static str {
    if overwrite {
        "overwrite"
    } else {
        "lossless"
    }
}

impl<T: Pod> SharedObject for Ring<T> {
    type Params<'a> = usize;
    const KIND: Kind = Kind::Broadcast;

    fn elem() -> Option<ElemInfo> {
        Some(ElemInfo::of::<T>())
    }

    fn shape(capacity: &usize, opts: &Options) -> Result<Shape> {
        let cap = ring_capacity(*capacity, Self::STRIDE * 8)?;
        let mut params = [0; 4];
        params[PARAM_MODE] = u64::from(opts.overwrite);
        params[PARAM_TABLE] = MAX_SUBSCRIBERS as u64;
        Ok(Shape { capacity: cap as u64, params, body_size: Self::body_size(cap) })
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        let cap = stored_capacity(name, h.capacity, Self::STRIDE * 8)?;
        let (mode, table) = (h.params[PARAM_MODE], h.params[PARAM_TABLE]);
        if mode > 1 || table != MAX_SUBSCRIBERS as u64 {
            return Err(Error::Corrupted {
                name: name.into(),
                reason: format!("broadcast mode {mode} or subscriber table size {table} is invalid"),
            });
        }
        Ok(Self::body_size(cap))
    }

    fn from_segment(seg: Segment, opts: &Options, _created: bool) -> Result<Self> {
        // `check` accepted mode 0 or 1; the handle must ask for the same one.
        let stored = seg.header().params[PARAM_MODE] == 1;
        if stored != opts.overwrite {
            let t = seg.header().type_name();
            return Err(Error::LayoutMismatch {
                name: seg.name().into(),
                found: format!("broadcast::Ring<{t}> in {} mode", mode_name(stored)),
                expected: format!(
                    "broadcast::Ring<{t}> in {} mode (open it with Options::new().overwrite({stored}))",
                    mode_name(opts.overwrite),
                ),
            });
        }
        let cap = seg.header().capacity as usize;
        let inner = Inner::new(seg, cap, Self::STRIDE, opts.overwrite, opts.wait);
        let v = inner.view();
        if (v.sh.pub_ctl.load(Ordering::Relaxed) | v.sh.sub_ctl.load(Ordering::Relaxed)) & POISONED != 0 {
            return Err(Error::Corrupted {
                name: inner.seg.name().into(),
                reason: "the broadcast ring was poisoned: its shared state was found inconsistent".into(),
            });
        }
        Ok(Ring { inner: Arc::new(inner), _t: PhantomData })
    }
}

impl<T: Pod> Ring<T> {
    const STRIDE: usize = 1 + core_::words_of::<T>();

    fn body_size(cap: usize) -> usize {
        SLOTS_OFFSET + cap * Self::STRIDE * 8
    }

    /// Creates a lossless ring of at least `capacity` messages (rounded up to
    /// a power of two).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`],
    /// [`Error::InvalidArgument`] for capacity 0 or too large,
    /// [`Error::NoSpace`], [`Error::PermissionDenied`].
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// [`Ring::create`] with options: mode and persistence of the segment,
    /// [`Options::overwrite`] and the wait strategy of this handle.
    ///
    /// # Errors
    /// As [`Ring::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::create(name, capacity, opts)
    }

    /// Opens an existing lossless ring, checking kind, element type and mode.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::WrongKind`], [`Error::LayoutMismatch`]
    /// (another element type, or an overwrite ring: use [`Ring::open_with`]),
    /// [`Error::VersionMismatch`], [`Error::Corrupted`],
    /// [`Error::PermissionDenied`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`Ring::open`] with options: [`Options::overwrite`] must match the
    /// ring's mode; the wait strategy applies to this handle.
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

    /// Takes the publisher role.
    ///
    /// # Errors
    /// [`Error::RoleTaken`] if a live handle holds it, [`Error::Corrupted`]
    /// if the shared position or a subscriber's cursor is out of range.
    pub fn publisher(&self) -> Result<Publisher<T>> {
        let inner = &self.inner;
        let lock = inner.seg.take_role(ROLE_PUBLISHER, "publisher", false)?;
        let v = inner.view();
        side_attach(&v.sh.pub_ctl);
        let corrupted = || Error::Corrupted {
            name: inner.seg.name().into(),
            reason: "the broadcast ring's position or a subscriber's cursor is out of range".into(),
        };
        let core = PubCore::take_over(&v, inner.overwrite).map_err(|Corrupt| corrupted())?;
        let p = Publisher { core, inner: inner.clone(), lock, wait: inner.wait, polls: 0, _t: PhantomData };
        Ok(p)
    }

    /// Subscribes: the subscriber receives every message sent from now on.
    ///
    /// # Errors
    /// [`Error::RoleTaken`] if [`MAX_SUBSCRIBERS`] live subscribers hold
    /// every place, [`Error::Corrupted`] if the shared position is out of
    /// range, [`Error::Io`].
    pub fn subscribe(&self) -> Result<Subscriber<T>> {
        let inner = &self.inner;
        let v = inner.view();
        // Free entries first, then active ones whose holder may have died.
        let order = |want_free: bool| {
            (0..MAX_SUBSCRIBERS)
                .filter(move |&i| (v.entries[i].state.load(Ordering::Relaxed) & ACTIVE == 0) == want_free)
        };
        for i in order(true).chain(order(false)) {
            let lock = match inner.seg.take_role(1 + i as u32, "subscriber", false) {
                Ok(l) => l,
                Err(Error::RoleTaken { .. }) => continue,
                Err(e) => return Err(e),
            };
            let core = core_::join(&v, i, inner.overwrite).map_err(|Corrupt| Error::Corrupted {
                name: inner.seg.name().into(),
                reason: "the broadcast ring's position is out of range".into(),
            })?;
            v.entries[i].pid.store(crate::shm::lock::current_pid(), Ordering::Relaxed);
            return Ok(Subscriber { core, inner: inner.clone(), lock, wait: inner.wait, polls: 0, _t: PhantomData });
        }
        Err(Error::RoleTaken { name: inner.seg.name().into(), role: "subscriber (all 64 places are in use)" })
    }

    /// The capacity in messages (a power of two).
    pub fn capacity(&self) -> usize {
        self.inner.cap
    }

    /// Whether the ring is in overwrite mode.
    pub fn is_overwrite(&self) -> bool {
        self.inner.overwrite
    }

    /// Live subscribers now (asks the kernel about each).
    pub fn subscribers(&self) -> usize {
        self.inner.subscribers()
    }

    /// A snapshot of the ring: messages sent, and each subscriber's position.
    pub fn info(&self) -> TopicInfo {
        let v = self.inner.view();
        // Relaxed (all): a snapshot for display.
        let tail = v.sh.tail.load(Ordering::Relaxed);
        let entries = v.entries.iter().map(|e| {
            (e.cursor.load(Ordering::Relaxed), e.state.load(Ordering::Relaxed), e.pid.load(Ordering::Relaxed))
        });
        topic_info(self.inner.overwrite, tail, entries, |i| self.inner.alive(1 + i as u32))
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.inner.seg.name()
    }
}

/// What [`Ring::info`] and `ringshm info` report about a broadcast ring.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// Overwrite mode (`false`: lossless).
    pub overwrite: bool,
    /// Messages published so far.
    pub sent: u64,
    /// The subscribers in the table (live or not yet detached).
    pub subscribers: Vec<SubscriberInfo>,
}

/// One subscriber in a [`TopicInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberInfo {
    /// Its place in the table.
    pub place: usize,
    /// Pid of its process.
    pub pid: u32,
    /// Whether its process still holds it (kernel-tracked).
    pub alive: bool,
    /// The position it last published (it publishes lazily, so it may have
    /// read a little further).
    pub position: u64,
    /// How many messages it is behind the publisher, by that position.
    pub behind: u64,
}

fn topic_info(
    overwrite: bool,
    tail: u64,
    entries: impl Iterator<Item = (u64, u32, u32)>,
    alive: impl Fn(usize) -> bool,
) -> TopicInfo {
    let subscribers = entries
        .enumerate()
        .filter(|(_, (_, st, _))| st & ACTIVE != 0)
        .map(|(place, (position, _, pid))| SubscriberInfo {
            place,
            pid,
            alive: alive(place),
            position,
            behind: tail.saturating_sub(position),
        })
        .collect();
    TopicInfo { overwrite, sent: tail, subscribers }
}

/// Reads a [`TopicInfo`] from a copy of a broadcast segment's body (at least
/// its control block and table; `None` if shorter), for `ringshm info`.
/// `held(role)` says whether a live process holds that role lock.
pub(crate) fn describe(h: &HeaderData, body: &[u8], held: impl Fn(u32) -> bool) -> Option<TopicInfo> {
    let body = body.get(..SLOTS_OFFSET)?;
    let u64_at = |off: usize| u64::from_ne_bytes(body[off..off + 8].try_into().expect("8 bytes"));
    let u32_at = |off: usize| u32::from_ne_bytes(body[off..off + 4].try_into().expect("4 bytes"));
    let size = core::mem::size_of::<Padded<Entry>>();
    let entries = (0..MAX_SUBSCRIBERS).map(|i| {
        let off = ENTRIES_OFFSET + i * size;
        (u64_at(off), u32_at(off + 8), u32_at(off + 12))
    });
    Some(topic_info(h.params[PARAM_MODE] == 1, u64_at(0), entries, |i| held(1 + i as u32)))
}

/// The publishing end of a broadcast ring. `Send`, not `Sync`.
///
/// Dropping it gives the role back: subscribers drain what was sent and then
/// see `Disconnected`, until another publisher takes the role.
///
/// # Memory ordering
/// A send publishes the message with a Release store of the slot's sequence
/// word, then `tail`; in lossless mode, the reuse of a slot is ordered after
/// every live subscriber's reads of it by an Acquire load of its cursor.
///
/// # Across processes
/// One live publisher at a time, in any process; after its process dies,
/// [`Ring::publisher`] in another one takes over and goes on from the last
/// message published.
pub struct Publisher<T> {
    core: PubCore,
    inner: Arc<Inner>,
    /// Held for its `Drop`: closing it frees the role.
    lock: Option<RoleLock>,
    wait: WaitStrategy,
    polls: u32,
    _t: PhantomData<fn(T)>,
}

impl<T> core::fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("broadcast::Publisher").field("name", &self.inner.seg.name()).finish_non_exhaustive()
    }
}

impl<T: Pod> Publisher<T> {
    /// Sends `msg` if there is room (always, in overwrite mode).
    ///
    /// # Errors
    /// [`TrySendError::Full`] (lossless only) while the slowest live
    /// subscriber is a whole ring behind; [`TrySendError::Disconnected`] if
    /// the ring is poisoned.
    #[inline]
    pub fn try_send(&mut self, msg: T) -> Result<(), TrySendError<T>> {
        let v = self.inner.view();
        // Relaxed: a hint; `Corrupt` from the core is the authority.
        if v.sh.pub_ctl.load(Ordering::Relaxed) & POISONED != 0 {
            return Err(TrySendError::Disconnected(msg));
        }
        match self.core.try_send(&v, &msg) {
            Ok(true) => Ok(()),
            Ok(false) => self.full(msg),
            Err(Corrupt) => Err(TrySendError::Disconnected(msg)),
        }
    }

    /// Full by the table: every `PROBE_EVERY` calls, detach dead subscribers
    /// and try again.
    #[cold]
    fn full(&mut self, msg: T) -> Result<(), TrySendError<T>> {
        if probe_due(&mut self.polls, false) && self.inner.detach_dead(self.core.tail) > 0 {
            let v = self.inner.view();
            if let Ok(true) = self.core.try_send(&v, &msg) {
                return Ok(());
            }
        }
        Err(TrySendError::Full(msg))
    }

    /// Sends `msg`, waiting while the ring is full (lossless only).
    ///
    /// # Errors
    /// [`SendError`] (holding `msg`) if the ring is poisoned.
    pub fn send(&mut self, msg: T) -> Result<(), SendError<T>> {
        self.send_deadline(msg, None).map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`],
    /// both holding `msg`.
    pub fn send_timeout(&mut self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(msg, wait::deadline(Some(timeout)))
    }

    fn send_deadline(&mut self, mut msg: T, deadline: Option<std::time::Instant>) -> Result<(), SendTimeoutError<T>> {
        loop {
            match self.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(m)) => return Err(SendTimeoutError::Disconnected(m)),
                Err(TrySendError::Full(m)) => msg = m,
            }
            match self.wait_for_room(deadline) {
                Waited::Ready(()) => continue,
                Waited::TimedOut => return Err(SendTimeoutError::Timeout(msg)),
                Waited::Gone => return Err(SendTimeoutError::Disconnected(msg)),
            }
        }
    }

    /// Waits until a slot is free; detaches dead subscribers once per
    /// liveness slice meanwhile. `Gone` only if the ring was poisoned.
    fn wait_for_room(&mut self, deadline: Option<std::time::Instant>) -> Waited<()> {
        let inner = self.inner.clone();
        let v = inner.view();
        let tail = self.core.tail;
        let core = &mut self.core;
        wait::wait_until(
            self.wait,
            deadline,
            &v.sh.pub_ctl,
            WAITING,
            || match core.refresh(&v) {
                Ok(0) => None,
                Ok(_) | Err(Corrupt) => Some(()),
            },
            || {
                inner.detach_dead(tail);
                // Relaxed: `ready` confirms through the core.
                v.sh.pub_ctl.load(Ordering::Relaxed) & POISONED != 0
            },
        )
    }

    /// Sends as many of `msgs` as fit (all of them in overwrite mode), with
    /// one publish; returns how many. 0 if full or poisoned.
    pub fn send_slice(&mut self, msgs: &[T]) -> usize {
        let v = self.inner.view();
        if v.sh.pub_ctl.load(Ordering::Relaxed) & POISONED != 0 {
            return 0;
        }
        let Ok(free) = self.core.free(&v, msgs.len() as u64) else { return 0 };
        let n = msgs.len().min(usize::try_from(free).unwrap_or(usize::MAX));
        for (k, m) in msgs[..n].iter().enumerate() {
            self.core.write(&v, k as u64, m);
        }
        if n > 0 {
            self.core.publish(&v, n as u64);
        }
        n
    }

    /// Live subscribers now (asks the kernel about each).
    pub fn subscribers(&self) -> usize {
        self.inner.subscribers()
    }

    /// Messages sent through this ring so far, by any publisher.
    pub fn sent(&self) -> u64 {
        self.core.tail
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.inner.cap
    }

    /// Whether the ring is in overwrite mode (sending never waits).
    pub fn is_overwrite(&self) -> bool {
        self.inner.overwrite
    }

    /// Changes how this handle's blocking calls wait.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
    }
}

impl<T> Drop for Publisher<T> {
    fn drop(&mut self) {
        let v = self.inner.view();
        let gen = side_gen(&v.sh.pub_ctl);
        drop(self.lock.take());
        // Closed only if no copy of the role (after `fork`) is left.
        if self.inner.seg.role_held(ROLE_PUBLISHER) == Some(false) {
            side_close(&v.sh.pub_ctl, gen);
            futex::notify(&v.sh.sub_ctl, WAITING);
        }
    }
}

/// A receiving end of a broadcast ring. `Send`, not `Sync`.
///
/// It receives every message sent after it subscribed, in order (lossless),
/// or in order with the gaps counted by [`Subscriber::missed`] (overwrite).
/// Dropping it leaves the table at once.
///
/// Its position is published lazily (every `capacity / 4` messages, at most
/// 1024, and whenever it finds the ring empty or the publisher waiting), so
/// a subscriber that stops calling `recv` while messages are pending holds a
/// lossless publisher back at the position it last published.
///
/// # Memory ordering
/// A message is read with an Acquire load of its slot's sequence word, a
/// copy of the payload through atomic loads, an Acquire fence and a second
/// load that rejects a copy the publisher overwrote meanwhile. The position
/// is published with Release, lazily.
///
/// # Across processes
/// Subscribers live in any process. One whose process dies is detached by
/// the publisher through its kernel-held lock; its place in the table is
/// reused by the next subscriber.
pub struct Subscriber<T> {
    core: SubCore,
    inner: Arc<Inner>,
    /// Held for its `Drop`: closing it frees the place.
    lock: Option<RoleLock>,
    wait: WaitStrategy,
    polls: u32,
    _t: PhantomData<fn() -> T>,
}

impl<T> core::fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("broadcast::Subscriber")
            .field("name", &self.inner.seg.name())
            .field("place", &self.core.idx)
            .finish_non_exhaustive()
    }
}

impl<T: Pod> Subscriber<T> {
    /// Receives the next message if there is one.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once
    /// everything is read and the publisher is gone (dropped, or its process
    /// died), or the ring is poisoned.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let v = self.inner.view();
        match self.core.try_recv(&v) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => self.empty_or_gone(false),
            Err(Corrupt) => Err(TryRecvError::Disconnected),
        }
    }

    #[cold]
    fn empty_or_gone(&mut self, force: bool) -> Result<T, TryRecvError> {
        let inner = self.inner.clone();
        let v = inner.view();
        if self.core.check_empty(&v).is_err() {
            return Err(TryRecvError::Disconnected);
        }
        // Caught up: let a lossless publisher see it.
        if self.core.published != self.core.next {
            self.core.publish(&v);
        }
        if !inner.publisher_gone(|| probe_due(&mut self.polls, force)) {
            return Err(TryRecvError::Empty);
        }
        // Gone: drain what it published before leaving (CLOSED was stored
        // with Release after its last publish).
        match self.core.try_recv(&v) {
            Ok(Some(m)) => Ok(m),
            _ => Err(TryRecvError::Disconnected),
        }
    }

    /// Receives the next message, waiting while there is none.
    ///
    /// # Errors
    /// [`RecvError`] once everything is read and the publisher is gone.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_deadline(None).map_err(|_| RecvError)
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Disconnected`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(wait::deadline(Some(timeout)))
    }

    fn recv_deadline(&mut self, deadline: Option<std::time::Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            match self.try_recv() {
                Ok(m) => return Ok(m),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            let inner = self.inner.clone();
            let v = inner.view();
            let core = &self.core;
            let waited = wait::wait_until(
                self.wait,
                deadline,
                &v.sh.sub_ctl,
                WAITING,
                || core.ready(&v).then_some(()),
                || inner.publisher_gone(|| true),
            );
            match waited {
                Waited::Ready(()) => continue,
                Waited::TimedOut => return Err(RecvTimeoutError::Timeout),
                Waited::Gone => return self.empty_or_gone(true).map_err(|_| RecvTimeoutError::Disconnected),
            }
        }
    }

    /// Receives as many messages as are available (up to `out.len()`), and
    /// publishes the position once; returns how many.
    pub fn recv_slice(&mut self, out: &mut [T]) -> usize {
        let v = self.inner.view();
        self.core.recv_slice(&v, out).unwrap_or(0)
    }

    /// Messages this subscriber lost because the publisher lapped it
    /// (overwrite mode; always 0 when lossless).
    pub fn missed(&self) -> u64 {
        self.core.missed
    }

    /// Messages sent and not yet received or skipped by this subscriber (a
    /// snapshot; at most the capacity plus what it missed meanwhile).
    pub fn len(&self) -> usize {
        // Relaxed: a snapshot.
        let t = self.inner.view().sh.tail.load(Ordering::Relaxed);
        t.saturating_sub(self.core.next).min(self.inner.cap as u64) as usize
    }

    /// Whether [`Subscriber::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the publisher is gone (dropped or dead); asks the kernel.
    pub fn is_abandoned(&mut self) -> bool {
        self.inner.publisher_gone(|| true)
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.inner.cap
    }

    /// Changes how this handle's blocking calls wait.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
    }
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        let v = self.inner.view();
        drop(self.lock.take());
        // Leave only if no copy of the place (after `fork`) is left.
        if self.inner.seg.role_held(1 + self.core.idx as u32) == Some(false) {
            self.core.leave(&v);
        }
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<T> Publisher<T> {
    /// For `crate::asynch`: the word a lossless publisher sleeps on while the
    /// ring is full, and the probe its blocking form runs after each sleep
    /// (detach dead subscribers; "gone" only if the ring is poisoned).
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'static> {
        let inner = self.inner.clone();
        // SAFETY: the word lies in the mapping `inner` owns, and the probe
        // owns a clone of `inner`.
        unsafe {
            crate::asynch::Hook::kept(
                self.wait,
                &self.inner.view().sh.pub_ctl,
                crate::asynch::How::Flag(WAITING),
                move || {
                    let v = inner.view();
                    // Relaxed: the tail is only a bound for the scan; a
                    // detached subscriber is confirmed dead by the kernel.
                    inner.detach_dead(v.sh.tail.load(Ordering::Relaxed));
                    // Relaxed: `try_send` confirms through the core.
                    v.sh.pub_ctl.load(Ordering::Relaxed) & POISONED != 0
                },
            )
        }
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<T> Subscriber<T> {
    /// For `crate::asynch`: the word subscribers sleep on while the ring is
    /// empty, and the publisher's liveness probe.
    pub(crate) fn async_hook(&self) -> crate::asynch::Hook<'static> {
        let inner = self.inner.clone();
        // SAFETY: as in `Publisher::async_hook`.
        unsafe {
            crate::asynch::Hook::kept(
                self.wait,
                &self.inner.view().sh.sub_ctl,
                crate::asynch::How::Flag(WAITING),
                move || inner.publisher_gone(|| true),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &str) -> String {
        format!("ringshm-ut-bcast-{t}-{}", std::process::id())
    }

    #[test]
    fn fan_out_and_full() {
        let r = Ring::<u64>::create(&name("basic"), 4).unwrap();
        let mut a = r.subscribe().unwrap();
        let mut b = r.subscribe().unwrap();
        let mut tx = r.publisher().unwrap();
        assert!(matches!(r.publisher(), Err(Error::RoleTaken { .. })));
        assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
        for i in 0..4 {
            tx.try_send(i).unwrap();
        }
        assert!(tx.try_send(9).unwrap_err().is_full());
        for i in 0..4 {
            assert_eq!(a.try_recv(), Ok(i));
        }
        // `b` holds the publisher back.
        assert!(tx.try_send(9).unwrap_err().is_full());
        let mut buf = [0; 8];
        assert_eq!(b.recv_slice(&mut buf), 4);
        assert_eq!(&buf[..4], &[0, 1, 2, 3]);
        assert_eq!(tx.send_slice(&[4, 5, 6, 7, 8]), 4);
        drop(b);
        assert_eq!(tx.subscribers(), 1);
        let mut c = r.subscribe().unwrap();
        drop(tx);
        for i in 4..8 {
            assert_eq!(a.recv(), Ok(i));
        }
        assert_eq!(a.recv(), Err(RecvError));
        assert_eq!(c.try_recv(), Err(TryRecvError::Disconnected));
        let mut tx = r.publisher().unwrap();
        tx.send(100).unwrap();
        assert_eq!(c.recv_timeout(Duration::from_secs(5)), Ok(100));
        assert_eq!(a.recv_timeout(Duration::from_secs(5)), Ok(100));
        assert_eq!(a.missed(), 0);
        assert_eq!(r.info().sent, 9);
    }

    #[test]
    fn overwrite_laps() {
        let opts = Options::new().overwrite(true);
        let n = name("ow");
        let r = Ring::<[u32; 3]>::create_with(&n, 4, &opts).unwrap();
        assert!(matches!(Ring::<[u32; 3]>::open(&n), Err(Error::LayoutMismatch { .. })));
        assert!(matches!(Ring::<[u32; 2]>::open_with(&n, &opts), Err(Error::LayoutMismatch { .. })));
        let mut s = r.subscribe().unwrap();
        let mut tx = r.publisher().unwrap();
        for i in 0..10u32 {
            tx.try_send([i, i * 2, i * 3]).unwrap();
        }
        let mut got = Vec::new();
        while let Ok(m) = s.try_recv() {
            assert_eq!(m, [m[0], m[0] * 2, m[0] * 3]);
            got.push(m[0]);
        }
        assert_eq!(got, [6, 7, 8, 9]);
        assert_eq!(s.missed(), 6);
    }

    #[test]
    fn table_full() {
        let r = Ring::<u8>::create(&name("full"), 2).unwrap();
        let subs: Vec<_> = (0..MAX_SUBSCRIBERS).map(|_| r.subscribe().unwrap()).collect();
        let err = r.subscribe().unwrap_err();
        assert!(err.to_string().contains("all 64 places"), "{err}");
        drop(subs);
        r.subscribe().unwrap();
    }
}
