//! The "Async" section of the API contract, compiled and run in one
//! process: every `_async` name, `stream()`, and which futures are `Send`.
#![cfg(feature = "async")]

mod common;

use futures_core::Stream;
use ringshm::{
    mpmc, spsc, Barrier, BoundedSemaphore, ByteQueue, Condition, Event, JoinableQueue, Lock, Pipe, Queue, Semaphore,
};

fn send<F: Send>(f: F) -> F {
    f
}

fn stream<S: Stream>(s: S) -> S {
    s
}

#[test]
fn names_results_and_bounds() -> Result<(), Box<dyn std::error::Error>> {
    let n = |t: &str| common::unique(&format!("aapi-{t}"));
    let ring = spsc::Ring::<u64>::create(&n("spsc"), 8)?;
    let (mut tx, mut rx) = (ring.producer()?, ring.consumer()?);
    let m = mpmc::Ring::<u64>::create(&n("mpmc"), 8)?;
    let (mtx, mrx) = (m.sender(), m.receiver());
    let q = Queue::<u64>::create(&n("q"), 8)?;
    let bq = ByteQueue::create(&n("bq"), 8, 64)?;
    let jq = JoinableQueue::<u64>::create(&n("jq"), 8)?;
    let (a, b) = Pipe::pair(4096);
    let sem = Semaphore::create(&n("sem"), 1)?;
    let bsem = BoundedSemaphore::create(&n("bsem"), 1)?;
    let ev = Event::create(&n("ev"))?;
    let lock = Lock::create(&n("lock"))?;
    let cv = Condition::create(&n("cv"))?;
    let bar = Barrier::create(&n("bar"), 1)?;

    smol::block_on(async {
        send(tx.push_async(1)).await?;
        let v = send(rx.pop_async()).await?;
        send(mtx.send_async(v)).await?;
        let v = send(mrx.recv_async()).await?;
        send(q.put_async(v)).await?;
        let v = send(q.get_async()).await?;
        send(bq.put_async(b"hi")).await?;
        assert_eq!(send(bq.get_async()).await?, b"hi");
        send(jq.put_async(v)).await?;
        send(jq.get_async()).await?;
        jq.task_done()?;
        send(jq.join_async()).await;
        a.send_bytes_async(b"m").await?;
        assert_eq!(b.recv_bytes_async().await?, b"m");
        a.send_async(&7u32).await?;
        assert_eq!(b.recv_async::<u32>().await?, 7);
        send(sem.acquire_async()).await;
        sem.release();
        send(bsem.acquire_async()).await;
        bsem.release()?;
        ev.set();
        send(ev.wait_async()).await;
        let g = send(lock.lock_async()).await.unwrap();
        drop(g);
        let g = send(cv.lock_async()).await.unwrap();
        cv.notify_all();
        drop(g);
        assert!(send(bar.wait_async()).await?.is_leader());
        let _ =
            (stream(rx.stream()), stream(mrx.stream()), stream(q.stream()), stream(bq.stream()), stream(b.stream()));
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
