//! Broadcast's async twins across real processes: `send_async` waiting for
//! the slowest subscriber, `recv_async` and `stream` fanning out to two
//! subscribers, and the liveness rules (a SIGKILLed publisher ends a waiting
//! `recv_async`; a SIGKILLed subscriber is detached under a waiting
//! `send_async`).
#![cfg(feature = "async")]

mod common;

use std::time::Duration;

use ringshm::{broadcast, Event, RecvError};
use smol::stream::StreamExt;

const N: u64 = 20_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn send_async_fans_out_to_recv_async_and_stream() {
    if let Some(role) = common::role() {
        assert_eq!(role, "publisher");
        let ring = broadcast::Ring::<u64>::open(&common::args()[0]).unwrap();
        let mut tx = ring.publisher().unwrap();
        smol::block_on(async {
            for i in 0..N {
                tx.send_async(i).await.unwrap();
            }
        });
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("abc-fan");
    // A small ring: the publisher waits for the slower subscriber often.
    let ring = broadcast::Ring::<u64>::create(&name, 64).unwrap();
    let mut a = ring.subscribe().unwrap();
    let mut b = ring.subscribe().unwrap();
    let child = common::spawn("send_async_fans_out_to_recv_async_and_stream", "publisher", &[&name]);
    let (na, nb) = rt().block_on(async {
        let fa = async {
            let mut n = 0;
            loop {
                match a.recv_async().await {
                    Ok(v) => {
                        assert_eq!(v, n, "subscriber a: in order, once");
                        n += 1;
                    }
                    Err(RecvError) => break n,
                }
            }
        };
        let fb = async {
            let mut n = 0;
            let mut s = b.stream();
            while let Some(v) = s.next().await {
                assert_eq!(v, n, "subscriber b: in order, once");
                n += 1;
                if n % 1000 == 0 {
                    // Fall behind now and then, so the publisher must wait.
                    tokio::task::yield_now().await;
                }
            }
            n
        };
        tokio::join!(fa, fb)
    });
    assert_eq!((na, nb), (N, N), "every subscriber gets every message, then the end");
    common::expect_success(child, 60);
}

#[test]
fn recv_async_ends_when_the_publisher_is_killed() {
    if let Some(role) = common::role() {
        assert_eq!(role, "publisher");
        let ring = broadcast::Ring::<u64>::open(&common::args()[0]).unwrap();
        let mut tx = ring.publisher().unwrap();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("abc-pubkill");
    let ring = broadcast::Ring::<u64>::create(&name, 16).unwrap();
    let mut rx = ring.subscribe().unwrap();
    let child = common::spawn("recv_async_ends_when_the_publisher_is_killed", "publisher", &[&name]);
    let got = rt().block_on(async {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.recv_async().await.unwrap());
        }
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            common::kill9(child);
        });
        // The future waits (no message will come), then the publisher dies:
        // it ends with `RecvError`, well before this generous bound.
        let end = tokio::time::timeout(Duration::from_secs(30), rx.recv_async()).await;
        killer.join().unwrap();
        assert_eq!(end.expect("ended, not timed out"), Err(RecvError));
        got
    });
    assert_eq!(got, [0, 1, 2]);
}

#[test]
fn send_async_goes_on_once_a_stalled_subscriber_is_killed() {
    if let Some(role) = common::role() {
        assert_eq!(role, "subscriber");
        let a = common::args();
        let ring = broadcast::Ring::<u64>::open(&a[0]).unwrap();
        let _rx = ring.subscribe().unwrap();
        Event::open(&a[1]).unwrap().set();
        // Never reads: holds a lossless publisher back until it dies.
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("abc-subkill");
    let ready = Event::create(&format!("{name}-ready")).unwrap();
    let ring = broadcast::Ring::<u64>::create(&name, 8).unwrap();
    let mut tx = ring.publisher().unwrap();
    let child =
        common::spawn("send_async_goes_on_once_a_stalled_subscriber_is_killed", "subscriber", &[&name, ready.name()]);
    assert!(ready.wait_timeout(Duration::from_secs(30)), "the subscriber joined");
    let mut sent = 0u64;
    while tx.try_send(sent).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 8, "the ring is full: the stalled subscriber holds the publisher back");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        common::kill9(child);
    });
    let r = rt().block_on(async { tokio::time::timeout(Duration::from_secs(30), tx.send_async(sent)).await });
    killer.join().unwrap();
    assert_eq!(r.expect("sent, not timed out"), Ok(()), "the dead subscriber was detached");
    assert_eq!(tx.subscribers(), 0);
}
