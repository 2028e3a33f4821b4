//! Value<T> between real processes: exact counts, float and bool values, and
//! torn-free large values even when a writer is killed mid-store.
mod common;

use std::time::Duration;

use ringshm::{Event, Value};

#[test]
fn ten_processes_add_to_one_value() {
    const M: i64 = 1000;
    if let Some(_role) = common::role() {
        let a = common::args();
        let v = Value::<i64>::open(&a[0]).unwrap();
        let f = Value::<f64>::open(&a[1]).unwrap();
        for _ in 0..M {
            v.fetch_add(1);
        }
        f.fetch_add(0.5);
        return;
    }
    let _wd = common::watchdog(60);
    let (n, fname) = (common::unique("val"), common::unique("valf"));
    let v = Value::<i64>::create(&n, 0).unwrap();
    let f = Value::<f64>::create(&fname, 0.0).unwrap();
    let kids: Vec<_> = (0..10).map(|_| common::spawn("ten_processes_add_to_one_value", "add", &[&n, &fname])).collect();
    for k in kids {
        common::expect_success(k, 50);
    }
    assert_eq!(v.load(), 10 * M);
    assert_eq!(f.load(), 5.0);
}

type Big = [u64; 40];

#[test]
fn big_values_are_never_torn_even_with_a_killed_writer() {
    if let Some(role) = common::role() {
        let a = common::args();
        let v = Value::<Big>::open(&a[0]).unwrap();
        let started = Event::open(&a[1]).unwrap();
        let base: u64 = if role == "w1" { 1 << 32 } else { 2 << 32 };
        started.set();
        for k in 0.. {
            v.store([base + k; 40]);
        }
        return;
    }
    let _wd = common::watchdog(60);
    let (n, e) = (common::unique("big"), common::unique("bige"));
    let v = Value::<Big>::create(&n, [0; 40]).unwrap();
    let started = Event::create(&e).unwrap();
    let w1 = common::spawn("big_values_are_never_torn_even_with_a_killed_writer", "w1", &[&n, &e]);
    let w2 = common::spawn("big_values_are_never_torn_even_with_a_killed_writer", "w2", &[&n, &e]);
    assert!(started.wait_timeout(Duration::from_secs(30)));
    let check = |x: Big| assert!(x.iter().all(|&w| w == x[0]), "torn read: {:?}", &x[..4]);
    for _ in 0..20_000 {
        check(v.load());
    }
    // Kill both writers at arbitrary points (possibly mid-store).
    common::kill9(w1);
    for _ in 0..5_000 {
        check(v.load());
    }
    common::kill9(w2);
    for _ in 0..1_000 {
        check(v.load());
    }
    // A new writer takes the writer lock over from the dead ones.
    v.store([7; 40]);
    assert_eq!(v.load(), [7; 40]);
    assert_eq!(
        v.update(|mut x| {
            x[0] = 8;
            x
        })[0],
        7
    );
    assert_eq!(v.swap([9; 40])[0], 8);
    assert_eq!(v.compare_exchange([9; 40], [10; 40]), Ok([9; 40]));
    assert!(v.compare_exchange([9; 40], [11; 40]).is_err());
}

#[test]
fn atomic_ops_and_types() {
    let v = Value::<u32>::create(&common::unique("ops"), 5).unwrap();
    assert_eq!(v.swap(9), 5);
    assert_eq!(v.compare_exchange(9, 10), Ok(9));
    assert_eq!(v.compare_exchange(9, 11).map_err(|e| e.actual), Err(10));
    assert_eq!(v.update(|x| x * 2), 10);
    assert_eq!(v.fetch_sub(5), 20);
    assert_eq!(v.load(), 15);
    assert_eq!(v.fetch_sub(16), 15);
    assert_eq!(v.load(), u32::MAX); // wraps
    let b = Value::<bool>::create(&common::unique("bool"), false).unwrap();
    b.store(true);
    assert!(Value::<bool>::open(b.name()).unwrap().load());
    let f = Value::<f32>::create(&common::unique("f32"), 1.5).unwrap();
    assert_eq!(f.fetch_sub(0.5), 1.5);
    assert_eq!(f.load(), 1.0);
    let odd = Value::<[u8; 3]>::create(&common::unique("odd"), *b"abc").unwrap();
    assert_eq!(odd.swap(*b"xyz"), *b"abc");
    assert_eq!(odd.load(), *b"xyz");
    // Opening with another type is refused.
    assert!(matches!(Value::<i32>::open(v.name()), Err(ringshm::Error::LayoutMismatch { .. })));
    assert!(matches!(Value::<u32>::open_or_create(v.name(), 0).map(|x| x.load()), Ok(u32::MAX)));
}
