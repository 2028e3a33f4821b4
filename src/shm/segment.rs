//! One mapped segment: `shm_open`/`memfd`, space reservation, `mmap`, the
//! create/open protocol, roles, and unlink on drop.
//!
//! # Implementation details
//!
//! *Create*: `shm_open(O_CREAT | O_EXCL)`, take the `INIT` lock and the shared
//! `ATTACH` lock, `fchmod` to the exact mode, `fallocate` the whole size (a
//! full tmpfs fails here with `ENOSPC`, never later with `SIGBUS`), map, write
//! the header and let the kind initialise its body, then store the magic word
//! with `Release` and drop the `INIT` lock. Any failure after `shm_open`
//! unlinks the half-made name. An anonymous segment (a `memfd`) is then
//! sealed against shrinking and growing (`F_SEAL_SHRINK | F_SEAL_GROW`), so
//! no process it is inherited by can truncate it under the others.
//!
//! *Open*: `shm_open`, then take the shared `ATTACH` lock — required, not
//! best effort: `remove_stale` holds it *exclusively* while it checks and
//! unlinks, so an opener waits for it (bounded) — and then check that the
//! name still refers to the file we hold (`fstat` against `stat`): if a
//! collector removed it meanwhile, start again from `shm_open` (which then
//! says `NotFound`, or finds a newer segment). From this point on no
//! collector can remove the name while the handle lives.
//!
//! Then wait until the magic word is there. While the `INIT` lock is held the
//! creator is alive and still at work: wait, as long as it takes (a
//! multi-GiB segment takes seconds to reserve and initialise), polling the
//! lock with a backoff — liveness, not a clock. Once the lock is free and the
//! magic is still missing, the creator died: fail at once with
//! [`Error::Corrupted`]. (A file of size 0 may also be a creator between
//! `shm_open` and taking the lock; it gets 100 ms.) The header is then read as
//! a copy, validated against what the caller expects, and only then is the
//! segment mapped; the magic word is loaded with `Acquire` *from the mapping*
//! (pairing with the creator's `Release` store) and the header re-read from
//! the mapping must equal the validated copy.
//!
//! *Truncation* ([`crate`] README, "limits"): the size of a named segment is
//! checked at `open` (a truncated file is `Corrupted`), but a process with
//! write access to `/dev/shm/NAME` can still `ftruncate` it *after* others
//! mapped it, and their next access raises `SIGBUS`. tmpfs files made by
//! `shm_open` cannot be sealed; give named segments a mode that only trusted
//! users can write (the default is `0o600`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm::OFlags;

use super::header::{Expect, HeaderData, FLAG_PERSIST, HEADER_SIZE, MAGIC};
use super::lock::{self, RoleLock, SLOT_ATTACH, SLOT_INIT};
use super::{validate_name, Options};
use crate::error::{Error, Result};

/// Offset of the best-effort table of attached pids inside the header area.
pub(crate) const PIDS_OFFSET: usize = 448;
/// Entries in that table.
pub(crate) const PID_SLOTS: usize = 16;
const _: () = assert!(PIDS_OFFSET >= 8 + core::mem::size_of::<HeaderData>());
const _: () = assert!(PIDS_OFFSET + 4 * PID_SLOTS <= HEADER_SIZE);

/// How long a creator that has not taken its `INIT` lock yet (an empty file)
/// is given before the segment counts as abandoned.
const PRE_INIT_GRACE: Duration = Duration::from_millis(100);
/// How long `create`/`open` wait for a lock slot that another process holds
/// exclusively for a moment (`remove_stale` probing the segment).
const PROBE_WAIT: Duration = Duration::from_secs(10);
/// How often `open` starts again after the name was removed under it.
const OPEN_RETRIES: u32 = 16;

/// Types that may be viewed in place inside a segment.
///
/// # Safety
/// Implementors are `#[repr(C)]` (or a primitive), every bit pattern is a valid
/// value, and all mutation through a shared reference goes through atomics —
/// another process may write any bytes into them at any time.
pub(crate) unsafe trait ShmSafe: Sized + Sync {}
// SAFETY: atomics of plain integers accept any bit pattern and mutate atomically.
unsafe impl ShmSafe for AtomicU32 {}
// SAFETY: as above.
unsafe impl ShmSafe for AtomicU64 {}
// SAFETY: an array of `ShmSafe` values is `ShmSafe` element-wise.
unsafe impl<S: ShmSafe, const N: usize> ShmSafe for [S; N] {}

/// What `create` writes into a new segment.
pub(crate) struct CreateSpec<'a> {
    /// Kind and element layout.
    pub expect: &'a Expect,
    /// Stored in the header's `capacity`.
    pub capacity: u64,
    /// Stored in the header's `params`.
    pub params: [u64; 4],
    /// Bytes after the header.
    pub body_size: usize,
    /// Bytes of the body that are backed with memory at create (at most
    /// `body_size`); the rest of the file stays sparse (a hole that tmpfs
    /// backs page by page when it is first written, see `ByteQueue`'s arena).
    pub dense_body: usize,
    /// Mode, persistence.
    pub opts: &'a Options,
}

/// A mapped segment. `Send + Sync`: it is only a mapping plus a descriptor.
#[derive(Debug)]
pub(crate) struct Segment {
    name: String,
    /// `None` for a caller-provided region (`init_in`/`attach_in`): no
    /// kernel-tracked liveness there.
    fd: Option<OwnedFd>,
    /// Whether `drop` unmaps (false for caller-provided regions).
    owns_mapping: bool,
    base: NonNull<u8>,
    len: usize,
    header: HeaderData,
    /// `Some(pid)` if this handle created the name and must unlink it when
    /// dropped in that process.
    unlink_by: Option<u32>,
    /// Inode of the file, to avoid unlinking a newer segment of the same name.
    ino: u64,
    /// Our entry in the attached-pid table, if we got one.
    pid_slot: Option<usize>,
}

// SAFETY: the mapping is process-wide memory that stays valid until `drop`;
// every access to it goes through atomics or `Pod` copies, so sharing or
// sending the handle between threads is sound.
unsafe impl Send for Segment {}
// SAFETY: as above.
unsafe impl Sync for Segment {}

pub(crate) fn os_error(name: &str, op: &'static str, e: Errno) -> Error {
    match e {
        Errno::EXIST => Error::AlreadyExists { name: name.into() },
        Errno::NOENT => Error::NotFound { name: name.into() },
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied { name: name.into() },
        _ => Error::Io { name: name.into(), op, source: e.into() },
    }
}

fn corrupted(name: &str, reason: impl Into<String>) -> Error {
    Error::Corrupted { name: name.into(), reason: reason.into() }
}

impl Segment {
    /// Creates the named segment; fails with `AlreadyExists` if the name is
    /// taken. `init` initialises the body before the segment is published.
    pub(crate) fn create(name: &str, spec: &CreateSpec<'_>, init: impl FnOnce(&Segment)) -> Result<Segment> {
        let name = validate_name(name)?;
        let total = total_size(name, spec.body_size)?;
        lock::register_process();
        let fd =
            rustix::shm::open(name, OFlags::CREATE | OFlags::EXCL | OFlags::RDWR, Mode::from_raw_mode(spec.opts.mode))
                .map_err(|e| os_error(name, "shm_open", e))?;
        let unlink_on_err = |err: Error| {
            let _ = rustix::shm::unlink(name);
            err
        };
        let seg = Self::init_new(name, fd, total, spec, init, true).map_err(unlink_on_err)?;
        Ok(seg)
    }

    /// An unnamed segment (a `memfd`), shared with children through `fork()`.
    /// Sealed against shrinking and growing once initialised: no process
    /// can truncate it under the others.
    pub(crate) fn create_anonymous(label: &str, spec: &CreateSpec<'_>, init: impl FnOnce(&Segment)) -> Result<Segment> {
        let total = total_size(label, spec.body_size)?;
        lock::register_process();
        let fd =
            rustix::fs::memfd_create(label, rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING)
                .map_err(|e| os_error(label, "memfd_create", e))?;
        let seg = Self::init_new(label, fd, total, spec, init, false)?;
        let seals = rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::GROW | rustix::fs::SealFlags::SEAL;
        rustix::fs::fcntl_add_seals(fd_of(&seg.fd), seals).map_err(|e| os_error(label, "fcntl(F_ADD_SEALS)", e))?;
        Ok(seg)
    }

    fn init_new(
        name: &str,
        fd: OwnedFd,
        total: usize,
        spec: &CreateSpec<'_>,
        init: impl FnOnce(&Segment),
        named: bool,
    ) -> Result<Segment> {
        let io = |op| move |e: Errno| os_error(name, op, e);
        // Openers that find the name before the magic word treat the segment
        // as "being initialised" while this lock is held. (A collector may
        // hold it for a moment while it probes the new file: wait for it.)
        take_slot(name, &fd, SLOT_INIT, true)?;
        // Attach at once too: between releasing INIT and `attach` below the
        // segment would otherwise look held by nobody, and `ringshm gc` could
        // remove it under its creator.
        take_slot(name, &fd, SLOT_ATTACH, false)?;
        if named {
            // The umask may have cleared bits the caller asked for.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(spec.opts.mode)).map_err(io("fchmod"))?;
        }
        let dense = (HEADER_SIZE + spec.dense_body.min(spec.body_size)) as u64;
        reserve(&fd, total as u64, dense).map_err(|e| match e {
            Errno::NOSPC => Error::NoSpace { name: name.into(), bytes: dense },
            e => os_error(name, "fallocate", e),
        })?;
        let flags = if spec.opts.persist { FLAG_PERSIST } else { 0 };
        let header = HeaderData::new(spec.expect, spec.capacity, spec.params, total as u64, flags);
        let mut seg = Segment::map(name, fd, total, header)?;
        if named && !spec.opts.persist {
            seg.unlink_by = Some(lock::current_pid());
        }
        // SAFETY: the mapping is `total >= HEADER_SIZE` bytes, page-aligned,
        // and not yet published (magic is 0), so nobody else reads it as a
        // header; `HeaderData` is Pod and fits at offset 8 (asserted).
        unsafe { seg.base.as_ptr().add(8).cast::<HeaderData>().write_unaligned(header) };
        init(&seg);
        // Release: pairs with the Acquire load of the magic word in `open`, so
        // an opener that sees it also sees the header and the body.
        seg.magic().store(MAGIC, Ordering::Release);
        lock::unlock(fd_of(&seg.fd), SLOT_INIT);
        seg.attach()?;
        Ok(seg)
    }

    /// Opens the named segment. `body_size` checks the kind-specific header
    /// fields (capacity, params) and returns the body size they imply.
    pub(crate) fn open(
        name: &str,
        expect: &Expect,
        body_size: impl FnOnce(&HeaderData) -> Result<usize>,
    ) -> Result<Segment> {
        let name = validate_name(name)?;
        lock::register_process();
        let fd = attach_named(name)?;
        Self::open_fd(name, fd, expect, body_size)
    }

    /// Opens an existing segment through its descriptor, which holds the
    /// shared `ATTACH` lock already.
    fn open_fd(
        name: &str,
        fd: OwnedFd,
        expect: &Expect,
        body_size: impl FnOnce(&HeaderData) -> Result<usize>,
    ) -> Result<Segment> {
        let header = wait_for_header(name, &fd)?;
        let len = rustix::fs::fstat(&fd).map_err(|e| os_error(name, "fstat", e))?.st_size as u64;
        header.validate(name, expect, len)?;
        let body = body_size(&header)?;
        let expected = total_size(name, body)? as u64;
        if expected != len {
            return Err(corrupted(
                name,
                format!("capacity {} needs {expected} bytes but the segment has {len}", header.capacity),
            ));
        }
        let mut seg = Segment::map(name, fd, len as usize, header)?;
        seg.check_published()?;
        seg.attach()?;
        Ok(seg)
    }

    /// The formal acquire of everything the creator wrote: loads the magic
    /// word from the mapping with `Acquire` and checks that the header seen
    /// through the mapping is the one validated from the file.
    fn check_published(&self) -> Result<()> {
        // Acquire: pairs with the Release store of the magic word in
        // `init_new`: the header and body written before it are visible.
        if self.magic().load(Ordering::Acquire) != MAGIC {
            return Err(corrupted(&self.name, "its magic word changed while it was being opened"));
        }
        // SAFETY: the mapping holds at least HEADER_SIZE bytes (its size was
        // checked against the header's), `HeaderData` is Pod and lies inside
        // the header area at offset 8 (asserted).
        let mapped = unsafe { self.base.as_ptr().add(8).cast::<HeaderData>().read_unaligned() };
        if bytemuck::bytes_of(&mapped) != bytemuck::bytes_of(&self.header) {
            return Err(corrupted(&self.name, "its header changed while it was being opened"));
        }
        Ok(())
    }

    /// Creates the segment (`Ok((seg, true))`), or opens it if it exists
    /// (`Ok((seg, false))`); race-free between processes (the loser of the
    /// `O_EXCL` race opens, waiting for the winner to finish initialising).
    pub(crate) fn open_or_create(
        name: &str,
        spec: &CreateSpec<'_>,
        init: impl Fn(&Segment),
        body_size: impl Fn(&HeaderData) -> Result<usize>,
    ) -> Result<(Segment, bool)> {
        for _ in 0..OPEN_RETRIES {
            match Segment::create(name, spec, &init) {
                Err(Error::AlreadyExists { .. }) => {}
                other => return other.map(|s| (s, true)),
            }
            // The name may be removed between our create and open: then
            // create again.
            match Segment::open(name, spec.expect, &body_size) {
                Err(Error::NotFound { .. }) => continue,
                other => return other.map(|s| (s, false)),
            }
        }
        Err(Error::NotFound { name: name.into() })
    }

    fn map(name: &str, fd: OwnedFd, len: usize, header: HeaderData) -> Result<Segment> {
        // SAFETY: a fresh shared mapping of `len` bytes of `fd` at an address
        // the kernel picks: it aliases no Rust object. `len` is the file size
        // (checked by the callers), so no access past EOF can raise SIGBUS.
        let ptr = unsafe {
            rustix::mm::mmap(core::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)
        }
        .map_err(|e| os_error(name, "mmap", e))?;
        let ino = rustix::fs::fstat(&fd).map(|s| s.st_ino).unwrap_or(0);
        Ok(Segment {
            name: name.to_owned(),
            fd: Some(fd),
            owns_mapping: true,
            base: NonNull::new(ptr.cast()).expect("mmap returned null"),
            len,
            header,
            unlink_by: None,
            ino,
            pid_slot: None,
        })
    }

    /// Takes a best-effort entry in the pid table (the `ATTACH` lock is
    /// already held by the descriptor).
    fn attach(&mut self) -> Result<()> {
        let me = lock::current_pid();
        let pids = self.pids();
        for (i, p) in pids.iter().enumerate() {
            let cur = p.load(Ordering::Relaxed);
            let free = cur == 0 || !lock::pid_exists(cur);
            // Relaxed: the table is informational only.
            if free && p.compare_exchange(cur, me, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                self.pid_slot = Some(i);
                break;
            }
        }
        Ok(())
    }

    fn magic(&self) -> &AtomicU64 {
        // SAFETY: offset 0 of a page-aligned mapping of at least HEADER_SIZE
        // bytes; `AtomicU64` is ShmSafe.
        unsafe { &*self.base.as_ptr().cast::<AtomicU64>() }
    }

    /// The attached-pid table (informational).
    pub(crate) fn pids(&self) -> &[AtomicU32; PID_SLOTS] {
        // SAFETY: PIDS_OFFSET is 4-aligned and the table lies inside the header
        // area (asserted); atomics accept any bit pattern.
        unsafe { &*self.base.as_ptr().add(PIDS_OFFSET).cast::<[AtomicU32; PID_SLOTS]>() }
    }

    /// The name, without a leading `/`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The validated header copy taken at create/open time.
    pub(crate) fn header(&self) -> &HeaderData {
        &self.header
    }

    /// Bytes after the header.
    pub(crate) fn body_len(&self) -> usize {
        self.len - HEADER_SIZE
    }

    /// Pointer to the first body byte (512-aligned).
    pub(crate) fn body_ptr(&self) -> NonNull<u8> {
        // SAFETY: `len >= HEADER_SIZE`, so the offset stays inside the mapping.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(HEADER_SIZE)) }
    }

    /// A shared view of `S` at `offset` into the body.
    ///
    /// # Panics
    /// If `S` does not fit there or is misaligned: offsets are computed by the
    /// kind from validated sizes, so this is a bug in ringshm, not bad data.
    pub(crate) fn body_at<S: ShmSafe>(&self, offset: usize) -> &S {
        let size = core::mem::size_of::<S>();
        assert!(offset.checked_add(size).is_some_and(|end| end <= self.body_len()), "body view out of range");
        // SAFETY: in range (asserted), and the base is 512-aligned.
        let p = unsafe { self.body_ptr().as_ptr().add(offset) };
        assert_eq!(p as usize % core::mem::align_of::<S>(), 0, "body view misaligned");
        // SAFETY: 1. in range and aligned (asserted above);
        // 2. `S: ShmSafe`: any bytes are a valid `S` and shared mutation is atomic;
        // 3. the mapping lives as long as `self`.
        unsafe { &*p.cast::<S>() }
    }

    /// The segment's main descriptor (holds only the shared `ATTACH` lock);
    /// `None` for a caller-provided region.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// Takes role `role` (exclusive unless `shared`). `Ok(None)` for a
    /// caller-provided region, where the kernel cannot track it.
    ///
    /// # Errors
    /// [`Error::RoleTaken`] if a live handle holds it.
    pub(crate) fn take_role(&self, role: u32, role_name: &'static str, shared: bool) -> Result<Option<RoleLock>> {
        let Some(fd) = self.fd() else { return Ok(None) };
        match RoleLock::acquire(fd, role, shared) {
            Ok(Some(l)) => Ok(Some(l)),
            Ok(None) => Err(Error::RoleTaken { name: self.name.clone(), role: role_name }),
            Err(e) => Err(Error::Io { name: self.name.clone(), op: "fcntl(F_OFD_SETLK)", source: e }),
        }
    }

    /// Whether any live handle (in any process) holds role `role`; `None`
    /// when the kernel cannot tell (caller-provided region).
    pub(crate) fn role_held(&self, role: u32) -> Option<bool> {
        self.fd().map(|fd| lock::is_held(fd, lock::SLOT_ROLE0 + role))
    }

    /// Initialises a new object in caller-provided memory.
    ///
    /// # Safety
    /// `region` is valid for reads and writes, stays mapped for the life of
    /// the returned value and of everything derived from it, and is aligned
    /// to 128 bytes.
    pub(crate) unsafe fn init_in(
        region: NonNull<[u8]>,
        spec: &CreateSpec<'_>,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment> {
        let name = "<region>";
        let total = total_size(name, spec.body_size)?;
        check_region(region, total)?;
        lock::register_process();
        let header = HeaderData::new(spec.expect, spec.capacity, spec.params, total as u64, 0);
        let seg = Segment::from_region(region, total, header);
        seg.magic().store(0, Ordering::Relaxed);
        // SAFETY: the region is at least `total >= HEADER_SIZE` bytes (checked)
        // and ours to write by the caller's contract.
        unsafe { seg.base.as_ptr().add(8).cast::<HeaderData>().write_unaligned(header) };
        init(&seg);
        // Release: pairs with the Acquire load in `attach_in`.
        seg.magic().store(MAGIC, Ordering::Release);
        Ok(seg)
    }

    /// Attaches to an object another process initialised in shared memory.
    ///
    /// # Safety
    /// As for [`Segment::init_in`].
    pub(crate) unsafe fn attach_in(
        region: NonNull<[u8]>,
        expect: &Expect,
        body_size: impl FnOnce(&HeaderData) -> Result<usize>,
    ) -> Result<Segment> {
        let name = "<region>";
        check_region(region, HEADER_SIZE)?;
        lock::register_process();
        let base = region.cast::<u8>();
        // SAFETY: the region holds at least HEADER_SIZE bytes (checked), is
        // 128-aligned, and the magic word is an atomic.
        // Acquire: pairs with the Release store of the magic word in `init_in`.
        let magic = unsafe { &*base.as_ptr().cast::<AtomicU64>() }.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(corrupted(name, "bad magic: no initialised ringshm object in this region"));
        }
        // SAFETY: as above; `HeaderData` is Pod and lies inside the header area.
        let header = unsafe { base.as_ptr().add(8).cast::<HeaderData>().read_unaligned() };
        let len = region.len() as u64;
        header.validate_identity(name, expect)?;
        let body = body_size(&header)?;
        let total = total_size(name, body)?;
        // The caller's region may be larger than the object: validate against
        // the size the object says it has, which must fit.
        if total as u64 > len {
            return Err(corrupted(name, format!("object needs {total} bytes, region has {len}")));
        }
        header.validate_size(name, total as u64)?;
        Ok(Segment::from_region(region, total, header))
    }

    fn from_region(region: NonNull<[u8]>, len: usize, header: HeaderData) -> Segment {
        Segment {
            name: "<region>".into(),
            fd: None,
            owns_mapping: false,
            base: region.cast(),
            len,
            header,
            unlink_by: None,
            ino: 0,
            pid_slot: None,
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let me = lock::current_pid();
        if let Some(i) = self.pid_slot {
            let _ = self.pids()[i].compare_exchange(me, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
        if self.unlink_by == Some(me) {
            // Only if the name still refers to our file (it may have been
            // removed and created anew by someone else).
            let path = format!("/dev/shm/{}", self.name);
            if rustix::fs::stat(path.as_str()).is_ok_and(|st| st.st_ino == self.ino) {
                let _ = rustix::shm::unlink(self.name.as_str());
            }
        }
        if self.owns_mapping {
            // SAFETY: `base`/`len` are exactly what `mmap` returned; every
            // reference into the mapping borrows `self`, so none outlives this.
            unsafe {
                let _ = rustix::mm::munmap(self.base.as_ptr().cast(), self.len);
            }
        }
    }
}

fn fd_of(fd: &Option<OwnedFd>) -> BorrowedFd<'_> {
    fd.as_ref().expect("named and anonymous segments have a descriptor").as_fd()
}

fn check_region(region: NonNull<[u8]>, need: usize) -> Result<()> {
    let addr = region.cast::<u8>().as_ptr() as usize;
    if addr % 128 != 0 {
        return Err(Error::InvalidArgument { reason: format!("region at {addr:#x} is not 128-byte aligned") });
    }
    if region.len() < need {
        return Err(Error::InvalidArgument {
            reason: format!("region of {} bytes is too small: {need} needed", region.len()),
        });
    }
    Ok(())
}

fn total_size(name: &str, body: usize) -> Result<usize> {
    body.checked_add(HEADER_SIZE).filter(|t| *t <= isize::MAX as usize).ok_or_else(|| Error::InvalidArgument {
        reason: format!("segment '{name}' would be larger than the address space"),
    })
}

/// Sets the size of `fd` to `len` and reserves real memory for its first
/// `dense` bytes; the rest stays a hole (nothing allocated, nothing touched).
fn reserve(fd: &OwnedFd, len: u64, dense: u64) -> std::result::Result<(), Errno> {
    if dense < len {
        rustix::fs::ftruncate(fd, len)?;
    }
    match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, dense.min(len)) {
        Ok(()) => Ok(()),
        // File systems without fallocate: size it and hope (tmpfs has it).
        Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => rustix::fs::ftruncate(fd, len),
        Err(e) => Err(e),
    }
}

/// `shm_open`s `name` and takes the shared `ATTACH` lock on it, making sure
/// the name still refers to the file held: a `remove_stale` that unlinked
/// it in between (it holds `ATTACH` exclusively while it does) makes this
/// start again, and then report `NotFound` or find the newer segment.
fn attach_named(name: &str) -> Result<OwnedFd> {
    for _ in 0..OPEN_RETRIES {
        let fd = rustix::shm::open(name, OFlags::RDWR, Mode::empty()).map_err(|e| os_error(name, "shm_open", e))?;
        take_slot(name, &fd, SLOT_ATTACH, false)?;
        // Holding ATTACH, no collector can remove the name any more; check
        // it was not removed (or replaced) before.
        if still_named(name, &fd)? {
            return Ok(fd);
        }
    }
    Err(Error::NotFound { name: name.into() })
}

/// Whether `/dev/shm/NAME` is the file `fd` refers to.
fn still_named(name: &str, fd: &OwnedFd) -> Result<bool> {
    let ours = rustix::fs::fstat(fd).map_err(|e| os_error(name, "fstat", e))?;
    match rustix::fs::stat(format!("/dev/shm/{name}").as_str()) {
        Ok(st) => Ok(st.st_ino == ours.st_ino && st.st_dev == ours.st_dev),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(os_error(name, "stat", e)),
    }
}

/// Takes lock `slot` on `fd` (exclusive or shared). Another description may
/// hold a conflicting lock only for a moment (`remove_stale` probing the
/// segment exclusively): wait for it, bounded.
fn take_slot(name: &str, fd: &OwnedFd, slot: u32, exclusive: bool) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        match lock::try_lock(fd.as_fd(), slot, exclusive) {
            Ok(true) => return Ok(()),
            Ok(false) if start.elapsed() < PROBE_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            Ok(false) => {
                return Err(Error::Io {
                    name: name.into(),
                    op: "attach (another process has held the segment exclusively for 10 s: a stopped `ringshm gc`?)",
                    source: std::io::ErrorKind::WouldBlock.into(),
                })
            }
            Err(e) => return Err(Error::Io { name: name.into(), op: "fcntl(F_OFD_SETLK)", source: e }),
        }
    }
}

/// Reads the header of `fd` once its creator has published it: waits as long
/// as the creator holds its `INIT` lock (it is alive and initialising, however
/// long that takes), fails at once once the lock is free without a header
/// (the creator died).
pub(crate) fn wait_for_header(name: &str, fd: &OwnedFd) -> Result<HeaderData> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if let Some(h) = read_header(name, fd)? {
            return Ok(h);
        }
        if !lock::is_held(fd.as_fd(), SLOT_INIT) {
            // Published and released between our read and the probe?
            if let Some(h) = read_header(name, fd)? {
                return Ok(h);
            }
            // The creator takes INIT before it sizes the file: an empty file
            // may still be a creator between `shm_open` and the lock.
            let empty = rustix::fs::fstat(fd).map_err(|e| os_error(name, "fstat", e))?.st_size == 0;
            if !empty || start.elapsed() > PRE_INIT_GRACE {
                return Err(corrupted(
                    name,
                    format!(
                        "it was never initialised: its creator died while creating it (or it is not a ringshm \
                         segment); remove it with `ringshm rm {name}` and create it again"
                    ),
                ));
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// The header copy, or `None` while the magic word is still 0.
pub(crate) fn read_header(name: &str, fd: &OwnedFd) -> Result<Option<HeaderData>> {
    let mut buf = [0u8; 8 + core::mem::size_of::<HeaderData>()];
    let n = rustix::io::pread(fd, &mut buf, 0).map_err(|e| os_error(name, "pread", e))?;
    if n < 8 {
        return Ok(None);
    }
    let magic = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
    if magic == 0 {
        return Ok(None);
    }
    if magic != MAGIC {
        return Err(corrupted(name, "bad magic: not a ringshm segment"));
    }
    if n < buf.len() {
        return Err(corrupted(name, format!("truncated: {n} bytes, shorter than the header")));
    }
    // The kernel may copy the bytes in any order: read again now that the
    // magic (stored with Release after the header) has been seen.
    let n = rustix::io::pread(fd, &mut buf, 0).map_err(|e| os_error(name, "pread", e))?;
    if n < buf.len() {
        return Err(corrupted(name, format!("truncated: {n} bytes, shorter than the header")));
    }
    Ok(Some(bytemuck::pod_read_unaligned(&buf[8..])))
}
