//! Queue, ByteQueue and JoinableQueue between real processes.

mod common;

use std::time::Duration;

use ringshm::{ByteQueue, GetError, JoinableQueue, PutBytesError, PutError, Queue, TaskDoneError};

/// Messages per producer in the 2x2 test.
const PER_PRODUCER: u64 = 1_000_000;
const START: u64 = u64::MAX;

#[test]
fn two_producers_two_consumers_every_message_once_in_order() {
    if let Some(role) = common::role() {
        let a = common::args();
        let q = Queue::<u64>::open(&a[0]).unwrap();
        match role.as_str() {
            "producer" => {
                let p: u64 = a[1].parse().unwrap();
                let mut batch = [0u64; 64];
                let mut i = 0;
                while i < PER_PRODUCER {
                    let n = (PER_PRODUCER - i).min(64) as usize;
                    for (k, slot) in batch[..n].iter_mut().enumerate() {
                        *slot = p << 32 | (i + k as u64);
                    }
                    q.put_many(&batch[..n]).unwrap();
                    i += n as u64;
                }
            }
            "consumer" => {
                let results = Queue::<[u64; 6]>::open(&a[1]).unwrap();
                let mut last = [None::<u64>; 2];
                let mut stats = [0u64; 6]; // per producer: count, sum, sum of squares
                let mut buf = [0u64; 64];
                loop {
                    let n = match q.get_many(&mut buf) {
                        Ok(n) => n,
                        Err(GetError::Disconnected) => break,
                        Err(e) => panic!("{e}"),
                    };
                    for &v in &buf[..n] {
                        if v == START {
                            continue;
                        }
                        let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
                        assert!(p < 2 && i < PER_PRODUCER, "bad item {v:#x}");
                        assert!(last[p].is_none_or(|l| l < i), "producer {p}: {i} after {:?}", last[p]);
                        last[p] = Some(i);
                        stats[3 * p] += 1;
                        stats[3 * p + 1] += i;
                        stats[3 * p + 2] = stats[3 * p + 2].wrapping_add(i * i);
                    }
                }
                results.put(stats).unwrap();
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(240);
    let name = common::unique("q-2x2");
    let rname = common::unique("q-2x2-res");
    let q = Queue::<u64>::create(&name, 1024).unwrap();
    let results = Queue::<[u64; 6]>::create(&rname, 4).unwrap();
    // Become a producer first, so that the queue is not "every producer
    // gone" before both children have started; `close` ends it instead.
    q.put(START).unwrap();
    let t = "two_producers_two_consumers_every_message_once_in_order";
    let consumers: Vec<_> = (0..2).map(|_| common::spawn(t, "consumer", &[&name, &rname])).collect();
    let producers: Vec<_> = (0..2).map(|p| common::spawn(t, "producer", &[&name, &p.to_string()])).collect();
    for p in producers {
        common::expect_success(p, 200);
    }
    q.close();
    for c in consumers {
        common::expect_success(c, 60);
    }
    let mut total = [0u64; 6];
    for _ in 0..2 {
        let s = results.get_timeout(Duration::from_secs(10)).unwrap();
        for k in 0..6 {
            total[k] = total[k].wrapping_add(s[k]);
        }
    }
    let n = PER_PRODUCER;
    let sum = n * (n - 1) / 2;
    let sumsq = (0..n).fold(0u64, |a, i| a.wrapping_add(i * i));
    assert_eq!(total, [n, sum, sumsq, n, sum, sumsq]);
    assert_eq!(q.lost(), 0);
    assert!(q.is_empty());
}

fn message(i: u64, max: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    let len = match i % 40 {
        0 => 0,
        1 => max,
        _ => (x % (max as u64 + 1)) as usize,
    };
    (0..len).map(|j| (i as usize * 17 + j) as u8).collect()
}

#[test]
fn byte_queue_random_sizes_across_processes() {
    const N: u64 = 20_000;
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let q = ByteQueue::open(&common::args()[0]).unwrap();
        let max = q.max_message_bytes();
        for i in 0..N {
            q.put(&message(i, max)).unwrap();
        }
        // No more puts from anyone: the consumer drains, then sees the end.
        q.close();
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("bq-rand");
    let q = ByteQueue::create(&name, 64, 1000).unwrap();
    let child = common::spawn("byte_queue_random_sizes_across_processes", "producer", &[&name]);
    for i in 0..N {
        assert_eq!(q.get().unwrap(), message(i, 1000), "message {i}");
    }
    assert_eq!(q.get(), Err(GetError::Disconnected));
    common::expect_success(child, 60);
    assert!(q.is_closed());
    assert_eq!(q.put(&[0; 1001]), Err(PutBytesError::TooLarge { len: 1001, max: 1000 }));
}

#[test]
fn full_and_empty_from_try_and_timeout_forms() {
    if let Some(role) = common::role() {
        assert_eq!(role, "filler");
        let a = common::args();
        let q = Queue::<u32>::open(&a[0]).unwrap();
        let done = Queue::<u32>::open(&a[1]).unwrap();
        for i in 0..q.capacity() as u32 {
            q.try_put(i).unwrap();
        }
        assert!(q.is_full());
        assert_eq!(q.try_put(99), Err(PutError::Full(99)));
        assert_eq!(q.put_timeout(99, Duration::from_millis(20)), Err(PutError::Full(99)));
        let b = ByteQueue::open(&a[2]).unwrap();
        b.try_put(b"1").unwrap();
        b.try_put(b"2").unwrap();
        assert_eq!(b.try_put(b"3"), Err(PutBytesError::Full));
        assert_eq!(b.put_timeout(b"3", Duration::from_millis(20)), Err(PutBytesError::Full));
        done.put(q.len() as u32).unwrap();
        // Stay alive until the parent has looked (our exit would end the queues).
        let ack = Queue::<u32>::open(&a[3]).unwrap();
        assert_eq!(ack.get_timeout(Duration::from_secs(30)), Ok(0));
        return;
    }
    let _wd = common::watchdog(60);
    let (n1, n2, n3) = (common::unique("q-full"), common::unique("q-done"), common::unique("bq-full"));
    let n4 = common::unique("q-ack");
    let ack = Queue::<u32>::create(&n4, 2).unwrap();
    let q = Queue::<u32>::create(&n1, 4).unwrap();
    let done = Queue::<u32>::create(&n2, 4).unwrap();
    let b = ByteQueue::create(&n3, 2, 8).unwrap();
    assert_eq!(q.try_get(), Err(GetError::Empty));
    assert_eq!(q.get_timeout(Duration::from_millis(20)), Err(GetError::Empty));
    assert_eq!(b.try_get(), Err(GetError::Empty));
    assert_eq!(b.get_timeout(Duration::from_millis(20)), Err(GetError::Empty));
    let child = common::spawn("full_and_empty_from_try_and_timeout_forms", "filler", &[&n1, &n2, &n3, &n4]);
    assert_eq!(done.get_timeout(Duration::from_secs(30)), Ok(4));
    assert_eq!(q.len(), 4);
    assert!(q.is_full());
    for i in 0..4 {
        assert_eq!(q.try_get(), Ok(i));
    }
    assert_eq!(q.try_get(), Err(GetError::Empty));
    assert_eq!(q.get_timeout(Duration::from_millis(20)), Err(GetError::Empty));
    assert_eq!(b.try_get().unwrap(), b"1");
    assert_eq!(b.get().unwrap(), b"2");
    assert_eq!(b.try_get(), Err(GetError::Empty));
    ack.put(0).unwrap();
    common::expect_success(child, 30);
}

#[test]
fn joinable_task_done_and_join_across_processes() {
    const TASKS: u64 = 200;
    if let Some(role) = common::role() {
        assert_eq!(role, "worker");
        let a = common::args();
        let q = JoinableQueue::<u64>::open(&a[0]).unwrap();
        let res = Queue::<u64>::open(&a[1]).unwrap();
        let mut n = 0;
        while let Ok(v) = q.get() {
            assert!(v < TASKS);
            n += 1;
            q.task_done().unwrap();
        }
        res.put(n).unwrap();
        return;
    }
    let _wd = common::watchdog(60);
    let (name, rname) = (common::unique("jq"), common::unique("jq-res"));
    let q = JoinableQueue::<u64>::create(&name, 16).unwrap();
    let res = Queue::<u64>::create(&rname, 4).unwrap();
    let t = "joinable_task_done_and_join_across_processes";
    let workers: Vec<_> = (0..2).map(|_| common::spawn(t, "worker", &[&name, &rname])).collect();
    for i in 0..TASKS {
        q.put(i).unwrap();
    }
    q.join();
    assert_eq!(q.unfinished_tasks(), 0);
    assert!(q.join_timeout(Duration::ZERO));
    assert_eq!(q.task_done(), Err(TaskDoneError));
    q.close();
    for w in workers {
        common::expect_success(w, 30);
    }
    let total = res.get().unwrap() + res.get().unwrap();
    assert_eq!(total, TASKS);
}

#[test]
fn producer_killed_mid_put_does_not_hang_consumers() {
    if let Some(role) = common::role() {
        assert_eq!(role, "victim");
        let a = common::args();
        let q = JoinableQueue::<u64>::open(&a[0]).unwrap();
        let ready = Queue::<u64>::open(&a[1]).unwrap();
        q.put(1).unwrap();
        q.put(2).unwrap();
        assert!(ringshm::testing::abandon_put(&q), "claimed a slot and never published it");
        q.put(3).unwrap();
        ready.put(0).unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let _wd = common::watchdog(60);
    let (name, rname) = (common::unique("q-kill"), common::unique("q-kill-ready"));
    let q = JoinableQueue::<u64>::create(&name, 8).unwrap();
    let ready = Queue::<u64>::create(&rname, 2).unwrap();
    let child = common::spawn("producer_killed_mid_put_does_not_hang_consumers", "victim", &[&name, &rname]);
    ready.get().unwrap();
    // Take one item while the victim lives (this registers our owner tag).
    let mut got = vec![q.get().unwrap()];
    q.task_done().unwrap();
    common::kill9(child);
    q.put(4).unwrap();
    for _ in 0..3 {
        got.push(q.get_timeout(Duration::from_secs(20)).unwrap());
        q.task_done().unwrap();
    }
    assert_eq!(got, [1, 2, 3, 4]);
    assert_eq!(q.lost(), 1);
    // The lost item no longer counts as an unfinished task.
    assert!(q.join_timeout(Duration::from_secs(5)));
    q.close();
    assert_eq!(q.get(), Err(GetError::Disconnected));
}

#[test]
fn consumers_see_disconnected_when_every_producer_died() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        // The producer creates the queue (the creator is a producer) and
        // is killed without dropping anything.
        let q = ByteQueue::create_with(&common::args()[0], 16, 16, &ringshm::Options::new().persist(true)).unwrap();
        for i in 0..10u8 {
            q.put(&[i; 3]).unwrap();
        }
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("bq-died");
    let child = common::spawn("consumers_see_disconnected_when_every_producer_died", "producer", &[&name]);
    let mut q = None;
    assert!(common::eventually(30, || {
        q = ByteQueue::open(&name).ok();
        q.as_ref().is_some_and(|q| q.len() == 10)
    }));
    let q = q.unwrap();
    common::kill9(child);
    for i in 0..10u8 {
        assert_eq!(q.get().unwrap(), [i; 3]);
    }
    assert_eq!(q.get(), Err(GetError::Disconnected));
    assert_eq!(q.get_timeout(Duration::from_secs(5)), Err(GetError::Disconnected));
    ringshm::unlink(&name).unwrap();
}

#[test]
fn bounds() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Queue<u64>>();
    send_sync::<JoinableQueue<u64>>();
    send_sync::<ByteQueue>();
    fn is_error<T: std::error::Error + Send + Sync + 'static>() {}
    is_error::<PutError<u64>>();
    is_error::<GetError>();
    is_error::<PutBytesError>();
    is_error::<TaskDoneError>();
}

/// A consumer that registers on the ring only after a producer died mid-put
/// is handed the dead producer's owner tag: the slot still claimed under that
/// tag must be released (and counted lost), not mistaken for its own.
#[test]
fn late_consumer_recovers_slot_of_dead_producer() {
    if let Some(role) = common::role() {
        assert_eq!(role, "victim");
        let q = Queue::<u64>::open(&common::args()[0]).unwrap();
        q.put(1).unwrap();
        assert!(ringshm::testing::abandon_put(&q));
        q.put(2).unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("q-late");
    let q = Queue::<u64>::create(&name, 8).unwrap();
    let child = common::spawn("late_consumer_recovers_slot_of_dead_producer", "victim", &[&name]);
    assert!(common::eventually(30, || q.len() == 3));
    common::kill9(child);
    assert_eq!(q.get_timeout(Duration::from_secs(10)), Ok(1));
    assert_eq!(q.get_timeout(Duration::from_secs(10)), Ok(2));
    assert_eq!(q.lost(), 1);
}
