"""Python benchmarks: ringshm against multiprocessing (and faster-fifo when
it is installed), 8 B and 1 KiB payloads, ratios in one run.

    python benches/bench.py            # full run
    python benches/bench.py --quick    # tiny counts: checks that it runs

Measured: Queue round trip (put, the child echoes on a second queue) and
streaming (a child puts, the parent gets), Pipe round trip, uncontended Lock
acquire/release, and Value increments under its lock.

Method: the parent runs on CPU 0 and every child pins itself to CPU 1 (two
sides sharing a CPU would make batching queues look faster); a child signals
that it is running before the clock starts; each comparison runs ROUNDS
times, alternating the contenders, and the table shows medians. Figures are
only comparable within one run (the reference machine is a noisy 2-vCPU VM).
"""

import multiprocessing as mp
import os
import statistics
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
ROUNDS = 1 if QUICK else 5
PAYLOADS = {"8 B": b"x" * 8, "1 KiB": b"x" * 1024}


def _pin(cpu):
    """Pins this process to `cpu` (modulo the CPUs it may use)."""
    cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    try:
        os.sched_setaffinity(0, {cpus[cpu % len(cpus)]})
    except OSError:
        pass


def _stream_child(q, n, payload):
    _pin(1)
    q.put(b"ready")
    for _ in range(n):
        q.put(payload)
    q.put(None)


def _echo_child(q_in, q_out):
    _pin(1)
    while True:
        x = q_in.get()
        q_out.put(x)
        if x is None:
            return


def _pipe_echo_child(conn):
    _pin(1)
    while True:
        x = conn.recv_bytes()
        conn.send_bytes(x)
        if x == b"":
            return


def stream(make_q, payload, n=N_STREAM):
    q = make_q()
    p = mp.Process(target=_stream_child, args=(q, n, payload))
    p.start()
    assert q.get(timeout=60) == b"ready"
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
    """Runs `theirs` and `ours` (callables) ROUNDS times, alternating, and
    prints the medians and the ratio (how many times better ringshm is)."""
    a, b = [], []
    for _ in range(ROUNDS):
        a.append(theirs())
        b.append(ours())
    t, o = statistics.median(a), statistics.median(b)
    ratio = o / t if higher_is_better else t / o
    print("| %s | %.2f | %.2f | %s | %.1fx |" % (what, t, o, unit, ratio), flush=True)


def main():
    _pin(0)
    print("| benchmark | other | ringshm | unit | ringshm better by |")
    print("|---|---|---|---|---|")
    for label, payload in PAYLOADS.items():
        row("Queue streaming %s vs multiprocessing" % label, lambda: stream(mp.Queue, payload),
            lambda: stream(ringshm.Queue, payload), "items/s", True)
        if faster_fifo is not None:
            row("Queue streaming %s vs faster-fifo" % label, lambda: stream(faster_fifo.Queue, payload),
                lambda: stream(ringshm.Queue, payload), "items/s", True)
        row("Queue round trip %s vs multiprocessing" % label, lambda: queue_rtt(mp.Queue, payload),
            lambda: queue_rtt(ringshm.Queue, payload), "us", False)
        if faster_fifo is not None:
            row("Queue round trip %s vs faster-fifo" % label, lambda: queue_rtt(faster_fifo.Queue, payload),
                lambda: queue_rtt(ringshm.Queue, payload), "us", False)
        row("Pipe round trip %s vs multiprocessing" % label, lambda: pipe_rtt(mp.Pipe, payload),
            lambda: pipe_rtt(ringshm.Pipe, payload), "us", False)
    row("Lock acquire+release, uncontended", lambda: lock_ns(mp.Lock()), lambda: lock_ns(ringshm.Lock()), "ns",
        False)
    row("Value += 1 under get_lock()", lambda: value_ns(mp.Value("i", 0)), lambda: value_ns(ringshm.Value("i", 0)),
        "ns", False)


if __name__ == "__main__":
    main()
