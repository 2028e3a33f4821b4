"""Python and a Rust process meet by name: a Python Queue's put_bytes/
get_bytes is a Rust ByteQueue, Value('i') is Value<i32>, Array('d') is
Array<f64>, a Pipe's send_bytes pairs with Rust's recv_bytes."""

import os
import shutil
import subprocess
import time

import pytest

import ringshm

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "rust_peer")


@pytest.fixture(scope="module")
def rust_peer():
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    target = os.path.join(HERE, "..", "target")
    subprocess.run(["cargo", "build", "--quiet", "--manifest-path", os.path.join(PEER, "Cargo.toml"),
                    "--target-dir", target], check=True, timeout=1200)
    return os.path.join(target, "debug", "rust_peer")


def test_rust_peer_exchanges(rust_peer):
    name = "rshm-test-rs-%d-%d" % (os.getpid(), time.monotonic_ns() % 10**9)
    q = ringshm.Queue(8, name=name + ".q")
    r = ringshm.Queue(8, name=name + ".r")
    v = ringshm.Value("i", 37, name=name + ".v")
    d = ringshm.Array("d", [1.5, 2.5, 3.0], name=name + ".d")
    a, b = ringshm.Pipe(name=name + ".p")
    b.close()  # the Rust process takes end B
    peer = subprocess.Popen([rust_peer, name])
    try:
        for m in (b"hello", b"from python", b""):
            q.put_bytes(m)
        q.put_bytes(b"end")
        assert [r.get_bytes(timeout=30) for _ in range(3)] == [b"HELLO", b"FROM PYTHON", b""]
        a.send_bytes(b"stressed")
        assert a.recv_bytes() == b"desserts"
        assert peer.wait(timeout=60) == 0
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()
    assert v.value == 42
    assert d[0] == 7.0
    with pytest.raises(EOFError):
        a.recv()  # the Rust process ended: its end is gone
