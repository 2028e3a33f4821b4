//! Zero-copy access to an SPSC ring's slots: [`WriteChunk`] and
//! [`ReadChunk`] (the design of rtrb's `chunks` module).
//!
//! # Implementation details
//!
//! A chunk is up to two runs of slots — from the current position to the end
//! of the slot array, and from its start — reserved with the index core's
//! `free`/`available` (one refresh of the cached opposite index at most) and
//! handed out as slices. Nothing is shared until `commit`: a write chunk
//! becomes visible with one `Release` store of `tail` (`ProdIdx::commit`), a
//! read chunk's slots are returned with one `Release` store of `head`
//! (`ConsIdx::release`), however many items it holds. Dropping a chunk
//! without committing publishes (or releases) nothing.
//!
//! Because `T: Pod`, a write chunk's slots hold whatever stale items were
//! there (any bits are a valid `T`), so there is no separate "uninit" chunk.

use core::fmt;
use core::iter::FusedIterator;

use bytemuck::Pod;

use super::spsc::{ChunkError, Consumer, Producer, Runs};

/// Free slots reserved by [`Producer::write_chunk`], written in place.
///
/// ```
/// # use ringshm::spsc::Ring;
/// # let name = format!("doc-write-chunk-{}", std::process::id());
/// let ring = Ring::<u32>::create(&name, 4).unwrap();
/// let (mut tx, mut rx) = (ring.producer().unwrap(), ring.consumer().unwrap());
/// let mut chunk = tx.write_chunk(3).unwrap();
/// let (first, second) = chunk.as_mut_slices();
/// for (i, slot) in first.iter_mut().chain(second).enumerate() {
///     *slot = i as u32 * 10;
/// }
/// chunk.commit(2); // the third slot is not published
/// assert_eq!(rx.pop_slice(&mut [0; 4]), 2);
/// ```
///
/// # Memory ordering
/// [`WriteChunk::commit`] is one `Release` store of the ring's `tail`:
/// every write into the chunk (and everything else this thread did before)
/// happens-before the consumer's reads of the committed items.
///
/// # Across processes
/// The slots lie in shared memory, but until committed nobody else reads
/// them: the consumer sees only what `tail` covers. If this process dies
/// with a chunk reserved, nothing of it was published and the consumer sees
/// the producer as gone after the items committed before.
pub struct WriteChunk<'a, T: Pod> {
    runs: Runs<T>,
    producer: &'a mut Producer<T>,
}

/// Filled slots borrowed by [`Consumer::read_chunk`], read in place.
///
/// ```
/// # use ringshm::spsc::Ring;
/// # let name = format!("doc-read-chunk-{}", std::process::id());
/// let ring = Ring::<u32>::create(&name, 4).unwrap();
/// let (mut tx, mut rx) = (ring.producer().unwrap(), ring.consumer().unwrap());
/// tx.push_slice(&[1, 2, 3]);
/// let chunk = rx.read_chunk(2).unwrap();
/// let (first, second) = chunk.as_slices();
/// assert_eq!(first.iter().chain(second).sum::<u32>(), 3);
/// chunk.commit_all();
/// assert_eq!(rx.pop(), Ok(3));
/// ```
///
/// # Memory ordering
/// The chunk was reserved after an `Acquire` load of `tail` that saw its
/// items: the producer's writes to them are visible. [`ReadChunk::commit`]
/// is one `Release` store of `head`: the reads happen-before the producer
/// reuses the slots.
///
/// # Across processes
/// The producer (possibly in another process) does not touch the slots
/// until they are committed. A process that scribbles on shared memory can
/// change their bytes, but never make the slices point out of the ring.
pub struct ReadChunk<'a, T: Pod> {
    runs: Runs<T>,
    consumer: &'a mut Consumer<T>,
}

/// Iterator over a [`ReadChunk`]'s items (from `IntoIterator`), oldest
/// first. Dropping it releases the items it yielded, not the others.
pub struct ReadChunkIntoIter<'a, T: Pod> {
    chunk: ReadChunk<'a, T>,
    iterated: usize,
}

impl<T: Pod> Producer<T> {
    /// Reserves `n` free slots to fill in place; publish them with
    /// [`WriteChunk::commit`] or [`WriteChunk::commit_all`] (dropping the
    /// chunk publishes nothing).
    ///
    /// # Errors
    /// [`ChunkError::TooFewSlots`] with the number free now, or
    /// [`ChunkError::Disconnected`].
    pub fn write_chunk(&mut self, n: usize) -> Result<WriteChunk<'_, T>, ChunkError> {
        if self.closed_hint() {
            return Err(ChunkError::Disconnected);
        }
        let sh = self.inner.shared();
        let free = self.core.idx.free(sh, n as u64).map_err(|_| ChunkError::Disconnected)? as usize;
        if free < n {
            return Err(ChunkError::TooFewSlots(free));
        }
        let runs = self.runs(n);
        Ok(WriteChunk { runs, producer: self })
    }
}

impl<T: Pod> Consumer<T> {
    /// Borrows `n` available items in place; release them with
    /// [`ReadChunk::commit`] / [`ReadChunk::commit_all`] (dropping the chunk
    /// releases nothing).
    ///
    /// # Errors
    /// [`ChunkError::TooFewSlots`] with the number available now, or
    /// [`ChunkError::Disconnected`] if fewer than `n` are available, none at
    /// all, and the producer is gone.
    pub fn read_chunk(&mut self, n: usize) -> Result<ReadChunk<'_, T>, ChunkError> {
        let sh = self.inner.shared();
        let avail = self.core.idx.available(sh, n as u64).map_err(|_| ChunkError::Disconnected)? as usize;
        if avail < n {
            if avail == 0 && self.producer_gone(false) && self.core.idx.refresh(sh) == Ok(0) {
                return Err(ChunkError::Disconnected);
            }
            return Err(ChunkError::TooFewSlots(avail));
        }
        let runs = self.runs(n);
        Ok(ReadChunk { runs, consumer: self })
    }
}

impl<T: Pod> WriteChunk<'_, T> {
    /// The reserved slots as two runs (the second is empty unless the chunk
    /// wraps around). They hold stale items: overwrite what you commit.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        // SAFETY: the runs are free slots that only this producer may touch
        // until it publishes them (which takes `self`); the mapping is kept
        // alive by `producer`; `&mut self` makes the access exclusive.
        unsafe { self.runs.slices_mut() }
    }

    /// Number of reserved slots.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether no slots were reserved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes the first `n` reserved slots.
    ///
    /// # Panics
    /// If `n` exceeds the chunk length.
    pub fn commit(self, n: usize) {
        assert!(n <= self.len(), "commit({n}) on a chunk of {}", self.len());
        let p = self.producer;
        let sh = p.inner.shared();
        p.core.idx.commit(sh, n as u64);
    }

    /// Publishes every reserved slot.
    pub fn commit_all(self) {
        let n = self.len();
        self.commit(n);
    }

    /// Fills the chunk from `iter` (until either runs out) and publishes the
    /// items written; returns how many (rtrb's `fill_from_iter`).
    pub fn fill_from_iter<I: IntoIterator<Item = T>>(mut self, iter: I) -> usize {
        let mut iter = iter.into_iter();
        let mut n = 0;
        let (a, b) = self.as_mut_slices();
        for slot in a.iter_mut().chain(b.iter_mut()) {
            match iter.next() {
                Some(v) => {
                    *slot = v;
                    n += 1;
                }
                None => break,
            }
        }
        self.commit(n);
        n
    }
}

impl<T: Pod> ReadChunk<'_, T> {
    /// The borrowed items, oldest first, as two runs.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        // SAFETY: published slots (Acquire of `tail` in `read_chunk`), which
        // the producer does not reuse until we release them (which takes
        // `self`); the mapping is kept alive by `consumer`.
        unsafe { self.runs.slices() }
    }

    /// The borrowed items, mutable in place (they are the consumer's until
    /// committed), oldest first, as two runs.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        // SAFETY: as in `as_slices`; nobody else accesses unreleased slots
        // and `&mut self` makes the access exclusive.
        unsafe { self.runs.slices_mut() }
    }

    /// Number of borrowed items.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether no items were borrowed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Releases the first `n` items to the producer.
    ///
    /// # Panics
    /// If `n` exceeds the chunk length.
    pub fn commit(self, n: usize) {
        assert!(n <= self.len(), "commit({n}) on a chunk of {}", self.len());
        let c = self.consumer;
        let sh = c.inner.shared();
        c.core.idx.release(sh, n as u64);
    }

    /// Releases every borrowed item.
    pub fn commit_all(self) {
        let n = self.len();
        self.commit(n);
    }

    /// The `i`-th item (`i < len()`).
    fn item(&self, i: usize) -> T {
        let (a, b) = self.as_slices();
        if i < a.len() {
            a[i]
        } else {
            b[i - a.len()]
        }
    }
}

impl<'a, T: Pod> IntoIterator for ReadChunk<'a, T> {
    type Item = T;
    type IntoIter = ReadChunkIntoIter<'a, T>;
    fn into_iter(self) -> ReadChunkIntoIter<'a, T> {
        ReadChunkIntoIter { chunk: self, iterated: 0 }
    }
}

impl<T: Pod> Iterator for ReadChunkIntoIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.iterated == self.chunk.len() {
            return None;
        }
        let v = self.chunk.item(self.iterated);
        self.iterated += 1;
        Some(v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.chunk.len() - self.iterated;
        (n, Some(n))
    }
}

impl<T: Pod> ExactSizeIterator for ReadChunkIntoIter<'_, T> {}
impl<T: Pod> FusedIterator for ReadChunkIntoIter<'_, T> {}

impl<T: Pod> Drop for ReadChunkIntoIter<'_, T> {
    fn drop(&mut self) {
        if self.iterated == 0 {
            return;
        }
        let c = &mut *self.chunk.consumer;
        let sh = c.inner.shared();
        c.core.idx.release(sh, self.iterated as u64);
    }
}

impl<T: Pod> fmt::Debug for WriteChunk<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteChunk").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl<T: Pod> fmt::Debug for ReadChunk<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunk").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl<T: Pod> fmt::Debug for ReadChunkIntoIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunkIntoIter")
            .field("len", &self.chunk.len())
            .field("iterated", &self.iterated)
            .finish_non_exhaustive()
    }
}
