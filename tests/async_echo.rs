//! Async echo across two real processes: tokio current-thread and
//! multi-thread runtimes over two `Queue`s, and smol over a `Pipe` (runtime
//! independence). Every item is counted and checked in order.
#![cfg(feature = "async")]

mod common;

use std::sync::Arc;

use ringshm::{Pipe, Queue};

const N: u64 = 20_000;
const STOP: u64 = u64::MAX;

/// The child: answers every request `v` with `2v + 1`, async, until `STOP`.
fn queue_echo_child(a: &[String]) {
    let req = Queue::<u64>::open(&a[0]).unwrap();
    let resp = Queue::<u64>::open(&a[1]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        loop {
            let v = req.get_async().await.unwrap();
            if v == STOP {
                break;
            }
            resp.put_async(2 * v + 1).await.unwrap();
        }
    });
}

fn queue_echo(test: &str, rt: tokio::runtime::Runtime) {
    if let Some(role) = common::role() {
        assert_eq!(role, "echo");
        return queue_echo_child(&common::args());
    }
    let _wd = common::watchdog(120);
    let (rn, sn) = (common::unique("aecho-req"), common::unique("aecho-resp"));
    let req = Arc::new(Queue::<u64>::create(&rn, 64).unwrap());
    let resp = Arc::new(Queue::<u64>::create(&sn, 64).unwrap());
    let child = common::spawn(test, "echo", &[&rn, &sn]);
    let got = rt.block_on(async {
        let tx = req.clone();
        let producer = tokio::spawn(async move {
            for i in 0..N {
                tx.put_async(i).await.unwrap();
            }
            tx.put_async(STOP).await.unwrap();
        });
        let rx = resp.clone();
        let consumer = tokio::spawn(async move {
            let mut n = 0u64;
            while n < N {
                let v = rx.get_async().await.unwrap();
                assert_eq!(v, 2 * n + 1, "answer {n} out of order");
                n += 1;
            }
            n
        });
        producer.await.unwrap();
        consumer.await.unwrap()
    });
    assert_eq!(got, N);
    common::expect_success(child, 60);
}

#[test]
fn tokio_current_thread_echo() {
    queue_echo(
        "tokio_current_thread_echo",
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
    );
}

#[test]
fn tokio_multi_thread_echo() {
    queue_echo(
        "tokio_multi_thread_echo",
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
    );
}

#[test]
fn smol_pipe_echo() {
    const M: usize = 5_000;
    if let Some(role) = common::role() {
        assert_eq!(role, "echo");
        let p = Pipe::open(&common::args()[0]).unwrap();
        smol::block_on(async {
            // Echo until end-of-file: the parent closed its end.
            while let Ok(m) = p.recv_bytes_async().await {
                p.send_bytes_async(&m).await.unwrap();
            }
        });
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("asmol");
    let p = Pipe::create(&name, 4096).unwrap();
    let child = common::spawn("smol_pipe_echo", "echo", &[&name]);
    smol::block_on(async {
        for i in 0..M {
            let msg = (i as u64).to_le_bytes().repeat(1 + i % 8);
            p.send_bytes_async(&msg).await.unwrap();
            let back = p.recv_bytes_async().await.unwrap();
            assert_eq!(back, msg, "message {i}");
        }
    });
    drop(p);
    common::expect_success(child, 60);
}
