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


def test_a_sigterm_sent_while_a_worker_starts_still_ends_it():
    # The pool's terminate() sends SIGTERM to every worker, also to one still starting,
    # which has the parent's handler: the signal must wait for the default action, not
    # reach a handler that the worker's start then replaces (the pool would join it for
    # ever). Here the worker signals itself before its start; it must die of it.
    import multiprocessing
    import signal

    from fsrace.distributed import _sigterm_held, _worker_start

    def starting_worker(parent):
        os.kill(os.getpid(), signal.SIGTERM)  # as terminate() would, this early
        _worker_start(parent)
        time.sleep(60)

    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)  # a handler
    try:
        proc = multiprocessing.get_context("fork").Process(target=starting_worker,
                                                           args=(os.getpid(),))
        with _sigterm_held():
            proc.start()
        proc.join(30)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert proc.exitcode == -signal.SIGTERM, proc.exitcode
