//! The header-polled byte ring under `Pipe` (see `src/ring/bytes.rs`),
//! between real processes:
//!
//! - a header word scribbled by another process at the place the reader
//!   polls next poisons the pipe (or, if it happens to be a well-formed
//!   header, delivers one message of that length), never panics, never
//!   reads out of bounds and never hangs;
//! - a stream of random sizes, with sizes chosen to force padding records
//!   and records that end exactly at the end of the data area, arrives
//!   whole, in order and counted, through copies and zero-copy sends and
//!   receives alike.
//!
//! Both tests model where the writer puts each record (an 8-byte header,
//! the payload rounded up to 8, a padding record when a record does not
//! fit before the end) to know the reader's position and to count pads and
//! exact fits.

mod common;

use std::os::unix::fs::FileExt;

use ringshm::{Error, Pipe, PipeSendError, RecvError};

/// File offset of the A -> B data area of a duplex pipe: the segment header
/// (512 bytes), then two control blocks of 512 bytes.
const DATA_AB: u64 = 512 + 2 * 512;

/// Header value of a padding record.
const PAD: u64 = u64::MAX;

/// xorshift64*: a small deterministic generator both processes replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Where the writer puts records in a data area of `cap` bytes.
struct Model {
    cap: u64,
    /// Byte offset of the next record (the reader's position once it has
    /// read everything before it).
    pos: u64,
    pads: u64,
    exact: u64,
}

impl Model {
    fn new(cap: usize) -> Self {
        Model { cap: cap as u64, pos: 0, pads: 0, exact: 0 }
    }
    fn record(len: usize) -> u64 {
        8 + (len as u64).next_multiple_of(8)
    }
    fn push(&mut self, len: usize) {
        let rec = Self::record(len);
        if rec > self.cap - self.pos {
            self.pads += 1;
            self.pos = 0;
        }
        self.pos += rec;
        if self.pos == self.cap {
            self.exact += 1;
            self.pos = 0;
        }
    }
    /// The next size: often one that ends exactly at the end of the area
    /// or one that needs a padding record, else the extremes or a random one.
    fn size(&self, rng: &mut Rng, max: usize) -> usize {
        let r = rng.next();
        let left = (self.cap - self.pos) as usize;
        let len = match r % 8 {
            0 => 0,
            1 => max,
            // Exact fit: record of `left` bytes (any length in the last granule).
            2 | 3 if left >= 8 => (left - 8).saturating_sub((r >> 8) as usize % 8),
            // One granule too long for the rest: a padding record first.
            4 => left.saturating_sub(7),
            _ => (r >> 8) as usize % (max + 1),
        };
        len.min(max)
    }
}

fn message(seq: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq.wrapping_mul(131) as usize + i * 7) as u8).collect()
}

// ---------------------------------------------------------------------------
// Scribbled headers.

/// What the reader must see after the scribble.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The pipe is poisoned: the receive reports end-of-file.
    Poison,
    /// A well-formed header: one message of this many bytes.
    Message(usize),
}

/// Decodes `v` at `pos` as the ring does (0 = nothing yet, PAD, len + 1).
fn expect_for(v: u64, pos: u64, cap: u64) -> Option<Expect> {
    if v == 0 {
        return None; // "nothing published": not a scribble we can observe
    }
    if v == PAD {
        return Some(if pos == 0 { Expect::Poison } else { Expect::Message(usize::MAX) });
    }
    let len = v - 1;
    let fits = len <= cap - 16 && Model::record(len as usize) <= cap - pos;
    Some(if fits { Expect::Message(len as usize) } else { Expect::Poison })
}

#[test]
fn scribbled_header_at_reader_position_poisons() {
    if let Some(role) = common::role() {
        assert_eq!(role, "reader");
        let args = common::args();
        let (k, seed): (u64, u64) = (args[1].parse().unwrap(), args[2].parse().unwrap());
        let b = Pipe::open(&args[0]).unwrap();
        let max = b.max_message_len();
        let mut model = Model::new(b.capacity());
        let mut rng = Rng(seed);
        for i in 0..k {
            let len = model.size(&mut rng, max);
            model.push(len);
            assert_eq!(b.recv_bytes().unwrap(), message(i, len), "message {i}");
        }
        // Now polling the header at `model.pos`; tell the writer.
        b.send_bytes(b"at").unwrap();
        match args[3].as_str() {
            "poison" => {
                assert_eq!(b.recv_bytes(), Err(RecvError));
                assert!(b.is_poisoned());
            }
            "pad" => {
                // Padding at a valid place: skipped; the next header is
                // whatever the area holds at offset 0 (stale or EMPTY), so
                // only a bounded wait for anything.
                let _ = b.recv_bytes_timeout(std::time::Duration::from_millis(50));
            }
            len => {
                let m = b.recv_bytes().unwrap();
                assert_eq!(m.len(), len.parse::<usize>().unwrap());
            }
        }
        return;
    }
    let _wd = common::watchdog(120);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..16u64 {
        let name = common::unique("hdr-scribble");
        let a = Pipe::create(&name, 240).unwrap();
        let (cap, max) = (a.capacity(), a.max_message_len());
        assert_eq!(cap, 256);
        // Case 1 stays at offset 0 (where padding is invalid).
        let k = if case == 1 { 0 } else { rng.next() % 40 };
        let seed = rng.next() | 1;
        // Replay the sizes to know where the reader will poll.
        let mut model = Model::new(cap);
        let mut sizes = Rng(seed);
        let lens: Vec<usize> = (0..k)
            .map(|_| {
                let len = model.size(&mut sizes, max);
                model.push(len);
                len
            })
            .collect();
        let (pos, cap64) = (model.pos, cap as u64);
        let value = match case {
            0 => cap64 - 14,                     // a message of cap - 15 bytes: one too long
            1 => PAD,                            // padding at offset 0
            2 if pos >= 16 => 1 + (cap64 - pos), // its record runs past the end
            3 => u64::MAX - 1,
            4 => 1 << 63,
            5..=9 => rng.next() | 1 << 40,
            // Small values: some well-formed, some not, depending on `pos`.
            _ => 1 + rng.next() % (cap64 + 8),
        };
        let expect = expect_for(value, pos, cap64).expect("never 0");
        let how = match expect {
            Expect::Poison => "poison".to_owned(),
            Expect::Message(usize::MAX) => "pad".to_owned(),
            Expect::Message(len) => len.to_string(),
        };
        let child = common::spawn(
            "scribbled_header_at_reader_position_poisons",
            "reader",
            &[&name, &k.to_string(), &seed.to_string(), &how],
        );
        for (i, &len) in lens.iter().enumerate() {
            a.send_bytes(&message(i as u64, len)).unwrap();
        }
        assert_eq!(a.recv_bytes().unwrap(), b"at");
        // Another process's descriptor on the same pages would do the
        // same: this process is not the reader.
        let f = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
        f.write_all_at(&value.to_ne_bytes(), DATA_AB + pos).unwrap();
        common::expect_success(child, 30);
        if expect == Expect::Poison {
            assert!(a.is_poisoned(), "case {case}: value {value:#x} at {pos}");
            assert_eq!(a.send_bytes(b"more"), Err(PipeSendError::Disconnected));
            // End B is free again (its process exited); opening it is refused.
            assert!(matches!(Pipe::open(&name), Err(Error::Corrupted { .. })), "case {case}");
        }
    }
}

// ---------------------------------------------------------------------------
// Stress: random sizes, pads and exact fits, counted.

#[test]
fn random_sizes_with_pads_and_exact_fits_across_processes() {
    if let Some(role) = common::role() {
        assert_eq!(role, "reader");
        let args = common::args();
        let (n, seed): (u64, u64) = (args[1].parse().unwrap(), args[2].parse().unwrap());
        let b = Pipe::open(&args[0]).unwrap();
        let max = b.max_message_len();
        let mut model = Model::new(b.capacity());
        let mut rng = Rng(seed);
        let mut buf = vec![0u8; max];
        let mut got = 0u64;
        for i in 0..n {
            let len = model.size(&mut rng, max);
            model.push(len);
            let want = message(i, len);
            match i % 3 {
                0 => assert_eq!(b.recv_bytes().unwrap(), want, "message {i}"),
                1 => assert!(b.recv_with(|m| m == want.as_slice()).unwrap(), "message {i} (in place)"),
                _ => {
                    let k = b.recv_bytes_into(&mut buf).unwrap();
                    assert_eq!(&buf[..k], want.as_slice(), "message {i} (into)");
                }
            }
            got += 1;
        }
        // Nothing more than was sent.
        assert!(b.try_recv_bytes().is_err());
        b.send(&got).unwrap();
        b.send(&model.pads).unwrap();
        return;
    }
    let _wd = common::watchdog(240);
    for (capacity, n) in [(240usize, 40_000u64), (4000, 20_000)] {
        let name = common::unique("hdr-stress");
        let a = Pipe::create(&name, capacity).unwrap();
        let max = a.max_message_len();
        let seed = 0xD1B5_4A32_D192_ED03 ^ capacity as u64;
        let child = common::spawn(
            "random_sizes_with_pads_and_exact_fits_across_processes",
            "reader",
            &[&name, &n.to_string(), &seed.to_string()],
        );
        let mut model = Model::new(a.capacity());
        let mut rng = Rng(seed);
        for i in 0..n {
            let len = model.size(&mut rng, max);
            model.push(len);
            let m = message(i, len);
            if i % 2 == 0 {
                a.send_bytes(&m).unwrap();
            } else {
                a.send_with(len, |buf| buf.copy_from_slice(&m)).unwrap();
            }
        }
        assert_eq!(a.recv::<u64>().unwrap(), n, "messages received");
        assert_eq!(a.recv::<u64>().unwrap(), model.pads);
        // The sizes did what they were chosen for.
        assert!(model.pads > n / 20 && model.exact > n / 20, "pads {} exact {}", model.pads, model.exact);
        assert!(!a.is_poisoned());
        common::expect_success(child, 60);
    }
}
