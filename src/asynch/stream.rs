//! [`futures_core::Stream`] over a receiving handle.

use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;

use super::{Hook, Step, Waiter};

/// A receiver as a stream: each item is one async receive; the stream ends
/// at the first error (the other side is gone and everything it sent was
/// received, or the object was closed or found corrupted).
///
/// # Cancel safety
/// Dropping the stream, or the `next()` future of a combinator, between
/// items loses nothing: an item is taken only in the `poll_next` that
/// returns it.
pub(crate) struct RecvStream<'a, R, T, E> {
    rx: R,
    hook: Hook<'a>,
    waiter: Waiter,
    attempt: fn(&mut R, Step) -> Option<Result<T, E>>,
    done: bool,
}

impl<'a, R, T, E> RecvStream<'a, R, T, E> {
    /// A stream receiving from `rx` with `attempt`, sleeping as `hook` says.
    pub(crate) fn new(rx: R, hook: Hook<'a>, attempt: fn(&mut R, Step) -> Option<Result<T, E>>) -> Self {
        RecvStream { rx, hook, waiter: Waiter::new(), attempt, done: false }
    }
}

impl<R: Unpin, T, E> Stream for RecvStream<'_, R, T, E> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let (rx, attempt) = (&mut this.rx, this.attempt);
        match this.waiter.poll_op(cx, &mut this.hook, |step| attempt(rx, step)) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(v)) => Poll::Ready(Some(v)),
            Poll::Ready(Err(_)) => {
                this.done = true;
                Poll::Ready(None)
            }
        }
    }
}
