//! The one lifecycle of every shared object, between real processes:
//!
//! - `open`/`open_or_create` wait for a creator that is still initialising
//!   for as long as it lives (no fixed timeout), and fail at once if it died;
//! - `open` racing `remove_stale` never ends with a handle to a removed name;
//! - anonymous segments cannot be truncated under their users (sealed
//!   memfds); a truncated named segment is refused at `open`.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use ringshm::{Error, Options, Pipe, Queue};

/// A big element: a queue of `BIG_CAP` of them is 512 MiB, whose creation
/// (reserving and initialising every slot) takes long enough to be caught
/// in the middle.
type Big = [u8; 4096];
const BIG_CAP: usize = 1 << 17;

fn path(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/{name}"))
}

/// Removes the segment when dropped (tests clean up even when they fail).
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(path(&self.0));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: `kill` with a pid we spawned and have not reaped.
    let r = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(r, 0, "kill({}, {sig})", child.id());
}

/// The first word of the segment file (0 while its creator initialises it).
fn magic(name: &str) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 8];
    match std::fs::File::open(path(name)) {
        Ok(f) if f.read_exact_at(&mut b, 0).is_ok() => u64::from_le_bytes(b),
        _ => 0,
    }
}

/// Child roles shared by the tests below.
fn run_role(role: &str) {
    let args = common::args();
    let name = &args[0];
    match role {
        // Creates the big queue, then keeps it until killed.
        "create-big" => {
            let _q = Queue::<Big>::create(name, BIG_CAP).expect("create the big queue");
            std::thread::sleep(Duration::from_secs(120));
        }
        // Must get the queue once its creator finishes, however long it takes.
        "open-big" => {
            let q =
                if args[1] == "open" { Queue::<Big>::open(name) } else { Queue::<Big>::open_or_create(name, BIG_CAP) }
                    .unwrap_or_else(|e| panic!("{}: {e}", args[1]));
            assert_eq!(q.capacity(), BIG_CAP);
        }
        // Must be told at once that the creator died.
        "open-big-died" => match Queue::<Big>::open(name) {
            Err(e @ Error::Corrupted { .. }) => assert!(e.to_string().contains("died"), "{e}"),
            other => panic!("expected Corrupted, got {other:?}"),
        },
        _ => unreachable!("unknown role {role}"),
    }
}

/// Starts a child that creates a big queue and stops it (SIGSTOP) in the
/// middle of the initialisation: after the space is reserved, before the
/// header is published. Retries if the child finished first.
fn stopped_creator(test: &str, tag: &str) -> (Child, String) {
    for _attempt in 0..8 {
        let name = common::unique(tag);
        let child = common::spawn(test, "create-big", &[&name]);
        // The file gets its size only after the creator holds its INIT lock
        // and reserved the space; the magic word comes last.
        let sized = common::eventually(60, || std::fs::metadata(path(&name)).is_ok_and(|m| m.size() > 0));
        assert!(sized, "the creator never reserved its segment");
        signal(&child, libc::SIGSTOP);
        // Let the stop take effect before looking (a stopped process does
        // not run, so the magic word cannot change after this).
        std::thread::sleep(Duration::from_millis(50));
        if magic(&name) == 0 {
            return (child, name);
        }
        // It published before the stop: not the state under test; again.
        signal(&child, libc::SIGCONT);
        common::kill9(child);
        let _ = std::fs::remove_file(path(&name));
    }
    panic!("could not stop a creator in the middle of its initialisation");
}

/// Defect 4: openers used to give up after a fixed 2 s while a big segment
/// was still being created. They must wait as long as the creator lives.
#[test]
fn openers_wait_for_a_slow_creator_however_long_it_takes() {
    if let Some(role) = common::role() {
        return run_role(&role);
    }
    let _wd = common::watchdog(240);
    let test = "openers_wait_for_a_slow_creator_however_long_it_takes";
    let (creator, name) = stopped_creator(test, "slowinit");
    let _c = Cleanup(name.clone());
    let mut openers: Vec<Child> = ["open", "open_or_create", "open_or_create"]
        .iter()
        .map(|how| common::spawn(test, "open-big", &[&name, how]))
        .collect();
    // Longer than any fixed patience the openers used to have (2 s).
    std::thread::sleep(Duration::from_secs(4));
    for o in &mut openers {
        assert!(o.try_wait().unwrap().is_none(), "an opener gave up while the creator was alive and initialising");
    }
    signal(&creator, libc::SIGCONT);
    for o in openers {
        common::expect_success(o, 120);
    }
    common::kill9(creator);
}

/// Defect 4, the other half: a creator killed in the middle of the
/// initialisation makes waiting and later openers fail at once with
/// `Corrupted`, saying what happened.
#[test]
fn a_creator_killed_mid_init_fails_openers_at_once() {
    if let Some(role) = common::role() {
        return run_role(&role);
    }
    let _wd = common::watchdog(240);
    let test = "a_creator_killed_mid_init_fails_openers_at_once";
    let (creator, name) = stopped_creator(test, "deadinit");
    let _c = Cleanup(name.clone());
    let waiting: Vec<Child> = (0..2).map(|_| common::spawn(test, "open-big-died", &[&name])).collect();
    std::thread::sleep(Duration::from_millis(300));
    common::kill9(creator);
    for o in waiting {
        common::expect_success(o, 60);
    }
    // Later openers, in another process too.
    common::expect_success(common::spawn(test, "open-big-died", &[&name]), 60);
    let e = Queue::<Big>::open(&name).unwrap_err();
    assert!(matches!(e, Error::Corrupted { .. }), "{e}");
    assert!(e.to_string().contains("ringshm rm"), "the message says what to do: {e}");
}

/// Whether this process maps `/dev/shm/NAME` after the name was removed.
fn maps_a_removed(name: &str) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let needle = format!("/dev/shm/{name} (deleted)");
    maps.lines().any(|l| l.ends_with(&needle))
}

/// Defect 5: `open` racing `remove_stale` could end with a live handle to a
/// removed name (and a later `open_or_create` then made a second object).
/// One process opens segments over and over while another runs
/// `remove_stale` in a loop, and the segments' creator is killed (so they
/// become stale): every open must either fail with `NotFound` or hold a
/// segment that keeps its name for as long as it is held.
#[test]
fn open_racing_remove_stale_never_holds_a_removed_name() {
    const SEGMENTS: usize = 16;
    if let Some(role) = common::role() {
        let args = common::args();
        let prefix = &args[0];
        match role.as_str() {
            // Creates the segments and keeps them until killed: they are
            // stale from that moment on.
            "make" => {
                let _qs: Vec<_> =
                    (0..SEGMENTS).map(|i| Queue::<u64>::create(&format!("{prefix}-{i}"), 4).unwrap()).collect();
                std::thread::sleep(Duration::from_secs(120));
            }
            "gc" => {
                while (0..SEGMENTS).any(|i| path(&format!("{prefix}-{i}")).exists()) {
                    ringshm::remove_stale().unwrap();
                }
            }
            "open" => {
                let mut held = 0u64;
                for i in 0..SEGMENTS {
                    let name = format!("{prefix}-{i}");
                    loop {
                        match Queue::<u64>::open(&name) {
                            Ok(q) => {
                                held += 1;
                                // Give the collector time to strike while held.
                                std::thread::sleep(Duration::from_micros(300));
                                assert!(!maps_a_removed(&name), "holding a handle to removed segment {name}");
                                drop(q);
                                std::thread::sleep(Duration::from_micros(held % 300));
                            }
                            Err(Error::NotFound { .. }) => break,
                            Err(e) => panic!("open {name}: {e}"),
                        }
                    }
                }
                eprintln!("opener: {held} opens");
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(240);
    let test = "open_racing_remove_stale_never_holds_a_removed_name";
    for round in 0..12 {
        let prefix = common::unique(&format!("gcrace{round}"));
        let _c: Vec<Cleanup> = (0..SEGMENTS).map(|i| Cleanup(format!("{prefix}-{i}"))).collect();
        let maker = common::spawn(test, "make", &[&prefix]);
        let made = common::eventually(60, || (0..SEGMENTS).all(|i| magic(&format!("{prefix}-{i}")) != 0));
        assert!(made, "the maker did not create its segments");
        let opener = common::spawn(test, "open", &[&prefix]);
        let gc = common::spawn(test, "gc", &[&prefix]);
        // Let both get going, then make every segment stale at once.
        std::thread::sleep(Duration::from_millis(200));
        common::kill9(maker);
        common::expect_success(opener, 180);
        common::expect_success(gc, 180);
    }
}

/// The memfd of an anonymous pipe in this process, reopened for writing.
fn reopen_memfd(label: &str) -> std::fs::File {
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else { continue };
        if target.to_string_lossy().starts_with(&format!("/memfd:{label}")) {
            return std::fs::OpenOptions::new().read(true).write(true).open(e.path()).unwrap();
        }
    }
    panic!("no memfd labelled {label}");
}

/// Defect 9: an anonymous object's memory cannot be truncated under its
/// users (its memfd is sealed against shrinking and growing). Run in a
/// child process: before the fix, the truncation succeeded and the next
/// access raised SIGBUS.
#[test]
fn anonymous_segments_cannot_be_truncated() {
    if common::role().is_some() {
        let (a, b) = Pipe::pair(1024);
        let f = reopen_memfd("ringshm-pipe");
        let e = f.set_len(0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        let e = f.set_len(1 << 30).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        // Still whole: the pipe works.
        a.send_bytes(b"still here").unwrap();
        assert_eq!(b.recv_bytes().unwrap(), b"still here");

        let q = Queue::<u64>::anonymous(8).unwrap();
        let f = reopen_memfd("ringshm-mpmc");
        assert_eq!(f.set_len(0).unwrap_err().raw_os_error(), Some(libc::EPERM));
        q.put(5).unwrap();
        assert_eq!(q.get().unwrap(), 5);
        return;
    }
    let _wd = common::watchdog(60);
    let child = common::spawn("anonymous_segments_cannot_be_truncated", "truncate", &[]);
    let st = common::wait(child, 30);
    assert!(st.success(), "the child could truncate an anonymous segment: {st:?}");
}

/// Defect 9, named segments: a segment that another process truncated is
/// refused at `open` with `Corrupted` (never a SIGBUS later).
#[test]
fn a_truncated_named_segment_is_refused_at_open() {
    let name = common::unique("trunc");
    let _c = Cleanup(name.clone());
    let q = Queue::<u64>::create_with(&name, 8, &Options::new().persist(true)).unwrap();
    let status = std::process::Command::new("truncate").args(["-s", "0"]).arg(path(&name)).status().unwrap();
    assert!(status.success());
    let e = Queue::<u64>::open(&name).unwrap_err();
    assert!(matches!(e, Error::Corrupted { .. }), "{e}");
    // The creator's own mapping lost its pages: touching it (even dropping
    // the handle) would raise SIGBUS. This is the documented limit.
    std::mem::forget(q);
}

/// Every kind has the whole lifecycle: `create_with`, `open`, `open_with`,
/// `open_or_create`, `open_or_create_with`, and is refused as another kind.
#[test]
fn every_kind_has_the_whole_lifecycle() -> Result<(), Error> {
    macro_rules! matrix {
        ($tag:literal, $ty:ty, ($($p:expr),*)) => {{
            let name = common::unique($tag);
            let opts = Options::new().mode(0o640);
            let a = <$ty>::create_with(&name, $($p,)* &opts)?;
            let b = <$ty>::open_with(&name, &opts)?;
            let c = <$ty>::open_or_create_with(&name, $($p,)* &opts)?;
            drop((b, c));
            let d = <$ty>::open(&name)?;
            let e = <$ty>::open_or_create(&name, $($p),*)?;
            drop((a, d, e));
            // Gone with its creator's handle; open_or_create makes it anew.
            assert!(matches!(<$ty>::open(&name), Err(Error::NotFound { .. })), "{}", $tag);
            let f = <$ty>::open_or_create(&name, $($p),*)?;
            // Another kind is refused by name, before anything is touched.
            assert!(matches!(ringshm::Event::open(&name), Err(Error::WrongKind { .. })) || $tag == "event", "{}", $tag);
            drop(f);
        }};
    }
    matrix!("spsc", ringshm::spsc::Ring<u64>, (8));
    matrix!("mpmc", ringshm::mpmc::Ring<u64>, (8));
    matrix!("broadcast", ringshm::broadcast::Ring<u64>, (8));
    // A pipe's two ends are roles: the opener of a live pipe gets end B,
    // which only one handle holds at a time.
    {
        let name = common::unique("pipe");
        let a = Pipe::create_with(&name, 256, &Options::new())?;
        let b = Pipe::open_or_create_with(&name, 256, &Options::new())?;
        assert_eq!((a.end(), b.end()), (ringshm::End::A, ringshm::End::B));
        drop(b);
        let b = Pipe::open_with(&name, &Options::new())?;
        drop((a, b));
        let a = Pipe::open_or_create(&name, 256)?;
        assert_eq!(a.end(), ringshm::End::A, "open_or_create that creates gets end A");
    }
    matrix!("queue", Queue<u64>, (8));
    matrix!("bytequeue", ringshm::ByteQueue, (8, 64));
    matrix!("joinable", ringshm::JoinableQueue<u64>, (8));
    matrix!("value", ringshm::Value<u64>, (7));
    matrix!("array", ringshm::Array<u32>, (4));
    matrix!("lock", ringshm::Lock, ());
    matrix!("rlock", ringshm::RLock, ());
    matrix!("semaphore", ringshm::Semaphore, (2));
    matrix!("bsemaphore", ringshm::BoundedSemaphore, (2));
    matrix!("event", ringshm::Event, ());
    matrix!("condition", ringshm::Condition, ());
    matrix!("barrier", ringshm::Barrier, (2));
    Ok(())
}

/// Item 12: `open_or_create` that creates makes its handle a producer, as
/// `create` does: once it is dropped (and nobody else ever put), a
/// consumer in another process sees the queue end instead of waiting.
#[test]
fn open_or_create_that_creates_is_a_producer() {
    if let Some(role) = common::role() {
        let name = &common::args()[0];
        match role.as_str() {
            "queue" => assert_eq!(Queue::<u64>::open(name).unwrap().get(), Err(ringshm::GetError::Disconnected)),
            "bytes" => {
                assert_eq!(ringshm::ByteQueue::open(name).unwrap().get(), Err(ringshm::GetError::Disconnected))
            }
            _ => unreachable!(),
        }
        return;
    }
    let _wd = common::watchdog(60);
    let test = "open_or_create_that_creates_is_a_producer";
    let name = common::unique("ocprod");
    let q = Queue::<u64>::open_or_create_with(&name, 4, &Options::new().persist(true)).unwrap();
    let _c = Cleanup(name.clone());
    let child = common::spawn(test, "queue", &[&name]);
    std::thread::sleep(Duration::from_millis(100));
    drop(q);
    common::expect_success(child, 30);

    let name = common::unique("ocprodb");
    let q = ringshm::ByteQueue::open_or_create_with(&name, 4, 16, &Options::new().persist(true)).unwrap();
    let _c = Cleanup(name.clone());
    let child = common::spawn(test, "bytes", &[&name]);
    std::thread::sleep(Duration::from_millis(100));
    drop(q);
    common::expect_success(child, 30);
}

/// `CompareExchangeError<T>` (and the other errors holding a `T`), `Value<T>`
/// and `Array<T>` print without `T: Debug`.
#[test]
fn errors_need_no_debug_on_their_payload() {
    #[derive(Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct NoDebug(u64);
    let v = ringshm::Value::<NoDebug>::create(&common::unique("nodebug"), NoDebug(1)).unwrap();
    let Err(e) = v.compare_exchange(NoDebug(2), NoDebug(3)) else { panic!("the value is 1, not 2") };
    assert!(e.actual == NoDebug(1));
    assert!(!format!("{e:?}").is_empty());
    assert!(e.to_string().contains("actual"), "{e}");
    let e: Box<dyn std::error::Error> = Box::new(e);
    assert!(!e.to_string().is_empty());
    assert!(format!("{v:?}").contains("NoDebug"));
    let a = ringshm::Array::<NoDebug>::create(&common::unique("nodebuga"), 2).unwrap();
    assert!(!format!("{a:?} {:?}", a.lock()).is_empty());
    let p = ringshm::PutError::Full(NoDebug(0));
    assert_eq!(format!("{p:?}"), "Full(..)");
}

/// `ByteQueue::put_value` reports a value that cannot be encoded as
/// `Encode`, not as a message of `usize::MAX` bytes; `get_value` has an
/// error type of its own.
#[cfg(feature = "serde")]
#[test]
fn put_value_reports_encoding_errors_as_such() {
    struct Unencodable;
    impl serde::Serialize for Unencodable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("this value refuses to be serialised"))
        }
    }
    let q = ringshm::ByteQueue::create(&common::unique("encode"), 4, 64).unwrap();
    let e = q.put_value(&Unencodable).unwrap_err();
    assert!(matches!(e, ringshm::PutBytesError::Encode(_)), "{e:?}");
    assert!(q.is_empty());
    q.put_value(&(1u32, "ok")).unwrap();
    assert_eq!(q.get_value::<(u32, String)>().unwrap(), (1, "ok".to_owned()));
    q.put(&[0xff; 8]).unwrap();
    assert!(matches!(q.get_value::<String>(), Err(ringshm::GetValueError::Decode(_))));
    q.close();
    assert_eq!(q.get_value::<String>(), Err(ringshm::GetValueError::Disconnected));
}
