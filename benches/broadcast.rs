//! Broadcast across processes, against `spsc::Ring` in the same run:
//!
//! * `fanout_8B/*`: streaming 8-byte messages from one publisher to 1 or 2
//!   subscriber processes (lossless: the publisher's rate is the slowest
//!   subscriber's), and `spsc::Ring` streaming as the baseline;
//! * `rtt_64B/*`: a 64-byte round trip through two broadcast rings with
//!   `WaitStrategy::Spin`, and the same through two `spsc::Ring`s.
//!
//! Subscriber processes are this bench binary started again with
//! `RINGSHM_BENCH_BCAST` set. `cargo bench --bench broadcast`.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use ringshm::{broadcast, spsc, Options, WaitStrategy};

const ROLE: &str = "RINGSHM_BENCH_BCAST";

fn unique(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("rshm-bench-bc-{tag}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn spawn(role: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .env(ROLE, format!("{role}:{name}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn bench child")
}

/// Child side: runs until the other side is gone.
fn child(spec: &str) {
    let (role, name) = spec.split_once(':').expect("role:name");
    let spin = Options::new().wait(WaitStrategy::Spin);
    match role {
        "sub" => {
            let mut rx = broadcast::Ring::<u64>::open(name).unwrap().subscribe().unwrap();
            let mut buf = [0u64; 256];
            loop {
                if rx.recv_slice(&mut buf) == 0 && rx.recv().is_err() {
                    break;
                }
            }
        }
        "spsc" => {
            let mut rx = spsc::Ring::<u64>::open(name).unwrap().consumer().unwrap();
            let mut buf = [0u64; 256];
            loop {
                if rx.pop_slice(&mut buf) == 0 && rx.pop().is_err() {
                    break;
                }
            }
        }
        "echo" => {
            let mut rx =
                broadcast::Ring::<[u8; 64]>::open_with(&format!("{name}-ping"), &spin).unwrap().subscribe().unwrap();
            let mut tx =
                broadcast::Ring::<[u8; 64]>::open_with(&format!("{name}-pong"), &spin).unwrap().publisher().unwrap();
            while let Ok(m) = rx.recv() {
                if tx.send(m).is_err() {
                    break;
                }
            }
        }
        "spsc-echo" => {
            let mut rx = spsc::Ring::<[u8; 64]>::open_with(&format!("{name}-ping"), &spin).unwrap().consumer().unwrap();
            let mut tx = spsc::Ring::<[u8; 64]>::open_with(&format!("{name}-pong"), &spin).unwrap().producer().unwrap();
            while let Ok(m) = rx.pop() {
                if tx.push(m).is_err() {
                    break;
                }
            }
        }
        other => panic!("unknown bench role {other}"),
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "bench child did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout_8B");
    g.throughput(Throughput::Elements(1));
    for subs in [1usize, 2] {
        let name = unique("fan");
        let ring = broadcast::Ring::<u64>::create(&name, 4096).unwrap();
        let kids: Vec<Child> = (0..subs).map(|_| spawn("sub", &name)).collect();
        wait_until(|| ring.subscribers() == subs);
        let mut tx = ring.publisher().unwrap();
        g.bench_function(format!("broadcast_{subs}_sub"), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for i in 0..iters {
                    tx.send(i).unwrap();
                }
                t.elapsed()
            })
        });
        drop(tx);
        for mut k in kids {
            k.wait().unwrap();
        }
    }
    let name = unique("spsc");
    let ring = spsc::Ring::<u64>::create(&name, 4096).unwrap();
    let mut kid = spawn("spsc", &name);
    let mut tx = ring.producer().unwrap();
    g.bench_function("spsc", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for i in 0..iters {
                tx.push(i).unwrap();
            }
            t.elapsed()
        })
    });
    drop(tx);
    kid.wait().unwrap();
    g.finish();
}

fn rtt(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtt_64B");
    let spin = Options::new().wait(WaitStrategy::Spin);
    {
        let name = unique("rtt");
        let ping = broadcast::Ring::<[u8; 64]>::create_with(&format!("{name}-ping"), 64, &spin).unwrap();
        let pong = broadcast::Ring::<[u8; 64]>::create_with(&format!("{name}-pong"), 64, &spin).unwrap();
        let mut rx = pong.subscribe().unwrap();
        let mut kid = spawn("echo", &name);
        wait_until(|| ping.subscribers() == 1);
        let mut tx = ping.publisher().unwrap();
        g.bench_function("broadcast", |b| {
            b.iter(|| {
                tx.send([7; 64]).unwrap();
                rx.recv().unwrap()
            })
        });
        drop(tx);
        kid.wait().unwrap();
    }
    {
        let name = unique("rtt-spsc");
        let ping = spsc::Ring::<[u8; 64]>::create_with(&format!("{name}-ping"), 64, &spin).unwrap();
        let pong = spsc::Ring::<[u8; 64]>::create_with(&format!("{name}-pong"), 64, &spin).unwrap();
        let mut rx = pong.consumer().unwrap();
        let mut tx = ping.producer().unwrap();
        let mut kid = spawn("spsc-echo", &name);
        g.bench_function("spsc", |b| {
            b.iter(|| {
                tx.push([7; 64]).unwrap();
                rx.pop().unwrap()
            })
        });
        drop(tx);
        kid.wait().unwrap();
    }
    g.finish();
}

criterion_group!(benches, fanout, rtt);

fn main() {
    if let Ok(spec) = std::env::var(ROLE) {
        return child(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
