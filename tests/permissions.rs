//! Segment permissions between users: a process of another uid gets
//! `Error::PermissionDenied` on a `0o600` segment and can use a `0o666` one.
//!
//! Needs root (to start a child as uid/gid 65534, "nobody"); otherwise the
//! test says why it is skipped and passes.

mod common;

use std::time::Duration;

use ringshm::{Error, Lock, Options, Queue};

/// The uid and gid the child drops to.
const NOBODY: u32 = 65534;
/// Exit status of a child that could not switch users.
const NO_SETUID: i32 = 77;

/// Switches this whole process (every thread: glibc broadcasts set*id) to
/// `NOBODY`, group first, supplementary groups dropped.
fn drop_to_nobody() -> Result<(), std::io::Error> {
    // SAFETY: plain syscalls on integers; no memory is passed.
    let rc = unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
            -1
        } else {
            0
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn child(args: &[String]) {
    if let Err(e) = drop_to_nobody() {
        eprintln!("child: cannot switch to uid {NOBODY}: {e}");
        std::process::exit(NO_SETUID);
    }
    // SAFETY: getuid/geteuid only return the caller's ids.
    assert_eq!((unsafe { libc::getuid() }, unsafe { libc::geteuid() }), (NOBODY, NOBODY));
    let [private_lock, private_queue, shared_lock, shared_queue] = args else { panic!("args: {args:?}") };

    match Lock::open(private_lock) {
        Err(Error::PermissionDenied { .. }) => {}
        Err(e) => panic!("opening a 0o600 Lock of root as uid {NOBODY}: want PermissionDenied, got {e}"),
        Ok(_) => panic!("opened a 0o600 Lock of root as uid {NOBODY}"),
    }
    match Queue::<u64>::open(private_queue) {
        Err(Error::PermissionDenied { .. }) => {}
        Err(e) => panic!("opening a 0o600 Queue of root as uid {NOBODY}: want PermissionDenied, got {e}"),
        Ok(_) => panic!("opened a 0o600 Queue of root as uid {NOBODY}"),
    }

    let lock = Lock::open(shared_lock).expect("open a 0o666 Lock as another user");
    drop(lock.lock_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("lock a 0o666 Lock")));
    let q = Queue::<u64>::open(shared_queue).expect("open a 0o666 Queue as another user");
    let got = q.get_timeout(Duration::from_secs(20)).expect("get from a 0o666 Queue");
    q.put_timeout(got + 1, Duration::from_secs(20)).expect("put into a 0o666 Queue");
}

#[test]
fn another_uid_is_denied_0o600_and_allowed_0o666() {
    if let Some(role) = common::role() {
        assert_eq!(role, "nobody");
        child(&common::args());
        return;
    }
    // SAFETY: geteuid only returns the caller's effective uid.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        println!(
            "skipped: this test starts a child as uid {NOBODY} to check that it is denied a 0o600 segment, \
             which needs root (running as uid {euid})"
        );
        return;
    }
    let _wd = common::watchdog(120);
    let private = Options::new().mode(0o600);
    let shared = Options::new().mode(0o666);
    let names = ["perm-lock-600", "perm-queue-600", "perm-lock-666", "perm-queue-666"].map(common::unique);
    let _l600 = Lock::create_with(&names[0], &private).unwrap();
    let _q600 = Queue::<u64>::create_with(&names[1], 4, &private).unwrap();
    let l666 = Lock::create_with(&names[2], &shared).unwrap();
    let q666 = Queue::<u64>::create_with(&names[3], 4, &shared).unwrap();
    for (n, want) in names.iter().zip([0o600, 0o600, 0o666, 0o666]) {
        assert_eq!(ringshm::info(n).unwrap().mode, want, "{n}");
    }
    q666.put(41).unwrap();

    let arg_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let child = common::spawn("another_uid_is_denied_0o600_and_allowed_0o666", "nobody", &arg_refs);
    let st = common::wait(child, 60);
    if st.code() == Some(NO_SETUID) {
        println!("skipped: running as root, but the child could not switch to uid {NOBODY} (no CAP_SETUID here?)");
        return;
    }
    assert!(st.success(), "child (uid {NOBODY}) failed: {st:?}");
    assert_eq!(q666.get_timeout(Duration::from_secs(20)).unwrap(), 42, "the other user's put");
    drop(l666.lock_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("lock after the child")));
}
