//! The one harness shape shared by every benchmark in `benches/` and by
//! `ringshm bench` (which includes this file with `#[path]`).
//!
//! # Method
//!
//! Every contender, in-process queue or cross-process transport alike, runs
//! under the same conditions:
//!
//! 1. **Long-lived sides, started before timing.** The other side is a
//!    process (this binary re-executed with a role, see [`peer_main`]) or a
//!    thread, created once with the contender. Between measurements it is
//!    *parked*: blocked in `read(2)` on its control pipe (processes) or in a
//!    channel receive (threads), so it never spins while another contender
//!    is being measured.
//! 2. **Pre-faulted memory.** Every buffer is written at creation, raw
//!    regions are mapped with `MAP_POPULATE`, and every contender runs a
//!    warm-up ([`Contender::calibrate`], which wraps its ring) before its
//!    first timed sample.
//! 3. **The same start state.** A sample tells the parked side "do `n`
//!    operations" ([`Side::start`]), times the local side's `n` operations,
//!    then waits for the other side's acknowledgement ([`Side::finish`]).
//!    Each sample starts and ends with empty rings and a parked peer.
//! 4. **Loops of the same shape.** Round trips: `n` times send one message,
//!    wait for the echo. Streams: the peer sends `n` messages, the timed side
//!    receives `n`. No stop flag, no per-item branch that differs.
//! 5. **Pinned to different CPUs.** The timing side runs on CPU 0, the peer
//!    (process or thread) on CPU 1 (`sched_setaffinity`).
//! 6. **A canary before every contender.** A bare atomic ping-pong on one
//!    cache line between two processes ([`canary`]) is timed and printed
//!    before each contender: it tells which state the host was in (on the
//!    reference 2-vCPU VMs about 45 ns (AMD) to 120 ns (Intel) in their fast
//!    state, about 400 ns in their slow one; [`host_state`]). Ratios are
//!    only compared within one run.
//!
//! Why this matters: an earlier version of `benches/rings.rs` created all
//! contenders of a group up front, and the ringshm producer *process* kept
//! spinning on CPU 1 (`try_push` on a full ring) while the rtrb producer
//! *thread*, also pinned to CPU 1, was measured. The two shared one CPU, and
//! rtrb measured 322 M items/s instead of about 500 M items/s. Parked peers
//! (item 1) remove that.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringshm::spsc::{Consumer, Producer, Ring};
use ringshm::{Options, Pipe, Queue, WaitStrategy};

/// Environment variable that gives a re-executed peer its role.
pub const PEER_ENV: &str = "RINGSHM_BENCH_PEER";
/// Environment variable with the peer's arguments (separated by `\x1f`).
pub const ARGS_ENV: &str = "RINGSHM_BENCH_ARGS";
/// The CPU of the timing side.
pub const LOCAL_CPU: usize = 0;
/// The CPU of the other side.
pub const PEER_CPU: usize = 1;
/// The payload sizes every transport is measured with.
pub const SIZES: [usize; 4] = [8, 64, 4096, 65536];

/// Pins the calling thread to `cpu` (modulo the online CPUs).
pub fn pin(cpu: usize) {
    // Online CPUs, not `available_parallelism` (which shrinks with the
    // affinity mask that children and threads inherit).
    // SAFETY: `sysconf` only reads a system value.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu % online);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// A segment or queue name unique to this process and call.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("rshm-bench-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A buffer of `len` bytes, every page written (pre-faulted).
pub fn filled(len: usize) -> Vec<u8> {
    vec![0x5a; len]
}

// ---------------------------------------------------------------------------
// The other side: a parked process or thread that runs `n` operations on
// request.

/// The other side of a contender.
pub trait Side {
    /// Wakes the side to run `n` operations.
    fn start(&mut self, n: u64);
    /// Waits until the side has run them.
    fn finish(&mut self);
}

/// Runs `n` operations.
type Work = Box<dyn FnMut(u64) + Send>;

/// A peer process: this binary re-executed with a role, parked on its
/// control pipe (stdin) between samples, acknowledging on stdout.
pub struct Proc {
    child: Child,
    ctl: ChildStdin,
    ack: ChildStdout,
}

/// How to re-execute this binary as a peer: the arguments before the role
/// (none for a bench, `bench` for the `ringshm` binary).
static PREFIX: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Sets the arguments that re-executing this binary as a peer needs.
pub fn set_peer_prefix(args: &[&str]) {
    let _ = PREFIX.set(args.iter().map(|s| s.to_string()).collect());
}

impl Proc {
    /// Starts a peer process in `role` with `args`.
    pub fn spawn(role: &str, args: &[String]) -> Proc {
        let mut child = Command::new(std::env::current_exe().expect("current_exe"))
            .args(PREFIX.get().map(Vec::as_slice).unwrap_or(&[]))
            .env(PEER_ENV, role)
            .env(ARGS_ENV, args.join("\x1f"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn peer process");
        let ctl = child.stdin.take().unwrap();
        let ack = child.stdout.take().unwrap();
        Proc { child, ctl, ack }
    }
}

impl Proc {
    /// Waits for the peer's [`ready`] (its one-time setup is done).
    pub fn wait_ready(mut self) -> Self {
        self.finish();
        self
    }
}

/// In a peer process: tells the parent that setup is done (see
/// [`Proc::wait_ready`]).
pub fn ready() {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(&[1; 8]).and_then(|_| o.flush());
}

/// No other side: for single-threaded baselines (`memcpy`).
pub struct Alone;

impl Side for Alone {
    fn start(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

impl Side for Proc {
    fn start(&mut self, n: u64) {
        self.ctl.write_all(&n.to_le_bytes()).expect("peer process died");
    }
    fn finish(&mut self) {
        let mut b = [0u8; 8];
        self.ack.read_exact(&mut b).expect("peer process died");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A peer thread pinned to [`PEER_CPU`], parked on a channel between samples.
pub struct Thread {
    go: Option<mpsc::Sender<u64>>,
    done: mpsc::Receiver<()>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Thread {
    /// Starts a thread that runs `work(n)` for each sample.
    pub fn spawn(mut work: impl FnMut(u64) + Send + 'static) -> Thread {
        let (go, go_rx) = mpsc::channel::<u64>();
        let (done_tx, done) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            pin(PEER_CPU);
            while let Ok(n) = go_rx.recv() {
                work(n);
                if done_tx.send(()).is_err() {
                    return;
                }
            }
        });
        Thread { go: Some(go), done, handle: Some(handle) }
    }
}

impl Side for Thread {
    fn start(&mut self, n: u64) {
        self.go.as_ref().unwrap().send(n).expect("peer thread died");
    }
    fn finish(&mut self) {
        self.done.recv().expect("peer thread died");
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        drop(self.go.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// In a peer process: the control loop. Reads a count from stdin, runs
/// `work(n)`, acknowledges on stdout; ends at EOF.
pub fn serve(mut work: impl FnMut(u64)) {
    let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut b = [0u8; 8];
    while i.read_exact(&mut b).is_ok() {
        work(u64::from_le_bytes(b));
        if o.write_all(&[1; 8]).and_then(|_| o.flush()).is_err() {
            return;
        }
    }
}

/// A contender: a name, a parked other side, and the timed local side.
pub struct Contender {
    /// Shown in tables and criterion ids.
    pub name: String,
    side: Box<dyn Side>,
    local: Box<dyn FnMut(u64)>,
}

impl Contender {
    /// A contender whose other side is `side` and whose timed side runs
    /// `local(n)`.
    pub fn new(name: impl Into<String>, side: impl Side + 'static, local: impl FnMut(u64) + 'static) -> Self {
        Contender { name: name.into(), side: Box::new(side), local: Box::new(local) }
    }

    /// Times `n` operations of the local side (the other side runs its `n`
    /// at the same time).
    pub fn run(&mut self, n: u64) -> Duration {
        self.side.start(n);
        let t = Instant::now();
        (self.local)(n);
        let d = t.elapsed();
        self.side.finish();
        d
    }

    /// Warms up (pre-faults) and returns the iterations that take about
    /// `target`.
    pub fn calibrate(&mut self, target: Duration) -> u64 {
        let mut n = 16u64;
        self.run(n);
        loop {
            let d = self.run(n);
            if d >= target / 8 || n >= 1 << 30 {
                let per = d.as_secs_f64() / n as f64;
                return ((target.as_secs_f64() / per) as u64).clamp(16, 1 << 32);
            }
            n *= 4;
        }
    }
}

/// Measures every contender in turn, `rounds` times (`iters[i]`
/// operations for contender `i`), calling `each_round(r)` before round `r`;
/// returns each contender's median nanoseconds per operation.
pub fn interleave(ks: &mut [Contender], iters: &[u64], rounds: usize, mut each_round: impl FnMut(usize)) -> Vec<f64> {
    let mut samples = vec![Vec::new(); ks.len()];
    for r in 0..rounds {
        each_round(r);
        for (i, k) in ks.iter_mut().enumerate() {
            samples[i].push(k.run(iters[i]).as_nanos() as f64 / iters[i] as f64);
        }
    }
    samples.iter_mut().map(|s| median(s)).collect()
}

/// A stream between two threads: the peer thread calls `send(i)` for
/// `i in 0..n`, the timed side calls `recv()` `n` times.
pub fn thread_stream(
    name: &str,
    mut send: impl FnMut(u64) + Send + 'static,
    mut recv: impl FnMut() -> u64 + 'static,
) -> Contender {
    let side = Thread::spawn(move |n| (0..n).for_each(&mut send));
    Contender::new(name, side, move |n| {
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(recv());
        }
        std::hint::black_box(sum);
    })
}

/// The start of every bench's `main`: in a re-executed peer, runs its role
/// (see [`peer_main`]) and returns `None`; otherwise pins this thread to
/// [`LOCAL_CPU`] and returns a warmed-up canary.
pub fn bench_main(extra: impl FnOnce(&str, &[String]) -> bool) -> Option<Contender> {
    if peer_main(extra) {
        return None;
    }
    pin(LOCAL_CPU);
    let mut c = canary();
    c.calibrate(Duration::from_millis(10));
    Some(c)
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------
// The canary: a bare atomic ping-pong between two processes.

/// A zeroed region of named shared memory, mapped (and pre-faulted) whole;
/// the creator unlinks its name on drop.
pub struct SharedRegion {
    ptr: *mut u8,
    len: usize,
    name: String,
    owner: bool,
}

impl SharedRegion {
    fn map(name: &str, len: usize, create: bool) -> Self {
        use rustix::fs::Mode;
        use rustix::shm::OFlags;
        let len = len.next_multiple_of(4096);
        let flags = if create { OFlags::CREATE | OFlags::EXCL | OFlags::RDWR } else { OFlags::RDWR };
        let fd = rustix::shm::open(name, flags, Mode::from_raw_mode(0o600)).expect("shm_open");
        if create {
            rustix::fs::ftruncate(&fd, len as u64).expect("ftruncate");
        }
        // SAFETY: a fresh shared mapping of a `len`-byte file; nothing aliases it
        // in this process.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED | rustix::mm::MapFlags::POPULATE,
                &fd,
                0,
            )
        }
        .expect("mmap");
        SharedRegion { ptr: p.cast(), len, name: name.to_owned(), owner: create }
    }
    /// Creates a zeroed region of at least `len` bytes.
    pub fn create(name: &str, len: usize) -> Self {
        Self::map(name, len, true)
    }
    /// Maps an existing region of at least `len` bytes.
    pub fn open(name: &str, len: usize) -> Self {
        Self::map(name, len, false)
    }
    /// The start of the region (page-aligned, `len` bytes).
    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: our own mapping of `len` bytes; nothing borrowed from it
        // outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
        if self.owner {
            let _ = rustix::shm::unlink(self.name.as_str());
        }
    }
}

/// One `AtomicU64` on its own page of named shared memory.
pub struct SharedWord(SharedRegion);

impl SharedWord {
    /// Creates the word (zero).
    pub fn create(name: &str) -> Self {
        SharedWord(SharedRegion::create(name, 4096))
    }
    /// Maps an existing word.
    pub fn open(name: &str) -> Self {
        SharedWord(SharedRegion::open(name, 4096))
    }
    /// The word.
    pub fn get(&self) -> &AtomicU64 {
        // SAFETY: page-aligned mapping that lives as long as `self`; an
        // `AtomicU64` accepts any bytes.
        unsafe { &*self.0.ptr().cast::<AtomicU64>() }
    }
}

/// Bare atomic ping-pong on one cache line with a peer process: the floor
/// of any cross-process round trip on this host, in its current state.
pub fn canary() -> Contender {
    let name = unique("canary");
    let word = SharedWord::create(&name);
    let side = Proc::spawn("canary", &[name]);
    let mut next = 1u64;
    Contender::new("bare atomic ping-pong (floor)", side, move |n| {
        let w = word.get();
        for _ in 0..n {
            // Release/Acquire: pairs with the peer's Acquire load / Release store.
            w.store(next, Ordering::Release);
            while w.load(Ordering::Acquire) != next + 1 {
                std::hint::spin_loop();
            }
            next += 2;
        }
    })
}

/// The host state a canary figure suggests. The reference 2-vCPU VMs show
/// about 45 ns (AMD) to 120 ns (Intel) in their fast state and about 400 ns
/// in their slow one; the label is a hint, the figure is what counts.
pub fn host_state(canary_ns: f64) -> &'static str {
    if canary_ns <= 150.0 {
        "fast state"
    } else if canary_ns >= 300.0 {
        "slow state"
    } else {
        "between states"
    }
}

/// Times the canary (`n` round trips, best of three) and returns ns per
/// round trip.
pub fn canary_ns(c: &mut Contender, n: u64) -> f64 {
    (0..3).map(|_| c.run(n).as_nanos() as f64 / n as f64).fold(f64::INFINITY, f64::min)
}

// ---------------------------------------------------------------------------
// Transports shared by the benches and `ringshm bench`.

/// Calls `$f::<N>` with the const `N` equal to the runtime size `$s` (one of
/// [`SIZES`]).
macro_rules! by_size {
    ($s:expr, $f:ident ( $($a:expr),* )) => {
        match $s {
            8 => $f::<8>($($a),*),
            64 => $f::<64>($($a),*),
            4096 => $f::<4096>($($a),*),
            65536 => $f::<65536>($($a),*),
            s => panic!("unsupported payload size {s}"),
        }
    };
}
#[allow(unused_imports)]
pub(crate) use by_size;

/// Ring or queue capacity (items) for streaming `size`-byte items: about
/// 256 KiB, between 4 and 4096 items.
pub fn stream_capacity(size: usize) -> usize {
    (256 * 1024 / size).clamp(4, 4096)
}

fn spin() -> Options {
    Options::new().wait(WaitStrategy::Spin)
}

/// A message of `N` bytes, tagged with `i`.
fn msg<const N: usize>(i: u64) -> [u8; N] {
    let mut m = [0x5au8; N];
    m[..8].copy_from_slice(&i.to_le_bytes());
    m
}

/// The transports measured by `ringshm bench`, in table order.
pub const TRANSPORTS: [&str; 6] = ["spsc::Ring", "Pipe", "Queue", "unix pipe", "socketpair", "POSIX mq"];

/// Round trip of `size` bytes over `transport` (one of [`TRANSPORTS`]).
pub fn round_trip(transport: &str, size: usize) -> Contender {
    match transport {
        "spsc::Ring" => by_size!(size, spsc_rtt()),
        "Pipe" => pipe_rtt(size),
        "Queue" => by_size!(size, queue_rtt()),
        "unix pipe" => fd_rtt(size, false),
        "socketpair" => fd_rtt(size, true),
        "POSIX mq" => mq_rtt(size),
        t => panic!("unknown transport {t}"),
    }
}

/// `size`-byte messages streamed over `transport` from the peer to the
/// timed side.
pub fn stream(transport: &str, size: usize) -> Contender {
    match transport {
        "spsc::Ring" => by_size!(size, spsc_stream()),
        "Pipe" => pipe_stream(size),
        "Queue" => by_size!(size, queue_stream()),
        "unix pipe" => fd_stream(size, false),
        "socketpair" => fd_stream(size, true),
        "POSIX mq" => mq_stream(size),
        t => panic!("unknown transport {t}"),
    }
}

/// Messages from this size on go through `spsc::Ring` with
/// `write_chunk`/`read_chunk`, copied in place; smaller ones with
/// `push`/`pop` (by value: a large array would be copied through the stack
/// twice more).
pub const SPSC_CHUNKS_FROM: usize = 4096;

/// Copies `m` into the next slot, spinning while the ring is full.
fn spsc_send<const N: usize>(tx: &mut Producer<[u8; N]>, m: &[u8; N]) {
    if N < SPSC_CHUNKS_FROM {
        return tx.push(*m).expect("spsc peer gone");
    }
    loop {
        match tx.write_chunk(1) {
            Ok(mut w) => {
                w.as_mut_slices().0[0].copy_from_slice(m);
                return w.commit_all();
            }
            Err(ringshm::ChunkError::TooFewSlots(_)) => std::hint::spin_loop(),
            Err(e) => panic!("spsc: {e}"),
        }
    }
}

/// Copies the next message into `out`, spinning while the ring is empty.
fn spsc_recv<const N: usize>(rx: &mut Consumer<[u8; N]>, out: &mut [u8; N]) {
    if N < SPSC_CHUNKS_FROM {
        *out = rx.pop().expect("spsc peer gone");
        return;
    }
    loop {
        match rx.read_chunk(1) {
            Ok(r) => {
                out.copy_from_slice(&r.as_slices().0[0]);
                return r.commit_all();
            }
            Err(ringshm::ChunkError::TooFewSlots(_)) => std::hint::spin_loop(),
            Err(e) => panic!("spsc: {e}"),
        }
    }
}

/// A boxed, pre-faulted `N`-byte message.
fn boxed<const N: usize>() -> Box<[u8; N]> {
    filled(N).into_boxed_slice().try_into().unwrap()
}

fn spsc_rtt<const N: usize>() -> Contender {
    let (a, b) = (unique("rt-a"), unique("rt-b"));
    let ping = Ring::<[u8; N]>::create_with(&a, 4, &spin()).unwrap();
    let pong = Ring::<[u8; N]>::create_with(&b, 4, &spin()).unwrap();
    let mut tx = ping.producer().unwrap();
    let mut rx = pong.consumer().unwrap();
    let side = Proc::spawn("spsc-echo", &[a, b, N.to_string()]);
    let keep = (ping, pong);
    let (mut out, mut buf) = (boxed::<N>(), boxed::<N>());
    Contender::new("spsc::Ring", side, move |n| {
        std::hint::black_box(&keep); // keep the rings (and names) alive
        for i in 0..n {
            out[0] = i as u8;
            spsc_send(&mut tx, &out);
            spsc_recv(&mut rx, &mut buf);
            assert_eq!(buf[0], i as u8);
        }
    })
}

fn spsc_stream<const N: usize>() -> Contender {
    let a = unique("st");
    let ring = Ring::<[u8; N]>::create_with(&a, stream_capacity(N), &spin()).unwrap();
    let mut rx = ring.consumer().unwrap();
    let side = Proc::spawn("spsc-produce", &[a, N.to_string()]);
    let mut buf = boxed::<N>();
    Contender::new("spsc::Ring", side, move |n| {
        std::hint::black_box(&ring);
        let mut sum = 0u8;
        for _ in 0..n {
            spsc_recv(&mut rx, &mut buf);
            sum = sum.wrapping_add(buf[0]);
        }
        std::hint::black_box(sum);
    })
}

fn pipe_capacity(size: usize) -> usize {
    (4 * (size + 64)).next_power_of_two().max(1 << 20)
}

fn pipe_rtt(size: usize) -> Contender {
    let a = unique("rt-pipe");
    let p = Pipe::create_with(&a, pipe_capacity(size), &spin()).unwrap();
    let side = Proc::spawn("pipe-echo", &[a, size.to_string()]);
    let out = filled(size);
    let mut buf = filled(size);
    Contender::new("Pipe", side, move |n| {
        for _ in 0..n {
            p.send_bytes(&out).unwrap();
            assert_eq!(p.recv_bytes_into(&mut buf).unwrap(), out.len());
        }
    })
}

fn pipe_stream(size: usize) -> Contender {
    let a = unique("st-pipe");
    let p = Pipe::create_with(&a, pipe_capacity(size), &spin()).unwrap();
    let side = Proc::spawn("pipe-produce", &[a, size.to_string()]);
    let mut buf = filled(size);
    Contender::new("Pipe", side, move |n| {
        for _ in 0..n {
            assert_eq!(p.recv_bytes_into(&mut buf).unwrap(), buf.len());
        }
    })
}

fn queue_rtt<const N: usize>() -> Contender {
    let (a, b) = (unique("rt-qa"), unique("rt-qb"));
    let ping = Queue::<[u8; N]>::create_with(&a, 4, &spin()).unwrap();
    let pong = Queue::<[u8; N]>::create_with(&b, 4, &spin()).unwrap();
    let side = Proc::spawn("queue-echo", &[a, b, N.to_string()]);
    Contender::new("Queue", side, move |n| {
        for i in 0..n {
            ping.put(msg::<N>(i)).unwrap();
            assert_eq!(pong.get().unwrap()[0], i as u8);
        }
    })
}

fn queue_stream<const N: usize>() -> Contender {
    let a = unique("st-q");
    let q = Queue::<[u8; N]>::create_with(&a, stream_capacity(N), &spin()).unwrap();
    let side = Proc::spawn("queue-produce", &[a, N.to_string()]);
    Contender::new("Queue", side, move |n| {
        let mut sum = 0u8;
        for _ in 0..n {
            sum = sum.wrapping_add(q.get().unwrap()[0]);
        }
        std::hint::black_box(sum);
    })
}

/// Reads exactly `buf.len()` bytes from `fd`; false at EOF or error.
pub fn read_exact(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: `buf[got..]` is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        got += n as usize;
    }
    true
}

/// Writes all of `buf` to `fd`; false on error.
pub fn write_all(fd: RawFd, buf: &[u8]) -> bool {
    let mut put = 0;
    while put < buf.len() {
        // SAFETY: `buf[put..]` is valid for reads of its length.
        let n = unsafe { libc::write(fd, buf[put..].as_ptr().cast(), buf.len() - put) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        put += n as usize;
    }
    true
}

/// Two descriptor pairs: (our read, our write, peer read, peer write), from
/// two pipes or one socketpair. The peer's ends are inherited (no CLOEXEC).
fn fd_pairs(socket: bool) -> [RawFd; 4] {
    if socket {
        let mut sv = [0; 2];
        // SAFETY: an array of two fds for socketpair(2).
        assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) }, 0);
        [sv[0], sv[0], sv[1], sv[1]]
    } else {
        let (mut p1, mut p2) = ([0; 2], [0; 2]);
        // SAFETY: arrays of two fds for pipe(2).
        assert_eq!(unsafe { libc::pipe(p1.as_mut_ptr()) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::pipe(p2.as_mut_ptr()) }, 0);
        // We write p1, the peer reads it; the peer writes p2, we read it.
        [p2[0], p1[1], p1[0], p2[1]]
    }
}

/// Closes the peer's ends in this process once the peer has them.
fn close_peer_ends(fds: &[RawFd; 4]) {
    let mut done = Vec::new();
    for &fd in &fds[2..] {
        if !done.contains(&fd) {
            // SAFETY: our copy of a descriptor the peer inherited.
            unsafe { libc::close(fd) };
            done.push(fd);
        }
    }
}

fn fd_name(socket: bool) -> &'static str {
    if socket {
        "socketpair"
    } else {
        "unix pipe"
    }
}

fn fd_rtt(size: usize, socket: bool) -> Contender {
    let fds = fd_pairs(socket);
    let side = Proc::spawn("fd-echo", &[fds[2].to_string(), fds[3].to_string(), size.to_string()]);
    close_peer_ends(&fds);
    let out = filled(size);
    let mut buf = filled(size);
    Contender::new(fd_name(socket), side, move |n| {
        for _ in 0..n {
            assert!(write_all(fds[1], &out) && read_exact(fds[0], &mut buf));
        }
    })
}

fn fd_stream(size: usize, socket: bool) -> Contender {
    let fds = fd_pairs(socket);
    let side = Proc::spawn("fd-produce", &[fds[2].to_string(), fds[3].to_string(), size.to_string()]);
    close_peer_ends(&fds);
    let mut buf = filled(size);
    Contender::new(fd_name(socket), side, move |n| {
        for _ in 0..n {
            assert!(read_exact(fds[0], &mut buf));
        }
    })
}

/// A system limit from `/proc/sys/fs/mqueue/`.
fn mq_limit(file: &str, default: usize) -> usize {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{file}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// The fragment size for `size`-byte messages over a POSIX message queue
/// (a message above `msgsize_max`, 8 KiB by default, is sent in fragments).
pub fn mq_fragment(size: usize) -> usize {
    size.min(mq_limit("msgsize_max", 8192))
}

/// Opens (or creates) a POSIX message queue for `size`-byte messages.
pub fn mq_open(name: &str, size: usize, create: bool) -> libc::mqd_t {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: `mq_attr` is plain integers; zero is a valid start.
    let mut attr: libc::mq_attr = unsafe { core::mem::zeroed() };
    attr.mq_maxmsg = mq_limit("msg_max", 10).min(8) as _;
    attr.mq_msgsize = mq_fragment(size) as _;
    let flags = libc::O_RDWR | if create { libc::O_CREAT | libc::O_EXCL } else { 0 };
    // SAFETY: a valid C string, flags, mode and attribute pointer.
    let q = unsafe { libc::mq_open(c.as_ptr(), flags, 0o600, &attr as *const libc::mq_attr) };
    assert!(q >= 0, "mq_open {name}: {}", std::io::Error::last_os_error());
    q
}

/// Sends `msg` in fragments of `frag` bytes.
pub fn mq_send_all(q: libc::mqd_t, msg: &[u8], frag: usize) -> bool {
    msg.chunks(frag).all(|c| {
        // SAFETY: a valid descriptor and a buffer of `c.len()` bytes.
        unsafe { libc::mq_send(q, c.as_ptr().cast(), c.len(), 0) == 0 }
    })
}

/// Receives `buf.len()` bytes in fragments of `frag` bytes.
pub fn mq_recv_all(q: libc::mqd_t, buf: &mut [u8], frag: usize) -> bool {
    buf.chunks_mut(frag).all(|c| {
        // SAFETY: a valid descriptor and a buffer of at least `frag` bytes
        // (the queue's message size) — `c` may be shorter only for the last
        // fragment, which the sender also sent shorter.
        unsafe { libc::mq_receive(q, c.as_mut_ptr().cast(), frag.max(c.len()), core::ptr::null_mut()) >= 0 }
    })
}

/// A POSIX message queue pair, unlinked on drop.
struct MqPair {
    names: [String; 2],
    qs: [libc::mqd_t; 2],
}

impl MqPair {
    fn new(size: usize) -> Self {
        let names = [format!("/{}", unique("mq-a")), format!("/{}", unique("mq-b"))];
        let qs = [mq_open(&names[0], size, true), mq_open(&names[1], size, true)];
        MqPair { names, qs }
    }
}

impl Drop for MqPair {
    fn drop(&mut self) {
        for (n, q) in self.names.iter().zip(self.qs) {
            let c = std::ffi::CString::new(n.as_str()).unwrap();
            // SAFETY: our own descriptor and a valid C string.
            unsafe {
                libc::mq_close(q);
                libc::mq_unlink(c.as_ptr());
            }
        }
    }
}

fn mq_rtt(size: usize) -> Contender {
    let mq = MqPair::new(size);
    let side = Proc::spawn("mq-echo", &[mq.names[0].clone(), mq.names[1].clone(), size.to_string()]);
    let out = filled(size);
    let mut buf = filled(size);
    let frag = mq_fragment(size);
    Contender::new("POSIX mq", side, move |n| {
        std::hint::black_box(&mq); // the whole pair (its drop unlinks), not only `mq.qs`
        for _ in 0..n {
            assert!(mq_send_all(mq.qs[0], &out, frag) && mq_recv_all(mq.qs[1], &mut buf, frag));
        }
    })
}

fn mq_stream(size: usize) -> Contender {
    let mq = MqPair::new(size);
    let side = Proc::spawn("mq-produce", &[mq.names[0].clone(), size.to_string()]);
    let mut buf = filled(size);
    let frag = mq_fragment(size);
    Contender::new("POSIX mq", side, move |n| {
        std::hint::black_box(&mq); // the whole pair (its drop unlinks), not only `mq.qs`
        for _ in 0..n {
            assert!(mq_recv_all(mq.qs[0], &mut buf, frag));
        }
    })
}

// ---------------------------------------------------------------------------
// Peer processes.

/// In a re-executed peer: runs its role and returns true (the caller then
/// returns from `main`); returns false in the parent. Roles this module does
/// not know go to `extra(role, args)`, which returns false for an unknown
/// role.
pub fn peer_main(extra: impl FnOnce(&str, &[String]) -> bool) -> bool {
    let Ok(role) = std::env::var(PEER_ENV) else { return false };
    pin(PEER_CPU);
    let args: Vec<String> = std::env::var(ARGS_ENV).unwrap_or_default().split('\x1f').map(str::to_owned).collect();
    let size = || args.last().and_then(|s| s.parse::<usize>().ok()).unwrap_or(8);
    match role.as_str() {
        "canary" => {
            let word = SharedWord::open(&args[0]);
            let w = word.get();
            let mut expect = 1u64;
            serve(|n| {
                for _ in 0..n {
                    // Acquire/Release: pairs with the timing side's Release store / Acquire load.
                    while w.load(Ordering::Acquire) != expect {
                        std::hint::spin_loop();
                    }
                    w.store(expect + 1, Ordering::Release);
                    expect += 2;
                }
            });
        }
        "spsc-echo" => by_size!(size(), spsc_echo(&args)),
        "spsc-produce" => by_size!(size(), spsc_produce(&args)),
        "queue-echo" => by_size!(size(), queue_echo(&args)),
        "queue-produce" => by_size!(size(), queue_produce(&args)),
        "pipe-echo" => {
            let p = Pipe::open_with(&args[0], &spin()).unwrap();
            let mut buf = filled(size());
            serve(|n| {
                for _ in 0..n {
                    let k = p.recv_bytes_into(&mut buf).unwrap();
                    p.send_bytes(&buf[..k]).unwrap();
                }
            });
        }
        "pipe-produce" => {
            let p = Pipe::open_with(&args[0], &spin()).unwrap();
            let out = filled(size());
            serve(|n| {
                for _ in 0..n {
                    p.send_bytes(&out).unwrap();
                }
            });
        }
        "fd-echo" => {
            let (r, w): (RawFd, RawFd) = (args[0].parse().unwrap(), args[1].parse().unwrap());
            let mut buf = filled(size());
            serve(|n| {
                for _ in 0..n {
                    assert!(read_exact(r, &mut buf) && write_all(w, &buf));
                }
            });
        }
        "fd-produce" => {
            let w: RawFd = args[1].parse().unwrap();
            let out = filled(size());
            serve(|n| {
                for _ in 0..n {
                    assert!(write_all(w, &out));
                }
            });
        }
        "mq-echo" => {
            let (a, b) = (mq_open(&args[0], size(), false), mq_open(&args[1], size(), false));
            let mut buf = filled(size());
            let frag = mq_fragment(size());
            serve(|n| {
                for _ in 0..n {
                    assert!(mq_recv_all(a, &mut buf, frag) && mq_send_all(b, &buf, frag));
                }
            });
        }
        "mq-produce" => {
            let q = mq_open(&args[0], size(), false);
            let out = filled(size());
            let frag = mq_fragment(size());
            serve(|n| {
                for _ in 0..n {
                    assert!(mq_send_all(q, &out, frag));
                }
            });
        }
        r => {
            if !extra(r, &args) {
                panic!("unknown bench peer role {r}");
            }
        }
    }
    true
}

fn spsc_echo<const N: usize>(args: &[String]) {
    let mut rx = Ring::<[u8; N]>::open_with(&args[0], &spin()).unwrap().consumer().unwrap();
    let mut tx = Ring::<[u8; N]>::open_with(&args[1], &spin()).unwrap().producer().unwrap();
    let mut buf = boxed::<N>();
    serve(|n| {
        for _ in 0..n {
            spsc_recv(&mut rx, &mut buf);
            spsc_send(&mut tx, &buf);
        }
    });
}

fn spsc_produce<const N: usize>(args: &[String]) {
    let mut tx = Ring::<[u8; N]>::open_with(&args[0], &spin()).unwrap().producer().unwrap();
    let mut out = boxed::<N>();
    serve(|n| {
        for i in 0..n {
            out[0] = i as u8;
            spsc_send(&mut tx, &out);
        }
    });
}

fn queue_echo<const N: usize>(args: &[String]) {
    let a = Queue::<[u8; N]>::open_with(&args[0], &spin()).unwrap();
    let b = Queue::<[u8; N]>::open_with(&args[1], &spin()).unwrap();
    serve(|n| {
        for _ in 0..n {
            b.put(a.get().unwrap()).unwrap();
        }
    });
}

fn queue_produce<const N: usize>(args: &[String]) {
    let q = Queue::<[u8; N]>::open_with(&args[0], &spin()).unwrap();
    serve(|n| {
        for i in 0..n {
            q.put(msg::<N>(i)).unwrap();
        }
    });
}
