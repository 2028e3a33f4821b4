//! rtrb's `tests/write_and_read.rs` (mgeier/rtrb, commit 9dfc2b8): the
//! `std::io::Write`/`Read` impls of `Producer<u8>`/`Consumer<u8>`, ported
//! to `ringshm::spsc`. Rings are named segments; rtrb's capacities 2 and 1
//! are powers of two already, so every test runs unchanged otherwise.
//! One test is added: `read` reports end of file once the producer is gone.

mod common;

use std::io::{Read, Write};

use ringshm::spsc::{Consumer, Producer, Ring};

fn new(tag: &str, cap: usize) -> (Producer<u8>, Consumer<u8>) {
    let ring = Ring::<u8>::create(&common::unique(tag), cap).unwrap();
    (ring.producer().unwrap(), ring.consumer().unwrap())
}

/// Unchanged apart from names.
#[test]
fn write_and_read() {
    let (mut p, mut c) = new("wr", 2);
    assert_eq!(p.write(&[10, 11]).unwrap(), 2);
    // Does nothing:
    assert!(p.flush().is_ok());

    {
        let mut buf = [0];
        assert_eq!(c.read(&mut buf).unwrap(), 1);
        assert_eq!(buf, [10]);
    }

    assert_eq!(p.write(&[12, 99]).unwrap(), 1);

    {
        let mut buf = [0, 0];
        assert_eq!(c.read(&mut buf).unwrap(), 2);
        assert_eq!(buf, [11, 12]);
    }

    assert_eq!(p.write(&[13, 14]).unwrap(), 2);

    {
        let mut buf = [0];
        assert_eq!(c.read(&mut buf).unwrap(), 1);
        assert_eq!(buf, [13]);
    }

    {
        let mut buf = [20, 21];
        assert_eq!(c.read(&mut buf).unwrap(), 1);
        assert_eq!(buf, [14, 21]);
    }
}

/// Unchanged apart from names.
#[test]
fn write_empty_buf() {
    let (mut p, _c) = new("wempty", 2);
    assert_eq!(p.write(&[]).unwrap(), 0);
}

/// Unchanged apart from names (`push` is `try_push`).
#[test]
fn read_empty_buf() {
    let (mut p, mut c) = new("rempty", 2);
    assert!(p.try_push(99).is_ok());
    assert_eq!(c.read(&mut []).unwrap(), 0);
}

/// Unchanged apart from names.
#[test]
fn write_error() {
    let (mut p, _c) = new("werr", 1);
    assert!(p.try_push(10).is_ok());
    assert_eq!(p.write(&[99]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
}

/// Unchanged apart from names.
#[test]
fn read_error() {
    let (_p, mut c) = new("rerr", 1);
    let mut buf = [0];
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
}

/// Added: once the producer is gone, `read` drains, then reports end of
/// file (`Ok(0)`), so `read_to_end` terminates; `write` to a ring whose
/// consumer is gone is `BrokenPipe`.
#[test]
fn eof_and_broken_pipe() {
    let (mut p, mut c) = new("eof", 8);
    assert_eq!(p.write(b"abc").unwrap(), 3);
    drop(p);
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"abc");

    let (mut p, c) = new("broken", 8);
    drop(c);
    assert_eq!(p.write(b"x").unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
}
