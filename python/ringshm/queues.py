"""``Queue``, ``JoinableQueue`` and ``SimpleQueue`` on a ringshm ``ByteQueue``.

Items are pickled into one message each; ``put_bytes``/``get_bytes`` carry
bytes unpickled, so a named queue is the Rust ``ByteQueue`` of that name.

Storage follows what is queued: a small message (up to 232 bytes) lives in
its slot, a longer one in the slot's extent of an arena that is address
space only until a message uses it, and whose pages are given back once a
big message is got. So a queue takes messages of up to ``max_message_bytes``
(by default ``DEFAULT_MAX_MESSAGE_BYTES``, 64 MiB, for queues of up to 4096
items; longer queues get a smaller default so that one queue never maps more
than 256 GiB of address space) without reserving ``maxsize`` times that.
A message longer than ``max_message_bytes`` still goes through a spill area
of its own (a byte array named in a marker message, removed by the ``get``
that takes it), so any size can be put, as with ``multiprocessing.Queue``;
such messages are rare enough that the extra segment does not matter.
"""

import queue as _queue
import time

from . import _common
from . import _ringshm as _rs

__all__ = ["Queue", "JoinableQueue", "SimpleQueue", "DEFAULT_MAXSIZE", "DEFAULT_MAX_MESSAGE_BYTES"]

#: The bound of a queue created with ``maxsize`` 0 or omitted.
DEFAULT_MAXSIZE = 4096
#: The longest message a queue of up to ``_ARENA_BUDGET // 64 MiB`` (4096)
#: items holds by default (longer ones are spilled).
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
#: Address space of one queue's arena, at most, with the default
#: ``max_message_bytes`` (a process has 128 TiB of it).
_ARENA_BUDGET = 1 << 38
#: The default ``max_message_bytes`` of very long queues, at least.
_MIN_MAX_MESSAGE = 4096
#: The ``max_message_bytes`` of a default queue when the default arena
#: cannot be mapped.
_FALLBACK_MAX_MESSAGE = 64 << 10


def _shape(maxsize, max_message_bytes):
    capacity = DEFAULT_MAXSIZE if maxsize is None or maxsize <= 0 else int(maxsize)
    if max_message_bytes is None:
        slots = 1 << max(1, (capacity - 1).bit_length())
        max_message_bytes = max(_MIN_MAX_MESSAGE, min(DEFAULT_MAX_MESSAGE_BYTES, _ARENA_BUDGET // slots))
    return capacity, int(max_message_bytes)


class Queue(_rs.ByteQueue):
    """``multiprocessing.Queue(maxsize=0)``: a bounded queue of pickled
    objects shared by any processes; ``Queue(maxsize, name="jobs")`` makes a
    named one that ``Queue.open("jobs")`` (or Rust's
    ``ByteQueue::open("jobs")``) reaches.

    ``maxsize`` 0 (or omitted) means a bound of ``DEFAULT_MAXSIZE`` items.
    ``qsize()`` is exact. ``put``/``get`` pickle, ``put_bytes``/``get_bytes``
    carry bytes as they are. Messages of up to ``max_message_bytes`` (by
    default 64 MiB, less for queues longer than 4096) stay in the queue,
    whose memory follows what is queued; longer ones go through a spill area
    of their own. ``close()`` ends putting and getting
    through this object only (``close_all()`` ends putting for every process);
    ``join_thread()``/``cancel_join_thread()`` do nothing (there is no feeder
    thread: a put is in the queue when it returns). ``get`` raises
    ``EOFError`` once the queue is empty and every process that could put
    (its creator included) is gone.
    """

    _kind = "q"

    def __new__(cls, maxsize=0, *, name=None, max_message_bytes=None, ctx=None):
        capacity, slot = _shape(maxsize, max_message_bytes)
        name = name or _common.new_name(cls._kind)
        try:
            self = super(Queue, cls).__new__(cls, name, capacity, slot, True)
        except OSError as e:
            # A process whose address space is limited (``ulimit -v``) cannot
            # map the default arena: fall back to a small one (longer
            # messages spill).
            if type(e) is not OSError or max_message_bytes is not None or slot <= _FALLBACK_MAX_MESSAGE:
                raise
            self = super(Queue, cls).__new__(cls, name, capacity, _FALLBACK_MAX_MESSAGE, True)
        return _common.created(self)

    @classmethod
    def open(cls, name):
        """Attaches to the existing queue ``name`` (created by any process,
        Python or Rust)."""
        self = _rs.ByteQueue.__new__(cls, name, 0, 0, False)
        self._open_extra()
        return self

    def _open_extra(self):
        pass

    def __reduce__(self):
        return (type(self).open, (self.name,))

    def __repr__(self):
        return "<%s name=%r qsize=%d>" % (type(self).__name__, self.name, self.qsize())

    @property
    def maxsize(self):
        return self.capacity


class SimpleQueue(Queue):
    """``multiprocessing.SimpleQueue``: ``get``, ``put``, ``empty``, ``close``."""

    _kind = "sq"

    def __new__(cls, *, name=None, ctx=None):
        return Queue.__new__(cls, 0, name=name)


class JoinableQueue(Queue):
    """``multiprocessing.JoinableQueue``: a ``Queue`` that counts unfinished
    tasks; ``task_done()`` finishes one, ``join()`` waits until none is left.
    The count lives in a companion ``Value`` named ``NAME.tasks``.
    """

    _kind = "jq"

    def __new__(cls, maxsize=0, *, name=None, max_message_bytes=None, ctx=None):
        self = Queue.__new__(cls, maxsize, name=name, max_message_bytes=max_message_bytes)
        self._tasks = _rs.Value.create("i64", self.name + ".tasks", 0)
        _common.created(self, self.name + ".tasks")
        return self

    def _open_extra(self):
        self._tasks = _rs.Value.open("i64", self.name + ".tasks")

    def _counted(self, put, *args):
        self._tasks.fetch_add(1)
        try:
            put(self, *args)
        except BaseException:
            self._tasks.fetch_add(-1)
            raise

    def put(self, obj, block=True, timeout=None):
        self._counted(_rs.ByteQueue.put, obj, block, timeout)

    def put_nowait(self, obj):
        self._counted(_rs.ByteQueue.put, obj, False, None)

    def put_bytes(self, buf, block=True, timeout=None):
        self._counted(_rs.ByteQueue.put_bytes, buf, block, timeout)

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
