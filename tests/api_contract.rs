//! The public API contract (`shared/API.md`), snippet by snippet, written as
//! the contract writes it: if a name or a signature drifts, this stops
//! compiling. Each snippet also runs and checks what it returns.

use std::error::Error;
use std::time::Duration;

use ringshm::{mpmc, spsc, Options, WaitStrategy};

type R = Result<(), Box<dyn Error>>;

fn n(tag: &str) -> String {
    format!("rshm-api-{tag}-{}", std::process::id())
}

const D: Duration = Duration::from_millis(5);

#[test]
fn shape_shared_by_every_object() -> R {
    let name = n("shape");
    let opts = Options::new().mode(0o660).persist(true).wait(WaitStrategy::Spin).duplex(false);
    let a = spsc::Ring::<u64>::create_with(&name, 8, &opts)?;
    let b = spsc::Ring::<u64>::open_with(&format!("/{name}"), &Options::new())?;
    let c = spsc::Ring::<u64>::open_or_create(&name, 8)?;
    assert!(matches!(spsc::Ring::<u64>::create(&name, 8), Err(ringshm::Error::AlreadyExists { .. })));
    assert!(matches!(spsc::Ring::<u64>::open("bad name"), Err(ringshm::Error::InvalidName { .. })));
    assert_eq!(a.capacity(), b.capacity());
    drop((a, b, c));
    ringshm::unlink(&name)?;
    assert!(matches!(spsc::Ring::<u64>::open(&name), Err(ringshm::Error::NotFound { .. })));
    // The error enum has at least these variants.
    fn _variants(e: ringshm::Error) {
        use ringshm::Error::*;
        match e {
            InvalidName { .. } | AlreadyExists { .. } | NotFound { .. } | PermissionDenied { .. } => {}
            WrongKind { .. } | LayoutMismatch { .. } | VersionMismatch { .. } | Corrupted { .. } => {}
            RoleTaken { .. } | Io { .. } => {}
            _ => {}
        }
    }
    fn _bounds<E: Error + Send + Sync + 'static>() {}
    _bounds::<ringshm::Error>();
    Ok(())
}

#[test]
fn rings() -> R {
    let ticks = n("ticks");
    let d = D;
    let ring = spsc::Ring::<u64>::create(&ticks, 1 << 16)?;
    let mut tx: spsc::Producer<u64> = ring.producer()?;
    let mut rx: spsc::Consumer<u64> = spsc::Ring::<u64>::open(&ticks)?.consumer()?;
    tx.try_push(7)?;
    tx.push(8)?;
    tx.push_timeout(9, d)?;
    let n3 = tx.push_slice(&[1, 2, 3]);
    assert_eq!(n3, 3);
    let x: u64 = rx.try_pop()?;
    assert_eq!(x, 7);
    let x = rx.pop()?;
    assert_eq!(x, 8);
    let x = rx.pop_timeout(d)?;
    assert_eq!(x, 9);
    let mut buf = [0u64; 8];
    let k = rx.pop_slice(&mut buf);
    assert_eq!(&buf[..k], &[1, 2, 3]);
    let mut w = tx.write_chunk(64)?;
    let (a, b) = w.as_mut_slices();
    a.iter_mut().chain(b.iter_mut()).for_each(|s| *s = 5);
    w.commit_all();
    let r = rx.read_chunk(64)?;
    assert!(r.as_slices().0.iter().chain(r.as_slices().1).all(|&s| s == 5));
    r.commit_all();
    assert_eq!(rx.len(), 0);
    assert!(rx.is_empty() && !tx.is_full());
    assert_eq!(ring.capacity(), 1 << 16);

    let jobs = n("jobs");
    let q = mpmc::Ring::<[u8; 32]>::create(&jobs, 1024)?;
    let tx: mpmc::Sender<[u8; 32]> = q.sender();
    let rx: mpmc::Receiver<[u8; 32]> = q.receiver();
    tx.try_send([1; 32])?;
    tx.send([2; 32])?;
    tx.send_timeout([3; 32], d)?;
    assert_eq!(rx.try_recv()?, [1; 32]);
    assert_eq!(rx.recv()?, [2; 32]);
    assert_eq!(rx.recv_timeout(d)?, [3; 32]);
    fn clone_send_sync<X: Clone + Send + Sync>() {}
    clone_send_sync::<mpmc::Sender<[u8; 32]>>();
    clone_send_sync::<mpmc::Receiver<[u8; 32]>>();
    fn send<X: Send>() {}
    send::<spsc::Producer<u64>>();
    send::<spsc::Consumer<u64>>();
    Ok(())
}

#[test]
fn cells() -> R {
    let v = ringshm::Value::<i64>::create(&n("balance"), 5000)?;
    assert_eq!(v.load(), 5000);
    v.store(1);
    assert_eq!(v.fetch_add(3), 1);
    assert_eq!(v.fetch_sub(2), 4);
    assert_eq!(v.swap(9), 2);
    assert_eq!(v.compare_exchange(9, 10)?, 9);
    let e = v.compare_exchange(9, 11).unwrap_err();
    assert_eq!(e.actual, 10);
    assert_eq!(v.update(|x| x * 2), 10, "update returns the previous value");
    assert_eq!(v.load(), 20);
    let big = ringshm::Value::<[u8; 40]>::create(&n("big"), [1; 40])?;
    big.store([2; 40]);
    let previous = big.update(|mut x| {
        x[0] = 3;
        x
    });
    assert_eq!(previous[..2], [2, 2]);
    assert_eq!(big.load()[..2], [3, 2]);

    let a = ringshm::Array::<i32>::create_from(&n("grid"), &[1, 2, 3, 4])?;
    let b = ringshm::Array::<u8>::create_from(&n("greeting"), b"hello")?;
    let i = 1;
    assert_eq!(a.len(), 4);
    assert_eq!(a.get(i), Some(2));
    a.set(i, 5);
    assert_eq!(a.fetch_add(i, 1), 5);
    assert_eq!(a.to_vec(), [1, 6, 3, 4]);
    let mut g = a.lock();
    g[0] = 10;
    g.copy_from_slice(&[10, 20, 30, 40]);
    drop(g);
    assert_eq!(a.to_vec(), [10, 20, 30, 40]);
    assert_eq!(b.to_vec(), b"hello");
    Ok(())
}

/// `lock()` returns `Result<LockGuard, OwnerDied<LockGuard>>`, like std's
/// `PoisonError`: the error holds the (borrowed) guard, so `?` propagates it
/// where the error type can hold it, and `into_inner()` recovers it.
fn locked_section(lock: &ringshm::Lock) -> Result<(), ringshm::OwnerDied<ringshm::LockGuard<'_>>> {
    let guard = lock.lock()?;
    assert!(lock.try_lock().is_err_and(|e| e.is_would_block()));
    drop(guard);
    Ok(())
}

fn condition_section(cv: &ringshm::Condition) -> Result<(), ringshm::OwnerDied<ringshm::LockGuard<'_>>> {
    let g = cv.lock()?;
    let (g, timed_out) = cv.wait_timeout(g, D).map_err(|e| ringshm::OwnerDied::new(e.into_inner().0))?;
    assert!(timed_out.timed_out(), "nobody notified");
    let g = cv.wait_while(g, |_| false)?;
    drop(g);
    Ok(())
}

#[test]
fn synchronisation() -> R {
    let d = D;
    let lock = ringshm::Lock::create(&n("db-lock"))?;
    assert!(locked_section(&lock).is_ok(), "nobody died holding it");
    assert!(lock.try_lock().is_ok());
    assert!(lock.lock_timeout(d).is_ok());
    let held = lock.lock().map_err(|e| e.to_string())?;
    assert!(lock.lock_timeout(d).is_err_and(|e| e.is_timeout()));
    drop(held);
    let rl = ringshm::RLock::create(&n("rlock"))?;
    let g1 = rl.lock().map_err(|e| e.to_string())?;
    let g2 = rl.lock().map_err(|e| e.to_string())?;
    assert!(g1.is_outermost() && !g2.is_outermost());
    drop((g2, g1));
    let sem = ringshm::Semaphore::create(&n("ktv-rooms"), 4)?;
    sem.acquire();
    assert!(sem.try_acquire());
    assert!(sem.acquire_timeout(d));
    assert_eq!(sem.value(), 1);
    sem.release();
    assert_eq!(sem.value(), 2);
    let bs = ringshm::BoundedSemaphore::create(&n("bsem"), 1)?;
    assert!(bs.release().is_err(), "release above the initial value is an error");
    let ev = ringshm::Event::create(&n("green-light"))?;
    ev.set();
    assert!(ev.is_set());
    ev.wait();
    ev.clear();
    let woke: bool = ev.wait_timeout(d);
    assert!(!woke);
    let cv = ringshm::Condition::create(&n("cv"))?;
    assert!(condition_section(&cv).is_ok(), "nobody died holding it");
    cv.notify_one();
    cv.notify_all();
    let bar = ringshm::Barrier::create(&n("start"), 1)?;
    assert!(bar.wait()?.is_leader());
    assert!(bar.wait_timeout(d)?.is_leader(), "one party: never waits");
    bar.abort();
    assert!(bar.is_broken());
    bar.reset();
    assert_eq!(bar.n_waiting(), 0);
    Ok(())
}

#[test]
fn pipe() -> R {
    let d = D;
    let login = n("login");
    let a = ringshm::Pipe::create(&login, 64 * 1024)?;
    let b = ringshm::Pipe::open(&login)?;
    a.send_bytes(b"can app1 use your account?")?;
    assert!(b.poll(Some(d)));
    let msg: Vec<u8> = b.recv_bytes()?;
    assert_eq!(msg, b"can app1 use your account?");
    a.send_bytes(b"0123456789")?;
    let mut small = [0u8; 4];
    assert_eq!(
        b.recv_bytes_into(&mut small),
        Err(ringshm::RecvIntoError::BufferTooShort { needed: 10 }),
        "BufferTooShort keeps the message"
    );
    let mut buf = [0u8; 64];
    let k = b.recv_bytes_into(&mut buf)?;
    assert_eq!(&buf[..k], b"0123456789");
    let pod_value: [u32; 4] = [1, 2, 3, 4];
    a.send(&pod_value)?;
    let v: [u32; 4] = b.recv()?;
    assert_eq!(v, pod_value);
    a.send_with(3, |buf: &mut [u8]| buf.copy_from_slice(b"abc"))?;
    assert_eq!(b.recv_with(|msg: &[u8]| msg.to_vec())?, b"abc");
    a.close();
    assert_eq!(b.recv_bytes(), Err(ringshm::RecvError), "EOF after close");

    let one_way = n("oneway");
    let a = ringshm::Pipe::create_with(&one_way, 1024, &Options::new().duplex(false))?;
    let b = ringshm::Pipe::open(&one_way)?;
    assert_eq!(b.send_bytes(b"wrong way"), Err(ringshm::PipeSendError::WrongDirection));
    a.send_bytes(b"right way")?;
    assert_eq!(b.recv_bytes()?, b"right way");
    let (c1, c2): (ringshm::Connection, ringshm::Connection) = ringshm::Pipe::pair(4096);
    c1.send_bytes(b"x")?;
    assert_eq!(c2.recv_bytes()?, b"x");
    Ok(())
}

#[test]
fn queues() -> R {
    let d = D;
    let v = [7u8; 16];
    let q = ringshm::Queue::<[u8; 16]>::create(&n("orders"), 1024)?;
    q.put(v)?;
    q.put_timeout(v, d)?;
    q.try_put(v)?;
    assert_eq!(q.len(), 3);
    assert_eq!(q.get()?, v);
    assert_eq!(q.get_timeout(d)?, v);
    assert_eq!(q.try_get()?, v);
    assert_eq!(q.try_get(), Err(ringshm::GetError::Empty));
    assert!(q.is_empty() && !q.is_full());
    assert_eq!(q.capacity(), 1024);
    let items = [[1u8; 16], [2u8; 16]];
    q.put_many(&items)?;
    let mut out = [[0u8; 16]; 4];
    assert_eq!(q.get_many(&mut out)?, 2);
    assert_eq!(out[..2], items);
    q.close();
    assert!(matches!(q.put(v), Err(ringshm::PutError::Closed(x)) if x == v));
    let logs = ringshm::ByteQueue::create(&n("logs"), 64, 256)?;
    logs.put(b"hello")?;
    assert_eq!(logs.get()?, b"hello");
    let jq = ringshm::JoinableQueue::<u64>::create(&n("tasks"), 256)?;
    jq.put(1)?;
    assert_eq!(jq.unfinished_tasks(), 1);
    assert_eq!(jq.get()?, 1);
    jq.task_done()?;
    assert_eq!(jq.task_done(), Err(ringshm::TaskDoneError), "more task_done than items taken");
    jq.join();
    assert!(jq.join_timeout(d));
    Ok(())
}

#[test]
fn inspecting_and_cleaning_up() -> R {
    let _keep = spsc::Ring::<u64>::create(&n("listed"), 8)?;
    let all: Vec<ringshm::SegmentInfo> = ringshm::list()?;
    assert!(!all.is_empty());
    let removed: Vec<String> = ringshm::remove_stale()?;
    assert!(!removed.iter().any(|r| r.contains("listed")));
    Ok(())
}
