"""multiprocessing's semantics, modelled on CPython's
Lib/test/_test_multiprocessing.py (the relevant cases for each object)."""

import array
import multiprocessing
import pickle
import threading
import time
import warnings

import pytest

import ringshm

import _workers as w
from _workers import join_all


# -- Queue ---------------------------------------------------------------------

def test_queue_put_get_full_empty():
    q = ringshm.Queue(6)
    for i in range(6):
        q.put(i)
    assert q.full() and q.qsize() == 6
    with pytest.raises(ringshm.Full):
        q.put(7, False)
    with pytest.raises(ringshm.Full):
        q.put(7, True, 0.05)
    with pytest.raises(ringshm.Full):
        q.put_nowait(7)
    assert [q.get() for _ in range(6)] == list(range(6))
    assert q.empty()
    with pytest.raises(ringshm.Empty):
        q.get(False)
    with pytest.raises(ringshm.Empty):
        q.get(True, 0.05)
    with pytest.raises(ringshm.Empty):
        q.get_nowait()
    t0 = time.monotonic()
    with pytest.raises(ringshm.Empty):
        q.get(timeout=0.2)
    assert time.monotonic() - t0 >= 0.19


def test_queue_closed_and_join_thread():
    q = ringshm.Queue()
    q.put(1)
    q.close()
    q.join_thread()
    with pytest.raises(ValueError):
        q.put(2)


def test_queue_large_and_bytes_items():
    q = ringshm.Queue(4)
    big = bytes(range(256)) * 8192  # 2 MiB: spilled
    q.put(big)
    q.put_bytes(b"raw")
    q.put_bytes(memoryview(b"x" * 100000))
    assert q.get() == big
    assert q.get_bytes() == b"raw"
    assert q.get_bytes() == b"x" * 100000


def test_queue_named_open_and_pickle(any_ctx):
    name = "rshm-test-q-%d" % id(any_ctx)
    q = ringshm.Queue(5, name=name)
    q2 = ringshm.Queue.open(name)
    q2.put("via open")
    assert q.get(timeout=5) == "via open"
    assert pickle.loads(pickle.dumps(q)).name == name
    out = ringshm.Queue()
    p = any_ctx.Process(target=w.get_from_queue_in_child, args=(q, out))
    p.start()
    q.put({"x": 1})
    assert out.get(timeout=30) == {"x": 1}
    join_all([p])


def test_joinable_queue_task_done_too_many():
    q = ringshm.JoinableQueue()
    q.put(1)
    q.get()
    q.task_done()
    with pytest.raises(ValueError):
        q.task_done()
    q.join()


def test_joinable_queue_join_waits(ctx):
    q = ringshm.JoinableQueue()
    out = ringshm.Queue()
    cs = [ctx.Process(target=w.jq_consumer, args=(q, out), daemon=True) for _ in range(2)]
    for c in cs:
        c.start()
    for i in range(20):
        q.put(i)
    assert q.join(timeout=60)
    assert sorted(out.get(timeout=5) for _ in range(20)) == list(range(20))
    for c in cs:
        c.kill()
    join_all(cs)


def test_simple_queue():
    q = ringshm.SimpleQueue()
    assert q.empty()
    q.put(1)
    assert not q.empty()
    assert q.get() == 1
    q.close()


# -- Pipe / Connection -----------------------------------------------------------

def test_connection_send_recv_bytes():
    a, b = ringshm.Pipe()
    seq = [1, 2.25, None, "x" * 1000]
    for x in seq:
        a.send(x)
    assert [b.recv() for _ in seq] == seq
    msg = b"abcdefghijklmnopqrstuvwxyz"
    a.send_bytes(msg)
    assert b.recv_bytes() == msg
    a.send_bytes(msg, 5)
    assert b.recv_bytes() == msg[5:]
    a.send_bytes(msg, 7, 8)
    assert b.recv_bytes() == msg[7:15]
    a.send_bytes(msg, 26)
    assert b.recv_bytes() == b""
    a.send_bytes(msg, 26, 0)
    assert b.recv_bytes() == b""
    with pytest.raises(ValueError):
        a.send_bytes(msg, 27)
    with pytest.raises(ValueError):
        a.send_bytes(msg, 22, 5)
    with pytest.raises(ValueError):
        a.send_bytes(msg, 26, 1)
    with pytest.raises(ValueError):
        a.send_bytes(msg, -1)
    with pytest.raises(ValueError):
        a.send_bytes(msg, 4, -1)


def test_connection_recv_bytes_into_and_buffer_too_short():
    a, b = ringshm.Pipe()
    arr = array.array("i", range(4))
    a.send_bytes(arr)
    buffer = array.array("i", [0] * 10)
    assert b.recv_bytes_into(buffer) == len(arr) * buffer.itemsize
    assert list(buffer) == list(arr) + [0] * 6
    buffer = bytearray(8)
    a.send_bytes(b"abc")
    assert b.recv_bytes_into(buffer, 3) == 3
    assert bytes(buffer) == b"\0\0\0abc\0\0"
    longmsg = b"x" * 64
    a.send_bytes(longmsg)
    with pytest.raises(multiprocessing.BufferTooShort) as e:
        b.recv_bytes_into(bytearray(10))
    assert e.value.args == (longmsg,)
    with pytest.raises(ValueError):
        b.recv_bytes_into(bytearray(4), 5)


def test_connection_poll_and_timeouts():
    a, b = ringshm.Pipe()
    assert b.poll() is False
    t0 = time.monotonic()
    assert b.poll(0.2) is False
    assert time.monotonic() - t0 >= 0.19
    a.send(1)
    assert b.poll(5) is True
    assert b.recv() == 1


def test_connection_eof_after_peer_close():
    a, b = ringshm.Pipe()
    a.send_bytes(b"last")
    a.close()
    assert a.closed
    with pytest.raises(OSError):
        a.send(1)
    assert b.poll(5)
    assert b.recv_bytes() == b"last"
    with pytest.raises(EOFError):
        b.recv()
    with pytest.raises(BrokenPipeError):
        b.send(1)


def test_connection_maxlength():
    a, b = ringshm.Pipe()
    a.send_bytes(b"x" * 100)
    with pytest.raises(OSError):
        b.recv_bytes(10)
    assert b.closed


def test_pipe_one_way():
    r, s = ringshm.Pipe(duplex=False)
    assert r.readable and not r.writable
    assert s.writable and not s.readable
    s.send("one way")
    assert r.recv() == "one way"
    with pytest.raises(OSError):
        r.send(1)
    with pytest.raises(OSError):
        s.recv()


def test_pipe_large_message_spilled():
    a, b = ringshm.Pipe(capacity=4096)
    big = list(range(200000))
    a.send(big)
    assert b.recv() == big


def test_pipe_named_open():
    name = "rshm-test-pipe-%d" % time.monotonic_ns()
    a, b = ringshm.Pipe(name=name)
    b.close()
    b2 = ringshm.Pipe.open(name)
    a.send("again")
    assert b2.recv() == "again"


def test_pipe_echo_child(any_ctx):
    a, b = ringshm.Pipe()
    p = any_ctx.Process(target=w.echo_obj, args=(b,))
    p.start()
    b.close()
    for x in [1, "two", (3,), {"four": 4}, b"x" * 300000]:
        a.send(x)
        assert a.recv() == x
    a.send(None)
    assert join_all([p]) == [0]


# -- Lock, RLock -------------------------------------------------------------

def test_lock():
    lock = ringshm.Lock()
    assert lock.acquire()
    assert not lock.acquire(False)
    assert not lock.acquire(timeout=0.05)
    assert lock.release() is None
    with pytest.raises((ValueError, threading.ThreadError)):
        lock.release()
    with lock:
        assert not lock.acquire(False)
    assert lock.acquire(False)
    lock.release()


def test_lock_released_by_another_thread():
    lock = ringshm.Lock()
    lock.acquire()
    t = threading.Thread(target=lock.release)
    t.start()
    t.join(10)
    assert lock.acquire(timeout=5)
    lock.release()


def test_rlock():
    lock = ringshm.RLock()
    assert lock.acquire()
    assert lock.acquire()
    assert lock.acquire()
    assert lock.release() is None
    assert lock.release() is None
    assert lock.release() is None
    with pytest.raises((AssertionError, RuntimeError)):
        lock.release()


def test_rlock_not_owned_by_other_thread():
    lock = ringshm.RLock()
    lock.acquire()
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.1)))
    t.start()
    t.join(10)
    assert got == [False]
    lock.release()




@pytest.mark.parametrize("cls", ["Lock", "RLock", "Condition"])
def test_lock_acquire_arguments(cls):
    # acquire's fast path parses positional arguments itself; everything
    # else must behave as the checked signature (block=True, timeout=None).
    lock = getattr(ringshm, cls)()
    assert lock.acquire(True, None) is True
    lock.release()
    assert lock.acquire(block=True, timeout=1) is True
    lock.release()
    assert lock.acquire(False) is True
    lock.release()
    with pytest.raises(TypeError):
        lock.acquire(True, 1, 2)
    with pytest.raises(TypeError):
        lock.acquire(foo=1)
    with pytest.raises(TypeError):
        lock.acquire(True, "1")
    with pytest.raises(TypeError):
        type(lock).acquire(5)
    with lock:
        assert not lock.acquire(False) if cls == "Lock" else lock._is_owned()
    assert lock.acquire(False)
    lock.release()

@pytest.mark.parametrize("cls", ["Lock", "RLock"])
def test_lock_taken_over_from_ended_thread_stays_held(cls):
    # A thread that ends holding the lock is a dead holder: the next
    # acquire takes it over. The taker then holds it: the stale hold left
    # in the object must not be dropped (which unlocked the lock just
    # taken, so that another process could enter too).
    lock = getattr(ringshm, cls)()
    t = threading.Thread(target=lock.acquire)
    t.start()
    t.join(10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert lock.acquire(timeout=10)
    assert [c.category for c in caught] == [ringshm.OwnerDiedWarning] and lock.owner_died
    assert lock.is_locked()
    lock.release()
    assert not lock.is_locked()

# -- Semaphore ---------------------------------------------------------------------

def test_semaphore():
    sem = ringshm.Semaphore(2)
    assert sem.get_value() == 2
    assert sem.acquire()
    assert sem.get_value() == 1
    assert sem.acquire()
    assert not sem.acquire(False)
    assert not sem.acquire(timeout=0.05)
    sem.release()
    assert sem.get_value() == 1
    sem.release()
    sem.release()
    assert sem.get_value() == 3


def test_bounded_semaphore_over_release():
    sem = ringshm.BoundedSemaphore(2)
    sem.acquire()
    sem.release()
    with pytest.raises(ValueError):
        sem.release()
    assert sem.get_value() == 2


def test_semaphore_timeout():
    sem = ringshm.Semaphore(0)
    t0 = time.monotonic()
    assert sem.acquire(True, 0.2) is False
    assert time.monotonic() - t0 >= 0.19
    assert sem.acquire(False) is False


# -- Event ------------------------------------------------------------------------

def test_event(ctx):
    e = ringshm.Event()
    assert not e.is_set()
    assert e.wait(0.05) is False
    e.set()
    assert e.is_set() and e.wait() and e.wait(0.0)
    e.clear()
    assert not e.is_set()
    p = ctx.Process(target=w.set_event_later, args=(e, 0.1))
    p.start()
    assert e.wait(30) is True
    join_all([p])


# -- Condition ----------------------------------------------------------------------

def test_condition_timeout_and_notify(ctx):
    cond = ringshm.Condition()
    flag = ringshm.Value("i", 0)
    with cond:
        t0 = time.monotonic()
        assert cond.wait(0.1) is False
        assert time.monotonic() - t0 >= 0.09
    p = ctx.Process(target=w.notify_after, args=(cond, flag, 0.1))
    p.start()
    with cond:
        assert cond.wait_for(lambda: flag.value == 1, timeout=30)
    join_all([p])


def test_condition_wait_for_timeout():
    cond = ringshm.Condition()
    with cond:
        t0 = time.monotonic()
        assert cond.wait_for(lambda: False, timeout=0.1) is False
        assert time.monotonic() - t0 >= 0.09
        assert cond.wait_for(lambda: 42) == 42


def test_condition_needs_its_lock():
    cond = ringshm.Condition()
    with pytest.raises(RuntimeError):
        cond.wait(0.01)
    with pytest.raises(RuntimeError):
        cond.notify()
    with pytest.raises(RuntimeError):
        cond.release()
    with cond:
        with cond:  # re-entrant, like the default RLock
            cond.notify_all()


# -- Barrier --------------------------------------------------------------------------

def test_barrier_wait_return(ctx):
    n = 3
    barrier = ringshm.Barrier(n)
    out = ringshm.Queue()
    ps = [ctx.Process(target=w.barrier_wait, args=(barrier, out)) for _ in range(n - 1)]
    for p in ps:
        p.start()
    results = [barrier.wait(60)] + [out.get(timeout=60) for _ in ps]
    join_all(ps)
    assert results.count(0) == 1
    assert all(isinstance(r, int) and 0 <= r < n for r in results)


def test_barrier_action(ctx):
    counter = ringshm.Value("i", 0)
    barrier = ringshm.Barrier(2, action=lambda: counter.__setattr__("value", counter.value + 1))
    t = threading.Thread(target=barrier.wait, args=(30,))
    t.start()
    barrier.wait(30)
    t.join(30)
    assert counter.value == 1


def test_barrier_abort_and_reset():
    barrier = ringshm.Barrier(2)
    assert not barrier.broken
    barrier.abort()
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(5)
    barrier.reset()
    assert not barrier.broken
    assert barrier.parties == 2 and barrier.n_waiting == 0


def test_barrier_timeout_breaks():
    barrier = ringshm.Barrier(2)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.1)
    assert barrier.broken
    barrier.reset()
    assert not barrier.broken


def test_barrier_action_raises_breaks():
    def boom():
        raise RuntimeError("action failed")

    barrier = ringshm.Barrier(1, action=boom)
    with pytest.raises(RuntimeError):
        barrier.wait(5)
    assert barrier.broken


# -- Value / Array --------------------------------------------------------------------

@pytest.mark.parametrize("tc,v", [("b", -5), ("B", 250), ("h", -300), ("H", 60000), ("i", -70000),
                                  ("I", 4000000000), ("l", -(2 ** 40)), ("L", 2 ** 63), ("q", -(2 ** 62)),
                                  ("Q", 2 ** 64 - 1), ("f", 1.5), ("d", 2.25), ("c", b"x")])
def test_value_typecodes(tc, v):
    val = ringshm.Value(tc, v)
    assert val.value == v
    raw = ringshm.RawValue(tc, v)
    assert raw.value == v
    assert pickle.loads(pickle.dumps(val)).value == v


def test_value_lock_options():
    import ctypes
    v = ringshm.Value(ctypes.c_double, 1.5)
    assert v.value == 1.5
    with v.get_lock():
        v.value += 1
    assert v.get_obj().value == 2.5
    raw = ringshm.Value("i", 1, lock=False)
    assert not hasattr(raw, "get_lock")
    lock = ringshm.Lock()
    v2 = ringshm.Value("i", 1, lock=lock)
    assert v2.get_lock() is lock
    # None makes a lock, as True does (multiprocessing; CPython's
    # _TestValue.test_getobj_getlock); an object without acquire is refused.
    assert ringshm.Value("i", 1, lock=None).get_lock() is not None
    with pytest.raises(AttributeError):
        ringshm.Value("i", 1, lock="navalue")


def test_array():
    arr = ringshm.Array("i", range(10))
    assert len(arr) == 10 and arr[-1] == 9 and list(arr) == list(range(10))
    arr[0] = 100
    arr[2:5] = [7, 8, 9]
    assert arr[:6] == [100, 1, 7, 8, 9, 5]
    assert arr[::3] == [100, 8, 6, 9]
    with pytest.raises(IndexError):
        arr[10]
    z = ringshm.Array("d", 3)
    assert list(z) == [0.0, 0.0, 0.0]
    c = ringshm.Array("c", b"hello")
    assert c.value == b"hello" and c.raw == b"hello" and c[1] == b"e" and c[1:3] == b"el"
    c.value = b"hi"
    assert c.value == b"hi" and c.raw == b"hi\0lo"
    with pytest.raises(ValueError):
        c.value = b"too long!"
    raw = ringshm.RawArray("B", [1, 2])
    assert raw[:] == [1, 2]


def test_objects_take_name_and_open():
    name = "rshm-test-obj-%d" % time.monotonic_ns()
    pairs = [
        (ringshm.Lock(name=name + "l"), ringshm.Lock.open),
        (ringshm.RLock(name=name + "r"), ringshm.RLock.open),
        (ringshm.Semaphore(3, name=name + "s"), ringshm.Semaphore.open),
        (ringshm.BoundedSemaphore(3, name=name + "bs"), ringshm.BoundedSemaphore.open),
        (ringshm.Event(name=name + "e"), ringshm.Event.open),
        (ringshm.Condition(name=name + "c"), ringshm.Condition.open),
        (ringshm.Barrier(2, name=name + "b"), ringshm.Barrier.open),
        (ringshm.Value("i", 7, name=name + "v"), ringshm.Value.open),
        (ringshm.Array("d", [1.0], name=name + "a"), ringshm.Array.open),
        (ringshm.JoinableQueue(2, name=name + "jq"), ringshm.JoinableQueue.open),
    ]
    for obj, opener in pairs:
        again = opener(obj.name)
        assert again.name == obj.name
        assert pickle.loads(pickle.dumps(obj)).name == obj.name
    assert ringshm.Value.open(name + "v").value == 7


def test_error_messages_are_python_exceptions():
    with pytest.raises(FileNotFoundError, match="no segment named"):
        ringshm.Queue.open("rshm-test-does-not-exist")
    q = ringshm.Queue(1, name="rshm-test-dup-%d" % time.monotonic_ns())
    with pytest.raises(FileExistsError, match="already exists"):
        ringshm.Queue(1, name=q.name)
    with pytest.raises(ValueError, match="invalid segment name"):
        ringshm.Lock(name="bad name!")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ringshm.Lock().acquire()


def test_value_inplace_add_is_atomic(ctx):
    # multiprocessing loses updates here (a load, then a store); ringshm's
    # `v.value += n` is one fetch-and-add.
    v = ringshm.Value("i", 0)
    ps = [ctx.Process(target=w.add_many, args=(v, 3000)) for _ in range(4)]
    for p in ps:
        p.start()
    assert join_all(ps) == [0] * 4
    assert v.value == 4 * 3000


def test_names_removed_when_creating_child_ends(any_ctx):
    # A multiprocessing child ends with os._exit: nothing is dropped, yet
    # the names it created are removed.
    import os

    prefix = "rshm-test-leave-%d-%s-" % (os.getpid(), any_ctx.get_start_method())
    p = any_ctx.Process(target=w.create_and_leave, args=(prefix, []))
    p.start()
    assert join_all([p]) == [0]
    assert [n for n in os.listdir("/dev/shm") if n.startswith(prefix)] == []


def test_get_context_gives_ringshm_objects():
    ctx = ringshm.get_context("spawn")
    assert ctx.get_start_method() == "spawn"
    assert ctx.Queue is ringshm.Queue and ctx.Lock is ringshm.Lock and ctx.Pipe is ringshm.Pipe
    assert ctx.Process is multiprocessing.get_context("spawn").Process
    q = ctx.Queue()
    p = ctx.Process(target=w.put_hello, args=(q,))
    p.start()
    assert q.get(timeout=60) == "hello from child process"
    join_all([p])


def test_connection_sent_through_a_queue(any_ctx):
    a, b = ringshm.Pipe()
    q = ringshm.Queue()
    p = any_ctx.Process(target=w.echo_conn_from_queue, args=(q,))
    p.start()
    q.put(b)  # pickling hands end B over; this object is detached now
    for x in ["one", 2, b"x" * 500000]:
        a.send(x)
        assert a.recv() == x
    a.send(None)
    assert join_all([p]) == [0]
    b.close()
    with pytest.raises(EOFError):
        a.recv()
