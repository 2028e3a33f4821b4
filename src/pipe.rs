//! Python's `multiprocessing.Pipe`: a two-ended connection that carries
//! whole byte messages, by name between any processes or anonymously across
//! `fork()`.
//!
//! ```
//! use ringshm::Pipe;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let name = format!("doc-pipe-login-{}", std::process::id());
//! // process 1: end A
//! let a = Pipe::create(&name, 64 * 1024)?;
//! a.send_bytes(b"can app1 use your account?")?;
//! // process 2 (here the same one, for brevity): end B
//! let b = Pipe::open(&name)?;
//! assert_eq!(b.recv_bytes()?, b"can app1 use your account?");
//! b.send_bytes(b"yes")?;
//! assert_eq!(a.recv_bytes()?, b"yes");
//! # Ok(()) }
//! ```
//!
//! # Implementation details
//!
//! A pipe segment holds one byte ring per direction (one if the pipe is
//! one-way), framed as described in `src/ring/bytes.rs`:
//!
//! ```text
//! body: | Shared A->B | Shared B->A | data A->B (cap bytes) | data B->A (cap bytes) |
//! ```
//!
//! Each end is a role held through a kernel lock (end A = role 0, end B =
//! role 1), so a second handle on the same end is refused and an end whose
//! process died is noticed by the other end without its help. End A writes
//! the first ring and reads the second; end B the reverse. Closing an end
//! marks its two side words `CLOSED` and wakes the peer: the peer's receives
//! drain what is left, then report end-of-file, and its sends fail at once.
//! This file is a safe facade: all `unsafe` code lives in the ring.
//!
//! Errors (all in `crate::error`): sends fail with [`PipeSendError`].
//! Receives of whole byte messages (`recv_bytes`, `recv_with`) can only fail
//! for want of a message and use the channel family ([`crate::RecvError`] —
//! Python's `EOFError` — [`crate::TryRecvError`], [`crate::RecvTimeoutError`]);
//! receives that can also refuse the message itself (`recv_bytes_into`,
//! `recv::<T>`, `recv_value`) use [`PipeRecvError`] (also named
//! [`RecvIntoError`] and [`RecvValueError`]), into which the channel family
//! converts, so one `?` carries any receive error of a pipe.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{Error, RecvError, RecvTimeoutError, Result, TryRecvError};
use crate::ring::bytes::{self, Place, Rx, Take, Tx, TxError};
use crate::ring::spsc::Shared;
use crate::shm::header::{HeaderData, Kind};
use crate::shm::lock::RoleLock;
use crate::shm::object::{self, Shape, SharedObject};
use crate::shm::{Options, Segment, WaitStrategy};
use crate::sync::wait;

/// Role number of end A.
const ROLE_A: u32 = 0;
/// Role number of end B.
const ROLE_B: u32 = 1;
/// Bytes of one direction's control block.
const SHARED: usize = core::mem::size_of::<Shared>();

/// Which end of a pipe a handle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// The creator's end. In a one-way pipe it only sends.
    A,
    /// The opener's end. In a one-way pipe it only receives.
    B,
}

impl End {
    fn role(self) -> u32 {
        match self {
            End::A => ROLE_A,
            End::B => ROLE_B,
        }
    }
    fn role_name(self) -> &'static str {
        match self {
            End::A => "pipe end A",
            End::B => "pipe end B",
        }
    }
    fn other(self) -> End {
        match self {
            End::A => End::B,
            End::B => End::A,
        }
    }
}

pub use crate::error::{PipeRecvError, PipeSendError, RecvIntoError, RecvValueError};

/// How long an operation may wait.
#[derive(Clone, Copy)]
enum Form {
    Try,
    Block,
    Timeout(Duration),
}

impl Form {
    /// `Some(None)`: do not wait; `None`: forever; `Some(Some(d))`: until `d`.
    fn deadline(self) -> Option<Option<Instant>> {
        match self {
            Form::Try => Some(None),
            Form::Block => None,
            // A timeout too large to represent waits forever.
            Form::Timeout(d) => wait::deadline(Some(d)).map(Some),
        }
    }
    /// Maps an internal "still empty" to the form's error.
    fn empty<E>(self, empty: E, timeout: E) -> E {
        match self {
            Form::Timeout(_) => timeout,
            _ => empty,
        }
    }
}

struct State {
    tx: Option<Tx>,
    rx: Option<Rx>,
    role: Option<RoleLock>,
    open: bool,
}

/// One end of a pipe: sends and receives whole byte messages (or `Pod`
/// values, or any serde value with the `serde` feature).
///
/// Python's `multiprocessing.connection.Connection`; [`Connection`] is
/// another name for it. Methods take `&self` (like Python's); a `Pipe` is
/// `Send` but not `Sync`: one thread at a time uses an end.
///
/// # Memory ordering
/// A message's bytes are written, then its frame is published with one
/// `Release` store of the frame's header word; the receiver polls that word
/// with `Acquire`, which makes the whole frame visible before it is read,
/// and it hands the space back with a `Release` store of its head that the
/// sender loads with `Acquire` before reusing it. So everything a process wrote
/// before `send_bytes` *happens before* the peer's `recv_bytes` of that
/// message returns.
///
/// # Across processes
/// [`Pipe::create`] makes end A of a named pipe and [`Pipe::open`] end B,
/// from any process that knows the name. Each end is held by one live handle
/// at a time ([`Error::RoleTaken`] otherwise); the kernel frees it when the
/// handle drops or its process dies, so the other end sees end-of-file —
/// after receiving everything that was sent — even if the peer was
/// `SIGKILL`ed. [`Pipe::pair`] makes an anonymous pipe for `fork()`: as in
/// Python, each process should drop the end it does not use, or the pipe
/// never reports end-of-file (the unused copy keeps the end alive).
///
/// Copies of one end made by `fork()` may all use it, as in Python: several
/// processes send on one end (or receive on one) if they take turns, e.g.
/// under a [`crate::Lock`] held around each `send_bytes` (or `recv_bytes`).
/// Each copy catches up with what the others did before it sends or
/// receives. Copies that use an end *at the same time* without a lock are a
/// usage error: messages may be torn or lost and the pipe poisoned, but
/// nothing is read out of bounds. A copy that is closed or whose process
/// exits leaves the end open as long as another copy holds it.
pub struct Pipe {
    seg: Arc<Segment>,
    end: End,
    duplex: bool,
    cap: usize,
    max: usize,
    st: RefCell<State>,
}

/// Another name for [`Pipe`], matching Python's `Connection`.
pub type Connection = Pipe;

impl fmt::Debug for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipe")
            .field("name", &self.seg.name())
            .field("end", &self.end)
            .field("duplex", &self.duplex)
            .field("capacity", &self.cap)
            .finish_non_exhaustive()
    }
}

fn body_size(dirs: usize, cap: usize) -> usize {
    dirs * (SHARED + cap)
}

fn place(dirs: usize, cap: usize, dir: usize) -> Place {
    Place { shared: dir * SHARED, data: dirs * SHARED + dir * cap, cap }
}

/// Checks the stored capacity and direction count; returns `(dirs, cap)`.
fn stored_layout(name: &str, h: &HeaderData) -> Result<(usize, usize)> {
    let cap = bytes::stored_data_capacity(name, h.capacity)?;
    let dirs = match h.params[0] {
        1 => 1,
        2 => 2,
        d => {
            return Err(Error::Corrupted {
                name: name.into(),
                reason: format!("stored direction count {d} is not 1 or 2"),
            })
        }
    };
    Ok((dirs, cap))
}

/// `Pipe::create` parameters: the capacity in bytes (the direction count
/// comes from `Options::duplex`).
impl SharedObject for Pipe {
    type Params<'a> = usize;
    const KIND: Kind = Kind::Pipe;

    fn shape(capacity: &usize, opts: &Options) -> Result<Shape> {
        let dirs = if opts.duplex { 2 } else { 1 };
        let cap = bytes::data_capacity(*capacity)?;
        Ok(Shape { capacity: cap as u64, params: [dirs as u64, 0, 0, 0], body_size: body_size(dirs, cap) })
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        let (dirs, cap) = stored_layout(name, h)?;
        Ok(body_size(dirs, cap))
    }

    /// The creator gets end A, an opener end B.
    fn from_segment(seg: Segment, opts: &Options, created: bool) -> Result<Self> {
        Self::take_end(Arc::new(seg), if created { End::A } else { End::B }, opts.wait)
    }
}

impl Pipe {
    /// Takes `end` of the pipe in `seg`.
    fn take_end(seg: Arc<Segment>, end: End, wait: WaitStrategy) -> Result<Pipe> {
        let name = seg.name().to_owned();
        let (dirs, cap) = stored_layout(&name, seg.header())?;
        let role = seg.take_role(end.role(), end.role_name(), false)?;
        let peer = end.other().role();
        // Direction 0 is A -> B, direction 1 is B -> A.
        let (tx_dir, rx_dir) = match end {
            End::A => (Some(0), (dirs == 2).then_some(1)),
            End::B => ((dirs == 2).then_some(1), Some(0)),
        };
        let tx = tx_dir.map(|d| Tx::attach(seg.clone(), place(dirs, cap, d), peer, wait)).transpose()?;
        let rx = rx_dir.map(|d| Rx::attach(seg.clone(), place(dirs, cap, d), peer, wait)).transpose()?;
        let max = bytes::Writer::max_for(cap);
        let st = RefCell::new(State { tx, rx, role, open: true });
        let p = Pipe { seg, end, duplex: dirs == 2, cap, max, st };
        if p.is_poisoned() {
            return Err(Error::Corrupted {
                name,
                reason: "the pipe was poisoned: its indices were found out of range".into(),
            });
        }
        Ok(p)
    }

    /// Creates a named pipe whose messages may be up to `capacity` bytes long,
    /// and returns its end A. Duplex: both ends send and receive.
    ///
    /// Each direction buffers `capacity + 16` bytes rounded up to a power
    /// of two (at least 128): [`Pipe::capacity`]; 8 bytes of it frame each
    /// message, and 8 more mark the place after the newest message as empty
    /// (so the receiver can poll the frame header instead of an index).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`],
    /// [`Error::InvalidArgument`] for a capacity that is too large,
    /// [`Error::NoSpace`], [`Error::PermissionDenied`].
    pub fn create(name: &str, capacity: usize) -> Result<Pipe> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// [`Pipe::create`] with options: mode, persist, wait strategy, and
    /// `duplex(false)` for a one-way pipe in which end A only sends and end
    /// B only receives.
    ///
    /// # Errors
    /// As [`Pipe::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Pipe> {
        object::create(name, capacity, opts)
    }

    /// Opens end B of an existing named pipe.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::WrongKind`], [`Error::VersionMismatch`],
    /// [`Error::Corrupted`], [`Error::PermissionDenied`], and
    /// [`Error::RoleTaken`] if a live handle already holds end B.
    pub fn open(name: &str) -> Result<Pipe> {
        Self::open_end_with(name, End::B, &Options::new())
    }

    /// [`Pipe::open`] with options (wait strategy).
    ///
    /// # Errors
    /// As [`Pipe::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Pipe> {
        Self::open_end_with(name, End::B, opts)
    }

    /// Opens a chosen end of an existing named pipe — e.g. end A again in a
    /// process that restarts after the creator's death (with `persist`).
    ///
    /// # Errors
    /// As [`Pipe::open`]; [`Error::RoleTaken`] if a live handle holds `end`.
    pub fn open_end(name: &str, end: End) -> Result<Pipe> {
        Self::open_end_with(name, end, &Options::new())
    }

    /// [`Pipe::open_end`] with options (wait strategy).
    ///
    /// # Errors
    /// As [`Pipe::open_end`].
    pub fn open_end_with(name: &str, end: End, opts: &Options) -> Result<Pipe> {
        Self::take_end(Arc::new(object::open_segment::<Pipe>(name)?), end, opts.wait)
    }

    /// Creates the pipe and returns end A, or — if it exists — opens it and
    /// returns end B. Race-free between processes.
    ///
    /// # Errors
    /// As [`Pipe::create`] and [`Pipe::open`].
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Pipe> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Pipe::open_or_create`] with options.
    ///
    /// # Errors
    /// As [`Pipe::open_or_create`].
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Pipe> {
        object::open_or_create(name, capacity, opts)
    }

    /// An anonymous duplex pipe (a `memfd`, no name), Python's `Pipe()`: both
    /// ends, to be shared with a child through `fork()`.
    ///
    /// # Across processes
    /// After `fork()`, each process should drop the end it does not use:
    /// an end is alive while any process holds a copy of it.
    ///
    /// # Panics
    /// Like Python's `Pipe()`, it has no error to return: if the system
    /// refuses the memory (no memfd, no space) or `capacity` is absurd, it
    /// panics with the reason. [`Pipe::try_pair`] returns the error instead.
    pub fn pair(capacity: usize) -> (Connection, Connection) {
        Self::try_pair(capacity).unwrap_or_else(|e| panic!("Pipe::pair({capacity}): {e}"))
    }

    /// [`Pipe::pair`] that returns the error instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a capacity that is too large,
    /// [`Error::NoSpace`], [`Error::Io`].
    pub fn try_pair(capacity: usize) -> Result<(Connection, Connection)> {
        Self::pair_with(capacity, &Options::new())
    }

    /// [`Pipe::try_pair`] with options (`duplex(false)`: the first end only
    /// sends, the second only receives — Python's `Pipe(duplex=False)`
    /// returns them the other way round; wait strategy).
    ///
    /// # Errors
    /// As [`Pipe::try_pair`].
    pub fn pair_with(capacity: usize, opts: &Options) -> Result<(Connection, Connection)> {
        let seg = Arc::new(object::anonymous_segment::<Pipe>("ringshm-pipe", &capacity, opts)?);
        let a = Self::take_end(seg.clone(), End::A, opts.wait)?;
        let b = Self::take_end(seg, End::B, opts.wait)?;
        Ok((a, b))
    }

    // -- properties --------------------------------------------------------

    /// Which end this handle is.
    pub fn end(&self) -> End {
        self.end
    }

    /// The segment name (a label for anonymous pipes).
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Whether both ends send and receive.
    pub fn is_duplex(&self) -> bool {
        self.duplex
    }

    /// Whether this end can receive (Python's `readable`): false for end A
    /// of a one-way pipe, and after [`Pipe::close`].
    pub fn readable(&self) -> bool {
        self.st.borrow().rx.is_some()
    }

    /// Whether this end can send (Python's `writable`): false for end B of a
    /// one-way pipe, and after [`Pipe::close`].
    pub fn writable(&self) -> bool {
        self.st.borrow().tx.is_some()
    }

    /// Bytes buffered per direction (a power of two), framing included.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The longest message this pipe accepts (`capacity() - 16`, at least the
    /// capacity asked for at creation).
    pub fn max_message_len(&self) -> usize {
        self.max
    }

    /// Whether this handle was closed.
    pub fn is_closed(&self) -> bool {
        !self.st.borrow().open
    }

    /// Whether the other end is gone (closed, or its process died). Asks
    /// the kernel.
    pub fn is_peer_gone(&self) -> bool {
        let mut st = self.state();
        let st = &mut *st;
        match (&mut st.rx, &mut st.tx) {
            (Some(rx), _) => rx.is_peer_gone(),
            (None, Some(tx)) => tx.is_peer_gone(),
            (None, None) => true,
        }
    }

    /// Whether a corrupted index or length was found in this pipe (every
    /// operation then reports it as disconnected).
    pub fn is_poisoned(&self) -> bool {
        let (dirs, cap) = (if self.duplex { 2 } else { 1 }, self.cap);
        (0..dirs).any(|d| {
            let sh = self.seg.body_at::<Shared>(place(dirs, cap, d).shared);
            (sh.prod.ctl.load(std::sync::atomic::Ordering::Relaxed)
                | sh.cons.ctl.load(std::sync::atomic::Ordering::Relaxed))
                & crate::ring::POISONED
                != 0
        })
    }

    /// Changes how this handle's blocking calls wait.
    pub fn set_wait_strategy(&self, wait: WaitStrategy) {
        let mut st = self.state();
        if let Some(tx) = &mut st.tx {
            tx.wait = wait;
        }
        if let Some(rx) = &mut st.rx {
            rx.wait = wait;
        }
    }

    fn state(&self) -> std::cell::RefMut<'_, State> {
        self.st.try_borrow_mut().expect(
            "ringshm::Pipe used re-entrantly: do not call a Pipe's methods from inside its send_with/recv_with closure",
        )
    }

    // -- sending -----------------------------------------------------------

    fn send_impl<R>(&self, len: usize, form: Form, fill: impl FnOnce(&mut [u8]) -> R) -> Result<R, PipeSendError> {
        let mut st = self.state();
        if !st.open {
            return Err(PipeSendError::Closed);
        }
        let Some(tx) = &mut st.tx else { return Err(PipeSendError::WrongDirection) };
        tx.send_with_deadline(len, form.deadline(), fill).map_err(|e| match e {
            TxError::Full => form.empty(PipeSendError::Full, PipeSendError::Timeout),
            TxError::Disconnected => PipeSendError::Disconnected,
            TxError::TooLarge { len, max } => PipeSendError::TooLarge { len, max },
        })
    }

    /// Sends `msg` as one message, waiting while the pipe is full. (A
    /// message that does not fit before the end of the ring waits for the
    /// receiver to catch up; any message up to [`Pipe::max_message_len`]
    /// goes through once everything queued before it was received.)
    ///
    /// # Errors
    /// [`PipeSendError::Disconnected`] if the other end is gone (it fails
    /// instead of blocking), [`PipeSendError::TooLarge`],
    /// [`PipeSendError::WrongDirection`], [`PipeSendError::Closed`].
    pub fn send_bytes(&self, msg: &[u8]) -> Result<(), PipeSendError> {
        self.send_impl(msg.len(), Form::Block, |b| b.copy_from_slice(msg))
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    /// [`PipeSendError::Full`], and as [`Pipe::send_bytes`].
    pub fn try_send_bytes(&self, msg: &[u8]) -> Result<(), PipeSendError> {
        self.send_impl(msg.len(), Form::Try, |b| b.copy_from_slice(msg))
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PipeSendError::Timeout`], and as [`Pipe::send_bytes`].
    pub fn send_bytes_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), PipeSendError> {
        self.send_impl(msg.len(), Form::Timeout(timeout), |b| b.copy_from_slice(msg))
    }

    /// Sends a `Pod` value as a message of `size_of::<T>()` bytes (no
    /// intermediate buffer).
    ///
    /// # Errors
    /// As [`Pipe::send_bytes`].
    pub fn send<T: Pod>(&self, value: &T) -> Result<(), PipeSendError> {
        self.send_bytes(bytemuck::bytes_of(value))
    }

    /// [`Pipe::send`] if there is room now.
    ///
    /// # Errors
    /// As [`Pipe::try_send_bytes`].
    pub fn try_send<T: Pod>(&self, value: &T) -> Result<(), PipeSendError> {
        self.try_send_bytes(bytemuck::bytes_of(value))
    }

    /// [`Pipe::send`] waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Pipe::send_bytes_timeout`].
    pub fn send_timeout<T: Pod>(&self, value: &T, timeout: Duration) -> Result<(), PipeSendError> {
        self.send_bytes_timeout(bytemuck::bytes_of(value), timeout)
    }

    /// Zero-copy send: reserves a `len`-byte message in the pipe, lets `fill`
    /// write it in place, then publishes it. Waits while the pipe is full.
    /// Returns what `fill` returns.
    ///
    /// The buffer holds stale bytes: `fill` should overwrite all of it.
    ///
    /// # Errors
    /// As [`Pipe::send_bytes`]; `fill` is not called then.
    ///
    /// # Panics
    /// If `fill` calls a method of this same `Pipe`. If `fill` panics, the
    /// message is not sent.
    pub fn send_with<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Result<R, PipeSendError> {
        self.send_impl(len, Form::Block, fill)
    }

    /// [`Pipe::send_with`] if there is room now.
    ///
    /// # Errors
    /// As [`Pipe::try_send_bytes`].
    ///
    /// # Panics
    /// As [`Pipe::send_with`].
    pub fn try_send_with<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Result<R, PipeSendError> {
        self.send_impl(len, Form::Try, fill)
    }

    /// [`Pipe::send_with`] waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Pipe::send_bytes_timeout`].
    ///
    /// # Panics
    /// As [`Pipe::send_with`].
    pub fn send_with_timeout<R>(
        &self,
        len: usize,
        timeout: Duration,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, PipeSendError> {
        self.send_impl(len, Form::Timeout(timeout), fill)
    }

    // -- receiving ---------------------------------------------------------

    fn recv_impl<R>(&self, form: Form, f: impl FnOnce(&[u8]) -> Take<R>) -> Result<R, TryRecvError> {
        let mut st = self.state();
        if !st.open {
            return Err(TryRecvError::Disconnected);
        }
        let Some(rx) = &mut st.rx else { return Err(TryRecvError::Disconnected) };
        rx.recv_with(form.deadline(), f)
    }

    /// Receives the next message into a new vector, waiting while none is
    /// there.
    ///
    /// # Errors
    /// [`RecvError`] (Python's `EOFError`) once every message sent before
    /// the other end went away (closed, or its process died) was received;
    /// also for end A of a one-way pipe, after [`Pipe::close`], and when the
    /// pipe was found corrupted.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        self.recv_impl(Form::Block, |m| Take::Consume(m.to_vec())).map_err(|_| RecvError)
    }

    /// Receives the next message if one is waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] as for
    /// [`Pipe::recv_bytes`].
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, TryRecvError> {
        self.recv_impl(Form::Try, |m| Take::Consume(m.to_vec()))
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Disconnected`]
    /// as for [`Pipe::recv_bytes`].
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_impl(Form::Timeout(timeout), |m| Take::Consume(m.to_vec())).map_err(bytes::timeout_err)
    }

    fn recv_into_impl(&self, buf: &mut [u8], form: Form) -> Result<usize, RecvIntoError> {
        let r = self.recv_impl(form, |m| {
            if m.len() > buf.len() {
                Take::Keep(Err(m.len()))
            } else {
                buf[..m.len()].copy_from_slice(m);
                Take::Consume(Ok(m.len()))
            }
        });
        match r {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(needed)) => Err(RecvIntoError::BufferTooShort { needed }),
            Err(TryRecvError::Empty) => Err(form.empty(RecvIntoError::Empty, RecvIntoError::Timeout)),
            Err(TryRecvError::Disconnected) => Err(RecvIntoError::Disconnected),
        }
    }

    /// Receives the next message into `buf`, returning its length; waits
    /// while none is there.
    ///
    /// # Errors
    /// [`RecvIntoError::BufferTooShort`] if the message is longer than `buf`
    /// — it stays queued, retry with a buffer of at least `needed` bytes;
    /// [`RecvIntoError::Disconnected`] as for [`Pipe::recv_bytes`].
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, RecvIntoError> {
        self.recv_into_impl(buf, Form::Block)
    }

    /// [`Pipe::recv_bytes_into`] if a message is waiting.
    ///
    /// # Errors
    /// [`RecvIntoError::Empty`], and as [`Pipe::recv_bytes_into`].
    pub fn try_recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, RecvIntoError> {
        self.recv_into_impl(buf, Form::Try)
    }

    /// [`Pipe::recv_bytes_into`] waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvIntoError::Timeout`], and as [`Pipe::recv_bytes_into`].
    pub fn recv_bytes_into_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, RecvIntoError> {
        self.recv_into_impl(buf, Form::Timeout(timeout))
    }

    fn recv_pod_impl<T: Pod>(&self, form: Form) -> Result<T, RecvValueError> {
        let size = core::mem::size_of::<T>();
        let r = self.recv_impl(form, |m| {
            if m.len() == size {
                Take::Consume(Ok(bytemuck::pod_read_unaligned::<T>(m)))
            } else {
                Take::Keep(Err(m.len()))
            }
        });
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(found)) => Err(RecvValueError::WrongSize { expected: size, found }),
            Err(TryRecvError::Empty) => Err(form.empty(RecvValueError::Empty, RecvValueError::Timeout)),
            Err(TryRecvError::Disconnected) => Err(RecvValueError::Disconnected),
        }
    }

    /// Receives a `Pod` value sent with [`Pipe::send`], waiting while none
    /// is there.
    ///
    /// # Errors
    /// [`RecvValueError::Disconnected`] as for [`Pipe::recv_bytes`];
    /// [`RecvValueError::WrongSize`] if the next message is not
    /// `size_of::<T>()` bytes (it stays queued).
    pub fn recv<T: Pod>(&self) -> Result<T, RecvValueError> {
        self.recv_pod_impl(Form::Block)
    }

    /// [`Pipe::recv`] if a message is waiting.
    ///
    /// # Errors
    /// [`RecvValueError::Empty`], and as [`Pipe::recv`].
    pub fn try_recv<T: Pod>(&self) -> Result<T, RecvValueError> {
        self.recv_pod_impl(Form::Try)
    }

    /// [`Pipe::recv`] waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvValueError::Timeout`], and as [`Pipe::recv`].
    pub fn recv_timeout<T: Pod>(&self, timeout: Duration) -> Result<T, RecvValueError> {
        self.recv_pod_impl(Form::Timeout(timeout))
    }

    /// Zero-copy receive: shows the next message to `f` in place (waiting
    /// while none is there), then consumes it. Returns what `f` returns.
    ///
    /// # Errors
    /// [`RecvError`] as for [`Pipe::recv_bytes`]; `f` is not called then.
    ///
    /// # Panics
    /// If `f` calls a method of this same `Pipe`. If `f` panics, the message
    /// stays queued.
    pub fn recv_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvError> {
        self.recv_impl(Form::Block, |m| Take::Consume(f(m))).map_err(|_| RecvError)
    }

    /// [`Pipe::recv_with`] if a message is waiting.
    ///
    /// # Errors
    /// As [`Pipe::try_recv_bytes`].
    ///
    /// # Panics
    /// As [`Pipe::recv_with`].
    pub fn try_recv_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, TryRecvError> {
        self.recv_impl(Form::Try, |m| Take::Consume(f(m)))
    }

    /// [`Pipe::recv_with`] waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Pipe::recv_bytes_timeout`].
    ///
    /// # Panics
    /// As [`Pipe::recv_with`].
    pub fn recv_with_timeout<R>(&self, timeout: Duration, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvTimeoutError> {
        self.recv_impl(Form::Timeout(timeout), |m| Take::Consume(f(m))).map_err(bytes::timeout_err)
    }

    /// Whether a receive would not block: a message is waiting, or the
    /// other end is gone (so a receive reports end-of-file at once), as
    /// Python's `poll`. `None` waits for that indefinitely, `Some(d)` at most
    /// `d` (`Some(Duration::ZERO)` does not wait).
    ///
    /// Also `true` for a handle that cannot receive (closed, or end A of a
    /// one-way pipe): its receives fail at once.
    pub fn poll(&self, timeout: Option<Duration>) -> bool {
        let form = match timeout {
            None => Form::Block,
            Some(d) if d.is_zero() => Form::Try,
            Some(d) => Form::Timeout(d),
        };
        let mut st = self.state();
        if !st.open {
            return true;
        }
        match &mut st.rx {
            Some(rx) => rx.poll(form.deadline()),
            None => true,
        }
    }

    /// Whether a message is waiting now: never blocks, never asks the kernel.
    pub fn has_message(&self) -> bool {
        let mut st = self.state();
        st.open && st.rx.as_mut().is_some_and(Rx::has_message)
    }

    // -- closing -----------------------------------------------------------

    /// Closes this end (also done on drop): the other end receives what was
    /// sent, then end-of-file, and its sends fail. Further calls on this
    /// handle fail ([`PipeSendError::Closed`], [`RecvError`]). Idempotent.
    ///
    /// # Across processes
    /// If a forked child still holds a copy of this end, the end stays open
    /// until that copy is closed too.
    pub fn close(&self) {
        let mut st = self.state();
        if !st.open {
            return;
        }
        st.open = false;
        let last = bytes::give_back_role(&self.seg, self.end.role(), st.role.take());
        if let Some(tx) = st.tx.take() {
            tx.close(last);
        }
        if let Some(rx) = st.rx.take() {
            rx.close(last);
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if self.st.try_borrow_mut().is_ok() {
            self.close();
        }
    }
}

#[cfg(feature = "serde")]
impl Pipe {
    /// Sends any serialisable value (postcard encoding), Python's
    /// `send(obj)`: serialised straight into the pipe, no allocation.
    ///
    /// # Errors
    /// [`PipeSendError::Encode`] if serialisation fails, and as
    /// [`Pipe::send_bytes`].
    pub fn send_value<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<(), PipeSendError> {
        let len = postcard::experimental::serialized_size(value).map_err(|e| PipeSendError::Encode(e.to_string()))?;
        self.send_with(len, |buf| postcard::to_slice(value, buf).map(|_| ()))?
            .map_err(|e| PipeSendError::Encode(e.to_string()))
    }

    fn recv_value_impl<T: serde::de::DeserializeOwned>(&self, form: Form) -> Result<T, RecvValueError> {
        match self.recv_impl(form, |m| Take::Consume(postcard::from_bytes::<T>(m))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RecvValueError::Decode(e.to_string())),
            Err(TryRecvError::Empty) => Err(form.empty(RecvValueError::Empty, RecvValueError::Timeout)),
            Err(TryRecvError::Disconnected) => Err(RecvValueError::Disconnected),
        }
    }

    /// Receives a value sent with [`Pipe::send_value`], Python's `recv()`:
    /// deserialised straight from the pipe. Waits while none is there.
    ///
    /// # Errors
    /// [`RecvValueError::Disconnected`] as for [`Pipe::recv_bytes`];
    /// [`RecvValueError::Decode`] if the message is not a valid `T` (it is
    /// consumed).
    pub fn recv_value<T: serde::de::DeserializeOwned>(&self) -> Result<T, RecvValueError> {
        self.recv_value_impl(Form::Block)
    }

    /// [`Pipe::recv_value`] if a message is waiting.
    ///
    /// # Errors
    /// [`RecvValueError::Empty`], and as [`Pipe::recv_value`].
    pub fn try_recv_value<T: serde::de::DeserializeOwned>(&self) -> Result<T, RecvValueError> {
        self.recv_value_impl(Form::Try)
    }

    /// [`Pipe::recv_value`] waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvValueError::Timeout`], and as [`Pipe::recv_value`].
    pub fn recv_value_timeout<T: serde::de::DeserializeOwned>(&self, timeout: Duration) -> Result<T, RecvValueError> {
        self.recv_value_impl(Form::Timeout(timeout))
    }
}

#[cfg(feature = "async")]
impl Pipe {
    /// For `crate::asynch`: the hook of this end's sending (`sending`) or
    /// receiving ring, if it has that direction and is open.
    pub(crate) fn async_hook(&self, sending: bool) -> Option<crate::asynch::Hook<'static>> {
        let st = self.state();
        if !st.open {
            return None;
        }
        if sending {
            st.tx.as_ref().map(Tx::async_hook)
        } else {
            st.rx.as_ref().map(Rx::async_hook)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &str) -> String {
        format!("ringshm-ut-pipe-{t}-{}", std::process::id())
    }

    #[test]
    fn duplex_round_trip_and_close() {
        let a = Pipe::create(&name("rt"), 1000).unwrap();
        let b = Pipe::open(&name("rt")).unwrap();
        assert!(matches!(Pipe::open(&name("rt")), Err(Error::RoleTaken { .. })));
        assert_eq!(a.capacity(), 1024);
        assert_eq!(a.max_message_len(), 1008);
        a.send_bytes(b"hello").unwrap();
        a.send_bytes(b"").unwrap();
        assert_eq!(b.recv_bytes().unwrap(), b"hello");
        assert_eq!(b.recv_bytes().unwrap(), b"");
        assert_eq!(b.try_recv_bytes(), Err(TryRecvError::Empty));
        b.send(&42u64).unwrap();
        assert_eq!(a.recv::<u64>().unwrap(), 42);
        assert_eq!(a.send_bytes(&[0; 1009]), Err(PipeSendError::TooLarge { len: 1009, max: 1008 }));
        a.send_bytes(b"last").unwrap();
        a.close();
        assert_eq!(a.send_bytes(b"x"), Err(PipeSendError::Closed));
        assert_eq!(b.recv_bytes().unwrap(), b"last");
        assert_eq!(b.recv_bytes(), Err(RecvError));
        assert_eq!(b.send_bytes(b"x"), Err(PipeSendError::Disconnected));
    }

    #[test]
    fn one_way_pair() {
        let (a, b) = Pipe::pair_with(100, &Options::new().duplex(false)).unwrap();
        assert!(a.writable() && !a.readable() && b.readable() && !b.writable());
        assert_eq!(b.send_bytes(b"x"), Err(PipeSendError::WrongDirection));
        assert_eq!(a.try_recv_bytes(), Err(TryRecvError::Disconnected));
        a.send_bytes(b"one").unwrap();
        let mut small = [0u8; 2];
        assert_eq!(b.recv_bytes_into(&mut small), Err(RecvIntoError::BufferTooShort { needed: 3 }));
        let mut big = [0u8; 8];
        assert_eq!(b.recv_bytes_into(&mut big), Ok(3));
        assert_eq!(&big[..3], b"one");
        assert!(!b.poll(Some(Duration::from_millis(5))));
        a.send_with(4, |buf| buf.copy_from_slice(b"abcd")).unwrap();
        assert!(b.poll(None));
        assert_eq!(b.recv_with(|m| m.len()).unwrap(), 4);
        drop(a);
        assert!(b.poll(Some(Duration::ZERO)));
        assert_eq!(b.recv_bytes(), Err(RecvError));
    }
}
