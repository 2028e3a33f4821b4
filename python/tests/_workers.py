"""Child-process bodies for the tests (importable under spawn)."""

import json
import os
import random
import signal
import time

import ringshm


def join_all(procs, timeout=60):
    """Joins every process; kills and fails on any that does not end."""
    deadline = time.monotonic() + timeout
    stuck = []
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            stuck.append(p)
    for p in stuck:
        p.kill()
        p.join(5)
    assert not stuck, "processes did not end: %r" % stuck
    return [p.exitcode for p in procs]


# -- seed: tickets (003) ------------------------------------------------------

def buy_ticket(i, lock, db, results):
    try:
        with open(db) as f:
            json.load(f)  # check_ticket: unlocked, so it may see a write in progress
    except ValueError:
        pass
    lock.acquire()
    with open(db) as f:
        ticket_count = json.load(f)
    time.sleep(random.random() * 0.02)
    ok = ticket_count["ticket"] > 0
    if ok:
        ticket_count["ticket"] -= 1
    time.sleep(random.random() * 0.02)
    with open(db, "w") as f:
        json.dump(ticket_count, f)
    lock.release()
    results.put((i, ok))


# -- seed: KTV (003) -----------------------------------------------------------

def ktv(i, sem, inside, most, sang):
    sem.acquire()
    with inside.get_lock():
        inside.value += 1
        if inside.value > most.value:
            most.value = inside.value
    time.sleep(random.random() * 0.05)
    with inside.get_lock():
        inside.value -= 1
    sang.put(i)
    sem.release()


# -- seed: value counter and array (002, 000) ---------------------------------

def add_one(value):
    value.value += 1


def capitalise(shm):
    for i in shm:
        pass
    shm[0] = b"H"


def set_123(val):
    val.value = 123


# -- seed: pipes (000, 002) ---------------------------------------------------

def app1(fd1, out):
    fd1.send("app1 可以用你的账号登录吗?")
    data = fd1.recv()
    out.put(data)


def app2(fd2):
    request = fd2.recv()
    fd2.send(("Joy", "123") if request.startswith("app1") else None)


def pipe_sender(conn):
    conn.send("Hello, receiver")


def pipe_receiver(conn, out):
    out.put(conn.recv())


def pipe_drain(parent_conn, child_conn, out):
    parent_conn.close()
    got = []
    while True:
        try:
            got.append(child_conn.recv())
        except EOFError:
            child_conn.close()
            break
    out.put(got)


# -- seed: queues (002, 003, 004) ---------------------------------------------

def worker(q, out):
    while True:
        item = q.get()
        if item is None:
            break
        out.put(item)


def producer(q, name, food):
    for i in range(1, 6):
        time.sleep(random.random() * 0.01)
        q.put("%s%s" % (food, i))


def consumer(q, out):
    while True:
        food = q.get()
        if food == "done":
            break
        out.put(food)


def jq_producer(name, q):
    for i in range(1, 6):
        time.sleep(random.random() * 0.01)
        q.put("%s%s" % (name, i))
    q.join()


def jq_consumer(q, out):
    while True:
        food = q.get()
        time.sleep(random.random() * 0.01)
        out.put(food)
        q.task_done()


def put_hello(queue):
    queue.put("hello from child process")


def traffic_light(e, cars):
    time.sleep(0.05)
    e.set()
    cars.wait(30)


# -- semantics helpers ----------------------------------------------------------

def put_items(q, items):
    for x in items:
        q.put(x)


def set_event_later(e, delay):
    time.sleep(delay)
    e.set()


def notify_after(cond, flag, delay):
    time.sleep(delay)
    with cond:
        flag.value = 1
        cond.notify_all()


def barrier_wait(barrier, out):
    try:
        out.put(barrier.wait())
    except Exception as e:  # BrokenBarrierError
        out.put(type(e).__name__)


def barrier_action(counter):
    counter.value += 1


def release_later(lock, delay):
    time.sleep(delay)
    lock.release()


def hold_lock_forever(lock, ready):
    lock.acquire()
    ready.set()
    time.sleep(600)


def send_forever(conn, ready):
    i = 0
    while True:
        conn.send_bytes(b"%08d" % i)
        i += 1
        if i == 100:
            ready.set()


def wait_in_barrier(barrier, ready):
    ready.set()
    barrier.wait()


def echo_obj(conn):
    while True:
        x = conn.recv()
        if x is None:
            return
        conn.send(x)


def get_from_queue_in_child(q, out):
    out.put(q.get(timeout=30))


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def add_many(value, n):
    for _ in range(n):
        value.value += 1
        value.value -= 2
        value.value += 2


def create_and_leave(prefix, keep):
    keep.extend([
        ringshm.Queue(name=prefix + "q"),
        ringshm.JoinableQueue(name=prefix + "jq"),
        ringshm.Lock(name=prefix + "l"),
        ringshm.Value("i", 1, name=prefix + "v"),
        ringshm.Array("d", 2, name=prefix + "a"),
        ringshm.Event(name=prefix + "e"),
        ringshm.Barrier(2, name=prefix + "b"),
        ringshm.Pipe(name=prefix + "p"),
    ])


def hold_permit_forever(sem, ready):
    sem.acquire()
    ready.set()
    time.sleep(600)


def echo_conn_from_queue(q):
    conn = q.get(timeout=60)  # a Connection sent through a queue: its end moves here
    while True:
        x = conn.recv()
        if x is None:
            return
        conn.send(x)
