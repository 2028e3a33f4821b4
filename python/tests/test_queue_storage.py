"""Queue storage: pickles up to max_message_bytes stay in the queue (no
spill area), its memory follows what is queued, longer ones still spill."""

import multiprocessing
import os

import ringshm


def _blocks(name):
    return os.stat("/dev/shm/" + name).st_blocks * 512


def _spills(name):
    return [n for n in os.listdir("/dev/shm") if n.startswith(name + ".s")]


def _put_big(q, n, size):
    for i in range(n):
        q.put(bytes([i]) * size)


def test_default_queue_holds_big_pickles_in_place():
    q = ringshm.Queue()
    assert q.maxsize == ringshm.queues.DEFAULT_MAXSIZE
    assert q.max_message_bytes == ringshm.queues.DEFAULT_MAX_MESSAGE_BYTES == 64 << 20
    big = bytes(range(256)) * (32 << 10)  # 8 MiB
    q.put(big)
    q.put({"k": [1, 2, 3]})
    assert _spills(q.name) == []
    assert q.get() == big
    assert q.get() == {"k": [1, 2, 3]}


def test_long_queues_get_a_smaller_default_max():
    q = ringshm.Queue(100000)
    assert q.maxsize == 100000
    # 131072 slots x 2 MiB: 256 GiB of address space, no more.
    assert q.max_message_bytes == 2 << 20
    for i in range(100000):
        q.put_nowait(i)
    assert q.full()
    assert _blocks(q.name) < 64 << 20
    assert [q.get_nowait() for _ in range(100000)] == list(range(100000))


def test_memory_follows_what_is_queued():
    ctx = multiprocessing.get_context("fork")
    q = ringshm.Queue(1000)
    empty = _blocks(q.name)
    p = ctx.Process(target=_put_big, args=(q, 20, 1 << 20))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert _blocks(q.name) >= empty + (20 << 20)
    for i in range(20):
        assert q.get(timeout=10) == bytes([i]) * (1 << 20)
    # 1024 slots keep at most 32 KiB each backed.
    assert _blocks(q.name) <= empty + 20 * (32 << 10) + 4096


def test_longer_than_max_still_spills():
    q = ringshm.Queue(4, max_message_bytes=10000)
    assert q.max_message_bytes == 10000
    q.put_bytes(b"y" * 50000)
    q.put_bytes(b"z" * 9000)
    assert len(_spills(q.name)) == 1
    assert q.get_bytes() == b"y" * 50000
    assert q.get_bytes() == b"z" * 9000
    assert _spills(q.name) == []


def test_limited_address_space_falls_back_to_a_small_arena():
    import subprocess
    import sys

    code = (
        "import ringshm\n"
        "q = ringshm.Queue()\n"
        "assert q.max_message_bytes == 64 << 10, q.max_message_bytes\n"
        "q.put(b'x' * 1000000)\n"
        "assert q.get() == b'x' * 1000000\n"
    )
    # 4 GB of address space: not enough for 4096 x 64 MiB.
    r = subprocess.run(["bash", "-c", 'ulimit -v 4000000 && exec "$0" -c "$1"', sys.executable, code], timeout=60)
    assert r.returncode == 0
