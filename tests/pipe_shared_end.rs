//! One pipe end shared by several forked processes, as `multiprocessing`
//! allows: senders (or receivers) that take turns under a lock each use
//! their own copy of the end, and no message is lost, duplicated or torn.
//! Also: a forked child that drops its copy of an end and exits leaves the
//! parent's copy open.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ringshm::{Lock, Pipe, RecvError};

/// Forked processes per test.
const N: u32 = 4;
/// Messages per sender (or in all, per receiver on average).
const K: u32 = 1500;
/// A small ring, so that the senders wrap many times and wait for room.
const CAP: usize = 512;
/// Bound on any single wait, so that a bug shows as a failure, not a hang.
const WAIT: Duration = Duration::from_secs(30);

/// Message `k` of sender `who`: its two numbers, then a payload whose
/// length and bytes derive from them (0 to 100 bytes, so records of
/// several sizes share the ring and padding records appear).
fn message(who: u32, k: u32) -> Vec<u8> {
    let len = ((who * 7919 + k * 104_729) % 101) as usize;
    let mut m = Vec::with_capacity(8 + len);
    m.extend_from_slice(&who.to_le_bytes());
    m.extend_from_slice(&k.to_le_bytes());
    m.extend((0..len).map(|j| (who as usize * 31 + k as usize * 17 + j) as u8));
    m
}

/// The `(who, k)` of a message, if it is exactly `message(who, k)`.
fn parse(m: &[u8]) -> Option<(u32, u32)> {
    let who = u32::from_le_bytes(m.get(0..4)?.try_into().ok()?);
    let k = u32::from_le_bytes(m.get(4..8)?.try_into().ok()?);
    (who < N && k < K && message(who, k) == m).then_some((who, k))
}

/// Forks a child that runs `body` and leaves with `_exit(0)` if it returns
/// `true`, `_exit(1)` otherwise (never unwinding into the parent's harness).
fn fork_child(body: impl FnOnce() -> bool) -> libc::pid_t {
    // SAFETY: the child only uses ringshm objects, allocates, and leaves
    // with `_exit`; the parent's only other thread is the watchdog, which
    // holds no lock the child needs.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(false);
        // SAFETY: leaving the forked child without running the parent's
        // destructors or test harness.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    pid
}

/// Waits for every child and asserts each exited with status 0.
fn reap(pids: &[libc::pid_t]) {
    for &pid in pids {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child {pid} status {status}");
    }
}

/// Counters in memory shared with forked children (an anonymous shared
/// mapping that the children inherit).
struct SharedCounters {
    ptr: *mut AtomicU32,
    len: usize,
}

impl SharedCounters {
    fn new(len: usize) -> Self {
        let bytes = len * 4;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        SharedCounters { ptr: p.cast(), len }
    }
    fn get(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.len);
        // SAFETY: in bounds; the mapping is zeroed (a valid AtomicU32), 4-aligned
        // (page-aligned) and lives as long as `self`.
        unsafe { &*self.ptr.add(i) }
    }
}

impl Drop for SharedCounters {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len * 4) };
    }
}

/// N forked children send K messages each on their copies of one end,
/// taking turns under a ringshm `Lock`; the parent receives all N*K, each
/// whole, once, and in order per sender. After the children exit, the
/// parent's own copy of that end still sends (its stale position resyncs),
/// and closing it ends the stream.
#[test]
fn forked_senders_share_one_end() {
    let _wd = common::watchdog(120);
    let lock_name = common::unique("shared-send-lock");
    let lock = Lock::create(&lock_name).unwrap();
    let (rx, tx) = Pipe::pair(CAP);
    let mut pids = Vec::new();
    for who in 0..N {
        pids.push(fork_child(|| {
            for k in 0..K {
                let _g = lock.lock().unwrap();
                if tx.send_bytes_timeout(&message(who, k), WAIT).is_err() {
                    return false;
                }
            }
            // Half the children close their copy, half just exit.
            if who % 2 == 0 {
                tx.close();
            }
            true
        }));
    }
    let mut next = [0u32; N as usize];
    for i in 0..N * K {
        let m = rx.recv_bytes_timeout(WAIT).unwrap_or_else(|e| panic!("message {i}: {e}"));
        let (who, k) = parse(&m).unwrap_or_else(|| panic!("message {i} is corrupt: {m:?}"));
        assert_eq!(k, next[who as usize], "sender {who}: message {k} out of order (a message was lost)");
        next[who as usize] += 1;
    }
    assert_eq!(next, [K; N as usize]);
    reap(&pids);
    // The children's copies are gone; the parent's copy keeps the end open.
    assert!(!rx.is_peer_gone(), "a child's exit disconnected the parent's end");
    assert_eq!(rx.try_recv_bytes(), Err(ringshm::TryRecvError::Empty));
    tx.send_bytes(&message(0, 7)).unwrap();
    assert_eq!(rx.recv_bytes_timeout(WAIT).unwrap(), message(0, 7));
    drop(tx);
    assert_eq!(rx.recv_bytes(), Err(RecvError));
    drop(lock);
}

/// The parent sends N*K messages and then N empty "stop" messages; N
/// forked children receive on their copies of the other end, taking turns
/// under a ringshm `Lock`, and count what they got in shared counters:
/// every message is received exactly once, and whole.
#[test]
fn forked_receivers_share_one_end() {
    let _wd = common::watchdog(120);
    let lock_name = common::unique("shared-recv-lock");
    let lock = Lock::create(&lock_name).unwrap();
    let counts = SharedCounters::new((N * K) as usize + 1);
    let bad = (N * K) as usize; // the last counter counts corrupt messages
    let (rx, tx) = Pipe::pair(CAP);
    let mut pids = Vec::new();
    for _ in 0..N {
        pids.push(fork_child(|| {
            tx.close();
            loop {
                let m = {
                    let _g = lock.lock().unwrap();
                    match rx.recv_bytes_timeout(WAIT) {
                        Ok(m) => m,
                        Err(_) => return false,
                    }
                };
                if m.is_empty() {
                    return true;
                }
                match parse(&m) {
                    Some((who, k)) => counts.get((who * K + k) as usize).fetch_add(1, Ordering::Relaxed),
                    None => counts.get(bad).fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for k in 0..K {
        for who in 0..N {
            tx.send_bytes_timeout(&message(who, k), WAIT).unwrap_or_else(|e| panic!("send {who}/{k}: {e}"));
        }
    }
    for _ in 0..N {
        tx.send_bytes_timeout(&[], WAIT).unwrap();
    }
    reap(&pids);
    assert_eq!(counts.get(bad).load(Ordering::Relaxed), 0, "corrupt messages received");
    for i in 0..(N * K) as usize {
        assert_eq!(counts.get(i).load(Ordering::Relaxed), 1, "message {i} received a wrong number of times");
    }
    // The children's copies are gone; the parent's copy still receives.
    assert!(!tx.is_peer_gone(), "a child's exit disconnected the parent's end");
    tx.send_bytes(b"still here").unwrap();
    assert_eq!(rx.recv_bytes_timeout(WAIT).unwrap(), b"still here");
    drop(rx);
    assert!(tx.send_bytes(b"x").is_err());
    drop(lock);
}

/// A forked child that closes its copy of an end and exits does not
/// disconnect the end: the parent's copy still sends and receives.
#[test]
fn a_forked_child_closing_its_copy_leaves_the_end_open() {
    let _wd = common::watchdog(60);
    let (a, b) = Pipe::pair(1024);
    let pid = fork_child(|| {
        b.close();
        a.close();
        true
    });
    reap(&[pid]);
    assert!(!a.is_peer_gone() && !b.is_peer_gone());
    a.send_bytes(b"ping").unwrap();
    assert_eq!(b.recv_bytes_timeout(WAIT).unwrap(), b"ping");
    b.send_bytes(b"pong").unwrap();
    assert_eq!(a.recv_bytes_timeout(WAIT).unwrap(), b"pong");
    drop(b);
    assert_eq!(a.recv_bytes(), Err(RecvError));
}
