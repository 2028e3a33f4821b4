//! Message transports between two processes: ringshm's `spsc::Ring` and
//! `Pipe` beside iceoryx2 (publish-subscribe), ipc-channel, a Unix pipe, a
//! socketpair and a POSIX message queue, for 8 B, 64 B, 4 KiB and 64 KiB
//! messages; and the blocking `Queue` against crossbeam-channel.
//!
//! # Method (the harness in `benches/harness/mod.rs`)
//!
//! The other side of every contender is this binary re-executed with a
//! role, started before timing, parked between samples (blocked on its
//! control pipe), pinned to CPU 1 while the timed side runs on CPU 0.
//! Memory is pre-faulted by a warm-up. Round trips: `n` times send one
//! message and wait for its echo. Streams: the peer sends `n` messages, the
//! timed side receives `n`. Every side copies the message in and out
//! (ringshm and iceoryx2 included: iceoryx2 samples are filled with
//! `write_from_slice` and read by copying the payload out), and polls as its
//! own benchmarks do: ringshm with `WaitStrategy::Spin`, iceoryx2 by
//! busy-polling `receive()` (as in iceoryx2's `benchmarks/publish-subscribe`),
//! ipc-channel and the kernel transports by blocking. Before each contender
//! the canary (a bare atomic ping-pong between two processes, the floor of
//! any round trip) is timed and printed: about 45 ns in the reference
//! host's fast state, about 400 ns in its slow state.
//!
//! After the criterion groups, an interleaved summary measures every
//! contender of one message size in turn, round after round, with the same
//! iteration count for all of them, and prints medians and ratios within
//! the run (`RINGSHM_BENCH_SUMMARY=0` skips it, `RINGSHM_BENCH_ONLY_SUMMARY=1`
//! runs only it, `RINGSHM_BENCH_ROUNDS=N` sets its rounds).
//!
//! `cargo bench --bench pipe`

mod harness;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use harness::{by_size, Contender, Proc, SIZES};
use iceoryx2::prelude::*;
use ipc_channel::ipc::{bytes_channel, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};
use ringshm::Queue;

// ---------------------------------------------------------------------------
// iceoryx2: publish-subscribe, one service each way.

/// Opens or creates the publish-subscribe service `name`, configured for
/// round trips (a buffer of one, as iceoryx2's own benchmark) or streams.
type Ice = iceoryx2::service::ipc::Service;

fn ice_service(
    node: &Node<Ice>,
    name: &str,
    stream: bool,
) -> iceoryx2::service::port_factory::publish_subscribe::PortFactory<Ice, [u8], ()> {
    let b = node
        .service_builder(&ServiceName::new(name).unwrap())
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0);
    let b = if stream {
        b.subscriber_max_buffer_size(harness::stream_capacity(8).min(256)).enable_safe_overflow(false)
    } else {
        b.subscriber_max_buffer_size(1).enable_safe_overflow(true)
    };
    b.open_or_create().expect("iceoryx2 service")
}

fn ice_node() -> Node<Ice> {
    set_log_level(LogLevel::Error);
    NodeBuilder::new().create::<Ice>().expect("iceoryx2 node")
}

fn ice_rtt(size: usize) -> Contender {
    let (a, b) = (harness::unique("ice-a2b"), harness::unique("ice-b2a"));
    let node = ice_node();
    let (sa, sb) = (ice_service(&node, &a, false), ice_service(&node, &b, false));
    let publisher = sa.publisher_builder().initial_max_slice_len(size).create().unwrap();
    let subscriber = sb.subscriber_builder().create().unwrap();
    let side = Proc::spawn("ice-echo", &[a, b, size.to_string()]).wait_ready();
    let out = harness::filled(size);
    let mut buf = harness::filled(size);
    Contender::new("iceoryx2 publish-subscribe", side, move |n| {
        black_box((&node, &sa, &sb));
        for _ in 0..n {
            publisher.loan_slice_uninit(size).unwrap().write_from_slice(&out).send().unwrap();
            loop {
                if let Some(s) = subscriber.receive().unwrap() {
                    buf.copy_from_slice(s.payload());
                    break;
                }
            }
        }
    })
}

fn ice_stream(size: usize) -> Contender {
    let a = harness::unique("ice-st");
    let node = ice_node();
    let sa = ice_service(&node, &a, true);
    let subscriber = sa.subscriber_builder().create().unwrap();
    let side = Proc::spawn("ice-produce", &[a, size.to_string()]).wait_ready();
    let mut buf = harness::filled(size);
    Contender::new("iceoryx2 publish-subscribe", side, move |n| {
        black_box((&node, &sa));
        let mut got = 0;
        while got < n {
            if let Some(s) = subscriber.receive().unwrap() {
                buf.copy_from_slice(s.payload());
                got += 1;
            }
        }
    })
}

// ---------------------------------------------------------------------------
// ipc-channel: a bytes channel each way, set up through a one-shot server.

type Boot = (IpcBytesSender, IpcBytesReceiver);

fn ipc_connect(role: &str, size: usize) -> (Proc, IpcBytesSender, IpcBytesReceiver) {
    let (server, name) = IpcOneShotServer::<Boot>::new().unwrap();
    let side = Proc::spawn(role, &[name, size.to_string()]);
    let (_, (tx, rx)) = server.accept().unwrap();
    (side, tx, rx)
}

fn ipc_rtt(size: usize) -> Contender {
    let (side, tx, rx) = ipc_connect("ipc-echo", size);
    let out = harness::filled(size);
    Contender::new("ipc-channel", side, move |n| {
        for _ in 0..n {
            tx.send(&out).unwrap();
            assert_eq!(rx.recv().unwrap().len(), out.len());
        }
    })
}

fn ipc_stream(size: usize) -> Contender {
    let (side, _tx, rx) = ipc_connect("ipc-produce", size);
    Contender::new("ipc-channel", side, move |n| {
        for _ in 0..n {
            assert_eq!(rx.recv().unwrap().len(), size);
        }
    })
}

/// The child end: creates both channels, sends the parent its halves.
fn ipc_child(name: &str) -> (IpcBytesSender, IpcBytesReceiver) {
    let boot = IpcSender::<Boot>::connect(name.to_owned()).unwrap();
    let (to_child, from_parent) = bytes_channel().unwrap();
    let (to_parent, from_child) = bytes_channel().unwrap();
    boot.send((to_child, from_child)).unwrap();
    (to_parent, from_parent)
}

// ---------------------------------------------------------------------------
// The blocking Queue against crossbeam-channel (default wait strategy).

fn queue_1p1c() -> Contender {
    let name = harness::unique("q1");
    let q = Queue::<u64>::create(&name, 1024).unwrap();
    let side = Proc::spawn("queue-u64-produce", &[name]);
    Contender::new("ringshm Queue<u64> put/get (2 processes)", side, move |n| {
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(q.get().unwrap());
        }
        black_box(sum);
    })
}

fn crossbeam_1p1c() -> Contender {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
    harness::thread_stream(
        "crossbeam-channel bounded send/recv (2 threads)",
        move |i| tx.send(i).unwrap(),
        move || rx.recv().unwrap(),
    )
}

// ---------------------------------------------------------------------------
// Peers.

fn peer(role: &str, args: &[String]) -> bool {
    let size = || args.last().unwrap().parse::<usize>().unwrap();
    match role {
        "ice-echo" => {
            let node = ice_node();
            let (sa, sb) = (ice_service(&node, &args[0], false), ice_service(&node, &args[1], false));
            let subscriber = sa.subscriber_builder().create().unwrap();
            let publisher = sb.publisher_builder().initial_max_slice_len(size()).create().unwrap();
            harness::ready();
            harness::serve(|n| {
                for _ in 0..n {
                    let s = loop {
                        if let Some(s) = subscriber.receive().unwrap() {
                            break s;
                        }
                    };
                    publisher
                        .loan_slice_uninit(s.payload().len())
                        .unwrap()
                        .write_from_slice(s.payload())
                        .send()
                        .unwrap();
                }
            });
        }
        "ice-produce" => {
            let node = ice_node();
            let sa = ice_service(&node, &args[0], true);
            let publisher = sa
                .publisher_builder()
                .initial_max_slice_len(size())
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()
                .unwrap();
            let out = harness::filled(size());
            harness::ready();
            harness::serve(|n| {
                for _ in 0..n {
                    publisher.loan_slice_uninit(out.len()).unwrap().write_from_slice(&out).send().unwrap();
                }
            });
        }
        "ipc-echo" => {
            let (tx, rx) = ipc_child(&args[0]);
            harness::serve(|n| {
                for _ in 0..n {
                    tx.send(&rx.recv().unwrap()).unwrap();
                }
            });
        }
        "ipc-produce" => {
            let (tx, _rx) = ipc_child(&args[0]);
            let out = harness::filled(size());
            harness::serve(|n| {
                for _ in 0..n {
                    tx.send(&out).unwrap();
                }
            });
        }
        "queue-u64-produce" => {
            let q = Queue::<u64>::open(&args[0]).unwrap();
            harness::serve(|n| {
                for i in 0..n {
                    q.put(i).unwrap();
                }
            });
        }
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------
// Groups.

/// Every round-trip contender for `size`-byte messages.
fn rtt_contenders(size: usize) -> Vec<Contender> {
    vec![
        harness::round_trip("spsc::Ring", size),
        harness::round_trip("Pipe", size),
        ice_rtt(size),
        ipc_rtt(size),
        harness::round_trip("unix pipe", size),
        harness::round_trip("socketpair", size),
        harness::round_trip("POSIX mq", size),
    ]
}

/// Every streaming contender for `size`-byte messages.
fn stream_contenders(size: usize) -> Vec<Contender> {
    vec![
        harness::stream("spsc::Ring", size),
        harness::stream("Pipe", size),
        ice_stream(size),
        ipc_stream(size),
        harness::stream("unix pipe", size),
        harness::stream("socketpair", size),
        harness::stream("POSIX mq", size),
        by_size!(size, memcpy()),
    ]
}

/// In-process `memcpy` of the same message: what a copy costs.
fn memcpy<const N: usize>() -> Contender {
    let src = harness::filled(N);
    let mut dst = harness::filled(N);
    Contender::new("memcpy (1 thread)", harness::Alone, move |n| {
        for _ in 0..n {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        }
    })
}

fn group(c: &mut Criterion, canary: &mut Contender, name: &str, bytes: Option<usize>, ks: &mut [Contender]) {
    let mut g = c.benchmark_group(name);
    if let Some(b) = bytes {
        g.throughput(Throughput::Bytes(b as u64));
    } else {
        g.throughput(Throughput::Elements(1));
    }
    for k in ks.iter_mut() {
        k.calibrate(Duration::from_millis(20)); // warm-up: pre-faults
        let ns = harness::canary_ns(canary, 20_000);
        println!("canary before {name}/{}: {ns:.0} ns ({})", k.name, harness::host_state(ns));
        g.bench_function(BenchmarkId::from_parameter(&k.name), |b| b.iter_custom(|iters| k.run(iters)));
    }
    g.finish();
}

fn human(size: usize) -> String {
    if size >= 1024 {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

fn summary(canary: &mut Contender) {
    let rounds: usize = std::env::var("RINGSHM_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    println!("\n## Interleaved summary ({rounds} rounds, medians, the same iteration count for every contender of a row block)\n");
    println!("| benchmark | contender | median | ÷ canary | contender time / first row's |");
    println!("|---|---|---|---|---|");
    let mut canaries = Vec::new();
    for size in SIZES {
        for (mode, mut ks) in [("round trip", rtt_contenders(size)), ("stream", stream_contenders(size))] {
            // The same n for all: about 40 ms for the slowest contender, but at
            // least 2000, so that the fastest one's sample is not a few µs.
            let n = ks.iter_mut().map(|k| k.calibrate(Duration::from_millis(40))).min().unwrap().max(2000);
            let mut block_canary = Vec::new();
            let iters = vec![n; ks.len()];
            let ns =
                harness::interleave(&mut ks, &iters, rounds, |_| block_canary.push(harness::canary_ns(canary, 20_000)));
            let floor = harness::median(&mut block_canary);
            canaries.push(floor);
            for (k, t) in ks.iter().zip(&ns) {
                let fig = if mode == "round trip" {
                    format!("{t:.0} ns")
                } else {
                    format!("{:.0} MB/s ({:.2} M msg/s)", size as f64 * 1e3 / t, 1e3 / t)
                };
                println!(
                    "| {mode}, {} (n = {n}) | {} | {fig} | {:.2} | {:.2} |",
                    human(size),
                    k.name,
                    t / floor,
                    t / ns[0]
                );
            }
        }
    }
    let mut q = [queue_1p1c(), crossbeam_1p1c()];
    let n = q.iter_mut().map(|k| k.calibrate(Duration::from_millis(40))).min().unwrap();
    let ns = harness::interleave(&mut q, &[n, n], rounds, |_| {});
    for (k, t) in q.iter().zip(&ns) {
        println!(
            "| Queue<u64> 1 producer 1 consumer (n = {n}) | {} | {:.1} M/s | | {:.2} |",
            k.name,
            1e3 / t,
            t / ns[0]
        );
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
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    for size in SIZES {
        group(&mut c, &mut canary, &format!("round_trip_{}", human(size)), None, &mut rtt_contenders(size));
    }
    for size in SIZES {
        group(&mut c, &mut canary, &format!("stream_{}", human(size)), Some(size), &mut stream_contenders(size));
    }
    group(&mut c, &mut canary, "queue_u64_1p1c", None, &mut [queue_1p1c(), crossbeam_1p1c()]);
    c.final_summary();
    if std::env::var("RINGSHM_BENCH_SUMMARY").as_deref() != Ok("0") && !std::env::args().any(|a| a == "--test") {
        summary(&mut canary);
    }
}
