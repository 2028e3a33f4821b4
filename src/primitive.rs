//! The loom switch: atomics and slot cells come from here, so that the ring
//! cores run unchanged under `cfg(loom)` on heap memory.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Padding to a cache-line pair (adjacent-line prefetch pulls lines in
/// pairs on x86), `#[repr(C)]` so it can live in shared memory — unlike
/// crossbeam's `CachePadded`, which is not `Zeroable`.
#[derive(Default, Debug)]
#[repr(C, align(128))]
pub(crate) struct Padded<T>(pub T);

impl<T> core::ops::Deref for Padded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(not(loom))]
// SAFETY: `Padded` is `#[repr(C)]` around one `ShmSafe` field plus padding
// bytes that are never read.
unsafe impl<T: crate::shm::segment::ShmSafe> crate::shm::segment::ShmSafe for Padded<T> {}

/// Element storage of a ring: a raw array inside a mapping, or (under loom)
/// tracked cells on the heap.
#[cfg(not(loom))]
pub(crate) struct Slots<T> {
    base: core::ptr::NonNull<T>,
    len: usize,
}

#[cfg(not(loom))]
impl<T: Copy> Slots<T> {
    /// # Safety
    /// `base` points to `len` properly aligned `T`s that stay mapped for the
    /// life of the returned value, and `T` accepts any bit pattern.
    pub(crate) unsafe fn new(base: core::ptr::NonNull<T>, len: usize) -> Self {
        Slots { base, len }
    }

    /// Pointer to slot `i`.
    ///
    /// # Safety
    /// `i < len` (callers pass masked indices). The pointer may then be
    /// dereferenced as far as the ring protocol gives the caller the slot.
    #[inline(always)]
    pub(crate) unsafe fn ptr(&self, i: usize) -> *mut T {
        debug_assert!(i < self.len);
        // SAFETY: `i < len` by the caller's contract; the array holds `len`
        // elements, so the offset stays inside it.
        unsafe { self.base.as_ptr().add(i) }
    }

    /// Writes slot `i`.
    ///
    /// # Safety
    /// `i < len`, and the caller owns slot `i` (the ring protocol gives it
    /// exclusive access).
    #[inline(always)]
    pub(crate) unsafe fn write(&self, i: usize, v: T) {
        // SAFETY: in bounds and exclusive by the caller's contract.
        unsafe { self.ptr(i).write(v) }
    }

    /// Reads slot `i`.
    ///
    /// # Safety
    /// `i < len`, and the caller owns slot `i` (the ring protocol gives it
    /// exclusive access).
    #[inline(always)]
    pub(crate) unsafe fn read(&self, i: usize) -> T {
        // SAFETY: in bounds and owned by the caller; `T` accepts any bits, so
        // even bytes scribbled by a hostile process form a valid value.
        unsafe { self.ptr(i).read() }
    }
}

/// Element storage under loom: cells whose accesses loom checks for races.
#[cfg(loom)]
pub(crate) struct Slots<T> {
    cells: std::sync::Arc<Vec<loom::cell::UnsafeCell<T>>>,
}

#[cfg(loom)]
impl<T: Copy + Default> Slots<T> {
    /// `len` default-initialised cells.
    pub(crate) fn new_heap(len: usize) -> Self {
        Slots { cells: std::sync::Arc::new((0..len).map(|_| loom::cell::UnsafeCell::new(T::default())).collect()) }
    }
}

#[cfg(loom)]
impl<T: Copy> Slots<T> {
    /// Writes slot `i`.
    ///
    /// # Safety
    /// The caller owns slot `i`.
    pub(crate) unsafe fn write(&self, i: usize, v: T) {
        // SAFETY: exclusive by the caller's contract; loom checks it.
        self.cells[i].with_mut(|p| unsafe { p.write(v) })
    }
    /// Reads slot `i`.
    ///
    /// # Safety
    /// The caller owns slot `i`.
    pub(crate) unsafe fn read(&self, i: usize) -> T {
        // SAFETY: exclusive by the caller's contract; loom checks it.
        self.cells[i].with(|p| unsafe { p.read() })
    }
}

#[cfg(loom)]
impl<T> Clone for Slots<T> {
    fn clone(&self) -> Self {
        Slots { cells: self.cells.clone() }
    }
}
