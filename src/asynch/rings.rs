//! `_async` twins of the ring calls: spsc `push_async` / `pop_async`, mpmc
//! and broadcast `send_async` / `recv_async`.

use core::future::{poll_fn, Future};

use bytemuck::Pod;

use futures_core::Stream;

use super::stream::RecvStream;
use super::{Step, Waiter};
use crate::error::{RecvError, SendError, TryRecvError, TrySendError};
use crate::ring::{broadcast, mpmc, spsc};

/// Maps a `try_send`-style result: `Full` waits (or fails once the peer is gone).
pub(super) fn send_step<T>(r: Result<(), TrySendError<T>>, step: Step) -> Option<Result<(), SendError<T>>> {
    match r {
        Ok(()) => Some(Ok(())),
        Err(TrySendError::Full(v)) if step.gone => Some(Err(SendError(v))),
        Err(TrySendError::Full(_)) => None,
        Err(TrySendError::Disconnected(v)) => Some(Err(SendError(v))),
    }
}

/// Maps a `try_recv`-style result: `Empty` waits (or ends once the peer is gone).
pub(super) fn recv_step<T>(r: Result<T, TryRecvError>, step: Step) -> Option<Result<T, RecvError>> {
    match r {
        Ok(v) => Some(Ok(v)),
        Err(TryRecvError::Empty) if !step.gone => None,
        Err(_) => Some(Err(RecvError)),
    }
}

impl<T: Pod> spsc::Producer<T> {
    /// Pushes `v`, waiting without blocking the thread while the ring is full:
    /// the async twin of [`push`](Self::push).
    ///
    /// # Errors
    /// [`SendError`] holding `v` if the consumer is gone (also after it was
    /// `SIGKILL`ed while this future waited: noticed within 20 ms).
    ///
    /// # Cancel safety
    /// Cancel-safe: the item is written only inside the `poll` that completes
    /// the future. Dropping it before that pushes nothing and leaves no waker
    /// registered.
    pub fn push_async(&mut self, v: T) -> impl Future<Output = Result<(), SendError<T>>> + Send + '_
    where
        T: Send,
    {
        let mut hook = self.async_hook();
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |step| send_step(self.try_push(v), step)))
    }
}

impl<T: Pod> spsc::Consumer<T> {
    /// Takes the oldest item, waiting without blocking the thread while the
    /// ring is empty: the async twin of [`pop`](Self::pop).
    ///
    /// # Errors
    /// [`RecvError`] once the ring is empty and the producer is gone.
    ///
    /// # Cancel safety
    /// Cancel-safe: an item is taken only inside the `poll` that returns it.
    /// Dropping the future before completion consumes nothing (the next
    /// `pop_async` gets the same item) and leaves no waker registered.
    pub fn pop_async(&mut self) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        let mut hook = self.async_hook();
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |step| recv_step(self.try_pop(), step)))
    }

    /// This consumer as a [`futures_core::Stream`] of items, ending when the
    /// producer is gone and everything it pushed was taken.
    pub fn stream(&mut self) -> impl Stream<Item = T> + Send + '_
    where
        T: Send,
    {
        let hook = self.async_hook();
        RecvStream::new(self, hook, |c, step| recv_step(c.try_pop(), step))
    }
}

impl<T: Pod> mpmc::Sender<T> {
    /// Sends `v`, waiting without blocking the thread while the ring is full:
    /// the async twin of [`send`](Self::send).
    ///
    /// # Errors
    /// [`SendError`] holding `v` if the ring was closed or every receiver is
    /// gone.
    ///
    /// # Cancel safety
    /// Cancel-safe: a slot is claimed and written only inside the `poll` that
    /// completes the future. Dropping it before that sends nothing, claims no
    /// slot and leaves no waker registered.
    pub fn send_async(&self, v: T) -> impl Future<Output = Result<(), SendError<T>>> + Send + '_
    where
        T: Send,
    {
        let mut hook = self.async_hook();
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |step| send_step(self.try_send(v), step)))
    }
}

impl<T: Pod> mpmc::Receiver<T> {
    /// Takes the oldest item, waiting without blocking the thread while the
    /// ring is empty: the async twin of [`recv`](Self::recv).
    ///
    /// # Errors
    /// [`RecvError`] once the ring is empty and every sender is gone (or it
    /// was closed).
    ///
    /// # Cancel safety
    /// Cancel-safe: an item is claimed only inside the `poll` that returns it.
    /// Dropping the future before completion consumes nothing and leaves no
    /// waker registered.
    pub fn recv_async(&self) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        let mut hook = self.async_hook();
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |step| recv_step(self.try_recv(), step)))
    }

    /// This receiver as a [`futures_core::Stream`] of items, ending when
    /// every sender is gone (or the ring was closed) and it is drained.
    pub fn stream(&self) -> impl Stream<Item = T> + Send + '_
    where
        T: Send,
    {
        RecvStream::new(self, self.async_hook(), |r, step| recv_step(r.try_recv(), step))
    }
}

impl<T: Pod> broadcast::Publisher<T> {
    /// Sends `msg`, waiting without blocking the thread while a lossless ring
    /// is full (an overwrite ring never waits): the async twin of
    /// [`send`](Self::send). Dead subscribers are detached while it waits,
    /// once per 20 ms liveness slice, as the blocking form does.
    ///
    /// # Errors
    /// [`SendError`] holding `msg` if the ring is poisoned.
    ///
    /// # Cancel safety
    /// Cancel-safe: the message is written and published only inside the
    /// `poll` that completes the future. Dropping it before that sends
    /// nothing and leaves no waker registered.
    pub fn send_async(&mut self, msg: T) -> impl Future<Output = Result<(), SendError<T>>> + Send + '_
    where
        T: Send,
    {
        let mut hook = self.async_hook();
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |step| send_step(self.try_send(msg), step)))
    }
}

impl<T: Pod> broadcast::Subscriber<T> {
    /// Receives the next message, waiting without blocking the thread while
    /// there is none: the async twin of [`recv`](Self::recv).
    ///
    /// # Errors
    /// [`RecvError`] once everything is read and the publisher is gone
    /// (dropped, or its process died: noticed within 20 ms), or the ring is
    /// poisoned.
    ///
    /// # Cancel safety
    /// Cancel-safe: this subscriber's position moves only inside the `poll`
    /// that returns a message. Dropping the future before completion skips
    /// nothing (the next receive gets the same message) and leaves no waker
    /// registered.
    pub fn recv_async(&mut self) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        let mut hook = self.async_hook();
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |step| recv_step(self.try_recv(), step)))
    }

    /// This subscriber as a [`futures_core::Stream`] of messages, ending once
    /// the publisher is gone and everything it sent was received.
    pub fn stream(&mut self) -> impl Stream<Item = T> + Send + '_
    where
        T: Send,
    {
        let hook = self.async_hook();
        RecvStream::new(self, hook, |s, step| recv_step(s.try_recv(), step))
    }
}
