import faulthandler
import multiprocessing
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))

#: A test that takes longer than this is stuck: dump every thread's stack
#: and end the run (a failure, never a hang).
WATCHDOG = float(os.environ.get("RINGSHM_TEST_WATCHDOG", "180"))


def _stuck():
    # Print every thread's stack where pytest does not capture it, end the
    # children (they would outlive us), and leave: a failure, not a hang.
    faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
    sys.__stderr__.write("\nwatchdog: a test took longer than %ss\n" % WATCHDOG)
    for p in multiprocessing.active_children():
        p.kill()
    os._exit(3)


@pytest.fixture(autouse=True)
def watchdog():
    t = threading.Timer(WATCHDOG, _stuck)
    t.daemon = True
    t.start()
    yield
    t.cancel()


@pytest.fixture(params=["fork", "spawn"])
def ctx(request):
    """A multiprocessing context of each start method the seeds run under."""
    return multiprocessing.get_context(request.param)


@pytest.fixture(params=["fork", "spawn", "forkserver"])
def any_ctx(request):
    return multiprocessing.get_context(request.param)
