//! Array<T> between real processes: Python's hello -> Hello, per-element
//! atomic updates, and multi-element updates under the guard.
mod common;

use ringshm::Array;

#[test]
fn hello_becomes_hello_in_a_child() {
    if let Some(_role) = common::role() {
        let a = Array::<u8>::open(&common::args()[0]).unwrap();
        assert_eq!(a.to_vec(), b"hello");
        a.set(0, b'H');
        return;
    }
    let _wd = common::watchdog(30);
    let n = common::unique("arr");
    let a = Array::<u8>::create_from(&n, b"hello").unwrap();
    common::expect_success(common::spawn("hello_becomes_hello_in_a_child", "c", &[&n]), 20);
    assert_eq!(a.to_vec(), b"Hello");
    assert_eq!(a.get(0), Some(b'H'));
    assert_eq!(a.get(5), None);
}

#[test]
fn guarded_updates_are_atomic_across_processes() {
    const M: i32 = 500;
    if let Some(_role) = common::role() {
        let a = Array::<i32>::open(&common::args()[0]).unwrap();
        for _ in 0..M {
            {
                let mut g = a.lock();
                assert!(g.iter().all(|&x| x == g[0]), "a half-done update was visible");
                for x in g.iter_mut() {
                    *x += 1;
                }
            }
            a.fetch_add(0, 0);
            let snap = a.to_vec();
            assert!(snap.iter().all(|&x| x == snap[0]));
        }
        return;
    }
    let _wd = common::watchdog(60);
    let n = common::unique("arrg");
    let a = Array::<i32>::create(&n, 16).unwrap();
    let kids: Vec<_> =
        (0..4).map(|_| common::spawn("guarded_updates_are_atomic_across_processes", "c", &[&n])).collect();
    for k in kids {
        common::expect_success(k, 50);
    }
    assert_eq!(a.to_vec(), vec![4 * M; 16]);
    assert_eq!(a.fetch_add(3, 1), 4 * M);
    assert_eq!(a.fetch_sub(3, 2), 4 * M + 1);
    a.copy_from_slice(&[1; 16]);
    assert_eq!(a.len(), 16);
    assert!(matches!(Array::<u32>::open(&n), Err(ringshm::Error::LayoutMismatch { .. })));
}
