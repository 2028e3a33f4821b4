//! ringshm (crate docs are written once the API is complete)
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod primitive;
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

#[cfg(not(loom))]
pub use error::{Error, RecvError, RecvTimeoutError, Result, SendError, SendTimeoutError, TryRecvError, TrySendError};
#[cfg(not(loom))]
pub use pipe::{Connection, End, Pipe, PipeSendError, RecvIntoError, RecvValueError};
#[cfg(not(loom))]
pub use queue::{ByteQueue, GetError, JoinableQueue, PutBytesError, PutError, Queue, TaskDoneError};
#[cfg(not(loom))]
pub use ring::mpmc;
pub use ring::spsc;
#[cfg(not(loom))]
pub use shm::{unlink, Kind, Options, WaitStrategy};
