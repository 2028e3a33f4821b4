"""``python -m ringshm.demo [N]``: races ``multiprocessing.Queue`` against
``ringshm.Queue`` (a child process puts N small items, the parent gets them)
and prints the ratio."""

import multiprocessing
import sys
import time

import ringshm


def _produce(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)


def race(make_queue, n):
    q = make_queue()
    p = multiprocessing.Process(target=_produce, args=(q, n))
    t0 = time.perf_counter()
    p.start()
    got = 0
    while q.get() is not None:
        got += 1
    dt = time.perf_counter() - t0
    p.join()
    assert got == n
    return dt


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 100000
    mp = race(multiprocessing.Queue, n)
    rs = race(ringshm.Queue, n)
    print("multiprocessing.Queue: %8.0f items/s" % (n / mp))
    print("ringshm.Queue:         %8.0f items/s" % (n / rs))
    print("ringshm is %.1fx as fast (%d items, start-up included)" % (mp / rs, n))


if __name__ == "__main__":
    main()
