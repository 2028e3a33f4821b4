//! Regression tests for the MPMC ring defects of issue 7, each across real
//! processes: a dead sender's claim hiding later messages at the final drain
//! (defect 1), capacity 0 (6), over-aligned items (7), poisoning under
//! contention (10) and spurious `Empty` from `try_recv` (11).

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use ringshm::mpmc::Ring;
use ringshm::{Error, RecvError, TryRecvError};

/// Offset of `params[3]` (an MPMC ring's bound) in a segment file: after the
/// magic word, version, kind, total size, element size and alignment, type
/// hash, capacity and `params[0..3]`.
const BOUND_AT: u64 = 8 + 4 + 4 + 8 + 4 + 4 + 8 + 8 + 3 * 8;

fn shm_path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

/// Defect 1: sender 1 is killed with two claimed, unpublished slots; sender
/// 2 (registered on the ring before, so it does not inherit the dead
/// sender's owner tag) sends two more and exits. The receiver must get
/// every published message, count the dead claims as lost, and only then
/// see `Disconnected` (blocking `recv` and `try_recv` alike).
#[test]
fn dead_claim_does_not_hide_later_messages_at_drain() {
    if let Some(role) = common::role() {
        let a = common::args();
        let ring = Ring::<u64>::open(&a[0]).unwrap();
        let tx = ring.sender();
        match role.as_str() {
            "victim" => {
                tx.send(1).unwrap();
                // Two dead claims in a row.
                assert!(ringshm::testing::abandon_send(&tx));
                assert!(ringshm::testing::abandon_send(&tx));
                std::thread::sleep(Duration::from_secs(600));
            }
            "clean" => {
                tx.send(0).unwrap();
                assert!(common::eventually(60, || std::path::Path::new(&a[1]).exists()));
                tx.send(10).unwrap();
                tx.send(11).unwrap();
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(120);
    for blocking in [false, true] {
        let name = common::unique("drain");
        let go = std::env::temp_dir().join(format!("{name}-go"));
        let go_s = go.to_string_lossy().into_owned();
        let ring = Ring::<u64>::create(&name, 8).unwrap();
        let rx = ring.receiver();
        let t = "dead_claim_does_not_hide_later_messages_at_drain";
        let clean = common::spawn(t, "clean", &[&name, &go_s]);
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(0));
        let victim = common::spawn(t, "victim", &[&name]);
        assert!(common::eventually(30, || ring.len() == 3), "message + claimed slots");
        assert_eq!(rx.try_recv(), Ok(1));
        common::kill9(victim);
        std::fs::write(&go, b"").unwrap();
        common::expect_success(clean, 30);
        std::fs::remove_file(&go).unwrap();
        assert_eq!(ring.len(), 4);
        let mut got = vec![1];
        if blocking {
            while let Ok(v) = rx.recv() {
                got.push(v);
            }
            assert_eq!(rx.recv(), Err(RecvError));
        } else {
            loop {
                match rx.try_recv() {
                    Ok(v) => got.push(v),
                    Err(TryRecvError::Empty) => std::thread::yield_now(),
                    Err(TryRecvError::Disconnected) => break,
                }
            }
        }
        assert_eq!(got, [1, 10, 11], "blocking: {blocking}");
        assert_eq!(ring.lost(), 2);
        assert_eq!(ring.len(), 0);
    }
}

/// Defect 11: a live sender holds the head slot claimed while later slots
/// hold published items. The blocking forms wait for the claimer and, once
/// it is killed, recover its slot and deliver what was published behind it.
/// `try_recv` waits out a claimer's unfinished step for one liveness slice
/// at most (a claimer stalled longer, as this one is, must not hang a
/// non-blocking call: documented on `mpmc::Ring`); the crossbeam
/// `linearizable` test covers claimers that finish their step.
#[test]
fn try_recv_is_not_empty_behind_a_claimed_slot() {
    if let Some(role) = common::role() {
        let a = common::args();
        let ring = Ring::<u64>::open(&a[0]).unwrap();
        let tx = ring.sender();
        match role.as_str() {
            "claimer" => {
                assert!(ringshm::testing::abandon_send(&tx));
                std::thread::sleep(Duration::from_secs(600));
            }
            "clean" => {
                tx.send(20).unwrap();
                tx.send(21).unwrap();
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("lin-claim");
    let ring = Ring::<u64>::create(&name, 4).unwrap();
    let rx = ring.receiver();
    let _tx = ring.sender();
    let t = "try_recv_is_not_empty_behind_a_claimed_slot";
    let claimer = common::spawn(t, "claimer", &[&name]);
    assert!(common::eventually(30, || ring.len() == 1));
    common::expect_success(common::spawn(t, "clean", &[&name]), 30);
    assert_eq!(ring.len(), 3);
    // Stalled for good while alive: `try_recv` gives up after its slice.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(ring.len(), 3, "nothing was taken");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        common::kill9(claimer);
    });
    // The blocking form waits for the claimer, recovers its slot once it is
    // dead, and delivers the items published behind it.
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(20), "items are in the ring");
    assert_eq!(rx.try_recv(), Ok(21));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    killer.join().unwrap();
    assert_eq!(ring.lost(), 1);
}

/// One worker of the contention tests: `threads` threads, each `rounds`
/// times `try_send` until it succeeds, then `try_recv` until it succeeds.
/// Returns the sum of what they received.
fn contend(ring: &Ring<u64>, id: u64, threads: u64, rounds: u64) -> u64 {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (tx, rx) = (ring.sender(), ring.receiver());
                s.spawn(move || {
                    let mut sum = 0u64;
                    for i in 0..rounds {
                        let mut v = (id * threads + t) << 32 | i;
                        loop {
                            match tx.try_send(v) {
                                Ok(()) => break,
                                Err(ringshm::TrySendError::Full(back)) => v = back,
                                Err(e) => panic!("try_send on a healthy ring: {e}"),
                            }
                        }
                        loop {
                            match rx.try_recv() {
                                Ok(v) => break sum = sum.wrapping_add(v),
                                Err(TryRecvError::Empty) => {}
                                Err(e) => panic!("try_recv on a healthy ring: {e}"),
                            }
                        }
                    }
                    sum
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).fold(0, u64::wrapping_add)
    })
}

/// What `contend` workers `0..workers` send in total.
fn contend_sum(workers: u64, threads: u64, rounds: u64) -> u64 {
    (0..workers * threads).flat_map(|w| (0..rounds).map(move |i| w << 32 | i)).fold(0, u64::wrapping_add)
}

/// Defect 10: three processes of two threads each send then receive in a
/// loop on a ring of capacity 1 or 2. Contention alone must never poison
/// the ring, and every message is received exactly once.
#[test]
fn contention_never_poisons_across_processes() {
    const ROUNDS: u64 = 50_000;
    if let Some(role) = common::role() {
        assert_eq!(role, "worker");
        let a = common::args();
        let ring = Ring::<u64>::open(&a[0]).unwrap();
        let sum = contend(&ring, a[1].parse().unwrap(), 2, ROUNDS);
        std::fs::write(&a[2], sum.to_le_bytes()).unwrap();
        return;
    }
    let _wd = common::watchdog(300);
    for cap in [1, 2] {
        let name = common::unique("contend");
        let ring = Ring::<u64>::create(&name, cap).unwrap();
        // Keep both sides attached while workers come and go.
        let (_tx, _rx) = (ring.sender(), ring.receiver());
        let dir = std::env::temp_dir();
        let files: Vec<String> =
            (0..3).map(|w| dir.join(format!("{name}-w{w}")).to_string_lossy().into_owned()).collect();
        let t = "contention_never_poisons_across_processes";
        let kids: Vec<_> = (0..3).map(|w| common::spawn(t, "worker", &[&name, &w.to_string(), &files[w]])).collect();
        for k in kids {
            common::expect_success(k, 250);
        }
        let mut total = 0u64;
        for f in &files {
            let b = std::fs::read(f).unwrap();
            std::fs::remove_file(f).unwrap();
            total = total.wrapping_add(u64::from_le_bytes(b.try_into().unwrap()));
        }
        assert_eq!(total, contend_sum(3, 2, ROUNDS), "capacity {cap}: every message received exactly once");
        assert_eq!(ring.len(), 0);
        assert_eq!(ring.lost(), 0);
        Ring::<u64>::open(&name).expect("not poisoned");
    }
}

/// Defect 10 with threads: six threads send then receive in loops, with the
/// `try_` forms, then with the blocking ones.
#[test]
fn contention_never_poisons_threads() {
    let _wd = common::watchdog(240);
    for cap in [1, 2] {
        for _ in 0..40 {
            let ring = Ring::<u64>::create(&common::unique("contend-t"), cap).unwrap();
            assert_eq!(contend(&ring, 0, 6, 20_000), contend_sum(1, 6, 20_000), "capacity {cap}");
            assert_eq!(ring.len(), 0);
            assert_eq!(ring.lost(), 0);
        }
        let ring = Ring::<u64>::create(&common::unique("contend-b"), cap).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (tx, rx) = (ring.sender(), ring.receiver());
                s.spawn(move || {
                    for i in 0..20_000u64 {
                        tx.send(i).expect("send on a healthy ring");
                        rx.recv().expect("recv on a healthy ring");
                    }
                });
            }
        });
        assert_eq!(ring.len(), 0);
    }
}

/// Defect 6: capacity 0 is refused at create, and a header whose bound says
/// 0 is refused by `open` in another process.
#[test]
fn capacity_zero() {
    if let Some(role) = common::role() {
        assert_eq!(role, "opener");
        let r = Ring::<u64>::open(&common::args()[0]);
        assert!(matches!(r, Err(Error::Corrupted { .. })), "{r:?}");
        return;
    }
    let _wd = common::watchdog(60);
    let bad = |r: ringshm::Result<Ring<u64>>| matches!(r, Err(Error::InvalidArgument { .. }));
    assert!(bad(Ring::<u64>::create(&common::unique("cap0"), 0)));
    assert!(bad(Ring::<u64>::open_or_create(&common::unique("cap0"), 0)));
    assert!(bad(Ring::<u64>::anonymous(0)));
    let name = common::unique("cap0-hdr");
    let ring = Ring::<u64>::create(&name, 4).unwrap();
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(shm_path(&name)).unwrap();
    let mut b = [0u8; 8];
    f.seek(SeekFrom::Start(BOUND_AT)).unwrap();
    f.read_exact(&mut b).unwrap();
    assert_eq!(u64::from_le_bytes(b), 4, "the bound lives at this offset");
    f.seek(SeekFrom::Start(BOUND_AT)).unwrap();
    f.write_all(&0u64.to_le_bytes()).unwrap();
    common::expect_success(common::spawn("capacity_zero", "opener", &[&name]), 30);
    drop(ring);
}

/// An item type aligned to 1024 bytes.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, PartialEq, Debug)]
#[repr(C, align(1024))]
struct Big([u8; 1024]);

/// An item type aligned to 256 bytes.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, PartialEq, Debug)]
#[repr(C, align(256))]
struct Mid([u64; 32]);

/// Defect 7: items with an alignment above 128 travel between processes and
/// are read from properly aligned slots (reading through a misaligned
/// `&T` is undefined behaviour; the address is checked here).
#[test]
fn over_aligned_items_across_processes() {
    if let Some(role) = common::role() {
        let a = common::args();
        match role.as_str() {
            "big" => {
                let tx = Ring::<Big>::open(&a[0]).unwrap().sender();
                for i in 0..10u8 {
                    tx.send(Big([i; 1024])).unwrap();
                }
            }
            "mid" => {
                let tx = Ring::<Mid>::open(&a[0]).unwrap().sender();
                for i in 0..10u64 {
                    tx.send(Mid([i; 32])).unwrap();
                }
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(60);
    let t = "over_aligned_items_across_processes";
    let name = common::unique("align1024");
    let ring = Ring::<Big>::create(&name, 3).unwrap();
    let rx = ring.receiver();
    let child = common::spawn(t, "big", &[&name]);
    for a in ringshm::testing::payload_addresses(&ring) {
        assert_eq!(a % 1024, 0, "payload at {a:#x}");
    }
    for i in 0..10u8 {
        let v = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(v, Big([i; 1024]));
    }
    common::expect_success(child, 30);
    let name = common::unique("align256");
    let ring = Ring::<Mid>::create(&name, 3).unwrap();
    let rx = ring.receiver();
    let child = common::spawn(t, "mid", &[&name]);
    for a in ringshm::testing::payload_addresses(&ring) {
        assert_eq!(a % 256, 0, "payload at {a:#x}");
    }
    for i in 0..10u64 {
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), Mid([i; 32]));
    }
    common::expect_success(child, 30);
}

/// Dropping the last sender of the last process: a receiver sees
/// `Disconnected` on its next `try_recv` after draining.
#[test]
fn last_sender_dropped_disconnects_at_once() {
    let ring = Ring::<u64>::create(&common::unique("last-tx"), 4).unwrap();
    let (tx, rx) = (ring.sender(), ring.receiver());
    // Spend the receiver's first (always due) kernel probe.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(1).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

/// Defect 10's other half: with the skip-count heuristic gone, a segment
/// scribbled by another process must still never hang an operation or
/// panic. A child process writes several inconsistent states into a live
/// ring's indices and slots; every `try_` call returns, and the blocking
/// forms return by their timeout.
#[test]
fn scribbled_ring_never_hangs() {
    // Body offsets of a `Ring<u64>`: `tail` at 0, `head` at 128; slots of
    // 16 bytes (`seq`, payload) from 640. The body starts at 512.
    const BODY: u64 = 512;
    if let Some(role) = common::role() {
        assert_eq!(role, "s");
        let a = common::args();
        let pattern: u64 = a[1].parse().unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(shm_path(&a[0])).unwrap();
        let mut put = |off: u64, v: u64| {
            f.seek(SeekFrom::Start(BODY + off)).unwrap();
            f.write_all(&v.to_le_bytes()).unwrap();
        };
        let far = 1u64 << 40;
        match pattern {
            // Indices far apart, slots on laps ahead of both.
            0 => {
                put(0, far);
                put(128, 0);
                for i in 0..4u64 {
                    put(640 + 16 * i, (far + 4 + i) << 8);
                }
            }
            // Every slot "being read" by live-looking owners, far ahead.
            1 => {
                for i in 0..4u64 {
                    put(640 + 16 * i, (far + i + 1) << 8 | 3);
                }
            }
            // Words that fit no state of their slot.
            2 => {
                for i in 0..4u64 {
                    put(640 + 16 * i, 0xdead_beef_0000_0001 + i);
                }
            }
            // Head ahead of tail, slots consistent with neither.
            _ => {
                put(0, 5);
                put(128, far);
                for i in 0..4u64 {
                    put(640 + 16 * i, (i + 8) << 8);
                }
            }
        }
        return;
    }
    let _wd = common::watchdog(120);
    for pattern in 0..4 {
        let name = common::unique("scribble");
        let ring = Ring::<u64>::create(&name, 4).unwrap();
        let (tx, rx) = (ring.sender(), ring.receiver());
        tx.send(1).unwrap();
        common::expect_success(common::spawn("scribbled_ring_never_hangs", "s", &[&name, &pattern.to_string()]), 30);
        for _ in 0..3 {
            let _ = tx.try_send(2);
            let _ = rx.try_recv();
        }
        let _ = tx.send_timeout(3, Duration::from_millis(50));
        let _ = rx.recv_timeout(Duration::from_millis(50));
    }
}
