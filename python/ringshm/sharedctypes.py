"""``Value``, ``Array``, ``RawValue`` and ``RawArray`` on ringshm's
``Value<T>`` and ``Array<T>``.

Typecodes map to Rust element types (``Value('i')`` is ``Value<i32>``,
``Array('d')`` is ``Array<f64>``, ``Array('c', b'hello')`` is
``Array<u8>``); ctypes types (``ctypes.c_int``, ...) are accepted too.
"""

import ctypes

from . import _common
from . import _ringshm as _rs
from .synchronize import Lock, RLock

__all__ = ["Value", "Array", "RawValue", "RawArray", "TYPECODES"]

#: Python typecode -> Rust element type.
TYPECODES = {
    "b": "i8",
    "B": "u8",
    "c": "u8",
    "h": "i16",
    "H": "u16",
    "i": "i32",
    "I": "u32",
    "l": "i64" if ctypes.sizeof(ctypes.c_long) == 8 else "i32",
    "L": "u64" if ctypes.sizeof(ctypes.c_ulong) == 8 else "u32",
    "q": "i64",
    "Q": "u64",
    "f": "f32",
    "d": "f64",
}

_CTYPES = {
    ctypes.c_byte: "b",
    ctypes.c_ubyte: "B",
    ctypes.c_char: "c",
    ctypes.c_short: "h",
    ctypes.c_ushort: "H",
    ctypes.c_int: "i",
    ctypes.c_uint: "I",
    ctypes.c_long: "l",
    ctypes.c_ulong: "L",
    ctypes.c_longlong: "q",
    ctypes.c_ulonglong: "Q",
    ctypes.c_float: "f",
    ctypes.c_double: "d",
}


def _typecode(typecode_or_type):
    t = _CTYPES.get(typecode_or_type, typecode_or_type)
    if t not in TYPECODES:
        raise TypeError(
            "unsupported typecode or type %r: use one of %s" % (typecode_or_type, " ".join(sorted(TYPECODES)))
        )
    return t


def _to_elem(tc, v):
    """A ``'c'`` element as its byte value: one character ``bytes`` or
    ``bytearray``, or an integer in ``0..255`` (as ctypes' ``c_char``)."""
    if tc == "c":
        if isinstance(v, (bytes, bytearray)) and len(v) == 1:
            return v[0]
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255:
            return v
        raise TypeError("one character bytes, bytearray or integer expected")
    return v


def _to_char(v):
    """``_to_elem('c', v)`` as the one-byte ``bytes`` the extension takes."""
    return bytes((_to_elem("c", v),))


def _from_elem(tc, v):
    return bytes((v,)) if tc == "c" else v


def _make_lock(lock, name):
    # None, as in multiprocessing: a new lock, like True.
    if lock is True or lock is None:
        return RLock(name=name + ".lock")
    if isinstance(lock, (Lock, RLock)):
        return lock
    raise AttributeError("%r has no method 'acquire'" % (lock,))


def _probe(cls, name, typecode):
    if typecode is not None:
        return _typecode(typecode), cls.open(TYPECODES[_typecode(typecode)], name)
    last = None
    for tc in ("i", "d", "q", "Q", "I", "B", "b", "h", "H", "f"):
        try:
            return tc, cls.open(TYPECODES[tc], name)
        except OSError as e:  # LayoutMismatch: another element type
            last = e
            if isinstance(e, (FileNotFoundError, PermissionError)):
                raise
    raise last


class RawValue(_rs.Value):
    """``multiprocessing.RawValue(typecode_or_type, *args)``: one shared
    number (or byte, for ``'c'``), without a lock. ``.value`` loads and
    stores atomically."""

    def __new__(cls, typecode_or_type, *args, name=None):
        tc = _typecode(typecode_or_type)
        init = args[0] if args else (b"\0" if tc == "c" else 0)
        if tc == "c":
            init = _to_char(init)
        self = _rs.Value.__new__(cls, TYPECODES[tc], name or _common.new_name("value"), init, tc == "c")
        self._typecode = tc
        return _common.created(self)

    @classmethod
    def open(cls, name, typecode=None):
        """Attaches to the value ``name`` (its element type is found by
        trying each, unless ``typecode`` is given)."""
        tcs = [_typecode(typecode)] if typecode is not None else ["i", "d", "q", "Q", "I", "B", "b", "h", "H", "f"]
        last = None
        for tc in tcs:
            try:
                self = _rs.Value.__new__(RawValue, TYPECODES[tc], name, None, tc == "c")
            except (FileNotFoundError, PermissionError):
                raise
            except OSError as e:  # LayoutMismatch: another element type
                last = e
                continue
            self._typecode = tc
            return self
        raise last

    def __reduce__(self):
        return (RawValue.open, (self.name, self._typecode))

    @property
    def typecode(self):
        return self._typecode

    def __repr__(self):
        return "<RawValue(%r, %r) name=%r>" % (self._typecode, self.value, self.name)


_int_add = int.__add__
_int_sub = int.__sub__


class _Loaded(int):
    """An integer read from ``Value.value``: adding an ``int`` to it or
    subtracting one from it gives a ``_Pending`` that ``Value.value = ...``
    applies as one atomic add, so ``v.value += n`` (and ``-=``) loses no
    update even when several processes do it at once. It pickles, compares
    and prints as an ``int``.

    Each value has its own subclass (see ``_arm``), which carries the
    value's ``_Pending`` subclasses: instances hold no attributes (no
    ``__dict__``), so a read or an ``n`` added costs one ``int`` subclass
    instance only."""

    __slots__ = ()
    #: This value's ``_Pending`` subclass, and its subclasses by amount
    #: (set on each value's subclass).
    _pending = None
    _pendings = None

    def __add__(self, other):
        if type(other) is int or type(other) is bool:
            try:
                return self._pendings[other](_int_add(self, other))
            except KeyError:
                return self._pending_new(_int_add(self, other), other)
        return _int_add(self, other)

    def __sub__(self, other):
        if type(other) is int or type(other) is bool:
            try:
                return self._pendings[-other](_int_sub(self, other))
            except KeyError:
                return self._pending_new(_int_sub(self, other), -other)
        return _int_sub(self, other)

    def _pending_new(self, v, delta):
        """``v``, to be stored as an atomic add of ``delta``: an instance of
        a subclass made for ``delta`` (one for each of the first
        ``_PENDING_KINDS`` amounts), else one holding it."""
        pendings = self._pendings
        if len(pendings) < _PENDING_KINDS:
            cls = pendings[delta] = type(
                "_Pending", (self._pending,), {"__module__": __name__, "__slots__": (), "_delta": delta}
            )
            return cls(v)
        p = self._pending(v)
        p._delta = delta
        return p

    def __reduce__(self):
        return (int, (int(self),))


class _Pending(int):
    """``loaded + n``: stored back into the same value as an atomic add of
    ``n`` (its ``_delta``)."""

    def __reduce__(self):
        return (int, (int(self),))


#: Typecodes whose ``v.value += n`` is an atomic add.
_ATOMIC_ADD = frozenset("bBhHiIlLqQ")
#: The amounts added for which a value makes its own ``_Pending`` subclass.
_PENDING_KINDS = 16


def _arm(obj):
    """Makes ``v.value += n`` one atomic add on the ``RawValue`` ``obj`` of
    a ``Value`` (integer typecodes): its own ``_Loaded`` and ``_Pending``
    subclasses; the extension takes an instance of the latter (or of its
    subclasses) as an add of its ``_delta``. Returns ``obj``."""
    if obj._typecode in _ATOMIC_ADD:
        pending = type("_Pending", (_Pending,), {"__module__": __name__})
        loaded = type(
            "_Loaded", (_Loaded,), {"__module__": __name__, "__slots__": (), "_pending": pending, "_pendings": {}}
        )
        obj._arm(loaded, pending)
    return obj


class _Synchronized(object):
    """The lock-carrying side of ``Value`` and ``Array``: ``get_lock()``,
    ``get_obj()``, ``acquire``/``release`` and ``with``."""

    @property
    def name(self):
        return self._obj.name

    def get_lock(self):
        return self._lock

    def get_obj(self):
        return self._obj

    def acquire(self, *args, **kwargs):
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        return self._lock.release()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)


class Value(_Synchronized):
    """``multiprocessing.Value(typecode_or_type, *args, lock=True)``: a
    shared number with a lock for compound updates (``get_lock()``, ``with
    v:``). ``lock=False`` returns a ``RawValue``; a ``Lock``/``RLock`` may be
    given. The lock of a named value is named ``NAME.lock``.

    Unlike in multiprocessing, ``v.value += n`` and ``v.value -= n`` on an
    integer value are one atomic add; hold ``v.get_lock()`` around other
    compound updates when several processes update the value.
    """

    def __new__(cls, typecode_or_type, *args, lock=True, name=None, ctx=None):
        if lock is False:
            return RawValue(typecode_or_type, *args, name=name)
        return object.__new__(cls)

    def __init__(self, typecode_or_type, *args, lock=True, name=None, ctx=None):
        self._obj = _arm(RawValue(typecode_or_type, *args, name=name))
        self._lock = _make_lock(lock, self._obj.name)

    @classmethod
    def open(cls, name, typecode=None, lock=True):
        """Attaches to the value ``name`` and its lock ``NAME.lock``."""
        self = object.__new__(cls)
        self._obj = _arm(RawValue.open(name, typecode))
        self._lock = RLock.open(name + ".lock") if lock is True else lock
        return self

    def __reduce__(self):
        return (_rebuild_value, (self._obj, self._lock))

    #: The value. For integer typecodes ``v.value += n`` and ``v.value -= n``
    #: are atomic (one fetch-and-add), unlike in multiprocessing; other
    #: updates should hold ``get_lock()``. (The extension reads
    #: ``_obj._loaded`` and stores into ``_obj.value``.)
    value = _rs.SyncedValue()

    def __repr__(self):
        return "<Synchronized wrapper for %r>" % (self._obj,)


def _rebuild_value(obj, lock):
    self = object.__new__(Value)
    self._obj = _arm(obj)
    self._lock = lock
    return self


class RawArray(object):
    """``multiprocessing.RawArray(typecode_or_type, size_or_initializer)``:
    a fixed-length shared array without a lock. Indexing and slicing as a
    ctypes array; ``'c'`` arrays give bytes and have ``.value``/``.raw``."""

    def __init__(self, typecode_or_type, size_or_initializer, *, name=None):
        tc = _typecode(typecode_or_type)
        if isinstance(size_or_initializer, int):
            init = [0] * size_or_initializer
        elif tc == "c" and isinstance(size_or_initializer, (bytes, bytearray)):
            init = list(size_or_initializer)
        elif tc == "c":
            init = [_to_elem(tc, v) for v in size_or_initializer]
        else:
            init = list(size_or_initializer)
        if not init:
            raise ValueError("a ringshm Array needs at least one element")
        self._setup(tc, _rs.Array.create(TYPECODES[tc], name or _common.new_name("array"), init))
        _common.created(self)

    def _setup(self, tc, h):
        if tc == "c":
            h._chars()
        self._typecode = tc
        self._h = h
        self._name = h.name
        self._len = len(h)

    @classmethod
    def open(cls, name, typecode=None):
        """Attaches to the array ``name``."""
        self = RawArray.__new__(RawArray)
        self._setup(*_probe(_rs.Array, name, typecode))
        return self

    def __reduce__(self):
        return (RawArray.open, (self._name, self._typecode))

    @property
    def name(self):
        return self._name

    @property
    def typecode(self):
        return self._typecode

    def __len__(self):
        return self._len

    def _index(self, i):
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("invalid index")
        return i

    def __getitem__(self, i):
        if type(i) is int:
            return self._h.item(i)
        if isinstance(i, slice):
            vals = self._h.to_list()[i]
            return bytes(vals) if self._typecode == "c" else vals
        return _from_elem(self._typecode, self._h.get(self._index(i)))

    def __setitem__(self, i, v):
        if type(i) is int:
            return self._h.put(i, v)
        if isinstance(i, slice):
            idx = range(*i.indices(self._len))
            vals = list(v)
            if len(vals) != len(idx):
                raise ValueError("Can only assign sequence of same size")
            for j, x in zip(idx, vals):
                self._h.set(j, _to_elem(self._typecode, x))
            return
        self._h.set(self._index(i), _to_elem(self._typecode, v))

    def __iter__(self):
        for v in self._h.to_list():
            yield _from_elem(self._typecode, v)

    def _check_c(self):
        if self._typecode != "c":
            raise AttributeError("only 'c' arrays have .value and .raw")

    @property
    def value(self):
        """``'c'`` arrays: the bytes up to the first NUL."""
        self._check_c()
        return self._h.to_bytes().split(b"\0", 1)[0]

    @value.setter
    def value(self, v):
        self._check_c()
        v = bytes(v)
        if len(v) > self._len:
            raise ValueError("byte string too long")
        if len(v) < self._len:
            v += b"\0"
        self[0:len(v)] = v

    @property
    def raw(self):
        """``'c'`` arrays: all the bytes."""
        self._check_c()
        return self._h.to_bytes()

    @raw.setter
    def raw(self, v):
        self._check_c()
        v = bytes(v)
        if len(v) > self._len:
            raise ValueError("byte string too long")
        self[0:len(v)] = v

    def __repr__(self):
        return "<RawArray(%r, %d) name=%r>" % (self._typecode, self._len, self._name)


class Array(_Synchronized):
    """``multiprocessing.Array(typecode_or_type, size_or_initializer,
    lock=True)``: a ``RawArray`` with a lock (``get_lock()``, ``with a:``).
    ``lock=False`` returns the ``RawArray``."""

    def __new__(cls, typecode_or_type, size_or_initializer, *, lock=True, name=None, ctx=None):
        if lock is False:
            return RawArray(typecode_or_type, size_or_initializer, name=name)
        return object.__new__(cls)

    def __init__(self, typecode_or_type, size_or_initializer, *, lock=True, name=None, ctx=None):
        obj = RawArray(typecode_or_type, size_or_initializer, name=name)
        _wrap_array(self, obj, _make_lock(lock, obj.name))

    @classmethod
    def open(cls, name, typecode=None, lock=True):
        return _wrap_array(object.__new__(cls), RawArray.open(name, typecode),
                           RLock.open(name + ".lock") if lock is True else lock)

    def __reduce__(self):
        return (_rebuild_array, (self._obj, self._lock))

    def __len__(self):
        return len(self._obj)

    def __getitem__(self, i):
        if type(i) is int:
            return self._h.item(i)
        return self._obj[i]

    def __setitem__(self, i, v):
        if type(i) is int:
            return self._h.put(i, v)
        self._obj[i] = v

    def __iter__(self):
        return iter(self._obj)

    @property
    def value(self):
        return self._obj.value

    @value.setter
    def value(self, v):
        self._obj.value = v

    @property
    def raw(self):
        return self._obj.raw

    @raw.setter
    def raw(self, v):
        self._obj.raw = v

    def __repr__(self):
        return "<SynchronizedArray wrapper for %r>" % (self._obj,)


def _wrap_array(self, obj, lock):
    self._obj = obj
    self._h = obj._h  # the extension's array, for the fast path of arr[i]
    self._lock = lock
    return self


def _rebuild_array(obj, lock):
    return _wrap_array(object.__new__(Array), obj, lock)
