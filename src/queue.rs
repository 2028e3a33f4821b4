//! Python's `multiprocessing.Queue` and `JoinableQueue`, plus a
//! variable-length [`ByteQueue`]: bounded, many producers and many consumers
//! in any processes, met by name.
//!
//! ```
//! use ringshm::Queue;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-queue-orders-{}", std::process::id());
//! // process 1
//! let q = Queue::<[u8; 16]>::create(&name, 1024)?;
//! q.put(*b"two coffees, pls")?;
//! // process 2
//! let q2 = Queue::<[u8; 16]>::open(&name)?;
//! assert_eq!(&q2.get()?, b"two coffees, pls");
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! A queue is an MPMC ring (`ringshm::mpmc`, Vyukov's bounded queue with
//! owner-tagged claims) in a segment of its own kind. The handle returned by
//! `create` is a producer from the start (like the parent that owns a Python
//! queue); any other handle joins the producers' side on its first `put` and
//! the consumers' side on its first `get`. So "every producer is gone"
//! (dropped, or dead) means the creator and every handle that ever put: a
//! consumer then drains the queue and sees [`GetError::Disconnected`]
//! instead of waiting forever, and producers that come and go while the
//! creator lives never end the queue early. [`Queue::close`] ends putting
//! for everyone (Python's `close` only ends the caller's).
//!
//! A producer killed between claiming a slot and publishing it leaves a
//! half-written slot; consumers waiting on it find its owner dead (a kernel
//! lock), release it at once and count it in [`Queue::lost`].
//!
//! A `JoinableQueue` adds a block of counters after the slots:
//!
//! | offset | word          | meaning                                                   |
//! |--------|---------------|-----------------------------------------------------------|
//! | 0      | `unfinished`  | items put and not yet `task_done` (nor lost)               |
//! | 128    | `taken`       | items got and not yet `task_done`: bounds `task_done` calls |
//! | 256    | `lost_seen`   | lost messages already subtracted from `unfinished`        |
//! | 384    | `joiners`     | futex word of `join` sleepers (`WAITING` bit)             |
//!
//! `put` adds to `unfinished` once it holds a slot (after the claim, before
//! the publish), so a fast consumer's `task_done` never underflows it, and a
//! put that never got room (it failed, timed out, or its process died while
//! it waited) never counted. A producer killed between claim and publish
//! costs an item counted in `lost`, which is subtracted from `unfinished`
//! (only a kill in the few instructions between the claim and the add makes
//! that subtraction one too many; the count saturates at 0).
//! Every decrement saturates at 0 and wakes joiners when it reaches 0.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{Error, Result, SendTimeoutError, TryRecvError};
use crate::ring::arena::{self, Arena, Geometry, Got};
use crate::ring::mpmc::{self, RawRing, SlotLayout, TypedRing};
use crate::ring::mpmc_core::Blocked;
use crate::ring::WAITING;
use crate::shm::header::{HeaderData, Kind};
use crate::shm::object::{self, Shape, SharedObject};
use crate::shm::{Options, Segment};
use crate::sync::futex;
use crate::sync::wait::{self, Waited};

// ---------------------------------------------------------------------------
// Errors: in `crate::error`, re-exported here under their old paths.

pub use crate::error::{GetError, GetValueError, PutBytesError, PutError, TaskDoneError};

/// How long an operation may wait.
#[derive(Clone, Copy)]
enum Form {
    Try,
    Block,
    Timeout(Duration),
}

impl Form {
    fn deadline(self) -> Option<Instant> {
        match self {
            Form::Timeout(d) => wait::deadline(Some(d)),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// JoinableQueue counters.

const J_UNFINISHED: usize = 0;
const J_TAKEN: usize = 128;
const J_LOST_SEEN: usize = 256;
const J_WORD: usize = 384;
/// Bytes of the counter block.
const J_EXTRA: usize = 512;

/// The unfinished-task counters of a `JoinableQueue`, at `off` in the body.
#[derive(Clone, Copy)]
struct Tasks {
    off: usize,
}

impl Tasks {
    fn u64_at<'a>(&self, seg: &'a Segment, at: usize) -> &'a AtomicU64 {
        seg.body_at::<AtomicU64>(self.off + at)
    }

    fn word<'a>(&self, seg: &'a Segment) -> &'a AtomicU32 {
        seg.body_at::<AtomicU32>(self.off + J_WORD)
    }

    fn add(&self, seg: &Segment, n: u64) {
        // Relaxed: the item's publish (Release on its slot) orders this
        // before the consumer's `task_done`.
        self.u64_at(seg, J_UNFINISHED).fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n` (saturating) and wakes joiners if it reaches 0.
    fn sub(&self, seg: &Segment, n: u64) {
        let w = self.u64_at(seg, J_UNFINISHED);
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            let new = cur.saturating_sub(n);
            // Release: pairs with the Acquire load in `unfinished`: work done
            // before `task_done` is visible to whoever `join` releases.
            match w.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => {
                    if new == 0 {
                        futex::notify(self.word(seg), WAITING);
                    }
                    return;
                }
                Err(c) => cur = c,
            }
        }
    }

    fn taken(&self, seg: &Segment, n: u64) {
        self.u64_at(seg, J_TAKEN).fetch_add(n, Ordering::Relaxed);
    }

    fn task_done(&self, seg: &Segment, ring_lost: u64) -> Result<(), TaskDoneError> {
        let t = self.u64_at(seg, J_TAKEN);
        let mut cur = t.load(Ordering::Relaxed);
        loop {
            if cur == 0 {
                return Err(TaskDoneError);
            }
            // Relaxed: a bound on calls only; `unfinished` carries the ordering.
            match t.compare_exchange_weak(cur, cur - 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
        self.fold_lost(seg, ring_lost);
        self.sub(seg, 1);
        Ok(())
    }

    /// Subtracts messages lost with dead processes (they will never be
    /// `task_done`) from `unfinished`, once each.
    fn fold_lost(&self, seg: &Segment, ring_lost: u64) {
        let seen = self.u64_at(seg, J_LOST_SEEN);
        let s = seen.load(Ordering::Relaxed);
        if ring_lost > s && seen.compare_exchange(s, ring_lost, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.sub(seg, ring_lost - s);
        }
    }

    fn unfinished(&self, seg: &Segment, ring_lost: u64) -> u64 {
        self.fold_lost(seg, ring_lost);
        // Acquire: pairs with the Release decrement in `sub`.
        self.u64_at(seg, J_UNFINISHED).load(Ordering::Acquire)
    }
}

// ---------------------------------------------------------------------------
// Queue<T>.

/// A bounded many-producer many-consumer queue of `T: Pod` in shared memory:
/// Python's `multiprocessing.Queue(maxsize)`.
///
/// `Send + Sync` and `Clone`: share it between threads by reference, clone
/// it, or open it by name in other processes.
///
/// # Across processes
/// Any process can [`Queue::open`] it by name and put and get. A consumer
/// sees [`GetError::Disconnected`] once the queue is empty and either it was
/// [`closed`](Queue::close) or every producer is gone — the creating handle
/// and every handle that ever put, dropped or dead — never a wait that no
/// one can end. A producer
/// killed in the middle of a `put` costs that one item, which consumers
/// release at once and count in [`Queue::lost`]; they never report
/// `Disconnected` while a published item is in the queue.
///
/// # Memory ordering
/// A `put` *happens before* the `get` that takes its item (`Release`
/// publish, `Acquire` claim, as in `mpmc::Ring`). `try_get` and `try_put`
/// are linearizable: `Empty`/`Full` are never caused by another handle's
/// put or get that is merely in progress (unless that handle's process is
/// stalled mid-step for over 20 ms, see [`mpmc::Ring`]).
pub struct Queue<T> {
    ring: mpmc::Ring<T>,
    tx: OnceLock<mpmc::Sender<T>>,
    rx: OnceLock<mpmc::Receiver<T>>,
    tasks: Option<Tasks>,
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").field("ring", &self.ring).finish_non_exhaustive()
    }
}

impl<T: Pod> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { ring: self.ring.clone(), tx: OnceLock::new(), rx: OnceLock::new(), tasks: self.tasks }
    }
}

impl<T: Pod> TypedRing for Queue<T> {
    const KIND: Kind = Kind::Queue;
    type Elem = T;

    fn layout() -> SlotLayout {
        mpmc::Ring::<T>::layout()
    }

    fn from_raw(raw: RawRing, created: bool) -> Self {
        Self::wrap(mpmc::Ring::from_raw(raw), None).creator_if(created)
    }
}

impl<T: Pod> Queue<T> {
    fn wrap(ring: mpmc::Ring<T>, tasks: Option<Tasks>) -> Self {
        Queue { ring, tx: OnceLock::new(), rx: OnceLock::new(), tasks }
    }

    /// The creating handle (of `create`, or of an `open_or_create` that
    /// created) counts as a producer from the start.
    fn creator_if(self, created: bool) -> Self {
        if created {
            let _ = self.tx();
        }
        self
    }

    /// Creates a queue that holds at most `capacity` items (exactly, like
    /// Python's `Queue(maxsize)`). The returned handle counts as a producer
    /// until it is dropped (see the type's docs), as does the handle
    /// [`Queue::open_or_create`] returns when it created the queue.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`],
    /// [`Error::InvalidArgument`] (capacity 0 or too large), [`Error::NoSpace`],
    /// [`Error::PermissionDenied`].
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// [`Queue::create`] with options (mode, persist, wait strategy).
    ///
    /// # Errors
    /// As [`Queue::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::create(name, capacity, opts)
    }

    /// Opens an existing queue, checking kind and element type. Waits while
    /// its creator is still initialising it.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::WrongKind`], [`Error::LayoutMismatch`],
    /// [`Error::VersionMismatch`], [`Error::Corrupted`], [`Error::PermissionDenied`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`Queue::open`] with options (wait strategy).
    ///
    /// # Errors
    /// As [`Queue::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }

    /// Opens the queue, or creates it if it does not exist; race-free. If
    /// this call created it, the handle counts as a producer, as from
    /// [`Queue::create`].
    ///
    /// # Errors
    /// As [`Queue::create`] and [`Queue::open`].
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Queue::open_or_create`] with options.
    ///
    /// # Errors
    /// As [`Queue::open_or_create`].
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::open_or_create(name, capacity, opts)
    }

    /// An unnamed queue (a sealed `memfd`) for this process and the children
    /// it forks.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`], [`Error::NoSpace`], [`Error::Io`].
    pub fn anonymous(capacity: usize) -> Result<Self> {
        object::anonymous(mpmc::ANON_LABEL, capacity, &Options::new())
    }

    fn seg(&self) -> &Segment {
        self.ring.raw().segment()
    }

    fn tx(&self) -> Option<&mpmc::Sender<T>> {
        if let Some(t) = self.tx.get() {
            return Some(t);
        }
        let s = self.ring.sender();
        // Lost a race with another thread: ours is dropped (and leaves).
        let _ = self.tx.set(s);
        self.tx.get()
    }

    fn rx(&self) -> Option<&mpmc::Receiver<T>> {
        if let Some(r) = self.rx.get() {
            return Some(r);
        }
        let r = self.ring.receiver();
        let _ = self.rx.set(r);
        self.rx.get()
    }

    fn gone<U>(&self, v: U) -> PutError<U> {
        if self.ring.is_closed() {
            PutError::Closed(v)
        } else {
            PutError::Disconnected(v)
        }
    }

    /// Puts `v`; a `JoinableQueue` counts its task once a slot is ours
    /// (after the claim, before the publish), so a put that never gets room
    /// (it fails, times out, or its process dies while it waits) never
    /// counts.
    fn put_impl(&self, v: T, form: Form) -> Result<(), PutError<T>> {
        let Some(tx) = self.tx() else { return Err(self.gone(v)) };
        let deadline = match form {
            Form::Try => None,
            Form::Block => Some(None),
            Form::Timeout(d) => Some(wait::deadline(Some(d))),
        };
        let count = || {
            if let Some(t) = self.tasks {
                t.add(self.seg(), 1);
            }
        };
        tx.send_then(v, deadline, count).map_err(|e| match e {
            SendTimeoutError::Timeout(v) => PutError::Full(v),
            SendTimeoutError::Disconnected(v) => self.gone(v),
        })
    }

    /// Puts `v`, waiting while the queue is full (Python's `put`).
    ///
    /// # Errors
    /// [`PutError::Closed`] after [`Queue::close`];
    /// [`PutError::Disconnected`] if every consumer is gone. Both hold `v`.
    pub fn put(&self, v: T) -> Result<(), PutError<T>> {
        self.put_impl(v, Form::Block)
    }

    /// Puts `v`, waiting at most `timeout` for room (Python's
    /// `put(timeout=)`).
    ///
    /// # Errors
    /// [`PutError::Full`] if still full at the timeout, and as [`Queue::put`].
    pub fn put_timeout(&self, v: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_impl(v, Form::Timeout(timeout))
    }

    /// Puts `v` if there is room now (Python's `put_nowait`).
    ///
    /// # Errors
    /// [`PutError::Full`], and as [`Queue::put`].
    pub fn try_put(&self, v: T) -> Result<(), PutError<T>> {
        self.put_impl(v, Form::Try)
    }

    /// Puts every item of `items` in order, waiting while the queue is full.
    ///
    /// # Errors
    /// As [`Queue::put`], holding how many items were put before the failure.
    pub fn put_many(&self, items: &[T]) -> Result<(), PutError<usize>> {
        for (n, v) in items.iter().enumerate() {
            self.put_impl(*v, Form::Block).map_err(|e| self.gone(n).with_kind_of(&e))?;
        }
        Ok(())
    }

    /// Puts as many items of `items` as fit now, in order; returns how many.
    pub fn try_put_many(&self, items: &[T]) -> usize {
        items.iter().take_while(|v| self.put_impl(**v, Form::Try).is_ok()).count()
    }

    fn got(&self, n: usize) {
        if let (Some(t), true) = (self.tasks, n > 0) {
            t.taken(self.seg(), n as u64);
        }
    }

    fn get_impl(&self, form: Form) -> Result<T, GetError> {
        let Some(rx) = self.rx() else { return Err(GetError::Disconnected) };
        let r = match form {
            Form::Try => rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => GetError::Empty,
                TryRecvError::Disconnected => GetError::Disconnected,
            }),
            Form::Block => rx.recv().map_err(|_| GetError::Disconnected),
            Form::Timeout(d) => rx.recv_timeout(d).map_err(|e| match e {
                crate::error::RecvTimeoutError::Timeout => GetError::Empty,
                crate::error::RecvTimeoutError::Disconnected => GetError::Disconnected,
            }),
        };
        if r.is_ok() {
            self.got(1);
        }
        r
    }

    /// Takes the oldest item, waiting while the queue is empty (Python's `get`).
    ///
    /// # Errors
    /// [`GetError::Disconnected`] once the queue is empty and closed, or
    /// every producer is gone.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_impl(Form::Block)
    }

    /// Takes the oldest item, waiting at most `timeout` (Python's
    /// `get(timeout=)`).
    ///
    /// # Errors
    /// [`GetError::Empty`] if nothing arrived in time, and as [`Queue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_impl(Form::Timeout(timeout))
    }

    /// Takes the oldest item if there is one (Python's `get_nowait`).
    ///
    /// # Errors
    /// [`GetError::Empty`], and as [`Queue::get`].
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_impl(Form::Try)
    }

    /// Waits for at least one item, then takes as many as are available (up
    /// to `out.len()`) into `out`, oldest first; returns how many.
    ///
    /// # Errors
    /// As [`Queue::get`].
    pub fn get_many(&self, out: &mut [T]) -> Result<usize, GetError> {
        let Some(first) = out.first_mut() else { return Ok(0) };
        *first = self.get()?;
        let rest = self.rx().map_or(0, |rx| rx.recv_many(&mut out[1..]));
        self.got(rest);
        Ok(1 + rest)
    }

    /// Takes as many items as are available now (up to `out.len()`); returns
    /// how many (0 if none).
    pub fn try_get_many(&self, out: &mut [T]) -> usize {
        let n = self.rx().map_or(0, |rx| rx.recv_many(out));
        self.got(n);
        n
    }

    /// Items in the queue now (Python's `qsize`). Exact when no put or get
    /// is in progress; a put or get in progress counts as done.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the queue is empty now (Python's `empty`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full now (Python's `full`).
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The capacity in items, exactly as asked for at create (Python's
    /// `maxsize`).
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Items lost so far because a process died in the middle of putting or
    /// getting them (each released by the next handle that met its slot).
    pub fn lost(&self) -> u64 {
        self.ring.lost()
    }

    /// Ends putting for every handle in every process: puts fail with
    /// [`PutError::Closed`]; gets drain what is left, then fail with
    /// [`GetError::Disconnected`]. Cannot be undone.
    pub fn close(&self) {
        self.ring.close();
    }

    /// Whether [`Queue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }

    /// Claims the next slot and never publishes it, as a process killed in
    /// the middle of `put` would (for `crate::testing`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn claim_only(&self) -> bool {
        let ok = self.tx().is_some_and(|tx| tx.claim_only());
        if let (Some(t), true) = (self.tasks, ok) {
            t.add(self.seg(), 1);
        }
        ok
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.ring.name()
    }
}

impl<T: Pod> Queue<T> {
    /// A blocking iterator over the items: each `next` is a [`Queue::get`];
    /// it ends once the queue is empty and closed, or every producer is
    /// gone.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = format!("doc-queue-iter-{}", std::process::id());
    /// let q = ringshm::Queue::<u32>::create(&name, 4)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// q.close();
    /// assert_eq!(q.iter().collect::<Vec<_>>(), [1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> QueueIter<'_, T> {
        QueueIter { q: self, blocking: true }
    }

    /// A non-blocking iterator: each `next` is a [`Queue::try_get`]; it ends
    /// at the first `Empty` or `Disconnected`.
    pub fn try_iter(&self) -> QueueIter<'_, T> {
        QueueIter { q: self, blocking: false }
    }
}

/// Iterator over a [`Queue`]'s items (from [`Queue::iter`] or
/// [`Queue::try_iter`]).
pub struct QueueIter<'a, T> {
    q: &'a Queue<T>,
    blocking: bool,
}

impl<T: Pod> Iterator for QueueIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.blocking { self.q.get() } else { self.q.try_get() }.ok()
    }
}

impl<T> fmt::Debug for QueueIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueIter").field("queue", self.q).field("blocking", &self.blocking).finish()
    }
}

/// Blocking iterator that owns its [`Queue`] handle (from `IntoIterator`).
pub struct QueueIntoIter<T> {
    q: Queue<T>,
}

impl<T: Pod> Iterator for QueueIntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.q.get().ok()
    }
}

impl<T> fmt::Debug for QueueIntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueIntoIter").field("queue", &self.q).finish()
    }
}

impl<'a, T: Pod> IntoIterator for &'a Queue<T> {
    type Item = T;
    type IntoIter = QueueIter<'a, T>;
    fn into_iter(self) -> QueueIter<'a, T> {
        self.iter()
    }
}

impl<T: Pod> IntoIterator for Queue<T> {
    type Item = T;
    type IntoIter = QueueIntoIter<T>;
    fn into_iter(self) -> QueueIntoIter<T> {
        QueueIntoIter { q: self }
    }
}

// ---------------------------------------------------------------------------
// JoinableQueue<T>.

/// A [`Queue`] that counts unfinished tasks: Python's
/// `multiprocessing.JoinableQueue`. Every `put` adds a task, every
/// [`task_done`](JoinableQueue::task_done) finishes one, and
/// [`join`](JoinableQueue::join) waits until none is left. Derefs to
/// [`Queue`] for `put`/`get` and the rest.
///
/// # Across processes
/// The count is shared: a producer's `join` waits for the `task_done` calls
/// of consumers in other processes. Items lost with a process killed in the
/// middle of a put or get ([`Queue::lost`]) are no longer counted as
/// unfinished. A consumer that dies after `get` but before `task_done`
/// leaves its task unfinished, as in Python: use
/// [`join_timeout`](JoinableQueue::join_timeout) if that can happen. A task
/// is counted when its item goes in (its slot is claimed), so a producer
/// killed while it waited in `put` on a full queue leaves no task behind.
///
/// # Memory ordering
/// Work done before `task_done` *happens before* the return of the `join`
/// it releases (`Release` decrement, `Acquire` load of the count). Puts and
/// gets order as in [`Queue`].
pub struct JoinableQueue<T> {
    q: Queue<T>,
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue").field("ring", &self.q.ring).finish_non_exhaustive()
    }
}

impl<T: Pod> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { q: self.q.clone() }
    }
}

impl<T> core::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.q
    }
}

impl<T: Pod> TypedRing for JoinableQueue<T> {
    const KIND: Kind = Kind::JoinableQueue;
    type Elem = T;

    fn layout() -> SlotLayout {
        mpmc::Ring::<T>::layout().with_extra(J_EXTRA)
    }

    fn from_raw(raw: RawRing, created: bool) -> Self {
        let tasks = Tasks { off: Self::layout().extra_offset(raw.slot_count()) };
        let ring = mpmc::Ring::from_raw(raw);
        JoinableQueue { q: Queue::wrap(ring, Some(tasks)).creator_if(created) }
    }
}

impl<T: Pod> JoinableQueue<T> {
    /// Creates a joinable queue that holds at most `capacity` items.
    ///
    /// # Errors
    /// As [`Queue::create`].
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// [`JoinableQueue::create`] with options.
    ///
    /// # Errors
    /// As [`Queue::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::create(name, capacity, opts)
    }

    /// Opens an existing joinable queue.
    ///
    /// # Errors
    /// As [`Queue::open`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`JoinableQueue::open`] with options.
    ///
    /// # Errors
    /// As [`Queue::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }

    /// Opens the joinable queue, or creates it if it does not exist.
    ///
    /// # Errors
    /// As [`Queue::open_or_create`].
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`JoinableQueue::open_or_create`] with options.
    ///
    /// # Errors
    /// As [`Queue::open_or_create`].
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self> {
        object::open_or_create(name, capacity, opts)
    }

    fn tasks(&self) -> Tasks {
        self.q.tasks.expect("a JoinableQueue has task counters")
    }

    /// Marks one task got from the queue as done.
    ///
    /// # Errors
    /// [`TaskDoneError`] if called more often than items were taken (by all
    /// handles, in all processes).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.tasks().task_done(self.q.seg(), self.q.lost())
    }

    /// Tasks put and not yet done (nor lost), across all processes.
    pub fn unfinished_tasks(&self) -> u64 {
        self.tasks().unfinished(self.q.seg(), self.q.lost())
    }

    fn join_deadline(&self, deadline: Option<Instant>) -> bool {
        let t = self.tasks();
        let seg = self.q.seg();
        let strategy = self.q.ring.raw().wait_strategy();
        let r = wait::wait_until(
            strategy,
            deadline,
            t.word(seg),
            WAITING,
            || (t.unfinished(seg, self.q.lost()) == 0).then_some(()),
            || false,
        );
        matches!(r, Waited::Ready(()))
    }

    /// Waits until every task put so far is done (Python's `join`).
    pub fn join(&self) {
        self.join_deadline(None);
    }

    /// Waits at most `timeout` for every task to be done; `true` if they are.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        match wait::deadline(Some(timeout)) {
            Some(d) => self.join_deadline(Some(d)),
            None => self.join_deadline(None),
        }
    }
}

// ---------------------------------------------------------------------------
// ByteQueue.

/// A bounded many-producer many-consumer queue of byte messages of up to
/// `max_message_bytes` each, delivered whole and in order.
///
/// Its memory follows what is queued, not `capacity x max_message_bytes`:
/// each slot holds a small message inline (up to 232 bytes; 104 when
/// `max_message_bytes` is at most that), and a longer one goes to the
/// slot's extent of an arena that the segment reserves as address space
/// only. Its pages are backed when a message needs them and given back when
/// a consumer has taken a message bigger than the slot's warm size (up to
/// 64 KiB per slot, 32 MiB per queue). So
/// `ByteQueue::create(name, 100_000, 1 << 20)` (128 GiB of address space:
/// 131 072 slots) holding 100 000 small messages uses 32 MiB of memory (its
/// slots of 256 bytes), and a 1 MiB message costs 1 MiB while it is queued. Small
/// messages never make a system call; big ones pay a page fault per page
/// they use (see `ring::arena` in the sources for the figures).
/// `Send + Sync`.
///
/// # Examples
/// ```
/// use ringshm::ByteQueue;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let name = format!("doc-bytequeue-{}", std::process::id());
/// let q = ByteQueue::create(&name, 1000, 1 << 20)?;   // 1000 messages of up to 1 MiB
/// q.put(b"small")?;
/// q.put(&vec![7u8; 1 << 20])?;
/// let other = ByteQueue::open(&name)?;                // any process
/// assert_eq!(other.get()?, b"small");
/// assert_eq!(other.get()?.len(), 1 << 20);
/// # Ok(()) }
/// ```
///
/// # Across processes
/// As [`Queue`]: open it by name anywhere; consumers see
/// [`GetError::Disconnected`] after draining once it is closed or every
/// producer (the creating handle included) is gone, and never while a
/// published message is left; a producer killed mid-put costs one message,
/// counted in [`ByteQueue::lost`]. A length found corrupted in a slot
/// poisons the queue (every handle then sees it as disconnected) instead of
/// being trusted.
///
/// # Memory ordering
/// A `put` *happens before* the `get` that takes its message (`Release`
/// publish, `Acquire` claim); `try_get`/`try_put` are linearizable, as for
/// [`Queue`].
pub struct ByteQueue {
    raw: Arc<RawRing>,
    arena: Arc<Arena>,
    max: usize,
    joined_tx: OnceLock<bool>,
    joined_rx: OnceLock<bool>,
}

impl fmt::Debug for ByteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteQueue")
            .field("name", &self.raw.segment().name())
            .field("capacity", &self.raw.capacity())
            .field("max_message_bytes", &self.max)
            .finish_non_exhaustive()
    }
}

impl Clone for ByteQueue {
    fn clone(&self) -> Self {
        ByteQueue {
            raw: self.raw.clone(),
            arena: self.arena.clone(),
            max: self.max,
            joined_tx: OnceLock::new(),
            joined_rx: OnceLock::new(),
        }
    }
}

impl Drop for ByteQueue {
    fn drop(&mut self) {
        if self.joined_tx.get() == Some(&true) {
            self.raw.leave(true);
        }
        if self.joined_rx.get() == Some(&true) {
            self.raw.leave(false);
        }
    }
}

/// `ByteQueue::create` parameters: `(capacity, max_message_bytes)`.
impl SharedObject for ByteQueue {
    type Params<'a> = (usize, usize);
    const KIND: Kind = Kind::ByteQueue;

    fn shape(&(capacity, max): &(usize, usize), _: &Options) -> Result<Shape> {
        RawRing::shape(capacity, Geometry::new(capacity, max)?.layout, [max as u64, 0, 0, 0])
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        RawRing::check(name, h, Self::stored_geometry(name, h)?.layout)
    }

    /// Only the slots are reserved at create; the arena stays sparse.
    fn dense_body(shape: &Shape) -> usize {
        let max = shape.params[0] as usize;
        Geometry::for_slots(shape.capacity as usize, max).map_or(shape.body_size, |g| g.dense_body())
    }

    fn init(seg: &Segment, &(capacity, max): &(usize, usize)) {
        // `shape` accepted these parameters just before.
        if let Ok(g) = Geometry::new(capacity, max) {
            RawRing::init(seg, g.layout);
        }
    }

    fn from_segment(seg: Segment, opts: &Options, created: bool) -> Result<Self> {
        let geo = Self::stored_geometry(seg.name(), seg.header())?;
        let raw = RawRing::from_segment(seg, geo.layout, opts.wait)?;
        let arena = Arena::new(&raw, geo)?;
        let q = ByteQueue {
            raw: Arc::new(raw),
            arena: Arc::new(arena),
            max: geo.max,
            joined_tx: OnceLock::new(),
            joined_rx: OnceLock::new(),
        };
        if created {
            // The creating handle counts as a producer from the start.
            q.join_side(true);
        }
        Ok(q)
    }
}

impl ByteQueue {
    /// The geometry a stored header implies (its slot count and
    /// `max_message_bytes` are checked: they come from the segment).
    fn stored_geometry(name: &str, h: &HeaderData) -> core::result::Result<Geometry, Error> {
        let max = usize::try_from(h.params[0]).ok().filter(|m| *m <= arena::MAX_MESSAGE).ok_or_else(|| {
            object::corrupted(name, format!("stored max_message_bytes {} is larger than the limit", h.params[0]))
        })?;
        // The slot count (a power of two within the ring limits), checked
        // against the layout without the arena first.
        let g0 = Geometry::for_slots(2, max).map_err(|_| object::corrupted(name, "impossible geometry"))?;
        RawRing::check(name, h, g0.layout)?;
        Geometry::for_slots(h.capacity as usize, max).map_err(|arena| {
            object::corrupted(name, format!("its stored capacity and max_message_bytes need an arena of {arena} bytes"))
        })
    }

    /// Creates a queue that holds at most `capacity` messages, of up to
    /// `max_message_bytes` each.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`],
    /// [`Error::InvalidArgument`] (capacity 0, sizes too large),
    /// [`Error::NoSpace`], [`Error::PermissionDenied`].
    pub fn create(name: &str, capacity: usize, max_message_bytes: usize) -> Result<Self> {
        Self::create_with(name, capacity, max_message_bytes, &Options::new())
    }

    /// [`ByteQueue::create`] with options.
    ///
    /// # Errors
    /// As [`ByteQueue::create`].
    pub fn create_with(name: &str, capacity: usize, max_message_bytes: usize, opts: &Options) -> Result<Self> {
        object::create(name, (capacity, max_message_bytes), opts)
    }

    /// Opens an existing byte queue (its `max_message_bytes` is read from
    /// the segment). Waits while its creator is still initialising it.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::WrongKind`], [`Error::VersionMismatch`],
    /// [`Error::Corrupted`], [`Error::PermissionDenied`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`ByteQueue::open`] with options (wait strategy).
    ///
    /// # Errors
    /// As [`ByteQueue::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }

    /// Opens the queue, or creates it if it does not exist; race-free. If
    /// this call created it, the handle counts as a producer.
    ///
    /// # Errors
    /// As [`ByteQueue::create`] and [`ByteQueue::open`].
    pub fn open_or_create(name: &str, capacity: usize, max_message_bytes: usize) -> Result<Self> {
        Self::open_or_create_with(name, capacity, max_message_bytes, &Options::new())
    }

    /// [`ByteQueue::open_or_create`] with options.
    ///
    /// # Errors
    /// As [`ByteQueue::open_or_create`].
    pub fn open_or_create_with(name: &str, capacity: usize, max_message_bytes: usize, opts: &Options) -> Result<Self> {
        object::open_or_create(name, (capacity, max_message_bytes), opts)
    }

    /// Claims the next slot and never publishes it, as a process killed in
    /// the middle of `put` would (for `crate::testing`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn claim_only(&self) -> bool {
        self.join_side(true) && self.raw.claim_only()
    }

    /// Claims the next slot, copies half of `msg` into it and never
    /// publishes it, as a process killed in the middle of copying a message
    /// would (for `crate::testing`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn abandon_half_put(&self, msg: &[u8]) -> bool {
        self.join_side(true) && arena::abandon_half_put(&self.raw, &self.arena, msg)
    }

    fn join_side(&self, sending: bool) -> bool {
        let cell = if sending { &self.joined_tx } else { &self.joined_rx };
        *cell.get_or_init(|| {
            self.raw.join(sending);
            true
        })
    }

    fn gone(&self) -> PutBytesError {
        if self.raw.is_closed() {
            PutBytesError::Closed
        } else {
            PutBytesError::Disconnected
        }
    }

    /// One put; `None` if full (or, without `linear`, the slot is busy).
    fn attempt_put(&self, msg: &[u8], linear: bool) -> Option<Result<(), PutBytesError>> {
        if self.raw.send_shut() {
            return Some(Err(self.gone()));
        }
        match arena::try_put(&self.raw, &self.arena, linear, msg) {
            Ok(Ok(())) => Some(Ok(())),
            Ok(Err(arena::NoSpace)) => Some(Err(PutBytesError::NoSpace { len: msg.len() })),
            Err(Blocked::Wait | Blocked::Busy) => None,
            Err(Blocked::Corrupt) => Some(Err(PutBytesError::Disconnected)),
        }
    }

    fn put_impl(&self, msg: &[u8], form: Form) -> Result<(), PutBytesError> {
        if msg.len() > self.max {
            return Err(PutBytesError::TooLarge { len: msg.len(), max: self.max });
        }
        if !self.join_side(true) {
            return Err(PutBytesError::Disconnected);
        }
        if let Some(r) = self.attempt_put(msg, matches!(form, Form::Try)) {
            return r;
        }
        if self.raw.peer_gone(true, false) {
            return Err(self.gone());
        }
        if let Form::Try = form {
            return Err(PutBytesError::Full);
        }
        match self.raw.block(true, form.deadline(), || self.attempt_put(msg, false)) {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(PutBytesError::Full),
            Waited::Gone => Err(self.gone()),
        }
    }

    /// Puts `msg`, waiting while the queue is full.
    ///
    /// # Errors
    /// [`PutBytesError::TooLarge`], [`PutBytesError::Closed`],
    /// [`PutBytesError::Disconnected`]; [`PutBytesError::NoSpace`] if a
    /// message longer than the inline part of a slot finds no memory for its
    /// pages (the tmpfs of `/dev/shm` is full).
    pub fn put(&self, msg: &[u8]) -> Result<(), PutBytesError> {
        self.put_impl(msg, Form::Block)
    }

    /// Puts `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PutBytesError::Full`] if still full at the timeout, and as
    /// [`ByteQueue::put`].
    pub fn put_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), PutBytesError> {
        self.put_impl(msg, Form::Timeout(timeout))
    }

    /// Puts `msg` if there is room now.
    ///
    /// # Errors
    /// [`PutBytesError::Full`], and as [`ByteQueue::put`].
    pub fn try_put(&self, msg: &[u8]) -> Result<(), PutBytesError> {
        self.put_impl(msg, Form::Try)
    }

    /// Puts every message of `msgs` in order, waiting while the queue is full.
    ///
    /// # Errors
    /// As [`ByteQueue::put`]; the messages before the failing one were put.
    pub fn put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<(), PutBytesError> {
        msgs.iter().try_for_each(|m| self.put(m.as_ref()))
    }

    /// Puts as many of `msgs` as fit now, in order; returns how many.
    pub fn try_put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> usize {
        msgs.iter().take_while(|m| self.try_put(m.as_ref()).is_ok()).count()
    }

    /// One get; `None` if empty (or, without `linear`, the slot is busy).
    /// Skips slots whose put found no memory.
    fn attempt_get(&self, linear: bool) -> Option<Result<Vec<u8>, GetError>> {
        loop {
            return match arena::try_get(&self.raw, &self.arena, linear) {
                Ok(Got::Msg(v)) => Some(Ok(v)),
                Ok(Got::Dropped) => continue,
                Ok(Got::Corrupt) | Err(Blocked::Corrupt) => Some(Err(GetError::Disconnected)),
                Err(Blocked::Wait | Blocked::Busy) => None,
            };
        }
    }

    fn get_impl(&self, form: Form) -> Result<Vec<u8>, GetError> {
        if !self.join_side(false) {
            return Err(GetError::Disconnected);
        }
        if let Some(r) = self.attempt_get(matches!(form, Form::Try)) {
            return r;
        }
        if self.raw.peer_gone(false, false) {
            // Gone: drain what was published before (one attempt goes
            // through dead producers' claims; see `mpmc::Receiver`).
            return self.attempt_get(true).unwrap_or(Err(GetError::Disconnected));
        }
        if let Form::Try = form {
            return Err(GetError::Empty);
        }
        match self.raw.block(false, form.deadline(), || self.attempt_get(false)) {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(GetError::Empty),
            Waited::Gone => self.attempt_get(true).unwrap_or(Err(GetError::Disconnected)),
        }
    }

    /// Takes the oldest message, waiting while the queue is empty.
    ///
    /// # Errors
    /// [`GetError::Disconnected`] once the queue is empty and closed, or
    /// every producer is gone (or the queue was found corrupted).
    pub fn get(&self) -> Result<Vec<u8>, GetError> {
        self.get_impl(Form::Block)
    }

    /// Takes the oldest message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetError::Empty`] if nothing arrived in time, and as [`ByteQueue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<u8>, GetError> {
        self.get_impl(Form::Timeout(timeout))
    }

    /// Takes the oldest message if there is one.
    ///
    /// # Errors
    /// [`GetError::Empty`], and as [`ByteQueue::get`].
    pub fn try_get(&self) -> Result<Vec<u8>, GetError> {
        self.get_impl(Form::Try)
    }

    /// Waits for at least one message, then takes as many as are available
    /// (up to `max`); returns them oldest first.
    ///
    /// # Errors
    /// As [`ByteQueue::get`].
    pub fn get_many(&self, max: usize) -> Result<Vec<Vec<u8>>, GetError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut out = vec![self.get()?];
        while out.len() < max {
            match self.attempt_get(false) {
                Some(Ok(v)) => out.push(v),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Takes up to `max` messages available now (possibly none).
    pub fn try_get_many(&self, max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if !self.join_side(false) {
            return out;
        }
        while out.len() < max {
            match self.attempt_get(false) {
                Some(Ok(v)) => out.push(v),
                _ => break,
            }
        }
        out
    }

    /// Messages in the queue now (exact when no put or get is in progress).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the queue is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full now.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The capacity in messages, exactly as asked for at create.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// The largest message accepted.
    pub fn max_message_bytes(&self) -> usize {
        self.max
    }

    /// Messages lost with processes that died in the middle of a put or get.
    pub fn lost(&self) -> u64 {
        self.raw.lost()
    }

    /// Ends putting for everyone; gets drain, then fail with
    /// [`GetError::Disconnected`].
    pub fn close(&self) {
        self.raw.close();
    }

    /// Whether [`ByteQueue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.raw.is_closed()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.raw.segment().name()
    }
}

#[cfg(feature = "serde")]
impl ByteQueue {
    /// Puts any serialisable value (postcard encoding).
    ///
    /// # Errors
    /// [`PutBytesError::Encode`] if it cannot be encoded,
    /// [`PutBytesError::TooLarge`] if its encoding is longer than
    /// `max_message_bytes`, and as [`ByteQueue::put`].
    pub fn put_value<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<(), PutBytesError> {
        let v = postcard::to_allocvec(value).map_err(|e| PutBytesError::Encode(e.to_string()))?;
        self.put(&v)
    }

    /// Takes a value put with [`ByteQueue::put_value`], waiting while the
    /// queue is empty.
    ///
    /// # Errors
    /// [`GetValueError::Disconnected`] as [`ByteQueue::get`];
    /// [`GetValueError::Decode`] for a message that is not a valid `T` (it is
    /// consumed).
    pub fn get_value<T: serde::de::DeserializeOwned>(&self) -> Result<T, GetValueError> {
        let m = self.get()?;
        postcard::from_bytes(&m).map_err(|e| GetValueError::Decode(e.to_string()))
    }
}

#[cfg(feature = "async")]
impl<T: Pod> Queue<T> {
    /// For `crate::asynch`: the word a putter (`sending`) or getter sleeps on.
    pub(crate) fn async_hook(&self, sending: bool) -> crate::asynch::Hook<'_> {
        self.ring.raw().async_hook(sending)
    }
}

#[cfg(feature = "async")]
impl<T: Pod> JoinableQueue<T> {
    /// For `crate::asynch`: the word `join` sleeps on.
    pub(crate) fn async_join_hook(&self) -> crate::asynch::Hook<'_> {
        let t = self.q.tasks.expect("a JoinableQueue has task counters");
        let strategy = self.q.ring.raw().wait_strategy();
        crate::asynch::Hook::new(
            strategy,
            t.word(self.q.ring.raw().segment()),
            crate::asynch::How::Flag(WAITING),
            || false,
        )
    }
}

#[cfg(feature = "async")]
impl ByteQueue {
    /// For `crate::asynch`: the word a putter (`sending`) or getter sleeps on.
    pub(crate) fn async_hook(&self, sending: bool) -> crate::asynch::Hook<'_> {
        self.raw.async_hook(sending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &str) -> String {
        format!("ringshm-ut-queue-{t}-{}", std::process::id())
    }

    #[test]
    fn queue_basics() {
        let q = Queue::<u64>::create(&name("basic"), 5).unwrap();
        assert_eq!(q.capacity(), 5);
        assert_eq!(q.try_get(), Err(GetError::Empty));
        assert_eq!(q.get_timeout(Duration::from_millis(5)), Err(GetError::Empty));
        // Exactly 5, like Python's Queue(5), though the ring has 8 slots.
        for i in 0..5 {
            q.try_put(i).unwrap();
        }
        assert!(q.is_full());
        assert_eq!(q.len(), 5);
        assert_eq!(q.try_put(9), Err(PutError::Full(9)));
        assert_eq!(q.put_timeout(9, Duration::from_millis(5)), Err(PutError::Full(9)));
        let mut out = [0u64; 2];
        assert_eq!(q.get_many(&mut out), Ok(2));
        assert_eq!(out, [0, 1]);
        q.put_many(&[10, 11]).unwrap();
        assert_eq!(q.len(), 5);
        let mut out = [0u64; 3];
        assert_eq!(q.get_many(&mut out), Ok(3));
        assert_eq!(out, [2, 3, 4]);
        q.close();
        assert_eq!(q.put(1), Err(PutError::Closed(1)));
        let mut all = Vec::new();
        while let Ok(v) = q.get() {
            all.push(v);
        }
        assert_eq!(all, [10, 11]);
        assert_eq!(q.try_get(), Err(GetError::Disconnected));
    }

    #[test]
    fn joinable_counts() {
        let q = JoinableQueue::<u32>::create(&name("join"), 4).unwrap();
        assert!(q.join_timeout(Duration::ZERO));
        assert_eq!(q.task_done(), Err(TaskDoneError));
        q.put(1).unwrap();
        q.put(2).unwrap();
        assert_eq!(q.unfinished_tasks(), 2);
        assert!(!q.join_timeout(Duration::from_millis(5)));
        assert_eq!(q.task_done(), Err(TaskDoneError), "nothing taken yet");
        assert_eq!(q.get().unwrap(), 1);
        q.task_done().unwrap();
        assert_eq!(q.task_done(), Err(TaskDoneError));
        assert_eq!(q.unfinished_tasks(), 1);
        assert_eq!(q.get().unwrap(), 2);
        q.task_done().unwrap();
        assert!(q.join_timeout(Duration::from_millis(5)));
        q.join();
        // A failed put takes its task back.
        for i in 0..4 {
            q.put(i).unwrap();
        }
        assert!(q.try_put(9).is_err());
        assert_eq!(q.unfinished_tasks(), 4);
        let q2 = JoinableQueue::<u32>::open(&name("join")).unwrap();
        assert_eq!(q2.unfinished_tasks(), 4);
    }

    #[test]
    fn byte_queue_basics() {
        let q = ByteQueue::create(&name("bytes"), 4, 100).unwrap();
        assert_eq!(q.max_message_bytes(), 100);
        q.put(b"").unwrap();
        q.put(&[7; 100]).unwrap();
        assert_eq!(q.put(&[0; 101]), Err(PutBytesError::TooLarge { len: 101, max: 100 }));
        let o = ByteQueue::open(&name("bytes")).unwrap();
        assert_eq!(o.max_message_bytes(), 100);
        assert_eq!(o.get().unwrap(), b"");
        assert_eq!(o.get().unwrap(), vec![7; 100]);
        assert_eq!(o.try_get(), Err(GetError::Empty));
        assert_eq!(q.try_put_many(&[b"a", b"b", b"c", b"d", b"e"]), 4);
        assert_eq!(q.try_put(b"f"), Err(PutBytesError::Full));
        assert_eq!(o.get_many(10).unwrap(), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]);
        assert!(matches!(Queue::<u64>::open(&name("bytes")), Err(Error::WrongKind { .. })));
    }
}
