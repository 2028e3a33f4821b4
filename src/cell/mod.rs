//! Shared cells: [`Value`] (one `T`, Python's `multiprocessing.Value`) and
//! [`Array`] (a fixed-length `[T]`, Python's `multiprocessing.Array`).

pub(crate) mod array;
pub(crate) mod value;

pub use array::{Array, ArrayGuard};
pub use value::Value;

/// Types a [`Value`] can hold: plain data without padding, checked when read
/// back (so `bool` and `char` work too: a byte pattern scribbled into the
/// segment that is not a valid value reads as the zero value, never as
/// undefined behaviour). Every [`bytemuck::Pod`] type is `Shareable`.
pub trait Shareable:
    bytemuck::NoUninit + bytemuck::CheckedBitPattern + bytemuck::Zeroable + Send + Sync + 'static
{
}
impl<T: bytemuck::NoUninit + bytemuck::CheckedBitPattern + bytemuck::Zeroable + Send + Sync + 'static> Shareable for T {}

mod sealed {
    pub trait Sealed {}
}

/// Integer and float types with arithmetic read-modify-write operations
/// (`fetch_add`, `fetch_sub`). Integers wrap on overflow, like the std atomics.
pub trait Numeric: Shareable + Copy + sealed::Sealed {
    /// `true` for `f32`/`f64` (no native atomic add: a CAS loop).
    #[doc(hidden)]
    const FLOAT: bool;
    /// `self + rhs` (wrapping for integers).
    #[doc(hidden)]
    fn add(self, rhs: Self) -> Self;
    /// `self - rhs` (wrapping for integers).
    #[doc(hidden)]
    fn sub(self, rhs: Self) -> Self;
}

macro_rules! int {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Numeric for $t {
            const FLOAT: bool = false;
            #[inline(always)]
            fn add(self, rhs: Self) -> Self { self.wrapping_add(rhs) }
            #[inline(always)]
            fn sub(self, rhs: Self) -> Self { self.wrapping_sub(rhs) }
        }
    )*};
}
int!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

macro_rules! float {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Numeric for $t {
            const FLOAT: bool = true;
            #[inline(always)]
            fn add(self, rhs: Self) -> Self { self + rhs }
            #[inline(always)]
            fn sub(self, rhs: Self) -> Self { self - rhs }
        }
    )*};
}
float!(f32, f64);
