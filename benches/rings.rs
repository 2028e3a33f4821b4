//! Ring benchmarks: ringshm across two *processes* against the fastest
//! in-process queues between two *threads*, and round trips against the
//! floor (a bare atomic ping-pong) and a Unix pipe.
//!
//! # Method (the harness in `benches/harness/mod.rs`)
//!
//! Every contender has a long-lived other side (a process for ringshm, a
//! thread for the in-process queues) started before timing and *parked*
//! between samples, so no idle side spins while another contender runs. The
//! other side always runs on CPU 1 and the timed side on CPU 0. Memory is
//! pre-faulted by a warm-up that wraps every ring. A sample tells the peer
//! "produce (or echo) `n`" and times the `n` receives here: every sample
//! starts with an empty ring, and every contender loops the same way. Before
//! each contender a bare atomic ping-pong between two processes (the
//! canary) is timed and printed: about 45 ns in the reference host's fast
//! state, about 400 ns in its slow state.
//!
//! Batches of 64: `push_slice`/`pop_slice` copy through a buffer on both
//! sides; `write_chunk`/`read_chunk` fill and sum in place with the very
//! loop `rtrb`'s chunks use, so that pair differs only in the ring.
//!
//! `cargo bench --bench rings` runs the criterion groups, then an interleaved
//! summary: every contender is measured in turn, round after round, and the
//! table reports medians and ratios within the run. Set
//! `RINGSHM_BENCH_SUMMARY=0` to skip the summary, `RINGSHM_BENCH_ONLY_SUMMARY=1`
//! to run only it, `RINGSHM_BENCH_ROUNDS=N` to change its rounds.

mod harness;

use std::cell::UnsafeCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use crossbeam_utils::CachePadded;
use harness::{Contender, Proc, Thread};
use ringshm::spsc::Ring;
use ringshm::{mpmc, Options, WaitStrategy};

const CAP: usize = 4096;
const BATCH: usize = 64;

// ---------------------------------------------------------------------------
// Peer processes.

fn peer(role: &str, args: &[String]) -> bool {
    match role {
        "u64-produce" => {
            // `chunks`: in place, the loop of `rtrb_stream` line for line.
            let chunks = args[1] == "chunks";
            let batch: usize = if chunks { BATCH } else { args[1].parse().unwrap() };
            let mut tx = Ring::<u64>::open(&args[0]).unwrap().producer().unwrap();
            let mut buf = [0u64; BATCH];
            harness::serve(|n| {
                let mut sent = 0u64;
                while sent < n {
                    if batch == 1 {
                        if tx.try_push(sent).is_ok() {
                            sent += 1;
                        }
                    } else if chunks {
                        let k = tx.slots().min(BATCH).min((n - sent) as usize);
                        if k > 0 {
                            let w = tx.write_chunk(k).unwrap();
                            sent += w.fill_from_iter(sent..) as u64;
                        }
                    } else {
                        let k = ((n - sent) as usize).min(BATCH);
                        for (i, b) in buf[..k].iter_mut().enumerate() {
                            *b = sent + i as u64;
                        }
                        sent += tx.push_slice(&buf[..k]) as u64;
                    }
                }
            });
        }
        "mpmc-produce" => {
            let tx = mpmc::Ring::<u64>::open(&args[0]).unwrap().sender();
            harness::serve(|n| {
                let mut sent = 0u64;
                while sent < n {
                    if tx.try_send(sent).is_ok() {
                        sent += 1;
                    }
                }
            });
        }
        "u64-echo" => {
            let opts = Options::new().wait(wait(&args[2]));
            let mut rx = Ring::<u64>::open_with(&args[0], &opts).unwrap().consumer().unwrap();
            let mut tx = Ring::<u64>::open_with(&args[1], &opts).unwrap().producer().unwrap();
            harness::serve(|n| {
                for _ in 0..n {
                    tx.push(rx.pop().unwrap()).unwrap();
                }
            });
        }
        _ => return false,
    }
    true
}

fn wait(s: &str) -> WaitStrategy {
    if s == "Spin" {
        WaitStrategy::Spin
    } else {
        WaitStrategy::Adaptive
    }
}

// ---------------------------------------------------------------------------
// Contenders. Streams: the peer produces `n` u64 items, the timed side
// receives `n`.

fn shm_stream(batch: usize) -> Contender {
    let name = harness::unique(&format!("stream{batch}"));
    let ring = Ring::<u64>::create(&name, CAP).unwrap();
    let mut rx = ring.consumer().unwrap();
    let side = Proc::spawn("u64-produce", &[name, batch.to_string()]);
    let label = if batch == 1 {
        "ringshm spsc try_push/try_pop (2 processes)"
    } else {
        "ringshm spsc push_slice/pop_slice x64 (2 processes)"
    };
    let mut buf = [0u64; BATCH];
    Contender::new(label, side, move |n| {
        black_box(&ring);
        let (mut got, mut sum) = (0u64, 0u64);
        while got < n {
            if batch == 1 {
                if let Ok(v) = rx.try_pop() {
                    sum = sum.wrapping_add(v);
                    got += 1;
                }
            } else {
                let k = rx.pop_slice(&mut buf[..((n - got) as usize).min(BATCH)]);
                sum = sum.wrapping_add(buf[..k].iter().sum::<u64>());
                got += k as u64;
            }
        }
        black_box(sum);
    })
}

/// `write_chunk`/`read_chunk` in place: the same loop as `rtrb_stream`'s
/// batches, so the two differ only in the ring (`shm_stream(BATCH)` copies
/// through a buffer on both sides, as `push_slice`/`pop_slice` do).
fn shm_chunk_stream() -> Contender {
    let name = harness::unique("stream-chunks");
    let ring = Ring::<u64>::create(&name, CAP).unwrap();
    let mut c = ring.consumer().unwrap();
    let side = Proc::spawn("u64-produce", &[name, "chunks".into()]);
    Contender::new("ringshm spsc write_chunk/read_chunk x64 (2 processes)", side, move |n| {
        black_box(&ring);
        let (mut got, mut sum) = (0u64, 0u64);
        while got < n {
            let k = c.slots().min(BATCH);
            if k > 0 {
                let r = c.read_chunk(k).unwrap();
                let (a, b) = r.as_slices();
                sum = sum.wrapping_add(a.iter().chain(b).sum::<u64>());
                r.commit_all();
                got += k as u64;
            }
        }
        black_box(sum);
    })
}

fn mpmc_stream() -> Contender {
    let name = harness::unique("mpmc");
    let ring = mpmc::Ring::<u64>::create(&name, CAP).unwrap();
    let rx = ring.receiver();
    let side = Proc::spawn("mpmc-produce", &[name]);
    Contender::new("ringshm mpmc try_send/try_recv, 1p1c (2 processes)", side, move |n| {
        black_box(&ring);
        let (mut got, mut sum) = (0u64, 0u64);
        while got < n {
            if let Ok(v) = rx.try_recv() {
                sum = sum.wrapping_add(v);
                got += 1;
            }
        }
        black_box(sum);
    })
}

fn rtrb_stream(batch: usize) -> Contender {
    let (mut p, mut c) = rtrb::RingBuffer::<u64>::new(CAP);
    let side = Thread::spawn(move |n| {
        let mut sent = 0u64;
        while sent < n {
            if batch == 1 {
                if p.push(sent).is_ok() {
                    sent += 1;
                }
            } else {
                let k = p.slots().min(BATCH).min((n - sent) as usize);
                if k > 0 {
                    let w = p.write_chunk_uninit(k).unwrap();
                    sent += w.fill_from_iter(sent..) as u64;
                }
            }
        }
    });
    let label = if batch == 1 { "rtrb push/pop (2 threads)" } else { "rtrb write_chunk/read_chunk x64 (2 threads)" };
    Contender::new(label, side, move |n| {
        let (mut got, mut sum) = (0u64, 0u64);
        while got < n {
            if batch == 1 {
                if let Ok(v) = c.pop() {
                    sum = sum.wrapping_add(v);
                    got += 1;
                }
            } else {
                let k = c.slots().min(BATCH);
                if k > 0 {
                    let r = c.read_chunk(k).unwrap();
                    let (a, b) = r.as_slices();
                    sum = sum.wrapping_add(a.iter().chain(b).sum::<u64>());
                    r.commit_all();
                    got += k as u64;
                }
            }
        }
        black_box(sum);
    })
}

fn array_queue_stream() -> Contender {
    let q = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(CAP));
    let qp = q.clone();
    harness::thread_stream(
        "crossbeam ArrayQueue push/pop (2 threads)",
        move |i| while qp.push(i).is_err() {},
        move || loop {
            if let Some(v) = q.pop() {
                return v;
            }
        },
    )
}

fn sync_channel_stream() -> Contender {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
    harness::thread_stream(
        "std sync_channel send/recv (2 threads)",
        move |i| tx.send(i).unwrap(),
        move || rx.recv().unwrap(),
    )
}

/// The textbook minimal SPSC ring with cached opposite indices: what a
/// competent engineer writes by hand, with nothing else in it.
struct MiniRing {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    buf: Box<[UnsafeCell<u64>]>,
}

// SAFETY: single producer / single consumer discipline enforced by the bench.
unsafe impl Sync for MiniRing {}

fn mini_stream() -> Contender {
    let r = Arc::new(MiniRing {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        buf: (0..CAP).map(|_| UnsafeCell::new(0)).collect(),
    });
    let rp = r.clone();
    let (mut tail, mut head_cache) = (0usize, 0usize);
    let side = Thread::spawn(move |n| {
        for _ in 0..n {
            while tail - head_cache == CAP {
                // Acquire: pairs with the consumer's Release store of `head`.
                head_cache = rp.head.load(Ordering::Acquire);
            }
            // SAFETY: slot `tail` is free (tail - head < CAP) and only the producer writes it.
            unsafe { *rp.buf[tail & (CAP - 1)].get() = tail as u64 };
            tail += 1;
            // Release: pairs with the consumer's Acquire load of `tail`.
            rp.tail.store(tail, Ordering::Release);
        }
    });
    let (mut head, mut tail_cache) = (0usize, 0usize);
    Contender::new("hand-written cached-index ring (2 threads)", side, move |n| {
        let mut sum = 0u64;
        for _ in 0..n {
            while head == tail_cache {
                // Acquire: pairs with the producer's Release store of `tail`.
                tail_cache = r.tail.load(Ordering::Acquire);
            }
            // SAFETY: slot `head` was published (head < tail).
            sum = sum.wrapping_add(unsafe { *r.buf[head & (CAP - 1)].get() });
            head += 1;
            // Release: pairs with the producer's Acquire load of `head`.
            r.head.store(head, Ordering::Release);
        }
        black_box(sum);
    })
}

/// Ping-pong of one `u64` over two ringshm SPSC rings with an echo process.
fn shm_round_trip(wait: &str) -> Contender {
    let (a, b) = (harness::unique("ping"), harness::unique("pong"));
    let opts = Options::new().wait(self::wait(wait));
    let ping = Ring::<u64>::create_with(&a, 64, &opts).unwrap();
    let pong = Ring::<u64>::create_with(&b, 64, &opts).unwrap();
    let mut tx = ping.producer().unwrap();
    let mut rx = pong.consumer().unwrap();
    let side = Proc::spawn("u64-echo", &[a, b, wait.into()]);
    Contender::new(format!("ringshm round trip, WaitStrategy::{wait}"), side, move |n| {
        black_box((&ping, &pong));
        for i in 0..n {
            tx.push(i).unwrap();
            assert_eq!(rx.pop().unwrap(), i);
        }
    })
}

fn stream_contenders(batch: usize) -> Vec<Contender> {
    if batch == 1 {
        vec![shm_stream(1), rtrb_stream(1), mpmc_stream(), array_queue_stream(), sync_channel_stream(), mini_stream()]
    } else {
        vec![shm_stream(BATCH), shm_chunk_stream(), rtrb_stream(BATCH)]
    }
}

fn rtt_contenders() -> Vec<Contender> {
    vec![shm_round_trip("Spin"), shm_round_trip("Adaptive"), harness::canary(), harness::round_trip("unix pipe", 8)]
}

// ---------------------------------------------------------------------------
// Criterion groups and the interleaved summary.

fn bench_group(c: &mut Criterion, canary: &mut Contender, group: &str, contenders: &mut [Contender]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    for k in contenders.iter_mut() {
        k.calibrate(Duration::from_millis(20)); // warm-up: pre-faults, wraps the ring
        let ns = harness::canary_ns(canary, 20_000);
        println!("canary before {group}/{}: {ns:.0} ns ({})", k.name, harness::host_state(ns));
        let name = k.name.clone();
        g.bench_function(name, |b| b.iter_custom(|iters| k.run(iters)));
    }
    g.finish();
}

fn summary(canary: &mut Contender) {
    let rounds: usize = std::env::var("RINGSHM_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(9);
    let target = Duration::from_millis(100);
    println!("\n## Interleaved summary ({rounds} rounds, medians; ratios within this run)\n");
    println!("| benchmark | contender | median | contender time / first row's time |");
    println!("|---|---|---|---|");
    let blocks: [(&str, Vec<Contender>); 3] = [
        ("SPSC stream, 8-byte items", stream_contenders(1)),
        ("SPSC stream, batches of 64", stream_contenders(BATCH)),
        ("round trip, 8 bytes", rtt_contenders()),
    ];
    let mut canaries = Vec::new();
    for (title, mut ks) in blocks {
        let iters: Vec<u64> = ks.iter_mut().map(|k| k.calibrate(target)).collect();
        let ns = harness::interleave(&mut ks, &iters, rounds, |_| canaries.push(harness::canary_ns(canary, 20_000)));
        for (k, t) in ks.iter().zip(&ns) {
            let fig =
                if title.starts_with("round") { format!("{t:.0} ns") } else { format!("{:.0} M items/s", 1e3 / t) };
            println!("| {title} | {} | {fig} | {:.2} |", k.name, t / ns[0]);
        }
    }
    let c = harness::median(&mut canaries);
    println!("\ncanary (bare atomic ping-pong, median of every round): {c:.0} ns ({})", harness::host_state(c));
    println!("(last column: time per item or per round trip divided by the first row's; above 1 = first row faster)");
}

fn main() {
    let Some(mut canary) = harness::bench_main(peer) else { return };
    if std::env::var("RINGSHM_BENCH_ONLY_SUMMARY").as_deref() == Ok("1") {
        summary(&mut canary);
        return;
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_group(&mut c, &mut canary, "spsc_stream_single", &mut stream_contenders(1));
    bench_group(&mut c, &mut canary, "spsc_stream_batch64", &mut stream_contenders(BATCH));
    bench_group(&mut c, &mut canary, "round_trip", &mut rtt_contenders());
    c.final_summary();
    if std::env::var("RINGSHM_BENCH_SUMMARY").as_deref() != Ok("0") && !std::env::args().any(|a| a == "--test") {
        summary(&mut canary);
    }
}
