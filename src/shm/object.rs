//! The one lifecycle of every shared object: `create`, `open`,
//! `open_or_create` (each also `_with` options), anonymous objects for
//! `fork()`, and objects in caller-provided memory.
//!
//! # Implementation details
//!
//! Each of the sixteen kinds (rings, pipes, queues, cells, sync primitives)
//! implements [`SharedObject`]: what it is ([`SharedObject::KIND`] and its
//! element type), how big a new one is ([`SharedObject::shape`]), how to check
//! the header of an existing one ([`SharedObject::check`], which must treat
//! every field as hostile), how to initialise a new body
//! ([`SharedObject::init`]), and how to build the handle from a mapped,
//! validated segment ([`SharedObject::from_segment`]). The generic functions
//! here are the only callers of [`Segment`]'s constructors for shared objects,
//! so every type runs the same protocol:
//!
//! ```text
//!  create(name, params)                    open(name)
//!   shape(params)  -> capacity, params,     shm_open, ATTACH (shared, waits out a gc probe),
//!                     body size             name still ours?  (else start again)
//!   shm_open(O_EXCL), INIT + ATTACH         wait while INIT is held (creator alive)
//!   fallocate, mmap, write header           copy header, validate kind/element/version
//!   init(body)                              check(header) -> body size == file size?
//!   magic <- MAGIC (Release), drop INIT     mmap, magic (Acquire), header unchanged?
//!   from_segment(created = true)            from_segment(created = false)
//! ```
//!
//! `open_or_create` is `create`, and on `AlreadyExists` `open`, and on
//! `NotFound` (the name was removed in between) `create` again; the handle
//! learns whether it created the object (`created`), so that, e.g., a `Queue`
//! made by `open_or_create` counts its creator as a producer exactly as
//! `create` does.
//!
//! A new body is all zero bytes (fresh memory from `fallocate`/`memfd`, or
//! zeroed by [`init_in`]) before [`SharedObject::init`] runs.

use std::ptr::NonNull;

use super::header::{ElemInfo, Expect, HeaderData, Kind};
use super::segment::CreateSpec;
use super::{Options, Segment};
use crate::error::{Error, Result};

/// The header fields and body size of a new object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Stored in the header's `capacity`.
    pub capacity: u64,
    /// Stored in the header's `params`.
    pub params: [u64; 4],
    /// Bytes after the header.
    pub body_size: usize,
}

impl Shape {
    /// A shape with no capacity and no parameters.
    pub(crate) const fn fixed(body_size: usize) -> Shape {
        Shape { capacity: 0, params: [0; 4], body_size }
    }
}

/// A kind of shared object: what the one lifecycle needs to know about it.
pub(crate) trait SharedObject: Sized {
    /// What `create` takes besides the name and options (a capacity, an
    /// initial value, ...).
    type Params<'a>;
    /// The kind stored in (and checked against) the header.
    const KIND: Kind;

    /// The element type's fingerprint, for typed kinds.
    fn elem() -> Option<ElemInfo> {
        None
    }

    /// Validates `params` and returns the shape of a new object.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for parameters out of range.
    fn shape(params: &Self::Params<'_>, opts: &Options) -> Result<Shape>;

    /// Checks the capacity and parameters of an existing object's header
    /// (already checked: magic, version, kind, element) and returns the body
    /// size they imply. Every field may have been written by a hostile
    /// process.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for values no `shape` produces.
    fn check(name: &str, h: &HeaderData) -> Result<usize>;

    /// Bytes at the start of a new body of `shape` that are backed with
    /// memory at create (`fallocate`: a full tmpfs fails then, never later
    /// with `SIGBUS`); the rest of the body stays sparse and is never touched
    /// by create, open or `init`. All of it, except for a `ByteQueue`'s arena.
    fn dense_body(shape: &Shape) -> usize {
        shape.body_size
    }

    /// Initialises a new, zeroed body before the segment is published.
    fn init(_seg: &Segment, _params: &Self::Params<'_>) {}

    /// Builds the handle on a mapped, validated segment; `created` says
    /// whether this call created it.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if the body is found poisoned or inconsistent;
    /// [`Error::RoleTaken`] for kinds whose handle takes a role.
    fn from_segment(seg: Segment, opts: &Options, created: bool) -> Result<Self>;
}

/// What `O`'s header holds.
pub(crate) fn expect<O: SharedObject>() -> Expect {
    Expect { kind: O::KIND, elem: O::elem() }
}

fn spec<'a, O: SharedObject>(e: &'a Expect, shape: Shape, opts: &'a Options) -> CreateSpec<'a> {
    CreateSpec {
        expect: e,
        capacity: shape.capacity,
        params: shape.params,
        body_size: shape.body_size,
        dense_body: O::dense_body(&shape),
        opts,
    }
}

/// Creates the segment of a new `O` named `name`.
pub(crate) fn create_segment<O: SharedObject>(name: &str, params: &O::Params<'_>, opts: &Options) -> Result<Segment> {
    let shape = O::shape(params, opts)?;
    let e = expect::<O>();
    Segment::create(name, &spec::<O>(&e, shape, opts), |s| O::init(s, params))
}

/// Opens the segment of an existing `O` named `name`.
pub(crate) fn open_segment<O: SharedObject>(name: &str) -> Result<Segment> {
    Segment::open(name, &expect::<O>(), |h| O::check(name, h))
}

/// Creates an unnamed (sealed `memfd`) segment of a new `O`, for `fork()`.
pub(crate) fn anonymous_segment<O: SharedObject>(
    label: &str,
    params: &O::Params<'_>,
    opts: &Options,
) -> Result<Segment> {
    let shape = O::shape(params, opts)?;
    let e = expect::<O>();
    Segment::create_anonymous(label, &spec::<O>(&e, shape, opts), |s| O::init(s, params))
}

/// `O::create_with`.
pub(crate) fn create<O: SharedObject>(name: &str, params: O::Params<'_>, opts: &Options) -> Result<O> {
    O::from_segment(create_segment::<O>(name, &params, opts)?, opts, true)
}

/// `O::open_with`.
pub(crate) fn open<O: SharedObject>(name: &str, opts: &Options) -> Result<O> {
    O::from_segment(open_segment::<O>(name)?, opts, false)
}

/// `O::open_or_create_with`: race-free between processes.
pub(crate) fn open_or_create<O: SharedObject>(name: &str, params: O::Params<'_>, opts: &Options) -> Result<O> {
    let shape = O::shape(&params, opts)?;
    let e = expect::<O>();
    let (seg, created) =
        Segment::open_or_create(name, &spec::<O>(&e, shape, opts), |s| O::init(s, &params), |h| O::check(name, h))?;
    O::from_segment(seg, opts, created)
}

/// An anonymous `O` for this process and the children it forks.
pub(crate) fn anonymous<O: SharedObject>(label: &str, params: O::Params<'_>, opts: &Options) -> Result<O> {
    O::from_segment(anonymous_segment::<O>(label, &params, opts)?, opts, true)
}

/// Initialises a new `O` in caller-provided memory (zeroing its body first:
/// a reused region may hold anything).
///
/// # Safety
/// `region` is valid for reads and writes, 128-byte aligned, stays mapped as
/// long as the returned object and everything derived from it live, and is
/// not accessed other than through ringshm.
pub(crate) unsafe fn init_in<O: SharedObject>(region: NonNull<[u8]>, params: O::Params<'_>) -> Result<O> {
    let opts = Options::new();
    let shape = O::shape(&params, &opts)?;
    let e = expect::<O>();
    // SAFETY: forwarded from the caller's contract.
    let seg = unsafe {
        Segment::init_in(region, &spec::<O>(&e, shape, &opts), |s| {
            core::ptr::write_bytes(s.body_ptr().as_ptr(), 0, s.body_len());
            O::init(s, &params);
        })
    }?;
    O::from_segment(seg, &opts, true)
}

/// Attaches to an `O` that [`init_in`] set up in shared memory, with the same
/// checks as [`open`].
///
/// # Safety
/// As for [`init_in`].
pub(crate) unsafe fn attach_in<O: SharedObject>(region: NonNull<[u8]>) -> Result<O> {
    // SAFETY: forwarded from the caller's contract.
    let seg = unsafe { Segment::attach_in(region, &expect::<O>(), |h| O::check("<region>", h)) }?;
    O::from_segment(seg, &Options::new(), false)
}

/// Bytes a caller-provided region needs for a new `O`.
pub(crate) fn region_size<O: SharedObject>(params: &O::Params<'_>) -> Result<usize> {
    let shape = O::shape(params, &Options::new())?;
    shape.body_size.checked_add(super::header::HEADER_SIZE).ok_or_else(|| Error::InvalidArgument {
        reason: format!("a {} of that size would be larger than the address space", O::KIND.name()),
    })
}

/// [`SharedObject::check`] of a kind without capacity or parameters whose
/// body is `body` bytes.
pub(crate) fn check_fixed(name: &str, h: &HeaderData, body: usize) -> Result<usize> {
    if h.capacity != 0 || h.params != [0; 4] {
        let kind = h.kind().map_or("fixed-size", Kind::name);
        return Err(corrupted(name, format!("a {kind} segment has no capacity or parameters")));
    }
    Ok(body)
}

/// [`SharedObject`] for a kind with a fixed body of `$body` bytes and no
/// parameters (`Lock`, `RLock`, `Event`, `Condition`); `$make` builds the
/// handle from `$seg: Segment` and `$opts: &Options`.
macro_rules! fixed_object {
    ($ty:ty, $kind:expr, $body:expr, |$seg:ident, $opts:ident| $make:expr) => {
        impl $crate::shm::object::SharedObject for $ty {
            type Params<'a> = ();
            const KIND: $crate::shm::header::Kind = $kind;

            fn shape(_: &(), _: &$crate::shm::Options) -> $crate::error::Result<$crate::shm::object::Shape> {
                Ok($crate::shm::object::Shape::fixed($body))
            }

            fn check(name: &str, h: &$crate::shm::header::HeaderData) -> $crate::error::Result<usize> {
                $crate::shm::object::check_fixed(name, h, $body)
            }

            fn from_segment(
                $seg: $crate::shm::Segment,
                $opts: &$crate::shm::Options,
                _created: bool,
            ) -> $crate::error::Result<Self> {
                Ok($make)
            }
        }
    };
}
pub(crate) use fixed_object;

/// [`Error::Corrupted`] for `name`.
pub(crate) fn corrupted(name: &str, reason: impl Into<String>) -> Error {
    Error::Corrupted { name: name.into(), reason: reason.into() }
}
