//! Arbitrary bytes as a caller-provided region for `mpmc::Ring::attach_in`:
//! it must refuse them with an error or attach to a ring whose senders and
//! receivers then never panic, hang or touch memory outside the region —
//! even while its bytes are overwritten between operations.
//!
//! Flags byte: bit 0 = template mode (XOR onto a ring made by `init_in`),
//! bits 1..=3 = log2 of the capacity, bit 4 = the template has items in
//! flight (positions one and a half laps on).
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringshm::mpmc::{Receiver, Ring, Sender};
use ringshm_fuzz::{template_mpmc_u64, AlignedBuf};

/// At most this many handles of each side at once.
const MAX_HANDLES: usize = 4;

#[derive(Arbitrary, Debug)]
enum Op {
    /// `try_send(v)` on sender `i`.
    TrySend(u8, u64),
    /// `send_timeout(v, micros)`.
    SendTimeout(u8, u64, u8),
    /// `try_recv()` on receiver `i`.
    TryRecv(u8),
    /// `recv_timeout(micros)`.
    RecvTimeout(u8, u8),
    /// `send_many` of `n` items.
    SendMany(u8, u8),
    /// `recv_many` into a buffer of `n`.
    RecvMany(u8, u8),
    /// Every length/state query of the ring and its handles.
    Lengths,
    /// `Ring::close()`.
    Close,
    /// `ring.sender()` / `ring.receiver()`, or a clone of an existing one.
    NewSender(bool),
    NewReceiver(bool),
    /// Drop handle `i`.
    DropSender(u8),
    DropReceiver(u8),
    /// `attach_in` again (re-validates the possibly scribbled region) and
    /// use that ring from now on.
    Reattach,
    /// Another process writes `v` at byte offset `off` of the region.
    Scribble(u16, u64),
    /// Another process adds `delta` to the 8-aligned word `i` (an index or
    /// length off by a little).
    Nudge(u16, i8),
}

fn pick<T>(v: &[T], i: u8) -> Option<&T> {
    if v.is_empty() {
        None
    } else {
        v.get(usize::from(i) % v.len())
    }
}

fn run(ring: Ring<u64>, buf: &AlignedBuf, ops: &[Op]) {
    let mut ring = ring;
    let mut txs: Vec<Sender<u64>> = vec![ring.sender()];
    let mut rxs: Vec<Receiver<u64>> = vec![ring.receiver()];
    let micros = |m: u8| Duration::from_micros(u64::from(m));
    let mut next = 0u64;
    for op in ops {
        match *op {
            Op::TrySend(i, v) => {
                if let Some(t) = pick(&txs, i) {
                    let _ = t.try_send(v);
                }
            }
            Op::SendTimeout(i, v, m) => {
                if let Some(t) = pick(&txs, i) {
                    let _ = t.send_timeout(v, micros(m));
                }
            }
            Op::TryRecv(i) => {
                if let Some(r) = pick(&rxs, i) {
                    let _ = r.try_recv();
                }
            }
            Op::RecvTimeout(i, m) => {
                if let Some(r) = pick(&rxs, i) {
                    let _ = r.recv_timeout(micros(m));
                }
            }
            Op::SendMany(i, n) => {
                if let Some(t) = pick(&txs, i) {
                    let items: Vec<u64> = (0..u64::from(n)).map(|k| next + k).collect();
                    let sent = t.send_many(&items);
                    assert!(sent <= items.len());
                    next += sent as u64;
                }
            }
            Op::RecvMany(i, n) => {
                if let Some(r) = pick(&rxs, i) {
                    let mut out = vec![0u64; usize::from(n)];
                    assert!(r.recv_many(&mut out) <= out.len());
                }
            }
            Op::Lengths => {
                let cap = ring.capacity();
                assert!(cap >= 1);
                assert!(ring.len() <= cap);
                let _ = (ring.is_empty(), ring.is_full(), ring.lost(), ring.is_closed(), ring.name());
                for t in &txs {
                    assert!(t.len() <= t.capacity());
                    let _ = (t.is_empty(), t.is_full(), t.is_disconnected());
                }
                for r in &rxs {
                    assert!(r.len() <= r.capacity());
                    let _ = (r.is_empty(), r.is_full(), r.lost(), r.is_disconnected());
                }
            }
            Op::Close => ring.close(),
            Op::NewSender(clone) => {
                if txs.len() < MAX_HANDLES {
                    let t = match txs.first() {
                        Some(t) if clone => t.clone(),
                        _ => ring.sender(),
                    };
                    txs.push(t);
                }
            }
            Op::NewReceiver(clone) => {
                if rxs.len() < MAX_HANDLES {
                    let r = match rxs.first() {
                        Some(r) if clone => r.clone(),
                        _ => ring.receiver(),
                    };
                    rxs.push(r);
                }
            }
            Op::DropSender(i) => {
                if !txs.is_empty() {
                    let k = usize::from(i) % txs.len();
                    txs.swap_remove(k);
                }
            }
            Op::DropReceiver(i) => {
                if !rxs.is_empty() {
                    let k = usize::from(i) % rxs.len();
                    rxs.swap_remove(k);
                }
            }
            Op::Reattach => {
                // SAFETY: as in the fuzz target: the buffer is aligned, large
                // enough, and outlives every ring and handle (all dropped
                // before `run` returns).
                if let Ok(r) = unsafe { Ring::<u64>::attach_in(buf.region()) } {
                    ring = r;
                }
            }
            Op::Scribble(off, v) => buf.scribble(usize::from(off), v),
            Op::Nudge(w, d) => buf.nudge(usize::from(w), d),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, segment, op_bytes)) = ringshm_fuzz::split(data) else { return };
    let capacity = 1usize << ((flags >> 1) & 0x7);
    let min = Ring::<u64>::region_size(capacity).expect("capacity");
    let tmpl = (flags & 1 != 0).then(|| template_mpmc_u64(capacity, flags & 0x10 != 0));
    let buf = AlignedBuf::from_bytes(&ringshm_fuzz::overlay(tmpl.as_deref(), segment, min));
    let ops: Vec<Op> = ringshm_fuzz::parse_ops(op_bytes);
    // SAFETY: the buffer is 128-aligned, at least `min` bytes, and outlives
    // the ring and all its handles (`run` drops them before returning). The
    // scribbles model another process writing to it.
    let Ok(ring) = (unsafe { Ring::<u64>::attach_in(buf.region()) }) else { return };
    run(ring, &buf, &ops);
});
