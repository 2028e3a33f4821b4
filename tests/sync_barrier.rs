//! Barrier between real processes: rounds with one leader each, timeouts,
//! abort/reset, and a party killed while waiting.
mod common;

use std::time::Duration;

use ringshm::{Barrier, BarrierError, Value};

#[test]
fn rounds_have_one_leader_each() {
    const ROUNDS: u32 = 50;
    if let Some(_role) = common::role() {
        let a = common::args();
        let bar = Barrier::open(&a[0]).unwrap();
        let leaders = Value::<u32>::open(&a[1]).unwrap();
        let arrived = Value::<u32>::open(&a[2]).unwrap();
        for r in 0..ROUNDS {
            arrived.fetch_add(1);
            if bar.wait().unwrap().is_leader() {
                leaders.fetch_add(1);
            }
            // Nobody passes round r before all three arrived in it.
            assert!(arrived.load() >= 3 * (r + 1));
        }
        return;
    }
    let _wd = common::watchdog(60);
    let (b, l, a) = (common::unique("bar"), common::unique("barl"), common::unique("bara"));
    let bar = Barrier::create(&b, 3).unwrap();
    let leaders = Value::<u32>::create(&l, 0).unwrap();
    let _arrived = Value::<u32>::create(&a, 0).unwrap();
    let kids: Vec<_> = (0..3).map(|_| common::spawn("rounds_have_one_leader_each", "p", &[&b, &l, &a])).collect();
    for k in kids {
        common::expect_success(k, 50);
    }
    assert_eq!(leaders.load(), ROUNDS);
    assert!(!bar.is_broken());
    assert_eq!(bar.n_waiting(), 0);
}

#[test]
fn party_killed_while_waiting_breaks_it() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let bar = Barrier::open(&a[0]).unwrap();
        let _ = bar.wait();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(60);
    let b = common::unique("bark");
    let bar = Barrier::create(&b, 3).unwrap();
    let kid = common::spawn("party_killed_while_waiting_breaks_it", "p", &[&b]);
    assert!(common::eventually(30, || bar.n_waiting() == 1));
    common::kill9(kid);
    // We arrive second; the third never will, and the first is dead.
    assert_eq!(bar.wait(), Err(BarrierError::Broken));
    assert!(bar.is_broken());
    assert_eq!(bar.wait(), Err(BarrierError::Broken));
    bar.reset();
    assert!(!bar.is_broken());
}

#[test]
fn timeout_abort_and_reset() {
    let _wd = common::watchdog(30);
    let bar = Barrier::create(&common::unique("bart"), 2).unwrap();
    assert_eq!(bar.wait_timeout(Duration::from_millis(20)), Err(BarrierError::Timeout));
    assert!(bar.is_broken());
    assert_eq!(bar.wait_timeout(Duration::from_millis(20)), Err(BarrierError::Broken));
    bar.reset();
    assert!(!bar.is_broken());
    let other = Barrier::open(bar.name()).unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(|| other.wait_timeout(Duration::from_secs(20)));
        let mine = bar.wait_timeout(Duration::from_secs(20)).unwrap();
        let theirs = h.join().unwrap().unwrap();
        assert!(mine.is_leader() ^ theirs.is_leader());
    });
    bar.abort();
    assert_eq!(bar.wait(), Err(BarrierError::Broken));
    bar.reset();
    assert_eq!(bar.parties(), 2);
    assert!(matches!(Barrier::create(&common::unique("bar0"), 0), Err(ringshm::Error::InvalidArgument { .. })));
}
