"""Jobs in forked worker processes (fsrace.distributed without Ray): results as they finish,
and nothing left running when the caller stops."""

import os
import time

from fsrace.distributed import map_unordered


def _square(x):
    return x * x


def _sleep(seconds):
    time.sleep(seconds)
    return os.getpid()


def test_every_job_comes_back_once_with_its_item():
    got = dict(map_unordered(_square, [(i,) for i in range(20)], jobs=2))
    assert got == {(i,): i * i for i in range(20)}


def test_a_caller_that_stops_reading_leaves_no_worker_running():
    results = map_unordered(_sleep, [(0.1,)] + [(600,)] * 5, jobs=2)
    _, pid = next(results)  # the short job
    start = time.monotonic()
    results.close()  # as Ctrl-C or a failed job would
    assert time.monotonic() - start < 60  # the long jobs were killed, not waited for
    assert not os.path.exists(f"/proc/{pid}"), "a worker is still running"
