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

    def __repr__(self):
        # As multiprocessing's "<Event at 0x... set>", with the name.
        return "<%s at %r %s>" % (type(self).__name__, self.name, "set" if self.is_set() else "unset")


#: ``Condition``'s companion array: parties waiting, wake-ups granted.
_CV_WAITING, _CV_GRANTED = 0, 1
#: The longest slice of a ``Condition.wait`` (the extension checks for
#: Ctrl-C at least as often).
_CV_SLICE = 0.05
_CV_ALL = 1 << 62
#: Waiters a ringshm condition wakes one by one (the others all at once).
_CV_SLOTS = 64


class Condition(_rs.Condition):
    """``multiprocessing.Condition``: a condition variable with its own
    robust lock, re-entrant per thread like the default ``RLock``.

    ``lock`` must be ``None``: a ringshm condition owns its lock.

    ``notify(n)`` wakes ``n`` of the parties waiting then (all of them if
    fewer wait), as ``threading.Condition`` does. A companion array
    ``NAME.cv`` counts, under the condition's lock, the parties waiting and
    the wake-ups granted to them but not yet taken: a waiter takes a grant
    when it wakes, and a waiter that was between two slices of its wait
    (re-taking the lock to look for Ctrl-C) when the notification came takes
    it at its next slice instead of missing it. A waiter whose process dies
    while waiting stays counted: a later notification may then wake a
    waiter spuriously. Waiters of Rust processes are not counted: a
    notification wakes them too, as Rust's ``notify`` does (a counted waiter
    it wakes without a grant waits on). A condition made by Rust has no
    companion.
    """

    def __new__(cls, lock=None, *, name=None, ctx=None):
        if lock is not None:
            raise TypeError(
                "ringshm.Condition owns its lock: create it without one (it is re-entrant like an RLock)"
            )
        self = _common.created(_rs.Condition.__new__(cls, name or _common.new_name("cond")))
        self._cv = _rs.Array.create("i64", self.name + ".cv", [0, 0])
        _common.created(self, self.name + ".cv")
        return self

    @classmethod
    def open(cls, name):
        """Attaches to the existing condition ``name``."""
        self = _open_by_name(cls, name)
        try:
            self._cv = _rs.Array.open("i64", name + ".cv")
        except OSError:
            self._cv = None  # a condition made by Rust
        return self

    def __reduce__(self):
        return (type(self).open, (self.name,))

    __repr__ = _repr

    def _is_owned(self):
        return self.is_owned()

    def _counts(self):
        # From shared memory: keep them in range whatever another process wrote.
        waiting = max(0, self._cv.get(_CV_WAITING))
        return waiting, min(max(0, self._cv.get(_CV_GRANTED)), waiting)

    def wait(self, timeout=None):
        """Releases the lock, waits until notified or ``timeout`` seconds
        pass, and takes the lock again; ``False`` if it timed out."""
        cv = self._cv
        if cv is None:
            return _rs.Condition.wait(self, timeout)
        if not self.is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        waiting, _ = self._counts()
        cv.set(_CV_WAITING, waiting + 1)
        try:
            while True:
                left = _CV_SLICE if deadline is None else min(_CV_SLICE, max(0.0, deadline - time.monotonic()))
                # With the lock held again, whether notified or not.
                _rs.Condition.wait(self, left)
                _, granted = self._counts()
                if granted > 0:
                    cv.set(_CV_GRANTED, granted - 1)
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
        finally:
            # Held here (also after KeyboardInterrupt): one waiter fewer.
            waiting, granted = self._counts()
            waiting = max(0, waiting - 1)
            cv.set(_CV_WAITING, waiting)
            cv.set(_CV_GRANTED, min(granted, waiting))

    def notify(self, n=1):
        """Wakes ``n`` waiting parties (fewer if fewer wait)."""
        cv = self._cv
        if cv is None:
            return _rs.Condition.notify(self, n) if n < _CV_SLOTS else _rs.Condition.notify_all(self)
        if not self.is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        waiting, granted = self._counts()
        more = min(n, waiting - granted)
        if more > 0:
            cv.set(_CV_GRANTED, granted + more)
        # Wakes waiters of Rust processes too (uncounted). A counted waiter
        # it wakes without a grant waits on.
        if n >= _CV_SLOTS:
            _rs.Condition.notify_all(self)
        elif n > 0:
            _rs.Condition.notify(self, n)

    def notify_all(self):
        """Wakes every waiting party."""
        self.notify(_CV_ALL)

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

    ``wait()`` returns the party's arrival index, different in each party
    of a round (``0..parties-1``, kept in a companion value ``NAME.idx``);
    the last to arrive runs ``action``. A barrier made by Rust has no
    companion: its ``wait()`` returns 0 in the last to arrive and a number
    in ``1..parties-1`` (not necessarily different) in the others. A party
    whose process dies while waiting breaks the barrier: the others get
    ``threading.BrokenBarrierError`` instead of hanging.
    """

    _rs_class = _rs.Barrier

    def __init__(self, parties, action=None, timeout=None, *, name=None, ctx=None):
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._setup(_rs.Barrier.create(name or _common.new_name("barrier"), parties))
        _common.created(self)
        self._tickets = _rs.Value.create("i64", self._name + ".idx", 0)
        _common.created(self, self._name + ".idx")
        self._action = action
        self._timeout = timeout

    @classmethod
    def open(cls, name, action=None, timeout=None):
        self = super(Barrier, cls).open(name)
        try:
            self._tickets = _rs.Value.open("i64", name + ".idx")
        except OSError:
            self._tickets = None  # a barrier made by Rust: no arrival tickets
        self._action = action
        self._timeout = timeout
        return self

    def __reduce__(self):
        return (type(self).open, (self._name, self._action, self._timeout))

    def wait(self, timeout=None):
        """Waits until every party waits; returns this party's arrival
        index, unique in ``0..parties-1`` for each round (as
        ``threading.Barrier.wait``). ``BrokenBarrierError`` if the barrier
        is or becomes broken (aborted, reset, timed out, or a waiting party
        died)."""
        if timeout is None:
            timeout = self._timeout
        parties = self.parties
        if self._tickets is not None:
            # Tickets of one round are consecutive: a party takes the next
            # round's ticket only after every party of this round took its
            # own (and arrived). reset() starts them at 0 again.
            index = self._tickets.fetch_add(1) % parties
        else:
            index = None
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
        if index is not None:
            return index
        if leader:
            return 0
        return min(max(before, 1), parties - 1)

    def abort(self):
        """Breaks the barrier: current and future waits raise
        ``BrokenBarrierError`` until ``reset()``."""
        self._h.abort()

    def reset(self):
        """Returns the barrier to its empty state; parties waiting now get
        ``BrokenBarrierError``."""
        if self._tickets is not None:
            self._tickets.store(0)
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
