//! MPMC ring across real processes: 2 producers × 2 consumers with every
//! message counted, disconnection on SIGKILL, and recovery of slots held by
//! killed processes.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use ringshm::mpmc::Ring;
use ringshm::{RecvError, RecvTimeoutError, TryRecvError};

const PER_PRODUCER: u64 = 600_000;

fn tag(producer: u64, i: u64) -> u64 {
    producer << 40 | i
}

/// Two producer processes and two consumer processes; each consumer writes
/// what it got to a file and the parent checks every message arrived exactly
/// once, in order per producer.
#[test]
fn two_by_two_counts_every_message() {
    if let Some(role) = common::role() {
        let a = common::args();
        let ring = Ring::<u64>::open(&a[0]).unwrap();
        match role.as_str() {
            "producer" => {
                let p: u64 = a[1].parse().unwrap();
                let tx = ring.sender();
                for i in 0..PER_PRODUCER {
                    tx.send(tag(p, i)).unwrap();
                }
            }
            "consumer" => {
                let rx = ring.receiver();
                let mut last = [None::<u64>; 2];
                let mut got = Vec::with_capacity(PER_PRODUCER as usize);
                let mut buf = [0u64; 32];
                loop {
                    let n = rx.recv_many(&mut buf);
                    let batch: &[u64] = if n > 0 {
                        &buf[..n]
                    } else {
                        match rx.recv() {
                            Ok(v) => {
                                buf[0] = v;
                                &buf[..1]
                            }
                            Err(RecvError) => break,
                        }
                    };
                    for &v in batch {
                        let p = (v >> 40) as usize;
                        let i = v & ((1 << 40) - 1);
                        assert!(last[p].is_none_or(|l| l < i), "producer {p}: {i} after {:?}", last[p]);
                        last[p] = Some(i);
                        got.push(v);
                    }
                }
                let mut f = std::fs::File::create(&a[1]).unwrap();
                for v in got {
                    f.write_all(&v.to_le_bytes()).unwrap();
                }
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(240);
    let name = common::unique("2x2");
    let ring = Ring::<u64>::create(&name, 1024).unwrap();
    let dir = std::env::temp_dir();
    let files: Vec<String> = (0..2).map(|c| dir.join(format!("{name}-c{c}")).to_string_lossy().into_owned()).collect();
    // Consumers first, so that "no sender yet" is exercised.
    let mut kids: Vec<_> =
        files.iter().map(|f| common::spawn("two_by_two_counts_every_message", "consumer", &[&name, f])).collect();
    for p in 0..2 {
        let p = p.to_string();
        kids.push(common::spawn("two_by_two_counts_every_message", "producer", &[&name, &p]));
    }
    for k in kids {
        common::expect_success(k, 200);
    }
    let mut seen = HashSet::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        std::fs::remove_file(f).unwrap();
        for c in bytes.chunks_exact(8) {
            let v = u64::from_le_bytes(c.try_into().unwrap());
            assert!(seen.insert(v), "duplicate {v:#x}");
        }
    }
    assert_eq!(seen.len() as u64, 2 * PER_PRODUCER, "messages lost");
    for p in 0..2 {
        for i in 0..PER_PRODUCER {
            assert!(seen.contains(&tag(p, i)));
        }
    }
    assert_eq!(ring.lost(), 0);
}

/// A sender process killed after claiming a slot but before publishing it:
/// receivers do not hang; the slot is skipped and counted as lost, and every
/// later message is delivered.
#[test]
fn slot_of_killed_sender_is_skipped_and_counted() {
    if let Some(_role) = common::role() {
        let ring = Ring::<u64>::open(&common::args()[0]).unwrap();
        let tx = ring.sender();
        tx.send(1).unwrap();
        assert!(ringshm::testing::abandon_send(&tx));
        tx.send(3).unwrap(); // lands after the abandoned slot
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("skip");
    let ring = Ring::<u64>::create(&name, 8).unwrap();
    let rx = ring.receiver();
    let tx = ring.sender(); // keeps the ring connected after the kill
    let child = common::spawn("slot_of_killed_sender_is_skipped_and_counted", "s", &[&name]);
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(1));
    assert!(common::eventually(30, || ring.len() == 2), "claimed slot + one message");
    // The claimer lives: its slot must not be taken from it.
    assert_eq!(rx.recv_timeout(Duration::from_millis(100)), Err(RecvTimeoutError::Timeout));
    assert_eq!(ring.lost(), 0);
    common::kill9(child);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(3), "the slot of the dead sender is skipped");
    assert_eq!(ring.lost(), 1);
    tx.send(4).unwrap();
    assert_eq!(rx.recv(), Ok(4));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

/// Producer processes SIGKILLed at arbitrary moments while sending flat out:
/// the consumer never hangs, never sees a duplicate or a reordering, and ends
/// with `Disconnected`.
#[test]
fn random_sender_kills_never_wedge() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let ring = Ring::<u64>::open(&a[0]).unwrap();
        let p: u64 = a[1].parse().unwrap();
        let tx = ring.sender();
        for i in 0.. {
            if tx.send(tag(p, i)).is_err() {
                break;
            }
        }
        return;
    }
    let _wd = common::watchdog(120);
    for round in 0..4u64 {
        let name = common::unique("kills");
        let ring = Ring::<u64>::create(&name, 16).unwrap();
        let rx = ring.receiver();
        let kids: Vec<_> =
            (0..2).map(|p| common::spawn("random_sender_kills_never_wedge", "p", &[&name, &p.to_string()])).collect();
        let mut last = [None::<u64>; 2];
        let mut count = 0u64;
        // Kill each child after it got going, at a different moment each round.
        let killer = std::thread::spawn(move || {
            for (k, child) in kids.into_iter().enumerate() {
                std::thread::sleep(Duration::from_millis(30 + 17 * (round + k as u64)));
                common::kill9(child);
            }
        });
        while let Ok(v) = rx.recv() {
            let p = (v >> 40) as usize;
            let i = v & ((1 << 40) - 1);
            assert!(last[p].is_none_or(|l| l < i), "duplicate or reordered");
            last[p] = Some(i);
            count += 1;
        }
        killer.join().unwrap();
        assert!(count > 0);
        // Nothing is left behind: every slot was either delivered or recovered.
        assert_eq!(ring.len(), 0, "round {round}: lost {}", ring.lost());
    }
}

/// Receivers all killed: a sender blocked on a full ring ends with
/// `Disconnected`.
#[test]
fn blocked_send_ends_when_receivers_are_killed() {
    if let Some(_role) = common::role() {
        let ring = Ring::<u64>::open(&common::args()[0]).unwrap();
        let rx = ring.receiver();
        assert_eq!(rx.recv(), Ok(0));
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("rdie");
    let ring = Ring::<u64>::create(&name, 2).unwrap();
    let tx = ring.sender();
    let kids: Vec<_> =
        (0..2).map(|_| common::spawn("blocked_send_ends_when_receivers_are_killed", "r", &[&name])).collect();
    tx.send(0).unwrap();
    tx.send(0).unwrap();
    assert!(common::eventually(30, || ring.is_empty()));
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        kids.into_iter().for_each(common::kill9);
    });
    assert_eq!(tx.send(3).map_err(|e| e.into_inner()), Err(3));
    killer.join().unwrap();
}
