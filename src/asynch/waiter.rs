//! The per-process waiter: threads that sleep on the futex words futures
//! registered, and wake those futures' wakers.
//!
//! # Implementation details
//!
//! Registrations live in *shards*, each served by one thread started on
//! first need and kept for the life of the process (idle, it sleeps on its
//! private control word without a timeout and costs nothing). A shard holds
//! up to [`WAITV_SHARD`] registrations — `futex_waitv` takes at most 128
//! words, one of which is the shard's control word — so one thread serves
//! the first 127 waiting futures, a second one the next 127, and so on.
//!
//! The thread never dereferences a registered address: the kernel reads the
//! words (`futex_waitv`, and a zero-timeout `futex_waitv` of one word to find
//! which word changed), so a future dropped while its address sits in the
//! thread's array, even one leaked with `mem::forget` whose mapping is gone,
//! cannot make the thread touch freed memory (the kernel answers `EFAULT`,
//! and every registration of the shard fires).
//!
//! | event (thread side)              | what fires                                  |
//! |----------------------------------|---------------------------------------------|
//! | woken on word *i*                | every registration on that address; none    |
//! |                                  | left (dropped): the wake is passed on to    |
//! |                                  | one other sleeper (`FUTEX_WAKE` 1)          |
//! | `EAGAIN`, control word unchanged | every registration whose word ≠ expected    |
//! | `EAGAIN` / wake on control word  | nothing: rebuild the array (new entries)    |
//! | `EFAULT`                         | all registrations of the shard              |
//! | any return                       | registrations older than one 20 ms slice    |
//!
//! A registration is one-shot: fired means removed, and the future registers
//! again (after announcing itself again) if it still has to wait.
//!
//! **Older kernels** (no `futex_waitv`, before Linux 5.16; or with
//! `RINGSHM_ASYNC_WAITER=single` in the environment, for tests and
//! measurements): each shard holds one registration, and its thread sleeps
//! with plain `FUTEX_WAIT` on that one word in 20 ms slices. So there is one
//! thread per concurrently waiting future (threads are reused; a shard whose
//! future was dropped serves again after its thread's current slice ends).
//! Latency and CPU are the same; only the thread count grows.
//!
//! **fork()**: a child starts with no waiter threads; the table is keyed by
//! pid and a child builds its own on first use, never touching the parent's
//! shards (whose mutexes may have been held by a thread that does not exist
//! in the child). Known limit: if another thread of the parent was inside
//! `register` (holding the table's mutex) at the instant of `fork`, the
//! child's first async wait blocks on that mutex; fork before starting
//! async work in other threads, or exec, as for any process that forks
//! while threads hold locks. Futures created before a fork must not be
//! polled in the child.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use rustix::thread::futex;

use crate::process::current_pid;
use crate::sync::wait::PARK_SLICE;

/// Registrations per shard with `futex_waitv` (`FUTEX_WAITV_MAX` is 128,
/// minus the control word).
const WAITV_SHARD: usize = 127;

/// One registered future.
struct Entry {
    id: u64,
    /// The futex word's address; never dereferenced by the thread.
    addr: usize,
    expected: u32,
    waker: Waker,
    since: Instant,
}

/// One waiter thread's registrations.
struct Shard {
    entries: Mutex<Vec<Entry>>,
    /// Bumped (and woken) on every registration so the thread rebuilds its array.
    ctl: AtomicU32,
    /// Single-word mode: the thread is idle, sleeping on `ctl`, and takes a
    /// registration.
    idle: AtomicBool,
    /// Registrations now (a hint for choosing a shard).
    len: AtomicUsize,
}

/// This process's shards.
struct Table {
    pid: u32,
    shards: Vec<Arc<Shard>>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// 0: not probed; 1: `futex_waitv`; 2: single-word fallback.
static MODE: AtomicU8 = AtomicU8::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking waker cannot leave the table inconsistent: entries are
    // pushed and removed whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether this process uses `futex_waitv` (else the single-word fallback).
pub(crate) fn uses_waitv() -> bool {
    let m = MODE.load(Ordering::Relaxed);
    if m != 0 {
        return m == 1;
    }
    let forced = std::env::var("RINGSHM_ASYNC_WAITER").is_ok_and(|v| v == "single");
    // An empty array: EINVAL where the call exists, ENOSYS where it does not.
    let have = !forced
        && !matches!(
            futex::waitv(&[], futex::WaitvFlags::empty(), None, rustix::time::ClockId::Monotonic),
            Err(rustix::io::Errno::NOSYS)
        );
    MODE.store(if have { 1 } else { 2 }, Ordering::Relaxed);
    have
}

/// A future's outstanding registration; dropping it removes it.
#[derive(Debug)]
pub(crate) struct Registration {
    shard: Arc<Shard>,
    id: u64,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("len", &self.len.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

/// Registers `waker` to be woken when `word` no longer holds `expected`, when
/// it is woken, or after one liveness slice.
pub(crate) fn register(word: &AtomicU32, expected: u32, waker: &Waker) -> Registration {
    let waitv = uses_waitv();
    let shard = {
        let mut t = lock(&TABLE);
        let pid = current_pid();
        if t.as_ref().is_none_or(|t| t.pid != pid) {
            // First use in this process (or in a forked child: the parent's
            // shards are leaked untouched, their threads do not exist here).
            if let Some(old) = t.take() {
                std::mem::forget(old);
            }
            *t = Some(Table { pid, shards: Vec::new() });
        }
        let t = t.as_mut().expect("just set");
        let found = t.shards.iter().find(|s| {
            if waitv {
                s.len.load(Ordering::Relaxed) < WAITV_SHARD
            } else {
                // Relaxed: a claim under the table mutex; the thread clears
                // `idle` only for a shard it serves alone.
                s.len.load(Ordering::Relaxed) == 0 && s.idle.swap(false, Ordering::Relaxed)
            }
        });
        match found {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Shard {
                    entries: Mutex::new(Vec::new()),
                    ctl: AtomicU32::new(0),
                    idle: AtomicBool::new(false),
                    len: AtomicUsize::new(0),
                });
                let s2 = s.clone();
                std::thread::Builder::new()
                    .name("ringshm-waiter".into())
                    .spawn(move || if waitv { serve_waitv(&s2) } else { serve_single(&s2) })
                    .expect("ringshm: cannot start the async waiter thread");
                t.shards.push(s.clone());
                s
            }
        }
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    {
        let mut e = lock(&shard.entries);
        e.push(Entry { id, addr: word.as_ptr() as usize, expected, waker: waker.clone(), since: Instant::now() });
        shard.len.store(e.len(), Ordering::Relaxed);
        // Relaxed: the thread reads `ctl` and the entries under this mutex;
        // the value only makes its futex sleep fail if it changed meanwhile.
        shard.ctl.fetch_add(1, Ordering::Relaxed);
    }
    let _ = futex::wake(&shard.ctl, futex::Flags::PRIVATE, 1);
    Registration { shard, id }
}

impl Registration {
    /// `true` if still registered (the waker is replaced by `waker` if it
    /// would not wake the same task); `false` once it fired.
    pub(crate) fn refresh(&self, waker: &Waker) -> bool {
        let mut e = lock(&self.shard.entries);
        match e.iter_mut().find(|e| e.id == self.id) {
            Some(e) => {
                if !e.waker.will_wake(waker) {
                    e.waker = waker.clone();
                }
                true
            }
            None => false,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut e = lock(&self.shard.entries);
        e.retain(|e| e.id != self.id);
        self.shard.len.store(e.len(), Ordering::Relaxed);
    }
}

/// Removes the entries `fire` picks and returns their wakers (to be woken
/// after the mutex is released).
fn take(entries: &mut Vec<Entry>, len: &AtomicUsize, mut fire: impl FnMut(&Entry) -> bool) -> Vec<Waker> {
    let mut out = Vec::new();
    entries.retain_mut(|e| {
        if fire(e) {
            out.push(e.waker.clone());
            false
        } else {
            true
        }
    });
    len.store(entries.len(), Ordering::Relaxed);
    out
}

fn wait_entry(addr: usize, expected: u32) -> futex::Wait {
    let mut w = futex::Wait::new();
    w.val = u64::from(expected);
    w.uaddr = futex::WaitPtr::new(addr as *mut core::ffi::c_void);
    // Shared (no PRIVATE flag): the word may be mapped by other processes.
    w.flags = futex::WaitFlags::SIZE_U32;
    w
}

/// `CLOCK_MONOTONIC` now plus `d`, for `futex_waitv`'s absolute timeout.
fn abs_after(d: Duration) -> futex::Timespec {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mut s = now.tv_sec.saturating_add(d.as_secs() as i64);
    let mut ns = now.tv_nsec + i64::from(d.subsec_nanos());
    if ns >= 1_000_000_000 {
        s = s.saturating_add(1);
        ns -= 1_000_000_000;
    }
    futex::Timespec { tv_sec: s, tv_nsec: ns }
}

/// Whether the word at `addr` no longer holds `expected` (or cannot be
/// read): a zero-timeout `futex_waitv` on it, so the kernel does the reading.
fn changed(addr: usize, expected: u32) -> bool {
    let r = futex::waitv(
        &[wait_entry(addr, expected)],
        futex::WaitvFlags::empty(),
        Some(&abs_after(Duration::ZERO)),
        rustix::time::ClockId::Monotonic,
    );
    !matches!(r, Err(rustix::io::Errno::TIMEDOUT) | Err(rustix::io::Errno::INTR))
}

/// The `futex_waitv` thread of one shard.
fn serve_waitv(shard: &Shard) {
    let mut waits: Vec<futex::Wait> = Vec::with_capacity(WAITV_SHARD + 1);
    let mut ids: Vec<(u64, usize)> = Vec::with_capacity(WAITV_SHARD);
    loop {
        waits.clear();
        ids.clear();
        let (c, oldest) = {
            let e = lock(&shard.entries);
            // Relaxed: read under the mutex every registration bumps it under.
            let c = shard.ctl.load(Ordering::Relaxed);
            let mut ctl = wait_entry(shard.ctl.as_ptr() as usize, c);
            ctl.flags |= futex::WaitFlags::PRIVATE;
            waits.push(ctl);
            for x in e.iter() {
                waits.push(wait_entry(x.addr, x.expected));
                ids.push((x.id, x.addr));
            }
            (c, e.iter().map(|x| x.since).min())
        };
        let timeout = oldest.map(|o| abs_after((o + PARK_SLICE).saturating_duration_since(Instant::now())));
        let r = futex::waitv(&waits, futex::WaitvFlags::empty(), timeout.as_ref(), rustix::time::ClockId::Monotonic);
        let now = Instant::now();
        let wakers = {
            let mut e = lock(&shard.entries);
            let mut fired = match r {
                Ok(i) if i >= 1 => match ids.get(i - 1) {
                    Some(&(_, addr)) => {
                        let fired = take(&mut e, &shard.len, |x| x.addr == addr);
                        if fired.is_empty() {
                            // Every future that waited on it is gone: hand the
                            // wake on, it may have been meant for one sleeper only.
                            wake_one(addr);
                        }
                        fired
                    }
                    None => Vec::new(),
                },
                // Relaxed: see above.
                Err(rustix::io::Errno::AGAIN) if shard.ctl.load(Ordering::Relaxed) == c => {
                    take(&mut e, &shard.len, |x| changed(x.addr, x.expected))
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR | rustix::io::Errno::TIMEDOUT) | Ok(_) => {
                    Vec::new()
                }
                Err(rustix::io::Errno::FAULT) => take(&mut e, &shard.len, |_| true),
                Err(_) => {
                    // Unexpected: let every future re-check, and do not spin
                    // on an error that persists.
                    std::thread::sleep(Duration::from_millis(1));
                    take(&mut e, &shard.len, |_| true)
                }
            };
            fired.extend(take(&mut e, &shard.len, |x| now.saturating_duration_since(x.since) >= PARK_SLICE));
            fired
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The single-word thread of one shard (kernels without `futex_waitv`).
fn serve_single(shard: &Shard) {
    loop {
        let (c, first) = {
            let e = lock(&shard.entries);
            // Relaxed: see `serve_waitv`.
            let c = shard.ctl.load(Ordering::Relaxed);
            if e.is_empty() {
                // Relaxed: read by `register` under the table mutex; a stale
                // `false` only starts another shard.
                shard.idle.store(true, Ordering::Relaxed);
            }
            (c, e.first().map(|x| (x.addr, x.expected, x.since)))
        };
        let Some((addr, expected, since)) = first else {
            let _ = futex::wait(&shard.ctl, futex::Flags::PRIVATE, c, None);
            continue;
        };
        let left = (since + PARK_SLICE).saturating_duration_since(Instant::now());
        let ts =
            libc::timespec { tv_sec: left.as_secs() as libc::time_t, tv_nsec: libc::c_long::from(left.subsec_nanos()) };
        // SAFETY: a raw FUTEX_WAIT: the kernel reads the word at `addr` (or
        // fails with EFAULT); nothing here dereferences it, so a word whose
        // mapping is gone cannot make this thread touch freed memory. The
        // timespec lives across the call.
        let r = unsafe {
            libc::syscall(libc::SYS_futex, addr as *const u32, libc::FUTEX_WAIT, expected, &ts as *const libc::timespec)
        };
        let wakers = {
            let mut e = lock(&shard.entries);
            // Any return: wake, changed word, timeout, fault — fire it; the
            // future re-checks (a spurious wake costs one poll).
            let fired = take(&mut e, &shard.len, |x| x.addr == addr);
            if fired.is_empty() && r == 0 {
                wake_one(addr); // woken for a future that is gone: see `serve_waitv`
            }
            fired
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Passes a wake-up on to one other sleeper on the word at `addr` (a raw
/// `FUTEX_WAKE`: the kernel resolves the address; a word that is gone gives
/// `EFAULT`, and waking an unrelated word is a harmless spurious wake-up).
fn wake_one(addr: usize) {
    // SAFETY: FUTEX_WAKE only makes the kernel look the address up; nothing
    // here dereferences it.
    unsafe { libc::syscall(libc::SYS_futex, addr as *const u32, libc::FUTEX_WAKE, 1) };
}
