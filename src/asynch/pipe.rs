//! `_async` twins of the [`Pipe`] calls.
//!
//! A `Pipe` is `Send` but not `Sync` (one thread at a time uses an end), so
//! these futures are not `Send`: run them on a current-thread runtime, in a
//! `LocalSet`, or with `block_on`; move the `Pipe` itself into a spawned
//! task to use it from a multi-thread runtime.

use core::future::{poll_fn, Future};
use core::task::Poll;

use bytemuck::Pod;
use futures_core::Stream;

use super::stream::RecvStream;
use super::{Hook, Step, Waiter};
use crate::error::{PipeRecvError, PipeSendError, RecvError, TryRecvError};
use crate::pipe::Pipe;

/// Drives `attempt` on `pipe`, waiting on its ring in direction `sending`.
/// A pipe end without that direction (or closed) has no hook: its `try_`
/// form fails at once, so one attempt decides (`gone` set, never `None`).
fn drive<'a, R: 'a>(
    pipe: &'a Pipe,
    sending: bool,
    mut attempt: impl FnMut(&Pipe, Step) -> Option<R> + 'a,
) -> impl Future<Output = R> + 'a {
    let mut hook: Option<Hook<'static>> = pipe.async_hook(sending);
    let mut w = Waiter::new();
    poll_fn(move |cx| match &mut hook {
        Some(h) => w.poll_op(cx, h, |step| attempt(pipe, step)),
        None => match attempt(pipe, Step { announced: false, gone: true }) {
            Some(r) => Poll::Ready(r),
            None => unreachable!("an attempt told `gone` decides"),
        },
    })
}

fn send_step(r: Result<(), PipeSendError>, step: Step) -> Option<Result<(), PipeSendError>> {
    match r {
        Err(PipeSendError::Full) if step.gone => Some(Err(PipeSendError::Disconnected)),
        Err(PipeSendError::Full) => None,
        r => Some(r),
    }
}

fn recv_bytes_step(r: Result<Vec<u8>, TryRecvError>, step: Step) -> Option<Result<Vec<u8>, RecvError>> {
    match r {
        Ok(v) => Some(Ok(v)),
        Err(TryRecvError::Empty) if !step.gone => None,
        Err(_) => Some(Err(RecvError)),
    }
}

impl Pipe {
    /// Sends `msg` as one message, waiting without blocking the thread while
    /// the pipe is full: the async twin of [`send_bytes`](Self::send_bytes).
    ///
    /// # Errors
    /// As [`send_bytes`](Self::send_bytes).
    ///
    /// # Cancel safety
    /// Cancel-safe: the message is written and published only inside the
    /// `poll` that completes the future; dropping it before that sends
    /// nothing and leaves no waker registered.
    pub fn send_bytes_async<'a>(&'a self, msg: &'a [u8]) -> impl Future<Output = Result<(), PipeSendError>> + 'a {
        drive(self, true, move |p, step| send_step(p.try_send_bytes(msg), step))
    }

    /// Sends a `Pod` value as one message: the async twin of
    /// [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    ///
    /// # Cancel safety
    /// As [`send_bytes_async`](Self::send_bytes_async).
    pub fn send_async<'a, T: Pod>(&'a self, value: &'a T) -> impl Future<Output = Result<(), PipeSendError>> + 'a {
        drive(self, true, move |p, step| send_step(p.try_send(value), step))
    }

    /// Receives the next message into a new vector, waiting without blocking
    /// the thread: the async twin of [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Errors
    /// [`RecvError`] (end-of-file) as for [`recv_bytes`](Self::recv_bytes):
    /// once everything the other end sent before it closed or died was
    /// received.
    ///
    /// # Cancel safety
    /// Cancel-safe: a message is consumed only inside the `poll` that returns
    /// it; dropping the future before that consumes nothing.
    pub fn recv_bytes_async(&self) -> impl Future<Output = Result<Vec<u8>, RecvError>> + '_ {
        drive(self, false, |p, step| recv_bytes_step(p.try_recv_bytes(), step))
    }

    /// Receives a `Pod` value sent with [`send`](Self::send): the async twin
    /// of [`recv`](Self::recv).
    ///
    /// # Errors
    /// As [`recv`](Self::recv): [`PipeRecvError::Disconnected`],
    /// [`PipeRecvError::WrongSize`] (the message stays queued).
    ///
    /// # Cancel safety
    /// As [`recv_bytes_async`](Self::recv_bytes_async).
    pub fn recv_async<T: Pod>(&self) -> impl Future<Output = Result<T, PipeRecvError>> + '_ {
        drive(self, false, |p, step| match p.try_recv::<T>() {
            Err(PipeRecvError::Empty) if step.gone => Some(Err(PipeRecvError::Disconnected)),
            Err(PipeRecvError::Empty) => None,
            r => Some(r),
        })
    }

    /// This end's incoming messages as a [`futures_core::Stream`], ending at
    /// end-of-file (as [`recv_bytes`](Self::recv_bytes) would).
    pub fn stream(&self) -> impl Stream<Item = Vec<u8>> + '_ {
        let hook = self.async_hook(false).unwrap_or_else(|| {
            // No receiving ring: every attempt ends the stream at once.
            Hook::new(crate::shm::WaitStrategy::Park, &NEVER, super::How::Value(0), || true)
        });
        RecvStream::new(self, hook, |p, step| recv_bytes_step(p.try_recv_bytes(), step))
    }
}

/// A word nobody wakes, for a stream that ends on its first attempt.
static NEVER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
