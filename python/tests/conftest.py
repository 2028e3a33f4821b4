import faulthandler
import multiprocessing
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

#: A test that takes longer than this is stuck: dump every thread's stack
#: and end the run (a failure, never a hang).
WATCHDOG = float(os.environ.get("RINGSHM_TEST_WATCHDOG", "180"))


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(params=["fork", "spawn"])
def ctx(request):
    """A multiprocessing context of each start method the seeds run under."""
    return multiprocessing.get_context(request.param)


@pytest.fixture(params=["fork", "spawn", "forkserver"])
def any_ctx(request):
    return multiprocessing.get_context(request.param)
