"""The tutorials' scenarios (shared/seeds), each under fork and spawn, with
an asserted outcome."""

import json

import ringshm

import _workers as w
from _workers import join_all


def test_tickets_two_sold(ctx, tmp_path):
    db = tmp_path / "db"
    db.write_text(json.dumps({"ticket": 2}))
    lock = ringshm.Lock()
    results = ringshm.Queue()
    ps = [ctx.Process(target=w.buy_ticket, args=(i, lock, str(db), results)) for i in range(10)]
    for p in ps:
        p.start()
    assert join_all(ps) == [0] * 10
    got = [results.get(timeout=10) for _ in range(10)]
    assert sorted(i for i, _ in got) == list(range(10))
    assert sum(ok for _, ok in got) == 2
    assert json.loads(db.read_text()) == {"ticket": 0}


def test_ktv_at_most_four_inside(ctx):
    sem = ringshm.Semaphore(4)
    inside, most = ringshm.Value("i", 0), ringshm.Value("i", 0)
    sang = ringshm.Queue()
    ps = [ctx.Process(target=w.ktv, args=(i, sem, inside, most, sang)) for i in range(10)]
    for p in ps:
        p.start()
    assert join_all(ps) == [0] * 10
    assert sorted(sang.get(timeout=10) for _ in range(10)) == list(range(10))
    assert 1 <= most.value <= 4
    assert inside.value == 0
    assert sem.get_value() == 4


def test_counter_ends_at_ten(ctx):
    value = ringshm.Value("i", 0)
    ps = [ctx.Process(target=w.add_one, args=(value,)) for _ in range(10)]
    for p in ps:
        p.start()
    assert join_all(ps) == [0] * 10
    assert value.value == 10


def test_child_sets_value(ctx):
    val = ringshm.Value("i", 0)
    p = ctx.Process(target=w.set_123, args=(val,))
    p.start()
    join_all([p])
    assert val.value == 123


def test_hello_becomes_Hello(ctx):
    shm = ringshm.Array("c", b"hello")
    p = ctx.Process(target=w.capitalise, args=(shm,))
    p.start()
    assert join_all([p]) == [0]
    assert [i for i in shm] == [b"H", b"e", b"l", b"l", b"o"]
    assert shm.value == b"Hello"


def test_pipe_login(ctx):
    fd1, fd2 = ringshm.Pipe()
    out = ringshm.Queue()
    p1 = ctx.Process(target=w.app1, args=(fd1, out))
    p2 = ctx.Process(target=w.app2, args=(fd2,))
    p1.start()
    p2.start()
    assert join_all([p1, p2]) == [0, 0]
    assert out.get(timeout=10) == ("Joy", "123")


def test_pipe_sender_receiver(ctx):
    parent_conn, child_conn = ringshm.Pipe()
    out = ringshm.Queue()
    p1 = ctx.Process(target=w.pipe_sender, args=(parent_conn,))
    p2 = ctx.Process(target=w.pipe_receiver, args=(child_conn, out))
    p1.start()
    p2.start()
    assert join_all([p1, p2]) == [0, 0]
    assert out.get(timeout=10) == "Hello, receiver"


def test_pipe_child_to_parent(ctx):
    parent_conn, child_conn = ringshm.Pipe()
    p = ctx.Process(target=w.pipe_sender, args=(child_conn,))
    p.start()
    assert parent_conn.recv() == "Hello, receiver"
    join_all([p])


def test_pipe_eof_after_close(ctx):
    # 003: the child closes its copy of parent_conn and reads child_conn
    # until EOFError; the parent closes child_conn, sends, closes.
    parent_conn, child_conn = ringshm.Pipe()
    out = ringshm.Queue()
    p = ctx.Process(target=w.pipe_drain, args=(parent_conn, child_conn, out))
    p.start()
    child_conn.close()
    parent_conn.send("hello")
    parent_conn.close()
    assert join_all([p]) == [0]
    assert out.get(timeout=10) == ["hello"]


def test_queue_workers_consume_each_item_once(ctx):
    q = ringshm.Queue()
    out = ringshm.Queue()
    ps = [ctx.Process(target=w.worker, args=(q, out)) for _ in range(4)]
    for p in ps:
        p.start()
    for i in range(10):
        q.put(i)
    for _ in ps:
        q.put(None)
    assert join_all(ps) == [0] * 4
    assert sorted(out.get(timeout=10) for _ in range(10)) == list(range(10))
    assert out.empty()


def test_producers_consumers_done_markers(ctx):
    q = ringshm.Queue()
    out = ringshm.Queue()
    p1 = ctx.Process(target=w.producer, args=[q, "bee", "honey"])
    p2 = ctx.Process(target=w.producer, args=[q, "tree", "apple"])
    c1 = ctx.Process(target=w.consumer, args=[q, out])
    c2 = ctx.Process(target=w.consumer, args=[q, out])
    for p in (p1, p2, c1, c2):
        p.start()
    join_all([p1, p2])
    q.put("done")
    q.put("done")
    join_all([c1, c2])
    got = sorted(out.get(timeout=10) for _ in range(10))
    assert got == sorted(["honey%d" % i for i in range(1, 6)] + ["apple%d" % i for i in range(1, 6)])


def test_joinable_queue_kitchen(ctx):
    q = ringshm.JoinableQueue()
    out = ringshm.Queue()
    ps = [ctx.Process(target=w.jq_producer, args=(name, q)) for name in ("egg", "fish", "chicken")]
    cs = [ctx.Process(target=w.jq_consumer, args=(q, out), daemon=True) for _ in range(2)]
    for p in ps + cs:
        p.start()
    assert join_all(ps) == [0, 0, 0]  # each producer's join() returned
    assert q.unfinished_tasks == 0
    got = sorted(out.get(timeout=10) for _ in range(15))
    assert got == sorted("%s%d" % (n, i) for n in ("egg", "fish", "chicken") for i in range(1, 6))
    for c in cs:
        c.kill()
    join_all(cs)


def test_queue_child_to_parent(ctx):
    queue = ringshm.Queue()
    p = ctx.Process(target=w.put_hello, args=(queue,))
    p.start()
    assert queue.get(timeout=30) == "hello from child process"
    join_all([p])


def test_queue_blocking_and_nowait_forms():
    # 001: put/get with block, timeout, and the _nowait forms.
    q = ringshm.Queue(3)
    q.put("first")
    q.put({"k": "sencond"})
    q.put(["third"])
    assert q.full()
    try:
        q.put(4, block=True, timeout=0.1)
        raise AssertionError("put on a full queue must raise queue.Full")
    except ringshm.Full:
        pass
    assert q.get() == "first"
    assert q.get(block=True, timeout=3) == {"k": "sencond"}
    assert q.get(block=False) == ["third"]
    try:
        q.get_nowait()
        raise AssertionError("get on an empty queue must raise queue.Empty")
    except ringshm.Empty:
        pass
    q.put_nowait("first")
    assert q.qsize() == 1
    assert q.get_nowait() == "first"
