//! Every public error type of the crate, one scheme per family of
//! operations:
//!
//! | family | operations | errors |
//! |---|---|---|
//! | lifecycle | `create`, `open`, `open_or_create`, roles, `list`, ... | [`Error`] |
//! | channel (rings) | `try_send`/`send`/`send_timeout`, `try_recv`/`recv`/`recv_timeout`, and the `push`/`pop` forms | [`TrySendError`], [`SendError`], [`SendTimeoutError`], [`TryRecvError`], [`RecvError`], [`RecvTimeoutError`] (crossbeam-channel's) |
//! | chunks | `write_chunk`, `read_chunk` | [`ChunkError`] |
//! | queue | `put`/`try_put`/`put_timeout`, `get`/..., `task_done` | [`PutError`], [`PutBytesError`], [`GetError`], [`GetValueError`], [`TaskDoneError`] |
//! | pipe | sends; receives | [`PipeSendError`]; [`RecvError`] family for whole byte messages, [`PipeRecvError`] when the message itself can be refused |
//! | lock | `lock`, `try_lock`, `lock_timeout` | [`LockResult`] / [`OwnerDied`], [`TryLockError`], [`LockTimeoutError`] |
//! | other sync | `BoundedSemaphore::release`, `Barrier::wait` | [`ReleaseError`], [`BarrierError`] |
//! | cells | `Value::compare_exchange` | [`CompareExchangeError`] |
//!
//! Errors that hand a value back (`into_inner()`) never need `T: Debug`:
//! their `Debug` prints the variant only. Every `Display` says what happened
//! and what to do about it.

use std::fmt;
use std::io;

/// What creating, opening or inspecting a shared object can fail with.
///
/// Every variant carries the segment name it is about, and its `Display` text
/// says what to do about it.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// The name is not 1–200 bytes of `[A-Za-z0-9._-]` (after an optional
    /// leading `/`). Checked before any system call.
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// `create` found a segment of that name already; it never attaches to or
    /// truncates someone else's segment.
    AlreadyExists {
        /// The segment name.
        name: String,
    },
    /// `open` found no segment of that name.
    NotFound {
        /// The segment name.
        name: String,
    },
    /// The segment exists but its mode does not let this user open it.
    PermissionDenied {
        /// The segment name.
        name: String,
    },
    /// The shared-memory file system (`/dev/shm`) has no room for the segment.
    /// Reported at create time: the space is reserved up front, so a full
    /// tmpfs never shows up later as a `SIGBUS`.
    NoSpace {
        /// The segment name.
        name: String,
        /// How many bytes the segment needed.
        bytes: u64,
    },
    /// The segment holds another kind of object (a `Lock` opened as a `Queue`).
    WrongKind {
        /// The segment name.
        name: String,
        /// The kind stored in the segment.
        found: &'static str,
        /// The kind the caller asked for.
        expected: &'static str,
    },
    /// The segment holds the right kind of object but with another element
    /// type, element size or alignment than the caller's.
    LayoutMismatch {
        /// The segment name.
        name: String,
        /// What the segment holds, e.g. `Queue<[u8; 32]> (32 bytes, align 1)`.
        found: String,
        /// What the caller asked for.
        expected: String,
    },
    /// The segment was written by an incompatible version of ringshm.
    VersionMismatch {
        /// The segment name.
        name: String,
        /// The format version found in the segment.
        found: u32,
        /// The format version this build understands.
        expected: u32,
    },
    /// The segment's contents are not a valid ringshm object: wrong magic,
    /// truncated, sizes that do not add up, indices out of range, or a creator
    /// that died while initialising it.
    Corrupted {
        /// The segment name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// A live process (or another handle in this one) already holds this
    /// exclusive role, e.g. the producer end of an SPSC ring.
    RoleTaken {
        /// The segment name.
        name: String,
        /// The role asked for.
        role: &'static str,
    },
    /// A parameter is out of range (capacity 0, a too-large element, ...).
    InvalidArgument {
        /// What was wrong.
        reason: String,
    },
    /// Any other operating-system error.
    Io {
        /// The segment name.
        name: String,
        /// The operation that failed (`shm_open`, `mmap`, ...).
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { name, reason } => write!(
                f,
                "invalid segment name {name:?}: {reason} (use 1-200 bytes of A-Z a-z 0-9 . _ -)"
            ),
            Error::AlreadyExists { name } => write!(
                f,
                "segment '{name}' already exists: use open() to attach to it, or remove it with `ringshm rm {name}`"
            ),
            Error::NotFound { name } => write!(
                f,
                "no segment named '{name}': create it first (see `ringshm ls` for what exists)"
            ),
            Error::PermissionDenied { name } => write!(
                f,
                "permission denied for segment '{name}': its creator's mode does not allow this user (see Options::mode)"
            ),
            Error::NoSpace { name, bytes } => write!(
                f,
                "no space left in /dev/shm for segment '{name}' ({bytes} bytes): free some with `ringshm gc` or enlarge the tmpfs"
            ),
            Error::WrongKind { name, found, expected } => write!(
                f,
                "segment '{name}' holds a {found}, you opened it as a {expected}: open it as a {found}, or use another name"
            ),
            Error::LayoutMismatch { name, found, expected } => write!(
                f,
                "segment '{name}' holds a {found}, you opened it as {expected}: open it with the element type it was created with"
            ),
            Error::VersionMismatch { name, found, expected } => write!(
                f,
                "segment '{name}' has format version {found}, this ringshm understands version {expected}: use the same ringshm version in every process"
            ),
            Error::Corrupted { name, reason } => {
                write!(f, "segment '{name}' is corrupted: {reason} (inspect it with `ringshm info {name}`; `ringshm rm {name}` removes it)")
            }
            Error::RoleTaken { name, role } => write!(
                f,
                "the {role} role of segment '{name}' is held by a live handle; drop it first (a dead process's role is taken over automatically)"
            ),
            Error::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Error::Io { name, op, source } => {
                write!(f, "{op} failed for segment '{name}': {source} (the system refused; check /dev/shm and the limits of this process)")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Shorthand for `Result<T, ringshm::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Error of a non-blocking send (`try_push`, `try_send`, `try_put`).
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// No room right now; the value is handed back.
    Full(T),
    /// Every receiving handle is gone (dropped, or its process died); the
    /// value is handed back.
    Disconnected(T),
}

/// Error of a blocking send: every receiving handle is gone. Holds the value.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Error of a send with a timeout.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// Still no room when the timeout expired; the value is handed back.
    Timeout(T),
    /// Every receiving handle is gone; the value is handed back.
    Disconnected(T),
}

/// Error of a non-blocking receive (`try_pop`, `try_recv`, `try_get`).
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing to receive right now.
    Empty,
    /// Nothing to receive, and every sending handle is gone (dropped, or its
    /// process died), so nothing ever will be.
    Disconnected,
}

/// Error of a blocking receive: empty, and every sending handle is gone
/// (Python's `EOFError`).
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Error of a receive with a timeout.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout expired.
    Timeout,
    /// Empty, and every sending handle is gone.
    Disconnected,
}

const DISCONNECTED_SEND: &str =
    "sending on a disconnected channel: every receiver is gone (dropped, or its process died); nothing will receive this";
const DISCONNECTED_RECV: &str =
    "receiving on an empty and disconnected channel: every sender is gone (dropped, or its \
                                 process died) and all that was sent has been received (end of file)";

macro_rules! into_inner {
    ($ty:ident { $($var:ident),* }) => {
        impl<T> $ty<T> {
            /// Hands back the value that could not be sent.
            pub fn into_inner(self) -> T {
                match self { $($ty::$var(v) => v),* }
            }
        }
    };
}
into_inner!(TrySendError { Full, Disconnected });
into_inner!(SendTimeoutError { Timeout, Disconnected });

impl<T> SendError<T> {
    /// Hands back the value that could not be sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// `true` for [`TrySendError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
    /// `true` for [`TrySendError::Disconnected`].
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TrySendError::Disconnected(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// `true` for [`SendTimeoutError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }
    /// `true` for [`SendTimeoutError::Disconnected`].
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Disconnected(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}
impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => {
                f.write_str("sending on a full channel: retry later, or block with send/send_timeout")
            }
            TrySendError::Disconnected(_) => f.write_str(DISCONNECTED_SEND),
        }
    }
}
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}
impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(DISCONNECTED_SEND)
    }
}
impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}
impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => {
                f.write_str("timed out waiting on send operation: the channel stayed full (is a receiver running?)")
            }
            SendTimeoutError::Disconnected(_) => f.write_str(DISCONNECTED_SEND),
        }
    }
}
impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => {
                f.write_str("receiving on an empty channel: retry later, or block with recv/recv_timeout")
            }
            TryRecvError::Disconnected => f.write_str(DISCONNECTED_RECV),
        }
    }
}
impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(DISCONNECTED_RECV)
    }
}
impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => {
                f.write_str("timed out waiting on receive operation: nothing was sent (is a sender running?)")
            }
            RecvTimeoutError::Disconnected => f.write_str(DISCONNECTED_RECV),
        }
    }
}
impl<T> std::error::Error for TrySendError<T> {}
impl<T> std::error::Error for SendError<T> {}
impl<T> std::error::Error for SendTimeoutError<T> {}
impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvError {}
impl std::error::Error for RecvTimeoutError {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Disconnected(e.0)
    }
}
impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        SendTimeoutError::Disconnected(e.0)
    }
}
impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Disconnected
    }
}
impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Disconnected
    }
}

// ---------------------------------------------------------------------------
// Chunks (spsc rings).

/// Why [`crate::spsc::Producer::write_chunk`] or
/// [`crate::spsc::Consumer::read_chunk`] could not reserve a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Fewer slots than asked for are free (writing) or filled (reading); holds
    /// how many are.
    TooFewSlots(usize),
    /// The other end is gone (and, when reading, nothing is left).
    Disconnected,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::TooFewSlots(n) => {
                write!(f, "only {n} slots are available: ask for at most {n}, or retry once the other end has moved")
            }
            ChunkError::Disconnected => {
                f.write_str("the other end of the ring is gone (dropped, or its process died) and nothing is left")
            }
        }
    }
}
impl std::error::Error for ChunkError {}

// ---------------------------------------------------------------------------
// Queues.

/// Why a `put` failed; holds what could not be put (the value, or for
/// `put_many` how many items were put before the failure).
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue is full (from `try_put`), or still full when the timeout
    /// expired (from `put_timeout`): Python's `queue.Full`.
    Full(T),
    /// `close` was called on the queue: no more puts, ever.
    Closed(T),
    /// Every consumer handle is gone (dropped, or its process died), or the
    /// queue was found corrupted: nobody would ever get the item.
    Disconnected(T),
}

impl<T> PutError<T> {
    /// The same kind of error as `like`, holding `self`'s value.
    pub(crate) fn with_kind_of<U>(self, like: &PutError<U>) -> PutError<T> {
        let v = self.into_inner();
        match like {
            PutError::Full(_) => PutError::Full(v),
            PutError::Closed(_) => PutError::Closed(v),
            PutError::Disconnected(_) => PutError::Disconnected(v),
        }
    }

    /// Hands back what could not be put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(v) | PutError::Closed(v) | PutError::Disconnected(v) => v,
        }
    }
    /// `true` for [`PutError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }
}

const QUEUE_FULL: &str = "the queue is full: get items from it, or wait with put/put_timeout";
const QUEUE_CLOSED: &str = "the queue was closed: no more puts are accepted; create a new queue to go on";
const QUEUE_GONE: &str = "every consumer of the queue is gone (dropped, or its process died) or the queue is \
                          corrupted: nothing would get the item; start a consumer first";

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "Full(..)",
            PutError::Closed(_) => "Closed(..)",
            PutError::Disconnected(_) => "Disconnected(..)",
        })
    }
}
impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => QUEUE_FULL,
            PutError::Closed(_) => QUEUE_CLOSED,
            PutError::Disconnected(_) => QUEUE_GONE,
        })
    }
}
impl<T> std::error::Error for PutError<T> {}

/// Why a `get` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetError {
    /// Nothing to get (from `try_get`), or nothing arrived before the
    /// timeout (from `get_timeout`): Python's `queue.Empty`.
    Empty,
    /// The queue is empty and will stay so: it was closed, or every
    /// producer handle is gone (or the queue was found corrupted).
    Disconnected,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GetError::Empty => "the queue is empty: retry later, or wait with get/get_timeout",
            GetError::Disconnected => {
                "the queue is empty and will stay so: it was closed, or every producer is gone (dropped, or its \
                 process died)"
            }
        })
    }
}
impl std::error::Error for GetError {}

/// Why a `ByteQueue` `put` failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutBytesError {
    /// Full now (`try_put`) or still full at the timeout (`put_timeout`).
    Full,
    /// `close` was called on the queue.
    Closed,
    /// Every consumer is gone, or the queue was found corrupted.
    Disconnected,
    /// The message is longer than the queue's `max_message_bytes`.
    TooLarge {
        /// Length of the rejected message.
        len: usize,
        /// The queue's maximum.
        max: usize,
    },
    /// The value could not be serialised (`put_value`, feature `serde`).
    Encode(String),
    /// No shared memory was left for the message's pages (the tmpfs of
    /// `/dev/shm` is full); nothing was put.
    NoSpace {
        /// Length of the message that was not put.
        len: usize,
    },
}

impl fmt::Display for PutBytesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutBytesError::Full => f.write_str(QUEUE_FULL),
            PutBytesError::Closed => f.write_str(QUEUE_CLOSED),
            PutBytesError::Disconnected => f.write_str(QUEUE_GONE),
            PutBytesError::TooLarge { len, max } => write!(
                f,
                "a message of {len} bytes is larger than this queue's max_message_bytes of {max}: split it, or \
                 create the queue with a larger max_message_bytes"
            ),
            PutBytesError::Encode(e) => {
                write!(f, "could not serialise the value: {e} (nothing was put)")
            }
            PutBytesError::NoSpace { len } => write!(
                f,
                "no shared memory left for a message of {len} bytes (the file system of /dev/shm is full; nothing \
                 was put): free space in /dev/shm (`ringshm gc`, `df -h /dev/shm`) or put smaller messages"
            ),
        }
    }
}
impl std::error::Error for PutBytesError {}

/// Why `ByteQueue::get_value` (feature `serde`) failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetValueError {
    /// As [`GetError::Empty`].
    Empty,
    /// As [`GetError::Disconnected`].
    Disconnected,
    /// The message is not a valid encoding of the requested type; it was
    /// consumed.
    Decode(String),
}

impl From<GetError> for GetValueError {
    fn from(e: GetError) -> Self {
        match e {
            GetError::Empty => GetValueError::Empty,
            GetError::Disconnected => GetValueError::Disconnected,
        }
    }
}

impl fmt::Display for GetValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetValueError::Empty => fmt::Display::fmt(&GetError::Empty, f),
            GetValueError::Disconnected => fmt::Display::fmt(&GetError::Disconnected, f),
            GetValueError::Decode(e) => {
                write!(f, "could not deserialise the message (it was consumed): {e}; put and get the same type")
            }
        }
    }
}
impl std::error::Error for GetValueError {}

/// `JoinableQueue::task_done` was called more often than items were got
/// (Python's `ValueError: task_done() called too many times`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called more times than items were taken from the queue: call it once per item you got")
    }
}
impl std::error::Error for TaskDoneError {}

// ---------------------------------------------------------------------------
// Pipes.

/// Why a send on a [`crate::Pipe`] failed. No message was sent.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipeSendError {
    /// No room right now (only from the `try_` forms).
    Full,
    /// Still no room when the timeout expired (only from the `_timeout` forms).
    Timeout,
    /// The other end is gone — closed, or its process died — or the pipe
    /// was found corrupted. Python's `BrokenPipeError`.
    Disconnected,
    /// The message can never fit: it is longer than the pipe's largest
    /// message (`Pipe::max_message_len`).
    TooLarge {
        /// Length of the rejected message.
        len: usize,
        /// The largest length this pipe accepts.
        max: usize,
    },
    /// This end of a one-way pipe only receives (end B of a pipe created
    /// with `Options::duplex(false)`).
    WrongDirection,
    /// This handle was closed with `Pipe::close`.
    Closed,
    /// The value could not be serialised (`send_value`).
    Encode(String),
}

impl fmt::Display for PipeSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeSendError::Full => f.write_str("the pipe is full: retry later, or block with send_bytes/send_bytes_timeout"),
            PipeSendError::Timeout => {
                f.write_str("timed out waiting for room in the pipe: the other end is not receiving")
            }
            PipeSendError::Disconnected => {
                f.write_str("the other end of the pipe is closed (or its process died): nothing will receive this")
            }
            PipeSendError::TooLarge { len, max } => write!(
                f,
                "a message of {len} bytes is larger than this pipe's maximum of {max} bytes: create the pipe with a larger capacity"
            ),
            PipeSendError::WrongDirection => f.write_str(
                "this end of a one-way pipe only receives (it was created with Options::duplex(false)): send from end A",
            ),
            PipeSendError::Closed => f.write_str("this pipe handle was closed: open the end again to send"),
            PipeSendError::Encode(e) => write!(f, "could not serialise the value: {e} (nothing was sent)"),
        }
    }
}
impl std::error::Error for PipeSendError {}

/// Why a receive on a [`crate::Pipe`] that can refuse the message itself
/// failed: `recv_bytes_into` (buffer too short), `recv::<T>` (wrong size),
/// `recv_value` (undecodable), each in its blocking, `try_` and `_timeout`
/// form. The receives of whole byte messages (`recv_bytes`, `recv_with`)
/// can only fail for want of a message and use the channel family
/// ([`RecvError`], [`TryRecvError`], [`RecvTimeoutError`]), each of which
/// converts into this type, so `?` works across all of a pipe's receives.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipeRecvError {
    /// Nothing to receive right now (only from the `try_` forms).
    Empty,
    /// Nothing arrived before the timeout (only from the `_timeout` forms).
    Timeout,
    /// Nothing left, and the other end is gone (Python's `EOFError`).
    Disconnected,
    /// The waiting message is longer than the buffer; it stays queued, so a
    /// retry with a buffer of at least `needed` bytes receives it. Python's
    /// `BufferTooShort`.
    BufferTooShort {
        /// Length of the waiting message.
        needed: usize,
    },
    /// The waiting message does not have the size of the requested type; it
    /// stays queued (receive it with `Pipe::recv_bytes`).
    WrongSize {
        /// `size_of` the requested type.
        expected: usize,
        /// Length of the waiting message.
        found: usize,
    },
    /// The message could not be deserialised (`recv_value`); it was consumed.
    Decode(String),
}

/// [`PipeRecvError`] under the name `recv_bytes_into` used to return.
pub type RecvIntoError = PipeRecvError;
/// [`PipeRecvError`] under the name `recv::<T>` and `recv_value` used to
/// return.
pub type RecvValueError = PipeRecvError;

impl fmt::Display for PipeRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeRecvError::Empty => f.write_str("no message is waiting: retry later, or block with recv/poll"),
            PipeRecvError::Timeout => f.write_str("timed out waiting for a message: the other end sent nothing"),
            PipeRecvError::Disconnected => {
                f.write_str("end of file: the other end of the pipe is closed (or its process died) and all was received")
            }
            PipeRecvError::BufferTooShort { needed } => write!(
                f,
                "the buffer is too short for the waiting message of {needed} bytes: it stays queued, retry with a buffer of at least {needed} bytes"
            ),
            PipeRecvError::WrongSize { expected, found } => write!(
                f,
                "the waiting message has {found} bytes but the requested type has {expected}: it stays queued, receive it with recv_bytes (or as the type that was sent)"
            ),
            PipeRecvError::Decode(e) => {
                write!(f, "could not deserialise the message (it was consumed): {e}; send and receive the same type")
            }
        }
    }
}
impl std::error::Error for PipeRecvError {}

impl From<TryRecvError> for PipeRecvError {
    fn from(e: TryRecvError) -> Self {
        match e {
            TryRecvError::Empty => PipeRecvError::Empty,
            TryRecvError::Disconnected => PipeRecvError::Disconnected,
        }
    }
}
impl From<RecvError> for PipeRecvError {
    fn from(_: RecvError) -> Self {
        PipeRecvError::Disconnected
    }
}
impl From<RecvTimeoutError> for PipeRecvError {
    fn from(e: RecvTimeoutError) -> Self {
        match e {
            RecvTimeoutError::Timeout => PipeRecvError::Timeout,
            RecvTimeoutError::Disconnected => PipeRecvError::Disconnected,
        }
    }
}

// ---------------------------------------------------------------------------
// Locks.

/// The previous holder's thread or process died while holding the lock. The
/// caller holds the lock now (like std's `PoisonError`): take the guard with
/// [`OwnerDied::into_inner`] and decide whether the protected data is sound.
pub struct OwnerDied<G> {
    guard: G,
}

impl<G> OwnerDied<G> {
    /// Wraps `guard` (like `std::sync::PoisonError::new`), e.g. to carry
    /// another guard type through `?`.
    pub fn new(guard: G) -> Self {
        OwnerDied { guard }
    }
    /// The guard: the lock is held.
    pub fn into_inner(self) -> G {
        self.guard
    }
    /// A reference to the guard.
    pub fn get_ref(&self) -> &G {
        &self.guard
    }
    /// A mutable reference to the guard.
    pub fn get_mut(&mut self) -> &mut G {
        &mut self.guard
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerDied(..)")
    }
}
impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the previous holder died while holding the lock; you hold it now: check the data it protects, then \
             go on with into_inner()",
        )
    }
}
impl<G> std::error::Error for OwnerDied<G> {}

/// Error of `Lock::try_lock` and friends.
pub enum TryLockError<G> {
    /// Someone else holds the lock.
    WouldBlock,
    /// The lock was taken over from a dead holder; the caller holds it.
    OwnerDied(OwnerDied<G>),
}

/// Error of `Lock::lock_timeout` and friends.
pub enum LockTimeoutError<G> {
    /// The lock was still held when the timeout expired.
    Timeout,
    /// The lock was taken over from a dead holder; the caller holds it.
    OwnerDied(OwnerDied<G>),
}

/// Result of a blocking lock: the guard, or the guard wrapped in [`OwnerDied`].
pub type LockResult<G> = std::result::Result<G, OwnerDied<G>>;

impl<G> TryLockError<G> {
    /// `true` for [`TryLockError::WouldBlock`].
    pub fn is_would_block(&self) -> bool {
        matches!(self, TryLockError::WouldBlock)
    }
}
impl<G> LockTimeoutError<G> {
    /// `true` for [`LockTimeoutError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, LockTimeoutError::Timeout)
    }
}
impl<G> From<OwnerDied<G>> for TryLockError<G> {
    fn from(e: OwnerDied<G>) -> Self {
        TryLockError::OwnerDied(e)
    }
}
impl<G> From<OwnerDied<G>> for LockTimeoutError<G> {
    fn from(e: OwnerDied<G>) -> Self {
        LockTimeoutError::OwnerDied(e)
    }
}
impl<G> fmt::Debug for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("WouldBlock"),
            TryLockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
        }
    }
}
impl<G> fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => {
                f.write_str("the lock is held by someone else: retry later, or wait with lock/lock_timeout")
            }
            TryLockError::OwnerDied(e) => fmt::Display::fmt(e, f),
        }
    }
}
impl<G> std::error::Error for TryLockError<G> {}
impl<G> fmt::Debug for LockTimeoutError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockTimeoutError::Timeout => f.write_str("Timeout"),
            LockTimeoutError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
        }
    }
}
impl<G> fmt::Display for LockTimeoutError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockTimeoutError::Timeout => {
                f.write_str("timed out waiting for the lock: its holder (alive) kept it; wait longer or retry")
            }
            LockTimeoutError::OwnerDied(e) => fmt::Display::fmt(e, f),
        }
    }
}
impl<G> std::error::Error for LockTimeoutError<G> {}

// ---------------------------------------------------------------------------
// Other synchronisation.

/// `BoundedSemaphore::release` would raise the count above its initial
/// value (Python's `ValueError: Semaphore released too many times`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseError {
    /// The initial (and maximum) value.
    pub max: usize,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "semaphore released too many times: its count is already at its initial value {}; release only permits you acquired",
            self.max
        )
    }
}
impl std::error::Error for ReleaseError {}

/// Why `Barrier::wait` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BarrierError {
    /// The barrier is broken: aborted, reset while waiting, a party timed
    /// out, or a waiting party's process died. Python's `BrokenBarrierError`.
    Broken,
    /// This call's timeout expired; the barrier is now broken for the others.
    Timeout,
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Broken => f.write_str(
                "the barrier is broken (aborted, reset, timed out, or a waiting party died); call reset() to reuse it",
            ),
            BarrierError::Timeout => {
                f.write_str("timed out waiting at the barrier; it is now broken: call reset() to reuse it")
            }
        }
    }
}
impl std::error::Error for BarrierError {}

// ---------------------------------------------------------------------------
// Cells.

/// `Value::compare_exchange` found another value than the expected one.
/// Neither `Debug` nor `Display` needs `T: Debug`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CompareExchangeError<T> {
    /// The value that was there instead.
    pub actual: T,
}

impl<T> CompareExchangeError<T> {
    /// The value that was there instead.
    pub fn into_inner(self) -> T {
        self.actual
    }
}

impl<T> fmt::Debug for CompareExchangeError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompareExchangeError { actual: .. }")
    }
}

impl<T> fmt::Display for CompareExchangeError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "compare_exchange failed: the value was not the expected one; the error holds the actual value \
             (`actual`): retry with it, or use update()",
        )
    }
}

impl<T> std::error::Error for CompareExchangeError<T> {}
