//! Regression tests for the queue defects of issue 7, across real processes:
//! a dead producer's claim hiding later items at the final drain (defect 1),
//! `JoinableQueue` counting a task before it has room (2), capacity 0 (6),
//! over-aligned items (7), and `open_or_create` making its creator a
//! producer (12).

mod common;

use std::time::Duration;

use ringshm::{ByteQueue, Error, GetError, JoinableQueue, Queue};

/// Defect 1 for `Queue` (non-blocking `try_get`) and `ByteQueue` (blocking
/// `get`): a producer killed mid-put leaves two claimed slots; a second
/// producer, registered on the queue before, puts two more and exits. The
/// consumer drains every published item, counts two lost, then sees
/// `Disconnected`.
#[test]
fn dead_claim_does_not_hide_later_items() {
    if let Some(role) = common::role() {
        let a = common::args();
        let go = || assert!(common::eventually(60, || std::path::Path::new(&a[1]).exists()));
        match role.as_str() {
            "victim" => {
                let q = Queue::<u64>::open(&a[0]).unwrap();
                q.put(1).unwrap();
                assert!(ringshm::testing::abandon_put(&q));
                assert!(ringshm::testing::abandon_put(&q));
            }
            "clean" => {
                let q = Queue::<u64>::open(&a[0]).unwrap();
                q.put(0).unwrap();
                go();
                q.put(10).unwrap();
                q.put(11).unwrap();
                return;
            }
            "bvictim" => {
                let q = ByteQueue::open(&a[0]).unwrap();
                q.put(b"one").unwrap();
                assert!(ringshm::testing::abandon_put_bytes(&q));
                assert!(ringshm::testing::abandon_put_bytes(&q));
            }
            "bclean" => {
                let q = ByteQueue::open(&a[0]).unwrap();
                q.put(b"zero").unwrap();
                go();
                q.put(b"ten").unwrap();
                q.put(b"eleven").unwrap();
                return;
            }
            _ => unreachable!(),
        }
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(120);
    let t = "dead_claim_does_not_hide_later_items";
    let go = |name: &str| std::env::temp_dir().join(format!("{name}-go")).to_string_lossy().into_owned();

    let name = common::unique("q-drain");
    // A consumer-only handle: the creating handle would count as a producer.
    let q = Queue::<u64>::create_with(&name, 8, &ringshm::Options::new().persist(true)).unwrap();
    let c = Queue::<u64>::open(&name).unwrap();
    let clean = common::spawn(t, "clean", &[&name, &go(&name)]);
    assert_eq!(c.get_timeout(Duration::from_secs(30)), Ok(0));
    drop(q);
    let victim = common::spawn(t, "victim", &[&name, ""]);
    assert!(common::eventually(30, || c.len() == 3));
    assert_eq!(c.try_get(), Ok(1));
    common::kill9(victim);
    std::fs::write(go(&name), b"").unwrap();
    common::expect_success(clean, 30);
    let mut got = vec![1];
    loop {
        match c.try_get() {
            Ok(v) => got.push(v),
            Err(GetError::Empty) => std::thread::yield_now(),
            Err(GetError::Disconnected) => break,
        }
    }
    assert_eq!(got, [1, 10, 11]);
    assert_eq!(c.lost(), 2);
    std::fs::remove_file(go(&name)).unwrap();
    ringshm::unlink(&name).unwrap();

    let name = common::unique("bq-drain");
    let q = ByteQueue::create_with(&name, 8, 16, &ringshm::Options::new().persist(true)).unwrap();
    let c = ByteQueue::open(&name).unwrap();
    let clean = common::spawn(t, "bclean", &[&name, &go(&name)]);
    assert_eq!(c.get_timeout(Duration::from_secs(30)).unwrap(), b"zero");
    drop(q);
    let victim = common::spawn(t, "bvictim", &[&name, ""]);
    assert!(common::eventually(30, || c.len() == 3));
    assert_eq!(c.try_get().unwrap(), b"one");
    common::kill9(victim);
    std::fs::write(go(&name), b"").unwrap();
    common::expect_success(clean, 30);
    let mut got = vec![b"one".to_vec()];
    while let Ok(m) = c.get() {
        got.push(m);
    }
    assert_eq!(got, [b"one".to_vec(), b"ten".to_vec(), b"eleven".to_vec()]);
    assert_eq!(c.lost(), 2);
    assert_eq!(c.try_get(), Err(GetError::Disconnected));
    std::fs::remove_file(go(&name)).unwrap();
    ringshm::unlink(&name).unwrap();
}

/// Defect 2: a producer SIGKILLed while blocked in `put` on a full
/// `JoinableQueue` must not leave a task counted: `unfinished_tasks` goes
/// back to the items really put, and `join` returns once they are done.
#[test]
fn joinable_put_blocked_then_killed_is_not_counted() {
    if let Some(role) = common::role() {
        assert_eq!(role, "blocked");
        let q = JoinableQueue::<u64>::open(&common::args()[0]).unwrap();
        q.put(2).unwrap(); // blocks: the queue is full
        unreachable!("the queue stays full until this process is killed");
    }
    let _wd = common::watchdog(60);
    let name = common::unique("jq-blocked");
    let q = JoinableQueue::<u64>::create(&name, 1).unwrap();
    q.put(1).unwrap();
    let child = common::spawn("joinable_put_blocked_then_killed_is_not_counted", "blocked", &[&name]);
    // Give the child time to open the queue and block in `put`.
    std::thread::sleep(Duration::from_millis(500));
    common::kill9(child);
    assert_eq!(q.unfinished_tasks(), 1);
    assert_eq!(q.get_timeout(Duration::from_secs(10)), Ok(1));
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::from_secs(10)), "unfinished: {}", q.unfinished_tasks());
    assert_eq!(q.unfinished_tasks(), 0);
}

/// Defect 6: capacity 0 is `InvalidArgument` for every queue type; a
/// queue whose header bound says 0 is `Corrupted` for another process.
#[test]
fn queue_capacity_zero() {
    if let Some(role) = common::role() {
        let name = &common::args()[0];
        let ok = match role.as_str() {
            "queue" => matches!(Queue::<u64>::open(name), Err(Error::Corrupted { .. })),
            "bytes" => matches!(ByteQueue::open(name), Err(Error::Corrupted { .. })),
            _ => unreachable!(),
        };
        assert!(ok, "{role}: a bound of 0 is corrupt");
        return;
    }
    let _wd = common::watchdog(60);
    let invalid = |e: Error| matches!(e, Error::InvalidArgument { .. });
    assert!(invalid(Queue::<u64>::create(&common::unique("q0"), 0).unwrap_err()));
    assert!(invalid(Queue::<u64>::open_or_create(&common::unique("q0"), 0).unwrap_err()));
    assert!(invalid(Queue::<u64>::anonymous(0).unwrap_err()));
    assert!(invalid(JoinableQueue::<u64>::create(&common::unique("jq0"), 0).unwrap_err()));
    assert!(invalid(ByteQueue::create(&common::unique("bq0"), 0, 8).unwrap_err()));
    assert!(invalid(ByteQueue::open_or_create(&common::unique("bq0"), 0, 8).unwrap_err()));
    let bound_at = 8 + 4 + 4 + 8 + 4 + 4 + 8 + 8 + 3 * 8;
    let zero_bound = |name: &str| {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
        f.seek(SeekFrom::Start(bound_at)).unwrap();
        f.write_all(&0u64.to_le_bytes()).unwrap();
    };
    let qn = common::unique("q0-hdr");
    let q = Queue::<u64>::create(&qn, 4).unwrap();
    zero_bound(&qn);
    common::expect_success(common::spawn("queue_capacity_zero", "queue", &[&qn]), 30);
    let bn = common::unique("bq0-hdr");
    let b = ByteQueue::create(&bn, 4, 8).unwrap();
    zero_bound(&bn);
    common::expect_success(common::spawn("queue_capacity_zero", "bytes", &[&bn]), 30);
    drop((q, b));
}

/// An item type aligned to 1024 bytes.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, PartialEq, Debug)]
#[repr(C, align(1024))]
struct Big([u8; 1024]);

/// Defect 7: a `Queue` of items aligned to 1024 between two processes.
#[test]
fn queue_over_aligned_items() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let q = Queue::<Big>::open(&common::args()[0]).unwrap();
        for i in 0..6u8 {
            q.put(Big([i; 1024])).unwrap();
        }
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("q-align");
    let q = Queue::<Big>::create(&name, 2).unwrap();
    let child = common::spawn("queue_over_aligned_items", "producer", &[&name]);
    for i in 0..6u8 {
        assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), Big([i; 1024]));
    }
    common::expect_success(child, 30);
}

/// Item 12: the handle `open_or_create` created counts as a producer, as
/// `create`'s does: after another producer process came and went, a
/// consumer still waits while the creator lives, and sees `Disconnected`
/// once it is dropped.
#[test]
fn open_or_create_creator_is_a_producer() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let q = Queue::<u64>::open(&common::args()[0]).unwrap();
        q.put(5).unwrap();
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("q-ooc");
    let q = Queue::<u64>::open_or_create(&name, 4).unwrap();
    common::expect_success(common::spawn("open_or_create_creator_is_a_producer", "producer", &[&name]), 30);
    let c = Queue::<u64>::open(&name).unwrap();
    assert_eq!(c.get_timeout(Duration::from_secs(10)), Ok(5));
    assert_eq!(c.get_timeout(Duration::from_millis(100)), Err(GetError::Empty), "the creator still lives");
    drop(q);
    assert_eq!(c.get_timeout(Duration::from_secs(10)), Err(GetError::Disconnected));
}
