//! Arbitrary bytes as a pipe segment file in /dev/shm: `Pipe::open` /
//! `Pipe::open_end` must refuse them with an error or open an end whose
//! sends and receives then never panic, hang or fault — even while the file
//! is overwritten (header, indices, side words, record headers, padding)
//! between operations. The reader polls the record header at its own
//! position (see `src/ring/bytes.rs`), so `ScribbleHeader` aims at exactly
//! that word, or at the word the writer will publish next.
//!
//! Flags byte: bit 0 = template mode (XOR onto a real `Pipe::create`
//! segment), bits 1..=2 = template (0: duplex 128 bytes, 1: one-way 256,
//! 2: duplex 128 and 3: one-way 1024 with messages and a padding record in
//! flight), bit 3 = hold both ends, bit 4 = (one end only) end A instead of B.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringshm::{End, Pipe};
use ringshm_fuzz::{message, template_pipe, ShmFile};

#[derive(Arbitrary, Debug)]
enum Op {
    /// `try_send_bytes` of a `len`-byte message (`len` wrapped to at most
    /// `max_message_len() + 1`, so too large happens too) from end B if
    /// `b`, else end A.
    TrySend(bool, u16),
    /// `send_bytes_timeout`.
    SendTimeout(bool, u16, u8),
    /// `try_send_with`, filling the slice in place.
    TrySendWith(bool, u16),
    /// `try_recv_bytes`, or `try_recv::<u64>` if `typed`.
    TryRecv(bool, bool),
    /// `recv_bytes_timeout(micros)`.
    RecvTimeout(bool, u8),
    /// `try_recv_bytes_into` (or the `_timeout` form) with a small buffer.
    RecvInto(bool, u8, bool),
    /// `try_recv_with`, reading the message in place.
    TryRecvWith(bool),
    /// `recv_with_timeout(micros)`.
    RecvWith(bool, u8),
    /// `poll(Some(0))`.
    Poll(bool),
    /// Every property query.
    Props(bool),
    /// `close()`.
    Close(bool),
    /// Drop the end and `open_end` it again (re-validates the file).
    Reopen(bool),
    /// Another process writes `v` at byte offset `off` of the file.
    Scribble(u16, u64),
    /// Another process adds `delta` to the 8-aligned word `i` (an index or
    /// length off by a little).
    Nudge(u16, i8),
    /// Another process writes `v` into the record header word of direction
    /// `dir` that its reader polls now (the word at `head`), or, if
    /// `at_tail`, the one it polls once it has caught up (at `tail`).
    ScribbleHeader(bool, bool, u64),
}

/// Segment header, then one 512-byte control block per direction (`tail` at
/// +0, `head` at +128), then the data areas.
const HEADER: usize = 512;
const SHARED: usize = 512;

struct Ends<'a> {
    file: &'a ShmFile,
    /// End A, end B.
    p: [Option<Pipe>; 2],
}

impl Ends<'_> {
    fn get(&self, b: bool) -> Option<&Pipe> {
        self.p[usize::from(b)].as_ref()
    }
}

fn wrap_len(p: &Pipe, len: u16) -> usize {
    usize::from(len) % (p.max_message_len() + 2)
}

fn run(e: &mut Ends<'_>, ops: &[Op]) {
    let micros = |m: u8| Duration::from_micros(u64::from(m));
    let mut seq = 0u64;
    for op in ops {
        seq += 1;
        match *op {
            Op::TrySend(b, len) => {
                if let Some(p) = e.get(b) {
                    let _ = p.try_send_bytes(&message(seq, wrap_len(p, len)));
                }
            }
            Op::SendTimeout(b, len, m) => {
                if let Some(p) = e.get(b) {
                    let _ = p.send_bytes_timeout(&message(seq, wrap_len(p, len)), micros(m));
                }
            }
            Op::TrySendWith(b, len) => {
                if let Some(p) = e.get(b) {
                    let n = wrap_len(p, len);
                    if let Ok(k) = p.try_send_with(n, |buf| {
                        buf.fill(seq as u8);
                        buf.len()
                    }) {
                        assert_eq!(k, n);
                    }
                }
            }
            Op::TryRecv(b, typed) => {
                if let Some(p) = e.get(b) {
                    if typed {
                        let _ = p.try_recv::<u64>();
                    } else if let Ok(m) = p.try_recv_bytes() {
                        assert!(m.len() <= p.max_message_len());
                    }
                }
            }
            Op::RecvTimeout(b, m) => {
                if let Some(p) = e.get(b) {
                    if let Ok(v) = p.recv_bytes_timeout(micros(m)) {
                        assert!(v.len() <= p.max_message_len());
                    }
                }
            }
            Op::RecvInto(b, n, timeout) => {
                if let Some(p) = e.get(b) {
                    let mut buf = vec![0u8; usize::from(n)];
                    let r = if timeout {
                        p.recv_bytes_into_timeout(&mut buf, micros(n))
                    } else {
                        p.try_recv_bytes_into(&mut buf)
                    };
                    if let Ok(k) = r {
                        assert!(k <= buf.len());
                    }
                }
            }
            Op::TryRecvWith(b) => {
                if let Some(p) = e.get(b) {
                    let max = p.max_message_len();
                    let _ = p.try_recv_with(|m| {
                        assert!(m.len() <= max);
                        m.iter().fold(0u8, |s, x| s.wrapping_add(*x))
                    });
                }
            }
            Op::RecvWith(b, m) => {
                if let Some(p) = e.get(b) {
                    let max = p.max_message_len();
                    let _ = p.recv_with_timeout(micros(m), |m| {
                        assert!(m.len() <= max);
                        m.iter().fold(0u8, |s, x| s.wrapping_add(*x))
                    });
                }
            }
            Op::Poll(b) => {
                if let Some(p) = e.get(b) {
                    let _ = p.poll(Some(Duration::ZERO));
                }
            }
            Op::Props(b) => {
                if let Some(p) = e.get(b) {
                    assert!(p.capacity().is_power_of_two() && p.max_message_len() < p.capacity());
                    let _ = (p.end(), p.name(), p.is_duplex(), p.readable(), p.writable(), p.is_closed());
                    let _ = (p.is_peer_gone(), p.is_poisoned(), p.has_message());
                }
            }
            Op::Close(b) => {
                if let Some(p) = e.get(b) {
                    p.close();
                }
            }
            Op::Reopen(b) => {
                let i = usize::from(b);
                e.p[i] = None;
                let end = if b { End::B } else { End::A };
                if !e.file.waits_for_creator() {
                    e.p[i] = Pipe::open_end(e.file.name(), end).ok();
                }
            }
            Op::Scribble(off, v) => e.file.scribble(usize::from(off), v),
            Op::Nudge(w, d) => e.file.nudge(usize::from(w), d),
            Op::ScribbleHeader(dir, at_tail, v) => {
                if let Some(p) = e.get(false).or(e.get(true)) {
                    let (cap, dirs) = (p.capacity(), if p.is_duplex() { 2 } else { 1 });
                    let d = usize::from(dir) % dirs;
                    let index = HEADER + d * SHARED + if at_tail { 0 } else { 128 };
                    if let Some(i) = e.file.read_word(index) {
                        let pos = i as usize & (cap - 1) & !7;
                        e.file.scribble(HEADER + dirs * SHARED + d * cap + pos, v);
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, segment, op_bytes)) = ringshm_fuzz::split(data) else { return };
    let tmpl = (flags & 1 != 0).then(|| template_pipe((flags >> 1) & 3));
    let bytes = ringshm_fuzz::overlay(tmpl.as_deref(), segment, 0);
    if ringshm_fuzz::waits_for_creator(&bytes) {
        return;
    }
    let file = ShmFile::new("pipe", &bytes);
    let ops: Vec<Op> = ringshm_fuzz::parse_ops(op_bytes);
    let mut e = Ends { file: &file, p: [None, None] };
    if flags & 8 != 0 {
        e.p[1] = Pipe::open(file.name()).ok();
        e.p[0] = Pipe::open_end(file.name(), End::A).ok();
    } else if flags & 16 != 0 {
        e.p[0] = Pipe::open_end(file.name(), End::A).ok();
    } else {
        e.p[1] = Pipe::open(file.name()).ok();
    }
    if e.p.iter().all(Option::is_none) {
        return;
    }
    run(&mut e, &ops);
});
