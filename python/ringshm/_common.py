"""Names, clean-up, spill areas and warnings shared by every ringshm object."""

import itertools
import os
import secrets
import threading
import warnings

from . import _ringshm as _rs

__all__ = ["OwnerDiedWarning", "new_name", "register_created", "spill", "unspill", "SPILL_MARK"]


class OwnerDiedWarning(RuntimeWarning):
    """A lock was taken over from a holder whose process (or thread) died
    while holding it. The caller holds the lock now: check the data it
    protects. The lock object's ``owner_died`` attribute is ``True`` until
    its next clean acquisition."""


_counter = itertools.count()
_token = secrets.token_hex(3)
_created = []  # (pid, name) of persistent segments this process must remove
_created_lock = threading.Lock()
_cleanup_pid = None


def new_name(kind):
    """A fresh segment name: ``rshm-<kind>-<pid>-<n>-<random>``."""
    return "rshm-%s-%d-%d-%s" % (kind, os.getpid(), next(_counter), _token)


def _cleanup():
    pid = os.getpid()
    with _created_lock:
        mine = [n for (p, n) in _created if p == pid]
        _created[:] = [(p, n) for (p, n) in _created if p != pid]
    for n in mine:
        try:
            _rs.unlink(n)
        except OSError:
            pass


def register_created(name):
    """Removes ``name`` when this process exits (for segments created with
    ``persist``, whose Rust handles do not remove them)."""
    global _cleanup_pid
    pid = os.getpid()
    with _created_lock:
        _created.append((pid, name))
        first = _cleanup_pid != pid
        _cleanup_pid = pid
    if first:
        # multiprocessing runs these finalizers when a child process ends
        # (it leaves with os._exit, skipping atexit) and at the main
        # process's exit; a forked child starts with an empty registry.
        from multiprocessing import util

        util.Finalize(None, _cleanup, exitpriority=0)


def forget_created(name):
    """``name`` was removed already."""
    pid = os.getpid()
    with _created_lock:
        try:
            _created.remove((pid, name))
        except ValueError:
            pass


# Messages larger than a queue slot or a pipe go through a spill area: a
# byte array of their own, named in a small marker message. The receiver
# reads it and removes its name.
SPILL_MARK = b"\x00RSHM-SPILL\x00"


def spill(owner_name, data):
    """Stores ``data`` in a new spill area; returns the marker message."""
    name = "%s.s%d-%d" % (owner_name, os.getpid(), next(_counter))
    if len(name) > 200:
        name = new_name("spill")
    _rs.spill_write(name, bytes(data))
    return SPILL_MARK + name.encode("ascii")


def unspill(msg):
    """The message a marker stands for (or ``msg`` itself)."""
    if msg[: len(SPILL_MARK)] == SPILL_MARK:
        return _rs.spill_read(msg[len(SPILL_MARK):].decode("ascii"))
    return msg


def warn_owner_died(obj, stacklevel=3):
    warnings.warn(
        OwnerDiedWarning(
            "%s %r: the previous holder died while holding it; this process holds it now "
            "(check the data it protects; .owner_died is True)" % (type(obj).__name__, obj.name)
        ),
        stacklevel=stacklevel,
    )
