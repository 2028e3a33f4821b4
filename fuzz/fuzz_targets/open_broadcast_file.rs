//! Arbitrary bytes as a broadcast segment file in /dev/shm:
//! `broadcast::Ring::<u64>::open_with` must refuse them with an error or open
//! a ring whose publisher and subscribers then never panic, hang or fault —
//! even while the file is overwritten (header, `tail`, control words, the
//! subscriber table's cursors and states, slot sequence words) between
//! operations.
//!
//! Flags byte: bit 0 = template mode (XOR onto a real segment made by
//! `create`), bit 1 = overwrite mode (of the template, and of the opener),
//! bit 2 = the template has traffic (messages sent, a subscriber left behind
//! and one caught up), bit 3 = capacity 1 instead of 8.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringshm::broadcast::{Publisher, Ring, Subscriber, MAX_SUBSCRIBERS};
use ringshm::Options;
use ringshm_fuzz::ShmFile;

/// At most this many subscribers at once.
const MAX_SUBS: usize = 4;

#[derive(Arbitrary, Debug)]
enum Op {
    /// `try_send(v)`.
    TrySend(u64),
    /// `send_timeout(v, micros)`.
    SendTimeout(u64, u8),
    /// `send_slice` of `n` messages.
    SendSlice(u8),
    /// `try_recv()` on subscriber `i`.
    TryRecv(u8),
    /// `recv_timeout(micros)` on subscriber `i`.
    RecvTimeout(u8, u8),
    /// `recv_slice` of up to `n` on subscriber `i`.
    RecvSlice(u8, u8),
    /// `subscribe()`.
    Subscribe,
    /// Drop subscriber `i`.
    Unsubscribe(u8),
    /// Take the publisher role (if not held).
    Publish,
    /// Drop the publisher.
    Unpublish,
    /// Every query of the ring and its handles.
    Props,
    /// Drop everything and open the file again (re-validates it).
    Reopen,
    /// Another process writes `v` at byte offset `off` of the file.
    Scribble(u16, u64),
    /// Another process adds `delta` to the 8-aligned word `i`.
    Nudge(u16, i8),
}

fn opts(overwrite: bool) -> Options {
    Options::new().overwrite(overwrite)
}

/// The bytes of a real broadcast segment (made once per flag combination).
fn template(overwrite: bool, busy: bool, cap: usize) -> Vec<u8> {
    static CACHE: Mutex<BTreeMap<(bool, bool, usize), Vec<u8>>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.entry((overwrite, busy, cap)).or_insert_with(|| make_template(overwrite, busy, cap)).clone()
}

fn make_template(overwrite: bool, busy: bool, cap: usize) -> Vec<u8> {
    let mut snapshot = None;
    let after_drop = ringshm_fuzz::segment_file_bytes("bcast-tmpl", |name| {
        let r = Ring::<u64>::create_with(name, cap, &opts(overwrite).persist(true)).expect("template ring");
        if busy {
            let mut behind = r.subscribe().expect("subscribe");
            let mut caught_up = r.subscribe().expect("subscribe");
            let mut tx = r.publisher().expect("publisher");
            for i in 0..3 * cap as u64 {
                let _ = tx.try_send(i);
                while caught_up.try_recv().is_ok() {}
            }
            let _ = behind.try_recv();
            // Taken while both entries are active and the publisher attached,
            // as if their processes had died now.
            snapshot = std::fs::read(format!("/dev/shm/{name}")).ok();
        }
    });
    snapshot.unwrap_or(after_drop)
}

struct State {
    ring: Option<Ring<u64>>,
    tx: Option<Publisher<u64>>,
    subs: Vec<Subscriber<u64>>,
}

fn pick<T>(v: &mut [T], i: u8) -> Option<&mut T> {
    let n = v.len();
    if n == 0 {
        None
    } else {
        v.get_mut(usize::from(i) % n)
    }
}

fn run(file: &ShmFile, overwrite: bool, st: &mut State, ops: &[Op]) {
    let micros = |m: u8| Duration::from_micros(u64::from(m));
    for op in ops {
        match *op {
            Op::Scribble(off, v) => file.scribble(usize::from(off), v),
            Op::Nudge(w, d) => file.nudge(usize::from(w), d),
            Op::Reopen => {
                st.subs.clear();
                st.tx = None;
                st.ring = None;
                if !file.waits_for_creator() {
                    st.ring = Ring::<u64>::open_with(file.name(), &opts(overwrite)).ok();
                }
            }
            Op::Subscribe => {
                if let Some(r) = &st.ring {
                    if st.subs.len() < MAX_SUBS {
                        if let Ok(s) = r.subscribe() {
                            st.subs.push(s);
                        }
                    }
                }
            }
            Op::Unsubscribe(i) => {
                if !st.subs.is_empty() {
                    let n = st.subs.len();
                    st.subs.remove(usize::from(i) % n);
                }
            }
            Op::Publish => {
                if let (Some(r), None) = (&st.ring, &st.tx) {
                    st.tx = r.publisher().ok();
                }
            }
            Op::Unpublish => st.tx = None,
            Op::TrySend(v) => {
                if let Some(tx) = &mut st.tx {
                    let r = tx.try_send(v);
                    assert!(!(overwrite && matches!(r, Err(ref e) if e.is_full())), "overwrite mode was Full");
                }
            }
            Op::SendTimeout(v, m) => {
                if let Some(tx) = &mut st.tx {
                    let _ = tx.send_timeout(v, micros(m));
                }
            }
            Op::SendSlice(n) => {
                if let Some(tx) = &mut st.tx {
                    let msgs: Vec<u64> = (0..u64::from(n)).collect();
                    assert!(tx.send_slice(&msgs) <= msgs.len());
                }
            }
            Op::TryRecv(i) => {
                if let Some(s) = pick(&mut st.subs, i) {
                    let _ = s.try_recv();
                }
            }
            Op::RecvTimeout(i, m) => {
                if let Some(s) = pick(&mut st.subs, i) {
                    let _ = s.recv_timeout(micros(m));
                }
            }
            Op::RecvSlice(i, n) => {
                if let Some(s) = pick(&mut st.subs, i) {
                    let mut out = vec![0u64; usize::from(n)];
                    assert!(s.recv_slice(&mut out) <= out.len());
                }
            }
            Op::Props => {
                if let Some(r) = &st.ring {
                    let cap = r.capacity();
                    assert!(cap >= 1 && cap.is_power_of_two());
                    assert!(r.subscribers() <= MAX_SUBSCRIBERS);
                    assert!(r.info().subscribers.len() <= MAX_SUBSCRIBERS);
                    let _ = (r.is_overwrite(), r.name());
                }
                if let Some(tx) = &st.tx {
                    let _ = (tx.subscribers(), tx.sent(), tx.capacity(), tx.is_overwrite());
                }
                for s in &mut st.subs {
                    assert!(s.len() <= s.capacity());
                    let _ = (s.missed(), s.is_empty(), s.is_abandoned());
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, segment, op_bytes)) = ringshm_fuzz::split(data) else { return };
    let overwrite = flags & 2 != 0;
    let cap = if flags & 8 != 0 { 1 } else { 8 };
    let tmpl = (flags & 1 != 0).then(|| template(overwrite, flags & 4 != 0, cap));
    let bytes = ringshm_fuzz::overlay(tmpl.as_deref(), segment, 0);
    if ringshm_fuzz::waits_for_creator(&bytes) {
        return;
    }
    let file = ShmFile::new("bcast", &bytes);
    let ops: Vec<Op> = ringshm_fuzz::parse_ops(op_bytes);
    let Ok(ring) = Ring::<u64>::open_with(file.name(), &opts(overwrite)) else { return };
    let mut st = State { ring: Some(ring), tx: None, subs: Vec::new() };
    run(&file, overwrite, &mut st, &ops);
});
