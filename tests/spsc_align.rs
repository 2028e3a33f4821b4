//! Defect 7 (SPSC part): an `spsc::Ring<T>` must hand out properly aligned
//! `&T`/`&mut [T]` for any `T` aligned up to the page size (4096), through
//! every access path (push/pop, slices, chunks, peek), and refuse larger
//! alignments with `InvalidArgument` — across processes too.
//!
//! Before the fix, the slot array was aligned only to 512 bytes (the segment
//! body's alignment), so `align(1024)` and `align(4096)` items were
//! misaligned.

mod common;

use bytemuck::{Pod, Zeroable};
use ringshm::spsc::Ring;
use ringshm::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(1024))]
struct A1k {
    v: u64,
    pad: [u8; 1016],
}
// SAFETY: `#[repr(C)]`, no padding (8 + 1016 = 1024 = size), all fields Pod.
unsafe impl Zeroable for A1k {}
// SAFETY: as above.
unsafe impl Pod for A1k {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(4096))]
struct A4k {
    v: u64,
    pad: [u8; 4088],
}
// SAFETY: `#[repr(C)]`, no padding (8 + 4088 = 4096 = size), all fields Pod.
unsafe impl Zeroable for A4k {}
// SAFETY: as above.
unsafe impl Pod for A4k {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(8192))]
struct A8k {
    v: u64,
    pad: [u8; 8184],
}
// SAFETY: `#[repr(C)]`, no padding, all fields Pod.
unsafe impl Zeroable for A8k {}
// SAFETY: as above.
unsafe impl Pod for A8k {}

trait Item: Pod + PartialEq + core::fmt::Debug {
    fn with(v: u64) -> Self;
    fn v(&self) -> u64;
}
impl Item for A1k {
    fn with(v: u64) -> Self {
        A1k { v, pad: [v as u8; 1016] }
    }
    fn v(&self) -> u64 {
        self.v
    }
}
impl Item for A4k {
    fn with(v: u64) -> Self {
        A4k { v, pad: [v as u8; 4088] }
    }
    fn v(&self) -> u64 {
        self.v
    }
}

fn aligned<T>(p: *const T) -> bool {
    p as usize % core::mem::align_of::<T>() == 0
}

/// Every path that hands out a reference into the ring, checked for alignment
/// and content.
fn every_path<T: Item>(tag: &str) {
    let name = common::unique(tag);
    let ring = Ring::<T>::create(&name, 4).unwrap();
    let mut tx = ring.producer().unwrap();
    let mut rx = ring.consumer().unwrap();
    let mut next = 0u64;
    let mut want = 0u64;
    // Wrap around several times so every slot is handed out.
    for _ in 0..3 {
        tx.push(T::with(next)).unwrap();
        next += 1;
        assert_eq!(tx.push_slice(&[T::with(next), T::with(next + 1)]), 2);
        next += 2;
        {
            let mut w = tx.write_chunk(1).unwrap();
            let (a, b) = w.as_mut_slices();
            for s in [&*a, &*b] {
                assert!(aligned(s.as_ptr()), "write_chunk slice misaligned: {:p}", s.as_ptr());
            }
            a[0] = T::with(next);
            next += 1;
            w.commit_all();
        }
        {
            let p = rx.peek().unwrap();
            assert!(aligned(p as *const T), "peek misaligned: {:p}", p);
            assert_eq!(p.v(), want);
        }
        assert_eq!(rx.pop().unwrap(), T::with(want));
        want += 1;
        {
            let r = rx.read_chunk(2).unwrap();
            let (a, b) = r.as_slices();
            for s in [a, b] {
                assert!(aligned(s.as_ptr()), "read_chunk slice misaligned: {:p}", s.as_ptr());
            }
            let got: Vec<u64> = a.iter().chain(b).map(T::v).collect();
            assert_eq!(got, [want, want + 1]);
            r.commit_all();
            want += 2;
        }
        let mut out = [T::with(0)];
        assert_eq!(rx.pop_slice(&mut out), 1);
        assert_eq!(out[0], T::with(want));
        want += 1;
    }
    assert_eq!(next, want);
}

#[test]
fn align_1024_items_are_aligned_on_every_path() {
    every_path::<A1k>("al1k");
}

#[test]
fn align_4096_items_are_aligned_on_every_path() {
    every_path::<A4k>("al4k");
}

#[test]
fn align_above_page_size_is_refused() {
    let name = common::unique("al8k");
    match Ring::<A8k>::create(&name, 2) {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert!(matches!(Ring::<A8k>::open_or_create(&name, 2), Err(Error::InvalidArgument { .. })));
    assert!(matches!(Ring::<A8k>::region_size(2), Err(Error::InvalidArgument { .. })));
}

/// The same, with the producer in another process: the child writes through
/// chunks, the parent checks alignment and content of what it reads.
#[test]
fn align_1024_across_processes() {
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let name = &common::args()[0];
        let ring = Ring::<A1k>::open(name).unwrap();
        let mut tx = ring.producer().unwrap();
        for i in 0..64u64 {
            loop {
                match tx.write_chunk(1) {
                    Ok(mut w) => {
                        let (a, _) = w.as_mut_slices();
                        assert!(aligned(a.as_ptr()));
                        a[0] = A1k::with(i);
                        w.commit_all();
                        break;
                    }
                    Err(_) => std::thread::yield_now(),
                }
            }
        }
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("al1kx");
    let ring = Ring::<A1k>::create(&name, 4).unwrap();
    let mut rx = ring.consumer().unwrap();
    let child = common::spawn("align_1024_across_processes", "producer", &[&name]);
    for i in 0..64u64 {
        let v = rx.pop().unwrap();
        assert_eq!(v, A1k::with(i));
    }
    assert!(rx.pop().is_err(), "producer exited: disconnected after the drain");
    common::expect_success(child, 30);
}

/// A caller-provided region must be aligned for `T` too: a 128-aligned
/// region that is not 1024-aligned is refused, a 1024-aligned one works.
#[test]
fn region_alignment_is_checked() {
    let size = Ring::<A1k>::region_size(2).unwrap();
    let layout = std::alloc::Layout::from_size_align(size + 1024, 1024).unwrap();
    // SAFETY: non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!p.is_null());
    {
        // 128 bytes in: 128-aligned, not 1024-aligned.
        // SAFETY: in bounds of the allocation (size + 1024 bytes).
        let off = unsafe { p.add(128) };
        let region = std::ptr::NonNull::slice_from_raw_parts(std::ptr::NonNull::new(off).unwrap(), size);
        // SAFETY: the region is valid, 128-aligned, large enough and outlives the call.
        let r = unsafe { Ring::<A1k>::init_in(region, 2) };
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
        let region = std::ptr::NonNull::slice_from_raw_parts(std::ptr::NonNull::new(p).unwrap(), size);
        // SAFETY: as above, and 1024-aligned.
        let ring = unsafe { Ring::<A1k>::init_in(region, 2) }.unwrap();
        let (mut tx, mut rx) = (ring.producer().unwrap(), ring.consumer().unwrap());
        let mut w = tx.write_chunk(2).unwrap();
        assert!(aligned(w.as_mut_slices().0.as_ptr()));
        assert_eq!(w.fill_from_iter([A1k::with(1), A1k::with(2)]), 2);
        assert_eq!(rx.pop().unwrap(), A1k::with(1));
        assert_eq!(rx.pop().unwrap(), A1k::with(2));
    }
    // SAFETY: allocated above with this layout; the ring is dropped.
    unsafe { std::alloc::dealloc(p, layout) };
}
