//! Inspecting and cleaning up the segments in `/dev/shm`: [`list`], [`info`],
//! [`remove_stale`] (the library side of `ringshm ls`, `info` and `gc`).
//!
//! # Implementation details
//!
//! Nothing here maps a segment or trusts a byte of it: the header is copied
//! out with `pread` and every field is checked before it is reported, so a
//! scribbled segment is listed as [`SegmentState::Corrupted`] instead of
//! failing the listing. A file counts as a ringshm segment when its first
//! word is the magic `b"RINGSHM1"` (or, while its creator still initialises
//! it, when the creator's `INIT` lock is held); anything else in `/dev/shm`
//! belongs to someone else and is skipped.
//!
//! "Held" is kernel-tracked: every handle keeps a shared OFD lock on the
//! segment's `ATTACH` slot (see [`crate::shm`]), which the kernel drops when
//! the last descriptor closes, even at `SIGKILL`. [`remove_stale`] takes that
//! slot (and `INIT`) *exclusively*, re-checks the segment is stale and that the
//! name is still the file it locked, and only then unlinks; the lock is held
//! until after the unlink. An opener takes the slot shared *before* it trusts
//! the name (waiting while a collector holds it), then checks the name still
//! refers to its file. So either the opener holds the slot first (and the
//! collector keeps the segment), or the collector unlinks first (and the
//! opener sees the name gone and starts again): nobody ends up holding a
//! removed name.
//!
//! | state                      | in use | persist | creator alive | removed by `remove_stale` |
//! |----------------------------|--------|---------|---------------|---------------------------|
//! | `Ready` / `Corrupted`      | no     | no      | no            | yes                       |
//! | any                        | yes    | -       | -             | no                        |
//! | any                        | -      | yes     | -             | no (use `ringshm rm`)     |
//! | any                        | -      | -       | yes           | no (its creator may still remove or use it) |
//! | `Initialising`/`Unsupported` | -    | -       | -             | no                        |

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::shm::header::{HeaderData, Kind, FLAG_PERSIST, HEADER_SIZE, MAGIC, VERSION};
use crate::shm::lock::{self, ProcId, SLOT_ATTACH, SLOT_INIT};
use crate::shm::segment::{os_error, PIDS_OFFSET, PID_SLOTS};
use crate::shm::validate_name;

/// Where POSIX shared-memory names live on Linux.
const SHM_DIR: &str = "/dev/shm";

/// How much later than a segment's creation a process may have started and
/// still be taken for its creator (clock granularity of `/proc`); a process
/// that started later holds a reused pid.
const START_SLACK: Duration = Duration::from_secs(2);

/// Whether a segment's header could be read and made sense.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentState {
    /// The header is valid; every field of [`SegmentInfo`] is meaningful.
    Ready,
    /// Its creator is still writing the header (it holds the `INIT` lock).
    Initialising,
    /// Written by a ringshm with another segment format version; only the
    /// name, size, mode and liveness are known.
    Unsupported {
        /// The format version found.
        version: u32,
    },
    /// The magic word says ringshm, but the header does not add up
    /// (truncated, unknown kind, sizes that disagree, ...). Fields read from
    /// the header are reported as found, but mean nothing.
    Corrupted(String),
}

/// A process that created or attached a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: u32,
    /// Whether it still runs (a zombie does not).
    pub alive: bool,
}

/// What [`list`] and [`info`] report about one segment.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The name, without a leading `/`.
    pub name: String,
    /// Whether the header is valid.
    pub state: SegmentState,
    /// The object kind, if the header names a known one.
    pub kind: Option<Kind>,
    /// Size of the segment file in bytes.
    pub size: u64,
    /// Permission bits of the segment file.
    pub mode: u32,
    /// Owner (uid) of the segment file.
    pub uid: u32,
    /// The creating process (pid 0 when unknown); `alive` also checks that
    /// the pid was not reused by a process started after the segment.
    pub creator: ProcessInfo,
    /// Processes recorded as attached (a best-effort table of up to 16 pids
    /// in the header; dead entries stay until their slot is reused).
    pub attached: Vec<ProcessInfo>,
    /// Whether any live process holds the segment open (kernel-tracked, so
    /// exact even when the pid table is not).
    pub in_use: bool,
    /// Created with `Options::persist(true)`: survives its creator.
    pub persist: bool,
    /// `std::any::type_name` of the element type, empty when there is none.
    pub element_type: String,
    /// Size of one element in bytes (0 when there is none).
    pub element_size: u32,
    /// Capacity in elements (rings, arrays) or bytes (pipes, byte queues).
    pub capacity: u64,
    /// When the segment was created, by its creator's clock.
    pub created: Option<SystemTime>,
    /// For a [`crate::broadcast::Ring`]: its mode, messages sent, and each
    /// subscriber with how far behind it is.
    pub broadcast: Option<crate::broadcast::TopicInfo>,
}

impl SegmentInfo {
    /// Whether [`remove_stale`] would remove it: no live process holds it, it
    /// is not persistent, its creator is gone, and its header was readable as
    /// this version's (valid or corrupted).
    pub fn is_stale(&self) -> bool {
        matches!(self.state, SegmentState::Ready | SegmentState::Corrupted(_))
            && !self.in_use
            && !self.persist
            && !self.creator.alive
    }

    /// The kind's name as a user writes it, or `"?"`.
    pub fn kind_name(&self) -> &'static str {
        self.kind.map_or("?", Kind::name)
    }

    /// The kind's name with what `ringshm ls` shows about it: for a
    /// broadcast ring, its mode and live subscribers
    /// (`"broadcast::Ring (lossless, 3 subs)"`).
    pub fn kind_text(&self) -> String {
        match &self.broadcast {
            Some(b) => {
                let live = b.subscribers.iter().filter(|s| s.alive).count();
                let mode = if b.overwrite { "overwrite" } else { "lossless" };
                format!("{} ({mode}, {live} subs)", self.kind_name())
            }
            None => self.kind_name().to_owned(),
        }
    }
}

/// Every ringshm segment in `/dev/shm`, sorted by name.
///
/// Files that are not ringshm segments are skipped; ringshm segments with an
/// invalid header are listed with [`SegmentState::Corrupted`]. Segments that
/// disappear or cannot be read while listing are skipped.
///
/// # Examples
/// ```
/// for s in ringshm::list()? {
///     println!("{} {} in use: {}", s.name, s.kind_name(), s.in_use);
/// }
/// # Ok::<(), ringshm::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if `/dev/shm` exists but cannot be read. A missing
/// `/dev/shm` is an empty list.
pub fn list() -> Result<Vec<SegmentInfo>> {
    let dir = match std::fs::read_dir(SHM_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { name: SHM_DIR.into(), op: "read_dir", source: e }),
    };
    let mut out = Vec::new();
    for entry in dir {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if validate_name(&name).is_err() {
            continue;
        }
        let Ok(fd) = open_file(&name, false) else { continue };
        if let Ok(Some(info)) = inspect_fd(&name, &fd) {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What [`list`] reports about the segment `name`.
///
/// # Errors
/// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`],
/// [`Error::Corrupted`] if the file is not a ringshm segment at all (a
/// ringshm segment with a bad header is `Ok` with
/// [`SegmentState::Corrupted`]), [`Error::Io`].
pub fn info(name: &str) -> Result<SegmentInfo> {
    let name = validate_name(name)?;
    let fd = open_file(name, false).map_err(|e| os_error(name, "open", e))?;
    inspect_fd(name, &fd)?.ok_or_else(|| Error::Corrupted {
        name: name.into(),
        reason: "not a ringshm segment (no ringshm magic word, and no creator initialising it)".into(),
    })
}

/// Unlinks every segment that no live process holds and that was not created
/// with `persist`; returns the names removed. See [`SegmentInfo::is_stale`]
/// for the exact rule.
///
/// Each candidate is re-checked while holding its `ATTACH` slot exclusively,
/// so a segment that some process opens at the same moment is never removed
/// under it. Segments that cannot be removed (permissions, gone meanwhile)
/// are skipped.
///
/// # Errors
/// As [`list`].
pub fn remove_stale() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for s in list()? {
        if s.is_stale() && remove_if_stale(&s.name) {
            removed.push(s.name);
        }
    }
    Ok(removed)
}

/// Re-checks `name` under an exclusive `ATTACH` lock and unlinks it if stale.
fn remove_if_stale(name: &str) -> bool {
    let Ok(fd) = open_file(name, true) else { return false };
    // Exclusive ATTACH: fails while any handle holds it shared, and makes a
    // concurrent opener's attach fail rather than slip in after our check.
    if !lock::try_lock(fd.as_fd(), SLOT_ATTACH, true).unwrap_or(false)
        || !lock::try_lock(fd.as_fd(), SLOT_INIT, true).unwrap_or(false)
    {
        return false;
    }
    if !inspect_fd(name, &fd).is_ok_and(|i| i.is_some_and(|i| i.is_stale())) {
        return false;
    }
    // Only if the name still refers to the file we locked.
    let same = match (rustix::fs::fstat(&fd), rustix::fs::lstat(path(name).as_str())) {
        (Ok(a), Ok(b)) => a.st_ino == b.st_ino && a.st_dev == b.st_dev,
        _ => false,
    };
    same && rustix::shm::unlink(name).is_ok()
    // `fd` closes here, releasing our locks.
}

fn path(name: &str) -> String {
    format!("{SHM_DIR}/{name}")
}

/// Opens `/dev/shm/NAME` without following symlinks or blocking on a FIFO,
/// and checks it is a regular file.
fn open_file(name: &str, write: bool) -> std::result::Result<OwnedFd, Errno> {
    let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
    let fd = rustix::fs::open(
        path(name).as_str(),
        access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Errno::INVAL);
    }
    Ok(fd)
}

/// Reads and checks the header of an open segment file. `Ok(None)` if it is
/// not a ringshm segment.
fn inspect_fd(name: &str, fd: &OwnedFd) -> Result<Option<SegmentInfo>> {
    let st = rustix::fs::fstat(fd).map_err(|e| os_error(name, "fstat", e))?;
    let size = st.st_size.max(0) as u64;
    let mut buf = [0u8; HEADER_SIZE];
    let n = read_prefix(fd, &mut buf).map_err(|e| os_error(name, "pread", e))?;
    let initialising = lock::is_held(fd.as_fd(), SLOT_INIT);
    let in_use = initialising || lock::is_held(fd.as_fd(), SLOT_ATTACH);
    let magic = (n >= 8).then(|| u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")));

    let mut info = SegmentInfo {
        name: name.into(),
        state: SegmentState::Ready,
        kind: None,
        size,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        creator: ProcessInfo { pid: 0, alive: false },
        attached: Vec::new(),
        in_use,
        persist: false,
        element_type: String::new(),
        element_size: 0,
        capacity: 0,
        created: None,
        broadcast: None,
    };
    match magic {
        Some(MAGIC) => {}
        // A creator between `shm_open` and publishing the magic word.
        None | Some(0) if initialising => {
            info.state = SegmentState::Initialising;
            return Ok(Some(info));
        }
        _ => return Ok(None),
    }

    // `buf` is zero past `n`: a truncated header reads as zeros there.
    let h: HeaderData = bytemuck::pod_read_unaligned(&buf[8..8 + core::mem::size_of::<HeaderData>()]);
    if h.version != VERSION {
        info.state = SegmentState::Unsupported { version: h.version };
        return Ok(Some(info));
    }
    info.kind = h.kind();
    info.persist = h.flags & FLAG_PERSIST != 0;
    info.element_type = h.type_name();
    info.element_size = h.elem_size;
    info.capacity = h.capacity;
    info.created = (h.created_unix_ns != 0).then(|| UNIX_EPOCH + Duration::from_nanos(h.created_unix_ns));
    info.creator = ProcessInfo { pid: h.creator_pid, alive: creator_alive(h.creator_pid, h.created_unix_ns) };
    info.attached = attached_pids(&buf[..n]);
    if let Some(reason) = header_problem(&h, n, size) {
        info.state = SegmentState::Corrupted(reason);
    } else if info.kind == Some(Kind::Broadcast) {
        let mut body = vec![0u8; crate::broadcast::SLOTS_OFFSET];
        if rustix::io::pread(fd, &mut body, HEADER_SIZE as u64).is_ok_and(|k| k == body.len()) {
            info.broadcast =
                crate::broadcast::describe(&h, &body, |role| lock::is_held(fd.as_fd(), lock::SLOT_ROLE0 + role));
        }
    }
    Ok(Some(info))
}

/// `pread` from offset 0 until `buf` is full or the file ends.
fn read_prefix(fd: &OwnedFd, buf: &mut [u8]) -> std::result::Result<usize, Errno> {
    let mut n = 0;
    while n < buf.len() {
        match rustix::io::pread(fd, &mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Why a header (of this format version) is invalid, if it is.
fn header_problem(h: &HeaderData, read: usize, size: u64) -> Option<String> {
    if read < HEADER_SIZE {
        return Some(format!("truncated: {read} bytes, shorter than the {HEADER_SIZE}-byte header"));
    }
    let Some(kind) = h.kind() else { return Some(format!("unknown object kind {}", h.kind)) };
    if h.total_size != size {
        return Some(format!("header says {} bytes but the segment has {size}", h.total_size));
    }
    if h.type_name_len as usize > h.type_name.len() {
        return Some(format!("type name length {} out of range", h.type_name_len));
    }
    if h.elem_align != 0 && !h.elem_align.is_power_of_two() {
        return Some(format!("element alignment {} is not a power of two", h.elem_align));
    }
    if u64::from(h.elem_size).checked_mul(h.capacity).is_none_or(|b| b > size) {
        return Some(format!("capacity {} of {}-byte elements does not fit in {size} bytes", h.capacity, h.elem_size));
    }
    if matches!(kind, Kind::SpscRing | Kind::MpmcRing | Kind::Broadcast) && !h.capacity.is_power_of_two() {
        return Some(format!("ring capacity {} is not a power of two", h.capacity));
    }
    None
}

/// The non-zero entries of the header's pid table, deduplicated.
fn attached_pids(header: &[u8]) -> Vec<ProcessInfo> {
    let mut out: Vec<ProcessInfo> = Vec::new();
    for i in 0..PID_SLOTS {
        let off = PIDS_OFFSET + 4 * i;
        let Some(b) = header.get(off..off + 4) else { break };
        let pid = u32::from_le_bytes(b.try_into().expect("4 bytes"));
        if pid != 0 && !out.iter().any(|p| p.pid == pid) {
            out.push(ProcessInfo { pid, alive: ProcId { pid, start: 0 }.is_alive() });
        }
    }
    out
}

/// Whether `pid` runs and started no later than the segment was created
/// (so it is not a newer process that reused the creator's pid).
fn creator_alive(pid: u32, created_unix_ns: u64) -> bool {
    if !(ProcId { pid, start: 0 }.is_alive()) {
        return false;
    }
    match (process_start_unix(pid), created_unix_ns) {
        (Some(started), c) if c != 0 => {
            let created = UNIX_EPOCH + Duration::from_nanos(c);
            started <= created + START_SLACK
        }
        // Unknown: assume it is the creator (never call a live creator dead).
        _ => true,
    }
}

/// When `pid` started, by the wall clock (from `/proc`).
fn process_start_unix(pid: u32) -> Option<SystemTime> {
    let ticks = lock::start_time(pid)?;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    // SAFETY: `sysconf` only reads a configuration value; no pointers involved.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    let since_boot = Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz);
    Some(UNIX_EPOCH + Duration::from_secs(btime) + since_boot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spsc;

    fn name(t: &str) -> String {
        format!("ringshm-ut-inspect-{t}-{}", std::process::id())
    }

    #[test]
    fn lists_a_live_ring() {
        let n = name("live");
        let r = spsc::Ring::<u32>::create(&n, 100).unwrap();
        let i = info(&n).unwrap();
        assert_eq!(i.state, SegmentState::Ready);
        assert_eq!(i.kind, Some(Kind::SpscRing));
        assert_eq!(i.capacity, 128);
        assert_eq!(i.element_type, "u32");
        assert_eq!(i.element_size, 4);
        assert_eq!(i.creator, ProcessInfo { pid: std::process::id(), alive: true });
        assert!(i.attached.iter().any(|p| p.pid == std::process::id() && p.alive));
        assert!(i.in_use && !i.persist && !i.is_stale());
        assert_eq!(i.mode, 0o600);
        assert!(list().unwrap().iter().any(|s| s.name == n));
        drop(r);
        assert!(matches!(info(&n), Err(Error::NotFound { .. })));
    }

    #[test]
    fn shows_broadcast_subscribers() {
        let n = name("bcast");
        let r = crate::broadcast::Ring::<u64>::create(&n, 8).unwrap();
        let _a = r.subscribe().unwrap();
        let mut b = r.subscribe().unwrap();
        let mut tx = r.publisher().unwrap();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        while b.try_recv().is_ok() {}
        let i = info(&n).unwrap();
        assert_eq!(i.kind, Some(Kind::Broadcast));
        let t = i.broadcast.clone().expect("broadcast details");
        assert!(!t.overwrite);
        assert_eq!(t.sent, 5);
        let behind: Vec<u64> = t.subscribers.iter().map(|s| s.behind).collect();
        assert_eq!(behind, [5, 0]);
        assert!(t.subscribers.iter().all(|s| s.alive && s.pid == std::process::id()));
        assert_eq!(i.kind_text(), "broadcast::Ring (lossless, 2 subs)");
    }

    #[test]
    fn header_problems() {
        let e =
            crate::shm::header::Expect { kind: Kind::SpscRing, elem: Some(crate::shm::header::ElemInfo::of::<u64>()) };
        let h = HeaderData::new(&e, 8, [0; 4], 4096, 0);
        assert_eq!(header_problem(&h, HEADER_SIZE, 4096), None);
        assert!(header_problem(&h, 100, 4096).unwrap().contains("truncated"));
        assert!(header_problem(&h, HEADER_SIZE, 8192).unwrap().contains("8192"));
        let mut b = h;
        b.capacity = 3;
        assert!(header_problem(&b, HEADER_SIZE, 4096).unwrap().contains("power of two"));
        b.capacity = u64::MAX;
        assert!(header_problem(&b, HEADER_SIZE, 4096).is_some());
        b = h;
        b.kind = 0;
        assert!(header_problem(&b, HEADER_SIZE, 4096).unwrap().contains("kind"));
    }

    #[test]
    fn creator_liveness() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!(creator_alive(std::process::id(), now));
        assert!(creator_alive(std::process::id(), 0));
        // A segment "created" long before this process started: pid reused.
        assert!(!creator_alive(std::process::id(), 1_000_000_000));
        assert!(!creator_alive(0, now));
    }
}
