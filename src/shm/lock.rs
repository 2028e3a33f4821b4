//! Kernel-tracked liveness: open-file-description (OFD) byte-range locks on a
//! segment file. Process identity (pid, start time) is in [`crate::process`].
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
//! | `SLOT_OWNER0+k` | owner slot `k` of a sync object (`crate::sync::owner`) | exclusive |
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

use rustix::fs::{Mode, OFlags};

/// First byte offset used for locks (1 TiB: past any segment).
const LOCK_BASE: i64 = 1 << 40;
/// Held exclusively by the creator until the header is published.
pub(crate) const SLOT_INIT: u32 = 0;
/// Held shared by every open handle; nobody holding it means the segment is stale.
pub(crate) const SLOT_ATTACH: u32 = 1;
/// First role slot; role `r` is `SLOT_ROLE0 + r`.
pub(crate) const SLOT_ROLE0: u32 = 16;
/// First owner slot of the sync objects; slot `k` is `SLOT_OWNER0 + k`.
pub(crate) const SLOT_OWNER0: u32 = 1 << 16;

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

// Process identity lives in the lowest layer; these re-exports keep the
// older `shm::lock::` paths working.
pub(crate) use crate::process::{current_pid, pid_exists, register_process, start_time, ProcId};
