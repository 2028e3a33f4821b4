//! The lock-free state machines of the synchronisation primitives, as small
//! functions over atomic words that live anywhere: in a segment for the real
//! types, on the heap for the loom models at the end of this file.
//!
//! # Implementation details
//!
//! ## Lock word (`Lock`, `RLock`, `Condition`, `Array`, seqlock writers)
//!
//! A robust futex mutex in the style of Linux robust futexes: the word holds
//! the owner's *thread id*, so a waiter can ask the kernel whether the owner
//! still lives, with no registration or cleanup list.
//!
//! | bits    | name        | meaning                                          |
//! |---------|-------------|--------------------------------------------------|
//! | 0..=29  | owner       | tid of the holder; 0 = free                      |
//! | 30      | (reserved)  | ignored when read, cleared by the next acquirer  |
//! | 31      | `WAITERS`   | a thread may sleep on the word: unlock must wake |
//!
//! | word                | meaning                                          |
//! |---------------------|--------------------------------------------------|
//! | `0`                 | free, nobody sleeps (the fast-path CAS target)   |
//! | `tid`               | held, nobody sleeps: unlock is one `swap`        |
//! | `tid \| WAITERS`    | held, sleepers: unlock swaps to 0 and wakes one  |
//! | `WAITERS`           | free but a sleeper has not yet re-taken it       |
//! | `dead tid \| ..`    | the holder died: a waiter CASes its own tid in and reports `OwnerDied` |
//!
//! Acquiring after a sleep keeps `WAITERS` set (Drepper's "mutex 3"), so
//! other sleepers are not forgotten; the cost is at most one spare wake.
//!
//! ## Semaphore word and ledger (`Semaphore`, `BoundedSemaphore`)
//!
//! The count lives in one 64-bit *commit word* together with a record of the
//! last operation; each process has a *ledger slot* with its net permits held.
//!
//! | commit word bits | field   | meaning                                          |
//! |------------------|---------|--------------------------------------------------|
//! | 0..=31           | `ver`   | bumped by every committed operation              |
//! | 32..=39          | `slot`  | ledger slot of the last operation, `0xFF` = none  |
//! | 40..=41          | `op`    | last operation: acquire, release, repair          |
//! | 42..=63          | `count` | permits available                                 |
//!
//! A ledger slot word holds `held` (i32, high half) and `applied` (the `ver`
//! of the last operation applied to it, low half). An operation commits by
//! one CAS on the commit word; its ledger update is applied afterwards by
//! *whoever comes next* ("helping", as in descriptor-based lock-free
//! algorithms): every operation first applies the pending update of the last
//! one. So there is no instant at which a `SIGKILL` leaves count and ledger
//! disagreeing: the commit word is the truth, and a ledger lags it by at most
//! one update that anybody can complete. Repairing a dead process's slot is
//! itself a committed operation (`op = repair`: `count += max(held, 0)`, then
//! `held = 0`).
//!
//! ## Event word
//!
//! | bits   | name      | meaning                                   |
//! |--------|-----------|-------------------------------------------|
//! | 0      | `SET`     | the flag                                  |
//! | 1      | `WAITING` | someone may sleep: `set` must wake        |
//! | 8..=31 | gen       | bumped by every unset→set transition, so a waiter woken by a `set` that is `clear`ed at once still returns |

use crate::primitive::{AtomicU32, AtomicU64, Ordering};

// ---------------------------------------------------------------------------
// Lock word

/// Owner tid bits of a lock word.
pub(crate) const TID_MASK: u32 = (1 << 30) - 1;
/// Someone may sleep on the lock word.
pub(crate) const WAITERS: u32 = 1 << 31;

/// The uncontended acquire: `0 -> me`.
#[inline(always)]
pub(crate) fn lock_fast(w: &AtomicU32, me: u32) -> bool {
    // Acquire: pairs with the Release swap in `unlock`: the previous holder's
    // critical section happens-before ours.
    w.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok()
}

/// One acquire attempt on the slow path: takes a free word (owner bits 0),
/// keeping `WAITERS` and adding `extra` (`WAITERS` after this thread slept).
/// `Err(current)` if held (or the CAS lost).
#[inline]
pub(crate) fn lock_try(w: &AtomicU32, me: u32, extra: u32) -> Result<(), u32> {
    let cur = w.load(Ordering::Relaxed);
    if cur & TID_MASK != 0 {
        return Err(cur);
    }
    // Acquire: as in `lock_fast`.
    w.compare_exchange(cur, me | (cur & WAITERS) | extra, Ordering::Acquire, Ordering::Relaxed).map(|_| ())
}

/// Takes the lock from a dead owner, if the word still reads `observed`.
pub(crate) fn lock_take_over(w: &AtomicU32, observed: u32, me: u32) -> bool {
    // Acquire: pairs with the dead owner's last Release (if any); its writes
    // may be half done, which is what `OwnerDied` tells the caller.
    w.compare_exchange(observed, me | (observed & WAITERS), Ordering::Acquire, Ordering::Relaxed).is_ok()
}

/// Sets `WAITERS` on a held word reading `cur`; `false` if it changed.
#[inline]
pub(crate) fn lock_mark_waiting(w: &AtomicU32, cur: u32) -> bool {
    cur & WAITERS != 0 || w.compare_exchange(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

/// Releases the lock; `true` if sleepers must be woken.
#[inline(always)]
pub(crate) fn unlock(w: &AtomicU32) -> bool {
    // Release: pairs with the Acquire CAS of the next holder.
    w.swap(0, Ordering::Release) & WAITERS != 0
}

// ---------------------------------------------------------------------------
// Semaphore commit word and ledger

/// Number of ledger slots (one per process using the semaphore).
pub(crate) const LEDGER_SLOTS: usize = 128;
/// "No slot" in the commit word (an untracked process, or no operation yet).
pub(crate) const NO_SLOT: u64 = 0xFF;
/// Largest count the commit word holds.
pub(crate) const MAX_COUNT: u64 = (1 << 22) - 1;

const OP_ACQUIRE: u64 = 0;
const OP_RELEASE: u64 = 1;
const OP_REPAIR: u64 = 2;

/// A decoded commit word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Commit {
    pub ver: u32,
    pub slot: u64,
    pub op: u64,
    pub count: u64,
}

impl Commit {
    #[inline]
    pub(crate) fn decode(w: u64) -> Commit {
        Commit { ver: w as u32, slot: (w >> 32) & 0xFF, op: (w >> 40) & 3, count: w >> 42 }
    }
    #[inline]
    pub(crate) fn encode(self) -> u64 {
        u64::from(self.ver) | (self.slot & 0xFF) << 32 | (self.op & 3) << 40 | (self.count & MAX_COUNT) << 42
    }
}

/// Initial commit word for `count` permits.
pub(crate) fn sem_initial(count: u64) -> u64 {
    Commit { ver: 0, slot: NO_SLOT, op: OP_ACQUIRE, count: count.min(MAX_COUNT) }.encode()
}

/// `held` of a ledger slot word.
#[inline]
pub(crate) fn ledger_held(s: u64) -> i32 {
    (s >> 32) as u32 as i32
}

#[inline]
fn ledger_word(held: i32, applied: u32) -> u64 {
    u64::from(held as u32) << 32 | u64::from(applied)
}

/// Applies the ledger update of the operation committed as `cw` (observed in
/// `word`), unless already applied. Anybody may call it any number of times.
#[inline]
pub(crate) fn sem_help(word: &AtomicU64, cw: u64, ledger: &[AtomicU64]) {
    let c = Commit::decode(cw);
    let Some(slot) = ledger.get(c.slot as usize) else { return };
    // Acquire: pairs with the Release CAS that applied an earlier update.
    let s = slot.load(Ordering::Acquire);
    if s as u32 == c.ver {
        return;
    }
    // Still the pending operation? If the commit word moved on, its next
    // committer already helped (every committer helps first).
    // Acquire: pairs with the AcqRel commit CAS of the next operation.
    if word.load(Ordering::Acquire) != cw {
        return;
    }
    let held = ledger_held(s);
    let new = match c.op {
        OP_ACQUIRE => held.wrapping_add(1),
        OP_RELEASE => held.wrapping_sub(1),
        _ => 0,
    };
    // Release: pairs with the Acquire load above (of the next helper) and in
    // `sem_repair`. A failed CAS means someone else applied it.
    let _ = slot.compare_exchange(s, ledger_word(new, c.ver), Ordering::Release, Ordering::Relaxed);
}

/// Takes one permit if one is available (no waiting).
#[inline]
pub(crate) fn sem_try_acquire(word: &AtomicU64, ledger: &[AtomicU64], me: u64) -> bool {
    // Acquire: pairs with the AcqRel commit CAS of the previous operation.
    let mut cw = word.load(Ordering::Acquire);
    loop {
        let c = Commit::decode(cw);
        if c.count == 0 {
            return false;
        }
        sem_help(word, cw, ledger);
        let next = Commit { ver: c.ver.wrapping_add(1), slot: me, op: OP_ACQUIRE, count: c.count - 1 }.encode();
        // AcqRel: Acquire pairs with the Release CAS of the releaser whose
        // permit we take; Release publishes our commit to the helpers.
        match word.compare_exchange_weak(cw, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                sem_help(word, next, ledger);
                return true;
            }
            Err(now) => cw = now,
        }
    }
}

/// Returns one permit unless the count would exceed `max`; `Err(count)` then.
#[inline]
pub(crate) fn sem_release(word: &AtomicU64, ledger: &[AtomicU64], me: u64, max: u64) -> Result<(), u64> {
    // Acquire: pairs with the AcqRel commit CAS of the previous operation.
    let mut cw = word.load(Ordering::Acquire);
    loop {
        let c = Commit::decode(cw);
        if c.count >= max.min(MAX_COUNT) {
            return Err(c.count);
        }
        sem_help(word, cw, ledger);
        let next = Commit { ver: c.ver.wrapping_add(1), slot: me, op: OP_RELEASE, count: c.count + 1 }.encode();
        // AcqRel: Release pairs with the Acquire CAS of the next acquirer.
        match word.compare_exchange_weak(cw, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                sem_help(word, next, ledger);
                return Ok(());
            }
            Err(now) => cw = now,
        }
    }
}

/// Returns the permits recorded in slot `slot` (whose process is dead, and
/// which the caller has claimed for repair so nobody else uses it) to the
/// pool, capped at `max`, and zeroes the slot. Returns how many it returned.
pub(crate) fn sem_repair(word: &AtomicU64, ledger: &[AtomicU64], slot: usize, max: u64) -> u64 {
    // Acquire: pairs with the AcqRel commit CAS of the previous operation.
    let mut cw = word.load(Ordering::Acquire);
    loop {
        // The dead process commits nothing any more; once the pending update
        // is applied, its `held` is final.
        sem_help(word, cw, ledger);
        // Acquire: pairs with the Release CAS in `sem_help`.
        let held = ledger_held(ledger[slot].load(Ordering::Acquire));
        let c = Commit::decode(cw);
        let give = u64::try_from(held.max(0)).unwrap_or(0);
        let count = (c.count + give).min(max.min(MAX_COUNT)).max(c.count);
        let next = Commit { ver: c.ver.wrapping_add(1), slot: slot as u64, op: OP_REPAIR, count }.encode();
        // AcqRel: Release pairs with the Acquire CAS of acquirers taking the
        // returned permits.
        match word.compare_exchange(cw, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                sem_help(word, next, ledger);
                return count - c.count;
            }
            Err(now) => cw = now,
        }
    }
}

// ---------------------------------------------------------------------------
// Event word

/// The event's flag.
pub(crate) const EV_SET: u32 = 1;
/// Someone may sleep on the event word.
pub(crate) const EV_WAITING: u32 = 2;
/// One generation step.
pub(crate) const EV_GEN: u32 = 1 << 8;

/// Sets the flag; `true` if sleepers must be woken.
#[inline]
pub(crate) fn event_set(w: &AtomicU32) -> bool {
    let mut cur = w.load(Ordering::Relaxed);
    loop {
        if cur & EV_SET != 0 && cur & EV_WAITING == 0 {
            return false;
        }
        let new = if cur & EV_SET != 0 { cur & !EV_WAITING } else { (cur | EV_SET).wrapping_add(EV_GEN) & !EV_WAITING };
        // AcqRel: Release pairs with the Acquire load in `event_ready`:
        // what the setter wrote before `set` is visible to released waiters.
        match w.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return cur & EV_WAITING != 0,
            Err(c) => cur = c,
        }
    }
}

/// Clears the flag.
#[inline]
pub(crate) fn event_clear(w: &AtomicU32) {
    w.fetch_and(!EV_SET, Ordering::Relaxed);
}

/// Whether a waiter that started when the word read `start` may return.
#[inline]
pub(crate) fn event_ready(w: &AtomicU32, start: u32) -> bool {
    // Acquire: pairs with the AcqRel CAS in `event_set`.
    let cur = w.load(Ordering::Acquire);
    cur & EV_SET != 0 || (cur ^ start) & !(EV_GEN - 1) != 0
}

// ---------------------------------------------------------------------------
// loom models (RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom)

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// Two threads increment a plain cell under the lock word: no lost update,
    /// no data race (loom checks the cell accesses), and the word ends free.
    #[test]
    fn loom_lock_mutual_exclusion() {
        loom::model(|| {
            let w = Arc::new(AtomicU32::new(0));
            let cell = Arc::new(UnsafeCell::new(0u32));
            let hs: Vec<_> = (1..=2u32)
                .map(|me| {
                    let (w, cell) = (w.clone(), cell.clone());
                    thread::spawn(move || {
                        if !lock_fast(&w, me) {
                            loop {
                                match lock_try(&w, me, 0) {
                                    Ok(()) => break,
                                    Err(cur) => {
                                        let _ = lock_mark_waiting(&w, cur);
                                        thread::yield_now();
                                    }
                                }
                            }
                        }
                        // SAFETY: the lock word gives this thread exclusive access.
                        cell.with_mut(|p| unsafe { *p += 1 });
                        let _ = unlock(&w);
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            // SAFETY: both threads joined.
            assert_eq!(cell.with(|p| unsafe { *p }), 2);
            assert_eq!(w.load(Ordering::Relaxed) & TID_MASK, 0);
        });
    }

    /// A dead owner's word is taken over exactly once by racing waiters.
    #[test]
    fn loom_lock_take_over_once() {
        loom::model(|| {
            let dead = 7;
            let w = Arc::new(AtomicU32::new(dead | WAITERS));
            let wins = Arc::new(AtomicU32::new(0));
            let hs: Vec<_> = (1..=2u32)
                .map(|me| {
                    let (w, wins) = (w.clone(), wins.clone());
                    thread::spawn(move || {
                        if lock_take_over(&w, dead | WAITERS, me) {
                            wins.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(wins.load(Ordering::Relaxed), 1);
        });
    }

    fn ledger() -> Arc<Vec<AtomicU64>> {
        Arc::new((0..3).map(|_| AtomicU64::new(0)).collect())
    }

    fn total_held(l: &[AtomicU64]) -> i64 {
        l.iter().map(|s| i64::from(ledger_held(s.load(Ordering::Relaxed)))).sum()
    }

    /// Two processes (slots 0, 1) acquire and release concurrently; afterwards
    /// the ledger agrees with the count: count + sum(held) == initial.
    #[test]
    fn loom_semaphore_ledger_consistent() {
        loom::model(|| {
            let w = Arc::new(AtomicU64::new(sem_initial(1)));
            let l = ledger();
            let hs: Vec<_> = (0..2u64)
                .map(|me| {
                    let (w, l) = (w.clone(), l.clone());
                    thread::spawn(move || {
                        if sem_try_acquire(&w, &l, me) {
                            sem_release(&w, &l, me, 1).unwrap();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            let cw = w.load(Ordering::Relaxed);
            sem_help(&w, cw, &l);
            assert_eq!(Commit::decode(w.load(Ordering::Relaxed)).count, 1);
            assert_eq!(total_held(&l), 0);
        });
    }

    /// A "dead" process (slot 0) took a permit and stopped right after its
    /// commit (its ledger update pending); a live one (slot 1) competes while
    /// a repairer returns slot 0's permit: the permit comes back exactly once.
    #[test]
    fn loom_semaphore_repair_after_death() {
        loom::model(|| {
            let w = Arc::new(AtomicU64::new(sem_initial(2)));
            let l = ledger();
            // The dead process's commit, with no ledger update applied.
            let cw = w.load(Ordering::Relaxed);
            let c = Commit::decode(cw);
            w.store(Commit { ver: c.ver + 1, slot: 0, op: OP_ACQUIRE, count: 1 }.encode(), Ordering::Relaxed);
            let live = {
                let (w, l) = (w.clone(), l.clone());
                thread::spawn(move || {
                    if sem_try_acquire(&w, &l, 1) {
                        sem_release(&w, &l, 1, 2).unwrap();
                    }
                })
            };
            let returned = sem_repair(&w, &l, 0, 2);
            live.join().unwrap();
            assert_eq!(returned, 1);
            assert_eq!(Commit::decode(w.load(Ordering::Relaxed)).count, 2);
            sem_help(&w, w.load(Ordering::Relaxed), &l);
            assert_eq!(total_held(&l), 0);
        });
    }

    /// `set` racing with a waiter's registration: either the waiter sees the
    /// flag, or `set` sees `WAITING` (and would wake it). Never neither.
    #[test]
    fn loom_event_no_lost_wakeup() {
        loom::model(|| {
            let w = Arc::new(AtomicU32::new(0));
            let setter = {
                let w = w.clone();
                thread::spawn(move || event_set(&w))
            };
            let start = w.load(Ordering::Relaxed);
            let registered = w.fetch_or(EV_WAITING, Ordering::Relaxed);
            let _ = registered;
            let saw = event_ready(&w, start);
            let woke = setter.join().unwrap();
            assert!(saw || woke, "lost wake-up");
        });
    }
}
