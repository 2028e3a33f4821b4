//! SPSC ring across real processes: transfer, blocking and timeouts, roles,
//! takeover after SIGKILL, and `Disconnected` when the peer dies.

mod common;

use std::time::Duration;

use ringshm::spsc::Ring;
use ringshm::{
    Error, Options, RecvError, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError, WaitStrategy,
};

const N: u64 = 1_200_000;

/// The child pushes 1.2M items (singly, in slices and through chunks); the
/// parent checks each arrives once and in order.
#[test]
fn transfer_counts_every_item_in_order() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let name = &common::args()[0];
        let ring = Ring::<u64>::open(name).unwrap();
        let mut tx = ring.producer().unwrap();
        let mut next = 0u64;
        while next < N {
            match next % 3 {
                0 => {
                    tx.push(next).unwrap();
                    next += 1;
                }
                1 => {
                    let batch: Vec<u64> = (next..(next + 64).min(N)).collect();
                    next += tx.push_slice(&batch) as u64;
                }
                _ => {
                    let want = 32.min((N - next) as usize);
                    if let Ok(mut w) = tx.write_chunk(want) {
                        let (a, b) = w.as_mut_slices();
                        for (i, x) in a.iter_mut().chain(b.iter_mut()).enumerate() {
                            *x = next + i as u64;
                        }
                        w.commit_all();
                        next += want as u64;
                    } else {
                        tx.push(next).unwrap();
                        next += 1;
                    }
                }
            }
        }
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("xfer");
    let ring = Ring::<u64>::create(&name, 1024).unwrap();
    let mut rx = ring.consumer().unwrap();
    let child = common::spawn("transfer_counts_every_item_in_order", "producer", &[&name]);
    let mut expect = 0u64;
    let mut buf = [0u64; 100];
    loop {
        match expect % 2 {
            0 => match rx.pop() {
                Ok(v) => {
                    assert_eq!(v, expect, "out of order or lost");
                    expect += 1;
                }
                Err(RecvError) => break,
            },
            _ => {
                let n = rx.pop_slice(&mut buf);
                for v in &buf[..n] {
                    assert_eq!(*v, expect);
                    expect += 1;
                }
            }
        }
    }
    assert_eq!(expect, N, "every item arrives exactly once");
    common::expect_success(child, 60);
}

/// A role held by a live process is refused; once that process is killed
/// the role is taken over, and the survivor sees the dead end as gone.
#[test]
fn role_taken_then_taken_over_after_sigkill() {
    if let Some(role) = common::role() {
        let name = &common::args()[0];
        let ring = Ring::<u32>::open(name).unwrap();
        let mut tx = ring.producer().unwrap();
        assert_eq!(role, "hold");
        tx.push(1).unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("roles");
    let ring = Ring::<u32>::create(&name, 4).unwrap();
    let mut rx = ring.consumer().unwrap();
    let child = common::spawn("role_taken_then_taken_over_after_sigkill", "hold", &[&name]);
    assert_eq!(rx.pop_timeout(Duration::from_secs(30)), Ok(1));
    // The child holds the producer role.
    assert!(matches!(ring.producer(), Err(Error::RoleTaken { role: "producer", .. })));
    assert!(matches!(Ring::<u32>::open(&name).unwrap().consumer(), Err(Error::RoleTaken { .. })));
    assert!(!rx.is_abandoned());
    common::kill9(child);
    // Dead holder: the consumer learns it, and the role can be taken over.
    assert_eq!(rx.pop_timeout(Duration::from_secs(10)), Err(RecvTimeoutError::Disconnected));
    assert!(rx.is_abandoned());
    let mut tx = ring.producer().expect("takeover after SIGKILL");
    tx.push(2).unwrap();
    assert_eq!(rx.pop(), Ok(2));
}

/// A consumer blocked in `pop` (no timeout) while its producer is SIGKILLed
/// wakes with `RecvError` after draining what was sent.
#[test]
fn blocked_pop_ends_when_producer_is_killed() {
    if let Some(_role) = common::role() {
        let name = &common::args()[0];
        let mut tx = Ring::<u64>::open(name).unwrap().producer().unwrap();
        for i in 0..10 {
            tx.push(i).unwrap();
        }
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("pdie");
    let ring = Ring::<u64>::create_with(&name, 64, &Options::new().wait(WaitStrategy::Park)).unwrap();
    let mut rx = ring.consumer().unwrap();
    let child = common::spawn("blocked_pop_ends_when_producer_is_killed", "p", &[&name]);
    for i in 0..10 {
        assert_eq!(rx.pop(), Ok(i));
    }
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        common::kill9(child);
    });
    assert_eq!(rx.pop(), Err(RecvError), "blocked pop must end after the producer dies");
    killer.join().unwrap();
}

/// A producer blocked on a full ring ends with `Disconnected` when the
/// consumer process is SIGKILLed, for every wait strategy.
#[test]
fn blocked_push_ends_when_consumer_is_killed() {
    if let Some(_role) = common::role() {
        let name = &common::args()[0];
        let mut rx = Ring::<u64>::open(name).unwrap().consumer().unwrap();
        assert_eq!(rx.pop(), Ok(0));
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(60);
    for wait in [WaitStrategy::Spin, WaitStrategy::Adaptive, WaitStrategy::Park] {
        let name = common::unique("cdie");
        let ring = Ring::<u64>::create_with(&name, 2, &Options::new().wait(wait)).unwrap();
        let mut tx = ring.producer().unwrap();
        let child = common::spawn("blocked_push_ends_when_consumer_is_killed", "c", &[&name]);
        tx.push(0).unwrap();
        // Wait for the child to take its item, then fill the ring.
        assert!(common::eventually(30, || tx.is_empty()));
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        assert_eq!(tx.try_push(3), Err(TrySendError::Full(3)));
        assert_eq!(tx.push_timeout(3, Duration::from_millis(20)), Err(SendTimeoutError::Timeout(3)));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            common::kill9(child);
        });
        assert_eq!(tx.push(3).map_err(|e| e.into_inner()), Err(3), "{wait:?}");
        assert!(tx.is_abandoned());
        killer.join().unwrap();
    }
}

/// Blocking and timeout paths between two processes: the consumer process
/// waits with each strategy; the producer sends with pauses.
#[test]
fn blocking_pop_with_every_strategy() {
    if let Some(_role) = common::role() {
        let name = &common::args()[0];
        let mut tx = Ring::<u32>::open(name).unwrap().producer().unwrap();
        for i in 0..30 {
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(30));
            }
            tx.push(i).unwrap();
        }
        return;
    }
    let _wd = common::watchdog(60);
    for wait in [WaitStrategy::Spin, WaitStrategy::Adaptive, WaitStrategy::Park] {
        let name = common::unique("block");
        let ring = Ring::<u32>::create(&name, 4).unwrap();
        let mut rx = Ring::<u32>::open_with(&name, &Options::new().wait(wait)).unwrap().consumer().unwrap();
        assert_eq!(rx.try_pop(), Err(TryRecvError::Empty), "no producer yet is not a disconnect");
        assert_eq!(rx.pop_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
        let child = common::spawn("blocking_pop_with_every_strategy", "p", &[&name]);
        for i in 0..30 {
            assert_eq!(rx.pop(), Ok(i), "{wait:?}");
        }
        assert_eq!(rx.pop(), Err(RecvError));
        common::expect_success(child, 30);
        drop(ring);
    }
}

/// Two processes race `open_or_create`; both end up on one ring.
#[test]
fn open_or_create_race() {
    if let Some(_role) = common::role() {
        let name = &common::args()[0];
        let ring = Ring::<u64>::open_or_create_with(name, 8, &Options::new().persist(true)).unwrap();
        let mut tx = ring.producer().unwrap();
        tx.push(42).unwrap();
        return;
    }
    let _wd = common::watchdog(60);
    for _ in 0..5 {
        let name = common::unique("race");
        let child = common::spawn("open_or_create_race", "p", &[&name]);
        let ring = Ring::<u64>::open_or_create_with(&name, 8, &Options::new().persist(true)).unwrap();
        let mut rx = ring.consumer().unwrap();
        assert_eq!(rx.pop_timeout(Duration::from_secs(30)), Ok(42));
        common::expect_success(child, 30);
        ringshm::unlink(&name).unwrap();
    }
}

/// The consumer's `&self` views and iterators against a producer in another
/// process: `peek` shows the next item without taking it, `len`/`slots`/
/// `is_empty` track what the child pushed, `try_iter` takes what is there,
/// and the owning iterator ends once the child has exited (after the drain).
#[test]
fn peek_len_and_iterators_across_processes() {
    const M: u64 = 10_000;
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let ring = Ring::<u64>::open(&common::args()[0]).unwrap();
        let mut tx = ring.producer().unwrap();
        // First three, then wait until the parent has seen them and says go
        // (it checks `is_empty` after its drain, so we must not push yet).
        let go = ringshm::Event::open(&format!("{}-go", common::args()[0])).unwrap();
        tx.push_slice(&[0, 1, 2]);
        assert!(go.wait_timeout(Duration::from_secs(60)), "the parent says go");
        for i in 3..M {
            tx.push(i).unwrap();
        }
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("peek");
    let ring = Ring::<u64>::create(&name, 64).unwrap();
    let go = ringshm::Event::create(&format!("{name}-go")).unwrap();
    let mut rx = ring.consumer().unwrap();
    let child = common::spawn("peek_len_and_iterators_across_processes", "producer", &[&name]);
    assert!(common::eventually(60, || rx.len() == 3), "the child's three items arrive");
    let r = &rx;
    assert_eq!((r.slots(), r.is_empty(), r.peek()), (3, false, Ok(&0)));
    assert_eq!(rx.peek(), Ok(&0), "peek does not take");
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
    assert!(rx.is_empty());
    go.set();
    let mut want = 3;
    for v in rx {
        assert_eq!(v, want);
        want += 1;
    }
    assert_eq!(want, M, "every item once, in order, then the end");
    common::expect_success(child, 60);
}

/// `peek` on a ring whose producer was SIGKILLed: the items it pushed are
/// still shown, then `Disconnected` (not `Empty` forever).
#[test]
fn peek_after_producer_is_killed() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let ring = Ring::<u64>::open(&common::args()[0]).unwrap();
        let mut tx = ring.producer().unwrap();
        tx.push(42).unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("peekkill");
    let ring = Ring::<u64>::create(&name, 4).unwrap();
    let mut rx = ring.consumer().unwrap();
    let child = common::spawn("peek_after_producer_is_killed", "producer", &[&name]);
    assert!(common::eventually(60, || rx.peek().is_ok()));
    common::kill9(child);
    assert_eq!(rx.peek(), Ok(&42));
    assert_eq!(rx.pop(), Ok(42));
    assert!(common::eventually(30, || rx.peek() == Err(TryRecvError::Disconnected)));
    assert!(rx.is_abandoned());
}

/// Which handle types may cross or be shared between threads.
#[test]
fn bounds() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Ring<u64>>();
    sync::<Ring<u64>>();
    send::<ringshm::spsc::Producer<u64>>();
    send::<ringshm::spsc::Consumer<u64>>();
    send::<ringshm::spsc::IntoIter<u64>>();
}

/// A `tail` scribbled out of range by another process is caught by the
/// `&self` views too: `peek` reports `Disconnected` (the ring is poisoned)
/// instead of `Empty` forever, and `open` then refuses the ring.
#[test]
fn scribbled_tail_poisons_peek() {
    if let Some(role) = common::role() {
        assert_eq!(role, "scribbler");
        // Offset of `tail` in the segment: it is the first word of the body,
        // which follows the 512-byte header.
        let path = format!("/dev/shm/{}", common::args()[0]);
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&(1u64 << 50).to_ne_bytes(), 512).unwrap();
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("scribble");
    let ring = Ring::<u64>::create(&name, 8).unwrap();
    let rx = ring.consumer().unwrap();
    let _tx = ring.producer().unwrap();
    common::expect_success(common::spawn("scribbled_tail_poisons_peek", "scribbler", &[&name]), 30);
    assert_eq!(rx.peek(), Err(TryRecvError::Disconnected));
    assert!(matches!(Ring::<u64>::open(&name), Err(Error::Corrupted { .. })));
}
