//! Every error type of the crate.
//!
//! [`Error`] is what opening, creating and inspecting a shared object can fail
//! with. The channel-style errors ([`TrySendError`], [`SendError`],
//! [`SendTimeoutError`], [`TryRecvError`], [`RecvError`], [`RecvTimeoutError`])
//! mirror `std::sync::mpsc` and `crossbeam-channel`: the ones for sending hand
//! the value back with `into_inner()`, and none of them needs `T: Debug`.

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
                "segment '{name}' holds a {found}, you opened it as a {expected}"
            ),
            Error::LayoutMismatch { name, found, expected } => write!(
                f,
                "segment '{name}' holds a {found}, you opened it as {expected}"
            ),
            Error::VersionMismatch { name, found, expected } => write!(
                f,
                "segment '{name}' has format version {found}, this ringshm understands version {expected}: use the same ringshm version in every process"
            ),
            Error::Corrupted { name, reason } => {
                write!(f, "segment '{name}' is corrupted: {reason}")
            }
            Error::RoleTaken { name, role } => write!(
                f,
                "the {role} role of segment '{name}' is held by a live handle; drop it first (a dead process's role is taken over automatically)"
            ),
            Error::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Error::Io { name, op, source } => {
                write!(f, "{op} failed for segment '{name}': {source}")
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
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Disconnected(_) => f.write_str("sending on a disconnected channel"),
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
        f.write_str("sending on a disconnected channel")
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
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting on send operation"),
            SendTimeoutError::Disconnected(_) => f.write_str("sending on a disconnected channel"),
        }
    }
}
impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => f.write_str("receiving on an empty and disconnected channel"),
        }
    }
}
impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty and disconnected channel (end of file)")
    }
}
impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on receive operation"),
            RecvTimeoutError::Disconnected => f.write_str("receiving on an empty and disconnected channel"),
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
