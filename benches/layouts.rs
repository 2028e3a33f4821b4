//! Ring layout prototypes for a round trip at the hardware floor (issue 8,
//! item 3), measured between two processes, interleaved in one run with the
//! floor and with ringshm's `spsc::Ring` and `Pipe`, before any layout is
//! chosen for the library.
//!
//! Each prototype is a minimal SPSC ring of 64 slots in named shared memory
//! (no validation, no liveness: the best case a layout allows), used twice
//! for a ping-pong: parent → child and back.
//!
//! - `index`: Lamport ring, `tail` and `head` on their own lines; the reader
//!   polls `tail`, then reads the slot: two dependent line transfers.
//! - `index+prefetch`: the same, but while polling `tail` the reader also
//!   loads the slot's line, so that both transfers overlap.
//! - `seq`: every slot carries a sequence word in its first line, stored
//!   last with `Release`; the reader polls the slot itself (FastForward,
//!   Vyukov's slot sequence), and publishes `head` only every 16 items, for
//!   flow control.
//! - `seq, eager head`: `seq` with `head` published after every item.
//!
//! Byte-ring framing prototypes (the `Pipe` layouts): records of an 8-byte
//! header and the payload in a 4 KiB byte area, padding records where a
//! record does not fit before the end.
//!
//! - `framed: tail-polled`: `Pipe` up to segment version 2: the writer
//!   stores the header, then `tail` with `Release`; the reader polls `tail`,
//!   then reads the header and payload.
//! - `framed: header-polled`: `Pipe` from version 3: the writer stores an
//!   empty marker after the record, then the header with `Release`; the
//!   reader polls the header at its own position; `head` after every record.
//! - `framed: header-polled, lazy head`: the same, `head` published only
//!   every quarter of the area.
//!
//! Beside them: the floor over *two* lines (a ping-pong with one word each
//! way, as any pair of rings has), and `spsc::Ring` driven by
//! `try_push`/`try_pop` loops instead of the blocking calls.
//!
//! # Method (the harness in `benches/harness/mod.rs`)
//!
//! Peers are this binary re-executed with a role, parked between samples,
//! pinned to CPU 1 while the timed side runs on CPU 0; every contender has
//! the same loop (`n` times: send, wait for the echo) and runs a warm-up
//! first. Every round measures the floor (bare atomic ping-pong) and every
//! contender in turn, with the same iteration count; medians are printed
//! with their ratio to the floor of the same run.
//!
//! Every poll loop pauses (`spin_loop`) between reads, as ringshm's
//! `WaitStrategy::Spin` and the canary do.
//!
//! `cargo bench --bench layouts` (`RINGSHM_BENCH_ROUNDS=N` sets the rounds).

mod harness;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use harness::{Contender, Proc, SharedRegion};
use ringshm::spsc::Ring;

/// Slots per ring (a power of two).
const CAP: u64 = 64;
/// `seq` publishes `head` every this many items.
const LAZY: u64 = 16;

/// The prototype layouts.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Layout {
    Index,
    IndexPrefetch,
    Seq,
    SeqEager,
}

impl Layout {
    fn parse(s: &str) -> Layout {
        match s {
            "index" => Layout::Index,
            "index+prefetch" => Layout::IndexPrefetch,
            "seq" => Layout::Seq,
            "seq, eager head" => Layout::SeqEager,
            _ => panic!("unknown layout {s}"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Layout::Index => "index",
            Layout::IndexPrefetch => "index+prefetch",
            Layout::Seq => "seq",
            Layout::SeqEager => "seq, eager head",
        }
    }
    fn seq(self) -> bool {
        matches!(self, Layout::Seq | Layout::SeqEager)
    }
    /// Bytes per slot for `w` payload words: whole cache lines.
    fn slot_bytes(self, w: usize) -> usize {
        ((w + self.seq() as usize) * 8).next_multiple_of(64)
    }
    /// Region size: `tail` and `head` on 128-byte pairs, then the slots.
    fn bytes(self, w: usize) -> usize {
        256 + CAP as usize * self.slot_bytes(w)
    }
}

/// One end of a prototype ring over a mapped region.
struct End<const W: usize> {
    region: SharedRegion,
    layout: Layout,
    /// Our own counter (tail for the writer, head for the reader).
    own: u64,
    /// Cached copy of the other side's counter.
    cached: u64,
}

impl<const W: usize> End<W> {
    fn word(&self, byte: usize) -> &AtomicU64 {
        debug_assert!(byte + 8 <= self.layout.bytes(W));
        // SAFETY: 8-aligned offset inside the mapping, which lives as long
        // as `self`; any bytes are a valid `AtomicU64`.
        unsafe { &*self.region.ptr().add(byte).cast::<AtomicU64>() }
    }
    fn tail(&self) -> &AtomicU64 {
        self.word(0)
    }
    fn head(&self) -> &AtomicU64 {
        self.word(128)
    }
    /// Byte offset of the slot for counter `i`, and of its first payload word.
    fn slot(&self, i: u64) -> (usize, usize) {
        let s = 256 + (i & (CAP - 1)) as usize * self.layout.slot_bytes(W);
        (s, s + 8 * self.layout.seq() as usize)
    }

    fn send(&mut self, m: &[u64; W]) {
        while self.own - self.cached == CAP {
            // Acquire: pairs with the reader's Release store of `head`.
            self.cached = self.head().load(Ordering::Acquire);
            std::hint::spin_loop();
        }
        let (s, p) = self.slot(self.own);
        for (k, v) in m.iter().enumerate() {
            // Relaxed: published by the Release store below.
            self.word(p + 8 * k).store(*v, Ordering::Relaxed);
        }
        self.own += 1;
        if self.layout.seq() {
            // Release: pairs with the reader's Acquire poll of the slot's seq.
            self.word(s).store(self.own, Ordering::Release);
        } else {
            // Release: pairs with the reader's Acquire load of `tail`.
            self.tail().store(self.own, Ordering::Release);
        }
    }

    fn recv(&mut self) -> [u64; W] {
        let (s, p) = self.slot(self.own);
        if self.layout.seq() {
            // Acquire: pairs with the writer's Release store of the seq.
            while self.word(s).load(Ordering::Acquire) != self.own + 1 {
                std::hint::spin_loop();
            }
        } else {
            while self.own == self.cached {
                if self.layout == Layout::IndexPrefetch {
                    // Relaxed, discarded: only brings the slot's line in
                    // while `tail`'s line is on its way.
                    std::hint::black_box(self.word(p).load(Ordering::Relaxed));
                }
                // Acquire: pairs with the writer's Release store of `tail`.
                self.cached = self.tail().load(Ordering::Acquire);
                if self.own == self.cached {
                    std::hint::spin_loop();
                }
            }
        }
        let m = std::array::from_fn(|k| self.word(p + 8 * k).load(Ordering::Relaxed));
        self.own += 1;
        if self.layout != Layout::Seq || self.own % LAZY == 0 {
            // Release: pairs with the writer's Acquire load of `head`.
            self.head().store(self.own, Ordering::Release);
        }
        m
    }
}

fn end<const W: usize>(name: &str, layout: Layout, create: bool) -> End<W> {
    let len = layout.bytes(W);
    let region = if create { SharedRegion::create(name, len) } else { SharedRegion::open(name, len) };
    End { region, layout, own: 0, cached: 0 }
}

fn prototype<const W: usize>(layout: Layout) -> Contender {
    let (a, b) = (harness::unique("lay-a"), harness::unique("lay-b"));
    let mut tx = end::<W>(&a, layout, true);
    let mut rx = end::<W>(&b, layout, true);
    let side = Proc::spawn("layout-echo", &[layout.name().into(), a, b, W.to_string()]);
    let mut m = [0u64; W];
    Contender::new(format!("prototype: {}", layout.name()), side, move |n| {
        for i in 0..n {
            m[0] = i;
            tx.send(&m);
            assert_eq!(rx.recv()[0], i);
        }
    })
}

fn echo<const W: usize>(args: &[String]) {
    let layout = Layout::parse(&args[0]);
    let mut rx = end::<W>(&args[1], layout, false);
    let mut tx = end::<W>(&args[2], layout, false);
    harness::serve(|n| {
        for _ in 0..n {
            let m = rx.recv();
            tx.send(&m);
        }
    });
}

/// The floor over two lines: a ping-pong where each direction has its own
/// cache line (one word each), as two rings have. If it costs about twice
/// the one-line canary, no pair of rings can beat that.
fn two_line_floor() -> Contender {
    let name = harness::unique("two-line");
    let region = SharedRegion::create(&name, 4096);
    let side = Proc::spawn("two-line-echo", &[name]);
    let mut i = 0u64;
    Contender::new("two-line atomic ping-pong (one word each way)", side, move |n| {
        let (x, y) = words(&region);
        for _ in 0..n {
            i += 1;
            // Release/Acquire: pair with the echo's Acquire load of `x` / Release store of `y`.
            x.store(i, Ordering::Release);
            while y.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
        }
    })
}

/// The two words of [`two_line_floor`], 128 bytes apart.
fn words(r: &SharedRegion) -> (&AtomicU64, &AtomicU64) {
    // SAFETY: offsets 0 and 128 of a live page-aligned mapping of at least
    // 4096 bytes; any bytes are valid `AtomicU64`s.
    unsafe { (&*r.ptr().cast::<AtomicU64>(), &*r.ptr().add(128).cast::<AtomicU64>()) }
}

/// `spsc::Ring` round trip with `try_push`/`try_pop` retried in a loop
/// (no wait loop: what the blocking calls' waiting costs).
fn spsc_try<const N: usize>() -> Contender {
    let (a, b) = (harness::unique("try-a"), harness::unique("try-b"));
    let opts = ringshm::Options::new().wait(ringshm::WaitStrategy::Spin);
    let ping = Ring::<[u8; N]>::create_with(&a, 4, &opts).unwrap();
    let pong = Ring::<[u8; N]>::create_with(&b, 4, &opts).unwrap();
    let (mut tx, mut rx) = (ping.producer().unwrap(), pong.consumer().unwrap());
    let side = Proc::spawn("try-echo", &[a, b, N.to_string()]);
    Contender::new("spsc::Ring, try_push/try_pop loops", side, move |n| {
        std::hint::black_box((&ping, &pong));
        for i in 0..n {
            let mut m = [0u8; N];
            m[0] = i as u8;
            while tx.try_push(m).is_err() {}
            let r = loop {
                if let Ok(r) = rx.try_pop() {
                    break r;
                }
            };
            assert_eq!(r[0], i as u8);
        }
    })
}

fn try_echo<const N: usize>(args: &[String]) {
    let mut rx = Ring::<[u8; N]>::open(&args[0]).unwrap().consumer().unwrap();
    let mut tx = Ring::<[u8; N]>::open(&args[1]).unwrap().producer().unwrap();
    harness::serve(|n| {
        for _ in 0..n {
            let m = loop {
                if let Ok(m) = rx.try_pop() {
                    break m;
                }
            };
            while tx.try_push(m).is_err() {}
        }
    });
}

/// The byte-ring framing prototypes.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Framing {
    TailPolled,
    HeaderPolled,
    HeaderLazyHead,
}

/// Bytes of a framing prototype's data area (a power of two).
const FCAP: u64 = 4096;
/// Header value of a padding record.
const PAD: u64 = u64::MAX;

impl Framing {
    fn parse(s: &str) -> Framing {
        match s {
            "framed: tail-polled" => Framing::TailPolled,
            "framed: header-polled" => Framing::HeaderPolled,
            "framed: header-polled, lazy head" => Framing::HeaderLazyHead,
            _ => panic!("unknown framing {s}"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Framing::TailPolled => "framed: tail-polled",
            Framing::HeaderPolled => "framed: header-polled",
            Framing::HeaderLazyHead => "framed: header-polled, lazy head",
        }
    }
    fn polls_header(self) -> bool {
        self != Framing::TailPolled
    }
}

/// One end of a framing prototype: `tail` at 0, `head` at 128, the data
/// area at 256.
struct Framed<const W: usize> {
    region: SharedRegion,
    how: Framing,
    /// Our own byte counter (tail for the writer, head for the reader).
    own: u64,
    /// Cached copy of the other side's counter (the reader's is unused when
    /// it polls headers).
    cached: u64,
    /// The reader's last published `head`.
    published: u64,
}

impl<const W: usize> Framed<W> {
    const REC: u64 = 8 + 8 * W as u64;

    fn new(name: &str, how: Framing, create: bool) -> Self {
        let len = 256 + FCAP as usize;
        let region = if create { SharedRegion::create(name, len) } else { SharedRegion::open(name, len) };
        Framed { region, how, own: 0, cached: 0, published: 0 }
    }
    fn word(&self, byte: u64) -> &AtomicU64 {
        debug_assert!(byte % 8 == 0 && byte + 8 <= 256 + FCAP);
        // SAFETY: 8-aligned offset inside the mapping, which lives as long
        // as `self`; any bytes are a valid `AtomicU64`.
        unsafe { &*self.region.ptr().add(byte as usize).cast::<AtomicU64>() }
    }
    fn hdr(&self, pos: u64) -> &AtomicU64 {
        self.word(256 + pos)
    }

    fn send(&mut self, m: &[u64; W]) {
        let mut pos = self.own & (FCAP - 1);
        let left = FCAP - pos;
        let marker = 8 * self.how.polls_header() as u64;
        let need = if Self::REC > left { left + Self::REC } else { Self::REC } + marker;
        while self.own + need - self.cached > FCAP {
            // Acquire: pairs with the reader's Release store of `head`.
            self.cached = self.word(128).load(Ordering::Acquire);
            std::hint::spin_loop();
        }
        if Self::REC > left {
            if self.how.polls_header() {
                // Relaxed: ordered by the Release store of PAD below.
                self.hdr(0).store(0, Ordering::Relaxed);
            }
            // Release: pairs with the reader's Acquire poll of the header
            // (published with `tail` below when the reader polls `tail`).
            self.hdr(pos).store(PAD, Ordering::Release);
            self.own += left;
            pos = 0;
        }
        for (k, v) in m.iter().enumerate() {
            // Relaxed: published by the Release store of the header or `tail`.
            self.hdr(pos + 8 + 8 * k as u64).store(*v, Ordering::Relaxed);
        }
        self.own += Self::REC;
        if self.how.polls_header() {
            // Relaxed: ordered by the Release store of the header below.
            self.hdr(self.own & (FCAP - 1)).store(0, Ordering::Relaxed);
            // Release: pairs with the reader's Acquire poll of the header.
            self.hdr(pos).store(8 * W as u64 + 1, Ordering::Release);
        } else {
            self.hdr(pos).store(8 * W as u64, Ordering::Relaxed);
            // Release: pairs with the reader's Acquire load of `tail`.
            self.word(0).store(self.own, Ordering::Release);
        }
    }

    fn recv(&mut self) -> [u64; W] {
        loop {
            let pos = self.own & (FCAP - 1);
            let h = if self.how.polls_header() {
                // Acquire: pairs with the writer's Release store of the header.
                let h = self.hdr(pos).load(Ordering::Acquire);
                if h == 0 {
                    std::hint::spin_loop();
                    continue;
                }
                h
            } else {
                while self.own == self.cached {
                    // Acquire: pairs with the writer's Release store of `tail`.
                    self.cached = self.word(0).load(Ordering::Acquire);
                    if self.own == self.cached {
                        std::hint::spin_loop();
                    }
                }
                // Relaxed: published by `tail`, acquired above.
                self.hdr(pos).load(Ordering::Relaxed)
            };
            if h == PAD {
                self.own += FCAP - pos;
                continue;
            }
            let m = std::array::from_fn(|k| self.hdr(pos + 8 + 8 * k as u64).load(Ordering::Relaxed));
            self.own += Self::REC;
            if self.how != Framing::HeaderLazyHead || self.own - self.published >= FCAP / 4 {
                self.published = self.own;
                // Release: pairs with the writer's Acquire load of `head`.
                self.word(128).store(self.own, Ordering::Release);
            }
            return m;
        }
    }
}

fn framed<const W: usize>(how: Framing) -> Contender {
    let (a, b) = (harness::unique("frm-a"), harness::unique("frm-b"));
    let mut tx = Framed::<W>::new(&a, how, true);
    let mut rx = Framed::<W>::new(&b, how, true);
    let side = Proc::spawn("framed-echo", &[how.name().into(), a, b, W.to_string()]);
    let mut m = [0u64; W];
    Contender::new(format!("prototype: {}", how.name()), side, move |n| {
        for i in 0..n {
            m[0] = i;
            tx.send(&m);
            assert_eq!(rx.recv()[0], i);
        }
    })
}

fn framed_echo<const W: usize>(args: &[String]) {
    let how = Framing::parse(&args[0]);
    let mut rx = Framed::<W>::new(&args[1], how, false);
    let mut tx = Framed::<W>::new(&args[2], how, false);
    harness::serve(|n| {
        for _ in 0..n {
            let m = rx.recv();
            tx.send(&m);
        }
    });
}

fn peer(role: &str, args: &[String]) -> bool {
    if role == "framed-echo" {
        match args[3].as_str() {
            "1" => framed_echo::<1>(args),
            _ => framed_echo::<8>(args),
        }
        return true;
    }
    if role == "two-line-echo" {
        let region = SharedRegion::open(&args[0], 4096);
        let (x, y) = words(&region);
        let mut i = 0u64;
        harness::serve(|n| {
            for _ in 0..n {
                i += 1;
                // Acquire/Release: pair with the timed side's Release store of `x` / Acquire load of `y`.
                while x.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                y.store(i, Ordering::Release);
            }
        });
        return true;
    }
    if role == "try-echo" {
        match args[2].as_str() {
            "8" => try_echo::<8>(args),
            _ => try_echo::<64>(args),
        }
        return true;
    }
    if role != "layout-echo" {
        return false;
    }
    match args[3].as_str() {
        "1" => echo::<1>(args),
        "8" => echo::<8>(args),
        w => panic!("unsupported payload words {w}"),
    }
    true
}

fn contenders(bytes: usize) -> Vec<Contender> {
    let mut v = vec![
        harness::canary(),
        two_line_floor(),
        harness::round_trip("spsc::Ring", bytes),
        if bytes == 8 { spsc_try::<8>() } else { spsc_try::<64>() },
        harness::round_trip("Pipe", bytes),
    ];
    for l in [Layout::Index, Layout::IndexPrefetch, Layout::Seq, Layout::SeqEager] {
        v.push(if bytes == 8 { prototype::<1>(l) } else { prototype::<8>(l) });
    }
    for f in [Framing::TailPolled, Framing::HeaderPolled, Framing::HeaderLazyHead] {
        v.push(if bytes == 8 { framed::<1>(f) } else { framed::<8>(f) });
    }
    v
}

fn main() {
    if harness::peer_main(peer) {
        return;
    }
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        // `cargo test --benches` / `--list`: nothing to run.
        return;
    }
    harness::pin(harness::LOCAL_CPU);
    let rounds: usize = std::env::var("RINGSHM_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    println!("## Round-trip layouts between two processes ({rounds} interleaved rounds, medians)\n");
    println!("| message | contender | round trip | ÷ floor of the same rounds |");
    println!("|---|---|---|---|");
    for bytes in [8usize, 64] {
        let mut ks = contenders(bytes);
        let n = ks.iter_mut().map(|k| k.calibrate(Duration::from_millis(30))).min().unwrap();
        let iters = vec![n; ks.len()];
        let ns = harness::interleave(&mut ks, &iters, rounds, |_| {});
        for (k, t) in ks.iter().zip(&ns) {
            println!("| {bytes} B | {} | {t:.0} ns | {:.2} |", k.name, t / ns[0]);
        }
        println!("| | (floor: {}) | | |", harness::host_state(ns[0]));
    }
}
