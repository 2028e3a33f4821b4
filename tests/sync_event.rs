//! Event between real processes: every waiter wakes; timeouts return.
mod common;

use std::time::Duration;

use ringshm::{Event, Value};

#[test]
fn set_wakes_every_waiter_in_every_process() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let ev = Event::open(&a[0]).unwrap();
        let ready = Value::<u32>::open(&a[1]).unwrap();
        let woke = Value::<u32>::open(&a[2]).unwrap();
        ready.fetch_add(1);
        ev.wait();
        woke.fetch_add(1);
        return;
    }
    let _wd = common::watchdog(60);
    let (e, r, w) = (common::unique("ev"), common::unique("evr"), common::unique("evw"));
    let ev = Event::create(&e).unwrap();
    let ready = Value::<u32>::create(&r, 0).unwrap();
    let woke = Value::<u32>::create(&w, 0).unwrap();
    let kids: Vec<_> =
        (0..5).map(|_| common::spawn("set_wakes_every_waiter_in_every_process", "w", &[&e, &r, &w])).collect();
    assert!(common::eventually(30, || ready.load() == 5));
    std::thread::sleep(Duration::from_millis(50)); // let them sleep
    assert_eq!(woke.load(), 0);
    ev.set();
    for k in kids {
        common::expect_success(k, 30);
    }
    assert_eq!(woke.load(), 5);
}

#[test]
fn set_then_clear_still_releases_sleepers() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let ev = Event::open(&a[0]).unwrap();
        let ready = Value::<u32>::open(&a[1]).unwrap();
        ready.fetch_add(1);
        assert!(ev.wait_timeout(Duration::from_secs(30)));
        return;
    }
    let _wd = common::watchdog(60);
    let (e, r) = (common::unique("evp"), common::unique("evpr"));
    let ev = Event::create(&e).unwrap();
    let ready = Value::<u32>::create(&r, 0).unwrap();
    let kid = common::spawn("set_then_clear_still_releases_sleepers", "w", &[&e, &r]);
    assert!(common::eventually(30, || ready.load() == 1));
    std::thread::sleep(Duration::from_millis(50));
    ev.set();
    ev.clear();
    common::expect_success(kid, 30);
    assert!(!ev.is_set());
}

#[test]
fn wait_timeout_and_flag() {
    let _wd = common::watchdog(30);
    let ev = Event::create(&common::unique("evt")).unwrap();
    assert!(!ev.is_set());
    assert!(!ev.wait_timeout(Duration::from_millis(20)));
    ev.set();
    assert!(ev.is_set());
    assert!(ev.wait_timeout(Duration::from_millis(20)));
    ev.wait();
    let other = Event::open(ev.name()).unwrap();
    assert!(other.is_set());
    other.clear();
    assert!(!ev.is_set());
}
