"""``Pipe()`` and ``Connection`` on a named ringshm ``Pipe``.

Each end of a ringshm pipe is held by one handle at a time (a kernel lock
tells the other end when it is gone, even after ``SIGKILL``). Python passes
ends between processes, so a ``Connection`` hands its end over when it is
pickled (under the spawn and forkserver start methods, or when it is sent
through a queue): the sending object lets the end go and becomes detached,
the unpickled copy takes it. A detached object takes its end back when it
is used again and the other process has let it go. While an end is being
handed over, or while a live process keeps an open (detached) copy of it,
the other end does not report end-of-file: a companion array ``NAME.h``
counts hand-overs in flight and records which processes hold copies. Under
the fork start method nothing is handed over: parent and child share the
end, as they share a pipe's file descriptor in ``multiprocessing``.
"""

import os
import pickle
import time
import weakref
from multiprocessing import BufferTooShort

from . import _common
from . import _ringshm as _rs

__all__ = ["Pipe", "Connection", "BufferTooShort", "DEFAULT_CAPACITY"]

#: Bytes buffered per direction by ``Pipe()`` (longer messages are spilled).
DEFAULT_CAPACITY = 256 * 1024
#: How long an end may be in flight between processes before the other end
#: stops waiting for it and reports end-of-file.
HANDOFF_TIMEOUT = 60.0

_PEND = {"A": 0, "B": 1}
#: The object of this process that holds each end, by (name, end). A forked
#: child inherits it: a copy of an end unpickled in a process that already
#: holds that end (through an object inherited across fork) takes the
#: handle over from that object instead of waiting for itself.
_holders = weakref.WeakValueDictionary()
#: Copies of one end that the companion array records (further copies work
#: but are not counted: the other end may then see end-of-file early).
COPY_SLOTS = 16


def _other(end):
    return "B" if end == "A" else "A"


def _alive(pid):
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


class _Handoffs(object):
    """The companion array ``NAME.h`` of a pipe made by Python.

    ``[pending A, pending B, since A, since B, copies of A..., copies of
    B...]``: ends in flight between processes (pickled, not yet unpickled)
    and when the last left (``time.monotonic_ns()``: CLOCK_MONOTONIC is
    system-wide), then ``COPY_SLOTS`` pids per end of the processes that
    hold an open ``Connection`` object for it, whether or not that object
    holds the end right now. The other end reports end-of-file only when
    the end is not held, not in flight, and no live process has an open copy
    of it: what a file descriptor's reference count gives
    ``multiprocessing``, with dead processes not counted.
    """

    def __init__(self, a):
        self._a = a

    @classmethod
    def create(cls, name):
        return cls(_rs.Array.create("i64", name + ".h", [0] * (4 + 2 * COPY_SLOTS), True))

    @classmethod
    def open(cls, name):
        try:
            return cls(_rs.Array.open("i64", name + ".h"))
        except OSError:
            return None  # a pipe made by Rust: no hand-overs to track

    def leaving(self, end):
        i = _PEND[end]
        self._a.set(2 + i, time.monotonic_ns())
        self._a.set(i, self._a.get(i) + 1)

    def arrived(self, end):
        i = _PEND[end]
        self._a.set(i, max(0, self._a.get(i) - 1))

    def in_flight(self, end):
        i = _PEND[end]
        if self._a.get(i) <= 0:
            return False
        return time.monotonic_ns() - self._a.get(2 + i) < HANDOFF_TIMEOUT * 1e9

    def _slots(self, end):
        base = 4 + _PEND[end] * COPY_SLOTS
        return range(base, base + COPY_SLOTS)

    def claim(self, end):
        pid = os.getpid()
        for j in self._slots(end):
            cur = self._a.get(j)
            if cur != 0 and (cur == pid or _alive(cur)):
                continue
            if cur != 0 and self._a.fetch_add(j, -cur) != cur:
                self._a.fetch_add(j, cur)
                continue
            if self._a.fetch_add(j, pid) == 0:
                return j
            self._a.fetch_add(j, -pid)
        return None

    def release(self, slot):
        if slot is not None:
            pid = os.getpid()
            if self._a.get(slot) == pid:
                self._a.fetch_add(slot, -pid)

    def has_copies(self, end, exclude=None):
        return any(
            j != exclude and self._a.get(j) > 0 and _alive(self._a.get(j)) for j in self._slots(end)
        )


class _Owner(object):
    """Removes a pipe's names once the creating process's two ``Connection``
    objects are gone (or at its exit)."""

    def __init__(self, name):
        self.name = name
        self._pid = os.getpid()
        for n in (name, name + ".h"):
            _common.register_created(n)

    def __del__(self):
        if os.getpid() != self._pid:
            return
        for n in (self.name, self.name + ".h"):
            try:
                _rs.unlink(n)
            except OSError:
                pass
            _common.forget_created(n)


def Pipe(duplex=True, *, name=None, capacity=DEFAULT_CAPACITY):
    """``multiprocessing.Pipe(duplex=True)``: two ``Connection``s.

    ``duplex=False``: the first only receives, the second only sends.
    ``name=`` names the pipe so that any process (Python or Rust) can attach
    to an end; the ends are ringshm's end A (first of a duplex pair) and
    end B. Messages longer than ``capacity`` bytes are spilled.
    """
    name = name or _common.new_name("pipe")
    owner = _Owner(name)
    a = _rs.Conn.create(name, capacity, duplex, True)
    h = _Handoffs.create(name)
    b = _rs.Conn.open(name, "B")
    ca = Connection._wrap(a, h, owner)
    cb = Connection._wrap(b, h, owner)
    ca._slot = h.claim("A")
    cb._slot = h.claim("B")
    return (ca, cb) if duplex else (cb, ca)


def _open(name, end="B"):
    """Attaches to end ``end`` (``"A"`` or ``"B"``) of the pipe ``name``.
    ``Pipe.open(name)`` gives end B, the end a Rust ``Pipe::open`` gives."""
    c = Connection.__new__(Connection)
    c._init(name, end, _Handoffs.open(name), None)
    c._take(arrived=False)
    if c._handoffs is not None:
        c._slot = c._handoffs.claim(end)
    return c


Pipe.open = _open


def _rebuild(name, end, closed):
    c = Connection.__new__(Connection)
    c._init(name, end, _Handoffs.open(name), None)
    if closed:
        c._closed = True
    else:
        if c._handoffs is not None:
            c._slot = c._handoffs.claim(end)
        c._take(arrived=True)
    return c


class Connection(object):
    """One end of a pipe: ``multiprocessing.connection.Connection``.

    ``send``/``recv`` pickle; ``send_bytes``/``recv_bytes``/
    ``recv_bytes_into`` carry bytes as they are (a Rust ``Pipe`` of the same
    name sees the same messages). ``recv`` raises ``EOFError`` once the
    other end is closed or its process died and everything it sent was
    received.
    """

    @classmethod
    def _wrap(cls, h, handoffs, owner):
        c = cls.__new__(cls)
        c._init(h.name, h.end, handoffs, owner)
        c._took(h, False)
        return c

    def _init(self, name, end, handoffs, owner):
        self._name = name
        self._end = end
        self._handoffs = handoffs
        self._owner = owner
        self._h = None
        self._slot = None
        self._closed = False
        self._readable = self._writable = True

    # -- hand-overs --------------------------------------------------------

    def _take(self, arrived, deadline=None):
        """Takes this object's end, waiting while another handle has it (or,
        for a detached object, while its end is in flight to another
        process, which must get it first)."""
        key = (self._name, self._end)
        other = _holders.get(key)
        if other is not None and other is not self and other._h is not None:
            h, other._h = other._h, None
            return self._took(h, arrived)
        pause = 0.0005
        while not arrived and self._handoffs is not None and self._handoffs.in_flight(self._end):
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        while True:
            try:
                h = _rs.Conn.open(self._name, self._end)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        return self._took(h, arrived)

    def _took(self, h, arrived):
        self._h = h
        _holders[(self._name, self._end)] = self
        self._readable, self._writable = h.readable, h.writable
        if arrived and self._handoffs is not None:
            self._handoffs.arrived(self._end)
        return h

    def _handle(self):
        if self._closed:
            raise OSError("handle is closed")
        h = self._h
        if h is None:
            h = self._take(arrived=False)
        return h

    def _peer_in_flight(self):
        """Whether the other end, though not held now, is still open
        somewhere: in flight between processes, or held by an open
        ``Connection`` object of a live process (which may take it back)."""
        if self._handoffs is None:
            return False
        peer = _other(self._end)
        return self._handoffs.in_flight(peer) or self._handoffs.has_copies(peer)

    def __reduce__(self):
        if self._h is not None:
            if self._handoffs is not None:
                self._handoffs.leaving(self._end)
            h, self._h = self._h, None
            h.close()
        return (_rebuild, (self._name, self._end, self._closed))

    # -- properties --------------------------------------------------------

    @property
    def name(self):
        """The pipe's segment name."""
        return self._name

    @property
    def end(self):
        """``"A"`` or ``"B"``: which end of the ringshm pipe this is."""
        return self._end

    @property
    def closed(self):
        return self._closed

    @property
    def readable(self):
        return self._readable

    @property
    def writable(self):
        return self._writable

    def fileno(self):
        raise OSError("a ringshm Connection has no file descriptor (use poll())")

    def __repr__(self):
        return "<Connection name=%r end=%s%s>" % (self._name, self._end, " closed" if self._closed else "")

    # -- sending -----------------------------------------------------------

    def _check_writable(self):
        if not self._writable:
            raise OSError("connection is read-only")

    def _send_msg(self, data):
        h = self._handle()
        self._check_writable()
        while True:
            try:
                return h.send_bytes(data)
            except BrokenPipeError:
                if not self._peer_in_flight():
                    raise
                time.sleep(0.002)

    def send_bytes(self, buf, offset=0, size=None):
        """Sends ``buf[offset:offset+size]`` as one message."""
        h = self._h
        if h is not None and offset == 0 and size is None and type(buf) is bytes:
            try:
                return h.send_bytes(buf)
            except BrokenPipeError:
                if not self._peer_in_flight():
                    raise
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast("B")
        n = len(m)
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        if type(buf) is bytes and offset == 0 and size == n:
            data = buf
        else:
            data = m[offset:offset + size].tobytes()
        self._send_msg(data)

    def send(self, obj):
        """Sends a picklable object."""
        h = self._h
        if h is not None:
            try:
                return h.send(obj)
            except BrokenPipeError:
                if not self._peer_in_flight():
                    raise
        self._send_msg(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))

    # -- receiving ---------------------------------------------------------

    def _check_readable(self):
        if not self._readable:
            raise OSError("connection is write-only")

    def _recv_msg(self, block=True, timeout=None):
        h = self._handle()
        self._check_readable()
        while True:
            try:
                m = h.recv_bytes(block, timeout)
            except EOFError:
                if not self._peer_in_flight():
                    raise
                time.sleep(0.002)
                continue
            return m

    def recv_bytes(self, maxlength=None):
        """Receives one message as bytes. ``EOFError`` at end-of-file; a
        message longer than ``maxlength`` closes the connection and raises
        ``OSError``, as in multiprocessing."""
        h = self._h
        if h is not None and maxlength is None and self._readable:
            try:
                return h.recv_bytes(True, None)
            except EOFError:
                if not self._peer_in_flight():
                    raise
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        m = self._recv_msg()
        if maxlength is not None and len(m) > maxlength:
            self.close()
            raise OSError("bad message length")
        return m

    def recv_bytes_into(self, buf, offset=0):
        """Receives one message into the writable buffer ``buf`` at byte
        ``offset``; returns its length. ``BufferTooShort`` (holding the
        message as ``args[0]``) if it does not fit."""
        with memoryview(buf) as m:
            itemsize = m.itemsize
            bytesize = itemsize * len(m)
            if offset < 0:
                raise ValueError("negative offset")
            elif offset > bytesize:
                raise ValueError("offset too large")
            data = self._recv_msg()
            size = len(data)
            if bytesize < offset + size:
                raise BufferTooShort(data)
            m.cast("B")[offset:offset + size] = data
            return size

    def recv(self):
        """Receives a pickled object."""
        h = self._h
        if h is not None and self._readable:
            try:
                return h.recv()
            except EOFError:
                if not self._peer_in_flight():
                    raise
        return pickle.loads(self._recv_msg())

    def poll(self, timeout=0.0):
        """Whether there is anything to receive (a message, or end-of-file),
        waiting at most ``timeout`` seconds (``None``: forever)."""
        h = self._handle()
        self._check_readable()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not h.poll(left):
                return False
            if not self._peer_in_flight() or not h.peer_gone():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    # -- closing -----------------------------------------------------------

    def close(self):
        """Closes this end: the other end receives what was sent, then
        end-of-file. A detached object (whose end was handed to another
        process) only marks itself closed."""
        self._closed = True
        h, self._h = self._h, None
        if h is not None:
            h.close()
        slot, self._slot = self._slot, None
        if self._handoffs is not None:
            self._handoffs.release(slot)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()
        if getattr(self, "_handoffs", None) is not None:
            self._handoffs.release(self._slot)

