//! Kernel-tracked liveness: open-file-description (OFD) byte-range locks on a
//! segment file, and process identity (pid + start time).
//!
//! # Implementation details
//!
//! Each lockable *slot* is one byte at `LOCK_BASE + slot`, far past the end of
//! any segment (locks may lie beyond EOF), so they never touch data.
//!
//! | slot            | held by                          | mode      |
//! |-----------------|----------------------------------|-----------|
//! | [`SLOT_INIT`]   | the creator while it initialises | exclusive |
//! | [`SLOT_ATTACH`] | every handle's main descriptor   | shared    |
//! | `SLOT_ROLE0+r`  | holders of role `r`              | exclusive (one holder) or shared (a side of many) |
//!
//! OFD locks belong to the open file description, not to the process: they are
//! inherited by `fork()` and released by the kernel when the *last* descriptor
//! referring to the description closes — including at `exit` and `SIGKILL`.
//! So a role handle never unlocks explicitly: dropping it closes its
//! descriptor, and the role is free once no process (parent or forked child)
//! still has a copy. Locks held through the *same* description never conflict,
//! so every role handle gets its own description ([`reopen`]) and probes are
//! made from a description that holds no role.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Once;

use rustix::fs::{Mode, OFlags};

/// First byte offset used for locks (1 TiB: past any segment).
const LOCK_BASE: i64 = 1 << 40;
/// Held exclusively by the creator until the header is published.
pub(crate) const SLOT_INIT: u32 = 0;
/// Held shared by every open handle; nobody holding it means the segment is stale.
pub(crate) const SLOT_ATTACH: u32 = 1;
/// First role slot; role `r` is `SLOT_ROLE0 + r`.
pub(crate) const SLOT_ROLE0: u32 = 16;

fn flock_for(slot: u32, ty: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = ty as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = LOCK_BASE + i64::from(slot);
    fl.l_len = 1;
    fl.l_pid = 0; // required by F_OFD_*
    fl
}

/// Tries to take `slot` on `fd`'s description, exclusive or shared, without
/// blocking. `Ok(false)` if another description holds a conflicting lock.
pub(crate) fn try_lock(fd: BorrowedFd<'_>, slot: u32, exclusive: bool) -> std::io::Result<bool> {
    let fl = flock_for(slot, if exclusive { libc::F_WRLCK } else { libc::F_RDLCK });
    // SAFETY: `fd` is a live descriptor (borrowed); `fl` is a valid, initialised
    // `flock` that outlives the call; F_OFD_SETLK only reads it.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// Releases `slot` on `fd`'s description.
pub(crate) fn unlock(fd: BorrowedFd<'_>, slot: u32) {
    let fl = flock_for(slot, libc::F_UNLCK);
    // SAFETY: as in `try_lock`; unlocking a range we do not hold is a no-op.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
}

/// Whether a description *other than* `fd`'s holds any lock on `slot`.
/// On an unexpected error this answers `true` (assume alive: never declare a
/// live peer dead).
pub(crate) fn is_held(fd: BorrowedFd<'_>, slot: u32) -> bool {
    let mut fl = flock_for(slot, libc::F_WRLCK);
    // SAFETY: `fd` is live; `fl` is a valid `flock` the kernel may overwrite
    // (F_OFD_GETLK writes the conflicting lock, or F_UNLCK, into it).
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    r != 0 || i32::from(fl.l_type) != libc::F_UNLCK
}

/// A new open file description of the same file as `fd`, so that locks taken
/// through it conflict with (and can be probed from) the original.
pub(crate) fn reopen(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?)
}

/// A role held through a description of its own. Dropping it closes the
/// descriptor; the kernel frees the role once no copy (after `fork`) is left.
#[derive(Debug)]
pub(crate) struct RoleLock {
    /// Held only for its `Drop`: closing it is what frees the role.
    _fd: OwnedFd,
}

impl RoleLock {
    /// Takes role slot `role` exclusively (`shared == false`) or as one of a
    /// side of many (`shared == true`). `Ok(None)` if it conflicts.
    pub(crate) fn acquire(seg_fd: BorrowedFd<'_>, role: u32, shared: bool) -> std::io::Result<Option<RoleLock>> {
        let fd = reopen(seg_fd)?;
        let slot = SLOT_ROLE0 + role;
        if try_lock(rustix::fd::AsFd::as_fd(&fd), slot, !shared)? {
            Ok(Some(RoleLock { _fd: fd }))
        } else {
            Ok(None)
        }
    }
}

/// Cached pid of this process, refreshed in forked children.
static PID: AtomicU32 = AtomicU32::new(0);
/// Start time (clock ticks since boot) of this process, 0 if unknown yet.
static START: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    PID.store(0, Ordering::Relaxed);
    START.store(0, Ordering::Relaxed);
    crate::sync::futex::after_fork_in_child();
}

/// Per-process set-up, idempotent: installs the fork handler that refreshes
/// cached identity, and registers for the asymmetric barrier.
pub(crate) fn register_process() {
    ATFORK.call_once(|| {
        // SAFETY: the handler is an `extern "C" fn()` that lives for the whole
        // program and only does async-signal-safe work (atomic stores and the
        // `membarrier` system call).
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        crate::sync::futex::register_process();
    });
}

/// This process's pid, without a system call after the first.
#[inline]
pub(crate) fn current_pid() -> u32 {
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    let p = rustix::process::getpid().as_raw_nonzero().get() as u32;
    PID.store(p, Ordering::Relaxed);
    p
}

/// This process's identity: pid and start time.
#[allow(dead_code)] // used by the robust locks
pub(crate) fn current_proc() -> ProcId {
    let pid = current_pid();
    let mut start = START.load(Ordering::Relaxed);
    if start == 0 {
        start = start_time(pid).unwrap_or(0);
        START.store(start, Ordering::Relaxed);
    }
    ProcId { pid, start }
}

/// A process, identified against pid reuse by its start time.
#[allow(dead_code)] // used by the robust locks
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcId {
    /// The pid.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22); 0 if unknown.
    pub start: u64,
}

#[allow(dead_code)] // used by the robust locks
impl ProcId {
    /// Whether this process still runs (a pid reused by a newer process does
    /// not count). Errs on the side of "alive" when unsure.
    pub(crate) fn is_alive(&self) -> bool {
        if self.pid == 0 || self.pid > i32::MAX as u32 {
            return false;
        }
        match proc_stat(self.pid) {
            Ok(Some((state, start))) => state != 'Z' && state != 'X' && (self.start == 0 || start == self.start),
            Ok(None) => false,
            // No /proc to read (or an unreadable entry): fall back to kill(pid, 0).
            Err(()) => pid_exists(self.pid),
        }
    }
}

/// `kill(pid, 0)`: does any process have this pid?
pub(crate) fn pid_exists(pid: u32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else { return false };
    !matches!(rustix::process::test_kill_process(p), Err(rustix::io::Errno::SRCH))
}

/// Start time of a running (not zombie) `pid`, from `/proc/PID/stat`.
#[allow(dead_code)] // used by the robust locks
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    match proc_stat(pid) {
        Ok(Some((state, start))) if state != 'Z' && state != 'X' => Some(start),
        _ => None,
    }
}

/// `(state, start time)` from `/proc/PID/stat`; `Ok(None)` if there is no such
/// process, `Err(())` if `/proc` could not tell.
fn proc_stat(pid: u32) -> Result<Option<(char, u64)>, ()> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Distinguish "no such process" from "no /proc at all".
            return if std::path::Path::new("/proc/self/stat").exists() { Ok(None) } else { Err(()) };
        }
        Err(_) => return Err(()),
    };
    // The command name (field 2) may hold spaces and parentheses: parse after
    // the last ')'.
    let rest = &stat[stat.rfind(')').ok_or(())? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next().and_then(|s| s.chars().next()).ok_or(())?; // field 3
    let start = fields.nth(18).and_then(|s| s.parse().ok()).ok_or(())?; // field 22
    Ok(Some((state, start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_is_alive_and_pid_one_is_not_me() {
        let me = current_proc();
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert!(!ProcId { pid: me.pid, start: me.start + 1 }.is_alive());
        assert!(!ProcId { pid: 0, start: 0 }.is_alive());
    }
}
