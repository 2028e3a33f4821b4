//! Helpers shared by the fuzz targets: 128-byte-aligned regions, the input
//! format, valid segment templates, and an interpreter that drives the ends
//! of an SPSC ring with fuzzer-chosen operations — including writes of
//! arbitrary bytes into the segment between operations, as a hostile or
//! buggy process sharing it could do at any time.
//!
//! # Input format
//!
//! ```text
//! byte 0      flags: bit 0 = template mode, bits 1..=4 = log2 of the capacity
//! bytes 1..3  segment length (u16 LE), clamped to what follows
//! ...         segment bytes: the segment itself (raw mode), or XORed onto a
//!             freshly initialised valid ring (template mode, so that all-zero
//!             bytes mean "valid" and every flipped bit is a targeted corruption)
//! rest        operations (`arbitrary`), at most `MAX_OPS`
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use ringshm::spsc::{Consumer, Producer, Ring};

/// Upper bound on interpreted operations per input.
pub const MAX_OPS: usize = 64;

/// A parsed fuzz input.
pub struct Input<'a> {
    /// XOR the segment bytes onto a valid ring instead of using them raw.
    pub template: bool,
    /// Capacity of the template ring (and the minimum region size).
    pub capacity: usize,
    /// The segment bytes.
    pub segment: &'a [u8],
    /// What to do once attached.
    pub ops: Vec<Op>,
}

impl<'a> Input<'a> {
    /// Splits `data` as described in the crate docs; `None` if too short.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&flags, rest) = data.split_first()?;
        let len = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]) as usize;
        let rest = &rest[2..];
        let (segment, ops) = rest.split_at(len.min(rest.len()));
        let mut u = Unstructured::new(ops);
        let mut list = Vec::new();
        while list.len() < MAX_OPS && !u.is_empty() {
            match Op::arbitrary(&mut u) {
                Ok(op) => list.push(op),
                Err(_) => break,
            }
        }
        Some(Input { template: flags & 1 != 0, capacity: 1 << ((flags >> 1) & 0xf), segment, ops: list })
    }

    /// The bytes of the segment to test: `segment` itself, or `segment`
    /// XORed onto a valid ring of `capacity`; at least `min_len` long.
    pub fn segment_bytes(&self, min_len: usize) -> Vec<u8> {
        let mut out = if self.template { template_spsc_u64(self.capacity) } else { Vec::new() };
        if out.len() < self.segment.len().max(min_len) {
            out.resize(self.segment.len().max(min_len), 0);
        }
        for (o, s) in out.iter_mut().zip(self.segment) {
            *o = if self.template { *o ^ *s } else { *s };
        }
        out
    }
}

/// A zeroed heap buffer aligned to 128 bytes, as `attach_in` requires.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    /// `len` zero bytes (at least 1).
    pub fn zeroed(len: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(len.max(1), 128).expect("layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).expect("out of memory");
        AlignedBuf { ptr, layout }
    }

    /// A buffer holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let b = Self::zeroed(bytes.len());
        // SAFETY: the buffer is at least `bytes.len()` long and distinct.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), b.ptr.as_ptr(), bytes.len()) };
        b
    }

    /// The whole buffer as a region.
    pub fn region(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.layout.size())
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Always false (the buffer is at least one byte).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Copies the buffer out.
    pub fn to_vec(&self) -> Vec<u8> {
        // SAFETY: in bounds; no `&mut` into the buffer is live.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }.to_vec()
    }

    /// Writes `v` at `off` (wrapped into the buffer), as another process
    /// could at any moment.
    pub fn scribble(&self, off: usize, v: u64) {
        let bytes = v.to_le_bytes();
        let off = off % self.len().saturating_sub(7).max(1);
        let n = bytes.len().min(self.len() - off);
        // SAFETY: `off + n <= len`; the ring only accesses this memory
        // through atomics and raw pointers, never through a live `&`/`&mut`
        // while the interpreter runs this.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(off), n) };
    }

    /// Adds `delta` to the 8-aligned word `word` (wrapped into the buffer):
    /// a plausible corruption (an index or length off by a little).
    pub fn nudge(&self, word: usize, delta: i8) {
        let words = self.len() / 8;
        if words == 0 {
            return;
        }
        let off = word % words * 8;
        let mut b = [0u8; 8];
        // SAFETY: `off + 8 <= len`; as for `scribble`.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), b.as_mut_ptr(), 8) };
        let v = u64::from_le_bytes(b).wrapping_add(i64::from(delta) as u64);
        self.scribble(off, v);
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// The bytes of a freshly initialised `spsc::Ring<u64>` of `capacity`
/// (exactly `Ring::<u64>::region_size(capacity)` long).
pub fn template_spsc_u64(capacity: usize) -> Vec<u8> {
    let size = Ring::<u64>::region_size(capacity).expect("capacity");
    let buf = AlignedBuf::zeroed(size);
    // SAFETY: the buffer is aligned, large enough and outlives the ring.
    let ring = unsafe { Ring::<u64>::init_in(buf.region(), capacity) }.expect("init_in");
    drop(ring);
    buf.to_vec()
}

/// One fuzzer-chosen operation.
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// `try_push(v)`.
    TryPush(u64),
    /// `push_timeout(v, micros)`.
    PushTimeout(u64, u8),
    /// `try_pop()`.
    TryPop,
    /// `pop_timeout(micros)`.
    PopTimeout(u8),
    /// `push_slice` of `n` items.
    PushSlice(u8),
    /// `pop_slice` into a buffer of `n`.
    PopSlice(u8),
    /// `write_chunk(n)`, fill it, commit up to `m`.
    WriteChunk(u8, u8),
    /// `read_chunk(n)`, read it, commit up to `m`.
    ReadChunk(u8, u8),
    /// Every length/state query of both ends and the ring.
    Lengths,
    /// Drop (close) the producer end.
    DropProducer,
    /// Drop (close) the consumer end.
    DropConsumer,
    /// Take the producer end again (if free).
    TakeProducer,
    /// Take the consumer end again (if free).
    TakeConsumer,
    /// Another process writes `v` at byte offset `off` of the segment.
    Scribble(u16, u64),
}

/// Runs `ops` against `ring`; `scribble(off, v)` overwrites segment bytes.
/// Results are ignored: anything but a panic, a hang or a memory error is fine.
pub fn run_ops(ring: &Ring<u64>, ops: &[Op], mut scribble: impl FnMut(usize, u64)) {
    let mut tx: Option<Producer<u64>> = ring.producer().ok();
    let mut rx: Option<Consumer<u64>> = ring.consumer().ok();
    let mut next = 0u64;
    let micros = |m: u8| Duration::from_micros(u64::from(m));
    for op in ops {
        match *op {
            Op::TryPush(v) => {
                if let Some(t) = tx.as_mut() {
                    let _ = t.try_push(v);
                }
            }
            Op::PushTimeout(v, m) => {
                if let Some(t) = tx.as_mut() {
                    let _ = t.push_timeout(v, micros(m));
                }
            }
            Op::TryPop => {
                if let Some(r) = rx.as_mut() {
                    let _ = r.try_pop();
                }
            }
            Op::PopTimeout(m) => {
                if let Some(r) = rx.as_mut() {
                    let _ = r.pop_timeout(micros(m));
                }
            }
            Op::PushSlice(n) => {
                if let Some(t) = tx.as_mut() {
                    let items: Vec<u64> = (0..u64::from(n)).map(|i| next + i).collect();
                    next += t.push_slice(&items) as u64;
                }
            }
            Op::PopSlice(n) => {
                if let Some(r) = rx.as_mut() {
                    let mut buf = vec![0u64; usize::from(n)];
                    let got = r.pop_slice(&mut buf);
                    assert!(got <= buf.len());
                }
            }
            Op::WriteChunk(n, m) => {
                if let Some(t) = tx.as_mut() {
                    if let Ok(mut w) = t.write_chunk(usize::from(n)) {
                        let (a, b) = w.as_mut_slices();
                        assert_eq!(a.len() + b.len(), usize::from(n));
                        for x in a.iter_mut().chain(b.iter_mut()) {
                            *x = next;
                            next += 1;
                        }
                        let k = usize::from(m).min(w.len());
                        w.commit(k);
                    }
                }
            }
            Op::ReadChunk(n, m) => {
                if let Some(r) = rx.as_mut() {
                    if let Ok(c) = r.read_chunk(usize::from(n)) {
                        let (a, b) = c.as_slices();
                        assert_eq!(a.len() + b.len(), usize::from(n));
                        let sum = a.iter().chain(b).fold(0u64, |s, x| s.wrapping_add(*x));
                        std::hint::black_box(sum);
                        let k = usize::from(m).min(c.len());
                        c.commit(k);
                    }
                }
            }
            Op::Lengths => {
                let cap = ring.capacity();
                assert!(ring.len() <= cap);
                let _ = ring.is_empty();
                if let Some(t) = tx.as_mut() {
                    assert!(t.len() <= cap && t.slots() <= cap);
                    let _ = (t.is_full(), t.is_empty(), t.is_abandoned());
                }
                if let Some(r) = rx.as_mut() {
                    assert!(r.len() <= cap && r.slots() <= cap);
                    let _ = (r.is_empty(), r.is_abandoned());
                }
            }
            Op::DropProducer => tx = None,
            Op::DropConsumer => rx = None,
            Op::TakeProducer => {
                if tx.is_none() {
                    tx = ring.producer().ok();
                }
            }
            Op::TakeConsumer => {
                if rx.is_none() {
                    rx = ring.consumer().ok();
                }
            }
            Op::Scribble(off, v) => scribble(usize::from(off), v),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers for targets with their own operation sets (`attach_mpmc`,
// `open_pipe_file`, `open_queue_file`). They share the input format above:
// flags byte, u16 segment length, segment bytes, then operations of the
// target's own `Arbitrary` type.

/// Splits `data` into `(flags, segment bytes, operation bytes)`; `None` if
/// too short (see the input format in the crate docs).
pub fn split(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&flags, rest) = data.split_first()?;
    let len = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]) as usize;
    let rest = &rest[2..];
    let (segment, ops) = rest.split_at(len.min(rest.len()));
    Some((flags, segment, ops))
}

/// Up to [`MAX_OPS`] operations of type `O` decoded from `bytes`.
pub fn parse_ops<'a, O: Arbitrary<'a>>(bytes: &'a [u8]) -> Vec<O> {
    let mut u = Unstructured::new(bytes);
    let mut list = Vec::new();
    while list.len() < MAX_OPS && !u.is_empty() {
        match O::arbitrary(&mut u) {
            Ok(op) => list.push(op),
            Err(_) => break,
        }
    }
    list
}

/// The segment to test: `segment` XORed onto `template` (template mode; the
/// result is at least as long as the template), or `segment` itself (raw
/// mode, `template == None`). Padded with zeros to `min_len`.
pub fn overlay(template: Option<&[u8]>, segment: &[u8], min_len: usize) -> Vec<u8> {
    let mut out = template.map(<[u8]>::to_vec).unwrap_or_default();
    let len = out.len().max(segment.len()).max(min_len);
    out.resize(len, 0);
    for (o, s) in out.iter_mut().zip(segment) {
        *o ^= *s;
    }
    out
}

/// A fresh segment name, unique in this process (and among processes: it
/// holds the pid).
pub fn unique_name(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("ringshm-fuzz-{what}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The bytes of a real named segment: `make(name)` creates it (with
/// `Options::persist(true)`, so that dropping its handles leaves the file)
/// and does whatever should be in flight; the file is then read and removed.
pub fn segment_file_bytes(what: &str, make: impl FnOnce(&str)) -> Vec<u8> {
    let name = unique_name(what);
    make(&name);
    let path = format!("/dev/shm/{name}");
    let bytes = std::fs::read(&path).expect("read template segment");
    let _ = std::fs::remove_file(&path);
    bytes
}

/// A segment file in /dev/shm written from fuzz bytes; removed on drop.
/// [`ShmFile::scribble`] overwrites bytes of it through its own descriptor —
/// the same tmpfs pages the library has mapped — as a hostile process could.
pub struct ShmFile {
    name: String,
    path: String,
    file: std::fs::File,
    len: usize,
}

impl ShmFile {
    /// Writes `bytes` as a new segment file with a unique name.
    pub fn new(what: &str, bytes: &[u8]) -> Self {
        let name = unique_name(what);
        let path = format!("/dev/shm/{name}");
        std::fs::write(&path, bytes).expect("write segment file");
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("reopen segment file");
        ShmFile { name, path, file, len: bytes.len() }
    }

    /// The segment name (for `open`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `v` at `off` (wrapped into the file; never past its end, which
    /// would grow it).
    pub fn scribble(&self, off: usize, v: u64) {
        use std::os::unix::fs::FileExt;
        let len = self.len.max(1);
        let off = off % len;
        let b = v.to_le_bytes();
        let _ = self.file.write_at(&b[..b.len().min(len - off)], off as u64);
    }

    /// Adds `delta` to the 8-aligned word `word` (wrapped into the file): a
    /// plausible corruption (an index or length off by a little).
    pub fn nudge(&self, word: usize, delta: i8) {
        use std::os::unix::fs::FileExt;
        let words = self.len / 8;
        if words == 0 {
            return;
        }
        let off = word % words * 8;
        let mut b = [0u8; 8];
        if self.file.read_exact_at(&mut b, off as u64).is_ok() {
            self.scribble(off, u64::from_le_bytes(b).wrapping_add(i64::from(delta) as u64));
        }
    }
}

impl ShmFile {
    /// Reads the 8-byte word at `off` (`None` past the end of the file).
    pub fn read_word(&self, off: usize) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, off as u64).ok().map(|()| u64::from_le_bytes(b))
    }
}

impl ShmFile {
    /// Whether `open` would now only wait for a creator (see
    /// [`waits_for_creator`]): targets skip re-opening then.
    pub fn waits_for_creator(&self) -> bool {
        use std::os::unix::fs::FileExt;
        let mut m = [0u8; 8];
        self.file.read_at(&mut m, 0).map_or(true, |n| waits_for_creator(&m[..n]))
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `open` would only wait for a creator on these segment bytes: a
/// magic word of 0 (or a file too short for one) makes it wait 100 ms and
/// fail, one slow path that needs no fuzzing. Targets skip such inputs.
pub fn waits_for_creator(segment: &[u8]) -> bool {
    segment.get(..8).is_none_or(|m| m.iter().all(|b| *b == 0))
}

/// A deterministic message of `len` bytes (for sends).
pub fn message(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed as usize).wrapping_mul(31).wrapping_add(i) as u8).collect()
}

// ---------------------------------------------------------------------------
// Templates of the newer targets (cached per thread: building one creates a
// segment). Template mode XORs the input onto these.

/// The bytes of a freshly `init_in`-made `Ring<u64>` of `capacity`, with
/// items in flight if `busy`.
pub fn template_mpmc_u64(capacity: usize, busy: bool) -> Vec<u8> {
    thread_local! {
        static CACHE: RefCell<HashMap<(usize, bool), Vec<u8>>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|c| {
        c.borrow_mut()
            .entry((capacity, busy))
            .or_insert_with(|| {
                let size = ringshm::mpmc::Ring::<u64>::region_size(capacity).expect("capacity");
                let buf = AlignedBuf::zeroed(size);
                {
                    // SAFETY: the buffer is 128-aligned, `size` bytes, and
                    // outlives the ring (dropped at the end of this block).
                    let ring = unsafe { ringshm::mpmc::Ring::<u64>::init_in(buf.region(), capacity) }.expect("init_in");
                    if busy {
                        let (tx, rx) = (ring.sender(), ring.receiver());
                        let cap = ring.capacity() as u64;
                        for i in 0..cap {
                            tx.try_send(i).expect("room");
                        }
                        for _ in 0..cap {
                            rx.try_recv().expect("item");
                        }
                        for i in 0..cap / 2 + 1 {
                            tx.try_send(100 + i).expect("room");
                        }
                    }
                }
                buf.to_vec()
            })
            .clone()
    })
}

/// The bytes of a real pipe segment for template `variant`.
pub fn template_pipe(variant: u8) -> Vec<u8> {
    thread_local! {
        static CACHE: RefCell<HashMap<u8, Vec<u8>>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|c| {
        c.borrow_mut()
            .entry(variant)
            .or_insert_with(|| {
                // Largest messages for data areas of 128, 256, 128 and 1024
                // bytes (a message may use all but 16 bytes of the area).
                let (duplex, cap, busy) = match variant {
                    0 => (true, 112, false),
                    1 => (false, 240, false),
                    2 => (true, 112, true),
                    _ => (false, 1008, true),
                };
                segment_file_bytes("pipe-tmpl", |name| {
                    let opts = ringshm::Options::new().persist(true).duplex(duplex);
                    let a = ringshm::Pipe::create_with(name, cap, &opts).expect("create");
                    let b = ringshm::Pipe::open(name).expect("open");
                    if busy {
                        let dirs: &[(&ringshm::Pipe, &ringshm::Pipe)] =
                            if duplex { &[(&a, &b), (&b, &a)] } else { &[(&a, &b)] };
                        for &(tx, rx) in dirs {
                            // Leave the writer 40 bytes before the end, so
                            // the 48-byte record after it needs a padding
                            // record; then one more message behind it.
                            let c = tx.capacity();
                            tx.try_send_bytes(&message(1, c - 48)).expect("room");
                            rx.try_recv_bytes().expect("message");
                            tx.try_send_bytes(&message(2, 40)).expect("room");
                            tx.try_send_bytes(&message(3, 8)).expect("room");
                        }
                    }
                })
            })
            .clone()
    })
}

/// The bytes of a real queue segment of `kind`, with items in flight if `busy`.
pub fn template_queue(kind: u8, busy: bool) -> Vec<u8> {
    thread_local! {
        static CACHE: RefCell<HashMap<(u8, bool), Vec<u8>>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|c| {
        c.borrow_mut()
            .entry((kind, busy))
            .or_insert_with(|| {
                segment_file_bytes("queue-tmpl", |name| {
                    let opts = ringshm::Options::new().persist(true);
                    match kind {
                        1 => {
                            let q = ringshm::Queue::<u64>::create_with(name, 8, &opts).expect("create");
                            if busy {
                                assert_eq!(q.try_put_many(&[1, 2, 3, 4, 5, 6, 7, 8]), 8);
                                assert_eq!(q.try_get_many(&mut [0; 8]), 8);
                                assert_eq!(q.try_put_many(&[9, 10, 11, 12, 13]), 5);
                            }
                        }
                        2 => {
                            let q = ringshm::JoinableQueue::<u64>::create_with(name, 4, &opts).expect("create");
                            if busy {
                                assert_eq!(q.try_put_many(&[1, 2, 3, 4]), 4);
                                assert_eq!(q.try_get_many(&mut [0; 3]), 3);
                                q.task_done().expect("taken");
                                assert_eq!(q.try_put_many(&[5, 6]), 2);
                            }
                        }
                        _ => {
                            // Kind 3: messages longer than a slot's inline bytes go
                            // to the arena (two 8 KiB extents).
                            let (cap, max) = if kind == 0 { (4, 24) } else { (2, 5000) };
                            let q = ringshm::ByteQueue::create_with(name, cap, max, &opts).expect("create");
                            if busy {
                                for i in 0..cap {
                                    q.try_put(&message(i as u64, (i * 7) % (max + 1))).expect("room");
                                }
                                for _ in 0..cap {
                                    q.try_get().expect("message");
                                }
                                for i in 0..cap / 2 + 1 {
                                    q.try_put(&message(i as u64, max - i)).expect("room");
                                }
                            }
                        }
                    }
                })
            })
            .clone()
    })
}
