//! Pipe and Queue across processes against the kernel's IPC and
//! crossbeam-channel. Children are this binary re-executed with a role.
//!
//! `cargo bench --bench pipe -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::os::fd::RawFd;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ringshm::{Options, Pipe, Queue, WaitStrategy};

const ROLE: &str = "RINGSHM_BENCH_ROLE";
const MSG: usize = 64;
const END: u64 = u64::MAX;

/// A child process killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(role: &str, args: &[String]) -> Peer {
    Peer(Command::new(std::env::current_exe().unwrap()).env(ROLE, role).args(args).spawn().unwrap())
}

fn name(tag: &str) -> String {
    format!("rshm-bench-{tag}-{}", std::process::id())
}

fn wait_strategy(s: &str) -> WaitStrategy {
    if s == "spin" {
        WaitStrategy::Spin
    } else {
        WaitStrategy::Adaptive
    }
}

fn read_exact(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: `buf[got..]` is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n <= 0 {
            return false;
        }
        got += n as usize;
    }
    true
}

fn write_all(fd: RawFd, buf: &[u8]) {
    let mut put = 0;
    while put < buf.len() {
        // SAFETY: `buf[put..]` is valid for reads of its length.
        let n = unsafe { libc::write(fd, buf[put..].as_ptr().cast(), buf.len() - put) };
        assert!(n > 0, "write failed");
        put += n as usize;
    }
}

fn mq_open(name: &str, create: bool) -> libc::mqd_t {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: `mq_attr` is plain integers; zero is a valid start.
    let mut attr: libc::mq_attr = unsafe { core::mem::zeroed() };
    attr.mq_maxmsg = 8;
    attr.mq_msgsize = MSG as _;
    let flags = libc::O_RDWR | if create { libc::O_CREAT } else { 0 };
    // SAFETY: a valid C string, flags, mode and attribute pointer.
    let q = unsafe { libc::mq_open(c.as_ptr(), flags, 0o600, &attr as *const libc::mq_attr) };
    assert!(q >= 0, "mq_open {name}: {}", std::io::Error::last_os_error());
    q
}

/// What a child does.
fn child(role: &str, args: &[String]) {
    match role {
        "pipe-echo" => {
            let p = Pipe::open_with(&args[0], &Options::new().wait(wait_strategy(&args[1]))).unwrap();
            let mut buf = [0u8; 1 << 16];
            while let Ok(n) = p.recv_bytes_into(&mut buf) {
                if p.send_bytes(&buf[..n]).is_err() {
                    break;
                }
            }
        }
        "pipe-sink" => {
            // Receives (copying out) until an empty message, then acknowledges.
            let p = Pipe::open_with(&args[0], &Options::new().wait(wait_strategy(&args[1]))).unwrap();
            let mut buf = vec![0u8; 1 << 17];
            while let Ok(n) = p.recv_bytes_into(&mut buf) {
                if n == 0 && p.send_bytes(b"k").is_err() {
                    break;
                }
                black_box(&buf[..n]);
            }
        }
        "fd-echo" => {
            let (rfd, wfd): (RawFd, RawFd) = (args[0].parse().unwrap(), args[1].parse().unwrap());
            let mut buf = [0u8; MSG];
            while read_exact(rfd, &mut buf) {
                write_all(wfd, &buf);
            }
        }
        "mq-echo" => {
            let (a, b) = (mq_open(&args[0], false), mq_open(&args[1], false));
            let mut buf = [0u8; MSG];
            loop {
                // SAFETY: valid descriptor and buffer of `MSG` bytes.
                let n = unsafe { libc::mq_receive(a, buf.as_mut_ptr().cast(), MSG, core::ptr::null_mut()) };
                if n < 0 {
                    break;
                }
                // SAFETY: as above.
                unsafe { libc::mq_send(b, buf.as_ptr().cast(), n as usize, 0) };
            }
        }
        "queue-consumer" => {
            let q = Queue::<u64>::open(&args[0]).unwrap();
            let ack = Queue::<u64>::open(&args[1]).unwrap();
            let mut buf = [0u64; 256];
            while let Ok(n) = q.get_many(&mut buf) {
                for &v in &buf[..n] {
                    if v == END {
                        ack.put(0).unwrap();
                    }
                }
            }
        }
        "queue-producer" => {
            let q = Queue::<u64>::open(&args[0]).unwrap();
            let ctl = Queue::<u64>::open(&args[1]).unwrap();
            let batch: Vec<u64> = (0..256).collect();
            while let Ok(n) = ctl.get() {
                let mut left = n as usize;
                while left > 0 {
                    let k = left.min(batch.len());
                    q.put_many(&batch[..k]).unwrap();
                    left -= k;
                }
                q.put(END).unwrap();
            }
        }
        _ => panic!("unknown role {role}"),
    }
}

fn round_trips(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip_64B");
    let msg = [7u8; MSG];
    for strat in ["spin", "adaptive"] {
        let n = name(&format!("rt-{strat}"));
        let a = Pipe::create_with(&n, 4096, &Options::new().wait(wait_strategy(strat))).unwrap();
        let _peer = spawn("pipe-echo", &[n.clone(), strat.into()]);
        let mut buf = [0u8; MSG];
        g.bench_function(BenchmarkId::new("ringshm_pipe", strat), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    a.send_bytes(&msg).unwrap();
                    a.recv_bytes_into(&mut buf).unwrap();
                }
                t.elapsed()
            })
        });
    }
    {
        let mut p1 = [0; 2];
        let mut p2 = [0; 2];
        // SAFETY: arrays of two fds for pipe(2); inherited by the child (no CLOEXEC).
        unsafe { assert_eq!(libc::pipe(p1.as_mut_ptr()), 0) };
        // SAFETY: as above.
        unsafe { assert_eq!(libc::pipe(p2.as_mut_ptr()), 0) };
        let _peer = spawn("fd-echo", &[p1[0].to_string(), p2[1].to_string()]);
        let mut buf = [0u8; MSG];
        g.bench_function("unix_pipe", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    write_all(p1[1], &msg);
                    read_exact(p2[0], &mut buf);
                }
                t.elapsed()
            })
        });
        // SAFETY: closing our own descriptors; the child sees EOF.
        unsafe {
            for fd in p1.into_iter().chain(p2) {
                libc::close(fd);
            }
        }
    }
    {
        let mut sv = [0; 2];
        // SAFETY: an array of two fds for socketpair(2).
        unsafe { assert_eq!(libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()), 0) };
        let _peer = spawn("fd-echo", &[sv[1].to_string(), sv[1].to_string()]);
        let mut buf = [0u8; MSG];
        g.bench_function("unix_socketpair", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    write_all(sv[0], &msg);
                    read_exact(sv[0], &mut buf);
                }
                t.elapsed()
            })
        });
        // SAFETY: closing our own descriptors.
        unsafe {
            for fd in sv {
                libc::close(fd);
            }
        }
    }
    {
        let (na, nb) = (format!("/{}-a", name("mq")), format!("/{}-b", name("mq")));
        let (qa, qb) = (mq_open(&na, true), mq_open(&nb, true));
        let _peer = spawn("mq-echo", &[na.clone(), nb.clone()]);
        let mut buf = [0u8; MSG];
        g.bench_function("posix_mq", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    // SAFETY: valid descriptors and buffers of `MSG` bytes.
                    unsafe {
                        libc::mq_send(qa, msg.as_ptr().cast(), MSG, 0);
                        libc::mq_receive(qb, buf.as_mut_ptr().cast(), MSG, core::ptr::null_mut());
                    }
                }
                t.elapsed()
            })
        });
        for n in [na, nb] {
            let c = std::ffi::CString::new(n).unwrap();
            // SAFETY: a valid C string.
            unsafe { libc::mq_unlink(c.as_ptr()) };
        }
    }
    g.finish();
}

fn streaming(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream");
    for len in [64usize, 64 * 1024] {
        g.throughput(Throughput::Bytes(len as u64));
        let n = name(&format!("st-{len}"));
        let a = Pipe::create_with(&n, 1 << 20, &Options::new().wait(WaitStrategy::Spin)).unwrap();
        let _peer = spawn("pipe-sink", &[n.clone(), "spin".into()]);
        let msg = vec![3u8; len];
        let mut ack = [0u8; 8];
        g.bench_function(BenchmarkId::new("ringshm_pipe", len), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    a.send_bytes(&msg).unwrap();
                }
                a.send_bytes(b"").unwrap();
                a.recv_bytes_into(&mut ack).unwrap();
                t.elapsed()
            })
        });
        let mut dst = vec![0u8; len];
        g.bench_function(BenchmarkId::new("memcpy", len), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&msg));
                black_box(&dst);
            })
        });
    }
    g.finish();
}

fn queues(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_u64");
    g.throughput(Throughput::Elements(1));
    for (producers, consumers) in [(1usize, 1usize), (2, 2)] {
        let label = format!("{producers}p{consumers}c");
        let (qn, an, cn) = (name(&format!("q-{label}")), name(&format!("qa-{label}")), name(&format!("qc-{label}")));
        let q = Queue::<u64>::create(&qn, 1024).unwrap();
        let ack = Queue::<u64>::create(&an, 16).unwrap();
        let ctl = Queue::<u64>::create(&cn, 16).unwrap();
        let mut peers: Vec<Peer> = (0..consumers).map(|_| spawn("queue-consumer", &[qn.clone(), an.clone()])).collect();
        if producers > 1 {
            peers.extend((0..producers).map(|_| spawn("queue-producer", &[qn.clone(), cn.clone()])));
        }
        let batch: Vec<u64> = (0..256).collect();
        g.bench_function(BenchmarkId::new("ringshm_queue", &label), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                if producers == 1 {
                    let mut left = iters as usize;
                    while left > 0 {
                        let k = left.min(batch.len());
                        q.put_many(&batch[..k]).unwrap();
                        left -= k;
                    }
                    q.put(END).unwrap();
                    ack.get().unwrap();
                } else {
                    let share = iters / producers as u64;
                    for _ in 0..producers {
                        ctl.put(share.max(1)).unwrap();
                    }
                    for _ in 0..producers {
                        ack.get().unwrap();
                    }
                }
                t.elapsed()
            })
        });
        g.bench_function(BenchmarkId::new("crossbeam_threads", &label), |b| {
            b.iter_custom(|iters| {
                let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
                let share = iters / producers as u64;
                let t = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..producers {
                        let tx = tx.clone();
                        s.spawn(move || {
                            for i in 0..share.max(1) {
                                tx.send(i).unwrap();
                            }
                        });
                    }
                    drop(tx);
                    for _ in 0..consumers {
                        let rx = rx.clone();
                        s.spawn(move || while rx.recv().is_ok() {});
                    }
                });
                t.elapsed()
            })
        });
        q.close();
        ctl.close();
        drop(peers);
    }
    g.finish();
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        child(&role, &args);
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    round_trips(&mut c);
    streaming(&mut c);
    queues(&mut c);
    c.final_summary();
}
