//! rtrb's `tests/chunks.rs` (mgeier/rtrb, commit 9dfc2b8), ported to
//! `ringshm::spsc`. Each test says what was adapted. In general: rings are
//! named segments, capacities round up to a power of two (0 is refused),
//! items are `Pod` (so `write_chunk` hands out stale items instead of rtrb's
//! `Default` ones, and there is no separate `write_chunk_uninit`:
//! `WriteChunk::fill_from_iter` does what rtrb's `WriteChunkUninit` one does).

mod common;

use bytemuck::Pod;
use ringshm::spsc::{ChunkError, Consumer, Producer, Ring};

fn new<T: Pod>(tag: &str, cap: usize) -> (Producer<T>, Consumer<T>) {
    let ring = Ring::<T>::create(&common::unique(tag), cap).unwrap();
    (ring.producer().unwrap(), ring.consumer().unwrap())
}

/// Adapted: `write_chunk_uninit` is `write_chunk`; capacity 3 becomes 4, so
/// the second chunk asks for `p.slots()` = 3 slots (rtrb: 2) and is filled
/// with the same 2 items.
#[test]
fn iterators() {
    let (mut p, mut c) = new::<i32>("iter", 3);
    if let Ok(chunk) = p.write_chunk(3) {
        assert_eq!(chunk.fill_from_iter([10, 11]), 2);
    } else {
        unreachable!();
    }
    assert_eq!(c.slots(), 2);
    if let Ok(chunk) = c.read_chunk(2) {
        let mut iter = chunk.into_iter();
        assert_eq!(iter.len(), 2);
        assert_eq!(iter.next().unwrap(), 10);
        assert_eq!(iter.len(), 1);
    }
    assert_eq!(c.slots(), 1);
    if let Ok(chunk) = p.write_chunk(p.slots()) {
        assert_eq!(chunk.fill_from_iter([20, 21]), 2);
    } else {
        unreachable!();
    }
    if let Ok(chunk) = c.read_chunk(c.slots()) {
        let mut iter = chunk.into_iter();
        assert_eq!(iter.len(), 3);
        assert_eq!(iter.next().unwrap(), 11);
        assert_eq!(iter.len(), 2);
        assert_eq!(iter.next().unwrap(), 20);
        assert_eq!(iter.len(), 1);
        assert_eq!(iter.next().unwrap(), 21);
        assert_eq!(iter.len(), 0);
        assert!(iter.next().is_none());
        for _ in 0..1000 {
            // FusedIterator continues to yield None:
            assert!(iter.next().is_none());
        }
    }
    assert_eq!(c.slots(), 0);
}

/// Adapted: no ring of capacity 0; an empty ring of capacity 1 has no slot
/// to read, and the same ring once full has no slot to write. Chunks of
/// length 0 work on both.
#[test]
fn zero_capacity() {
    let (mut p, mut c) = new::<i32>("zcap", 1);

    assert_eq!(c.read_chunk(1).unwrap_err(), ChunkError::TooFewSlots(0));
    p.try_push(1).unwrap();
    assert_eq!(p.write_chunk(1).unwrap_err(), ChunkError::TooFewSlots(0));

    if let Ok(mut chunk) = p.write_chunk(0) {
        assert_eq!(chunk.len(), 0);
        assert!(chunk.is_empty());
        let (first, second) = chunk.as_mut_slices();
        assert!(first.is_empty());
        assert!(second.is_empty());
        chunk.commit_all();
    } else {
        unreachable!();
    }

    if let Ok(chunk) = c.read_chunk(0) {
        assert_eq!(chunk.len(), 0);
        assert!(chunk.is_empty());
        let (first, second) = chunk.as_slices();
        assert!(first.is_empty());
        assert!(second.is_empty());
        chunk.commit_all();
    } else {
        unreachable!();
    }
    assert_eq!(c.try_pop(), Ok(1));
}

/// Unchanged apart from names.
#[test]
fn single_capacity() {
    let (mut p, mut c) = new::<i32>("one", 1);

    if let Ok(mut chunk) = p.write_chunk(1) {
        assert_eq!(chunk.len(), 1);
        assert!(!chunk.is_empty());
        let (first, second) = chunk.as_mut_slices();
        first[0] = 2;
        assert!(second.is_empty());
        chunk.commit_all();
    } else {
        unreachable!();
    }

    if let Ok(mut chunk) = c.read_chunk(1) {
        assert_eq!(chunk.len(), 1);
        assert!(!chunk.is_empty());
        {
            let (first, second) = chunk.as_mut_slices();
            assert_eq!(first[0], 2);
            first[0] *= 2;
            assert!(second.is_empty());
        }
        {
            let (first, second) = chunk.as_slices();
            assert_eq!(first[0], 4);
            assert!(second.is_empty());
        }
        chunk.commit_all();
    } else {
        unreachable!();
    }
}

/// Adapted: `Pod` items have no destructor, so rtrb's drop counting becomes
/// visibility counting: committing 1 of 3 written slots publishes exactly 1
/// item, the 2 uncommitted slots are free again, and dropping a chunk
/// without committing publishes nothing.
#[test]
fn drop_write_chunk() {
    let (mut p, mut c) = new::<i32>("dropw", 3);
    assert_eq!(p.slots(), 4);

    if let Ok(mut chunk) = p.write_chunk(3) {
        let (first, _second) = chunk.as_mut_slices();
        first[0] = 7;
        first[1] = 8;
        chunk.commit(1);
        assert_eq!(c.slots(), 1);
        assert_eq!(p.slots(), 3);
    } else {
        unreachable!();
    }

    let chunk = c.read_chunk(1).unwrap();
    assert_eq!(chunk.as_slices().0, [7]);
    chunk.commit_all();
    assert_eq!(c.slots(), 0);

    {
        let _chunk = p.write_chunk(3).unwrap();
        // Dropped here, uncommitted.
    }
    // Nothing was published:
    assert_eq!(c.slots(), 0);
    assert_eq!(p.slots(), 4);
    assert_eq!(c.read_chunk(1).unwrap_err(), ChunkError::TooFewSlots(0));
}

/// Adapted: no `WriteChunkUninit` (see the file docs); ringshm's
/// `ChunkError` has its own Display text.
#[test]
fn trait_impls() {
    let (mut p, mut c) = new::<u8>("traits", 1);

    if let Ok(chunk) = p.write_chunk(0) {
        assert!(format!("{:?}", chunk).starts_with("WriteChunk"));
    } else {
        unreachable!();
    }
    if let Ok(chunk) = c.read_chunk(0) {
        assert!(format!("{:?}", chunk).starts_with("ReadChunk"));
        let iter = chunk.into_iter();
        assert!(format!("{:?}", iter).starts_with("ReadChunkIntoIter"));
    } else {
        unreachable!();
    }
    let e = c.read_chunk(100).unwrap_err();
    assert_eq!(format!("{:?}", e), "TooFewSlots(0)");
    assert!(e.to_string().starts_with("only 0 slots"), "{e}");
}

/// Adapted: rtrb's `push_partial_slice`/`pop_partial_slice` return the
/// pushed/popped part and the rest as slices; ringshm's `push_slice` and
/// `pop_slice` return the count, from which the same slices are cut.
#[test]
fn push_pop_partial_slice() {
    let mut buf = [0; 16];
    let (mut p, mut c) = new::<u8>("partial", 8);
    let push = |p: &mut Producer<u8>, s: &[u8]| -> (Vec<u8>, Vec<u8>) {
        let n = p.push_slice(s);
        (s[..n].to_vec(), s[n..].to_vec())
    };

    let (pushed, rest) = push(&mut p, &[1, 2, 3]);
    assert_eq!(pushed, [1, 2, 3]);
    assert_eq!(rest.len(), 0);
    let (pushed, _) = push(&mut p, &[4, 5]);
    assert_eq!(pushed, &[4, 5]);

    let buf_len = buf.len();
    let n = c.pop_slice(&mut buf);
    let (popped, unused) = buf.split_at(n);
    assert_eq!(popped, &[1, 2, 3, 4, 5]);
    assert_eq!(unused.len(), buf_len - popped.len());
    let (pushed, _) = push(&mut p, popped);
    assert_eq!(pushed.len(), 5);

    let (pushed, rest) = push(&mut p, &[1, 2, 3, 4, 5]);
    assert_eq!(pushed, &[1, 2, 3]);
    assert_eq!(rest, &[4, 5]);

    let n = c.pop_slice(&mut buf);
    let (popped, unused) = buf.split_at(n);
    assert_eq!(popped, &[1, 2, 3, 4, 5, 1, 2, 3]);
    assert_eq!(unused.len(), buf_len - popped.len());
    let (pushed, _) = push(&mut p, popped);
    assert_eq!(pushed.len(), 8);

    let mut short_buf = [0; 3];
    let n = c.pop_slice(&mut short_buf);
    assert_eq!(short_buf.len() - n, 0);
    assert_eq!(&short_buf[..n], &[1, 2, 3]);
}

/// Added: chunks between two processes. The child writes batches of varying
/// size with `write_chunk` + `fill_from_iter` (wrapping around the ring);
/// the parent reads them with `read_chunk` + `into_iter` and checks that
/// every item arrives once, in order.
#[test]
fn chunks_across_processes() {
    const N: u32 = 50_000;
    if let Some(role) = common::role() {
        assert_eq!(role, "producer");
        let ring = Ring::<u32>::open(&common::args()[0]).unwrap();
        let mut p = ring.producer().unwrap();
        let mut next = 0u32;
        let mut batch = 1usize;
        while next < N {
            let want = batch.min((N - next) as usize);
            let free = p.slots();
            let n = want.min(free);
            if n == 0 {
                std::thread::yield_now();
                continue;
            }
            let chunk = p.write_chunk(n).unwrap();
            assert_eq!(chunk.fill_from_iter(next..next + n as u32), n);
            next += n as u32;
            batch = batch % 13 + 1;
        }
        return;
    }
    let _wd = common::watchdog(120);
    let name = common::unique("chunkx");
    let ring = Ring::<u32>::create(&name, 16).unwrap();
    let mut c = ring.consumer().unwrap();
    let child = common::spawn("chunks_across_processes", "producer", &[&name]);
    let mut want = 0u32;
    while want < N {
        let n = c.slots();
        if n == 0 {
            std::thread::yield_now();
            continue;
        }
        for x in c.read_chunk(n).unwrap() {
            assert_eq!(x, want);
            want += 1;
        }
    }
    common::expect_success(child, 60);
    assert_eq!(c.read_chunk(1).unwrap_err(), ChunkError::Disconnected);
}
