//! loom models of the ring algorithms, run on heap memory:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom`.

use loom::sync::Arc;
use loom::thread;

use super::mpmc_core::Shared as MpmcShared;
use super::mpmc_core::{self, Blocked, Mem};
use super::spsc::{ConsCore, ProdCore};
use super::spsc_core::{ConsIdx, ProdIdx, Shared};
use super::WAITING;
use crate::primitive::{AtomicU32, AtomicU64, Ordering, Slots};
use crate::sync::futex;

fn spsc(cap: u64) -> (Arc<Shared>, ProdCore<u32>, ConsCore<u32>) {
    let sh = Arc::new(Shared::default());
    let slots = Slots::new_heap(cap as usize);
    let p = ProdCore { idx: ProdIdx::new(0, 0, cap).unwrap(), slots: slots.clone() };
    let c = ConsCore { idx: ConsIdx::new(0, 0, cap).unwrap(), slots };
    (sh, p, c)
}

/// Items cross in order through a ring smaller than the batch, with
/// wrap-around; loom checks every slot access for data races.
#[test]
fn loom_spsc_fifo() {
    loom::model(|| {
        let (sh, mut p, mut c) = spsc(2);
        let sh2 = sh.clone();
        let t = thread::spawn(move || {
            for i in 1..=3u32 {
                let mut v = i;
                loop {
                    match p.try_push(&sh2, v) {
                        Ok(()) => break,
                        Err(Ok(back)) => {
                            v = back;
                            thread::yield_now();
                        }
                        Err(Err(_)) => panic!("corrupt"),
                    }
                }
            }
        });
        let mut want = 1;
        while want <= 3 {
            match c.try_pop(&sh).unwrap() {
                Some(v) => {
                    assert_eq!(v, want);
                    want += 1;
                }
                None => thread::yield_now(),
            }
        }
        t.join().unwrap();
    });
}

/// The sleep/wake handshake cannot lose a wake-up: if the consumer decided
/// to sleep (it set WAITING, fenced, and still saw the ring empty), the
/// producer's publish must have seen WAITING and cleared it (with a wake).
#[test]
fn loom_spsc_no_lost_wakeup() {
    loom::model(|| {
        let (sh, mut p, mut c) = spsc(2);
        let sh2 = sh.clone();
        let t = thread::spawn(move || {
            assert!(p.try_push(&sh2, 7).is_ok());
        });
        // The consumer's side of `wait::park_once`.
        sh.cons.ctl.fetch_or(WAITING, Ordering::Relaxed);
        futex::heavy_barrier();
        let would_sleep = c.idx.refresh(&sh).unwrap() == 0;
        t.join().unwrap();
        if would_sleep {
            assert_eq!(sh.cons.ctl.load(Ordering::Relaxed) & WAITING, 0, "the producer missed a sleeper");
        }
    });
}

struct HeapRing {
    sh: MpmcShared,
    seqs: Vec<AtomicU64>,
    vals: Slots<u32>,
    dead: u8,
    bound: u64,
}

impl Mem for HeapRing {
    fn shared(&self) -> &MpmcShared {
        &self.sh
    }
    fn cap(&self) -> u64 {
        self.seqs.len() as u64
    }
    fn seq(&self, pos: u64) -> &AtomicU64 {
        &self.seqs[(pos & (self.cap() - 1)) as usize]
    }
    fn owner_dead(&self, tag: u8) -> bool {
        tag == self.dead
    }
    fn bound(&self) -> u64 {
        self.bound
    }
}

fn mpmc(cap: usize, dead: u8) -> Arc<HeapRing> {
    Arc::new(HeapRing {
        sh: MpmcShared::default(),
        seqs: (0..cap).map(|i| AtomicU64::new((i as u64) << 8)).collect(),
        vals: Slots::new_heap(cap),
        dead,
        bound: cap as u64,
    })
}

fn send(r: &HeapRing, tag: u8, v: u32) {
    loop {
        // SAFETY: `try_send` hands us the position of a slot we claimed.
        match mpmc_core::try_send(r, tag, |pos| unsafe { r.vals.write((pos % r.cap()) as usize, v) }) {
            Ok(()) => return,
            Err(Blocked::Wait | Blocked::Busy) => thread::yield_now(),
            Err(Blocked::Corrupt) => panic!("corrupt"),
        }
    }
}

/// One receive attempt: `None` when empty or when the slot is `Busy`.
fn recv_once(r: &HeapRing, tag: u8) -> Option<u32> {
    // SAFETY: `try_recv` hands us the position of a published slot we claimed.
    match mpmc_core::try_recv(r, tag, |pos| unsafe { r.vals.read((pos % r.cap()) as usize) }) {
        Ok(v) => Some(v),
        Err(Blocked::Wait | Blocked::Busy) => None,
        Err(Blocked::Corrupt) => panic!("corrupt"),
    }
}

/// A linearizable `try_recv`: `None` only when empty (`Busy` is waited out,
/// as `mpmc::Receiver::try_recv` does).
fn recv(r: &HeapRing, tag: u8) -> Option<u32> {
    loop {
        // SAFETY: `try_recv` hands us the position of a published slot we claimed.
        match mpmc_core::try_recv(r, tag, |pos| unsafe { r.vals.read((pos % r.cap()) as usize) }) {
            Ok(v) => return Some(v),
            Err(Blocked::Wait) => return None,
            Err(Blocked::Busy) => thread::yield_now(),
            Err(Blocked::Corrupt) => panic!("corrupt"),
        }
    }
}

/// Two racing senders and a racing receiver: both items delivered exactly
/// once; loom checks the slot hand-offs for races.
#[test]
fn loom_mpmc_senders_race() {
    loom::model(|| {
        let r = mpmc(2, 0);
        let senders: Vec<_> = (0..2u8)
            .map(|s| {
                let r = r.clone();
                thread::spawn(move || send(&r, 1 + s, 1 + u32::from(s)))
            })
            .collect();
        let r2 = r.clone();
        let early = thread::spawn(move || recv(&r2, 3));
        for s in senders {
            s.join().unwrap();
        }
        let mut got: Vec<u32> = early.join().unwrap().into_iter().collect();
        while let Some(v) = recv(&r, 4) {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

/// One sender of two items and two racing receivers: each item exactly once,
/// and a receiver that got both got them in order.
#[test]
fn loom_mpmc_receivers_race() {
    loom::model(|| {
        let r = mpmc(2, 0);
        let r1 = r.clone();
        let sender = thread::spawn(move || {
            send(&r1, 1, 1);
            send(&r1, 1, 2);
        });
        let receivers: Vec<_> = (0..2u8)
            .map(|i| {
                let r = r.clone();
                thread::spawn(move || [recv_once(&r, 2 + i), recv_once(&r, 2 + i)])
            })
            .collect();
        sender.join().unwrap();
        let mut got = Vec::new();
        for t in receivers {
            let mine: Vec<u32> = t.join().unwrap().into_iter().flatten().collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
            got.extend(mine);
        }
        while let Some(v) = recv(&r, 4) {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

/// A bound below the slot count (Python's `Queue(3)` on 4 slots): two
/// senders race for the one free place; exactly one gets it.
#[test]
fn loom_mpmc_exact_bound() {
    loom::model(|| {
        let mut r = mpmc(4, 0);
        Arc::get_mut(&mut r).unwrap().bound = 3;
        send(&r, 1, 1);
        send(&r, 1, 2);
        let try_one = |r: Arc<HeapRing>, tag: u8| {
            // SAFETY: `try_send` hands us the position of a slot we claimed.
            thread::spawn(move || mpmc_core::try_send(&*r, tag, |pos| unsafe { r.vals.write((pos % 4) as usize, 9) }))
        };
        let a = try_one(r.clone(), 2);
        let b = try_one(r.clone(), 3);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(u32::from(a.is_ok()) + u32::from(b.is_ok()), 1, "{a:?} {b:?}");
        let mut got = Vec::new();
        while let Some(v) = recv(&r, 4) {
            got.push(v);
        }
        assert_eq!(got, [1, 2, 9]);
    });
}

/// A slot claimed by a sender that then "dies" (owner 9, reported dead) is
/// released by a receiver, counted lost, and later items still flow.
#[test]
fn loom_mpmc_dead_claim_is_recovered() {
    loom::model(|| {
        let r = mpmc(2, 9);
        assert!(mpmc_core::claim_send(&*r, 9).is_ok());
        let r2 = r.clone();
        let t = thread::spawn(move || send(&r2, 1, 5));
        let mut got = None;
        while got.is_none() {
            got = recv(&r, 2);
            if got.is_none() {
                thread::yield_now();
            }
        }
        t.join().unwrap();
        assert_eq!(got, Some(5));
        assert_eq!(r.sh.lost.load(Ordering::Relaxed), 1);
    });
}

/// The producer's half of the sleep/wake handshake: a producer that decided
/// to sleep on a full ring (set WAITING, fenced, still saw it full) must be
/// seen by the consumer's release, which clears WAITING (with a wake).
#[test]
fn loom_spsc_no_lost_wakeup_producer() {
    loom::model(|| {
        let (sh, mut p, mut c) = spsc(1);
        assert!(p.try_push(&sh, 1).is_ok());
        let sh2 = sh.clone();
        let t = thread::spawn(move || {
            assert_eq!(c.try_pop(&sh2).unwrap(), Some(1));
        });
        // The producer's side of `wait::park_once`.
        sh.prod.ctl.fetch_or(WAITING, Ordering::Relaxed);
        futex::heavy_barrier();
        let would_sleep = p.idx.refresh(&sh).unwrap() == 0;
        t.join().unwrap();
        if would_sleep {
            assert_eq!(sh.prod.ctl.load(Ordering::Relaxed) & WAITING, 0, "the consumer missed a sleeper");
        }
    });
}

/// Chunk-style batches on the index core: the producer writes a wrapping run
/// of slots and publishes it with one `commit`, the consumer reads what is
/// available in place and releases it with one `release`; items arrive in
/// order and loom checks every slot access for races.
#[test]
fn loom_spsc_batches() {
    loom::model(|| {
        let (sh, mut p, mut c) = spsc(2);
        let sh2 = sh.clone();
        let t = thread::spawn(move || {
            let mut next = 1u32;
            while next <= 4 {
                let free = p.idx.free(&sh2, 2).unwrap();
                if free == 0 {
                    thread::yield_now();
                    continue;
                }
                let n = free.min(u64::from(5 - next));
                for k in 0..n {
                    let i = ((p.idx.tail + k) & (p.idx.cap - 1)) as usize;
                    // SAFETY: `i < cap`; slots `tail..tail + n` are free.
                    unsafe { p.slots.write(i, next + k as u32) };
                }
                p.idx.commit(&sh2, n);
                next += n as u32;
            }
        });
        let mut want = 1u32;
        while want <= 4 {
            let avail = c.idx.available(&sh, 2).unwrap();
            if avail == 0 {
                thread::yield_now();
                continue;
            }
            for k in 0..avail {
                let i = ((c.idx.head + k) & (c.idx.cap - 1)) as usize;
                // SAFETY: `i < cap`; slots `head..head + avail` are published.
                assert_eq!(unsafe { c.slots.read(i) }, want);
                want += 1;
            }
            c.idx.release(&sh, avail);
        }
        t.join().unwrap();
    });
}

// ---------------------------------------------------------------------------
// Broadcast.

use super::broadcast_core::{self as bcast, Corrupt, Entry, PubCore, SubCore, View};
use crate::primitive::Padded;

/// A broadcast ring on the heap.
struct HeapBcast {
    sh: bcast::Shared,
    entries: Vec<Padded<Entry>>,
    slots: Vec<AtomicU64>,
    cap: u64,
    stride: usize,
}

impl HeapBcast {
    fn new<T>(cap: u64, subs: usize) -> Arc<Self> {
        let stride = 1 + bcast::words_of::<T>();
        Arc::new(HeapBcast {
            sh: bcast::Shared::default(),
            entries: (0..subs).map(|_| Padded::default()).collect(),
            slots: (0..cap as usize * stride).map(|_| AtomicU64::new(0)).collect(),
            cap,
            stride,
        })
    }

    fn view(&self) -> View<'_> {
        View { sh: &self.sh, entries: &self.entries, slots: &self.slots, cap: self.cap, stride: self.stride }
    }
}

/// Lossless, one publisher and two subscribers, two messages through one
/// slot, every thread making a bounded number of attempts (no spinning):
/// the publisher must never overwrite the slot a subscriber still has to
/// read (loom would show a wrong value; the sequence check, Corrupt). The
/// rest is finished after the join, and each subscriber got every message
/// once, in order.
#[test]
fn loom_broadcast_lossless_fan_out() {
    loom::model(|| {
        let r = HeapBcast::new::<u64>(1, 2);
        let subs: Vec<SubCore> = (0..2).map(|i| bcast::join(&r.view(), i, false).unwrap()).collect();
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut p = PubCore { tail: 0, min: 0, overwrite: false };
            assert!(p.try_send(&rp.view(), &1u64).expect("corrupt"), "an empty ring is never full");
            let second = p.try_send(&rp.view(), &2u64).expect("corrupt");
            (p, second)
        });
        let ts: Vec<_> = subs
            .into_iter()
            .map(|mut s| {
                let r = r.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        if let Some(m) = s.try_recv::<u64>(&r.view()).expect("corrupt") {
                            got.push(m);
                        }
                    }
                    (s, got)
                })
            })
            .collect();
        let (mut p, second) = p.join().unwrap();
        let mut done: Vec<(SubCore, Vec<u64>)> = ts.into_iter().map(|t| t.join().unwrap()).collect();
        // Finish single-threaded: drain, send what was refused, drain again.
        for (s, got) in &mut done {
            while let Some(m) = s.try_recv::<u64>(&r.view()).expect("corrupt") {
                got.push(m);
            }
        }
        if !second {
            assert!(p.try_send(&r.view(), &2u64).expect("corrupt"), "both subscribers read message 1");
        }
        for (s, got) in &mut done {
            while let Some(m) = s.try_recv::<u64>(&r.view()).expect("corrupt") {
                got.push(m);
            }
            assert_eq!(*got, [1, 2]);
        }
    });
}

/// Overwrite mode, one slot: the publisher overwrites while the subscriber
/// copies. Every message returned is whole (both words equal), in order,
/// and received + missed counts every position exactly once.
#[test]
fn loom_broadcast_overwrite_no_torn_read() {
    loom::model(|| {
        let r = HeapBcast::new::<[u64; 2]>(1, 1);
        let mut s = bcast::join(&r.view(), 0, true).unwrap();
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut p = PubCore { tail: 0, min: 0, overwrite: true };
            for k in 1..=3u64 {
                assert!(p.try_send(&rp.view(), &[k, k]).unwrap());
            }
        });
        let mut got = Vec::new();
        while s.next < 3 {
            match s.try_recv::<[u64; 2]>(&r.view()).expect("corrupt") {
                Some(m) => {
                    assert_eq!(m[0], m[1], "torn read {m:?}");
                    got.push(m[0]);
                }
                None => thread::yield_now(),
            }
        }
        p.join().unwrap();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert_eq!(got.len() as u64 + s.missed, 3, "{got:?} missed {}", s.missed);
    });
}

/// A subscriber joins while the publisher sends through one slot: whichever
/// way the join and the publisher's scan interleave, the publisher never
/// overwrites the message the new subscriber starts at (a lossless
/// subscriber that finds itself lapped reports Corrupt).
#[test]
fn loom_broadcast_join_races_publisher() {
    loom::model(|| {
        let r = HeapBcast::new::<u64>(1, 1);
        let rp = r.clone();
        let p = thread::spawn(move || {
            let mut p = PubCore { tail: 0, min: 0, overwrite: false };
            for _ in 0..3 {
                // Never wait: the new subscriber may not read at all. The
                // value is the position it goes to.
                let pos = p.tail;
                let _ = p.try_send(&rp.view(), &pos).expect("corrupt");
            }
        });
        let mut s = bcast::join(&r.view(), 0, false).unwrap();
        let start = s.next;
        for _ in 0..2 {
            match s.try_recv::<u64>(&r.view()) {
                Ok(Some(m)) => assert_eq!(m, s.next - 1),
                Ok(None) => thread::yield_now(),
                Err(Corrupt) => {
                    panic!("the publisher overwrote a message the new subscriber (from {start}) had to read")
                }
            }
        }
        p.join().unwrap();
    });
}

/// A lossless publisher that decided to sleep on a full ring (it set
/// WAITING, fenced, and its scan still saw no room) cannot miss the
/// subscriber's cursor publish: that publish saw WAITING and cleared it
/// (with a wake).
#[test]
fn loom_broadcast_publisher_no_lost_wakeup() {
    loom::model(|| {
        let r = HeapBcast::new::<u64>(1, 1);
        let mut s = bcast::join(&r.view(), 0, false).unwrap();
        let mut p = PubCore { tail: 0, min: 0, overwrite: false };
        assert!(p.try_send(&r.view(), &1u64).unwrap());
        let rs = r.clone();
        let t = thread::spawn(move || {
            assert_eq!(s.try_recv::<u64>(&rs.view()).unwrap(), Some(1));
        });
        // The publisher's side of `wait::park_once`.
        r.sh.pub_ctl.fetch_or(WAITING, Ordering::Relaxed);
        futex::heavy_barrier();
        let would_sleep = p.refresh(&r.view()).unwrap() == 0;
        t.join().unwrap();
        if would_sleep {
            assert_eq!(r.sh.pub_ctl.load(Ordering::Relaxed) & WAITING, 0, "the subscriber missed a sleeping publisher");
        }
    });
}

// ---------------------------------------------------------------------------
// The linearizable protocol (issue 7: defects 1, 10, 11).

/// `try_recv` over a slot a live sender is still writing: a thread that
/// completed a send and has received nothing since must get an item from
/// `try_recv`, even while the head slot is claimed by a slower sender (it
/// waits for that sender instead of answering `Empty`).
#[test]
fn loom_mpmc_try_recv_linearizable_over_writing_slot() {
    loom::model(|| {
        let r = mpmc(2, 0);
        let r1 = r.clone();
        let other = thread::spawn(move || send(&r1, 1, 1));
        send(&r, 2, 2);
        let got = recv(&r, 3).expect("an item was sent and none taken: try_recv must not be Empty");
        other.join().unwrap();
        let rest = recv(&r, 3).expect("the other item");
        let mut all = [got, rest];
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
        assert_eq!(recv(&r, 3), None);
    });
}

/// `try_send` over a slot whose previous item a live receiver is still
/// reading: after two receives from a full ring of two, `try_send` must
/// find room (it waits for the reader instead of answering `Full`).
#[test]
fn loom_mpmc_try_send_linearizable_over_reading_slot() {
    loom::model(|| {
        let r = mpmc(2, 0);
        send(&r, 1, 1);
        send(&r, 1, 2);
        let r1 = r.clone();
        let reader = thread::spawn(move || recv(&r1, 2));
        let mine = recv(&r, 3);
        let sent = loop {
            // SAFETY: `try_send` hands us the position of a slot we claimed.
            match mpmc_core::try_send(&*r, 4, |pos| unsafe { r.vals.write((pos % 2) as usize, 3) }) {
                Ok(()) => break true,
                Err(Blocked::Wait) => break false,
                Err(Blocked::Busy) => thread::yield_now(),
                Err(Blocked::Corrupt) => panic!("corrupt"),
            }
        };
        let theirs = reader.join().unwrap();
        // Both receives succeeded (the ring held two), so there was room.
        assert!(mine.is_some() && theirs.is_some());
        assert!(sent, "two items were taken from a full ring of two: try_send must not be Full");
        assert_eq!(recv(&r, 3), Some(3));
    });
}

/// The final drain after every sender is gone: a dead sender's claim at
/// the head is recovered by the single drain attempt, which goes on to the
/// item a live sender published behind it.
#[test]
fn loom_mpmc_drain_after_disconnect_passes_dead_claim() {
    loom::model(|| {
        let r = mpmc(4, 9);
        let r1 = r.clone();
        let dead = thread::spawn(move || assert!(mpmc_core::claim_send(&*r1, 9).is_ok()));
        let r2 = r.clone();
        let live = thread::spawn(move || send(&r2, 1, 5));
        dead.join().unwrap();
        live.join().unwrap();
        // Every sender is gone: one attempt must find the published item.
        assert_eq!(recv(&r, 2), Some(5));
        assert_eq!(recv(&r, 2), None);
        assert_eq!(r.sh.lost.load(Ordering::Relaxed), 1);
    });
}

/// Capacity 1 (two slots, bound 1) under contention: two threads each send
/// then receive; no state is ever judged corrupt (the helpers panic on
/// `Corrupt`), and both items are received.
#[test]
fn loom_mpmc_no_poison_under_contention_capacity_1() {
    loom::model(|| {
        let mut r = mpmc(2, 0);
        Arc::get_mut(&mut r).unwrap().bound = 1;
        let ts: Vec<_> = (0..2u8)
            .map(|i| {
                let r = r.clone();
                thread::spawn(move || {
                    send(&r, 1 + i, 1 + u32::from(i));
                    loop {
                        if let Some(v) = recv(&r, 1 + i) {
                            return v;
                        }
                        thread::yield_now();
                    }
                })
            })
            .collect();
        let mut got: Vec<u32> = ts.into_iter().map(|t| t.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(r.sh.send.load(Ordering::Relaxed) & super::POISONED, 0);
    });
}
