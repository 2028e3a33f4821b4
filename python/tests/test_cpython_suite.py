"""CPython's own multiprocessing tests, run against ringshm.

The test classes of CPython's ``Lib/test/_test_multiprocessing.py`` (vendored
unchanged in ``cpython/``) for the objects ringshm provides are built here
the way that module's ``install_tests_in_module_dict`` builds them, with a
mixin like its ``ProcessesMixin`` whose factories (``Queue``, ``Lock``,
``Pipe``, ``Value``, ...) are ringshm's while ``Process``,
``current_process``, ... stay multiprocessing's. Each class runs under the
fork, spawn and forkserver start methods.

Inside the vendored module, the name ``multiprocessing`` is rebound to a
view of it whose shared objects are ringshm's, so that the tests that call
``multiprocessing.Queue()`` or ``multiprocessing.SimpleQueue()`` directly
test ringshm's too (everything else there, ``multiprocessing.Process``,
``multiprocessing.heap``, ..., is multiprocessing's own).

``SKIPS`` names every test that cannot pass, with the reason; ``HELPERS``
the one helper of the suite replaced here. After them: regression tests
for the defects the suite found (each failed before its fix), and the one
it found outside the Python layer, as an expected failure.
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import types
import unittest

import pytest

import ringshm

from _workers import join_all

_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpython")
if _HERE not in sys.path:
    # Appended: spawned children get this sys.path and import the vendored
    # module (and this one) by name to unpickle their targets.
    sys.path.append(_HERE)

try:
    import _test_multiprocessing as cpy
except (ImportError, unittest.SkipTest) as e:  # no test.support, or an unfit interpreter
    if os.environ.get("RINGSHM_REQUIRE_CPYTHON_SUITE"):  # set by .ci/run: never skipped there
        raise
    pytest.skip("CPython's _test_multiprocessing cannot be imported here: %s" % (e,), allow_module_level=True)

if hasattr(cpy.support.print_warning, "orig_stderr"):
    # test.support (3.12+) keeps the sys.stderr of its import for its
    # warnings: pytest's capture then, closed by the time they are printed.
    cpy.support.print_warning.orig_stderr = sys.__stderr__


#: The classes of the suite that test an object ringshm provides.
CLASSES = (
    "_TestQueue",
    "_TestLock",
    "_TestSemaphore",
    "_TestCondition",
    "_TestEvent",
    "_TestBarrier",
    "_TestValue",
    "_TestArray",
    "_TestConnection",
    "_TestPoll",
    "TestSimpleQueue",
)

START_METHODS = ("fork", "spawn", "forkserver")

#: ``Class.test`` -> why it cannot pass against ringshm (a reason, or a dict
#: start method -> reason when it passes under the other start methods).
SKIPS = {
    "_TestQueue.test_no_import_lock_contention":
        "imports a module that uses multiprocessing.Queue itself (its feeder thread vs the import lock)",
    "_TestQueue.test_queue_feeder_donot_stop_onexc":
        "no feeder thread: an unpicklable item raises from put() instead of being dropped by the feeder",
    "_TestQueue.test_queue_feeder_on_queue_feeder_error":
        "subclasses multiprocessing.queues.Queue to test its feeder thread's error hook",
    "_TestConnection.test_connection":
        "asserts conn.fileno() is an int: a ringshm Connection has no file descriptor",
    "_TestConnection.test_fd_transfer":
        "multiprocessing.reduction.send_handle needs the connection's socket file descriptor",
    "_TestConnection.test_large_fd_transfer":
        "multiprocessing.reduction.send_handle needs the connection's socket file descriptor",
    "_TestConnection.test_missing_fd_transfer":
        "writes to conn.fileno(): a ringshm Connection has no file descriptor",
    "_TestBarrier.test_thousand": {
        method: "KNOWN DEFECT: one Pipe end shared by several sending processes works for fork copies "
                "only: under %s each unpickled copy takes the end (its role lock) and keeps it, so "
                "the other children wait for it while it waits at the barrier for them" % method
        for method in ("spawn", "forkserver")
    },
    "TestSimpleQueue.test_closed":
        "tests the private _reader/_writer connections of multiprocessing.SimpleQueue",
}


def _check_invariant(self, cond):
    self.assertEqual((cond._cv.get(0), cond._cv.get(1)), (0, 0), "parties waiting, wake-ups granted")


#: Helpers of the suite (not tests) replaced here -> (replacement, reason).
HELPERS = {
    "check_invariant": (
        _check_invariant,
        "reads multiprocessing.Condition's private semaphores (_sleeping_count, _woken_count, "
        "_wait_semaphore); ringshm's equivalent: its companion counts no party waiting, no wake-up granted",
    ),
}


class _MultiprocessingView(types.ModuleType):
    """``multiprocessing`` with ringshm's shared objects."""

    def __getattr__(self, name):
        if name in ringshm._SHARED:
            return getattr(ringshm, name)
        return getattr(multiprocessing, name)


cpy.multiprocessing = _MultiprocessingView("multiprocessing")


class RingshmMixin(cpy.ProcessesMixin):
    """``ProcessesMixin`` with ringshm's factories."""

    Pipe = staticmethod(ringshm.Pipe)
    Queue = staticmethod(ringshm.Queue)
    JoinableQueue = staticmethod(ringshm.JoinableQueue)
    Lock = staticmethod(ringshm.Lock)
    RLock = staticmethod(ringshm.RLock)
    Semaphore = staticmethod(ringshm.Semaphore)
    BoundedSemaphore = staticmethod(ringshm.BoundedSemaphore)
    Condition = staticmethod(ringshm.Condition)
    Event = staticmethod(ringshm.Event)
    Barrier = staticmethod(ringshm.Barrier)
    Value = staticmethod(ringshm.Value)
    Array = staticmethod(ringshm.Array)
    RawValue = staticmethod(ringshm.RawValue)
    RawArray = staticmethod(ringshm.RawArray)


class _StartMethod(object):
    """Sets the default start method for the class's tests, as the suite's
    ``setUpModule`` does for its module."""

    START_METHOD = None

    @classmethod
    def setUpClass(cls):
        cls._old_start_method = multiprocessing.get_start_method(allow_none=True)
        multiprocessing.set_start_method(cls.START_METHOD, force=True)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            multiprocessing.set_start_method(cls._old_start_method, force=True)


def _skip(cls, base_name, method):
    for key, reason in SKIPS.items():
        owner, test = key.split(".")
        if isinstance(reason, dict):
            reason = reason.get(method)
        if owner == base_name and reason is not None:
            assert hasattr(cls, test), key
            setattr(cls, test, unittest.skip(reason)(getattr(cls, test)))


def _install(globs):
    for base_name in CLASSES:
        base = getattr(cpy, base_name)
        for method in START_METHODS:
            if issubclass(base, cpy.BaseTestCase):
                assert "processes" in base.ALLOWED_TYPES, base_name
                bases = (_StartMethod, base, RingshmMixin, unittest.TestCase)
            else:
                bases = (_StartMethod, base)
            name = "WithRingshm%s%s" % (method.capitalize(), base_name.lstrip("_").replace("Test", "", 1))
            cls = type(name, bases, {"START_METHOD": method, "__module__": globs["__name__"]})
            cls.__qualname__ = name
            for helper, (replacement, _why) in HELPERS.items():
                if hasattr(base, helper):
                    setattr(cls, helper, replacement)
            _skip(cls, base_name, method)
            globs[name] = cls


_install(globals())


def test_the_suite_runs_against_ringshm():
    # The classes built above make ringshm's objects, and the suite's own
    # module sees ringshm's through "multiprocessing." too.
    made = {
        "Queue": (), "JoinableQueue": (), "Pipe": (), "Lock": (), "RLock": (), "Semaphore": (),
        "BoundedSemaphore": (), "Event": (), "Condition": (), "Barrier": (2,), "Value": ("i",),
        "Array": ("i", 2), "RawValue": ("i",), "RawArray": ("i", 2),
    }
    for name, args in made.items():
        obj = getattr(RingshmMixin, name)(*args)
        obj = obj[0] if name == "Pipe" else obj
        assert type(obj).__module__.startswith("ringshm."), (name, obj)
        assert getattr(cpy.multiprocessing, name) is getattr(ringshm, name)
    assert cpy.multiprocessing.SimpleQueue is ringshm.SimpleQueue
    assert cpy.multiprocessing.Process is multiprocessing.Process
    assert cpy.multiprocessing.queues is multiprocessing.queues
    assert globals()["WithRingshmSpawnCondition"].check_invariant is _check_invariant


# -- Regressions: defects of ringshm's Python layer that the suite found -------
# (each failed before its fix; the suite's test named in the comment too)


def _barrier_rounds(barrier, rounds, out):
    for r in range(rounds):
        out.put((r, barrier.wait()))


def test_barrier_wait_returns_distinct_indices(ctx):
    # _TestBarrier.test_abort, test_abort_and_reset: wait() returned 0 in
    # the last to arrive and a racy n_waiting in the others, so two parties
    # could get the same index (and none the one the test picks).
    parties, rounds = 4, 5
    barrier = ringshm.Barrier(parties, timeout=60)
    out = ringshm.Queue()
    procs = [ctx.Process(target=_barrier_rounds, args=(barrier, rounds, out)) for _ in range(parties - 1)]
    for p in procs:
        p.start()
    _barrier_rounds(barrier, rounds, out)
    got = [out.get(timeout=60) for _ in range(parties * rounds)]
    assert join_all(procs) == [0] * len(procs)
    for r in range(rounds):
        assert sorted(i for (rr, i) in got if rr == r) == list(range(parties))
    # reset() starts a round afresh (one party: index 0 each time).
    one = ringshm.Barrier(1)
    assert [one.wait(), one.wait()] == [0, 0]
    barrier.reset()
    assert not barrier.broken


def test_value_and_array_lock_none_make_a_lock():
    # _TestValue.test_getobj_getlock, _TestArray.test_getobj_getlock_obj:
    # lock=None raised AttributeError; multiprocessing makes a new lock.
    for obj in (ringshm.Value("i", 5, lock=None), ringshm.Array("i", [1, 2], lock=None)):
        lock = obj.get_lock()
        assert lock.acquire(timeout=5)
        lock.release()
        with obj:
            pass


def test_event_repr_shows_state():
    # _TestEvent.test_repr: "<Event at ... set>" / "unset", as multiprocessing.
    e = ringshm.Event()
    assert repr(e).startswith("<Event at ") and repr(e).endswith(" unset>")
    e.set()
    assert repr(e).endswith(" set>") and not repr(e).endswith(" unset>")


def _cond_waiter(cond, sleeping, woken):
    with cond:
        sleeping.release()
        if cond.wait(20):
            woken.release()


def test_condition_notify_reaches_waiters_between_slices(ctx):
    # _TestCondition.test_notify_all hung: a wait runs in 50 ms slices (to
    # see Ctrl-C), and a waiter whose slice ended while the notifier held
    # the lock was not registered when the notification came, so it slept
    # on. Holding the lock for several slices before notifying puts every
    # waiter there.
    cond = ringshm.Condition()
    sleeping, woken = ringshm.Semaphore(0), ringshm.Semaphore(0)
    n = 2
    procs = [ctx.Process(target=_cond_waiter, args=(cond, sleeping, woken)) for _ in range(n)]
    threads = [threading.Thread(target=_cond_waiter, args=(cond, sleeping, woken), daemon=True) for _ in range(n)]
    for w in procs + threads:
        w.start()
    for _ in range(2 * n):
        assert sleeping.acquire(timeout=60)
    with cond:
        time.sleep(0.3)
        cond.notify(1)
    assert woken.acquire(timeout=15), "the waiter notified missed it"
    with cond:
        time.sleep(0.3)
        cond.notify_all()
    for _ in range(2 * n - 1):
        assert woken.acquire(timeout=15), "a waiter missed notify_all"
    for t in threads:
        t.join(30)
    assert join_all(procs) == [0] * n


def test_char_value_and_array_take_integers_as_multiprocessing():
    # Found comparing with multiprocessing (its c_char takes an int in
    # 0..255): ringshm refused integers although its message offered them.
    v = ringshm.Value("c", 65)
    assert v.value == b"A"
    v.value = 66
    assert v.value == b"B"
    raw = ringshm.RawValue("c", 67)
    assert raw.value == b"C"
    a = ringshm.Array("c", b"ab")
    a[0] = 67
    assert a[:] == b"Cb"
    with pytest.raises(TypeError):
        a[1] = 300
    with pytest.raises(TypeError):
        v.value = b"xy"
    assert ringshm.RawArray("c", [b"x", b"y", 122]).raw == b"xyz"


def _plain_waiter(name, sleeping, out):
    # A waiter that knows nothing of the Python layer's counts, as one of a
    # Rust process: the extension's Condition alone.
    raw = ringshm._ringshm.Condition(name, create=False)
    with raw:
        sleeping.release()
        out.put(raw.wait(20))


def test_condition_notify_wakes_a_waiter_without_the_companion(ctx):
    # The counts that fix lost wake-ups are the Python layer's: a waiter of
    # a Rust process is not counted, and notify() must still wake it.
    cond = ringshm.Condition()
    sleeping, out = ringshm.Semaphore(0), ringshm.Queue()
    for notify in (lambda: cond.notify(), cond.notify_all):
        p = ctx.Process(target=_plain_waiter, args=(cond.name, sleeping, out))
        p.start()
        assert sleeping.acquire(timeout=60)
        # Again until it answers: the plain waiter waits in slices too, and
        # may be between two when one notification comes.
        for _ in range(40):
            with cond:
                notify()
            try:
                woke = out.get(timeout=0.5)
                break
            except ringshm.Empty:
                pass
        assert woke is True
        assert join_all([p]) == [0]


def _try_acquire_in_child(obj, out):
    out.put((obj.is_owned(), obj.acquire(False)))


def test_condition_held_by_parent_is_not_owned_by_fork_child():
    # _TestCondition.test_wait_result (flaky: the SIGINT meant for the
    # second wait hit the first): the parent holds the condition when it
    # forks, and the child's copy believed it held it too (its thread id is
    # the parent's), so its "with c: c.notify()" ran without the lock and
    # could notify before the parent waited. As multiprocessing's RLock
    # after fork: the child owns nothing.
    ctx = multiprocessing.get_context("fork")
    for obj in (ringshm.Condition(), ringshm.RLock()):
        out = ringshm.Queue()
        with obj:
            p = ctx.Process(target=_try_acquire_in_child, args=(obj, out))
            p.start()
            assert out.get(timeout=60) == (False, False), type(obj).__name__
            assert join_all([p]) == [0]
        # The child's exit did not release the parent's hold either.
        assert obj.acquire(False)
        obj.release()


def _block_through_signals(conn, q, ev, sem):
    hits = []
    signal.signal(signal.SIGUSR1, lambda *_: hits.append(1))
    conn.send("ready")
    a = conn.recv()
    conn.send("ready")
    b = q.get()
    conn.send("ready")
    c = ev.wait()
    conn.send("ready")
    d = sem.acquire()
    conn.send((a, b, c, d, len(hits)))


def test_blocked_calls_ignore_a_handled_signal(ctx):
    # CPython's TestIgnoreEINTR.test_ignore, which cannot run as it is (it
    # assumes a 16 MiB send blocks until read; ringshm spills it, so the
    # child may be gone at its second SIGUSR1): a signal whose handler
    # returns does not interrupt a blocked recv, get, wait or acquire.
    conn, child_conn = ringshm.Pipe()
    q, ev, sem = ringshm.Queue(), ringshm.Event(), ringshm.Semaphore(0)
    p = ctx.Process(target=_block_through_signals, args=(child_conn, q, ev, sem))
    p.start()
    for release in (lambda: conn.send(1234), lambda: q.put("item"), ev.set, sem.release):
        assert conn.poll(60) and conn.recv() == "ready"
        time.sleep(0.1)
        os.kill(p.pid, signal.SIGUSR1)
        time.sleep(0.1)
        release()
    assert conn.poll(60) and conn.recv() == (1234, "item", True, True, 4)
    assert join_all([p]) == [0]


# -- Known defects the suite found, outside the Python layer -------------------


def _send_many(conn, lock, k, n):
    for i in range(n):
        with lock:
            conn.send((k, i))


def test_pipe_end_shared_by_forked_senders():
    # multiprocessing: any number of processes may send on one end (under a
    # lock, so that messages do not interleave). Under _TestBarrier.test_thousand.
    ctx = multiprocessing.get_context("fork")
    r, w = ringshm.Pipe(False)
    lock = ringshm.Lock()
    senders, n = 3, 200
    procs = [ctx.Process(target=_send_many, args=(w, lock, k, n)) for k in range(senders)]
    for p in procs:
        p.start()
    got = {k: [] for k in range(senders)}
    try:
        for _ in range(senders * n):
            assert r.poll(3), "messages lost: %r" % {k: len(v) for k, v in got.items()}
            k, i = r.recv()
            got[k].append(i)
    finally:
        join_all(procs)
    assert got == {k: list(range(n)) for k in range(senders)}


# -- Exit with a daemon thread blocked in a wait --------------------------------

_BLOCKED_AT_EXIT = """
import sys, threading, time
import ringshm
kind = sys.argv[1]
if kind == "Queue.get":
    target = ringshm.Queue().get
elif kind == "Connection.recv":
    a, b = ringshm.Pipe()
    target = a.recv
elif kind == "Lock.acquire":
    lock = ringshm.Lock()
    lock.acquire()
    target = lock.acquire
elif kind == "Semaphore.acquire":
    target = ringshm.Semaphore(0).acquire
elif kind == "Event.wait":
    target = ringshm.Event().wait
elif kind == "Condition.wait":
    cond = ringshm.Condition()
    def target():
        with cond:
            cond.wait()
elif kind == "Barrier.wait":
    target = ringshm.Barrier(2).wait
threading.Thread(target=target, daemon=True).start()
time.sleep(0.2)
print("main returns")
"""


@pytest.mark.parametrize("kind", [
    "Queue.get", "Connection.recv", "Lock.acquire", "Semaphore.acquire", "Event.wait", "Condition.wait",
    "Barrier.wait",
])
def test_exit_with_a_daemon_thread_blocked(kind):
    # Found with the suite's daemon threads: when the main thread returned
    # while a daemon thread waited in ringshm, the interpreter ended that
    # thread with pthread_exit as the wait came back for the GIL, unwinding
    # through Rust frames: "FATAL: exception not rethrown", SIGABRT (134).
    # multiprocessing's objects exit 0.
    r = subprocess.run([sys.executable, "-c", _BLOCKED_AT_EXIT, kind], capture_output=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, b""), kind
    assert r.stdout == b"main returns\n"
