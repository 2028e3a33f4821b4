//! Pipe between real processes: random sizes both ways, BufferTooShort,
//! poll, Full/Empty/Timeout, EOF after close and after SIGKILL, fork, and a
//! scribbled segment.

mod common;

use std::time::Duration;

use ringshm::{Error, Options, Pipe, PipeSendError, RecvError, RecvIntoError, RecvTimeoutError, TryRecvError};

/// Deterministic message `i` of a stream: length in `0..=max` (with 0 and
/// `max` themselves every so often), content derived from `i`.
fn message(i: u64, max: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    let len = match i % 50 {
        0 => 0,
        1 => max,
        _ => (x % (max as u64 + 1)) as usize,
    };
    (0..len).map(|j| (i as usize).wrapping_mul(131).wrapping_add(j * 7) as u8).collect()
}

const N: u64 = 20_000;
const CAP: usize = 4000;

#[test]
fn random_sizes_both_ways() {
    if let Some(role) = common::role() {
        assert_eq!(role, "b");
        let name = &common::args()[0];
        let b = Pipe::open(name).unwrap();
        let max = b.max_message_len();
        for i in 0..N {
            assert_eq!(b.recv_bytes().unwrap(), message(i, max), "A->B message {i}");
        }
        for i in 0..N {
            b.send_bytes(&message(i + N, max)).unwrap();
        }
        // Wait for A's goodbye so our messages are not cut short by an early exit.
        assert_eq!(b.recv_bytes().unwrap(), b"bye");
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("pipe-rand");
    let a = Pipe::create(&name, CAP).unwrap();
    assert!(a.max_message_len() >= CAP);
    let child = common::spawn("random_sizes_both_ways", "b", &[&name]);
    let max = a.max_message_len();
    for i in 0..N {
        a.send_bytes(&message(i, max)).unwrap();
    }
    let mut buf = vec![0u8; max];
    for i in 0..N {
        let n = a.recv_bytes_into(&mut buf).unwrap();
        assert_eq!(&buf[..n], &message(i + N, max)[..], "B->A message {i}");
    }
    a.send_bytes(b"bye").unwrap();
    common::expect_success(child, 60);
}

#[test]
fn buffer_too_short_keeps_message_and_poll() {
    if let Some(role) = common::role() {
        assert_eq!(role, "sender");
        let b = Pipe::open(&common::args()[0]).unwrap();
        // Wait for "go" so the parent can first observe an empty pipe.
        assert_eq!(b.recv_bytes().unwrap(), b"go");
        b.send_bytes(&[7u8; 100]).unwrap();
        b.send(&0xABCD_u32).unwrap();
        assert_eq!(b.recv_bytes().unwrap(), b"done");
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("pipe-short");
    let a = Pipe::create(&name, 1024).unwrap();
    let child = common::spawn("buffer_too_short_keeps_message_and_poll", "sender", &[&name]);
    // Nothing sent yet: poll with a timeout says no, and so does poll(0).
    assert!(!a.poll(Some(Duration::from_millis(50))));
    assert!(!a.poll(Some(Duration::ZERO)));
    assert_eq!(a.try_recv_bytes(), Err(TryRecvError::Empty));
    assert_eq!(a.recv_bytes_timeout(Duration::from_millis(20)), Err(RecvTimeoutError::Timeout));
    let mut small = [0u8; 10];
    assert_eq!(a.try_recv_bytes_into(&mut small), Err(RecvIntoError::Empty));
    a.send_bytes(b"go").unwrap();
    // Without a timeout poll waits until the message is there.
    assert!(a.poll(None));
    assert_eq!(a.recv_bytes_into(&mut small), Err(RecvIntoError::BufferTooShort { needed: 100 }));
    // Still queued: a second try says the same, a bigger buffer gets it.
    assert_eq!(a.recv_bytes_into(&mut small), Err(RecvIntoError::BufferTooShort { needed: 100 }));
    assert!(a.poll(Some(Duration::ZERO)));
    let mut big = [0u8; 128];
    assert_eq!(a.recv_bytes_into(&mut big), Ok(100));
    assert!(big[..100].iter().all(|&b| b == 7));
    // A Pod of the wrong size is refused and stays queued too.
    assert!(matches!(a.recv::<u64>(), Err(ringshm::RecvValueError::WrongSize { expected: 8, found: 4 })));
    assert_eq!(a.recv::<u32>().unwrap(), 0xABCD);
    a.send_bytes(b"done").unwrap();
    common::expect_success(child, 30);
}

#[test]
fn full_empty_and_timeouts() {
    if let Some(role) = common::role() {
        assert_eq!(role, "idle");
        let b = Pipe::open(&common::args()[0]).unwrap();
        // Receive nothing until told: the parent fills the pipe meanwhile.
        let mut n = 0;
        loop {
            let m = b.recv_bytes().unwrap();
            if m == b"stop" {
                break;
            }
            n += 1;
        }
        b.send(&(n as u64)).unwrap();
        assert_eq!(b.recv_bytes(), Err(RecvError));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("pipe-full");
    let a = Pipe::create(&name, 100).unwrap();
    let child = common::spawn("full_empty_and_timeouts", "idle", &[&name]);
    // The pipe fills although the child may not read yet; try_send says Full.
    let mut sent = 0u64;
    loop {
        match a.try_send_bytes(&[1u8; 24]) {
            Ok(()) => sent += 1,
            Err(PipeSendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
        if sent > 1_000_000 {
            panic!("never full");
        }
    }
    // Messages sent meanwhile may have been drained by the child; either way
    // a timed send either succeeds or times out, never blocks forever.
    loop {
        match a.send_bytes_timeout(&[1u8; 24], Duration::from_millis(10)) {
            Ok(()) => sent += 1,
            Err(PipeSendError::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
        // The child drains as fast as we send: stop once we are sure it works.
        if sent > 100_000 {
            break;
        }
    }
    assert_eq!(a.send_bytes(&[0u8; 113]), Err(PipeSendError::TooLarge { len: 113, max: 112 }));
    a.send_bytes(b"stop").unwrap();
    assert_eq!(a.recv::<u64>().unwrap(), sent);
    drop(a);
    common::expect_success(child, 30);
}

#[test]
fn eof_after_close_drains_first() {
    if let Some(role) = common::role() {
        assert_eq!(role, "writer");
        let b = Pipe::open(&common::args()[0]).unwrap();
        for i in 0..100u32 {
            b.send(&i).unwrap();
        }
        b.close();
        // Keep the process alive: EOF must come from close(), not from exit.
        std::thread::sleep(Duration::from_secs(3));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("pipe-eof");
    let a = Pipe::create(&name, 64 * 1024).unwrap();
    let child = common::spawn("eof_after_close_drains_first", "writer", &[&name]);
    for i in 0..100u32 {
        assert_eq!(a.recv::<u32>().unwrap(), i);
    }
    assert_eq!(a.recv_bytes(), Err(RecvError));
    assert_eq!(a.try_recv_bytes(), Err(TryRecvError::Disconnected));
    assert_eq!(a.recv_bytes_timeout(Duration::from_secs(5)), Err(RecvTimeoutError::Disconnected));
    assert!(a.poll(None), "poll is true at EOF: a receive would not block");
    assert_eq!(a.send_bytes(b"anyone?"), Err(PipeSendError::Disconnected));
    common::expect_success(child, 30);
}

#[test]
fn eof_after_sigkill() {
    if let Some(role) = common::role() {
        assert_eq!(role, "victim");
        let b = Pipe::open(&common::args()[0]).unwrap();
        for i in 0..10u32 {
            b.send(&i).unwrap();
        }
        b.send_bytes(b"ready").unwrap();
        // Block in recv until killed.
        let _ = b.recv_bytes();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("pipe-kill");
    let a = Pipe::create(&name, 4096).unwrap();
    let child = common::spawn("eof_after_sigkill", "victim", &[&name]);
    // Wait until everything is sent, then kill: nothing is closed politely.
    let mut got = Vec::new();
    loop {
        let m = a.recv_bytes().unwrap();
        if m == b"ready" {
            break;
        }
        got.push(u32::from_ne_bytes(m.try_into().unwrap()));
    }
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    a.send_bytes(b"x").unwrap(); // the victim may or may not read it
    common::kill9(child);
    assert_eq!(a.recv_bytes(), Err(RecvError));
    assert!(a.is_peer_gone());
    // Sends fail instead of blocking (noticed at once or on a later probe).
    let mut failed = false;
    for _ in 0..1_000_000 {
        match a.send_bytes(&[0u8; 64]) {
            Ok(()) => {}
            Err(PipeSendError::Disconnected) => {
                failed = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(failed);
    // The dead end's role is free again: a new process may take end B.
    let b2 = Pipe::open(&name).unwrap();
    assert!(!b2.is_peer_gone());
}

#[test]
fn one_way_pipe_by_name() {
    if let Some(role) = common::role() {
        assert_eq!(role, "reader");
        let b = Pipe::open(&common::args()[0]).unwrap();
        assert!(!b.writable() && b.readable());
        assert_eq!(b.send_bytes(b"nope"), Err(PipeSendError::WrongDirection));
        assert_eq!(b.recv_with(|m| m.to_vec()).unwrap(), b"one-way");
        assert_eq!(b.recv_bytes(), Err(RecvError));
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("pipe-oneway");
    let a = Pipe::create_with(&name, 256, &Options::new().duplex(false)).unwrap();
    assert!(a.writable() && !a.readable() && !a.is_duplex());
    assert_eq!(a.try_recv_bytes(), Err(TryRecvError::Disconnected));
    let child = common::spawn("one_way_pipe_by_name", "reader", &[&name]);
    a.send_with(7, |buf| buf.copy_from_slice(b"one-way")).unwrap();
    a.close();
    common::expect_success(child, 30);
}

#[test]
fn fork_pair_echo() {
    let _wd = common::watchdog(60);
    let (a, b) = Pipe::pair(1024);
    // SAFETY: the child only uses the pipe, allocates, and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop(a);
        let mut ok = true;
        while let Ok(m) = b.recv_bytes() {
            ok &= b.send_bytes(&m).is_ok();
        }
        // SAFETY: leaving the forked child without running the parent's
        // destructors or test harness.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    drop(b);
    for i in 0..1000u32 {
        a.send(&i).unwrap();
        assert_eq!(a.recv::<u32>().unwrap(), i);
    }
    drop(a); // the child sees EOF and exits 0
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
}

#[test]
fn scribbled_length_is_an_error_not_a_crash() {
    let name = common::unique("pipe-scribble");
    let a = Pipe::create(&name, 1024).unwrap();
    let b = Pipe::open(&name).unwrap();
    a.send_bytes(b"fine").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"fine");
    a.send_bytes(b"to be corrupted").unwrap();
    // The A->B data area starts after the header (512) and two control
    // blocks (2 * 512); the second record starts 16 bytes in.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
    f.write_all_at(&(1u64 << 40).to_ne_bytes(), 512 + 1024 + 16).unwrap();
    assert_eq!(b.recv_bytes(), Err(RecvError));
    assert!(b.is_poisoned());
    assert_eq!(a.send_bytes(b"more"), Err(PipeSendError::Disconnected));
    drop(b);
    assert!(matches!(Pipe::open(&name), Err(Error::Corrupted { .. })));
}

#[test]
fn open_checks() {
    let name = common::unique("pipe-open");
    assert!(matches!(Pipe::open(&name), Err(Error::NotFound { .. })));
    let _a = Pipe::create(&name, 64).unwrap();
    assert!(matches!(Pipe::create(&name, 64), Err(Error::AlreadyExists { .. })));
    assert!(matches!(ringshm::spsc::Ring::<u64>::open(&name), Err(Error::WrongKind { .. })));
    assert!(matches!(Pipe::open_end(&name, ringshm::End::A), Err(Error::RoleTaken { .. })));
    let b = Pipe::open_or_create(&name, 64).unwrap();
    assert_eq!(b.end(), ringshm::End::B);
    assert!(matches!(Pipe::create("bad/name", 64), Err(Error::InvalidName { .. })));
}

#[test]
fn bounds() {
    fn is_send<T: Send>() {}
    is_send::<Pipe>();
    is_send::<ringshm::PipeSendError>();
    fn is_error<T: std::error::Error + Send + Sync + 'static>() {}
    is_error::<PipeSendError>();
    is_error::<RecvIntoError>();
    is_error::<ringshm::RecvValueError>();
}

#[cfg(feature = "serde")]
#[test]
fn serde_values_across_pipe_and_byte_queue() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Login {
        user: String,
        password: String,
        tries: Vec<u32>,
    }
    let _wd = common::watchdog(60);
    let (a, b) = Pipe::pair(1024);
    let v = Login { user: "Joy".into(), password: "123".into(), tries: vec![1, 2, 3] };
    a.send_value(&v).unwrap();
    a.send_value(&("tuple", 7u8)).unwrap();
    assert_eq!(b.recv_value::<Login>().unwrap(), v);
    assert_eq!(b.recv_value::<(String, u8)>().unwrap(), ("tuple".to_string(), 7));
    a.send_bytes(&[0xff, 0xff, 0xff]).unwrap();
    assert!(matches!(b.recv_value::<Login>(), Err(ringshm::RecvValueError::Decode(_))));
    let max = a.max_message_len();
    assert!(matches!(a.send_value(&vec![0u8; max]), Err(PipeSendError::TooLarge { .. })));

    let q = ringshm::ByteQueue::create(&common::unique("bq-serde"), 4, 64).unwrap();
    q.put_value(&v).unwrap();
    assert_eq!(q.get_value::<Login>().unwrap(), v);
}
