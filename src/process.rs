//! This process and its threads: pid, tid, start time, the fork handler, the
//! `membarrier` registration, and descriptors that must not survive `fork()`.
//! The lowest layer: it names no other module of the crate.
//!
//! # Implementation details
//!
//! Identity is cached in statics (per process) and a thread-local (per
//! thread), so the hot paths never make a system call for it. A forked child
//! inherits the caches; the `pthread_atfork` child handler installed by
//! [`register_process`] resets them:
//!
//! | cache                    | valid while                  | reset by          |
//! |--------------------------|------------------------------|-------------------|
//! | `PID`                    | in the process that set them | the fork handler  |
//! | thread-local `TID`       | its `pid` half is our pid    | pid mismatch      |
//! | `BARRIER_REGISTERED`     | in this address space        | the fork handler (registers again) |
//! | [`PrivateFd`] table      | in the process that opened   | the fork handler (closes them all) |
//!
//! Descriptors whose open-file-description locks mean "this process is alive"
//! (the owner slots of `crate::sync::owner`) must not be kept alive by a forked
//! child after the parent dies: the kernel frees an OFD lock only when the
//! *last* descriptor of the description closes. [`PrivateFd`] keeps such
//! descriptors in a fixed table that the fork handler closes in the child,
//! with async-signal-safe work only (atomic swaps and `close`).
//!
//! Pids and tids are those of the caller's pid namespace. Nothing in the
//! crate decides that another process is dead from a pid alone where a
//! kernel-held lock can tell instead; see `crate::sync::owner`.

use std::cell::Cell;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Once;

/// Cached pid of this process, refreshed in forked children.
static PID: AtomicU32 = AtomicU32::new(0);
/// Whether this process is registered for `GLOBAL_EXPEDITED` barriers.
static BARRIER_REGISTERED: AtomicBool = AtomicBool::new(false);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    PID.store(0, Ordering::Relaxed);
    close_private_fds();
    // Registration is per address space; the child has a new one.
    register_barrier();
}

/// Per-process set-up, idempotent: installs the fork handler that refreshes
/// cached identity and closes [`PrivateFd`]s in children, and registers for
/// the asymmetric barrier.
pub(crate) fn register_process() {
    ATFORK.call_once(|| {
        // SAFETY: the handler is an `extern "C" fn()` that lives for the whole
        // program and only does async-signal-safe work (atomic stores, `close`
        // and the `membarrier` system call).
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        register_barrier();
    });
}

/// Registers this process for expedited global barriers.
fn register_barrier() {
    use rustix::thread::{membarrier, MembarrierCommand};
    let ok = membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok();
    // Relaxed: a process-local flag; the registration itself completed in
    // the kernel before this store, so any thread that sees `true` is covered.
    BARRIER_REGISTERED.store(ok, Ordering::Relaxed);
}

/// Whether this process is registered for `MEMBARRIER_CMD_GLOBAL_EXPEDITED`
/// (so the light side of the asymmetric barrier may skip the hardware fence).
#[inline(always)]
pub(crate) fn barrier_registered() -> bool {
    BARRIER_REGISTERED.load(Ordering::Relaxed)
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

thread_local! {
    /// `(pid << 32) | tid` of this thread, cached; the pid part detects a
    /// forked child (which has a new tid but inherits thread-locals).
    static TID: Cell<u64> = const { Cell::new(0) };
}

/// This thread's id (as the kernel numbers it in our pid namespace), without
/// a system call after the first per thread and per process.
#[inline]
pub(crate) fn current_tid() -> u32 {
    let pid = current_pid();
    let c = TID.with(Cell::get);
    if (c >> 32) as u32 == pid && c != 0 {
        return c as u32;
    }
    tid_slow(pid)
}

#[cold]
fn tid_slow(pid: u32) -> u32 {
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    TID.with(|c| c.set(u64::from(pid) << 32 | u64::from(tid)));
    tid
}

/// Whether thread `tid` of *this* process still runs (not a zombie).
pub(crate) fn own_thread_alive(tid: u32) -> bool {
    if tid == 0 || tid > i32::MAX as u32 {
        return false;
    }
    match proc_stat(&format!("/proc/self/task/{tid}/stat")) {
        Ok(Some((state, _))) => state != 'Z' && state != 'X',
        Ok(None) => false,
        Err(()) => true, // cannot tell: never declare a live thread dead
    }
}

/// A process, identified against pid reuse by its start time. Only for
/// informational uses (listings, diagnostics): pids are per pid namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcId {
    /// The pid.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22); 0 if unknown.
    pub start: u64,
}

impl ProcId {
    /// Whether this process still runs (a pid reused by a newer process does
    /// not count when `start` is known). Errs on the side of "alive" when unsure.
    pub(crate) fn is_alive(&self) -> bool {
        if self.pid == 0 || self.pid > i32::MAX as u32 {
            return false;
        }
        match proc_stat(&format!("/proc/{}/stat", self.pid)) {
            Ok(Some((state, start))) => state != 'Z' && state != 'X' && (self.start == 0 || start == self.start),
            Ok(None) => false,
            // No /proc to read (or an unreadable entry): fall back to kill(pid, 0).
            Err(()) => pid_exists(self.pid),
        }
    }
}

/// `kill(pid, 0)`: does any process have this pid?
pub(crate) fn pid_exists(pid: u32) -> bool {
    // The pid may come from shared memory and be anything. Only 1..=i32::MAX
    // name one process: `kill` reads 0 and negative values as process groups
    // (-1: every process), and rustix's `Pid::from_raw` asserts `>= 0`.
    let Some(p) = i32::try_from(pid).ok().filter(|&p| p > 0).and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    !matches!(rustix::process::test_kill_process(p), Err(rustix::io::Errno::SRCH))
}

/// Start time of a running (not zombie) `pid`, from `/proc/PID/stat`.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    match proc_stat(&format!("/proc/{pid}/stat")) {
        Ok(Some((state, start))) if state != 'Z' && state != 'X' => Some(start),
        _ => None,
    }
}

/// `(state, start time)` from a `stat` file of `/proc`; `Ok(None)` if there
/// is no such process or thread, `Err(())` if `/proc` could not tell.
fn proc_stat(path: &str) -> Result<Option<(char, u64)>, ()> {
    let stat = match std::fs::read_to_string(path) {
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

// ---------------------------------------------------------------------------
// Descriptors that a forked child must not keep open

/// Capacity of the table of [`PrivateFd`]s.
const PRIVATE_FDS: usize = 1024;
/// `-1` (free) or a descriptor owned by a live [`PrivateFd`] of this process.
static PRIVATE: [AtomicI32; PRIVATE_FDS] = [const { AtomicI32::new(-1) }; PRIVATE_FDS];

/// A descriptor that belongs to this process only: it is closed in a child
/// created by `fork()` (by the fork handler, before the child runs any of
/// our code), so its open-file-description locks die with this process even
/// if children outlive it.
#[derive(Debug)]
pub(crate) struct PrivateFd {
    fd: i32,
    /// Where the table holds it; `None`: the table was full and this process
    /// keeps it in `fd` alone (children then keep a copy: documented limit).
    slot: Option<usize>,
    /// The process that opened it.
    pid: u32,
}

impl PrivateFd {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: OwnedFd) -> PrivateFd {
        register_process();
        let raw = fd.into_raw_fd();
        // Relaxed: the table is only used by this process's threads and the
        // fork handler, which runs in a child with no other thread.
        let slot =
            PRIVATE.iter().position(|e| e.compare_exchange(-1, raw, Ordering::Relaxed, Ordering::Relaxed).is_ok());
        PrivateFd { fd: raw, slot, pid: current_pid() }
    }

    /// The descriptor, or `None` in a forked child (where it was closed).
    pub(crate) fn get(&self) -> Option<BorrowedFd<'_>> {
        if self.pid != current_pid() {
            return None;
        }
        // SAFETY: in the process that opened it, `fd` stays open until our
        // `Drop` (only we and the fork handler of a *child* close it).
        Some(unsafe { BorrowedFd::borrow_raw(self.fd) })
    }
}

impl Drop for PrivateFd {
    fn drop(&mut self) {
        if self.pid != current_pid() {
            return; // a forked child: the fork handler closed it already
        }
        if let Some(i) = self.slot {
            // Relaxed: see `new`.
            let _ = PRIVATE[i].compare_exchange(self.fd, -1, Ordering::Relaxed, Ordering::Relaxed);
        }
        // SAFETY: we own `fd` in this process and close it exactly once.
        unsafe { libc::close(self.fd) };
    }
}

impl AsRawFd for PrivateFd {
    fn as_raw_fd(&self) -> i32 {
        self.fd
    }
}

/// In a forked child: closes every [`PrivateFd`] inherited from the parent.
fn close_private_fds() {
    for e in &PRIVATE {
        // Relaxed: the child runs only this thread now.
        let fd = e.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: the table holds descriptors owned by `PrivateFd`s of the
            // parent; in the child nothing else refers to them (`PrivateFd::get`
            // and `drop` check the pid), and `close` is async-signal-safe.
            unsafe { libc::close(fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_out_of_range_do_not_exist() {
        assert!(!pid_exists(0));
        assert!(!pid_exists(u32::MAX)); // -1 to kill(2): every process
        assert!(!pid_exists(i32::MAX as u32 + 1));
        assert!(pid_exists(current_pid()));
    }

    #[test]
    fn self_is_alive_and_a_wrong_start_time_is_not_me() {
        let pid = current_pid();
        let me = ProcId { pid, start: start_time(pid).unwrap() };
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert!(!ProcId { pid, start: me.start + 1 }.is_alive());
        assert!(!ProcId { pid: 0, start: 0 }.is_alive());
    }

    #[test]
    fn tid_is_cached_and_own_threads_are_seen() {
        let t = current_tid();
        assert_eq!(t, current_tid());
        assert!(own_thread_alive(t));
        let other = std::thread::spawn(current_tid).join().unwrap();
        assert_ne!(other, t);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while own_thread_alive(other) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!own_thread_alive(other), "an ended thread counts as dead");
    }

    #[test]
    fn private_fd_is_closed_in_a_forked_child() {
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        let p = PrivateFd::new(OwnedFd::from(f));
        let raw = p.as_raw_fd();
        assert!(p.get().is_some());
        // SAFETY: the child only calls async-signal-safe functions (fcntl,
        // _exit) after the fork handler ran.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: F_GETFD on a possibly closed descriptor is harmless.
            let open = unsafe { libc::fcntl(raw, libc::F_GETFD) } != -1;
            // SAFETY: `_exit` never returns.
            unsafe { libc::_exit(if open { 1 } else { 0 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child kept the descriptor");
        assert!(p.get().is_some());
    }
}
