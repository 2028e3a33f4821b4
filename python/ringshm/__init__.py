"""ringshm: ``multiprocessing``'s objects on lock-free rings in named shared
memory. Change one import::

    from ringshm import Process, Queue, Pipe, Lock   # was: from multiprocessing import ...

``Queue``, ``JoinableQueue``, ``SimpleQueue``, ``Pipe``, ``Value``,
``Array``, ``RawValue``, ``RawArray``, ``Lock``, ``RLock``, ``Semaphore``,
``BoundedSemaphore``, ``Event``, ``Condition`` and ``Barrier`` are
ringshm's; everything else (``Process``, ``current_process``, ``cpu_count``,
``set_start_method``, ``Pool``, ...) is ``multiprocessing``'s, re-exported so
that the import line is the only change. Every ringshm object takes
``name=``, has a classmethod ``open(name)``, and pickles as its name (fork,
spawn and forkserver start methods).
"""

import multiprocessing as _mp
import queue as _queue
import threading as _threading
from multiprocessing import (  # noqa: F401  (re-exported)
    AuthenticationError,
    BufferTooShort,
    Process,
    ProcessError,
    TimeoutError,
    active_children,
    cpu_count,
    current_process,
    freeze_support,
    get_all_start_methods,
    get_start_method,
    parent_process,
    set_start_method,
)

from ._common import OwnerDiedWarning
from .connection import Connection, Pipe
from .queues import JoinableQueue, Queue, SimpleQueue
from .sharedctypes import Array, RawArray, RawValue, Value
from .synchronize import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore

Full = _queue.Full
Empty = _queue.Empty
BrokenBarrierError = _threading.BrokenBarrierError

__version__ = "0.1.0"

__all__ = [
    "Queue",
    "JoinableQueue",
    "SimpleQueue",
    "Pipe",
    "Connection",
    "Value",
    "Array",
    "RawValue",
    "RawArray",
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Event",
    "Condition",
    "Barrier",
    "OwnerDiedWarning",
    "BufferTooShort",
    "BrokenBarrierError",
    "Full",
    "Empty",
    "Process",
    "ProcessError",
    "TimeoutError",
    "AuthenticationError",
    "active_children",
    "cpu_count",
    "current_process",
    "parent_process",
    "freeze_support",
    "get_context",
    "get_start_method",
    "get_all_start_methods",
    "set_start_method",
]


_SHARED = (
    "Queue", "JoinableQueue", "SimpleQueue", "Pipe", "Value", "Array", "RawValue", "RawArray",
    "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier",
)


class _Context(object):
    """A ``multiprocessing`` context (``Process``, ``get_start_method``, ...)
    whose shared objects are ringshm's."""

    def __init__(self, ctx):
        self._ctx = ctx

    def __getattr__(self, name):
        if name in _SHARED:
            return globals()[name]
        return getattr(self._ctx, name)

    def get_context(self, method=None):
        return _Context(self._ctx.get_context(method))

    def __repr__(self):
        return "<ringshm context over %r>" % (self._ctx,)


def get_context(method=None):
    """``multiprocessing.get_context(method)``, with ringshm's ``Queue``,
    ``Pipe``, ``Lock``, ... as the context's shared objects."""
    return _Context(_mp.get_context(method))


def __getattr__(name):
    # Anything else multiprocessing has (Pool, Manager, ...) is its own.
    try:
        return getattr(_mp, name)
    except AttributeError:
        raise AttributeError("module 'ringshm' has no attribute %r" % (name,)) from None
