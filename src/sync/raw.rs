//! The lock-free state machines of the synchronisation primitives, as small
//! functions over atomic words that live anywhere: in a segment for the real
//! types, on the heap for the loom models at the end of this file.
//!
//! # Implementation details
//!
//! ## Lock word (`Lock`, `RLock`, `Condition`, `Array`, seqlock writers)
//!
//! A robust futex mutex. The word names its holder by *owner slot* and
//! thread id: the slot is a kernel-held lock byte of the holder's handle (see
//! [`crate::sync::owner`]), so a waiter asks the kernel whether the holder
//! still lives — immune to pid and tid reuse and to pid namespaces — and the
//! tid tells the threads of one handle apart (re-entrancy, `held_by_me`).
//!
//! | bits    | name        | meaning                                          |
//! |---------|-------------|--------------------------------------------------|
//! | 0..=21  | tid         | thread id of the holder (Linux tids are < 2^22)  |
//! | 22..=29 | slot        | owner slot of the holder's handle                |
//! | 30      | `DIED`      | the holder's slot was found dead and reused: take over |
//! | 31      | `WAITERS`   | a thread may sleep on the word: unlock must wake |
//!
//! | word                       | meaning                                          |
//! |----------------------------|--------------------------------------------------|
//! | `0`                        | free, nobody sleeps (the fast-path CAS target)   |
//! | `id`                       | held, nobody sleeps: unlock is one `swap`        |
//! | `id \| WAITERS`            | held, sleepers: unlock swaps to 0 and wakes one  |
//! | `WAITERS`                  | free but a sleeper has not yet re-taken it       |
//! | `id` of a dead slot        | the holder died: a waiter CASes its own id in and reports `OwnerDied` |
//! | `id \| DIED \| ..`         | as above, marked by the process that reclaimed the slot |
//!
//! (`id` = `slot << 22 | tid`, never 0 because a tid is never 0.)
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
//! ## Condition waiter slots (`Condition`)
//!
//! Each waiter owns one 32-bit slot word while it waits and sleeps on *its
//! own* word, so `notify_one` can wake exactly one waiter:
//!
//! | slot word            | meaning                                             |
//! |----------------------|-----------------------------------------------------|
//! | `0`                  | free                                                |
//! | `CV_WAITING \| id`   | waiter `id` (a lock-word holder id) waits           |
//! | `CV_NOTIFIED \| id`  | a notifier picked waiter `id`; it frees the slot when it returns |
//!
//! A waiter claims a free slot (CAS `0 -> WAITING|id`) while it holds the
//! condition's lock, then releases the lock and sleeps while its word reads
//! `WAITING|id`. `notify(n)` CASes up to `n` `WAITING` slots to `NOTIFIED` and
//! wakes each one's word: each CAS succeeds for one notifier only, and a
//! timing-out waiter cancels with a CAS `WAITING|id -> 0` that fails if it was
//! just notified (it then returns as notified: no notification is lost). A
//! notification given to a waiter that died is passed on by whoever notices
//! (a waiter's liveness scan, or the process that reclaims the dead waiter's
//! owner slot).
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

/// Thread-id bits of a lock word.
pub(crate) const TID_MASK: u32 = (1 << 22) - 1;
/// Shift of the owner-slot bits.
const SLOT_SHIFT: u32 = 22;
/// Owner slots a lock word can name.
pub(crate) const LOCK_SLOTS: u32 = 1 << 8;
/// The holder bits (slot and tid); 0 = free.
pub(crate) const OWNER_MASK: u32 = (1 << 30) - 1;
/// The holder's slot was reclaimed after its death: the word is up for takeover.
pub(crate) const DIED: u32 = 1 << 30;
/// Someone may sleep on the lock word.
pub(crate) const WAITERS: u32 = 1 << 31;

/// The holder id of thread `tid` through owner slot `slot`.
#[inline(always)]
pub(crate) fn owner_id(slot: u32, tid: u32) -> u32 {
    (slot % LOCK_SLOTS) << SLOT_SHIFT | (tid & TID_MASK)
}

/// The owner slot named by a held word.
#[inline]
pub(crate) fn owner_slot(w: u32) -> u32 {
    (w & OWNER_MASK) >> SLOT_SHIFT
}

/// Marks a word held through the dead slot `slot` with `DIED`, so that
/// waiters take it over although the slot has a (new, live) holder. Called
/// by that new holder before it uses the slot.
pub(crate) fn lock_scrub(w: &AtomicU32, slot: u32) {
    let mut cur = w.load(Ordering::Relaxed);
    while cur & OWNER_MASK != 0 && owner_slot(cur) == slot && cur & DIED == 0 {
        // Relaxed: the dead holder writes nothing any more; the takeover CAS
        // (Acquire) is what orders the data.
        match w.compare_exchange_weak(cur, cur | DIED, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => cur = now,
        }
    }
}

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
    if cur & OWNER_MASK != 0 {
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
// Condition waiter slots

/// A slot whose waiter waits.
pub(crate) const CV_WAITING: u32 = 1 << 30;
/// A slot whose waiter was picked by a notifier.
pub(crate) const CV_NOTIFIED: u32 = 2 << 30;
/// The state bits of a slot word.
const CV_STATE: u32 = 3 << 30;

/// Claims a free slot for waiter `id`, scanning from `start`; its index.
pub(crate) fn cv_register(slots: &[AtomicU32], id: u32, start: usize) -> Option<usize> {
    let n = slots.len();
    (0..n).map(|i| (start + i) % n.max(1)).find(|&i| {
        // Relaxed: the condition's lock orders this registration before any
        // notifier that takes the lock after us; a notifier that does not
        // hold the lock may or may not see it, both are allowed.
        slots[i].load(Ordering::Relaxed) == 0
            && slots[i]
                .compare_exchange(0, CV_WAITING | (id & OWNER_MASK), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    })
}

/// Picks up to `n` waiting slots, scanning from `start`; for each one picked
/// calls `wake(slot)` after marking it. Returns how many it picked.
pub(crate) fn cv_notify(slots: &[AtomicU32], n: usize, start: usize, mut wake: impl FnMut(&AtomicU32)) -> usize {
    let len = slots.len();
    let mut picked = 0;
    for i in 0..len {
        if picked >= n {
            break;
        }
        let s = &slots[(start + i) % len];
        let v = s.load(Ordering::Relaxed);
        // Relaxed: the waiter re-takes the lock after waking, which orders
        // the notifier's writes (made under the lock) before its return.
        if v & CV_STATE == CV_WAITING
            && s.compare_exchange(v, CV_NOTIFIED | (v & OWNER_MASK), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            wake(s);
            picked += 1;
        }
    }
    picked
}

/// Whether the waiter of `slot` (registered as `id`) has been notified.
#[inline]
pub(crate) fn cv_notified(slot: &AtomicU32, id: u32) -> bool {
    slot.load(Ordering::Relaxed) != CV_WAITING | (id & OWNER_MASK)
}

/// Leaves the slot: `true` if the waiter had been notified (or its
/// notification was passed to it), `false` if it cancelled a plain wait.
pub(crate) fn cv_leave(slot: &AtomicU32, id: u32) -> bool {
    let waiting = CV_WAITING | (id & OWNER_MASK);
    if slot.compare_exchange(waiting, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        return false;
    }
    // Notified: free the slot, unless somebody else already did (only a
    // retirer that took us for dead would; then count as notified too, and
    // never clobber a slot another waiter may have registered since).
    let _ = slot.compare_exchange(CV_NOTIFIED | (id & OWNER_MASK), 0, Ordering::Relaxed, Ordering::Relaxed);
    true
}

/// Retires the slots of a dead waiter: `dead(id)` says whether the waiter
/// `id` is dead. Frees them and returns how many notifications they had
/// received but not used (the caller passes them on).
pub(crate) fn cv_retire(slots: &[AtomicU32], mut dead: impl FnMut(u32) -> bool) -> usize {
    let mut lost = 0;
    for s in slots {
        let v = s.load(Ordering::Relaxed);
        if v != 0 && v & CV_STATE != CV_STATE && dead(v & OWNER_MASK) {
            // Relaxed: the dead waiter writes nothing any more.
            if s.compare_exchange(v, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok() && v & CV_STATE == CV_NOTIFIED {
                lost += 1;
            }
        }
    }
    lost
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
                                    Err(_) => {
                                        w.fetch_or(WAITERS, Ordering::Relaxed);
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
            assert_eq!(w.load(Ordering::Relaxed) & OWNER_MASK, 0);
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

    /// The process that reclaims a dead holder's owner slot (scrub, then take
    /// over) races a waiter of another handle taking the same dead word over:
    /// exactly one of them gets the lock, and `DIED` never stays on a live
    /// holder's word.
    #[test]
    fn loom_lock_scrub_races_take_over() {
        loom::model(|| {
            let dead = owner_id(3, 5);
            let (me_a, me_b) = (owner_id(1, 9), owner_id(3, 7));
            let w = Arc::new(AtomicU32::new(dead | WAITERS));
            let a = {
                let w = w.clone();
                thread::spawn(move || lock_take_over(&w, dead | WAITERS, me_a))
            };
            // The new holder of slot 3: scrub, then take over a DIED word.
            lock_scrub(&w, 3);
            let cur = w.load(Ordering::Relaxed);
            let b = cur & DIED != 0 && lock_take_over(&w, cur, me_b);
            let a = a.join().unwrap();
            assert!(a ^ b, "exactly one takes the dead lock over (a: {a}, b: {b})");
            let end = w.load(Ordering::Relaxed);
            assert_eq!(end & OWNER_MASK, if a { me_a } else { me_b });
            assert_eq!(end & DIED, 0);
        });
    }

    /// `notify(1)` races a waiter that times out (cancels): exactly one
    /// waiter ends notified, the notifier counts exactly that one, and every
    /// slot ends free.
    #[test]
    fn loom_cv_notify_one_picks_exactly_one() {
        loom::model(|| {
            let slots: Arc<Vec<AtomicU32>> = Arc::new((0..2).map(|_| AtomicU32::new(0)).collect());
            let a = cv_register(&slots, 1, 0).unwrap();
            let b = cv_register(&slots, 2, 0).unwrap();
            let cancel = {
                let slots = slots.clone();
                thread::spawn(move || cv_leave(&slots[b], 2))
            };
            let notifier = {
                let slots = slots.clone();
                thread::spawn(move || cv_notify(&slots, 1, 1, |_| {}))
            };
            let b_notified = cancel.join().unwrap();
            let picked = notifier.join().unwrap();
            let a_notified = cv_notified(&slots[a], 1);
            assert_eq!(cv_leave(&slots[a], 1), a_notified);
            assert_eq!(picked, 1, "waiter 1 never cancels: the notify must find a waiter");
            assert_eq!(usize::from(a_notified) + usize::from(b_notified), picked);
            assert!(slots.iter().all(|s| s.load(Ordering::Relaxed) == 0));
        });
    }

    /// A waiter that was notified and died: retiring its slot reports the
    /// lost notification exactly once even with two retirers racing.
    #[test]
    fn loom_cv_retire_dead_notified_once() {
        loom::model(|| {
            let slots: Arc<Vec<AtomicU32>> = Arc::new((0..2).map(|_| AtomicU32::new(0)).collect());
            let dead = owner_id(4, 4);
            cv_register(&slots, dead, 0).unwrap();
            assert_eq!(cv_notify(&slots, 1, 0, |_| {}), 1);
            let other = {
                let slots = slots.clone();
                thread::spawn(move || cv_retire(&slots, |id| id == dead))
            };
            let mine = cv_retire(&slots, |id| id == dead);
            assert_eq!(mine + other.join().unwrap(), 1);
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
