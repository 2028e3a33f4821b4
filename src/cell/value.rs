//! [`Value<T>`]: one shared value.
//!
//! # Implementation details
//!
//! Types of 1, 2, 4 or 8 bytes live in one native atomic of that width:
//! `load`/`store`/`swap`/`compare_exchange` are single instructions, integer
//! `fetch_add` is a native `lock xadd`, floats use a CAS loop on their bits.
//!
//! Other sizes use a *double-buffered seqlock*: two copies of the value and a
//! 64-bit sequence. A writer (serialised by a robust lock word) makes the
//! sequence odd, writes the copy readers are *not* using, and makes it even:
//!
//! | `seq`      | stable copy  | the writer is writing |
//! |------------|--------------|-----------------------|
//! | `2k`       | `k & 1`      | nothing               |
//! | `2k + 1`   | `k & 1`      | copy `(k + 1) & 1`    |
//!
//! A reader reads copy `(seq >> 1) & 1` word by word (atomics, so no data
//! race) and keeps it if `seq` has not advanced past `2k + 2` meanwhile (only
//! then can that copy be overwritten). Readers never wait for a writer, and a
//! writer killed mid-store leaves `seq` odd with the *old* copy intact: readers
//! keep reading the old value, and the next writer takes the robust lock over
//! (the dead writer's owner slot is free) and writes the same spare copy
//! again. No reader ever sees half a write.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::{Numeric, Shareable};

pub use crate::error::CompareExchangeError;
use crate::error::Result;
use crate::shm::header::{ElemInfo, HeaderData, Kind};
use crate::shm::object::{self, Shape, SharedObject};
use crate::shm::segment::ShmSafe;
use crate::shm::{Options, Segment};
use crate::sync::lock::RawLock;
use crate::sync::wait::Deadline;

/// Offset of the data words in the body.
const DATA: usize = 128;
/// Largest `T` a `Value` holds.
const MAX_SIZE: usize = 1 << 20;

#[repr(C)]
struct ValueHead {
    /// Seqlock sequence (unused for native types); any value is valid.
    seq: AtomicU64,
    /// Robust lock word serialising seqlock writers.
    wlock: AtomicU32,
    _reserved: AtomicU32,
}
// SAFETY: `#[repr(C)]`, only atomics.
unsafe impl ShmSafe for ValueHead {}

/// A native atomic word of some width, seen through `u64`.
trait Word: Sync {
    fn load(&self, o: Ordering) -> u64;
    fn store(&self, v: u64, o: Ordering);
    fn swap(&self, v: u64, o: Ordering) -> u64;
    fn cas(&self, c: u64, n: u64) -> std::result::Result<u64, u64>;
    fn add(&self, v: u64) -> u64;
    fn sub(&self, v: u64) -> u64;
}

macro_rules! word {
    ($a:ty, $u:ty) => {
        impl Word for $a {
            #[inline(always)]
            fn load(&self, o: Ordering) -> u64 {
                <$a>::load(self, o) as u64
            }
            #[inline(always)]
            fn store(&self, v: u64, o: Ordering) {
                <$a>::store(self, v as $u, o)
            }
            #[inline(always)]
            fn swap(&self, v: u64, o: Ordering) -> u64 {
                <$a>::swap(self, v as $u, o) as u64
            }
            #[inline(always)]
            fn cas(&self, c: u64, n: u64) -> std::result::Result<u64, u64> {
                // AcqRel/Acquire: see `Value`'s memory ordering docs.
                <$a>::compare_exchange(self, c as $u, n as $u, Ordering::AcqRel, Ordering::Acquire)
                    .map(|x| x as u64)
                    .map_err(|x| x as u64)
            }
            #[inline(always)]
            fn add(&self, v: u64) -> u64 {
                // AcqRel: as for `cas`.
                <$a>::fetch_add(self, v as $u, Ordering::AcqRel) as u64
            }
            #[inline(always)]
            fn sub(&self, v: u64) -> u64 {
                // AcqRel: as for `cas`.
                <$a>::fetch_sub(self, v as $u, Ordering::AcqRel) as u64
            }
        }
    };
}
word!(AtomicU8, u8);
word!(AtomicU16, u16);
word!(AtomicU32, u32);
word!(AtomicU64, u64);

#[inline(always)]
const fn is_native<T>() -> bool {
    matches!(core::mem::size_of::<T>(), 1 | 2 | 4 | 8)
}

/// The bits of a native-sized `v`, zero-extended.
#[inline(always)]
fn to_bits<T: Shareable>(v: T) -> u64 {
    let b = bytemuck::bytes_of(&v);
    match b.len() {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_ne_bytes([b[0], b[1]])),
        4 => u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        _ => u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])),
    }
}

/// A `T` from bits read from shared memory; invalid patterns read as zero.
#[inline(always)]
fn from_bits<T: Shareable>(x: u64) -> T {
    let n = core::mem::size_of::<T>();
    let (b1, b2, b4, b8) = ([x as u8], (x as u16).to_ne_bytes(), (x as u32).to_ne_bytes(), x.to_ne_bytes());
    let bytes: &[u8] = match n {
        1 => &b1,
        2 => &b2,
        4 => &b4,
        _ => &b8,
    };
    bytemuck::checked::try_pod_read_unaligned(bytes).unwrap_or_else(|_| T::zeroed())
}

/// A named shared value of type `T` (Python's `multiprocessing.Value`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let name = format!("doc-balance-{}", std::process::id());
/// let balance = ringshm::Value::<i64>::create(&name, 5000)?;   // others: Value::<i64>::open(&name)
/// balance.fetch_add(300);
/// balance.update(|x| x * 2);
/// assert_eq!(balance.load(), 10600);
/// # Ok(()) }
/// ```
///
/// Every operation is atomic: 1-, 2-, 4- and 8-byte types through native
/// atomics, larger ones through a seqlock whose readers never see a torn
/// value, even if a writer was killed mid-store.
///
/// # Memory ordering
/// `load` is Acquire, `store` Release, read-modify-writes AcqRel: a value
/// stored by one process, once loaded by another, carries everything the
/// storing process wrote before it.
///
/// # Across processes
/// Any process may open it by name with the same `T` (checked:
/// [`crate::Error::LayoutMismatch`] otherwise). Native operations are
/// lock-free; seqlock writers serialise on a robust lock (a kernel-held owner
/// slot, as for [`crate::Lock`]), so a writer that dies never blocks the
/// others. Any alignment of `T` works: seqlock copies are read word by word.
pub struct Value<T> {
    head: NonNull<ValueHead>,
    data: NonNull<u8>,
    wlock: RawLock,
    seg: Segment,
    _t: PhantomData<fn() -> T>,
}

// SAFETY: `head`/`data` point into `seg`'s mapping, which lives as long as
// `self`; all accesses to it are atomic.
unsafe impl<T> Send for Value<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Value<T> {}

/// Names the segment and the element type; needs no `T: Debug` (print
/// `load()` for the value).
impl<T> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value").field("name", &self.seg.name()).field("type", &core::any::type_name::<T>()).finish()
    }
}

/// `Value::create` parameters: the initial value.
impl<T: Shareable> SharedObject for Value<T> {
    type Params<'a> = T;
    const KIND: Kind = Kind::Value;

    fn elem() -> Option<ElemInfo> {
        Some(ElemInfo::of::<T>())
    }

    fn shape(_: &T, _: &Options) -> Result<Shape> {
        Self::spec_check()?;
        Ok(Shape { capacity: 1, params: [0; 4], body_size: Self::body_size() })
    }

    fn check(name: &str, h: &HeaderData) -> Result<usize> {
        Self::spec_check()?;
        if h.capacity != 1 || h.params != [0; 4] {
            return Err(object::corrupted(name, "a value segment has capacity 1 and no parameters"));
        }
        Ok(Self::body_size())
    }

    fn init(seg: &Segment, initial: &T) {
        Self::new_view(seg).write_copy(0, *initial);
    }

    fn from_segment(seg: Segment, opts: &Options, _created: bool) -> Result<Self> {
        Ok(Self::new(seg, opts))
    }
}

impl<T: Shareable> Value<T> {
    /// 64-bit words per copy.
    const WORDS: usize = core::mem::size_of::<T>().div_ceil(8);

    fn body_size() -> usize {
        DATA + if is_native::<T>() { 8 } else { 16 * Self::WORDS }
    }

    fn spec_check() -> Result<()> {
        if core::mem::size_of::<T>() == 0 || core::mem::size_of::<T>() > MAX_SIZE {
            return Err(crate::Error::InvalidArgument {
                reason: format!("Value<{}> must be 1 byte to 1 MiB", core::any::type_name::<T>()),
            });
        }
        Ok(())
    }

    fn new(seg: Segment, opts: &Options) -> Self {
        let head = seg.body_at::<ValueHead>(0);
        // SAFETY: the lock word lives in `seg`'s mapping and the descriptor
        // is `seg`'s, both owned by `self`.
        let wlock = unsafe { RawLock::new(&head.wlock, seg.fd(), opts.wait) };
        assert!(Self::body_size() <= seg.body_len());
        // SAFETY: DATA is inside the body (asserted above).
        let data = unsafe { NonNull::new_unchecked(seg.body_ptr().as_ptr().add(DATA)) };
        Value { head: NonNull::from(head), data, wlock, seg, _t: PhantomData }
    }

    /// A view for initialisation (the `Segment` is borrowed).
    fn new_view(seg: &Segment) -> View<'_, T> {
        // SAFETY: as in `new`; DATA words lie inside the body.
        let data = unsafe { seg.body_ptr().as_ptr().add(DATA) };
        View { data, _s: PhantomData }
    }

    /// Creates a value holding `initial`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidName`], [`crate::Error::AlreadyExists`],
    /// [`crate::Error::InvalidArgument`] for a zero-sized or >1 MiB `T`, ...
    pub fn create(name: &str, initial: T) -> Result<Self> {
        Self::create_with(name, initial, &Options::new())
    }
    /// [`Value::create`] with options.
    ///
    /// # Errors
    /// As [`Value::create`].
    pub fn create_with(name: &str, initial: T, opts: &Options) -> Result<Self> {
        object::create(name, initial, opts)
    }
    /// Opens an existing value of the same `T`.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], [`crate::Error::WrongKind`],
    /// [`crate::Error::LayoutMismatch`], [`crate::Error::Corrupted`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }
    /// [`Value::open`] with options.
    ///
    /// # Errors
    /// As [`Value::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        object::open(name, opts)
    }
    /// Opens the value, or creates it holding `initial`; race-free.
    ///
    /// # Errors
    /// As [`Value::create`] and [`Value::open`].
    pub fn open_or_create(name: &str, initial: T) -> Result<Self> {
        Self::open_or_create_with(name, initial, &Options::new())
    }
    /// [`Value::open_or_create`] with options.
    ///
    /// # Errors
    /// As [`Value::open_or_create`].
    pub fn open_or_create_with(name: &str, initial: T, opts: &Options) -> Result<Self> {
        object::open_or_create(name, initial, opts)
    }

    fn h(&self) -> &ValueHead {
        // SAFETY: valid while `self.seg` lives.
        unsafe { self.head.as_ref() }
    }

    #[inline(always)]
    fn native<R>(&self, f: impl FnOnce(&dyn Word) -> R) -> R {
        let p = self.data.as_ptr();
        // SAFETY: `data` is 128-aligned, inside the body with 8 bytes for
        // native types, and valid while `self.seg` lives; atomics accept any
        // bits. The `dyn` is resolved at compile time after inlining.
        unsafe {
            match core::mem::size_of::<T>() {
                1 => f(&*p.cast::<AtomicU8>()),
                2 => f(&*p.cast::<AtomicU16>()),
                4 => f(&*p.cast::<AtomicU32>()),
                _ => f(&*p.cast::<AtomicU64>()),
            }
        }
    }

    fn view(&self) -> View<'_, T> {
        View { data: self.data.as_ptr(), _s: PhantomData }
    }

    /// The current value.
    #[inline]
    pub fn load(&self) -> T {
        if is_native::<T>() {
            // Acquire: pairs with the Release/AcqRel writes of the value.
            return from_bits(self.native(|w| w.load(Ordering::Acquire)));
        }
        self.seq_load()
    }

    /// Replaces the value.
    #[inline]
    pub fn store(&self, v: T) {
        if is_native::<T>() {
            // Release: pairs with the Acquire in `load`.
            return self.native(|w| w.store(to_bits(v), Ordering::Release));
        }
        let _g = self.write_lock();
        self.seq_store(v);
    }

    /// Replaces the value, returning the previous one.
    #[inline]
    pub fn swap(&self, v: T) -> T {
        if is_native::<T>() {
            // AcqRel: Acquire as `load`, Release as `store`.
            return from_bits(self.native(|w| w.swap(to_bits(v), Ordering::AcqRel)));
        }
        let _g = self.write_lock();
        let old = self.seq_load();
        self.seq_store(v);
        old
    }

    /// Stores `new` if the value is (bitwise) `current`. `Ok(previous)` on
    /// success. Floats compare by bits (`-0.0` is not `0.0`, a NaN equals the
    /// same NaN).
    ///
    /// # Errors
    /// [`CompareExchangeError`] holding the actual value when it was not
    /// `current` (an `std::error::Error`, so `?` works in any error context).
    pub fn compare_exchange(&self, current: T, new: T) -> std::result::Result<T, CompareExchangeError<T>> {
        if is_native::<T>() {
            return self
                .native(|w| w.cas(to_bits(current), to_bits(new)))
                .map(from_bits)
                .map_err(|a| CompareExchangeError { actual: from_bits(a) });
        }
        let _g = self.write_lock();
        let old = self.seq_load();
        if bytemuck::bytes_of(&old) == bytemuck::bytes_of(&current) {
            self.seq_store(new);
            Ok(old)
        } else {
            Err(CompareExchangeError { actual: old })
        }
    }

    /// Replaces the value with `f(value)` atomically (a CAS loop, or under the
    /// writer lock for seqlock types; `f` may run more than once for native
    /// types). Returns the previous value.
    pub fn update(&self, mut f: impl FnMut(T) -> T) -> T {
        if is_native::<T>() {
            // Acquire: pairs with the Release half of the last store/swap/CAS.
            let mut cur = self.native(|w| w.load(Ordering::Acquire));
            loop {
                let new = to_bits(f(from_bits::<T>(cur)));
                match self.native(|w| w.cas(cur, new)) {
                    Ok(prev) => return from_bits(prev),
                    Err(now) => cur = now,
                }
            }
        }
        let _g = self.write_lock();
        let old = self.seq_load();
        self.seq_store(f(old));
        old
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Takes the seqlock writers' lock (taking it over from a dead writer).
    fn write_lock(&self) -> WriteGuard<'_> {
        let _ = self.wlock.lock_until(Deadline::NEVER);
        WriteGuard(&self.wlock)
    }

    fn seq_load(&self) -> T {
        let seq = &self.h().seq;
        let v = self.view();
        loop {
            // Acquire: pairs with the Release store of the even sequence in
            // `seq_store`: the copy we pick was completely written.
            let s1 = seq.load(Ordering::Acquire);
            let k = s1 >> 1;
            let out = v.read_copy((k & 1) as usize);
            // Acquire fence: pairs with the writer's Release fence after it
            // made the sequence odd; if we read any of its words, we see that.
            fence(Ordering::Acquire);
            let s2 = seq.load(Ordering::Relaxed);
            if s2.wrapping_sub(k << 1) <= 2 {
                return out;
            }
            core::hint::spin_loop();
        }
    }

    /// Writes `v`; the caller holds the writer lock.
    fn seq_store(&self, v: T) {
        let seq = &self.h().seq;
        let k = seq.load(Ordering::Relaxed) >> 1;
        seq.store((k << 1) | 1, Ordering::Relaxed);
        // Release fence: pairs with the readers' Acquire fence (see `seq_load`).
        fence(Ordering::Release);
        self.view().write_copy(((k + 1) & 1) as usize, v);
        // Release: pairs with the Acquire load of the sequence in `seq_load`.
        seq.store((k + 1) << 1, Ordering::Release);
    }
}

impl<T: Numeric> Value<T> {
    /// Adds `d` (wrapping for integers), returning the previous value.
    #[inline]
    pub fn fetch_add(&self, d: T) -> T {
        if !T::FLOAT {
            return from_bits(self.native(|w| w.add(to_bits(d))));
        }
        self.update(|x| x.add(d))
    }

    /// Subtracts `d` (wrapping for integers), returning the previous value.
    #[inline]
    pub fn fetch_sub(&self, d: T) -> T {
        if !T::FLOAT {
            return from_bits(self.native(|w| w.sub(to_bits(d))));
        }
        self.update(|x| x.sub(d))
    }
}

struct WriteGuard<'a>(&'a RawLock);
impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// Borrows the segment and carries `T` without owning one.
type ViewMarker<'a, T> = PhantomData<(&'a Segment, fn() -> T)>;

/// The two seqlock copies, as 64-bit atomic words.
struct View<'a, T> {
    data: *mut u8,
    _s: ViewMarker<'a, T>,
}

impl<T: Shareable> View<'_, T> {
    const WORDS: usize = core::mem::size_of::<T>().div_ceil(8);

    fn words(&self, copy: usize) -> &[AtomicU64] {
        let n = if is_native::<T>() { 1 } else { Self::WORDS };
        let copy = if is_native::<T>() { 0 } else { copy & 1 };
        // SAFETY: the body holds `2 * WORDS` words at DATA for seqlock types
        // and one for native ones (`body_size`), 8-aligned, valid while the
        // segment lives (the `'a` borrow).
        unsafe { core::slice::from_raw_parts(self.data.cast::<AtomicU64>().add(copy * n), n) }
    }

    fn write_copy(&self, copy: usize, v: T) {
        if is_native::<T>() {
            // Initialisation only (`create`): the native path writes through `Word`.
            let p = self.data;
            // SAFETY: as in `Value::native`.
            unsafe {
                match core::mem::size_of::<T>() {
                    1 => (*p.cast::<AtomicU8>()).store(to_bits(v) as u8, Ordering::Relaxed),
                    2 => (*p.cast::<AtomicU16>()).store(to_bits(v) as u16, Ordering::Relaxed),
                    4 => (*p.cast::<AtomicU32>()).store(to_bits(v) as u32, Ordering::Relaxed),
                    _ => (*p.cast::<AtomicU64>()).store(to_bits(v), Ordering::Relaxed),
                }
            }
            return;
        }
        let bytes = bytemuck::bytes_of(&v);
        for (w, chunk) in self.words(copy).iter().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            // Relaxed: ordered by the seqlock fences (see `seq_store`).
            w.store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
    }

    fn read_copy(&self, copy: usize) -> T {
        let size = core::mem::size_of::<T>();
        let mut stack = [0u64; 64];
        let mut heap = Vec::new();
        let buf: &mut [u64] = if Self::WORDS <= stack.len() {
            &mut stack[..Self::WORDS]
        } else {
            heap.resize(Self::WORDS, 0);
            &mut heap
        };
        for (dst, w) in buf.iter_mut().zip(self.words(copy)) {
            // Relaxed: validated by the sequence re-check in `seq_load`.
            *dst = w.load(Ordering::Relaxed);
        }
        let bytes = &bytemuck::cast_slice::<u64, u8>(buf)[..size];
        bytemuck::checked::try_pod_read_unaligned(bytes).unwrap_or_else(|_| T::zeroed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        assert_eq!(from_bits::<i32>(to_bits(-5i32)), -5);
        assert_eq!(from_bits::<f64>(to_bits(1.5f64)), 1.5);
        assert!(from_bits::<bool>(to_bits(true)));
        assert!(!from_bits::<bool>(7)); // invalid pattern reads as zero
        assert_eq!(from_bits::<[u8; 2]>(to_bits([1u8, 2])), [1, 2]);
    }
}
