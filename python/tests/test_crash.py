"""A peer SIGKILLed at a bad moment: the others recover, never hang."""

import os
import signal
import threading
import warnings

import pytest

import ringshm

import _workers as w
from _workers import join_all


def _kill(p):
    os.kill(p.pid, signal.SIGKILL)
    join_all([p])
    assert p.exitcode == -signal.SIGKILL


def test_killed_holding_lock(ctx):
    lock = ringshm.Lock()
    ready = ringshm.Event()
    p = ctx.Process(target=w.hold_lock_forever, args=(lock, ready))
    p.start()
    assert ready.wait(60)
    assert not lock.acquire(timeout=0.1)
    _kill(p)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert lock.acquire(timeout=30)
    assert lock.owner_died
    assert any(issubclass(c.category, ringshm.OwnerDiedWarning) for c in caught)
    assert issubclass(ringshm.OwnerDiedWarning, RuntimeWarning)
    lock.release()
    assert lock.acquire(timeout=5) and not lock.owner_died
    lock.release()


def test_killed_while_sending_on_pipe(ctx):
    a, b = ringshm.Pipe(capacity=4096)
    ready = ringshm.Event()
    p = ctx.Process(target=w.send_forever, args=(b, ready))
    p.start()
    b.close()  # the parent's copy: only the child holds end B now
    assert ready.wait(60)
    assert a.recv_bytes() == b"%08d" % 0
    _kill(p)
    n = 1
    with pytest.raises(EOFError):
        while True:
            assert a.recv_bytes() == b"%08d" % n  # everything sent, in order
            n += 1
    assert n >= 100


def test_killed_inside_barrier(ctx):
    barrier = ringshm.Barrier(3)
    ready = ringshm.Event()
    p = ctx.Process(target=w.wait_in_barrier, args=(barrier, ready))
    p.start()
    assert ready.wait(60)
    while barrier.n_waiting < 1:
        threading.Event().wait(0.01)
    _kill(p)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(60)
    assert barrier.broken


def test_killed_holding_semaphore_permit(ctx):
    sem = ringshm.Semaphore(1)
    ready = ringshm.Event()
    p = ctx.Process(target=w.hold_permit_forever, args=(sem, ready))
    p.start()
    assert ready.wait(60)
    assert not sem.acquire(timeout=0.1)
    _kill(p)
    assert sem.acquire(timeout=30)  # the dead process's permit came back
