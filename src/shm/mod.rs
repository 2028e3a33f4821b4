//! Named POSIX shared-memory segments: names, options, the versioned header and
//! the mapping itself.
//!
//! # Implementation details
//!
//! A segment is one file in `/dev/shm`, laid out as
//!
//! ```text
//! 0            HEADER_SIZE                                  total_size
//! | Header     | object body (ring indices, lock words, ...) | slots / payload |
//! ```
//!
//! The header is written by the creator while it holds the `INIT` lock byte and
//! published by storing the magic word with `Release` last; `open` validates
//! every field against what the caller expects *before* it computes a single
//! offset, and computes offsets itself from validated values.
//!
//! Every kind of object goes through the one lifecycle of `object.rs`: a
//! crate-private trait says what the kind is and how big, how to check its
//! header and initialise its body, and generic functions run `create`,
//! `open` and `open_or_create` on `Segment` for all of them:
//!
//! | step | creator | opener |
//! |---|---|---|
//! | 1 | `shm_open(O_CREAT \| O_EXCL)`, mode applied with `fchmod` | `shm_open`, shared `ATTACH` lock (waits out a `gc` probe), name still this file? |
//! | 2 | `INIT` + `ATTACH` locks, `fallocate` the whole size | while `INIT` is held: wait (the creator lives); free and no magic: `Corrupted` at once |
//! | 3 | map, write header, init body, magic with `Release`, drop `INIT` | copy and validate the header, size check, map, magic with `Acquire` |
//!
//! `remove_stale` takes `ATTACH` *exclusively* before it re-checks and
//! unlinks, so it never removes a segment anyone holds, and an opener that
//! raced it sees the name gone and starts again (`NotFound`).
//!
//! Liveness is kernel-tracked: every handle holds open-file-description (OFD)
//! byte-range locks on the segment file, far past its end (`src/shm/lock.rs`). The
//! kernel drops them when the last descriptor copy closes — at `drop`, at
//! `exit`, or at `SIGKILL` — so "is anyone still holding role R" is one
//! `F_OFD_GETLK`, immune to pid reuse and correct across `fork()`.

pub(crate) mod header;
pub(crate) mod lock;
pub(crate) mod object;
pub(crate) mod segment;

pub use header::Kind;
pub(crate) use segment::Segment;

use crate::error::{Error, Result};

/// The longest accepted name, in bytes (without the optional leading `/`).
pub const MAX_NAME_LEN: usize = 200;

/// How a blocking operation waits once the fast path found nothing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Never sleep: spin (with `spin_loop` hints) until the operation can go
    /// on. Lowest latency; burns a core while waiting.
    Spin,
    /// Spin for a few microseconds, yield for a few more, then sleep on a
    /// futex. The default.
    #[default]
    Adaptive,
    /// Sleep on a futex at once.
    Park,
}

/// Options for `create_with` / `open_with`: a builder whose setters take and
/// return `Self`. A setter that does not apply to a type is ignored by it.
///
/// ```
/// use ringshm::{Options, WaitStrategy};
/// let opts = Options::new().mode(0o660).persist(true).wait(WaitStrategy::Spin);
/// assert_eq!(opts.get_mode(), 0o660);
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) mode: u32,
    pub(crate) persist: bool,
    pub(crate) wait: WaitStrategy,
    pub(crate) duplex: bool,
    pub(crate) overwrite: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { mode: 0o600, persist: false, wait: WaitStrategy::Adaptive, duplex: true, overwrite: false }
    }
}

impl Options {
    /// Mode `0o600`, not persistent, [`WaitStrategy::Adaptive`], duplex.
    pub fn new() -> Self {
        Self::default()
    }
    /// Permission bits of a new segment (default `0o600`); applied exactly,
    /// whatever the umask.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }
    /// Keep the name after the creating process's handle drops (default
    /// `false`). Remove it later with [`crate::unlink`] or `ringshm rm`.
    pub fn persist(mut self, persist: bool) -> Self {
        self.persist = persist;
        self
    }
    /// How this handle's blocking operations wait.
    pub fn wait(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }
    /// For `Pipe`: both ends send and receive (`true`, the default), or end A
    /// only sends and end B only receives (`false`).
    pub fn duplex(mut self, duplex: bool) -> Self {
        self.duplex = duplex;
        self
    }
    /// For `broadcast::Ring`: sending never waits and slow subscribers skip
    /// what was overwritten (`true`), or the publisher waits for the slowest
    /// live subscriber (`false`, the default). Stored at creation and
    /// checked by `open_with`.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }
    /// The mode that will be used.
    pub fn get_mode(&self) -> u32 {
        self.mode
    }
    /// Whether the segment outlives its creator's handle.
    pub fn get_persist(&self) -> bool {
        self.persist
    }
    /// The wait strategy.
    pub fn get_wait(&self) -> WaitStrategy {
        self.wait
    }
    /// Whether a `Pipe` is duplex.
    pub fn get_duplex(&self) -> bool {
        self.duplex
    }
    /// Whether a `broadcast::Ring` is (to be) in overwrite mode.
    pub fn get_overwrite(&self) -> bool {
        self.overwrite
    }
}

/// Checks a user-given name and returns it without its leading `/`.
///
/// # Errors
/// [`Error::InvalidName`] unless the name is 1–200 bytes of `[A-Za-z0-9._-]`
/// after an optional leading `/`, and is not `.` or `..`.
pub fn validate_name(name: &str) -> Result<&str> {
    let bad = |reason| Err(Error::InvalidName { name: name.to_owned(), reason });
    let n = name.strip_prefix('/').unwrap_or(name);
    if n.is_empty() {
        return bad("it is empty");
    }
    if n.len() > MAX_NAME_LEN {
        return bad("it is longer than 200 bytes");
    }
    if !n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return bad("it contains a character other than A-Z a-z 0-9 . _ -");
    }
    if n == "." || n == ".." {
        return bad("'.' and '..' are not names");
    }
    Ok(n)
}

/// Removes the segment `name` from `/dev/shm`. Processes that have it mapped
/// keep using it; new `open`s fail with [`Error::NotFound`].
///
/// # Errors
/// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`],
/// [`Error::Io`].
pub fn unlink(name: &str) -> Result<()> {
    let n = validate_name(name)?;
    rustix::shm::unlink(n).map_err(|e| segment::os_error(n, "shm_unlink", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("/ticks").unwrap(), "ticks");
        assert_eq!(validate_name("a.b_c-D9").unwrap(), "a.b_c-D9");
        assert!(validate_name(&"x".repeat(200)).is_ok());
        for bad in ["", "/", "a/b", "a b", "é", "..", ".", "x\0"] {
            assert!(matches!(validate_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        assert!(validate_name(&"x".repeat(201)).is_err());
    }
}
