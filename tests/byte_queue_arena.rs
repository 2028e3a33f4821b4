//! `ByteQueue`'s slots plus arena, between real processes: memory follows
//! what is queued (allocated blocks of the segment file), random sizes
//! across two producer and two consumer processes with every message
//! counted and checked, and producers killed in the middle of a big put.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use ringshm::{ByteQueue, GetError, Queue};

const MIB: u64 = 1 << 20;

/// Bytes of memory the segment file `name` holds now (tmpfs blocks).
fn allocated(name: &str) -> u64 {
    std::fs::metadata(format!("/dev/shm/{name}")).expect("segment file").blocks() * 512
}

/// The message of producer `p`, number `i`: 8 bytes of id, then a pattern;
/// its length is derived from the id (8..=max).
fn message(id: u64, max: usize) -> Vec<u8> {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    let r = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 7;
    // Half small (inline or one page), half anywhere up to max.
    let len = if r % 2 == 0 { 8 + (r >> 1) as usize % 600 } else { 8 + (r >> 1) as usize % (max - 7) };
    let mut m = vec![0u8; len];
    m[..8].copy_from_slice(&id.to_le_bytes());
    for (j, b) in m[8..].iter_mut().enumerate() {
        *b = (id as usize).wrapping_mul(131).wrapping_add(j * 7) as u8;
    }
    m
}

/// The id of `m` if `m` is exactly the message of that id.
fn check(m: &[u8], max: usize) -> Option<u64> {
    let id = u64::from_le_bytes(m.get(..8)?.try_into().ok()?);
    (message(id, max) == m).then_some(id)
}

#[test]
fn memory_follows_what_is_queued() {
    if let Some(role) = common::role() {
        let a = common::args();
        let q = ByteQueue::open(&a[0]).unwrap();
        match role.as_str() {
            "small" => {
                for i in 0..100_000u64 {
                    q.put(&i.to_le_bytes().repeat(8)).unwrap();
                }
            }
            "big" => {
                for i in 0..64u8 {
                    q.put(&vec![i; MIB as usize]).unwrap();
                }
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(300);
    let name = common::unique("bq-mem");
    // 100 000 x 1 MiB: 128 Gi of address space (131 072 slots), on a
    // machine whose /dev/shm is much smaller.
    let q = ByteQueue::create(&name, 100_000, MIB as usize).unwrap();
    let empty = allocated(&name);
    eprintln!("100 000 x 1 MiB queue, empty: {empty} bytes allocated");
    assert!(empty < 64 * MIB, "only the slots are backed at create: {empty}");

    common::expect_success(common::spawn("memory_follows_what_is_queued", "small", &[&name]), 120);
    assert_eq!(q.len(), 100_000);
    let full = allocated(&name);
    eprintln!("100 000 messages of 64 bytes queued: {full} bytes allocated");
    assert!(full < 64 * MIB, "small messages live in the slots: {full}");
    for i in 0..100_000u64 {
        assert_eq!(q.try_get().unwrap(), i.to_le_bytes().repeat(8));
    }

    common::expect_success(common::spawn("memory_follows_what_is_queued", "big", &[&name]), 120);
    let big = allocated(&name);
    eprintln!("64 messages of 1 MiB queued: {big} bytes allocated");
    assert!(big >= full + 64 * MIB, "the big messages are backed: {big}");
    for i in 0..64u8 {
        assert_eq!(q.try_get().unwrap(), vec![i; MIB as usize]);
    }
    let after = allocated(&name);
    eprintln!("after getting them: {after} bytes allocated");
    assert!(after <= full + MIB, "their pages were given back: {after}");
    assert_eq!(q.try_get(), Err(GetError::Empty));
}

#[test]
fn random_sizes_two_producers_two_consumers() {
    const MAX: usize = 200_000;
    const PER_PRODUCER: u64 = 300;
    if let Some(role) = common::role() {
        let a = common::args();
        let q = ByteQueue::open(&a[0]).unwrap();
        match role.as_str() {
            "producer" => {
                let p: u64 = a[1].parse().unwrap();
                for i in 0..PER_PRODUCER {
                    q.put(&message(p << 32 | i, MAX)).unwrap();
                }
            }
            "consumer" => {
                let ids = Queue::<u64>::open(&a[1]).unwrap();
                loop {
                    match q.get() {
                        Ok(m) => ids.put(check(&m, MAX).expect("a message arrived whole")).unwrap(),
                        Err(GetError::Disconnected) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(300);
    let name = common::unique("bq-rand");
    let ids_name = common::unique("bq-rand-ids");
    let q = ByteQueue::create(&name, 16, MAX).unwrap();
    let ids = Queue::<u64>::create(&ids_name, 1024).unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|_| common::spawn("random_sizes_two_producers_two_consumers", "consumer", &[&name, &ids_name]))
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|p| common::spawn("random_sizes_two_producers_two_consumers", "producer", &[&name, &p.to_string()]))
        .collect();
    let mut seen = HashSet::new();
    for _ in 0..2 * PER_PRODUCER {
        let id = ids.get_timeout(Duration::from_secs(120)).expect("every message arrives");
        assert!(seen.insert(id), "message {id:#x} arrived twice");
    }
    for p in producers {
        common::expect_success(p, 60);
    }
    q.close();
    for c in consumers {
        common::expect_success(c, 60);
    }
    let all: HashSet<u64> = (0..2u64).flat_map(|p| (0..PER_PRODUCER).map(move |i| p << 32 | i)).collect();
    assert_eq!(seen, all);
    assert_eq!(q.lost(), 0);
    assert_eq!(ids.try_get(), Err(GetError::Empty));
}

#[test]
fn producer_killed_mid_copy_of_a_big_message() {
    const MAX: usize = 1 << 20;
    if let Some(role) = common::role() {
        let a = common::args();
        let q = ByteQueue::open(&a[0]).unwrap();
        assert_eq!(role, "half");
        q.put(&message(1, MAX)).unwrap();
        q.put(&vec![2; MAX]).unwrap();
        assert!(ringshm::testing::abandon_half_put_bytes(&q, &vec![3; MAX]));
        // Tell the parent, then wait to be killed.
        q.put(b"ready").unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("bq-kill");
    // 4 slots of up to 1 MiB: warm size 64 KiB each.
    let q = ByteQueue::create(&name, 4, MAX).unwrap();
    let base = allocated(&name);
    let child = common::spawn("producer_killed_mid_copy_of_a_big_message", "half", &[&name]);
    assert_eq!(check(&q.get_timeout(Duration::from_secs(60)).unwrap(), MAX), Some(1));
    assert_eq!(q.get().unwrap(), vec![2; MAX]);
    // The abandoned slot comes next; wait until the marker is behind it.
    assert!(common::eventually(30, || q.len() == 2));
    common::kill9(child);
    // The dead producer's claim is recovered; the queue goes on.
    assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), b"ready");
    assert_eq!(q.lost(), 1);
    assert_eq!(q.try_get(), Err(GetError::Empty));
    // Every slot carries messages again, small then big, and all are whole.
    for round in 0..3u64 {
        for i in 0..4u64 {
            let m = message(round << 8 | i, if round == 1 { 300 } else { MAX });
            q.put(&m).unwrap();
            assert_eq!(q.get().unwrap(), m);
        }
    }
    // The half-written extent was given back by the next consumer of its
    // slot: what is left is the slots and at most 64 KiB per slot.
    let after = allocated(&name);
    eprintln!("4 x 1 MiB queue after a killed producer and 12 messages: {after} bytes (empty: {base})");
    assert!(after <= base + 4 * 64 * 1024, "extents given back: {after}");
}

#[test]
fn producer_killed_at_a_random_moment_of_big_puts() {
    const MAX: usize = 256 * 1024;
    if let Some(role) = common::role() {
        let a = common::args();
        let q = ByteQueue::open(&a[0]).unwrap();
        assert_eq!(role, "flood");
        for i in 0.. {
            q.put(&message(i, MAX)).unwrap();
        }
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("bq-flood");
    let q = ByteQueue::create(&name, 8, MAX).unwrap();
    let child = common::spawn("producer_killed_at_a_random_moment_of_big_puts", "flood", &[&name]);
    let mut next = 0;
    for _ in 0..50 {
        let m = q.get_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(check(&m, MAX), Some(next));
        next += 1;
    }
    common::kill9(child);
    // Drain: every message left is whole and in order; at most one was lost.
    while let Ok(m) = q.get_timeout(Duration::from_millis(200)) {
        assert_eq!(check(&m, MAX), Some(next));
        next += 1;
    }
    assert!(q.lost() <= 1);
    for i in 0..20 {
        let m = message(1 << 40 | i, MAX);
        q.put(&m).unwrap();
        assert_eq!(q.get().unwrap(), m);
    }
}

#[test]
fn reopened_queues_use_the_arena() {
    let name = common::unique("bq-reopen");
    let q = ByteQueue::create(&name, 3, 10_000).unwrap();
    let o = ByteQueue::open(&name).unwrap();
    for len in [0, 1, 232, 233, 4096, 4097, 10_000] {
        q.put(&vec![len as u8; len]).unwrap();
        let o2 = ByteQueue::open(&name).unwrap();
        assert_eq!(o2.max_message_bytes(), 10_000);
        assert_eq!(o.get().unwrap(), vec![len as u8; len]);
    }
    assert!(matches!(q.put(&[0; 10_001]), Err(ringshm::PutBytesError::TooLarge { len: 10_001, max: 10_000 })));
    // Too much address space is refused with advice.
    let e = ByteQueue::create(&common::unique("bq-huge"), 1 << 20, 1 << 30).unwrap_err();
    assert!(matches!(e, ringshm::Error::InvalidArgument { .. }), "{e}");
    assert!(e.to_string().contains("lower the capacity or max_message_bytes"), "{e}");
}

/// Another process scribbles on a slot's frame header: page counts are
/// clamped (the queue goes on), a length over the maximum poisons it.
#[test]
fn scribbled_frames_are_clamped_or_poison() {
    use std::os::unix::fs::FileExt;
    let name = common::unique("bq-scribble");
    let q = ByteQueue::create(&name, 2, 100_000).unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(format!("/dev/shm/{name}")).unwrap();
    let mark = b"find-me-in-the-slot";
    q.put(mark).unwrap();
    let mut head = vec![0u8; 64 << 10];
    let n = file.read_at(&mut head, 0).unwrap();
    let at = head[..n].windows(mark.len()).position(|w| w == mark).expect("inline message in its slot");
    // Frame: len (8), backed (4), touched (4), then the inline bytes.
    let frame = (at - 16) as u64;
    assert_eq!(q.get().unwrap(), mark);
    // Page counts far beyond the extent: clamped to it; puts and gets of
    // every size go on, and the slot's extent is given back.
    for round in 0..4u64 {
        file.write_at(&u32::MAX.to_le_bytes(), frame + 8).unwrap();
        file.write_at(&(u32::MAX - 5).to_le_bytes(), frame + 12).unwrap();
        for len in [0, 300, 99_999] {
            let m = vec![round as u8 ^ len as u8; len];
            q.put(&m).unwrap();
            assert_eq!(q.get().unwrap(), m);
        }
    }
    let slot_of = |c: u8| {
        (0..2u64)
            .map(|s| frame + s * 256)
            .find(|f| {
                let mut b = [0u8; 1];
                file.read_at(&mut b, f + 16).unwrap();
                b[0] == c
            })
            .expect("the slot of the message")
    };
    // The length of a put that found no memory (`u64::MAX`): skipped.
    q.put(b"w").unwrap();
    q.put(b"v").unwrap();
    file.write_at(&u64::MAX.to_le_bytes(), slot_of(b'w')).unwrap();
    assert_eq!(q.get().unwrap(), b"v");
    assert_eq!(q.try_get(), Err(GetError::Empty));
    // A length over max_message_bytes: the queue is poisoned, not trusted.
    q.put(b"x").unwrap();
    q.put(b"y").unwrap();
    file.write_at(&(1u64 << 40).to_le_bytes(), slot_of(b'x')).unwrap();
    assert_eq!(q.get(), Err(GetError::Disconnected));
    assert!(matches!(ByteQueue::open(&name), Err(ringshm::Error::Corrupted { .. })));
}
