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

/// Defect 8 of issue 7: `notify_one` must wake exactly one waiter (Python's
/// `notify()`), not every waiter watching the condition.
#[test]
fn notify_one_wakes_exactly_one_process() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let cv = Condition::open(&a[0]).unwrap();
        let waiting = Value::<u32>::open(&a[1]).unwrap();
        let woken = Value::<u32>::open(&a[2]).unwrap();
        let g = cv.lock().unwrap();
        waiting.fetch_add(1);
        // A plain wait: any return, spurious or not, counts as woken.
        let g = cv.wait(g).unwrap();
        woken.fetch_add(1);
        drop(g);
        return;
    }
    let _wd = common::watchdog(120);
    let (c, w, k) = (common::unique("cv1"), common::unique("cv1w"), common::unique("cv1k"));
    let cv = Condition::create(&c).unwrap();
    let waiting = Value::<u32>::create(&w, 0).unwrap();
    let woken = Value::<u32>::create(&k, 0).unwrap();
    let kids: Vec<_> =
        (0..3).map(|_| common::spawn("notify_one_wakes_exactly_one_process", "w", &[&c, &w, &k])).collect();
    assert!(common::eventually(60, || waiting.load() == 3), "the waiters never started");
    // Each waiter counted itself under the lock and waits from before it
    // released it: taking the lock here means all three are waiting.
    let g = cv.lock().unwrap();
    cv.notify_one();
    drop(g);
    assert!(common::eventually(60, || woken.load() >= 1), "notify_one woke nobody");
    // A generous window for any wrongly woken waiter to show up (old code:
    // all within one 20 ms slice). A count assertion, not a speed one.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(woken.load(), 1, "notify_one woke more than one waiter");
    let g = cv.lock().unwrap();
    assert_eq!(cv.notify(1), 1, "notify(1) picks exactly one of the two still waiting");
    drop(g);
    assert!(common::eventually(60, || woken.load() == 2));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(woken.load(), 2);
    let g = cv.lock().unwrap();
    cv.notify_all();
    drop(g);
    for kid in kids {
        common::expect_success(kid, 60);
    }
    assert_eq!(woken.load(), 3);
    assert_eq!(cv.notify(5), 0, "nobody waits any more");
}

/// A waiter that timed out does not swallow a later `notify_one`.
#[test]
fn timed_out_waiter_does_not_swallow_a_notification() {
    let _wd = common::watchdog(60);
    let cv = Condition::create(&common::unique("cvto")).unwrap();
    let woken = Value::<u32>::create(&common::unique("cvtow"), 0).unwrap();
    std::thread::scope(|s| {
        let g = cv.lock().unwrap();
        let (g, r) = cv.wait_timeout(g, Duration::from_millis(10)).unwrap();
        assert!(r.timed_out());
        drop(g);
        let waiter = s.spawn(|| {
            let g = cv.lock().unwrap();
            woken.store(1); // registered: we hold the lock until `wait` has our slot
            let g = cv.wait(g).unwrap();
            drop(g);
        });
        assert!(common::eventually(30, || woken.load() == 1));
        let g = cv.lock().unwrap();
        assert_eq!(cv.notify(1), 1);
        drop(g);
        waiter.join().unwrap();
    });
}

/// A notification picked for a waiter that was killed reaches a live waiter.
#[test]
fn notification_for_a_killed_waiter_is_passed_on() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let cv = Condition::open(&a[0]).unwrap();
        let waiting = Value::<u32>::open(&a[1]).unwrap();
        let g = cv.lock().unwrap();
        waiting.fetch_add(1);
        let _g = cv.wait(g);
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(120);
    let (c, w) = (common::unique("cvk"), common::unique("cvkw"));
    let cv = Condition::create(&c).unwrap();
    let waiting = Value::<u32>::create(&w, 0).unwrap();
    let kid = common::spawn("notification_for_a_killed_waiter_is_passed_on", "w", &[&c, &w]);
    assert!(common::eventually(60, || waiting.load() == 1));
    // Let the child's `wait` register (it does so before releasing the lock).
    drop(cv.lock().unwrap());
    common::kill9(kid);
    std::thread::scope(|s| {
        let live = s.spawn(|| {
            let g = cv.lock().unwrap_or_else(|e| e.into_inner());
            waiting.fetch_add(1);
            let (g, r) = cv.wait_timeout(g, Duration::from_secs(30)).unwrap_or_else(|e| e.into_inner());
            drop(g);
            r.timed_out()
        });
        assert!(common::eventually(60, || waiting.load() == 2));
        // Two slots wait, one of them dead; whichever is picked, the live
        // waiter must return notified.
        let g = cv.lock().unwrap();
        assert_eq!(cv.notify(1), 1);
        drop(g);
        assert!(!live.join().unwrap(), "the notification was lost with the dead waiter");
    });
}
