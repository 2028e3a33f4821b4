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
    """Naming, opening and pickling shared by the wrappers below."""

    _rs_class = None

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


def _rs_base(cls):
    """The ``_ringshm`` class that ``cls`` derives from."""
    for c in cls.__mro__:
        if c.__module__ == "ringshm._ringshm":
            return c
    raise TypeError("%r is not a ringshm class" % (cls,))


def _open_by_name(cls, name):
    """Attaches a subclass of a ``_ringshm`` class to the object ``name``."""
    return _rs_base(cls).__new__(cls, name, create=False)


def _reduce_by_name(self):
    return (_open_by_name, (type(self), self.name))


def _repr(self):
    return "<%s name=%r>" % (type(self).__name__, self.name)


class Lock(_rs.Lock):
    """``multiprocessing.Lock``: a robust, non-re-entrant lock.

    ``acquire(block=True, timeout=None)``, ``release()``, ``with lock:``.
    ``release`` from another thread of the holding process is allowed;
    ``ValueError`` if this object does not hold it. A lock whose holder died
    holding it is taken over by the next ``acquire``, which returns ``True``,
    sets ``owner_died`` and issues an ``OwnerDiedWarning``.
    """

    def __new__(cls, *, name=None, ctx=None):
        return _common.created(_rs.Lock.__new__(cls, name or _common.new_name("lock")))

    open = classmethod(_open_by_name)
    __reduce__ = _reduce_by_name

    def __repr__(self):
        return "<Lock name=%r %s>" % (self.name, "locked" if self.is_locked() else "unlocked")


class RLock(_rs.RLock):
    """``multiprocessing.RLock``: a robust lock the holding thread may
    acquire again; ``RuntimeError`` if released by a thread that does not
    hold it. Robust as ``Lock``."""

    def __new__(cls, *, name=None, ctx=None):
        return _common.created(_rs.RLock.__new__(cls, name or _common.new_name("rlock")))

    open = classmethod(_open_by_name)
    __reduce__ = _reduce_by_name
    __repr__ = _repr

    def _is_owned(self):
        return self.is_owned()

    def _count(self):
        return self.count()


class Semaphore(_rs.Semaphore):
    """``multiprocessing.Semaphore(value=1)``: ``acquire(block, timeout)``,
    ``release()``, ``get_value()``, ``with sem:``. Permits held by a process
    that dies come back to the pool."""

    def __new__(cls, value=1, *, name=None, ctx=None):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        return _common.created(_rs_base(cls).__new__(cls, name or _common.new_name("sem"), value))

    @classmethod
    def open(cls, name):
        return _rs_base(cls).__new__(cls, name, 0, False)

    def __reduce__(self):
        return (type(self).open, (self.name,))

    def __repr__(self):
        return "<%s name=%r value=%d>" % (type(self).__name__, self.name, self.get_value())


class BoundedSemaphore(_rs.BoundedSemaphore):
    """``multiprocessing.BoundedSemaphore``: ``ValueError`` on a release
    above the initial value."""

    __new__ = Semaphore.__new__
    open = classmethod(Semaphore.open.__func__)
    __reduce__ = Semaphore.__reduce__
    __repr__ = Semaphore.__repr__


class Event(_rs.Event):
    """``multiprocessing.Event``: ``set``, ``clear``, ``is_set``,
    ``wait(timeout=None)``."""

    def __new__(cls, *, name=None, ctx=None):
        return _common.created(_rs.Event.__new__(cls, name or _common.new_name("event")))

    open = classmethod(_open_by_name)
    __reduce__ = _reduce_by_name
    __repr__ = _repr


class Condition(_rs.Condition):
    """``multiprocessing.Condition``: a condition variable with its own
    robust lock, re-entrant per thread like the default ``RLock``.

    ``lock`` must be ``None``: a ringshm condition owns its lock.
    """

    def __new__(cls, lock=None, *, name=None, ctx=None):
        if lock is not None:
            raise TypeError(
                "ringshm.Condition owns its lock: create it without one (it is re-entrant like an RLock)"
            )
        return _common.created(_rs.Condition.__new__(cls, name or _common.new_name("cond")))

    open = classmethod(_open_by_name)
    __reduce__ = _reduce_by_name
    __repr__ = _repr

    def _is_owned(self):
        return self.is_owned()

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

    def notifyAll(self):
        self.notify_all()


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
        _common.created(self)
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
