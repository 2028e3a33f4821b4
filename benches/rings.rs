//! Ring benchmarks: ringshm across two *processes* against the fastest
//! in-process queues between two *threads*, and round trips against a bare
//! atomic ping-pong and a Unix pipe.
//!
//! `cargo bench --bench rings` runs the criterion groups, then an interleaved
//! summary: every contender is measured in turn, round after round, and the
//! table reports medians and ratios, so the host's fast/slow phases hit all
//! contenders alike. Set `RINGSHM_BENCH_SUMMARY=0` to skip the summary,
//! `RINGSHM_BENCH_ONLY_SUMMARY=1` to run only it, `RINGSHM_BENCH_ROUNDS=N` to
//! change its rounds.

use std::cell::UnsafeCell;
use std::hint::black_box;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use crossbeam_utils::CachePadded;
use ringshm::spsc::{Consumer, Producer, Ring};
use ringshm::{Options, WaitStrategy};

const CAP: usize = 4096;
const BATCH: usize = 64;
const ROLE: &str = "RINGSHM_BENCH_ROLE";

// ---------------------------------------------------------------------------
// Child processes.

/// Pins the calling thread to `cpu` (consumers on 0, producers on 1), so
/// that every contender runs its two sides on two different CPUs from the
/// first item on, threads and processes alike.
fn pin(cpu: usize) {
    // Online CPUs, not `available_parallelism` (which shrinks with the
    // affinity mask we set, and which children and threads inherit).
    // SAFETY: `sysconf` only reads a system value.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu % online);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn spawn_child(role: &str, args: &[&str], pipes: bool) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE, role).env("RINGSHM_BENCH_ARGS", args.join(" "));
    if pipes {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    } else {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
    }
    cmd.spawn().unwrap()
}

fn child_main(role: &str) {
    pin(1);
    let args: Vec<String> = std::env::var("RINGSHM_BENCH_ARGS").unwrap().split(' ').map(str::to_owned).collect();
    match role {
        "producer" => {
            let batch: usize = args[1].parse().unwrap();
            let mut tx = Ring::<u64>::open(&args[0]).unwrap().producer().unwrap();
            let mut next = 0u64;
            let mut buf = [0u64; BATCH];
            loop {
                if batch == 1 {
                    match tx.try_push(next) {
                        Ok(()) => next += 1,
                        Err(ringshm::TrySendError::Full(_)) => {}
                        Err(_) => return,
                    }
                } else {
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = next + i as u64;
                    }
                    let n = tx.push_slice(&buf);
                    next += n as u64;
                    if n == 0 && tx.is_abandoned() {
                        return;
                    }
                }
            }
        }
        "echo" => {
            let wait = if args[2] == "spin" { WaitStrategy::Spin } else { WaitStrategy::Adaptive };
            let opts = Options::new().wait(wait);
            let mut rx = Ring::<u64>::open_with(&args[0], &opts).unwrap().consumer().unwrap();
            let mut tx = Ring::<u64>::open_with(&args[1], &opts).unwrap().producer().unwrap();
            while let Ok(v) = rx.pop() {
                if tx.push(v).is_err() {
                    return;
                }
            }
        }
        "atomic" => {
            let word = SharedWord::open(&args[0]);
            let mut expect = 1u64;
            loop {
                let v = word.get().load(Ordering::Acquire);
                if v == u64::MAX {
                    return;
                }
                if v == expect {
                    word.get().store(v + 1, Ordering::Release);
                    expect += 2;
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        "pipe" => {
            let mut buf = [0u8; 8];
            let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
            while i.read_exact(&mut buf).is_ok() {
                if o.write_all(&buf).and_then(|_| o.flush()).is_err() {
                    return;
                }
            }
        }
        _ => panic!("unknown role {role}"),
    }
}

/// One `AtomicU64` on its own page of named shared memory (the "bare atomic"
/// baseline: the floor for any cross-process hand-off).
struct SharedWord {
    ptr: *mut AtomicU64,
    name: String,
    owner: bool,
}

impl SharedWord {
    fn map(name: &str, create: bool) -> Self {
        use rustix::fs::Mode;
        use rustix::shm::OFlags;
        let flags = if create { OFlags::CREATE | OFlags::EXCL | OFlags::RDWR } else { OFlags::RDWR };
        let fd = rustix::shm::open(name, flags, Mode::from_raw_mode(0o600)).unwrap();
        if create {
            rustix::fs::ftruncate(&fd, 4096).unwrap();
        }
        // SAFETY: a fresh shared mapping of a 4096-byte file; nothing aliases it.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                4096,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .unwrap();
        SharedWord { ptr: p.cast(), name: name.to_owned(), owner: create }
    }
    fn create(name: &str) -> Self {
        Self::map(name, true)
    }
    fn open(name: &str) -> Self {
        Self::map(name, false)
    }
    fn get(&self) -> &AtomicU64 {
        // SAFETY: page-aligned mapping that lives as long as `self`; an
        // `AtomicU64` accepts any bytes (the page starts zeroed).
        unsafe { &*self.ptr }
    }
}

impl Drop for SharedWord {
    fn drop(&mut self) {
        if self.owner {
            let _ = rustix::shm::unlink(self.name.as_str());
        }
    }
}

// ---------------------------------------------------------------------------
// Contenders: each measures `iters` operations and returns the elapsed time.

trait Contender {
    fn name(&self) -> String;
    fn run(&mut self, iters: u64) -> Duration;
}

fn unique(tag: &str) -> String {
    format!("ringshm-bench-{tag}-{}", std::process::id())
}

/// ringshm SPSC, producer in a child process, consumer here.
struct ShmStream {
    rx: Consumer<u64>,
    child: Child,
    batch: usize,
    _ring: Ring<u64>,
}

impl ShmStream {
    fn new(batch: usize) -> Self {
        let name = unique(&format!("stream{batch}"));
        let ring = Ring::<u64>::create(&name, CAP).unwrap();
        let rx = ring.consumer().unwrap();
        let child = spawn_child("producer", &[&name, &batch.to_string()], false);
        ShmStream { rx, child, batch, _ring: ring }
    }
}

impl Contender for ShmStream {
    fn name(&self) -> String {
        if self.batch == 1 {
            "ringshm spsc try_push/try_pop (2 processes)"
        } else {
            "ringshm spsc push_slice/pop_slice x64 (2 processes)"
        }
        .into()
    }
    fn run(&mut self, iters: u64) -> Duration {
        let mut n = 0u64;
        let mut sum = 0u64;
        let start = Instant::now();
        if self.batch == 1 {
            while n < iters {
                if let Ok(v) = self.rx.try_pop() {
                    sum = sum.wrapping_add(v);
                    n += 1;
                }
            }
        } else {
            let mut buf = [0u64; BATCH];
            while n < iters {
                let k = self.rx.pop_slice(&mut buf);
                sum = sum.wrapping_add(buf[..k].iter().sum::<u64>());
                n += k as u64;
            }
        }
        black_box(sum);
        start.elapsed()
    }
}

impl Drop for ShmStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A producer thread running `produce(stop)` while this thread consumes with
/// `consume(iters)`.
fn threaded<P: Send + 'static>(
    iters: u64,
    producer: P,
    produce: fn(&mut P, &AtomicBool),
    consume: &mut dyn FnMut(u64),
) -> (Duration, P) {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let t = std::thread::spawn(move || {
        pin(1);
        let mut p = producer;
        produce(&mut p, &s2);
        p
    });
    let start = Instant::now();
    consume(iters);
    let d = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    (d, t.join().unwrap())
}

struct RtrbStream {
    batch: usize,
}

impl Contender for RtrbStream {
    fn name(&self) -> String {
        if self.batch == 1 { "rtrb push/pop (2 threads)" } else { "rtrb write_chunk/read_chunk x64 (2 threads)" }.into()
    }
    fn run(&mut self, iters: u64) -> Duration {
        let (p, mut c) = rtrb::RingBuffer::<u64>::new(CAP);
        let batch = self.batch;
        let produce: fn(&mut (rtrb::Producer<u64>, usize), &AtomicBool) = |(p, batch), stop| {
            let mut next = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if *batch == 1 {
                    if p.push(next).is_ok() {
                        next += 1;
                    }
                } else {
                    let k = p.slots().min(BATCH);
                    if k > 0 {
                        let w = p.write_chunk_uninit(k).unwrap();
                        next += w.fill_from_iter(next..) as u64;
                    }
                }
            }
        };
        let mut consume = |iters: u64| {
            let mut n = 0u64;
            let mut sum = 0u64;
            while n < iters {
                if batch == 1 {
                    if let Ok(v) = c.pop() {
                        sum = sum.wrapping_add(v);
                        n += 1;
                    }
                } else {
                    let k = c.slots().min(BATCH);
                    if k > 0 {
                        let r = c.read_chunk(k).unwrap();
                        let (a, b) = r.as_slices();
                        sum = sum.wrapping_add(a.iter().chain(b).sum::<u64>());
                        r.commit_all();
                        n += k as u64;
                    }
                }
            }
            black_box(sum);
        };
        threaded(iters, (p, batch), produce, &mut consume).0
    }
}

struct ArrayQueueStream;

impl Contender for ArrayQueueStream {
    fn name(&self) -> String {
        "crossbeam ArrayQueue push/pop (2 threads)".into()
    }
    fn run(&mut self, iters: u64) -> Duration {
        let q = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(CAP));
        let produce: fn(&mut Arc<crossbeam_queue::ArrayQueue<u64>>, &AtomicBool) = |q, stop| {
            let mut next = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if q.push(next).is_ok() {
                    next += 1;
                }
            }
        };
        let qc = q.clone();
        let mut consume = |iters: u64| {
            let (mut n, mut sum) = (0u64, 0u64);
            while n < iters {
                if let Some(v) = qc.pop() {
                    sum = sum.wrapping_add(v);
                    n += 1;
                }
            }
            black_box(sum);
        };
        threaded(iters, q, produce, &mut consume).0
    }
}

struct SyncChannelStream;

impl Contender for SyncChannelStream {
    fn name(&self) -> String {
        "std sync_channel send/recv (2 threads)".into()
    }
    fn run(&mut self, iters: u64) -> Duration {
        let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
        let produce: fn(&mut std::sync::mpsc::SyncSender<u64>, &AtomicBool) = |tx, stop| {
            let mut next = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if tx.try_send(next).is_ok() {
                    next += 1;
                }
            }
        };
        let mut consume = |iters: u64| {
            let mut sum = 0u64;
            for _ in 0..iters {
                sum = sum.wrapping_add(rx.recv().unwrap());
            }
            black_box(sum);
        };
        threaded(iters, tx, produce, &mut consume).0
    }
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

struct MiniStream;

impl Contender for MiniStream {
    fn name(&self) -> String {
        "hand-written cached-index ring (2 threads)".into()
    }
    fn run(&mut self, iters: u64) -> Duration {
        let r = Arc::new(MiniRing {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            buf: (0..CAP).map(|_| UnsafeCell::new(0)).collect(),
        });
        let produce: fn(&mut Arc<MiniRing>, &AtomicBool) = |r, stop| {
            let (mut tail, mut head) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) {
                if tail - head == CAP {
                    head = r.head.load(Ordering::Acquire);
                    continue;
                }
                // SAFETY: slot `tail` is free (tail - head < CAP) and ours.
                unsafe { *r.buf[tail & (CAP - 1)].get() = tail as u64 };
                tail += 1;
                r.tail.store(tail, Ordering::Release);
            }
        };
        let rc = r.clone();
        let mut consume = |iters: u64| {
            let (mut head, mut tail, mut sum) = (0usize, 0usize, 0u64);
            let mut n = 0u64;
            while n < iters {
                if head == tail {
                    tail = rc.tail.load(Ordering::Acquire);
                    continue;
                }
                // SAFETY: slot `head` was published (head < tail).
                sum = sum.wrapping_add(unsafe { *rc.buf[head & (CAP - 1)].get() });
                head += 1;
                rc.head.store(head, Ordering::Release);
                n += 1;
            }
            black_box(sum);
        };
        threaded(iters, r, produce, &mut consume).0
    }
}

/// Ping-pong of one `u64` over two ringshm SPSC rings with an echo process.
struct ShmRoundTrip {
    tx: Producer<u64>,
    rx: Consumer<u64>,
    child: Child,
    spin: bool,
    _rings: (Ring<u64>, Ring<u64>),
}

impl ShmRoundTrip {
    fn new(spin: bool) -> Self {
        let w = if spin { "spin" } else { "adaptive" };
        let (a, b) = (unique(&format!("ping-{w}")), unique(&format!("pong-{w}")));
        let opts = Options::new().wait(if spin { WaitStrategy::Spin } else { WaitStrategy::Adaptive });
        let ping = Ring::<u64>::create_with(&a, 64, &opts).unwrap();
        let pong = Ring::<u64>::create_with(&b, 64, &opts).unwrap();
        let tx = ping.producer().unwrap();
        let rx = pong.consumer().unwrap();
        let child = spawn_child("echo", &[&a, &b, w], false);
        ShmRoundTrip { tx, rx, child, spin, _rings: (ping, pong) }
    }
}

impl Contender for ShmRoundTrip {
    fn name(&self) -> String {
        format!("ringshm round trip, WaitStrategy::{}", if self.spin { "Spin" } else { "Adaptive" })
    }
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            self.tx.push(i).unwrap();
            assert_eq!(self.rx.pop().unwrap(), i);
        }
        start.elapsed()
    }
}

impl Drop for ShmRoundTrip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ping-pong on one shared cache line between two processes.
struct AtomicRoundTrip {
    word: SharedWord,
    child: Child,
    next: u64,
}

impl AtomicRoundTrip {
    fn new() -> Self {
        let name = unique("atomic");
        let word = SharedWord::create(&name);
        let child = spawn_child("atomic", &[&name], false);
        AtomicRoundTrip { word, child, next: 1 }
    }
}

impl Contender for AtomicRoundTrip {
    fn name(&self) -> String {
        "bare atomic ping-pong on one cache line (2 processes)".into()
    }
    fn run(&mut self, iters: u64) -> Duration {
        let w = self.word.get();
        let start = Instant::now();
        for _ in 0..iters {
            w.store(self.next, Ordering::Release);
            while w.load(Ordering::Acquire) != self.next + 1 {
                std::hint::spin_loop();
            }
            self.next += 2;
        }
        start.elapsed()
    }
}

impl Drop for AtomicRoundTrip {
    fn drop(&mut self) {
        self.word.get().store(u64::MAX, Ordering::Release);
        let _ = self.child.wait();
    }
}

/// Ping-pong of 8 bytes over a pair of Unix pipes.
struct PipeRoundTrip {
    child: Child,
}

impl Contender for PipeRoundTrip {
    fn name(&self) -> String {
        "Unix pipe pair round trip (2 processes)".into()
    }
    fn run(&mut self, iters: u64) -> Duration {
        let mut w = self.child.stdin.take().unwrap();
        let mut r = self.child.stdout.take().unwrap();
        let mut buf = [0u8; 8];
        let start = Instant::now();
        for i in 0..iters {
            w.write_all(&i.to_le_bytes()).unwrap();
            r.read_exact(&mut buf).unwrap();
        }
        let d = start.elapsed();
        self.child.stdin = Some(w);
        self.child.stdout = Some(r);
        d
    }
}

impl Drop for PipeRoundTrip {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Criterion groups and the interleaved summary.

fn bench_group(c: &mut Criterion, group: &str, per_iter_items: u64, contenders: &mut [Box<dyn Contender>]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(per_iter_items));
    for k in contenders.iter_mut() {
        let name = k.name();
        g.bench_function(name, |b| b.iter_custom(|iters| k.run(iters)));
    }
    g.finish();
}

fn stream_contenders(batch: usize) -> Vec<Box<dyn Contender>> {
    if batch == 1 {
        vec![
            Box::new(ShmStream::new(1)),
            Box::new(RtrbStream { batch: 1 }),
            Box::new(ArrayQueueStream),
            Box::new(SyncChannelStream),
            Box::new(MiniStream),
        ]
    } else {
        vec![Box::new(ShmStream::new(BATCH)), Box::new(RtrbStream { batch: BATCH }), Box::new(MiniStream)]
    }
}

fn rtt_contenders() -> Vec<Box<dyn Contender>> {
    vec![
        Box::new(ShmRoundTrip::new(true)),
        Box::new(ShmRoundTrip::new(false)),
        Box::new(AtomicRoundTrip::new()),
        Box::new(PipeRoundTrip { child: spawn_child("pipe", &[], true) }),
    ]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Measures every contender in turn, `rounds` times; returns median ns/op.
fn interleave(contenders: &mut [Box<dyn Contender>], iters: &[u64], rounds: usize) -> Vec<f64> {
    let mut samples = vec![Vec::new(); contenders.len()];
    for k in contenders.iter_mut().zip(iters) {
        k.0.run(*k.1 / 4); // warm up
    }
    for _ in 0..rounds {
        for (i, k) in contenders.iter_mut().enumerate() {
            samples[i].push(k.run(iters[i]).as_nanos() as f64 / iters[i] as f64);
        }
    }
    samples.iter_mut().map(|s| median(s)).collect()
}

fn summary() {
    let rounds: usize = std::env::var("RINGSHM_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(9);
    println!("\n## Interleaved summary ({rounds} rounds, medians; ratios within this run)\n");
    println!("| benchmark | contender | median | contender time / ringshm time |");
    println!("|---|---|---|---|");
    for (title, batch) in [("SPSC stream, 8-byte items", 1usize), ("SPSC stream, batches of 64", BATCH)] {
        let mut ks = stream_contenders(batch);
        let iters = vec![2_000_000u64; ks.len()];
        let ns = interleave(&mut ks, &iters, rounds);
        for (k, t) in ks.iter().zip(&ns) {
            println!("| {title} | {} | {:.0} M items/s | {:.2} |", k.name(), 1e3 / t, t / ns[0]);
        }
    }
    let mut ks = rtt_contenders();
    let iters = [200_000u64, 100_000, 200_000, 5_000];
    let ns = interleave(&mut ks, &iters, rounds);
    for (k, t) in ks.iter().zip(&ns) {
        println!("| round trip, 8 bytes | {} | {:.0} ns | {:.2} |", k.name(), t, t / ns[0]);
    }
    println!("\n(last column: time per item or per round trip of the contender divided by ringshm's");
    println!(" (first row of each block); above 1 = ringshm faster)");
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child_main(&role);
        return;
    }
    pin(0);
    if std::env::var("RINGSHM_BENCH_ONLY_SUMMARY").as_deref() == Ok("1") {
        summary();
        return;
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_group(&mut c, "spsc_stream_single", 1, &mut stream_contenders(1));
    bench_group(&mut c, "spsc_stream_batch64", 1, &mut stream_contenders(BATCH));
    bench_group(&mut c, "round_trip", 1, &mut rtt_contenders());
    c.final_summary();
    if std::env::var("RINGSHM_BENCH_SUMMARY").as_deref() != Ok("0") && !std::env::args().any(|a| a == "--test") {
        summary();
    }
}
