"""Python benchmarks: ringshm against multiprocessing (and faster-fifo when
it is installed), 8 B and 1 KiB payloads, ratios in one run.

    python benches/bench.py            # full run
    python benches/bench.py --quick    # tiny counts: checks that it runs

Measured: Queue round trip (put, the child echoes on a second queue) and
streaming (a child puts, the parent gets), Pipe round trip, uncontended Lock
acquire/release, and Value increments under its lock.
"""

import multiprocessing as mp
import sys
import time

import ringshm

try:
    import faster_fifo
except ImportError:  # optional
    faster_fifo = None

QUICK = "--quick" in sys.argv
N_STREAM = 200 if QUICK else 200000
N_RTT = 50 if QUICK else 20000
N_LOCK = 1000 if QUICK else 1000000
PAYLOADS = {"8 B": b"x" * 8, "1 KiB": b"x" * 1024}


def _stream_child(q, n, payload):
    for _ in range(n):
        q.put(payload)
    q.put(None)


def _echo_child(q_in, q_out):
    while True:
        x = q_in.get()
        q_out.put(x)
        if x is None:
            return


def _pipe_echo_child(conn):
    while True:
        x = conn.recv_bytes()
        conn.send_bytes(x)
        if x == b"":
            return


def _ff_get(q):
    return q.get(timeout=30)


def stream(make_q, payload, n=N_STREAM):
    q = make_q()
    p = mp.Process(target=_stream_child, args=(q, n, payload))
    p.start()
    t0 = time.perf_counter()
    got = 0
    while q.get(timeout=60) is not None:
        got += 1
    dt = time.perf_counter() - t0
    p.join()
    assert got == n
    return n / dt


def queue_rtt(make_q, payload, n=N_RTT):
    a, b = make_q(), make_q()
    p = mp.Process(target=_echo_child, args=(a, b))
    p.start()
    a.put(payload)
    b.get(timeout=60)  # warm up: the child runs
    t0 = time.perf_counter()
    for _ in range(n):
        a.put(payload)
        b.get(timeout=60)
    dt = time.perf_counter() - t0
    a.put(None)
    b.get(timeout=60)
    p.join()
    return dt / n * 1e6


def pipe_rtt(make_pipe, payload, n=N_RTT):
    x, y = make_pipe()
    p = mp.Process(target=_pipe_echo_child, args=(y,))
    p.start()
    x.send_bytes(payload)
    x.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        x.send_bytes(payload)
        x.recv_bytes()
    dt = time.perf_counter() - t0
    x.send_bytes(b"")
    x.recv_bytes()
    p.join()
    return dt / n * 1e6


def lock_ns(lock, n=N_LOCK):
    t0 = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return (time.perf_counter() - t0) / n * 1e9


def value_ns(v, n=N_LOCK):
    t0 = time.perf_counter()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    return (time.perf_counter() - t0) / n * 1e9


def row(what, theirs, ours, unit, higher_is_better):
    ratio = ours / theirs if higher_is_better else theirs / ours
    print("%-44s %12.2f %12.2f %8.1fx  (%s)" % (what, theirs, ours, ratio, unit))


def main():
    print("%-44s %12s %12s %9s" % ("", "other", "ringshm", "ratio"))
    for label, payload in PAYLOADS.items():
        row("Queue streaming %s vs multiprocessing" % label, stream(mp.Queue, payload),
            stream(ringshm.Queue, payload), "items/s", True)
        if faster_fifo is not None:
            row("Queue streaming %s vs faster-fifo" % label, stream(faster_fifo.Queue, payload),
                stream(ringshm.Queue, payload), "items/s", True)
        row("Queue round trip %s vs multiprocessing" % label, queue_rtt(mp.Queue, payload),
            queue_rtt(ringshm.Queue, payload), "us", False)
        row("Pipe round trip %s vs multiprocessing" % label, pipe_rtt(mp.Pipe, payload),
            pipe_rtt(ringshm.Pipe, payload), "us", False)
    row("Lock acquire+release, uncontended", lock_ns(mp.Lock()), lock_ns(ringshm.Lock()), "ns", False)
    row("Value += 1 under get_lock()", value_ns(mp.Value("i", 0)), value_ns(ringshm.Value("i", 0)), "ns", False)


if __name__ == "__main__":
    main()
