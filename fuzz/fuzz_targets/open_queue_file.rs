//! Arbitrary bytes as a queue segment file in /dev/shm: `ByteQueue::open`,
//! `Queue::<u64>::open` and `JoinableQueue::<u64>::open` must refuse them
//! with an error or open a queue whose puts and gets then never panic, hang
//! or fault — even while the file is overwritten (header, positions, side
//! words, slot sequence words with owner tags, message lengths, a byte
//! queue's arena page counts and extents, task counters) between operations.
//! Once opened, a byte queue's file size is that of its slots plus arena, so
//! arena extents are real file bytes here (the same code runs on a sparse
//! file in production).
//!
//! Flags byte: bit 0 = template mode (XOR onto a real segment made by
//! `create`), bits 1..=2 = kind (0: `ByteQueue` of 4 x 24 bytes, 1:
//! `Queue<u64>` of 8, 2: `JoinableQueue<u64>` of 4, 3: `ByteQueue` of
//! 2 x 5000 bytes, whose messages over 232 bytes live in its arena), bit 3 = the template has items in flight (positions past
//! one lap), bit 4 = two handles (two owner tags: each sees the other's
//! claims as live).
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringshm::{ByteQueue, JoinableQueue, Queue};
use ringshm_fuzz::{message, template_queue, ShmFile};

#[derive(Arbitrary, Debug)]
enum Op {
    /// `try_put` on handle `h` (a message of `n` bytes — wrapped to at most
    /// `max_message_bytes() + 1` — or the item `n`).
    TryPut(bool, u16),
    /// `put_timeout(micros)`.
    PutTimeout(bool, u16, u8),
    /// `try_get`.
    TryGet(bool),
    /// `get_timeout(micros)`.
    GetTimeout(bool, u8),
    /// `try_put_many` of `n` messages/items.
    TryPutMany(bool, u8),
    /// `try_get_many` of up to `n`.
    TryGetMany(bool, u8),
    /// Every length/state query.
    Props(bool),
    /// `close()`.
    Close(bool),
    /// `task_done()` (joinable only).
    TaskDone(bool),
    /// `join_timeout(micros)` (joinable only).
    JoinTimeout(bool, u8),
    /// Claim a slot and never publish it, as a producer killed mid-put
    /// would (a byte queue copies half of a message first).
    ClaimAndAbandon(bool),
    /// Drop the handle and open the file again (re-validates it).
    Reopen(bool),
    /// Another process writes `v` at byte offset `off` of the file.
    Scribble(u16, u64),
    /// Another process adds `delta` to the 8-aligned word `i` (an index or
    /// length off by a little).
    Nudge(u16, i8),
}

enum Q {
    Bytes(ByteQueue),
    Items(Queue<u64>),
    Joinable(JoinableQueue<u64>),
}

fn open(kind: u8, name: &str) -> Option<Q> {
    match kind {
        1 => Queue::<u64>::open(name).ok().map(Q::Items),
        2 => JoinableQueue::<u64>::open(name).ok().map(Q::Joinable),
        _ => ByteQueue::open(name).ok().map(Q::Bytes),
    }
}

fn run(file: &ShmFile, kind: u8, qs: &mut [Option<Q>; 2], ops: &[Op]) {
    let micros = |m: u8| Duration::from_micros(u64::from(m));
    let mut seq = 0u64;
    for op in ops {
        seq += 1;
        let h = |b: bool| usize::from(b);
        match *op {
            Op::Reopen(b) => {
                qs[h(b)] = None;
                if !file.waits_for_creator() {
                    qs[h(b)] = open(kind, file.name());
                }
            }
            Op::Scribble(off, v) => file.scribble(usize::from(off), v),
            Op::Nudge(w, d) => file.nudge(usize::from(w), d),
            ref op => {
                let b = match *op {
                    Op::TryPut(b, _)
                    | Op::PutTimeout(b, _, _)
                    | Op::TryGet(b)
                    | Op::GetTimeout(b, _)
                    | Op::TryPutMany(b, _)
                    | Op::TryGetMany(b, _)
                    | Op::Props(b)
                    | Op::Close(b)
                    | Op::TaskDone(b)
                    | Op::JoinTimeout(b, _)
                    | Op::ClaimAndAbandon(b) => b,
                    Op::Reopen(_) | Op::Scribble(..) | Op::Nudge(..) => unreachable!("handled above"),
                };
                match &qs[h(b)] {
                    None => {}
                    Some(Q::Bytes(q)) => bytes_op(q, op, seq, micros),
                    Some(Q::Items(q)) => items_op(q, None, op, seq, micros),
                    Some(Q::Joinable(q)) => items_op(q, Some(q), op, seq, micros),
                }
            }
        }
    }
}

fn bytes_op(q: &ByteQueue, op: &Op, seq: u64, micros: impl Fn(u8) -> Duration) {
    let max = q.max_message_bytes();
    let len = |n: u16| usize::from(n) % (max + 2);
    match *op {
        Op::TryPut(_, n) => {
            let _ = q.try_put(&message(seq, len(n)));
        }
        Op::PutTimeout(_, n, m) => {
            let _ = q.put_timeout(&message(seq, len(n)), micros(m));
        }
        Op::TryGet(_) => {
            if let Ok(m) = q.try_get() {
                assert!(m.len() <= max);
            }
        }
        Op::GetTimeout(_, m) => {
            if let Ok(m) = q.get_timeout(micros(m)) {
                assert!(m.len() <= max);
            }
        }
        Op::TryPutMany(_, n) => {
            let msgs: Vec<Vec<u8>> = (0..u64::from(n)).map(|i| message(seq + i, len(i as u16 * 13))).collect();
            assert!(q.try_put_many(&msgs) <= msgs.len());
        }
        Op::TryGetMany(_, n) => {
            let got = q.try_get_many(usize::from(n));
            assert!(got.len() <= usize::from(n) && got.iter().all(|m| m.len() <= max));
        }
        Op::Props(_) => {
            let cap = q.capacity();
            assert!(cap >= 1 && q.len() <= cap);
            let _ = (q.is_empty(), q.is_full(), q.lost(), q.is_closed(), q.name());
        }
        Op::Close(_) => q.close(),
        Op::ClaimAndAbandon(_) => {
            let n = (seq as usize).wrapping_mul(977) % (max + 1);
            let _ = ringshm::testing::abandon_half_put_bytes(q, &message(seq, n));
        }
        _ => {}
    }
}

fn items_op(q: &Queue<u64>, j: Option<&JoinableQueue<u64>>, op: &Op, seq: u64, micros: impl Fn(u8) -> Duration) {
    match *op {
        Op::TryPut(_, n) => {
            let _ = q.try_put(u64::from(n));
        }
        Op::PutTimeout(_, n, m) => {
            let _ = q.put_timeout(u64::from(n), micros(m));
        }
        Op::TryGet(_) => {
            let _ = q.try_get();
        }
        Op::GetTimeout(_, m) => {
            let _ = q.get_timeout(micros(m));
        }
        Op::TryPutMany(_, n) => {
            let items: Vec<u64> = (0..u64::from(n)).map(|i| seq + i).collect();
            assert!(q.try_put_many(&items) <= items.len());
        }
        Op::TryGetMany(_, n) => {
            let mut out = vec![0u64; usize::from(n)];
            assert!(q.try_get_many(&mut out) <= out.len());
        }
        Op::Props(_) => {
            let cap = q.capacity();
            assert!(cap >= 1 && q.len() <= cap);
            let _ = (q.is_empty(), q.is_full(), q.lost(), q.is_closed(), q.name());
            if let Some(j) = j {
                let _ = j.unfinished_tasks();
            }
        }
        Op::Close(_) => q.close(),
        Op::TaskDone(_) => {
            if let Some(j) = j {
                let _ = j.task_done();
            }
        }
        Op::JoinTimeout(_, m) => {
            if let Some(j) = j {
                let _ = j.join_timeout(micros(m));
            }
        }
        Op::ClaimAndAbandon(_) => {
            let _ = ringshm::testing::abandon_put(q);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, segment, op_bytes)) = ringshm_fuzz::split(data) else { return };
    let kind = (flags >> 1) & 3;
    let tmpl = (flags & 1 != 0).then(|| template_queue(kind, flags & 8 != 0));
    let bytes = ringshm_fuzz::overlay(tmpl.as_deref(), segment, 0);
    if ringshm_fuzz::waits_for_creator(&bytes) {
        return;
    }
    let file = ShmFile::new("queue", &bytes);
    let ops: Vec<Op> = ringshm_fuzz::parse_ops(op_bytes);
    let mut qs = [open(kind, file.name()), None];
    if qs[0].is_none() {
        return;
    }
    if flags & 16 != 0 {
        qs[1] = open(kind, file.name());
    }
    run(&file, kind, &mut qs, &ops);
});
