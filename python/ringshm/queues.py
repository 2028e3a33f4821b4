"""``Queue``, ``JoinableQueue`` and ``SimpleQueue`` on a ringshm ``ByteQueue``.

Items are pickled into one message each; ``put_bytes``/``get_bytes`` carry
bytes unpickled, so a named queue is the Rust ``ByteQueue`` of that name.
Messages longer than a slot (``max_message_bytes``) go through a spill area
of their own (see ``_common.spill``), so any size can be put.
"""

import pickle
import queue as _queue
import time

from . import _common
from . import _ringshm as _rs

__all__ = ["Queue", "JoinableQueue", "SimpleQueue", "DEFAULT_MAXSIZE", "SLOT_BYTES"]

#: The bound of a queue created with ``maxsize`` 0 or omitted.
DEFAULT_MAXSIZE = 4096
#: Bytes a slot holds inline when the queue is not too long (longer
#: messages are spilled).
SLOT_BYTES = 2040
#: Inline bytes of all slots of one queue together, at most (long queues get
#: smaller slots).
_BUDGET = 32 << 20
_MIN_SLOT = 248


def _shape(maxsize, max_message_bytes):
    capacity = DEFAULT_MAXSIZE if maxsize is None or maxsize <= 0 else int(maxsize)
    if max_message_bytes is None:
        max_message_bytes = max(_MIN_SLOT, min(SLOT_BYTES, _BUDGET // capacity - 8))
    return capacity, int(max_message_bytes)


def _bytes(buf):
    return buf if type(buf) is bytes else bytes(memoryview(buf))


class Queue(object):
    """``multiprocessing.Queue(maxsize=0)``: a bounded queue of pickled
    objects shared by any processes; ``Queue(maxsize, name="jobs")`` makes a
    named one that ``Queue.open("jobs")`` (or Rust's
    ``ByteQueue::open("jobs")``) reaches.

    ``maxsize`` 0 (or omitted) means a bound of ``DEFAULT_MAXSIZE`` items.
    ``qsize()`` is exact. ``close()`` ends putting through this object only;
    ``join_thread()``/``cancel_join_thread()`` do nothing (there is no feeder
    thread: a put is in the queue when it returns).
    """

    _kind = "q"

    def __init__(self, maxsize=0, *, name=None, max_message_bytes=None, ctx=None):
        capacity, slot = _shape(maxsize, max_message_bytes)
        self._maxsize = maxsize if maxsize and maxsize > 0 else 0
        self._setup(_rs.ByteQueue.create(name or _common.new_name(self._kind), capacity, slot))

    def _setup(self, q):
        self._q = q
        self._name = q.name
        self._slot = q.max_message_bytes
        self._closed = False

    @classmethod
    def open(cls, name):
        """Attaches to the existing queue ``name`` (created by any process,
        Python or Rust)."""
        self = cls.__new__(cls)
        self._maxsize = 0
        self._setup(_rs.ByteQueue.open(name))
        self._open_extra()
        return self

    def _open_extra(self):
        pass

    def __reduce__(self):
        return (type(self).open, (self._name,))

    def __repr__(self):
        return "<%s name=%r qsize=%d>" % (type(self).__name__, self._name, self._q.qsize())

    @property
    def name(self):
        """The segment name."""
        return self._name

    @property
    def maxsize(self):
        return self._q.capacity

    @property
    def max_message_bytes(self):
        """The longest message held inline in a slot (longer ones are
        spilled)."""
        return self._slot

    @property
    def lost(self):
        """Items lost with processes killed in the middle of a put or get."""
        return self._q.lost

    def _check_closed(self):
        if self._closed:
            raise ValueError("Queue %r is closed" % (self._name,))

    def _put_msg(self, data, block, timeout):
        self._check_closed()
        if len(data) > self._slot:
            data = _common.spill(self._name, data)
        self._q.put(data, block, timeout)

    def put(self, obj, block=True, timeout=None):
        """Puts ``obj`` (pickled); ``queue.Full`` if there is no room."""
        self._put_msg(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL), block, timeout)

    def put_nowait(self, obj):
        return self.put(obj, False)

    def put_bytes(self, buf, block=True, timeout=None):
        """Puts the bytes of ``buf`` as they are (no pickling)."""
        self._put_msg(_bytes(buf), block, timeout)

    def _get_msg(self, block, timeout):
        self._check_closed()
        return _common.unspill(self._q.get(block, timeout))

    def get(self, block=True, timeout=None):
        """Takes the oldest item; ``queue.Empty`` if there is none.
        ``EOFError`` if it is empty and every process that could put is gone."""
        return pickle.loads(self._get_msg(block, timeout))

    def get_nowait(self):
        return self.get(False)

    def get_bytes(self, block=True, timeout=None):
        """Takes the oldest message as bytes (no unpickling)."""
        return self._get_msg(block, timeout)

    def qsize(self):
        return self._q.qsize()

    def empty(self):
        return self._q.empty()

    def full(self):
        return self._q.full()

    def close(self):
        """No more puts through this object (other handles are unaffected)."""
        self._closed = True

    def join_thread(self):
        """Does nothing: there is no feeder thread."""

    def cancel_join_thread(self):
        """Does nothing: there is no feeder thread."""

    def __getstate__(self):  # pragma: no cover - __reduce__ is used
        raise TypeError("use pickle: a Queue pickles as its name")


class SimpleQueue(Queue):
    """``multiprocessing.SimpleQueue``: ``get``, ``put``, ``empty``, ``close``."""

    _kind = "sq"

    def __init__(self, *, name=None, ctx=None):
        Queue.__init__(self, 0, name=name)

    def get(self):
        return Queue.get(self)

    def put(self, obj):
        return Queue.put(self, obj)


class JoinableQueue(Queue):
    """``multiprocessing.JoinableQueue``: a ``Queue`` that counts unfinished
    tasks; ``task_done()`` finishes one, ``join()`` waits until none is left.
    The count lives in a companion ``Value`` named ``NAME.tasks``.
    """

    _kind = "jq"

    def __init__(self, maxsize=0, *, name=None, max_message_bytes=None, ctx=None):
        Queue.__init__(self, maxsize, name=name, max_message_bytes=max_message_bytes)
        self._tasks = _rs.Value.create("i64", self._name + ".tasks", 0)

    def _open_extra(self):
        self._tasks = _rs.Value.open("i64", self._name + ".tasks")

    def _put_msg(self, data, block, timeout):
        self._tasks.fetch_add(1)
        try:
            Queue._put_msg(self, data, block, timeout)
        except BaseException:
            self._tasks.fetch_add(-1)
            raise

    def task_done(self):
        """Marks one item got from the queue as done; ``ValueError`` if
        called more often than items were put."""
        if self._tasks.fetch_add(-1) <= 0:
            self._tasks.fetch_add(1)
            raise ValueError("task_done() called too many times")

    @property
    def unfinished_tasks(self):
        return self._tasks.load()

    def join(self, timeout=None):
        """Waits until every item put was ``task_done``. With ``timeout``
        (an extension), returns ``False`` if that did not happen in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0001
        while self._tasks.load() > 0:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.005)
        return True


# Exceptions, as in multiprocessing.queues.
Full = _queue.Full
Empty = _queue.Empty
