//! Async round trips across two processes: 64-byte messages over a `Pipe`
//! with `send_bytes_async`/`recv_bytes_async` on tokio's current-thread
//! runtime, against the blocking `Adaptive` round trip over the same kind of
//! `Pipe` and against tokio's `UnixStream` (a socketpair), in the same run.
//!
//! * `round_trip_64B_busy/*`: the next request goes out as soon as the
//!   answer is in, so the peer is still spinning (or just parked) when it
//!   lands: the peer is responsive.
//! * `round_trip_64B_idle/*`: the timed side sleeps 200 µs before each
//!   request (not timed), so the peer's future is registered with the
//!   waiter thread (or its blocking thread is asleep in the kernel) when the
//!   message lands: every round trip includes a cross-process wake-up.
//!
//! # Method (the harness in `benches/harness/mod.rs`)
//!
//! Every echo is this binary re-executed with a role, started before timing,
//! parked on its control pipe between samples, pinned to CPU 1 (its tokio
//! runtime and ringshm's waiter thread inherit the pin); the timed side and
//! its runtime run on CPU 0. Each echo peer runs one tokio current-thread
//! runtime (async contenders) or a plain thread (blocking). Both `Pipe`
//! contenders do the same work: `send_bytes` of a slice, `recv_bytes` into
//! a new `Vec` (the async twins have no `_into` form). Before each
//! contender the canary (a bare atomic ping-pong on one cache line between
//! two processes) is timed and printed. After the criterion groups, an
//! interleaved summary measures every contender in turn, round after round,
//! with the canary before each round, and prints the ratios the issue asks
//! for (`RINGSHM_BENCH_SUMMARY=0` skips it, `RINGSHM_BENCH_ONLY_SUMMARY=1`
//! runs only it, `RINGSHM_BENCH_ROUNDS=N` sets its rounds).
//!
//! `cargo bench --features async --bench async`

mod harness;

use std::cell::Cell;
use std::hint::black_box;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use harness::{Contender, Proc};
use ringshm::{Options, Pipe, WaitStrategy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MSG: usize = 64;
/// Not-timed pause before each idle round trip.
const IDLE_PAUSE: Duration = Duration::from_micros(200);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn adaptive() -> Options {
    Options::new().wait(WaitStrategy::Adaptive)
}

/// The roles of the echo peers.
fn peer(role: &str, args: &[String]) -> bool {
    match role {
        "async-echo" => {
            let p = Pipe::open_with(&args[0], &adaptive()).unwrap();
            let rt = rt();
            harness::serve(|n| {
                rt.block_on(async {
                    for _ in 0..n {
                        let m = p.recv_bytes_async().await.unwrap();
                        p.send_bytes_async(&m).await.unwrap();
                    }
                })
            });
        }
        "blocking-echo" => {
            let p = Pipe::open_with(&args[0], &adaptive()).unwrap();
            harness::serve(|n| {
                for _ in 0..n {
                    let m = p.recv_bytes().unwrap();
                    p.send_bytes(&m).unwrap();
                }
            });
        }
        "unix-echo" => {
            let fd: RawFd = args[0].parse().unwrap();
            // SAFETY: the parent passed us this end of a socketpair, inherited
            // without close-on-exec; nothing else in this process owns it.
            let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
            s.set_nonblocking(true).unwrap();
            let rt = rt();
            let mut s = rt.block_on(async { tokio::net::UnixStream::from_std(s).unwrap() });
            let mut buf = [0u8; MSG];
            harness::serve(|n| {
                rt.block_on(async {
                    for _ in 0..n {
                        s.read_exact(&mut buf).await.unwrap();
                        s.write_all(&buf).await.unwrap();
                    }
                })
            });
        }
        _ => return false,
    }
    true
}

/// A contender whose figure may exclude part of its loop: idle contenders
/// add only the round trips themselves to `spent`.
struct Async {
    k: Contender,
    spent: Option<Rc<Cell<Duration>>>,
}

impl Async {
    fn run(&mut self, n: u64) -> Duration {
        let d = self.k.run(n);
        self.spent.as_ref().map_or(d, |s| s.take())
    }
}

/// Times `n` round trips of `once` (an async round trip) on `rt`, pausing
/// before each if `idle`; busy contenders are timed whole by the harness.
fn async_contender<F, Fut>(name: &str, side: Proc, rt: Rc<tokio::runtime::Runtime>, idle: bool, mut once: F) -> Async
where
    F: FnMut() -> Fut + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let spent = idle.then(|| Rc::new(Cell::new(Duration::ZERO)));
    let acc = spent.clone();
    let k = Contender::new(name, side, move |n| {
        rt.block_on(async {
            for _ in 0..n {
                match &acc {
                    Some(acc) => {
                        std::thread::sleep(IDLE_PAUSE);
                        let t = Instant::now();
                        once().await;
                        acc.set(acc.get() + t.elapsed());
                    }
                    None => once().await,
                }
            }
        })
    });
    Async { k, spent }
}

/// The contenders of one mode, in table order: async Pipe, blocking Pipe,
/// tokio UnixStream.
fn contenders(idle: bool) -> Vec<Async> {
    let rt = Rc::new(rt());
    let mode = if idle { "idle" } else { "busy" };
    let msg = [7u8; MSG];

    let an = harness::unique("async-pipe");
    let ap = Rc::new(Pipe::create_with(&an, 4096, &adaptive()).unwrap());
    let side = Proc::spawn("async-echo", &[an]);
    let async_pipe = async_contender(&format!("async Pipe, tokio ct ({mode})"), side, rt.clone(), idle, move || {
        let ap = ap.clone();
        async move {
            ap.send_bytes_async(&msg).await.unwrap();
            black_box(ap.recv_bytes_async().await.unwrap());
        }
    });

    let bn = harness::unique("blocking-pipe");
    let bp = Pipe::create_with(&bn, 4096, &adaptive()).unwrap();
    let side = Proc::spawn("blocking-echo", &[bn]);
    let spent = idle.then(|| Rc::new(Cell::new(Duration::ZERO)));
    let acc = spent.clone();
    let blocking = Async {
        k: Contender::new(format!("blocking Pipe, Adaptive ({mode})"), side, move |n| {
            for _ in 0..n {
                if let Some(acc) = &acc {
                    std::thread::sleep(IDLE_PAUSE);
                    let t = Instant::now();
                    bp.send_bytes(&msg).unwrap();
                    black_box(bp.recv_bytes().unwrap());
                    acc.set(acc.get() + t.elapsed());
                } else {
                    bp.send_bytes(&msg).unwrap();
                    black_box(bp.recv_bytes().unwrap());
                }
            }
        }),
        spent,
    };

    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let theirs_fd = theirs.into_raw_fd();
    // SAFETY: clears close-on-exec on our own descriptor so the child inherits it.
    unsafe { assert_eq!(libc::fcntl(theirs_fd, libc::F_SETFD, 0), 0) };
    let side = Proc::spawn("unix-echo", &[theirs_fd.to_string()]);
    // SAFETY: our copy of the child's end; the child inherited its own.
    unsafe { libc::close(theirs_fd) };
    ours.set_nonblocking(true).unwrap();
    let us = Rc::new(tokio::sync::Mutex::new(rt.block_on(async { tokio::net::UnixStream::from_std(ours).unwrap() })));
    let unix = async_contender(&format!("tokio UnixStream ({mode})"), side, rt, idle, move || {
        let us = us.clone();
        async move {
            let mut s = us.lock().await;
            let mut buf = [0u8; MSG];
            s.write_all(&msg).await.unwrap();
            s.read_exact(&mut buf).await.unwrap();
        }
    });
    vec![async_pipe, blocking, unix]
}

fn group(c: &mut Criterion, canary: &mut Contender, name: &str, ks: &mut [Async]) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    for k in ks.iter_mut() {
        k.run(64); // warm-up: pre-faults, starts the waiter threads
        let ns = harness::canary_ns(canary, 20_000);
        println!("canary before {name}/{}: {ns:.0} ns ({})", k.k.name, harness::host_state(ns));
        g.bench_function(BenchmarkId::from_parameter(&k.k.name), |b| b.iter_custom(|iters| k.run(iters)));
    }
    g.finish();
}

fn summary(canary: &mut Contender) {
    let rounds: usize = std::env::var("RINGSHM_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    println!("\n## Interleaved summary ({rounds} rounds, medians, canary before each round)\n");
    println!("| mode | contender | median | ÷ canary | ÷ async Pipe |");
    println!("|---|---|---|---|---|");
    let mut canaries = Vec::new();
    let mut meds = Vec::new();
    for (mode, idle, iters) in [("busy", false, 20_000u64), ("idle", true, 300)] {
        let mut ks = contenders(idle);
        for k in ks.iter_mut() {
            k.run(64);
        }
        let mut samples = vec![Vec::new(); ks.len()];
        for _ in 0..rounds {
            canaries.push(harness::canary_ns(canary, 20_000));
            for (i, k) in ks.iter_mut().enumerate() {
                samples[i].push(k.run(iters).as_nanos() as f64 / iters as f64);
            }
        }
        let ns: Vec<f64> = samples.iter_mut().map(|s| harness::median(s)).collect();
        let floor = harness::median(&mut canaries.clone());
        for (k, t) in ks.iter().zip(&ns) {
            println!("| {mode} | {} | {t:.0} ns | {:.2} | {:.2} |", k.k.name, t / floor, t / ns[0]);
        }
        meds.push(ns);
    }
    let c = harness::median(&mut canaries);
    println!("\ncanary (bare atomic ping-pong), median over the run: {c:.0} ns ({})", harness::host_state(c));
    let (busy, idle) = (&meds[0], &meds[1]);
    println!("async / blocking Adaptive (busy): {:.2}x (goal: at most 1.5x)", busy[0] / busy[1]);
    println!("UnixStream / async (busy):        {:.1}x faster (goal: at least 10x)", busy[2] / busy[0]);
    println!("UnixStream / async (idle):        {:.1}x faster", idle[2] / idle[0]);
    println!("async / blocking Adaptive (idle): {:.2}x", idle[0] / idle[1]);
}

fn main() {
    let Some(mut canary) = harness::bench_main(peer) else { return };
    if std::env::var("RINGSHM_BENCH_ONLY_SUMMARY").as_deref() == Ok("1") {
        summary(&mut canary);
        return;
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .configure_from_args();
    group(&mut c, &mut canary, "round_trip_64B_busy", &mut contenders(false));
    group(&mut c, &mut canary, "round_trip_64B_idle", &mut contenders(true));
    c.final_summary();
    if std::env::var("RINGSHM_BENCH_SUMMARY").as_deref() != Ok("0") && !std::env::args().any(|a| a == "--test") {
        summary(&mut canary);
    }
}
