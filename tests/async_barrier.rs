//! `Barrier::wait_async` across real processes: rounds with a blocking
//! party, a dropped future breaking the generation, and a SIGKILLed party
//! ending the wait.
#![cfg(feature = "async")]

mod common;

use std::time::Duration;

use ringshm::{Barrier, BarrierError, Event, Value};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn rounds_with_a_blocking_party() {
    const ROUNDS: u64 = 300;
    if let Some(role) = common::role() {
        assert_eq!(role, "party");
        let a = common::args();
        let b = Barrier::open(&a[0]).unwrap();
        let leaders = Value::<u64>::open(&a[1]).unwrap();
        for _ in 0..ROUNDS {
            if b.wait().unwrap().is_leader() {
                leaders.fetch_add(1);
            }
        }
        return;
    }
    let _wd = common::watchdog(120);
    let (bn, vn) = (common::unique("abar"), common::unique("abar-v"));
    let b = Barrier::create(&bn, 2).unwrap();
    let leaders = Value::<u64>::create(&vn, 0).unwrap();
    let child = common::spawn("rounds_with_a_blocking_party", "party", &[&bn, &vn]);
    let ours = rt().block_on(async {
        let mut ours = 0;
        for _ in 0..ROUNDS {
            if b.wait_async().await.unwrap().is_leader() {
                ours += 1;
            }
        }
        ours
    });
    common::expect_success(child, 60);
    assert_eq!(ours + leaders.load(), ROUNDS, "exactly one leader per round");
}

#[test]
fn dropped_future_breaks_the_generation() {
    if let Some(role) = common::role() {
        assert_eq!(role, "late");
        let a = common::args();
        let b = Barrier::open(&a[0]).unwrap();
        assert!(Event::open(&a[1]).unwrap().wait_timeout(Duration::from_secs(30)));
        assert_eq!(b.wait().unwrap_err(), BarrierError::Broken);
        return;
    }
    let _wd = common::watchdog(60);
    let (bn, en) = (common::unique("abar-drop"), common::unique("abar-drop-ev"));
    let b = Barrier::create(&bn, 2).unwrap();
    let ev = Event::create(&en).unwrap();
    let child = common::spawn("dropped_future_breaks_the_generation", "late", &[&bn, &en]);
    rt().block_on(async {
        let r = tokio::time::timeout(Duration::from_millis(50), b.wait_async()).await;
        assert!(r.is_err(), "nobody else arrived: the wait must time out");
    });
    assert!(b.is_broken(), "a party that left breaks its generation");
    ev.set();
    common::expect_success(child, 30);
}

#[test]
fn sigkilled_party_breaks_the_wait() {
    if let Some(role) = common::role() {
        assert_eq!(role, "victim");
        let b = Barrier::open(&common::args()[0]).unwrap();
        let _ = b.wait();
        std::thread::sleep(Duration::from_secs(300));
        return;
    }
    let _wd = common::watchdog(60);
    let bn = common::unique("abar-kill");
    let b = Barrier::create(&bn, 3).unwrap();
    let child = common::spawn("sigkilled_party_breaks_the_wait", "victim", &[&bn]);
    assert!(common::eventually(20, || b.n_waiting() == 1), "the child never arrived");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        common::kill9(child);
    });
    let r = rt().block_on(b.wait_async());
    assert_eq!(r.unwrap_err(), BarrierError::Broken);
    killer.join().unwrap();
}
