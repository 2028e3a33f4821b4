//! Waiting and waking (the futex layer and the blocking loop every primitive
//! uses), and the synchronisation primitives built on them.

pub(crate) mod futex;
#[cfg(not(loom))]
pub(crate) mod owner;
pub(crate) mod raw;
#[cfg(not(loom))]
pub(crate) mod wait;

#[cfg(not(loom))]
pub mod barrier;
#[cfg(not(loom))]
pub mod condition;
#[cfg(not(loom))]
pub mod event;
#[cfg(not(loom))]
pub mod lock;
#[cfg(not(loom))]
pub mod semaphore;
