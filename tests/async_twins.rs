//! Every async twin across two real processes, each outcome counted:
//! spsc (`push_async`, `pop_async`, `stream`), mpmc (`send_async`,
//! `recv_async`), `ByteQueue`, `Queue::stream`, `JoinableQueue::join_async`,
//! `Pipe::send_async`/`recv_async::<T>`, `BoundedSemaphore::acquire_async`.
#![cfg(feature = "async")]

mod common;

use std::time::Duration;

use ringshm::{mpmc, spsc, BoundedSemaphore, ByteQueue, Event, JoinableQueue, Pipe, Queue, RecvError};
use smol::stream::StreamExt;

const N: u64 = 10_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn spsc_push_async_pop_async_and_stream() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let mut tx = spsc::Ring::<u64>::open(&common::args()[0]).unwrap().producer().unwrap();
        smol::block_on(async {
            for i in 0..N {
                tx.push_async(i).await.unwrap();
            }
        });
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("atw-spsc");
    let ring = spsc::Ring::<u64>::create(&name, 64).unwrap();
    let mut rx = ring.consumer().unwrap();
    let child = common::spawn("spsc_push_async_pop_async_and_stream", "producer", &[&name]);
    let n = rt().block_on(async {
        let mut n = 0;
        while n < N / 2 {
            assert_eq!(rx.pop_async().await.unwrap(), n);
            n += 1;
        }
        let mut s = rx.stream();
        while let Some(v) = s.next().await {
            assert_eq!(v, n);
            n += 1;
        }
        n
    });
    assert_eq!(n, N, "the stream ends after the last item, once the producer is gone");
    assert!(rt().block_on(rx.pop_async()).is_err());
    common::expect_success(child, 60);
}

#[test]
fn mpmc_send_async_recv_async_until_disconnected() {
    if let Some(role) = common::role() {
        assert_eq!(role, "sender");
        let tx = mpmc::Ring::<u64>::open(&common::args()[0]).unwrap().sender();
        rt().block_on(async {
            for i in 0..N {
                tx.send_async(i).await.unwrap();
            }
        });
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("atw-mpmc");
    let ring = mpmc::Ring::<u64>::create(&name, 32).unwrap();
    let rx = ring.receiver();
    let child = common::spawn("mpmc_send_async_recv_async_until_disconnected", "sender", &[&name]);
    let n = rt().block_on(async {
        let mut n = 0;
        loop {
            match rx.recv_async().await {
                Ok(v) => {
                    assert_eq!(v, n);
                    n += 1;
                }
                Err(RecvError) => break n,
            }
        }
    });
    assert_eq!(n, N);
    common::expect_success(child, 60);
}

#[test]
fn byte_queue_and_queue_stream() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let a = common::args();
        let bq = ByteQueue::open(&a[0]).unwrap();
        let q = Queue::<u64>::open(&a[1]).unwrap();
        smol::block_on(async {
            for i in 0..N {
                bq.put_async(&vec![i as u8; (i % 100) as usize]).await.unwrap();
                q.put_async(i).await.unwrap();
            }
        });
        q.close(); // ends the parent's stream once drained
        return;
    }
    let _wd = common::watchdog(120);
    let (bn, qn) = (common::unique("atw-bq"), common::unique("atw-q"));
    let bq = ByteQueue::create(&bn, 8, 128).unwrap();
    let q = Queue::<u64>::create(&qn, 8).unwrap();
    let child = common::spawn("byte_queue_and_queue_stream", "producer", &[&bn, &qn]);
    rt().block_on(async {
        let bytes = async {
            for i in 0..N {
                assert_eq!(bq.get_async().await.unwrap(), vec![i as u8; (i % 100) as usize]);
            }
        };
        let items = async {
            let mut s = q.stream();
            let mut n = 0;
            while let Some(v) = s.next().await {
                assert_eq!(v, n);
                n += 1;
            }
            n
        };
        let ((), n) = tokio::join!(bytes, items);
        assert_eq!(n, N);
    });
    common::expect_success(child, 60);
}

#[test]
fn joinable_queue_join_async() {
    const TASKS: u64 = 200;
    if let Some(role) = common::role() {
        assert_eq!(role, "worker");
        let q = JoinableQueue::<u64>::open(&common::args()[0]).unwrap();
        for _ in 0..TASKS {
            q.get().unwrap();
            std::thread::sleep(Duration::from_micros(200));
            q.task_done().unwrap();
        }
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("atw-jq");
    let q = JoinableQueue::<u64>::create(&name, 16).unwrap();
    let child = common::spawn("joinable_queue_join_async", "worker", &[&name]);
    rt().block_on(async {
        for i in 0..TASKS {
            q.put_async(i).await.unwrap();
        }
        q.join_async().await;
    });
    assert_eq!(q.unfinished_tasks(), 0);
    common::expect_success(child, 60);
}

#[test]
fn pipe_pod_values_async() {
    if let Some(role) = common::role() {
        assert_eq!(role, "echo");
        let p = Pipe::open(&common::args()[0]).unwrap();
        smol::block_on(async {
            while let Ok(v) = p.recv_async::<[u64; 4]>().await {
                p.send_async(&[v[0], v[1] + 1, v[2] + 2, v[3] + 3]).await.unwrap();
            }
        });
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("atw-pipe");
    let p = Pipe::create(&name, 1024).unwrap();
    let child = common::spawn("pipe_pod_values_async", "echo", &[&name]);
    rt().block_on(async {
        for i in 0..N {
            p.send_async(&[i, i, i, i]).await.unwrap();
            assert_eq!(p.recv_async::<[u64; 4]>().await.unwrap(), [i, i + 1, i + 2, i + 3]);
        }
    });
    drop(p);
    common::expect_success(child, 60);
}

#[test]
fn bounded_semaphore_acquire_async_woken_by_release() {
    if let Some(role) = common::role() {
        assert_eq!(role, "releaser");
        let a = common::args();
        let s = BoundedSemaphore::open(&a[0]).unwrap();
        Event::open(&a[1]).unwrap().wait();
        std::thread::sleep(Duration::from_millis(50));
        s.release().unwrap();
        return;
    }
    let _wd = common::watchdog(60);
    let (sn, en) = (common::unique("atw-bsem"), common::unique("atw-bsem-ev"));
    let s = BoundedSemaphore::create(&sn, 2).unwrap();
    let ev = Event::create(&en).unwrap();
    let child = common::spawn("bounded_semaphore_acquire_async_woken_by_release", "releaser", &[&sn, &en]);
    rt().block_on(async {
        s.acquire_async().await;
        s.acquire_async().await;
        assert_eq!(s.value(), 0);
        ev.set();
        s.acquire_async().await; // only the other process's release ends this
    });
    assert_eq!(s.value(), 0);
    s.release().unwrap();
    s.release().unwrap();
    assert_eq!(s.value(), 2, "every permit is back");
    assert!(s.release().is_err(), "still bounded");
    common::expect_success(child, 30);
}

/// Async lockers (several tasks of one runtime) and a blocking locker in
/// another process increment a shared value with a non-atomic
/// read-modify-write under a `Lock`: no increment is lost, so exclusion and
/// the hand-off of wake-ups between the two kinds of waiters hold.
#[test]
fn lock_async_excludes_a_blocking_process() {
    const EACH: u64 = 2_000;
    const TASKS: u64 = 4;
    if let Some(role) = common::role() {
        assert_eq!(role, "locker");
        let a = common::args();
        let (l, v) = (ringshm::Lock::open(&a[0]).unwrap(), ringshm::Value::<u64>::open(&a[1]).unwrap());
        for _ in 0..EACH {
            let _g = l.lock().unwrap();
            let x = v.load();
            std::thread::yield_now();
            v.store(x + 1);
        }
        return;
    }
    let _wd = common::watchdog(120);
    let (ln, vn) = (common::unique("atw-lock"), common::unique("atw-lock-v"));
    let l = std::sync::Arc::new(ringshm::Lock::create(&ln).unwrap());
    let v = std::sync::Arc::new(ringshm::Value::<u64>::create(&vn, 0).unwrap());
    let child = common::spawn("lock_async_excludes_a_blocking_process", "locker", &[&ln, &vn]);
    let local = tokio::task::LocalSet::new();
    rt().block_on(local.run_until(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (l, v) = (l.clone(), v.clone());
                tokio::task::spawn_local(async move {
                    for _ in 0..EACH {
                        let g = l.lock_async().await.unwrap();
                        let x = v.load();
                        tokio::task::yield_now().await; // other tasks run while we hold it
                        v.store(x + 1);
                        drop(g);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }));
    common::expect_success(child, 60);
    assert_eq!(v.load(), (TASKS + 1) * EACH, "an increment was lost: exclusion failed");
}
