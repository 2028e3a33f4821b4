//! # ringshm
//!
//! Python's `multiprocessing` primitives — Pipe, Queue, JoinableQueue, Value,
//! Array, Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier —
//! rebuilt lock-free on bounded ring buffers and futex words inside **named
//! POSIX shared-memory segments**. Any two processes meet by name: no common
//! parent, no pipe, no pickling thread, no manager process in between.
//!
//! ```
//! use ringshm::spsc;
//! use std::process::Command;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! if let Ok(name) = std::env::var("RINGSHM_DOC_CHILD") {
//!     // The second process: attach by name and produce.
//!     let mut tx = spsc::Ring::<u64>::open(&name)?.producer()?;
//!     for i in 0..1000 {
//!         tx.push(i)?;
//!     }
//!     return Ok(()); // dropping `tx` closes the ring for the consumer
//! }
//! // The first process: create the ring, start the second, consume.
//! let name = format!("doc-ticks-{}", std::process::id());
//! let ring = spsc::Ring::<u64>::create(&name, 256)?;
//! let mut rx = ring.consumer()?;
//! let mut child = Command::new(std::env::current_exe()?).env("RINGSHM_DOC_CHILD", &name).spawn()?;
//! let mut sum = 0;
//! while let Ok(v) = rx.pop() {
//!     sum += v; // `pop` ends with `RecvError` once the producer is gone and all is read
//! }
//! assert_eq!(sum, 999 * 1000 / 2);
//! child.wait()?;
//! # Ok(()) }
//! ```
//!
//! ## The model
//!
//! * **Segments.** Every shared object lives in its own segment in
//!   `/dev/shm`, created with `create` (fails if the name exists), attached
//!   with `open` (which checks magic, format version, object kind, element
//!   type, capacity and size before touching anything), or
//!   `open_or_create` (race-free). The creating process removes the name when
//!   its handle drops, unless [`Options::persist`] says otherwise; `ringshm ls`
//!   and `ringshm gc` list and clean up.
//! * **Payloads are `bytemuck::Pod`**: plain bytes, no pointers, copied into
//!   shared memory with no serialisation (feature `serde` adds
//!   `send_value`/`recv_value` for anything else).
//! * **Never blocked by the dead.** Each handle holds kernel-tracked
//!   open-file-description locks on its segment; when a process dies — even by
//!   `SIGKILL` — the kernel drops them, and whoever waits on it finds out
//!   within one 20 ms sleep slice: rings report `Disconnected`, roles can be
//!   taken over, locks report `OwnerDied`, half-written queue slots are skipped
//!   and counted.
//! * **Never trusting the segment.** Another process may scribble anything
//!   into shared memory. Indices and lengths read from it are validated or
//!   masked before use; an inconsistency poisons the object and surfaces as an
//!   error (`Disconnected`, [`Error::Corrupted`]), never as a panic,
//!   out-of-bounds access or endless hang.
//!   The one thing a library cannot guard is the segment's *size*: a process
//!   with write access to `/dev/shm/NAME` can truncate a named segment under
//!   its users, whose next access then raises `SIGBUS`. `open` checks the size;
//!   anonymous objects are sealed memfds that cannot be resized; keep named
//!   segments' mode tight (default `0o600`).
//! * **Fast path without syscalls or fences.** Rings keep cached copies of
//!   the opposite index and publish with one `Release` store; a sleeping peer
//!   is woken through a futex only when it has set its waiting bit, and the
//!   StoreLoad barrier that makes that race-free is paid by the *sleeper*
//!   (`membarrier`), not by every publish. Blocking calls spin, then yield,
//!   then sleep, as [`WaitStrategy`] says; every blocking call has `try_` and
//!   `_timeout` forms.
//!
//! ## Types
//!
//! | Python `multiprocessing` | ringshm |
//! |---|---|
//! | (none: the building blocks) | [`spsc::Ring`] (one producer, one consumer), [`mpmc::Ring`] (many of each) |
//! | (none: publish/subscribe) | [`broadcast::Ring`] (one publisher, every subscriber sees every message; lossless or overwrite) |
//! | `Pipe(duplex)` | [`Pipe::create`] / [`Pipe::open`] / [`Pipe::pair`] |
//! | `Queue(maxsize)`, `JoinableQueue` | [`Queue`], [`ByteQueue`], [`JoinableQueue`] |
//! | `Value`, `Array` | [`Value`], [`Array`] |
//! | `Lock`, `RLock` | [`Lock`], [`RLock`] (robust: [`OwnerDied`] after a holder's death) |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`] |
//! | `Event`, `Condition`, `Barrier` | [`Event`], [`Condition`], [`Barrier`] |
//!
//! Segments are listed and cleaned up with [`list`], [`info`],
//! [`remove_stale`] and [`unlink`], or the `ringshm` command-line tool.
//!
//! ## Async (feature `async`)
//!
//! Every blocking call has an `_async` twin (`get_async`, `recv_bytes_async`,
//! `acquire_async`, `lock_async`, `wait_async`, ...) returning a future that
//! runs under any executor, and receivers are `futures_core::Stream`s
//! (`stream()`). A waiting future costs no CPU: it sleeps on the same futex
//! word as a blocking waiter, through one waiter thread per process that
//! waits on every registered word at once (`futex_waitv`). The futures are
//! cancel-safe (each method says so under `# Cancel safety`), and a dead
//! peer ends them as it ends a blocking call. `RLock` has none: its owner is
//! a thread, and tasks are not threads.
//!
//! Objects can also be placed in memory the caller maps itself (memfd,
//! hugepages, another crate's mapping) with `init_in` / `attach_in`.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
// Under loom only the algorithm cores are built, for the models.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

#[cfg(all(feature = "async", not(loom)))]
mod asynch;
#[cfg(all(loom, test))]
#[path = "asynch/loom_tests.rs"]
mod asynch_loom_tests;
mod primitive;
mod process;
mod ring;
mod sync;

#[cfg(not(loom))]
mod cell;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod inspect;
#[cfg(not(loom))]
pub mod pipe;
#[cfg(not(loom))]
pub mod queue;
#[cfg(not(loom))]
pub mod shm;
#[cfg(all(feature = "testing", not(loom)))]
pub mod testing;

#[cfg(not(loom))]
pub use cell::{Array, ArrayGuard, Numeric, Shareable, Value};
#[cfg(not(loom))]
pub use error::{
    BarrierError, ChunkError, CompareExchangeError, Error, GetError, GetValueError, LockResult, LockTimeoutError,
    OwnerDied, PipeRecvError, PipeSendError, PutBytesError, PutError, RecvError, RecvIntoError, RecvTimeoutError,
    RecvValueError, ReleaseError, Result, SendError, SendTimeoutError, TaskDoneError, TryLockError, TryRecvError,
    TrySendError,
};
#[cfg(not(loom))]
pub use inspect::{info, list, remove_stale, ProcessInfo, SegmentInfo, SegmentState};
#[cfg(not(loom))]
pub use pipe::{Connection, End, Pipe};
#[cfg(not(loom))]
pub use queue::{ByteQueue, JoinableQueue, Queue};
#[cfg(not(loom))]
pub use ring::broadcast;
#[cfg(not(loom))]
pub use ring::mpmc;
pub use ring::spsc;
#[cfg(not(loom))]
pub use shm::{unlink, Kind, Options, WaitStrategy};
#[cfg(not(loom))]
pub use sync::barrier::{Barrier, BarrierWaitResult, MAX_PARTIES};
#[cfg(not(loom))]
pub use sync::condition::{Condition, WaitTimeoutResult};
#[cfg(not(loom))]
pub use sync::event::Event;
#[cfg(not(loom))]
pub use sync::lock::{Lock, LockGuard, RLock, RLockGuard};
#[cfg(not(loom))]
pub use sync::semaphore::{BoundedSemaphore, Semaphore};
