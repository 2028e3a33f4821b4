//! `broadcast::Ring` between real processes: fan-out to subscriber processes,
//! subscribers killed or stopped, publisher death and takeover, bad input.

mod common;

use std::time::Duration;

use ringshm::broadcast::{self, Publisher, Ring, Subscriber, MAX_SUBSCRIBERS};
use ringshm::{Error, Event, Options, RecvError, RecvTimeoutError, TryRecvError};

type Msg = [u64; 8];

/// Message `seq`: each word derived from the sequence number, so a torn or
/// misplaced copy shows.
fn msg(seq: u64) -> Msg {
    core::array::from_fn(|k| {
        if k == 0 {
            seq
        } else {
            seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(k as u32 * 8) ^ k as u64
        }
    })
}

/// The sequence number of `m`, after checking every word against it.
fn seq_of(m: &Msg) -> u64 {
    assert_eq!(*m, msg(m[0]), "torn or foreign message");
    m[0]
}

fn arg_u64(a: &[String], i: usize) -> u64 {
    a[i].parse().unwrap()
}

fn overwrite() -> Options {
    Options::new().overwrite(true)
}

fn open(name: &str, ow: bool) -> Ring<Msg> {
    if ow {
        Ring::<Msg>::open_with(name, &overwrite()).unwrap()
    } else {
        Ring::<Msg>::open(name).unwrap()
    }
}

/// Child roles, shared by every test below.
fn child(role: &str) {
    let a = common::args();
    match role {
        // Receive messages 0..n in order, then expect Disconnected.
        "all" => {
            let n = arg_u64(&a, 1);
            let mut rx = Ring::<Msg>::open(&a[0]).unwrap().subscribe().unwrap();
            for want in 0..n {
                let m = rx.recv().unwrap_or_else(|_| panic!("disconnected before message {want}"));
                assert_eq!(seq_of(&m), want, "out of order");
            }
            assert_eq!(rx.recv(), Err(RecvError));
            assert_eq!(rx.missed(), 0);
        }
        // Read `k` messages, then stop reading (holding the publisher back)
        // until killed.
        "stuck" => {
            let k = arg_u64(&a, 1);
            let mut rx = Ring::<Msg>::open(&a[0]).unwrap().subscribe().unwrap();
            for want in 0..k {
                assert_eq!(seq_of(&rx.recv().unwrap()), want);
            }
            Event::open(&a[2]).unwrap().set();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        // Read 10, drop, re-subscribe when told; expect exactly 100..110.
        "resub" => {
            let ring = Ring::<Msg>::open(&a[0]).unwrap();
            let ev = |s: &str| Event::open(&format!("{}-{s}", a[0])).unwrap();
            let mut rx = ring.subscribe().unwrap();
            ev("subscribed").set();
            for want in 0..10 {
                assert_eq!(seq_of(&rx.recv().unwrap()), want);
            }
            drop(rx);
            ev("dropped").set();
            assert!(ev("sent").wait_timeout(Duration::from_secs(60)));
            let mut rx = ring.subscribe().unwrap();
            ev("resubscribed").set();
            for want in 100..110 {
                assert_eq!(seq_of(&rx.recv().unwrap()), want, "a new subscriber starts at the next message sent");
            }
            assert_eq!(rx.recv(), Err(RecvError));
        }
        // Overwrite mode: everything sent after subscribing is received
        // (in order, untorn) or counted missed; prints "received missed".
        "lossy" => {
            let n = arg_u64(&a, 1);
            let mut rx: Subscriber<Msg> = open(&a[0], true).subscribe().unwrap();
            Event::open(&a[2]).unwrap().set();
            let mut received = 0u64;
            let mut last = None;
            while let Ok(m) = rx.recv() {
                let s = seq_of(&m);
                assert!(last.is_none_or(|l| s > l), "out of order: {s} after {last:?}");
                last = Some(s);
                received += 1;
            }
            assert_eq!(received + rx.missed(), n, "received {received} + missed {} != sent {n}", rx.missed());
            assert!(rx.missed() > 0, "the subscriber was stopped for a whole burst and missed nothing");
        }
        // Take the publisher role, send `from..to`, then either exit (role
        // dropped) or, with a 4th argument, signal and wait to be killed.
        "publisher" => {
            let (from, to) = (arg_u64(&a, 1), arg_u64(&a, 2));
            let mut tx: Publisher<Msg> = Ring::<Msg>::open(&a[0]).unwrap().publisher().unwrap();
            for s in from..to {
                tx.send(msg(s)).unwrap();
            }
            if let Some(ev) = a.get(3) {
                Event::open(ev).unwrap().set();
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        // Hold every subscriber place until killed.
        "hog" => {
            let ring = Ring::<Msg>::open(&a[0]).unwrap();
            let subs: Vec<_> = (0..MAX_SUBSCRIBERS).map(|_| ring.subscribe().unwrap()).collect();
            Event::open(&a[1]).unwrap().set();
            loop {
                std::thread::sleep(Duration::from_secs(1));
                assert_eq!(subs.len(), MAX_SUBSCRIBERS);
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn lossless_fan_out_million() {
    if let Some(role) = common::role() {
        return child(&role);
    }
    let _wd = common::watchdog(600);
    const N: u64 = 1_000_000;
    let name = common::unique("bc-million");
    let ring = Ring::<Msg>::create(&name, 4096).unwrap();
    let kids: Vec<_> =
        (0..3).map(|_| common::spawn("lossless_fan_out_million", "all", &[&name, &N.to_string()])).collect();
    assert!(common::eventually(60, || ring.subscribers() == 3), "subscribers did not start");
    let mut tx = ring.publisher().unwrap();
    for s in 0..N {
        tx.send(msg(s)).unwrap();
    }
    drop(tx);
    for k in kids {
        common::expect_success(k, 300);
    }
}

#[test]
fn killed_subscriber_is_detached() {
    if let Some(role) = common::role() {
        return child(&role);
    }
    let _wd = common::watchdog(300);
    const N: u64 = 200_000;
    let name = common::unique("bc-kill");
    let stuck_ev = format!("{name}-stuck");
    let ev = Event::create(&stuck_ev).unwrap();
    let ring = Ring::<Msg>::create(&name, 1024).unwrap();
    let good: Vec<_> =
        (0..2).map(|_| common::spawn("killed_subscriber_is_detached", "all", &[&name, &N.to_string()])).collect();
    let stuck = common::spawn("killed_subscriber_is_detached", "stuck", &[&name, "5000", &stuck_ev]);
    assert!(common::eventually(60, || ring.subscribers() == 3), "subscribers did not start");
    let mut tx = ring.publisher().unwrap();
    for s in 0..5000 {
        tx.send(msg(s)).unwrap();
    }
    assert!(ev.wait_timeout(Duration::from_secs(60)));
    // The stuck subscriber has read 5000 and stopped; it published its
    // position lazily (at most capacity / 4 late), and holds the ring at
    // that position + capacity.
    let stuck_pid = stuck.id();
    let held = ring.info().subscribers.iter().find(|s| s.pid == stuck_pid).expect("stuck subscriber").position;
    assert!((5000 - 256..=5000).contains(&held), "published position {held}");
    for s in 5000..held + 1024 {
        tx.send(msg(s)).unwrap();
    }
    assert!(
        tx.send_timeout(msg(held + 1024), Duration::from_millis(50)).unwrap_err().is_timeout(),
        "a live subscriber that stopped reading must hold a lossless publisher back"
    );
    common::kill9(stuck);
    // The publisher goes on: the dead subscriber is detached by itself.
    for s in held + 1024..N {
        tx.send(msg(s)).unwrap();
    }
    assert_eq!(tx.subscribers(), 2);
    assert!(ring.info().subscribers.iter().all(|s| s.alive), "the dead subscriber is still in the table");
    drop(tx);
    for k in good {
        common::expect_success(k, 120);
    }
}

#[test]
fn resubscribe_starts_at_current_position() {
    if let Some(role) = common::role() {
        return child(&role);
    }
    let _wd = common::watchdog(120);
    let name = common::unique("bc-resub");
    let ring = Ring::<Msg>::create(&name, 16).unwrap();
    let ev = |s: &str| Event::create(&format!("{name}-{s}")).unwrap();
    let (subscribed, dropped, sent, resubscribed) = (ev("subscribed"), ev("dropped"), ev("sent"), ev("resubscribed"));
    let kid = common::spawn("resubscribe_starts_at_current_position", "resub", &[&name]);
    let d = Duration::from_secs(60);
    assert!(subscribed.wait_timeout(d));
    let mut tx = ring.publisher().unwrap();
    for s in 0..10 {
        tx.send(msg(s)).unwrap();
    }
    assert!(dropped.wait_timeout(d));
    // Nobody holds the ring back now: 90 messages through 16 slots.
    for s in 10..100 {
        tx.try_send(msg(s)).unwrap();
    }
    sent.set();
    assert!(resubscribed.wait_timeout(d));
    for s in 100..110 {
        tx.send(msg(s)).unwrap();
    }
    drop(tx);
    common::expect_success(kid, 60);
}

#[test]
fn overwrite_stopped_subscriber_skips_and_counts() {
    if let Some(role) = common::role() {
        return child(&role);
    }
    let _wd = common::watchdog(300);
    const N: u64 = 100_000;
    let name = common::unique("bc-stop");
    let ready_ev = format!("{name}-ready");
    let ready = Event::create(&ready_ev).unwrap();
    let ring = Ring::<Msg>::create_with(&name, 64, &overwrite()).unwrap();
    let mut tx = ring.publisher().unwrap();
    let kid =
        common::spawn("overwrite_stopped_subscriber_skips_and_counts", "lossy", &[&name, &N.to_string(), &ready_ev]);
    assert!(ready.wait_timeout(Duration::from_secs(60)));
    let pid = kid.id() as i32;
    let signal = |sig| {
        // SAFETY: `kill` with our own child's pid; no memory involved.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    };
    let mut s = 0;
    let mut burst = |tx: &mut Publisher<Msg>, n: u64| {
        for _ in 0..n {
            // The publisher never waits in overwrite mode.
            tx.try_send(msg(s)).expect("try_send in overwrite mode is never Full");
            s += 1;
        }
    };
    burst(&mut tx, 1000);
    signal(libc::SIGSTOP);
    let state = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| st.rsplit(')').next().unwrap_or("").trim().starts_with('T'))
    };
    assert!(common::eventually(30, || state().unwrap_or(false)), "child did not stop");
    burst(&mut tx, 50_000);
    signal(libc::SIGCONT);
    burst(&mut tx, N - 51_000);
    drop(tx);
    common::expect_success(kid, 120);
}

#[test]
fn publisher_death_then_takeover() {
    if let Some(role) = common::role() {
        return child(&role);
    }
    let _wd = common::watchdog(120);
    let name = common::unique("bc-pubdeath");
    let sent_ev = format!("{name}-sent");
    let sent = Event::create(&sent_ev).unwrap();
    let ring = Ring::<Msg>::create(&name, 256).unwrap();
    let mut subs = [ring.subscribe().unwrap(), ring.subscribe().unwrap()];
    let p1 = common::spawn("publisher_death_then_takeover", "publisher", &[&name, "0", "100", &sent_ev]);
    assert!(sent.wait_timeout(Duration::from_secs(60)));
    common::kill9(p1);
    for rx in &mut subs {
        for want in 0..100 {
            assert_eq!(seq_of(&rx.recv().unwrap()), want);
        }
        // Drained: the dead publisher is noticed without its help.
        assert_eq!(rx.recv(), Err(RecvError));
    }
    // Another process takes the role over and goes on from message 100.
    let p2 = common::spawn("publisher_death_then_takeover", "publisher", &[&name, "100", "200"]);
    for rx in &mut subs {
        // Until the new process holds the role, the ring reads as
        // disconnected (the old publisher is gone).
        let first = loop {
            match rx.recv() {
                Ok(m) => break m,
                Err(RecvError) => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        assert_eq!(seq_of(&first), 100);
        for want in 101..200 {
            assert_eq!(seq_of(&rx.recv().unwrap()), want);
        }
    }
    common::expect_success(p2, 60);
    for rx in &mut subs {
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Err(RecvTimeoutError::Disconnected));
    }
}

#[test]
fn subscriber_table_full_across_processes() {
    if let Some(role) = common::role() {
        return child(&role);
    }
    let _wd = common::watchdog(120);
    let name = common::unique("bc-full");
    let ev_name = format!("{name}-hog");
    let ev = Event::create(&ev_name).unwrap();
    let ring = Ring::<Msg>::create(&name, 8).unwrap();
    let hog = common::spawn("subscriber_table_full_across_processes", "hog", &[&name, &ev_name]);
    assert!(ev.wait_timeout(Duration::from_secs(60)));
    let err = ring.subscribe().unwrap_err();
    assert!(matches!(err, Error::RoleTaken { .. }), "{err}");
    assert!(err.to_string().contains("all 64 places are in use"), "{err}");
    common::kill9(hog);
    // The dead process's places are reused.
    let mut rx = ring.subscribe().unwrap();
    let mut tx = ring.publisher().unwrap();
    tx.send(msg(7)).unwrap();
    assert_eq!(seq_of(&rx.recv().unwrap()), 7);
    assert_eq!(ring.subscribers(), 1);
}

#[test]
fn wrong_mode_or_type_on_open() {
    let name = common::unique("bc-wrong");
    let _ring = Ring::<Msg>::create(&name, 8).unwrap();
    let err = Ring::<Msg>::open_with(&name, &overwrite()).unwrap_err();
    assert!(matches!(err, Error::LayoutMismatch { .. }), "{err}");
    assert!(err.to_string().contains("lossless mode"), "{err}");
    let err = Ring::<[u32; 16]>::open(&name).unwrap_err();
    assert!(matches!(err, Error::LayoutMismatch { .. }), "{err}");
    let err = ringshm::spsc::Ring::<Msg>::open(&name).unwrap_err();
    assert!(matches!(err, Error::WrongKind { .. }), "{err}");
    let err = Ring::<Msg>::open_or_create_with(&name, 8, &overwrite()).unwrap_err();
    assert!(matches!(err, Error::LayoutMismatch { .. }), "{err}");

    let ow = common::unique("bc-wrong-ow");
    let _r2 = Ring::<u64>::create_with(&ow, 8, &overwrite()).unwrap();
    let err = Ring::<u64>::open(&ow).unwrap_err();
    assert!(err.to_string().contains("overwrite(true)"), "{err}");
    assert!(Ring::<u64>::open_with(&ow, &overwrite()).unwrap().is_overwrite());
    assert!(matches!(Ring::<u64>::create(&ow, 8), Err(Error::AlreadyExists { .. })));
    assert!(matches!(Ring::<u64>::create(&common::unique("bc-zero"), 0), Err(Error::InvalidArgument { .. })));
}

/// Writes `v` at byte `off` of the segment file, as a hostile process would.
fn scribble(name: &str, off: u64, v: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
    f.write_all_at(&v.to_ne_bytes(), off).unwrap();
}

/// Byte offsets: header 512, control block 512 (tail first), table 64 x 128.
const TAIL: u64 = 512;
const SLOTS: u64 = 512 + 512 + 64 * 128;

#[test]
fn scribbled_segment_gives_errors() {
    let _wd = common::watchdog(60);
    let name = common::unique("bc-scribble");
    let ring = Ring::<u64>::create(&name, 8).unwrap();
    let mut tx = ring.publisher().unwrap();
    let mut rx = ring.subscribe().unwrap();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    // A sequence word from the future (slot 1, 16 bytes per slot): the
    // lossless subscriber was "lapped", which cannot happen to a live one,
    // so the ring is poisoned.
    scribble(&name, SLOTS + 16, 1 << 40);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert!(tx.try_send(3).unwrap_err().is_disconnected());
    assert!(matches!(Ring::<u64>::open(&name), Err(Error::Corrupted { .. })));

    // A tail out of range: refused when subscribing or publishing.
    let name = common::unique("bc-scribble-tail");
    let ring = Ring::<u64>::create(&name, 8).unwrap();
    scribble(&name, TAIL, u64::MAX - 3);
    assert!(matches!(ring.subscribe(), Err(Error::Corrupted { .. })));
    assert!(matches!(Ring::<u64>::open(&name), Err(Error::Corrupted { .. })));

    let name = common::unique("bc-scribble-tail2");
    let ring = Ring::<u64>::create_with(&name, 8, &overwrite()).unwrap();
    scribble(&name, TAIL, u64::MAX - 3);
    assert!(matches!(ring.publisher(), Err(Error::Corrupted { .. })));

    // Overwrite mode: a tail far behind the subscriber is found on the empty path.
    let name = common::unique("bc-scribble-ow");
    let ring = Ring::<u64>::create_with(&name, 8, &overwrite()).unwrap();
    let mut tx = ring.publisher().unwrap();
    for i in 0..20 {
        tx.send(i).unwrap();
    }
    let mut rx = ring.subscribe().unwrap();
    scribble(&name, TAIL, 3);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

/// Fuzz-found: a sequence word "from the future" while `tail` says nothing
/// was sent made `ready` and `try_recv` disagree, and `recv_timeout` spun
/// past its deadline for ever.
#[test]
fn scribbled_sequence_word_does_not_defeat_the_timeout() {
    let _wd = common::watchdog(60);
    let name = common::unique("bc-scribble-seq");
    let ring = Ring::<u64>::create_with(&name, 8, &overwrite()).unwrap();
    let _tx = ring.publisher().unwrap();
    let mut rx = ring.subscribe().unwrap();
    scribble(&name, SLOTS, 100);
    assert_eq!(rx.recv_timeout(Duration::from_millis(20)), Err(RecvTimeoutError::Timeout));
}

/// A publisher that died between completing messages and counting them in
/// `tail` (`send_slice` counts once per batch): subscribers may already
/// have read them, so their cursors are past `tail`. The next publisher
/// adopts the completed messages instead of calling the ring corrupted.
#[test]
fn takeover_adopts_completed_but_uncounted_messages() {
    let name = common::unique("bc-adopt");
    let ring = Ring::<u64>::create(&name, 8).unwrap();
    let mut rx = ring.subscribe().unwrap();
    let mut tx = ring.publisher().unwrap();
    assert_eq!(tx.send_slice(&[10, 11, 12]), 3);
    drop(tx);
    for want in [10, 11, 12] {
        assert_eq!(rx.try_recv(), Ok(want));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected)); // publishes the cursor (3)
    scribble(&name, TAIL, 1); // as if the batch's tail store never happened
    let mut tx = ring.publisher().expect("the completed messages are adopted");
    assert_eq!(tx.sent(), 3);
    tx.send(13).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(13));
}

#[test]
fn bounds() {
    fn send<T: Send>() {}
    send::<Ring<Msg>>();
    send::<Publisher<Msg>>();
    send::<Subscriber<Msg>>();
    fn sync<T: Sync>() {}
    sync::<Ring<Msg>>();
    let _ = broadcast::MAX_SUBSCRIBERS;
}
