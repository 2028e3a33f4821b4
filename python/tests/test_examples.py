"""The seed examples in python/examples run as they are (import line
changed only) and print what the tutorials say they print."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")

EXPECT = {
    "value_counter.py": ["10"],
    "array_hello.py": ["b'Hello'"],
    "pipe_login.py": ["登录成功: ('Joy', '123')"],
    "pipe_eof.py": ["hello"],
}


def test_queue_workers_print_every_item_once(tmp_path):
    # Four processes print to one stdout: lines may interleave, digits not.
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, "queue_workers.py")], cwd=str(tmp_path),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert sorted(r.stdout.decode().split()) == [str(i) for i in range(10)] or \
        sorted("".join(r.stdout.decode().split())) == list("0123456789")


@pytest.mark.parametrize("script", sorted(EXPECT))
def test_example_runs(script, tmp_path):
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, script)], cwd=str(tmp_path),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    lines = r.stdout.decode().split("\n")
    for want in EXPECT[script]:
        assert want in lines, (want, lines)
