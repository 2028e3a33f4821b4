"""Names, clean-up and the warning class shared by every ringshm object (spill
areas for long messages live in the extension)."""

import atexit
import itertools
import os
import secrets
import threading
import time
import weakref

from . import _ringshm as _rs

__all__ = ["OwnerDiedWarning", "new_name", "register_created", "forget_created"]


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


def created(obj, name=None):
    """Records that this process created ``obj`` (named ``name``, default
    ``obj.name``): its name is removed when this process exits, even through
    ``os._exit`` as multiprocessing's children do (a Rust handle removes it
    when dropped, but nothing is dropped then), unless ``obj`` is collected
    first. Returns ``obj``."""
    name = obj.name if name is None else name
    register_created(name)
    weakref.finalize(obj, forget_created, name)
    return obj


def forget_created(name):
    """``name`` was removed already."""
    pid = os.getpid()
    with _created_lock:
        try:
            _created.remove((pid, name))
        except ValueError:
            pass


def _at_exit():
    # From now on a thread blocked in a ringshm wait (a daemon thread: the
    # others were joined) never comes back for the GIL, which would end it
    # with pthread_exit through Rust frames and abort the process; those
    # between two slices of their wait get one slice to get back in.
    if _rs._exiting() > 0:
        time.sleep(_rs.SLICE_SECONDS + 0.01)


atexit.register(_at_exit)
