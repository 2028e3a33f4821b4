"""Ctrl-C: a process blocked in a ringshm call gets SIGINT and ends with
KeyboardInterrupt promptly."""

import os
import signal
import subprocess
import sys
import time

import pytest

import ringshm

HERE = os.path.dirname(os.path.abspath(__file__))

BLOCKERS = {
    "queue.get": "q = ringshm.Queue(); ready(); q.get()",
    "pipe.recv": "a, b = ringshm.Pipe(); ready(); b.recv()",
    "lock.acquire": "l = ringshm.Lock(); l.acquire(); ready(); l.acquire()",
    "semaphore.acquire": "s = ringshm.Semaphore(0); ready(); s.acquire()",
    "event.wait": "e = ringshm.Event(); ready(); e.wait()",
    "condition.wait": "c = ringshm.Condition(); c.acquire(); ready(); c.wait()",
    "barrier.wait": "b = ringshm.Barrier(2); ready(); b.wait()",
    "joinable.join": "q = ringshm.JoinableQueue(); q.put(1); ready(); q.join()",
}


@pytest.mark.parametrize("what", sorted(BLOCKERS))
def test_sigint_interrupts_blocking_call(what):
    code = (
        "import sys, ringshm\n"
        "def ready():\n"
        "    print('ready', flush=True)\n"
        "%s\n" % BLOCKERS[what]
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=HERE
    )
    try:
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(0.2)  # let it block
        assert child.poll() is None
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert b"KeyboardInterrupt" in err, err.decode(errors="replace")


def test_queue_get_in_multiprocessing_child_interrupted():
    ctx = __import__("multiprocessing").get_context("spawn")
    import _workers as w

    q = ringshm.Queue()
    out = ringshm.Queue()
    p = ctx.Process(target=w.get_from_queue_in_child, args=(q, out))
    p.start()
    time.sleep(1.0)
    os.kill(p.pid, signal.SIGINT)
    p.join(30)
    assert not p.is_alive()
    assert p.exitcode == 1  # multiprocessing's exit code for KeyboardInterrupt
