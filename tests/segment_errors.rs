//! Segment errors: every way of failing to create or open a segment gives its
//! own `Error` variant; segment lifecycle (mode, persist, who unlinks),
//! `open_or_create` racing between real processes, and `list`/`remove_stale`.
//!
//! Crafted segments are made by creating a real ring with `persist(true)`,
//! copying its file out of `/dev/shm`, changing bytes at the documented header
//! offsets and writing it back with `std::fs`.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringshm::{spsc, Error, Kind, Options, SegmentState};

// The header layout (src/shm/header.rs): magic u64 LE at 0, then `HeaderData`
// (repr(C)) at 8; these are absolute file offsets of its fields.
const OFF_VERSION: usize = 8; // u32
const OFF_KIND: usize = 12; // u32
const OFF_TOTAL_SIZE: usize = 16; // u64
const OFF_CAPACITY: usize = 40; // u64 (after elem_size u32, elem_align u32, type_hash u64)
const HEADER_SIZE: usize = 512;

fn path(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/{name}"))
}

fn exists(name: &str) -> bool {
    path(name).exists()
}

/// Removes the segment when dropped (tests clean up even when they fail).
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(path(&self.0));
    }
}

/// The bytes of a fresh, valid `spsc::Ring<u64>` of capacity 8. It is created
/// with `persist(true)`, so the copy is also marked persistent (and
/// `remove_stale` in a concurrent test leaves it alone).
fn valid_ring_bytes(name: &str) -> Vec<u8> {
    let r = spsc::Ring::<u64>::create_with(name, 8, &Options::new().persist(true)).unwrap();
    let bytes = std::fs::read(path(name)).unwrap();
    drop(r);
    ringshm::unlink(name).unwrap();
    assert_eq!(&bytes[..8], b"RINGSHM1");
    bytes
}

/// Writes `bytes` as segment `name` and opens it as `spsc::Ring<u64>`.
fn open_crafted(name: &str, bytes: &[u8]) -> Error {
    std::fs::write(path(name), bytes).unwrap();
    match spsc::Ring::<u64>::open(name) {
        Ok(_) => panic!("crafted segment {name} opened"),
        Err(e) => e,
    }
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn is_root() -> bool {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn invalid_names_are_refused_before_any_syscall() {
    let long = "x".repeat(201);
    let bad = ["", "/", "a/b", "../etc", "..", ".", "has space", "tab\t", "nul\0", "é", "a*b", long.as_str()];
    for name in bad {
        let e = spsc::Ring::<u64>::create(name, 8).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "create {name:?}: {e}");
        let e = spsc::Ring::<u64>::open(name).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "open {name:?}: {e}");
        let e = spsc::Ring::<u64>::open_or_create(name, 8).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "open_or_create {name:?}: {e}");
        assert!(matches!(ringshm::unlink(name), Err(Error::InvalidName { .. })), "unlink {name:?}");
        assert!(matches!(ringshm::info(name), Err(Error::InvalidName { .. })), "info {name:?}");
    }
    // Nothing reached the file system: no file named like the too-long name.
    assert!(!exists(&long));
    // 200 bytes is fine, and a leading '/' is accepted and ignored.
    let ok = format!("{}{}", common::unique("n"), "y".repeat(60));
    let r = spsc::Ring::<u64>::create(&format!("/{ok}"), 8).unwrap();
    assert_eq!(r.name(), ok);
    assert!(exists(&ok));
    let max = "z".repeat(200 - 8) + &format!("{:08}", std::process::id() % 100_000_000);
    let r2 = spsc::Ring::<u64>::create(&max, 1).unwrap();
    drop((r, r2));
    assert!(!exists(&ok) && !exists(&max));
}

#[test]
fn existing_name_is_already_exists_and_left_untouched() {
    let name = common::unique("exists");
    let r = spsc::Ring::<u64>::create(&name, 8).unwrap();
    let mut tx = r.producer().unwrap();
    tx.push_slice(&[1, 2, 3]);
    let ino = std::fs::metadata(path(&name)).unwrap().ino();
    let before = std::fs::read(path(&name)).unwrap();

    let e = spsc::Ring::<u64>::create(&name, 1024).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
    let e = spsc::Ring::<u32>::create_with(&name, 4, &Options::new().mode(0o666).persist(true)).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
    assert!(e.to_string().contains(&name));

    let meta = std::fs::metadata(path(&name)).unwrap();
    assert_eq!(meta.ino(), ino, "the segment was replaced");
    assert_eq!(meta.mode() & 0o777, 0o600, "the mode was changed");
    assert_eq!(std::fs::read(path(&name)).unwrap(), before, "the contents were changed");
    let o = spsc::Ring::<u64>::open(&name).unwrap();
    assert_eq!(o.capacity(), 8);
    let mut rx = o.consumer().unwrap();
    let mut out = [0; 8];
    assert_eq!(rx.pop_slice(&mut out), 3);
    assert_eq!(out[..3], [1, 2, 3]);
}

#[test]
fn missing_name_is_not_found() {
    let name = common::unique("missing");
    assert!(matches!(spsc::Ring::<u64>::open(&name), Err(Error::NotFound { .. })));
    assert!(matches!(spsc::Ring::<u64>::open_with(&name, &Options::new()), Err(Error::NotFound { .. })));
    assert!(matches!(ringshm::unlink(&name), Err(Error::NotFound { .. })));
    assert!(matches!(ringshm::info(&name), Err(Error::NotFound { .. })));
    assert!(!exists(&name), "open must not create");
}

#[test]
fn another_kind_is_wrong_kind() {
    let name = common::unique("kind");
    let _c = Cleanup(name.clone());
    let mut b = valid_ring_bytes(&name);
    put_u32(&mut b, OFF_KIND, Kind::MpmcRing as u32);
    match open_crafted(&name, &b) {
        Error::WrongKind { found, expected, .. } => {
            assert_eq!(found, "mpmc::Ring");
            assert_eq!(expected, "spsc::Ring");
        }
        e => panic!("{e}"),
    }
    put_u32(&mut b, OFF_KIND, Kind::Lock as u32);
    let e = open_crafted(&name, &b);
    assert!(matches!(e, Error::WrongKind { found: "Lock", .. }), "{e}");
    assert!(e.to_string().contains("Lock") && e.to_string().contains("spsc::Ring"), "{e}");
    // A kind number no version knows is corruption, not another kind.
    put_u32(&mut b, OFF_KIND, 77);
    assert!(matches!(open_crafted(&name, &b), Error::Corrupted { .. }));
}

#[test]
fn another_element_type_is_layout_mismatch() {
    let name = common::unique("elem");
    let _r = spsc::Ring::<u64>::create(&name, 8).unwrap();
    let e = spsc::Ring::<u32>::open(&name).unwrap_err();
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("u64") && msg.contains("u32"), "{msg}");
    // Same size and alignment, another type: caught by the type fingerprint.
    let e = spsc::Ring::<i64>::open(&name).unwrap_err();
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("u64") && msg.contains("i64"), "{msg}");
    let e = spsc::Ring::<[u8; 8]>::open(&name).unwrap_err();
    assert!(matches!(e, Error::LayoutMismatch { .. }), "{e}");
    // The right type still opens.
    assert_eq!(spsc::Ring::<u64>::open(&name).unwrap().capacity(), 8);
}

#[test]
fn another_format_version_is_version_mismatch() {
    let name = common::unique("version");
    let _c = Cleanup(name.clone());
    let mut b = valid_ring_bytes(&name);
    put_u32(&mut b, OFF_VERSION, 1);
    match open_crafted(&name, &b) {
        Error::VersionMismatch { found, expected, .. } => assert_eq!((found, expected), (1, 3)),
        e => panic!("{e}"),
    }
    let i = ringshm::info(&name).unwrap();
    assert_eq!(i.state, SegmentState::Unsupported { version: 1 });
}

#[test]
fn truncated_garbage_and_inconsistent_files_are_corrupted() {
    let name = common::unique("corrupt");
    let _c = Cleanup(name.clone());
    let good = valid_ring_bytes(&name);
    let corrupted = |bytes: &[u8], what: &str| {
        let e = open_crafted(&name, bytes);
        assert!(matches!(e, Error::Corrupted { .. }), "{what}: got {e}");
        assert!(e.to_string().contains("corrupted"), "{what}: {e}");
        // `info` lists it as a corrupted ringshm segment or refuses it as not
        // ringshm at all, but never fails otherwise. (It checks only what all
        // kinds share, so a capacity that is valid but does not match the
        // size may pass there.)
        match ringshm::info(&name) {
            Ok(i) => {
                assert!(matches!(i.state, SegmentState::Corrupted(_)) || what == "capacity 16", "{what}: {:?}", i.state)
            }
            Err(e) => assert!(matches!(e, Error::Corrupted { .. }), "{what}: {e}"),
        }
    };
    // Truncated inside the header, and with the header but no body.
    corrupted(&good[..100], "truncated header");
    corrupted(&good[..HEADER_SIZE], "header only");
    corrupted(&good[..good.len() - 8], "short body");
    // Garbage: not a ringshm segment at all.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..good.len())
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    corrupted(&garbage, "garbage");
    // Magic and version, then garbage: some error (which one depends on the
    // bytes), never a panic.
    let mut g2 = garbage.clone();
    g2[..8].copy_from_slice(b"RINGSHM1");
    put_u32(&mut g2, OFF_VERSION, 3);
    open_crafted(&name, &g2);
    put_u32(&mut g2, OFF_KIND, Kind::SpscRing as u32);
    open_crafted(&name, &g2);
    // A file longer than its header says, and a header that lies about the size.
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 4096]);
    corrupted(&longer, "longer file");
    let mut b = good.clone();
    put_u64(&mut b, OFF_TOTAL_SIZE, good.len() as u64 + 4096);
    corrupted(&b, "wrong total size");
    // Capacities: not a power of two, zero, absurd, and valid but not matching the size.
    for cap in [3, 0, u64::MAX, 1 << 63, 16] {
        let mut b = good.clone();
        put_u64(&mut b, OFF_CAPACITY, cap);
        corrupted(&b, &format!("capacity {cap}"));
    }
}

#[test]
fn zero_length_file_whose_creator_is_gone_is_corrupted() {
    let name = common::unique("empty");
    let _c = Cleanup(name.clone());
    std::fs::File::create(path(&name)).unwrap();
    let e = spsc::Ring::<u64>::open(&name).unwrap_err();
    assert!(matches!(e, Error::Corrupted { .. }), "{e}");
    assert!(e.to_string().contains("never initialised"), "{e}");
    // Nobody is initialising it and it has no magic: not listed as ringshm's.
    assert!(matches!(ringshm::info(&name), Err(Error::Corrupted { .. })));
    assert!(!ringshm::list().unwrap().iter().any(|s| s.name == name));
    // And `open_or_create` does not clobber it either.
    let e = spsc::Ring::<u64>::open_or_create(&name, 8).unwrap_err();
    assert!(matches!(e, Error::Corrupted { .. }), "{e}");
    assert_eq!(std::fs::metadata(path(&name)).unwrap().len(), 0);
}

#[test]
fn mode_zero_is_permission_denied() {
    if let Some(role) = common::role() {
        assert_eq!(role, "open_as_nobody");
        let name = &common::args()[0];
        // SAFETY: plain system calls without pointers; dropping to `nobody`
        // only affects this child process.
        unsafe {
            assert_eq!(libc::setgid(65534), 0);
            assert_eq!(libc::setuid(65534), 0);
        }
        let e = spsc::Ring::<u64>::open(name).unwrap_err();
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
        assert!(e.to_string().contains("permission denied"), "{e}");
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("perm");
    let r = spsc::Ring::<u64>::create_with(&name, 8, &Options::new().mode(0o000)).unwrap();
    assert_eq!(std::fs::metadata(path(&name)).unwrap().mode() & 0o7777, 0o000);
    if is_root() {
        // Root ignores permission bits; check them in a child that gave up root.
        let child = common::spawn("mode_zero_is_permission_denied", "open_as_nobody", &[&name]);
        common::expect_success(child, 30);
    } else {
        let e = spsc::Ring::<u64>::open(&name).unwrap_err();
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
    }
    drop(r);
    assert!(!exists(&name));
}

/// The default mode (`0o600`) keeps other users out: a child that drops
/// from root to `nobody` gets `PermissionDenied`. Needs root to have another
/// user; says why it is skipped otherwise.
#[test]
fn default_mode_refuses_another_user() {
    if let Some(role) = common::role() {
        assert_eq!(role, "open_as_nobody");
        let name = &common::args()[0];
        // SAFETY: plain system calls without pointers; dropping to `nobody`
        // only affects this child process.
        unsafe {
            assert_eq!(libc::setgid(65534), 0);
            assert_eq!(libc::setuid(65534), 0);
        }
        let e = ringshm::Queue::<u64>::open(name).unwrap_err();
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
        return;
    }
    if !is_root() {
        eprintln!("default_mode_refuses_another_user: skipped, it needs root to switch to another user");
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("perm600");
    let q = ringshm::Queue::<u64>::create(&name, 4).unwrap();
    assert_eq!(std::fs::metadata(path(&name)).unwrap().mode() & 0o7777, 0o600);
    let child = common::spawn("default_mode_refuses_another_user", "open_as_nobody", &[&name]);
    common::expect_success(child, 30);
    drop(q);
}

#[test]
fn mode_is_exact_whatever_the_umask() {
    if let Some(role) = common::role() {
        assert_eq!(role, "strict_umask");
        // SAFETY: `umask` has no preconditions; this child runs only this test.
        unsafe { libc::umask(0o077) };
        for (i, mode) in [0o660, 0o666, 0o640, 0o604].into_iter().enumerate() {
            let name = common::unique(&format!("umask{i}"));
            let _r = spsc::Ring::<u64>::create_with(&name, 8, &Options::new().mode(mode)).unwrap();
            let got = std::fs::metadata(path(&name)).unwrap().permissions().mode() & 0o7777;
            assert_eq!(got, mode, "mode {mode:o} under umask 077");
        }
        let name = common::unique("umask-default");
        let _r = spsc::Ring::<u64>::create(&name, 8).unwrap();
        assert_eq!(std::fs::metadata(path(&name)).unwrap().mode() & 0o7777, 0o600);
        return;
    }
    let _wd = common::watchdog(60);
    common::expect_success(common::spawn("mode_is_exact_whatever_the_umask", "strict_umask", &[]), 30);
}

#[test]
fn persist_keeps_the_name_and_default_removes_it() {
    let name = common::unique("persist");
    let _c = Cleanup(name.clone());
    let r = spsc::Ring::<u64>::create_with(&name, 8, &Options::new().persist(true)).unwrap();
    r.producer().unwrap().push(42).unwrap();
    drop(r);
    assert!(exists(&name));
    let i = ringshm::info(&name).unwrap();
    assert!(i.persist && !i.is_stale());
    // A child that another test is spawning right now may hold a copy of our
    // descriptor until it execs: "not in use" is eventual.
    assert!(common::eventually(10, || !ringshm::info(&name).unwrap().in_use));
    let o = spsc::Ring::<u64>::open(&name).unwrap();
    assert_eq!(o.consumer().unwrap().try_pop(), Ok(42));
    drop(o);
    assert!(exists(&name), "an opener never unlinks");
    ringshm::unlink(&name).unwrap();
    assert!(!exists(&name));

    let name = common::unique("transient");
    let r = spsc::Ring::<u64>::create(&name, 8).unwrap();
    assert!(!ringshm::info(&name).unwrap().persist);
    drop(r);
    assert!(!exists(&name));
}

#[test]
fn a_child_that_opened_it_never_unlinks() {
    if let Some(role) = common::role() {
        match role.as_str() {
            "open_and_drop" => {
                let r = spsc::Ring::<u64>::open(&common::args()[0]).unwrap();
                r.producer().unwrap().push(7).unwrap();
            }
            "create_then_fork" => {
                let name = common::unique("fork");
                let r = spsc::Ring::<u64>::create(&name, 8).unwrap();
                // SAFETY: the child only drops the ring, checks a path and
                // calls `_exit`; this process runs one test thread.
                let pid = unsafe { libc::fork() };
                assert!(pid >= 0);
                if pid == 0 {
                    drop(r);
                    let code = if exists(&name) { 0 } else { 1 };
                    // SAFETY: `_exit` ends the forked child without running
                    // the parent's atexit handlers or destructors.
                    unsafe { libc::_exit(code) };
                }
                let mut status = 0;
                // SAFETY: `pid` is our child; `status` is a valid out-pointer.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "forked child unlinked it");
                assert!(exists(&name));
                drop(r);
                assert!(!exists(&name), "the creator unlinks on drop");
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("child");
    let r = spsc::Ring::<u64>::create(&name, 8).unwrap();
    let mut rx = r.consumer().unwrap();
    common::expect_success(common::spawn("a_child_that_opened_it_never_unlinks", "open_and_drop", &[&name]), 30);
    assert!(exists(&name), "the spawned child unlinked it");
    assert_eq!(rx.try_pop(), Ok(7));
    common::expect_success(common::spawn("a_child_that_opened_it_never_unlinks", "create_then_fork", &[]), 30);
    drop((rx, r));
    assert!(!exists(&name));
}

#[test]
fn open_or_create_race_has_exactly_one_creator() {
    const N: usize = 8;
    if let Some(role) = common::role() {
        assert_eq!(role, "racer");
        let args = common::args();
        let name = &args[0];
        let start_ms: u64 = args[1].parse().unwrap();
        // Line up with the other racers: sleep until just before the start
        // time, then spin (bounded) to it.
        let start = UNIX_EPOCH + Duration::from_millis(start_ms);
        if let Ok(d) = start.duration_since(SystemTime::now()) {
            std::thread::sleep(d.saturating_sub(Duration::from_millis(5)));
        }
        while SystemTime::now() < start {
            std::hint::spin_loop();
        }
        let r = spsc::Ring::<u64>::open_or_create_with(name, 64, &Options::new().persist(true)).unwrap();
        assert_eq!(r.capacity(), 64);
        let creator = ringshm::info(name).unwrap().creator.pid;
        std::process::exit(if creator == std::process::id() { 10 } else { 11 });
    }
    let _wd = common::watchdog(120);
    let name = common::unique("race");
    let _c = Cleanup(name.clone());
    let start = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 1500;
    let children: Vec<_> = (0..N)
        .map(|_| common::spawn("open_or_create_race_has_exactly_one_creator", "racer", &[&name, &start.to_string()]))
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let codes: Vec<i32> = children.into_iter().map(|c| common::wait(c, 60).code().unwrap_or(-1)).collect();
    assert!(codes.iter().all(|&c| c == 10 || c == 11), "a racer failed: {codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 10).count(), 1, "creators: {codes:?}");
    let creator = ringshm::info(&name).unwrap().creator.pid;
    let winner = codes.iter().position(|&c| c == 10).unwrap();
    assert_eq!(creator, pids[winner]);
}

#[test]
fn remove_stale_removes_dead_creators_segments_and_keeps_held_ones() {
    if let Some(role) = common::role() {
        let name = &common::args()[0];
        match role.as_str() {
            "hold" => {
                let _r = spsc::Ring::<u64>::create(name, 8).unwrap();
                // Held until the parent kills us (bounded anyway).
                std::thread::sleep(Duration::from_secs(60));
            }
            "create_persistent" => {
                spsc::Ring::<u64>::create_with(name, 8, &Options::new().persist(true)).unwrap();
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let _wd = common::watchdog(120);
    let test = "remove_stale_removes_dead_creators_segments_and_keeps_held_ones";
    let (dead, live, kept) = (common::unique("dead"), common::unique("live"), common::unique("kept"));
    let _c = (Cleanup(dead.clone()), Cleanup(live.clone()), Cleanup(kept.clone()));
    let a = common::spawn(test, "hold", &[&dead]);
    let b = common::spawn(test, "hold", &[&live]);
    let (a_pid, b_pid) = (a.id(), b.id());
    common::expect_success(common::spawn(test, "create_persistent", &[&kept]), 30);
    let ready = |n: &str| ringshm::info(n).is_ok_and(|i| i.state == SegmentState::Ready && i.in_use);
    assert!(common::eventually(30, || ready(&dead) && ready(&live)), "holders did not create their rings");
    common::kill9(a);

    let all = ringshm::list().unwrap();
    let find = |n: &str| all.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n} not listed"));
    let d = find(&dead);
    assert_eq!(d.kind, Some(Kind::SpscRing));
    assert_eq!(d.element_type, "u64");
    assert_eq!(d.capacity, 8);
    assert_eq!(d.creator.pid, a_pid);
    assert!(!d.creator.alive && !d.in_use && !d.persist && d.is_stale(), "{d:?}");
    assert!(d.attached.iter().all(|p| p.pid != a_pid || !p.alive), "{d:?}");
    let l = find(&live);
    assert_eq!(l.creator.pid, b_pid);
    assert!(l.creator.alive && l.in_use && !l.is_stale(), "{l:?}");
    assert!(l.attached.iter().any(|p| p.pid == b_pid && p.alive), "{l:?}");
    let k = find(&kept);
    assert!(k.persist && !k.in_use && !k.creator.alive && !k.is_stale(), "{k:?}");

    let removed = ringshm::remove_stale().unwrap();
    assert!(removed.contains(&dead), "{removed:?}");
    assert!(!removed.contains(&live) && !removed.contains(&kept), "{removed:?}");
    assert!(!exists(&dead));
    assert!(exists(&live) && exists(&kept));
    // The held ring still works.
    let r = spsc::Ring::<u64>::open(&live).unwrap();
    r.producer().unwrap().push(1).unwrap();
    drop(r);

    // Once its holder dies, it goes too; the persistent one never does.
    // (Our own handle on it may linger a moment in a child another test is
    // spawning, until that child execs: retry for a while.)
    common::kill9(b);
    let mut removed = Vec::new();
    assert!(common::eventually(10, || {
        removed.extend(ringshm::remove_stale().unwrap());
        !exists(&live)
    }));
    assert!(removed.contains(&live) && !removed.contains(&kept), "{removed:?}");
    assert!(exists(&kept));
    ringshm::unlink(&kept).unwrap();
}

/// A segment larger than all of `/dev/shm` is refused at create time with
/// `NoSpace` (the space is reserved up front, never a later SIGBUS), and the
/// half-made name is removed.
#[test]
fn segment_larger_than_the_tmpfs_is_no_space() {
    let st = rustix::fs::statvfs("/dev/shm").unwrap();
    let total = st.f_blocks * st.f_frsize;
    if total == 0 || 2 * total > 1 << 42 {
        eprintln!("skipped: /dev/shm is unlimited or larger than a ring may be");
        return;
    }
    // Twice the whole file system, in 4 KiB elements. tmpfs refuses such a
    // `fallocate` before allocating anything.
    let cap = ((2 * total / 4096) as usize).next_power_of_two();
    let name = common::unique("nospace");
    match ringshm::spsc::Ring::<[u8; 4096]>::create(&name, cap) {
        Err(Error::NoSpace { bytes, .. }) => assert!(bytes > total),
        other => panic!("expected NoSpace for {cap} x 4 KiB on a {total}-byte tmpfs, got {other:?}"),
    }
    assert!(!exists(&name), "the half-made segment is removed");
}
