//! Async round trips across two processes: 64-byte messages over a `Pipe`
//! with `send_bytes_async`/`recv_bytes_async` on tokio's current-thread
//! runtime, against the blocking `Adaptive` round trip and against tokio's
//! `UnixStream`.
//!
//! `cargo bench --features async --bench async` (`-- --quick` for a short run)
//!
//! # Method
//! - Every peer is a long-lived child process (this binary with a role),
//!   started before any timing; each echoes what it receives.
//! - Contenders are *interleaved*: each round times every contender once, in
//!   the same order, and the table reports per-contender medians over the
//!   rounds, so a change of host state affects all of them alike.
//! - Before each contender a bare atomic ping-pong between two processes
//!   (the *canary*) is timed and printed: it says which host state a figure
//!   came from, and ratios are only compared within one run.
//! - "busy": the next request goes out as soon as the answer is in (the peer
//!   is still spinning or just parked). "idle": the client sleeps 200 µs
//!   before each request, so the peer's future is registered with the waiter
//!   thread (or its thread is asleep) when the message lands; only the round
//!   trip itself is timed.

use std::hint::black_box;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ringshm::{Options, Pipe, Value, WaitStrategy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROLE: &str = "RINGSHM_BENCH_ROLE";
const MSG: usize = 64;

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
    format!("rshm-bench-async-{tag}-{}", std::process::id())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn adaptive() -> Options {
    Options::new().wait(WaitStrategy::Adaptive)
}

/// What a child does.
fn child(role: &str, args: &[String]) {
    match role {
        "async-echo" => {
            let p = Pipe::open_with(&args[0], &adaptive()).unwrap();
            rt().block_on(async {
                while let Ok(m) = p.recv_bytes_async().await {
                    if p.send_bytes_async(&m).await.is_err() {
                        break;
                    }
                }
            });
        }
        "blocking-echo" => {
            let p = Pipe::open_with(&args[0], &adaptive()).unwrap();
            let mut buf = [0u8; 4096];
            while let Ok(n) = p.recv_bytes_into(&mut buf) {
                if p.send_bytes(&buf[..n]).is_err() {
                    break;
                }
            }
        }
        "unix-echo" => {
            let fd: RawFd = args[0].parse().unwrap();
            // SAFETY: the parent passed us this end of a socketpair, inherited.
            let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
            s.set_nonblocking(true).unwrap();
            rt().block_on(async {
                let mut s = tokio::net::UnixStream::from_std(s).unwrap();
                let mut buf = [0u8; MSG];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
        }
        "canary" => {
            let v = Value::<u64>::open(&args[0]).unwrap();
            // Answers every odd value with the next even one, until u64::MAX.
            loop {
                let x = v.load();
                if x == u64::MAX {
                    break;
                }
                if x % 2 == 1 {
                    v.store(x + 1);
                }
                std::hint::spin_loop();
            }
        }
        _ => panic!("unknown role {role}"),
    }
}

/// Nanoseconds per operation of `n` operations timed by `f`.
fn per_op(n: u32, f: impl FnOnce() -> Duration) -> f64 {
    f().as_nanos() as f64 / f64::from(n)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        return child(&role, &args);
    }
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let (rounds, busy_n, idle_n) = if quick { (2, 500, 50) } else { (9, 20_000, 1_000) };
    let msg = [7u8; MSG];

    let canary_name = name("canary");
    let canary = Value::<u64>::create(&canary_name, 0).unwrap();
    let _canary_peer = spawn("canary", &[canary_name]);
    let mut ping = 1u64;
    let mut run_canary = move || {
        per_op(10_000, || {
            let t = Instant::now();
            for _ in 0..10_000 {
                canary.store(ping);
                while canary.load() != ping + 1 {
                    std::hint::spin_loop();
                }
                ping += 2;
            }
            t.elapsed()
        })
    };

    let an = name("async");
    let ap = Pipe::create_with(&an, 4096, &adaptive()).unwrap();
    let _ap_peer = spawn("async-echo", &[an]);
    let bn = name("blocking");
    let bp = Pipe::create_with(&bn, 4096, &adaptive()).unwrap();
    let _bp_peer = spawn("blocking-echo", &[bn]);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let theirs_fd = theirs.into_raw_fd();
    // SAFETY: clears close-on-exec on our own descriptor so the child inherits it.
    unsafe { assert_eq!(libc::fcntl(theirs_fd, libc::F_SETFD, 0), 0) };
    let _us_peer = spawn("unix-echo", &[theirs_fd.to_string()]);
    // SAFETY: our copy of the child's end; the child inherited its own.
    unsafe { libc::close(theirs_fd) };
    ours.set_nonblocking(true).unwrap();
    let rt = rt();
    let us_cell = std::cell::RefCell::new(rt.block_on(async { tokio::net::UnixStream::from_std(ours).unwrap() }));

    type Run<'a> = Box<dyn FnMut(bool) -> f64 + 'a>;
    let async_rt = &rt;
    let mut contenders: Vec<(&str, Run<'_>)> = Vec::new();
    for idle in [false, true] {
        let n = if idle { idle_n } else { busy_n };
        let ap = &ap;
        contenders.push((
            if idle { "async Pipe, tokio ct (idle)" } else { "async Pipe, tokio ct (busy)" },
            Box::new(move |_| {
                per_op(n, || {
                    async_rt.block_on(async {
                        let mut spent = Duration::ZERO;
                        for _ in 0..n {
                            if idle {
                                std::thread::sleep(Duration::from_micros(200));
                            }
                            let t = Instant::now();
                            ap.send_bytes_async(&msg).await.unwrap();
                            black_box(ap.recv_bytes_async().await.unwrap());
                            spent += t.elapsed();
                        }
                        spent
                    })
                })
            }),
        ));
    }
    {
        let bp = &bp;
        contenders.push((
            "blocking Pipe, Adaptive (busy)",
            Box::new(move |_| {
                let mut buf = [0u8; MSG];
                per_op(busy_n, || {
                    let t = Instant::now();
                    for _ in 0..busy_n {
                        bp.send_bytes(&msg).unwrap();
                        bp.recv_bytes_into(&mut buf).unwrap();
                    }
                    t.elapsed()
                })
            }),
        ));
    }
    for idle in [false, true] {
        let n = if idle { idle_n } else { busy_n };
        let us_cell = &us_cell;
        contenders.push((
            if idle { "tokio UnixStream (idle)" } else { "tokio UnixStream (busy)" },
            Box::new(move |_| {
                let mut s = us_cell.borrow_mut();
                per_op(n, || {
                    async_rt.block_on(async {
                        let mut buf = [0u8; MSG];
                        let mut spent = Duration::ZERO;
                        for _ in 0..n {
                            if idle {
                                std::thread::sleep(Duration::from_micros(200));
                            }
                            let t = Instant::now();
                            s.write_all(&msg).await.unwrap();
                            s.read_exact(&mut buf).await.unwrap();
                            spent += t.elapsed();
                        }
                        spent
                    })
                })
            }),
        ));
    }

    let mut results: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let mut canaries = Vec::new();
    for round in 0..rounds {
        for (i, (label, run)) in contenders.iter_mut().enumerate() {
            let c = run_canary();
            canaries.push(c);
            let ns = run(round == 0);
            results[i].push(ns);
            println!("round {round}: canary {c:7.1} ns | {label:32} {ns:9.1} ns");
        }
    }
    println!();
    println!("medians over {rounds} rounds (canary median {:.1} ns):", median(&mut canaries));
    let meds: Vec<f64> = results.iter_mut().map(|r| median(r)).collect();
    for ((label, _), m) in contenders.iter().zip(&meds) {
        println!("  {label:32} {m:9.1} ns");
    }
    println!("  async/blocking (busy):           {:.2}x", meds[0] / meds[2]);
    println!("  UnixStream/async (busy):         {:.2}x", meds[3] / meds[0]);
    println!("  UnixStream/async (idle):         {:.2}x", meds[4] / meds[1]);
    // Tell the canary peer to leave.
    Value::<u64>::open(&name("canary")).map(|v| v.store(u64::MAX)).ok();
}
