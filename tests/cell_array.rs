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

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(256))]
struct A256([u64; 32]);

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(4096))]
struct A4096([u8; 4096]);

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(8192))]
struct A8192([u8; 8192]);

/// Defect 7 of issue 7: an `Array<T>` with `align_of::<T>() == 256`
/// panicked. Any alignment up to the page size works; larger is refused.
#[test]
fn large_alignments_work_up_to_a_page_and_are_refused_beyond() {
    let _wd = common::watchdog(60);
    let n = common::unique("arr256");
    let a = Array::<A256>::create(&n, 3).unwrap();
    a.set(1, A256([7; 32]));
    let other = Array::<A256>::open(&n).unwrap();
    assert_eq!(other.get(1).unwrap().0, [7; 32]);
    assert_eq!(other.lock().as_ptr() as usize % 256, 0);

    let p = Array::<A4096>::create_from(&common::unique("arr4k"), &[A4096([1; 4096]), A4096([2; 4096])]).unwrap();
    assert_eq!(p.lock().as_ptr() as usize % 4096, 0);
    assert_eq!(p.get(1).unwrap().0[4095], 2);

    let too = Array::<A8192>::create(&common::unique("arr8k"), 1);
    assert!(matches!(too, Err(ringshm::Error::InvalidArgument { .. })), "{too:?}");

    // Value<T> of large alignment: a seqlock value, any alignment.
    let v = ringshm::Value::<A256>::create(&common::unique("val256"), A256([3; 32])).unwrap();
    assert_eq!(v.load().0, [3; 32]);
    v.store(A256([4; 32]));
    assert_eq!(ringshm::Value::<A256>::open(v.name()).unwrap().load().0, [4; 32]);
    let big = ringshm::Value::<A8192>::create(&common::unique("val8k"), A8192([5; 8192])).unwrap();
    assert_eq!(big.load().0[8191], 5);
}
