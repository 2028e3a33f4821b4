//! The versioned segment header: magic, format version, object kind, element
//! layout and type fingerprint, capacity, creator.
//!
//! # Implementation details
//!
//! The header is plain old data except for its first word, `magic`, which the
//! creator stores with `Release` once everything else is written. Readers load
//! it with `Acquire`, then take a *copy* of the rest (another process may
//! scribble on the segment at any time, so nothing is validated in place and
//! then re-read) and check the copy with [`HeaderData::validate`].

use bytemuck::{Pod, Zeroable};

use crate::error::Error;

/// `b"RINGSHM1"` as a little-endian word; zero while the creator initialises.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RINGSHM1");
/// Bumped whenever any shared layout changes.
pub(crate) const VERSION: u32 = 3;
/// Bytes reserved for the header; the object body starts here.
pub(crate) const HEADER_SIZE: usize = 512;
/// Header flag: the segment was created with `Options::persist(true)`.
pub(crate) const FLAG_PERSIST: u32 = 1;

/// What kind of object a segment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum Kind {
    /// [`crate::spsc::Ring`].
    SpscRing = 1,
    /// [`crate::mpmc::Ring`].
    MpmcRing = 2,
    /// `Pipe`.
    Pipe = 3,
    /// `Queue`.
    Queue = 4,
    /// `ByteQueue`.
    ByteQueue = 5,
    /// `JoinableQueue`.
    JoinableQueue = 6,
    /// `Value`.
    Value = 7,
    /// `Array`.
    Array = 8,
    /// `Lock`.
    Lock = 9,
    /// `RLock`.
    RLock = 10,
    /// `Semaphore`.
    Semaphore = 11,
    /// `BoundedSemaphore`.
    BoundedSemaphore = 12,
    /// `Event`.
    Event = 13,
    /// `Condition`.
    Condition = 14,
    /// `Barrier`.
    Barrier = 15,
    /// [`crate::broadcast::Ring`].
    Broadcast = 16,
}

impl Kind {
    const ALL: [Kind; 16] = [
        Kind::SpscRing,
        Kind::MpmcRing,
        Kind::Pipe,
        Kind::Queue,
        Kind::ByteQueue,
        Kind::JoinableQueue,
        Kind::Value,
        Kind::Array,
        Kind::Lock,
        Kind::RLock,
        Kind::Semaphore,
        Kind::BoundedSemaphore,
        Kind::Event,
        Kind::Condition,
        Kind::Barrier,
        Kind::Broadcast,
    ];

    /// The kind stored as `raw`, if it is one.
    pub fn from_raw(raw: u32) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| *k as u32 == raw)
    }

    /// The type's name as a user writes it (`"spsc::Ring"`, `"Queue"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::SpscRing => "spsc::Ring",
            Kind::MpmcRing => "mpmc::Ring",
            Kind::Pipe => "Pipe",
            Kind::Queue => "Queue",
            Kind::ByteQueue => "ByteQueue",
            Kind::JoinableQueue => "JoinableQueue",
            Kind::Value => "Value",
            Kind::Array => "Array",
            Kind::Lock => "Lock",
            Kind::RLock => "RLock",
            Kind::Semaphore => "Semaphore",
            Kind::BoundedSemaphore => "BoundedSemaphore",
            Kind::Event => "Event",
            Kind::Condition => "Condition",
            Kind::Barrier => "Barrier",
            Kind::Broadcast => "broadcast::Ring",
        }
    }
}

/// The header after its `magic` word. Pod: it is only ever copied out of the
/// segment, never referenced in place.
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
#[repr(C)]
pub(crate) struct HeaderData {
    /// Format version, [`VERSION`].
    pub version: u32,
    /// [`Kind`] as `u32`.
    pub kind: u32,
    /// Size of the whole segment; must equal the mapped size.
    pub total_size: u64,
    /// `size_of::<T>()` of the element type (0 when there is none).
    pub elem_size: u32,
    /// `align_of::<T>()` of the element type (0 when there is none).
    pub elem_align: u32,
    /// FNV-1a of `std::any::type_name::<T>()` (0 when there is none).
    pub type_hash: u64,
    /// Capacity in elements (rings, arrays) or bytes (byte rings); the
    /// meaning is the kind's.
    pub capacity: u64,
    /// Kind-specific parameters (max message size, initial count, ...).
    pub params: [u64; 4],
    /// Pid of the creating process.
    pub creator_pid: u32,
    /// [`FLAG_PERSIST`], ...
    pub flags: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// Length of the used part of `type_name`.
    pub type_name_len: u32,
    pub _pad: u32,
    /// `type_name::<T>()`, truncated, for error messages.
    pub type_name: [u8; 128],
}

// Magic word (8) + data must fit in the reserved header.
const _: () = assert!(8 + core::mem::size_of::<HeaderData>() <= HEADER_SIZE);

/// What a caller expects to find (or writes when creating).
#[derive(Clone, Debug)]
pub(crate) struct Expect {
    pub kind: Kind,
    pub elem: Option<ElemInfo>,
}

/// Size, alignment and name of an element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ElemInfo {
    pub size: u32,
    pub align: u32,
    pub hash: u64,
    pub name: &'static str,
}

impl ElemInfo {
    /// The layout fingerprint of `T`.
    pub fn of<T>() -> ElemInfo {
        let name = std::any::type_name::<T>();
        ElemInfo {
            size: core::mem::size_of::<T>() as u32,
            align: core::mem::align_of::<T>() as u32,
            hash: fnv1a(name.as_bytes()),
            name,
        }
    }
}

/// FNV-1a, 64 bit: a stable fingerprint (std's hashers are not stable across
/// builds).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl HeaderData {
    /// A fresh header for `expect`.
    pub fn new(expect: &Expect, capacity: u64, params: [u64; 4], total_size: u64, flags: u32) -> Self {
        let mut h = HeaderData::zeroed();
        h.version = VERSION;
        h.kind = expect.kind as u32;
        h.total_size = total_size;
        h.capacity = capacity;
        h.params = params;
        h.flags = flags;
        h.creator_pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        h.created_unix_ns =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        if let Some(e) = expect.elem {
            h.elem_size = e.size;
            h.elem_align = e.align;
            h.type_hash = e.hash;
            let n = e.name.as_bytes();
            let len = n.len().min(h.type_name.len());
            h.type_name[..len].copy_from_slice(&n[..len]);
            h.type_name_len = len as u32;
        }
        h
    }

    /// The stored element type name (lossy, for messages).
    pub fn type_name(&self) -> String {
        let len = (self.type_name_len as usize).min(self.type_name.len());
        String::from_utf8_lossy(&self.type_name[..len]).into_owned()
    }

    /// The stored kind, if valid.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_raw(self.kind)
    }

    /// Checks version, kind, element layout and size against `expect` and the
    /// mapped length. Capacity and params are checked by the kind itself.
    pub fn validate(&self, name: &str, expect: &Expect, mapped_len: u64) -> Result<(), Error> {
        self.validate_identity(name, expect)?;
        self.validate_size(name, mapped_len)
    }

    /// Checks version, kind and element layout against `expect`.
    pub fn validate_identity(&self, name: &str, expect: &Expect) -> Result<(), Error> {
        if self.version != VERSION {
            return Err(Error::VersionMismatch { name: name.into(), found: self.version, expected: VERSION });
        }
        let Some(kind) = self.kind() else {
            return Err(Error::Corrupted { name: name.into(), reason: format!("unknown object kind {}", self.kind) });
        };
        if kind != expect.kind {
            return Err(Error::WrongKind { name: name.into(), found: kind.name(), expected: expect.kind.name() });
        }
        if let Some(e) = expect.elem {
            if self.elem_size != e.size || self.elem_align != e.align || self.type_hash != e.hash {
                return Err(Error::LayoutMismatch {
                    name: name.into(),
                    found: format!(
                        "{}<{}> ({} bytes, align {})",
                        kind.name(),
                        self.type_name(),
                        self.elem_size,
                        self.elem_align
                    ),
                    expected: format!("{}<{}> ({} bytes, align {})", kind.name(), e.name, e.size, e.align),
                });
            }
        }
        Ok(())
    }

    /// Checks that the stored total size is `len`.
    pub fn validate_size(&self, name: &str, len: u64) -> Result<(), Error> {
        if self.total_size != len {
            return Err(Error::Corrupted {
                name: name.into(),
                reason: format!("header says {} bytes but the segment has {len}", self.total_size),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_raw(k as u32), Some(k));
        }
        assert_eq!(Kind::from_raw(0), None);
        assert_eq!(Kind::from_raw(999), None);
    }

    #[test]
    fn validate_reports_each_mismatch() {
        let e = Expect { kind: Kind::Queue, elem: Some(ElemInfo::of::<u64>()) };
        let h = HeaderData::new(&e, 8, [0; 4], 4096, 0);
        assert!(h.validate("q", &e, 4096).is_ok());
        assert!(matches!(h.validate("q", &e, 8192), Err(Error::Corrupted { .. })));
        let wrong_kind = Expect { kind: Kind::Lock, elem: None };
        assert!(matches!(h.validate("q", &wrong_kind, 4096), Err(Error::WrongKind { .. })));
        let wrong_t = Expect { kind: Kind::Queue, elem: Some(ElemInfo::of::<i64>()) };
        let err = h.validate("q", &wrong_t, 4096).unwrap_err();
        assert!(err.to_string().contains("Queue<u64>"), "{err}");
        let mut v = h;
        v.version = 99;
        assert!(matches!(v.validate("q", &e, 4096), Err(Error::VersionMismatch { .. })));
        v = h;
        v.kind = 77;
        assert!(matches!(v.validate("q", &e, 4096), Err(Error::Corrupted { .. })));
    }
}
