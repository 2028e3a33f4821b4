//! `_async` twins of the queue calls: `put_async` / `get_async` on
//! [`Queue`], [`JoinableQueue`] (through `Deref`) and [`ByteQueue`], and
//! [`JoinableQueue::join_async`].

use core::future::{poll_fn, Future};

use bytemuck::Pod;
use futures_core::Stream;

use super::stream::RecvStream;
use super::{Step, Waiter};
use crate::error::{GetError, PutBytesError, PutError};
use crate::queue::{ByteQueue, JoinableQueue, Queue};

/// Maps a `try_get` result: `Empty` waits (or ends once the producers are gone).
fn get_step<T>(r: Result<T, GetError>, step: Step) -> Option<Result<T, GetError>> {
    match r {
        Err(GetError::Empty) if step.gone => Some(Err(GetError::Disconnected)),
        Err(GetError::Empty) => None,
        r => Some(r),
    }
}

impl<T: Pod + Send> Queue<T> {
    /// Puts `v`, waiting without blocking the thread while the queue is full:
    /// the async twin of [`put`](Self::put) (also on a [`JoinableQueue`],
    /// where it counts one task as `put` does).
    ///
    /// # Errors
    /// As [`put`](Self::put): [`PutError::Closed`] after `close`,
    /// [`PutError::Disconnected`] if every consumer is gone; both hold `v`.
    ///
    /// # Cancel safety
    /// Cancel-safe: the item is put only inside the `poll` that completes the
    /// future. Dropping it before that puts nothing (and counts no task),
    /// claims no slot and leaves no waker registered.
    pub fn put_async(&self, v: T) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        let mut hook = self.async_hook(true);
        let mut w = Waiter::new();
        poll_fn(move |cx| {
            w.poll_op(cx, &mut hook, |step| match self.try_put(v) {
                Err(PutError::Full(v)) if step.gone => Some(Err(PutError::Disconnected(v))),
                Err(PutError::Full(_)) => None,
                r => Some(r),
            })
        })
    }

    /// Takes the oldest item, waiting without blocking the thread while the
    /// queue is empty: the async twin of [`get`](Self::get).
    ///
    /// # Errors
    /// As [`get`](Self::get): [`GetError::Disconnected`] once the queue is
    /// empty and closed, or every producer is gone.
    ///
    /// # Cancel safety
    /// Cancel-safe: an item is taken only inside the `poll` that returns it.
    /// Dropping the future before completion (say, in a
    /// `tokio::time::timeout` or a `select!` branch that lost) consumes
    /// nothing: the item stays for the next `get`, in order.
    ///
    /// ```
    /// # let name = format!("doc-get-async-{}", std::process::id());
    /// let q = ringshm::Queue::<u64>::create(&name, 4).unwrap();
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// rt.block_on(async {
    ///     // Nothing there: the timeout drops the waiting future, which took nothing.
    ///     let r = tokio::time::timeout(std::time::Duration::from_millis(5), q.get_async()).await;
    ///     assert!(r.is_err());
    ///     q.put_async(7).await.unwrap();
    ///     assert_eq!(q.get_async().await.unwrap(), 7);
    /// });
    /// ```
    pub fn get_async(&self) -> impl Future<Output = Result<T, GetError>> + Send + '_ {
        let mut hook = self.async_hook(false);
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |step| get_step(self.try_get(), step)))
    }

    /// The queue as a [`futures_core::Stream`] of items, ending when the
    /// queue is closed or every producer is gone, and it is drained.
    pub fn stream(&self) -> impl Stream<Item = T> + Send + '_ {
        RecvStream::new(self, self.async_hook(false), |q, step| get_step(q.try_get(), step))
    }
}

impl<T: Pod + Send> JoinableQueue<T> {
    /// Waits without blocking the thread until every task put so far is done:
    /// the async twin of [`join`](Self::join).
    ///
    /// # Cancel safety
    /// Cancel-safe: waiting changes nothing; dropping the future leaves no
    /// waker registered.
    pub fn join_async(&self) -> impl Future<Output = ()> + Send + '_ {
        let mut hook = self.async_join_hook();
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |_| (self.unfinished_tasks() == 0).then_some(())))
    }
}

impl ByteQueue {
    /// Puts `msg`, waiting without blocking the thread while the queue is
    /// full: the async twin of [`put`](Self::put).
    ///
    /// # Errors
    /// As [`put`](Self::put): [`PutBytesError::TooLarge`],
    /// [`PutBytesError::Closed`], [`PutBytesError::Disconnected`].
    ///
    /// # Cancel safety
    /// Cancel-safe: the message is copied in only inside the `poll` that
    /// completes the future; dropping it before that puts nothing.
    pub fn put_async<'a>(&'a self, msg: &'a [u8]) -> impl Future<Output = Result<(), PutBytesError>> + Send + 'a {
        let mut hook = self.async_hook(true);
        let mut w = Waiter::new();
        poll_fn(move |cx| {
            w.poll_op(cx, &mut hook, |step| match self.try_put(msg) {
                Err(PutBytesError::Full) if step.gone => Some(Err(PutBytesError::Disconnected)),
                Err(PutBytesError::Full) => None,
                r => Some(r),
            })
        })
    }

    /// Takes the oldest message, waiting without blocking the thread while
    /// the queue is empty: the async twin of [`get`](Self::get).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Cancel safety
    /// Cancel-safe: a message is taken only inside the `poll` that returns
    /// it; dropping the future before that consumes nothing.
    pub fn get_async(&self) -> impl Future<Output = Result<Vec<u8>, GetError>> + Send + '_ {
        let mut hook = self.async_hook(false);
        let mut w = Waiter::new();
        poll_fn(move |cx| w.poll_op(cx, &mut hook, |step| get_step(self.try_get(), step)))
    }

    /// The queue as a [`futures_core::Stream`] of messages, ending when the
    /// queue is closed or every producer is gone, and it is drained.
    pub fn stream(&self) -> impl Stream<Item = Vec<u8>> + Send + '_ {
        RecvStream::new(self, self.async_hook(false), |q, step| get_step(q.try_get(), step))
    }
}
