//! Test hooks (cargo feature `testing`, off by default): put a ring in the
//! states a process killed at an unlucky instruction leaves behind, so that
//! crash recovery can be tested deterministically across real processes.
//!
//! Not part of the stable API; the crate's own integration tests enable the
//! feature through a dev-dependency on the crate itself.

use bytemuck::Pod;

use crate::queue::{ByteQueue, Queue};
use crate::ring::mpmc::Sender;

/// Claims the next free slot of `tx`'s ring and never publishes it, as a
/// sender killed between claiming and publishing would. Returns whether a
/// slot was claimed (`false` if the ring was full). The claim carries this
/// process's owner tag: it is recovered (and counted lost) once this
/// process has died.
pub fn abandon_send<T: Pod>(tx: &Sender<T>) -> bool {
    tx.claim_only()
}

/// [`abandon_send`] through a [`Queue`] (or a `JoinableQueue`, which
/// derefs to one); the handle joins the producers' side first.
pub fn abandon_put<T: Pod>(q: &Queue<T>) -> bool {
    q.claim_only()
}

/// [`abandon_send`] through a [`ByteQueue`].
pub fn abandon_put_bytes(q: &ByteQueue) -> bool {
    q.claim_only()
}

/// Claims the next slot of `q`, copies the first half of `msg` into it (into
/// the arena when `msg` does not fit inline) and never publishes it, as a
/// producer killed in the middle of copying a big message would. Returns
/// whether a slot was claimed.
///
/// # Panics
/// If `msg` is longer than `q.max_message_bytes()`.
pub fn abandon_half_put_bytes(q: &ByteQueue, msg: &[u8]) -> bool {
    q.abandon_half_put(msg)
}

/// The addresses of the payloads of `ring`'s slots in this process (for
/// checking their alignment).
pub fn payload_addresses<T: Pod>(ring: &crate::mpmc::Ring<T>) -> Vec<usize> {
    ring.raw().payload_addresses()
}
