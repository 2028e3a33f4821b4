//! Broadcast (one publisher, every subscriber gets every message): ringshm's
//! `broadcast::Ring` across processes, beside `spsc::Ring`, the bare atomic
//! ping-pong, iceoryx2 publish-subscribe (processes), and, between threads,
//! `tokio::sync::broadcast` and the `bus` crate, all in the same run.
//!
//! * `fanout_8B/*`: 8-byte messages streamed from one publisher to 1 or 2
//!   subscribers. The figure is the time per message *per subscriber*
//!   (every subscriber receives all `n`).
//! * `round_trip_64B/*`: 64-byte round trips with `WaitStrategy::Spin`: the
//!   timed side publishes on one broadcast ring, the peer process subscribes
//!   and answers on a second broadcast ring or on an `spsc::Ring`.
//!
//! # Method (the harness in `benches/harness/mod.rs`)
//!
//! Every other side (publisher, extra subscriber, echo) is this binary
//! re-executed with a role (or a thread, for tokio and bus), started and
//! subscribed before timing, parked on its control pipe between samples,
//! pinned to CPU 1; the timed side runs on CPU 0. Memory is pre-faulted by a
//! warm-up. Streams have one shape: the peer publishes `n` messages, the
//! timed side receives `n`; with 2 subscribers the second subscriber is one
//! more peer on CPU 1 (it shares that CPU with the publisher: the machine
//! has 2 CPUs). Round trips: `n` times send one message and wait for the
//! answer. ringshm and iceoryx2 copy every message in and out. Waiting:
//! ringshm 1-subscriber streams and round trips use `WaitStrategy::Spin`,
//! the 2-subscriber streams the default strategy; iceoryx2 busy-polls
//! `receive()` (as in its own `benchmarks/publish-subscribe`); tokio
//! busy-polls `try_recv` and its sender waits while `len()` (values not yet
//! seen by every receiver) is the capacity, so no message is lost; bus uses
//! its own blocking `broadcast`/`recv`. The canary (bare atomic ping-pong on
//! one cache line between two processes) is timed and printed before each
//! contender.
//!
//! After the criterion groups, an interleaved summary measures the
//! contenders of each group in turn, round after round, with the canary
//! before each round (`RINGSHM_BENCH_SUMMARY=0` skips it,
//! `RINGSHM_BENCH_ONLY_SUMMARY=1` runs only it, `RINGSHM_BENCH_ROUNDS=N` sets
//! its rounds).
//!
//! `cargo bench --bench broadcast`

mod harness;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use harness::{Contender, Proc, Side};
use iceoryx2::prelude::*;
use ringshm::{broadcast, spsc, Options, WaitStrategy};

type Msg = [u8; 8];
type Big = [u8; 64];
/// Ring capacity (messages) for streams.
const CAP: usize = 4096;

fn spin() -> Options {
    Options::new().wait(WaitStrategy::Spin)
}

fn opts(spinning: bool) -> Options {
    if spinning {
        spin()
    } else {
        Options::new()
    }
}

/// Several parked peers acting as one other side.
struct Many(Vec<Box<dyn Side>>);

impl Side for Many {
    fn start(&mut self, n: u64) {
        self.0.iter_mut().for_each(|s| s.start(n));
    }
    fn finish(&mut self) {
        self.0.iter_mut().for_each(|s| s.finish());
    }
}

/// Receives `n` messages from `rx` into a running sum.
fn drain<T: bytemuck::Pod>(rx: &mut broadcast::Subscriber<T>, n: u64) -> u8 {
    let mut sum = 0u8;
    for _ in 0..n {
        let m = rx.recv().expect("broadcast publisher gone");
        sum = sum.wrapping_add(bytemuck::bytes_of(&m)[0]);
    }
    sum
}

// ---------------------------------------------------------------------------
// ringshm.

/// Fan-out of 8-byte messages to `subs` subscribers: the timed one here,
/// `subs - 1` subscriber processes and a publisher process.
fn bcast_fanout(subs: usize) -> Contender {
    let spinning = subs == 1;
    let name = harness::unique("bc-fan");
    let ring = broadcast::Ring::<Msg>::create_with(&name, CAP, &opts(spinning)).unwrap();
    let mut rx = ring.subscribe().unwrap();
    let flag = if spinning { "spin" } else { "default" }.to_string();
    let mut sides: Vec<Box<dyn Side>> = Vec::new();
    for _ in 1..subs {
        sides.push(Box::new(Proc::spawn("bc-sub", &[name.clone(), flag.clone()]).wait_ready()));
    }
    sides.push(Box::new(Proc::spawn("bc-pub", &[name, flag.clone()]).wait_ready()));
    let label = format!("broadcast::Ring {subs} sub ({flag})");
    Contender::new(label, Many(sides), move |n| {
        black_box(&ring);
        black_box(drain(&mut rx, n));
    })
}

/// Round trip of 64 bytes: publish on a broadcast ring, the peer answers on
/// a broadcast ring (`spsc_back = false`) or an `spsc::Ring`.
fn bcast_rtt(spsc_back: bool) -> Contender {
    let (a, b) = (harness::unique("bc-ping"), harness::unique("bc-pong"));
    let ping = broadcast::Ring::<Big>::create_with(&a, 4, &spin()).unwrap();
    let mut tx = ping.publisher().unwrap();
    let (label, side, mut recv): (_, _, Box<dyn FnMut() -> Big>) = if spsc_back {
        let pong = spsc::Ring::<Big>::create_with(&b, 4, &spin()).unwrap();
        let mut rx = pong.consumer().unwrap();
        let side = Proc::spawn("bc-echo-spsc", &[a, b]).wait_ready();
        ("broadcast out, spsc back", side, Box::new(move || rx.pop().expect("echo gone") as Big))
    } else {
        let pong = broadcast::Ring::<Big>::create_with(&b, 4, &spin()).unwrap();
        let mut rx = pong.subscribe().unwrap();
        let side = Proc::spawn("bc-echo", &[a, b]).wait_ready();
        ("broadcast out, broadcast back", side, Box::new(move || rx.recv().expect("echo gone")))
    };
    let mut out = [0x5au8; 64];
    Contender::new(label, side, move |n| {
        black_box(&ping);
        for i in 0..n {
            out[0] = i as u8;
            tx.send(out).expect("echo gone");
            assert_eq!(recv()[0], i as u8);
        }
    })
}

// ---------------------------------------------------------------------------
// iceoryx2: publish-subscribe.

type Ice = iceoryx2::service::ipc::Service;
type IceFactory = iceoryx2::service::port_factory::publish_subscribe::PortFactory<Ice, [u8], ()>;

fn ice_node() -> Node<Ice> {
    set_log_level(LogLevel::Error);
    NodeBuilder::new().create::<Ice>().expect("iceoryx2 node")
}

/// The service `name` for `subs` subscribers: a buffer of one for round
/// trips (as iceoryx2's own benchmark), a lossless stream buffer otherwise.
fn ice_service(node: &Node<Ice>, name: &str, subs: usize, stream: bool) -> IceFactory {
    let b = node
        .service_builder(&ServiceName::new(name).unwrap())
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(subs)
        .history_size(0);
    let b = if stream {
        b.subscriber_max_buffer_size(256).enable_safe_overflow(false)
    } else {
        b.subscriber_max_buffer_size(1).enable_safe_overflow(true)
    };
    b.open_or_create().expect("iceoryx2 service")
}

/// Busy-polls one sample and copies its payload into `buf`.
fn ice_take(sub: &iceoryx2::port::subscriber::Subscriber<Ice, [u8], ()>, buf: &mut [u8]) {
    loop {
        if let Some(s) = sub.receive().unwrap() {
            buf.copy_from_slice(s.payload());
            return;
        }
    }
}

fn ice_fanout(subs: usize) -> Contender {
    let name = harness::unique("ice-fan");
    let node = ice_node();
    let sv = ice_service(&node, &name, subs, true);
    let sub = sv.subscriber_builder().create().unwrap();
    let mut sides: Vec<Box<dyn Side>> = Vec::new();
    for _ in 1..subs {
        sides.push(Box::new(Proc::spawn("ice-sub", &[name.clone(), subs.to_string()]).wait_ready()));
    }
    sides.push(Box::new(Proc::spawn("ice-pub", &[name, subs.to_string()]).wait_ready()));
    let mut buf = [0u8; 8];
    Contender::new(format!("iceoryx2 pub-sub {subs} sub"), Many(sides), move |n| {
        black_box((&node, &sv));
        for _ in 0..n {
            ice_take(&sub, &mut buf);
        }
        black_box(buf);
    })
}

fn ice_rtt() -> Contender {
    let (a, b) = (harness::unique("ice-a"), harness::unique("ice-b"));
    let node = ice_node();
    let (sa, sb) = (ice_service(&node, &a, 1, false), ice_service(&node, &b, 1, false));
    let publisher = sa.publisher_builder().initial_max_slice_len(64).create().unwrap();
    let sub = sb.subscriber_builder().create().unwrap();
    let side = Proc::spawn("ice-echo", &[a, b]).wait_ready();
    let out = [0x5au8; 64];
    let mut buf = [0u8; 64];
    Contender::new("iceoryx2 pub-sub", side, move |n| {
        black_box((&node, &sa, &sb));
        for _ in 0..n {
            publisher.loan_slice_uninit(64).unwrap().write_from_slice(&out).send().unwrap();
            ice_take(&sub, &mut buf);
        }
    })
}

// ---------------------------------------------------------------------------
// Between threads: tokio::sync::broadcast and bus.

fn tokio_fanout(subs: usize) -> Contender {
    use tokio::sync::broadcast::error::TryRecvError;
    let (tx, mut rx) = tokio::sync::broadcast::channel::<u64>(CAP);
    let poll = |rx: &mut tokio::sync::broadcast::Receiver<u64>| loop {
        match rx.try_recv() {
            Ok(v) => return v,
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("tokio broadcast: {e}"),
        }
    };
    let mut sides: Vec<Box<dyn Side>> = Vec::new();
    for _ in 1..subs {
        let mut r = tx.subscribe();
        sides.push(Box::new(harness::Thread::spawn(move |n| {
            (0..n).for_each(|_| {
                black_box(poll(&mut r));
            })
        })));
    }
    sides.push(Box::new(harness::Thread::spawn(move |n| {
        for i in 0..n {
            while tx.len() >= CAP {
                std::hint::spin_loop();
            }
            tx.send(i).unwrap();
        }
    })));
    Contender::new(format!("tokio::sync::broadcast {subs} sub (threads)"), Many(sides), move |n| {
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(poll(&mut rx));
        }
        black_box(sum);
    })
}

fn bus_fanout(subs: usize) -> Contender {
    let mut bus = bus::Bus::<u64>::new(CAP);
    let mut rx = bus.add_rx();
    let mut sides: Vec<Box<dyn Side>> = Vec::new();
    for _ in 1..subs {
        let mut r = bus.add_rx();
        sides.push(Box::new(harness::Thread::spawn(move |n| {
            (0..n).for_each(|_| {
                black_box(r.recv().unwrap());
            })
        })));
    }
    sides.push(Box::new(harness::Thread::spawn(move |n| (0..n).for_each(|i| bus.broadcast(i)))));
    Contender::new(format!("bus {subs} sub (threads)"), Many(sides), move |n| {
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(rx.recv().unwrap());
        }
        black_box(sum);
    })
}

// ---------------------------------------------------------------------------
// Peers.

fn peer(role: &str, args: &[String]) -> bool {
    let spinning = || args.get(1).map(String::as_str) == Some("spin");
    let subs = || args[1].parse::<usize>().unwrap();
    match role {
        "bc-pub" => {
            let ring = broadcast::Ring::<Msg>::open_with(&args[0], &opts(spinning())).unwrap();
            let mut tx = ring.publisher().unwrap();
            harness::ready();
            harness::serve(|n| {
                for i in 0..n {
                    tx.send(i.to_le_bytes()).expect("broadcast poisoned");
                }
            });
        }
        "bc-sub" => {
            let ring = broadcast::Ring::<Msg>::open_with(&args[0], &opts(spinning())).unwrap();
            let mut rx = ring.subscribe().unwrap();
            harness::ready();
            harness::serve(|n| {
                black_box(drain(&mut rx, n));
            });
        }
        "bc-echo" | "bc-echo-spsc" => {
            let mut rx = broadcast::Ring::<Big>::open_with(&args[0], &spin()).unwrap().subscribe().unwrap();
            let mut send: Box<dyn FnMut(Big)> = if role == "bc-echo" {
                let mut tx = broadcast::Ring::<Big>::open_with(&args[1], &spin()).unwrap().publisher().unwrap();
                Box::new(move |m| tx.send(m).expect("broadcast poisoned"))
            } else {
                let mut tx = spsc::Ring::<Big>::open_with(&args[1], &spin()).unwrap().producer().unwrap();
                Box::new(move |m| tx.push(m).expect("spsc peer gone"))
            };
            harness::ready();
            harness::serve(|n| {
                for _ in 0..n {
                    send(rx.recv().expect("broadcast publisher gone"));
                }
            });
        }
        "ice-pub" => {
            let node = ice_node();
            let sv = ice_service(&node, &args[0], subs(), true);
            let publisher = sv
                .publisher_builder()
                .initial_max_slice_len(8)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()
                .unwrap();
            harness::ready();
            harness::serve(|n| {
                for i in 0..n {
                    publisher.loan_slice_uninit(8).unwrap().write_from_slice(&i.to_le_bytes()).send().unwrap();
                }
            });
        }
        "ice-sub" => {
            let node = ice_node();
            let sv = ice_service(&node, &args[0], subs(), true);
            let sub = sv.subscriber_builder().create().unwrap();
            let mut buf = [0u8; 8];
            harness::ready();
            harness::serve(|n| {
                for _ in 0..n {
                    ice_take(&sub, &mut buf);
                }
            });
        }
        "ice-echo" => {
            let node = ice_node();
            let (sa, sb) = (ice_service(&node, &args[0], 1, false), ice_service(&node, &args[1], 1, false));
            let sub = sa.subscriber_builder().create().unwrap();
            let publisher = sb.publisher_builder().initial_max_slice_len(64).create().unwrap();
            let mut buf = [0u8; 64];
            harness::ready();
            harness::serve(|n| {
                for _ in 0..n {
                    ice_take(&sub, &mut buf);
                    publisher.loan_slice_uninit(64).unwrap().write_from_slice(&buf).send().unwrap();
                }
            });
        }
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------
// Groups.

fn fanout_contenders() -> Vec<Contender> {
    vec![
        harness::stream("spsc::Ring", 8),
        bcast_fanout(1),
        bcast_fanout(2),
        ice_fanout(1),
        ice_fanout(2),
        tokio_fanout(1),
        tokio_fanout(2),
        bus_fanout(1),
        bus_fanout(2),
    ]
}

fn rtt_contenders() -> Vec<Contender> {
    vec![harness::canary(), bcast_rtt(false), bcast_rtt(true), harness::round_trip("spsc::Ring", 64), ice_rtt()]
}

fn group(c: &mut Criterion, canary: &mut Contender, name: &str, ks: &mut [Contender]) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    for k in ks.iter_mut() {
        k.calibrate(Duration::from_millis(20)); // warm-up: pre-faults
        let ns = harness::canary_ns(canary, 20_000);
        println!("canary before {name}/{}: {ns:.0} ns ({})", k.name, harness::host_state(ns));
        g.bench_function(BenchmarkId::from_parameter(&k.name), |b| b.iter_custom(|iters| k.run(iters)));
    }
    g.finish();
}

fn summary(canary: &mut Contender) {
    let rounds: usize = std::env::var("RINGSHM_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    println!("\n## Interleaved summary ({rounds} rounds, medians, canary before each round)\n");
    println!("| benchmark | contender | median | ÷ canary | ÷ first row |");
    println!("|---|---|---|---|---|");
    let mut canaries = Vec::new();
    for (mode, mut ks) in [("fan-out 8 B", fanout_contenders()), ("round trip 64 B", rtt_contenders())] {
        // Each contender gets about 30 ms per sample.
        let iters: Vec<u64> = ks.iter_mut().map(|k| k.calibrate(Duration::from_millis(30)).max(2000)).collect();
        let mut block = Vec::new();
        let ns = harness::interleave(&mut ks, &iters, rounds, |_| block.push(harness::canary_ns(canary, 20_000)));
        let floor = harness::median(&mut block);
        canaries.push(floor);
        for (k, t) in ks.iter().zip(&ns) {
            let fig = if mode.starts_with("fan") {
                format!("{:.1} M msg/s per subscriber ({t:.2} ns)", 1e3 / t)
            } else {
                format!("{t:.0} ns")
            };
            println!("| {mode} | {} | {fig} | {:.2} | {:.2} |", k.name, t / floor, t / ns[0]);
        }
    }
    let c = harness::median(&mut canaries);
    println!("\ncanary (bare atomic ping-pong), median over the run: {c:.0} ns ({})", harness::host_state(c));
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
    group(&mut c, &mut canary, "fanout_8B", &mut fanout_contenders());
    group(&mut c, &mut canary, "round_trip_64B", &mut rtt_contenders());
    c.final_summary();
    if std::env::var("RINGSHM_BENCH_SUMMARY").as_deref() != Ok("0") && !std::env::args().any(|a| a == "--test") {
        summary(&mut canary);
    }
}
