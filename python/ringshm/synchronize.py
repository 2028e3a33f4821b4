"""``Lock``, ``RLock``, ``Semaphore``, ``BoundedSemaphore``, ``Event``,
``Condition`` and ``Barrier`` on ringshm's robust primitives.

Every object takes ``name=`` (any process, Python or Rust, then opens it by
that name) and has a classmethod ``open(name)``; it pickles as its name.
A ``Lock``, ``RLock`` or ``Condition`` whose holder's process died holding
it is taken over by the next ``acquire``, which succeeds, sets the object's
``owner_died`` attribute and issues an ``OwnerDiedWarning`` (a
``RuntimeWarning``).
"""

import threading
import time

from . import _common
from . import _ringshm as _rs
from ._common import OwnerDiedWarning

__all__ = ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier", "OwnerDiedWarning"]


class _Named(object):
    _rs_class = None
    _kind = None

    def _setup(self, h):
        self._h = h
        self._name = h.name

    @classmethod
    def open(cls, name):
        """Attaches to the existing object ``name``."""
        self = cls.__new__(cls)
        self._setup(cls._rs_class.open(name))
        return self

    def __reduce__(self):
        return (type(self).open, (self._name,))

    @property
    def name(self):
        """The segment name."""
        return self._name

    def __repr__(self):
        return "<%s name=%r>" % (type(self).__name__, self._name)


class _RobustLock(_Named):
    owner_died = False

    def acquire(self, block=True, timeout=None):
        """Acquires; ``False`` if that did not happen (``block=False``, or
        at the timeout). A lock taken over from a dead holder is acquired
        all the same, with an ``OwnerDiedWarning``."""
        r = self._h.acquire(block, timeout)
        if r is None:
            return False
        self.owner_died = r
        if r:
            _common.warn_owner_died(self)
        return True

    def release(self):
        self._h.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


class Lock(_RobustLock):
    """``multiprocessing.Lock``: a robust, non-re-entrant lock. ``release``
    from another thread of the holding process is allowed; ``ValueError``
    if this object does not hold it."""

    _rs_class = _rs.Lock

    def __init__(self, *, name=None, ctx=None):
        self._setup(_rs.Lock.create(name or _common.new_name("lock")))

    def __repr__(self):
        return "<Lock name=%r %s>" % (self._name, "locked" if self._h.is_locked() else "unlocked")


class RLock(_RobustLock):
    """``multiprocessing.RLock``: a robust lock the holding thread may
    acquire again; ``RuntimeError`` if released by a thread that does not
    hold it."""

    _rs_class = _rs.RLock

    def __init__(self, *, name=None, ctx=None):
        self._setup(_rs.RLock.create(name or _common.new_name("rlock")))

    def _is_owned(self):
        return self._h.is_owned()

    def _count(self):
        return self._h.count()


class Semaphore(_Named):
    """``multiprocessing.Semaphore(value=1)``. Permits held by a process
    that dies come back to the pool."""

    _rs_class = _rs.Semaphore

    def __init__(self, value=1, *, name=None, ctx=None):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._setup(self._rs_class.create(name or _common.new_name("sem"), value))

    def acquire(self, block=True, timeout=None):
        return self._h.acquire(block, timeout)

    def release(self, n=1):
        for _ in range(n):
            self._h.release()

    def get_value(self):
        return self._h.get_value()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        return "<%s name=%r value=%d>" % (type(self).__name__, self._name, self.get_value())


class BoundedSemaphore(Semaphore):
    """``multiprocessing.BoundedSemaphore``: ``ValueError`` on a release
    above the initial value."""

    _rs_class = _rs.BoundedSemaphore


class Event(_Named):
    """``multiprocessing.Event``."""

    _rs_class = _rs.Event

    def __init__(self, *, name=None, ctx=None):
        self._setup(_rs.Event.create(name or _common.new_name("event")))

    def is_set(self):
        return self._h.is_set()

    def set(self):
        self._h.set()

    def clear(self):
        self._h.clear()

    def wait(self, timeout=None):
        """Waits until set; ``False`` at the timeout."""
        return self._h.wait(timeout)


class Condition(_Named):
    """``multiprocessing.Condition``: a condition variable with its own
    robust lock, re-entrant per thread like the default ``RLock``.

    ``lock`` must be ``None``: a ringshm condition owns its lock.
    """

    _rs_class = _rs.Condition
    owner_died = False

    def __init__(self, lock=None, *, name=None, ctx=None):
        if lock is not None:
            raise TypeError(
                "ringshm.Condition owns its lock: create it without one (it is re-entrant like an RLock)"
            )
        self._setup(_rs.Condition.create(name or _common.new_name("cond")))

    def acquire(self, block=True, timeout=None):
        r = self._h.acquire(block, timeout)
        if r is None:
            return False
        self.owner_died = r
        if r:
            _common.warn_owner_died(self)
        return True

    def release(self):
        self._h.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def _is_owned(self):
        return self._h.is_owned()

    def wait(self, timeout=None):
        """Releases the lock, waits for ``notify``, takes the lock again;
        ``False`` at the timeout."""
        notified, died = self._h.wait(timeout)
        if died:
            self.owner_died = True
            _common.warn_owner_died(self)
        return notified

    def wait_for(self, predicate, timeout=None):
        """Waits until ``predicate()`` is true; returns its last value."""
        endtime = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = time.monotonic() + waittime
                else:
                    waittime = endtime - time.monotonic()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n=1):
        self._h.notify(n)

    def notify_all(self):
        self._h.notify_all()

    notifyAll = notify_all


class Barrier(_Named):
    """``multiprocessing.Barrier(parties, action=None, timeout=None)``.

    ``wait()`` returns 0 in exactly one party per round (the last to arrive,
    which runs ``action``), and a number in ``1..parties-1`` in the others.
    A party whose process dies while waiting breaks the barrier: the others
    get ``threading.BrokenBarrierError`` instead of hanging.
    """

    _rs_class = _rs.Barrier

    def __init__(self, parties, action=None, timeout=None, *, name=None, ctx=None):
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._setup(_rs.Barrier.create(name or _common.new_name("barrier"), parties))
        self._action = action
        self._timeout = timeout

    @classmethod
    def open(cls, name, action=None, timeout=None):
        self = super(Barrier, cls).open(name)
        self._action = action
        self._timeout = timeout
        return self

    def __reduce__(self):
        return (type(self).open, (self._name, self._action, self._timeout))

    def wait(self, timeout=None):
        if timeout is None:
            timeout = self._timeout
        before = self._h.n_waiting
        leader = self._h.wait(timeout)
        if self._action is not None:
            # Everyone waits again while the last to arrive runs the action,
            # so that nobody goes on before it is done.
            if leader:
                try:
                    self._action()
                except BaseException:
                    self._h.abort()
                    raise
            self._h.wait(timeout)
        if leader:
            return 0
        return min(max(before, 1), self.parties - 1)

    def abort(self):
        self._h.abort()

    def reset(self):
        self._h.reset()

    @property
    def parties(self):
        return self._h.parties

    @property
    def n_waiting(self):
        return self._h.n_waiting

    @property
    def broken(self):
        return self._h.broken


BrokenBarrierError = threading.BrokenBarrierError
