//! Condition between real processes: hand-offs, notify_all, timeouts, and a
//! holder killed while holding the condition's lock.
mod common;

use std::time::Duration;

use ringshm::{Condition, Event, Value};

#[test]
fn ping_pong_hand_off() {
    const ROUNDS: u32 = 200;
    if let Some(_role) = common::role() {
        let a = common::args();
        let cv = Condition::open(&a[0]).unwrap();
        let turn = Value::<u32>::open(&a[1]).unwrap();
        for i in 0..ROUNDS {
            let g = cv.lock().unwrap();
            let g = cv.wait_while(g, |_| turn.load() != 2 * i + 1).unwrap();
            turn.store(2 * i + 2);
            cv.notify_all();
            drop(g);
        }
        return;
    }
    let _wd = common::watchdog(60);
    let (c, t) = (common::unique("cv"), common::unique("cvt"));
    let cv = Condition::create(&c).unwrap();
    let turn = Value::<u32>::create(&t, 0).unwrap();
    let kid = common::spawn("ping_pong_hand_off", "pong", &[&c, &t]);
    for i in 0..ROUNDS {
        let g = cv.lock().unwrap();
        turn.store(2 * i + 1);
        cv.notify_all();
        let g = cv.wait_while(g, |_| turn.load() != 2 * i + 2).unwrap();
        drop(g);
    }
    common::expect_success(kid, 30);
    assert_eq!(turn.load(), 2 * ROUNDS);
}

#[test]
fn notify_all_wakes_every_process() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let cv = Condition::open(&a[0]).unwrap();
        let go = Value::<u32>::open(&a[1]).unwrap();
        let waiting = Value::<u32>::open(&a[2]).unwrap();
        let g = cv.lock().unwrap();
        waiting.fetch_add(1);
        let g = cv.wait_while(g, |_| go.load() == 0).unwrap();
        drop(g);
        return;
    }
    let _wd = common::watchdog(60);
    let (c, g, w) = (common::unique("cva"), common::unique("cvag"), common::unique("cvaw"));
    let cv = Condition::create(&c).unwrap();
    let go = Value::<u32>::create(&g, 0).unwrap();
    let waiting = Value::<u32>::create(&w, 0).unwrap();
    let kids: Vec<_> = (0..4).map(|_| common::spawn("notify_all_wakes_every_process", "w", &[&c, &g, &w])).collect();
    assert!(common::eventually(30, || waiting.load() == 4));
    {
        let _l = cv.lock().unwrap();
        go.store(1);
        cv.notify_all();
    }
    for k in kids {
        common::expect_success(k, 30);
    }
}

#[test]
fn wait_timeout_returns_and_notify_one() {
    let _wd = common::watchdog(30);
    let cv = Condition::create(&common::unique("cvto")).unwrap();
    let g = cv.lock().unwrap();
    let (g, r) = cv.wait_timeout(g, Duration::from_millis(20)).unwrap();
    assert!(r.timed_out());
    let (g, r) = cv.wait_timeout_while(g, Duration::from_millis(20), |_| true).unwrap();
    assert!(r.timed_out());
    let (g, r) = cv.wait_timeout_while(g, Duration::from_millis(20), |_| false).unwrap();
    assert!(!r.timed_out());
    drop(g);
    cv.notify_one(); // nobody waits: a no-op
    assert!(cv.try_lock().is_ok());
}

#[test]
fn holder_killed_gives_owner_died() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let cv = Condition::open(&a[0]).unwrap();
        let held = Event::open(&a[1]).unwrap();
        let _g = cv.lock().unwrap();
        held.set();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(60);
    let (c, e) = (common::unique("cvk"), common::unique("cvke"));
    let cv = Condition::create(&c).unwrap();
    let held = Event::create(&e).unwrap();
    let kid = common::spawn("holder_killed_gives_owner_died", "hold", &[&c, &e]);
    assert!(held.wait_timeout(Duration::from_secs(30)));
    common::kill9(kid);
    let g = cv.lock().expect_err("expected OwnerDied").into_inner();
    drop(g);
    assert!(cv.lock().is_ok());
}
