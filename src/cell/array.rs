//! [`Array<T>`]: a fixed-length shared array.
//!
//! # Implementation details
//!
//! A robust lock word (see [`crate::sync::lock`]) followed by `len` elements.
//! Every access — single-element `get`/`set`/`fetch_add`, `to_vec`, and the
//! guard of [`Array::lock`] — holds the lock, like Python's synchronised
//! `Array`, so the guard may hand out a real `&mut [T]` and a multi-element
//! update is never seen half done by a reader. A process that dies holding
//! the lock is detected by the next accessor (its owner slot, a kernel-held
//! lock byte, is free) and the lock is taken over; [`ArrayGuard::owner_died`]
//! reports it.
//!
//! | body offset               | content                                     |
//! |---------------------------|---------------------------------------------|
//! | `0`                       | the lock word (on its own cache-line pair)  |
//! | `DATA` (128, or more)     | `len` elements of `T`                        |
//!
//! The segment is mapped page-aligned and its body starts `HEADER_SIZE`
//! (512) bytes in, so `DATA` is the least offset of at least 128 that makes
//! `HEADER_SIZE + DATA` a multiple of `align_of::<T>()`: 128 for alignments
//! up to 128, e.g. 256 for 256, 3584 for 4096. Alignments above the page
//! size cannot be guaranteed by `mmap` and are refused.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use bytemuck::Pod;

use super::Numeric;
use crate::error::Result;
use crate::shm::header::{ElemInfo, HeaderData, Kind, HEADER_SIZE};
use crate::shm::object::{self, Shape, SharedObject};
use crate::shm::{Options, Segment};
use crate::sync::lock::{Acquired, LockBody, RawLock};
use crate::sync::wait::Deadline;

/// Smallest offset of the elements in the body (after the lock word's line pair).
const DATA_MIN: usize = 128;
/// Largest element alignment an array supports: the page size.
pub(crate) const MAX_ALIGN: usize = 4096;
/// Largest array, in bytes.
const MAX_BYTES: u64 = 1 << 40;

/// A named fixed-length array of `T` (Python's `multiprocessing.Array`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let name = format!("doc-greeting-{}", std::process::id());
/// let greeting = ringshm::Array::<u8>::create_from(&name, b"hello")?;   // Array('c', b'hello')
/// greeting.set(0, b'H');
/// let mut g = greeting.lock();
/// g[1..].copy_from_slice(b"ELLO");
/// drop(g);
/// assert_eq!(greeting.to_vec(), b"HELLO");
/// # Ok(()) }
/// ```
///
/// # Memory ordering
/// Every operation holds the array's lock: each synchronises-with the
/// previous one (Acquire/Release on the lock word), in any process.
///
/// # Across processes
/// Any process may open it by name with the same `T`. The lock is robust (a
/// kernel-held owner slot, as for [`crate::Lock`]): a process killed while
/// holding the guard does not block the others, whatever happens to its pid
/// afterwards; the elements it was changing may be half updated (see
/// [`ArrayGuard::owner_died`]). Element types aligned to more than 128 bytes
/// work up to the page size (4096); larger alignments are refused with
/// [`crate::Error::InvalidArgument`].
pub struct Array<T> {
    raw: RawLock,
    data: NonNull<T>,
    len: usize,
    seg: Segment,
    _t: PhantomData<fn() -> T>,
}

// SAFETY: `data` points into `seg`'s mapping, which lives as long as `self`;
// every access to the elements holds the robust lock.
unsafe impl<T: Send> Send for Array<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Array<T> {}

impl<T> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array").field("name", &self.seg.name()).field("len", &self.len).finish()
    }
}

/// The initial contents of a new [`Array`].
pub(crate) enum ArrayInit<'a, T> {
    /// `n` zeroed elements.
    Zeroed(usize),
    /// A copy of these.
    Copy(&'a [T]),
}

impl<T> ArrayInit<'_, T> {
    fn len(&self) -> usize {
        match self {
            ArrayInit::Zeroed(n) => *n,
            ArrayInit::Copy(s) => s.len(),
        }
    }
}

impl<T: Pod> SharedObject for Array<T> {
    type Params<'a> = ArrayInit<'a, T>;
    const KIND: Kind = Kind::Array;

    fn elem() -> Option<ElemInfo> {
        Some(ElemInfo::of::<T>())
    }

    fn shape(init: &ArrayInit<'_, T>, _: &Options) -> Result<Shape> {
        Ok(Shape { capacity: init.len() as u64, params: [0; 4], body_size: Self::bytes_for(init.len())? })
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        if h.params != [0; 4] || h.capacity > MAX_BYTES {
            return Err(object::corrupted(name, "invalid array header"));
        }
        Self::bytes_for(h.capacity as usize).map_err(|_| object::corrupted(name, "stored array length is too large"))
    }

    fn init(seg: &Segment, init: &ArrayInit<'_, T>) {
        if let ArrayInit::Copy(src) = init {
            let dst = seg.body_ptr().as_ptr().wrapping_add(Self::DATA).cast::<T>();
            // SAFETY: the segment is not yet published (nobody else sees it);
            // the body holds `src.len()` elements at DATA (its shape), aligned
            // for `T` (DATA is chosen so; `new` checks it again).
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        }
    }

    fn from_segment(seg: Segment, opts: &Options, _created: bool) -> Result<Self> {
        Self::new(seg, opts)
    }
}

impl<T: Pod> Array<T> {
    /// Offset of the elements in the body: at least [`DATA_MIN`], and such
    /// that the elements are aligned for `T` in the (page-aligned) mapping,
    /// whose body starts `HEADER_SIZE` bytes in.
    const DATA: usize = (HEADER_SIZE + DATA_MIN).next_multiple_of(Self::ALIGN) - HEADER_SIZE;
    const ALIGN: usize = core::mem::align_of::<T>();

    fn bytes_for(len: usize) -> Result<usize> {
        let name = core::any::type_name::<T>();
        if Self::ALIGN > MAX_ALIGN {
            return Err(crate::Error::InvalidArgument {
                reason: format!(
                    "Array<{name}>: the alignment of {name} is {}, more than the page size {MAX_ALIGN}; \
                     use a type aligned to at most 4096 bytes",
                    Self::ALIGN
                ),
            });
        }
        let b = (len as u64).checked_mul(core::mem::size_of::<T>() as u64).filter(|&b| b <= MAX_BYTES);
        match b {
            Some(b) if core::mem::size_of::<T>() > 0 => Ok(Self::DATA + b as usize),
            _ => Err(crate::Error::InvalidArgument {
                reason: format!(
                    "Array<{name}> of {len} elements is too large (at most 1 TiB, elements not zero-sized)"
                ),
            }),
        }
    }

    fn new(seg: Segment, opts: &Options) -> Result<Self> {
        let len = seg.header().capacity as usize;
        let body = seg.body_at::<LockBody>(0);
        // SAFETY: the lock word lives in `seg`'s mapping and the descriptor is
        // `seg`'s, both owned by `self`.
        let raw = unsafe { RawLock::new(&body.word, seg.fd(), opts.wait) };
        // `check`/`bytes_for` sized the body for `len` elements at DATA.
        let fits = len.checked_mul(core::mem::size_of::<T>()).and_then(|b| b.checked_add(Self::DATA));
        let data = seg.body_ptr().as_ptr().wrapping_add(Self::DATA);
        if fits.is_none_or(|end| end > seg.body_len()) || data.align_offset(Self::ALIGN) != 0 {
            return Err(object::corrupted(
                seg.name(),
                "the array does not fit its segment, or its elements are misaligned",
            ));
        }
        // SAFETY: DATA is inside the body (checked), and aligned for `T` (checked).
        let data = unsafe { NonNull::new_unchecked(data.cast::<T>()) };
        Ok(Array { raw, data, len, seg, _t: PhantomData })
    }

    /// Creates an array of `len` zeroed elements (Python's `Array('i', 4)`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] if too large; [`crate::Error::InvalidName`],
    /// [`crate::Error::AlreadyExists`], [`crate::Error::NoSpace`], ...
    pub fn create(name: &str, len: usize) -> Result<Self> {
        Self::create_with(name, len, &Options::new())
    }
    /// [`Array::create`] with options.
    ///
    /// # Errors
    /// As [`Array::create`].
    pub fn create_with(name: &str, len: usize, opts: &Options) -> Result<Self> {
        object::create(name, ArrayInit::Zeroed(len), opts)
    }
    /// Creates an array holding a copy of `init` (Python's `Array('c', b'hello')`).
    ///
    /// # Errors
    /// As for [`Array::create`].
    pub fn create_from(name: &str, init: &[T]) -> Result<Self> {
        Self::create_from_with(name, init, &Options::new())
    }
    /// [`Array::create_from`] with options.
    ///
    /// # Errors
    /// As for [`Array::create`].
    pub fn create_from_with(name: &str, init: &[T], opts: &Options) -> Result<Self> {
        object::create(name, ArrayInit::Copy(init), opts)
    }
    /// Opens an existing array of the same `T`.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], [`crate::Error::WrongKind`],
    /// [`crate::Error::LayoutMismatch`], [`crate::Error::Corrupted`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }
    /// [`Array::open`] with options.
    ///
    /// # Errors
    /// As [`Array::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }
    /// Opens the array, or creates it with `len` zeroed elements; race-free.
    ///
    /// # Errors
    /// As [`Array::create`] and [`Array::open`].
    pub fn open_or_create(name: &str, len: usize) -> Result<Self> {
        Self::open_or_create_with(name, len, &Options::new())
    }
    /// [`Array::open_or_create`] with options.
    ///
    /// # Errors
    /// As [`Array::open_or_create`].
    pub fn open_or_create_with(name: &str, len: usize, opts: &Options) -> Result<Self> {
        object::open_or_create(name, ArrayInit::Zeroed(len), opts)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Locks the array; the guard derefs to `&mut [T]` for multi-element
    /// updates and unlocks on drop. Blocks while another holder has it.
    pub fn lock(&self) -> ArrayGuard<'_, T> {
        let died = self.raw.lock_until(Deadline::NEVER) == Some(Acquired::OwnerDied);
        ArrayGuard { arr: self, died, _not_send: PhantomData }
    }

    /// Element `i`, or `None` if out of bounds.
    pub fn get(&self, i: usize) -> Option<T> {
        self.lock().get(i).copied()
    }

    /// Sets element `i`.
    ///
    /// # Panics
    /// If `i >= len()` (like slice indexing).
    pub fn set(&self, i: usize, v: T) {
        self.lock()[i] = v;
    }

    /// A copy of every element (one consistent snapshot).
    pub fn to_vec(&self) -> Vec<T> {
        self.lock().to_vec()
    }

    /// Copies `src` into the array (one atomic update).
    ///
    /// # Panics
    /// If `src.len() != len()`.
    pub fn copy_from_slice(&self, src: &[T]) {
        self.lock().copy_from_slice(src);
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }
}

impl<T: Pod + Numeric> Array<T> {
    /// Adds `d` to element `i` (wrapping for integers), returning its
    /// previous value.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn fetch_add(&self, i: usize, d: T) -> T {
        let mut g = self.lock();
        let old = g[i];
        g[i] = old.add(d);
        old
    }

    /// Subtracts `d` from element `i`, returning its previous value.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn fetch_sub(&self, i: usize, d: T) -> T {
        let mut g = self.lock();
        let old = g[i];
        g[i] = old.sub(d);
        old
    }
}

/// The locked elements of an [`Array`]; derefs to `[T]`. Not `Send`.
#[must_use = "the array is unlocked as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: Pod> {
    arr: &'a Array<T>,
    died: bool,
    _not_send: PhantomData<*const ()>,
}

impl<T: Pod> ArrayGuard<'_, T> {
    /// Whether the lock was taken over from a holder that died holding it:
    /// the elements it was changing may be half updated.
    pub fn owner_died(&self) -> bool {
        self.died
    }
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: 1. `len` elements of `T` at `data`, inside the mapping
        // (checked in `Array::new`) for as long as the array lives;
        // 2. we hold the lock, which every ringshm access to the elements
        // takes, so nobody writes them meanwhile; 3. `T: Pod` accepts any bits.
        unsafe { core::slice::from_raw_parts(self.arr.data.as_ptr(), self.arr.len) }
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the lock makes this the only access, and the
        // `&mut self` borrow makes the slice unique within this process.
        unsafe { core::slice::from_raw_parts_mut(self.arr.data.as_ptr(), self.arr.len) }
    }
}

impl<T: Pod> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.arr.raw.unlock();
    }
}

/// Needs no `T: Debug`: prints the length only (the guard derefs to the
/// elements).
impl<T: Pod> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayGuard").field("len", &self.len()).finish_non_exhaustive()
    }
}

// `LockBody` is re-used as the array head.
const _: () = assert!(core::mem::size_of::<LockBody>() <= DATA_MIN);
