"""The one place fsrace runs work in parallel: in this process, in forked processes, or as
tasks on a Ray cluster (the optional extra, `pip install 'fsrace[ray]'`).

`map_unordered(fn, items, jobs, ray)` calls `fn(*item)` for every item and yields
`(item, result)` as each finishes. Results cross back pickled, so `fn` must return plain
data (a check's result does: recorded steps pickle as what they recorded). Nothing here
knows what the work is; the matrix uses it, and any set of independent jobs can.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

LOCAL = "local"  # --ray local: start a Ray instance on this machine
SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": every Ray address is 127.0.0.1


class DistributedError(RuntimeError):
    """Ray is missing or its cluster cannot be reached."""


def map_unordered(fn: Callable[..., Any], items: Iterable[tuple], jobs: int = 1,
                  ray: str | None = None) -> Generator[tuple[tuple, Any], None, None]:
    items = list(items)
    if ray is not None:
        yield from _on_ray(fn, items, ray)
    elif jobs <= 1:
        for item in items:
            yield item, fn(*item)
    else:
        pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_start,
                                                           initargs=(os.getpid(),))
        try:
            yield from pool.imap_unordered(_call, [(fn, item) for item in items])
            pool.close()
        except BaseException:
            # Ctrl-C, SIGTERM, a failed job, or the caller stopped reading: the workers
            # are killed, queued jobs and all, rather than left to finish.
            pool.terminate()
            raise
        finally:
            pool.join()


def _worker_start(parent: int) -> None:
    # A forked worker inherits the parent's SIGTERM handler (the CLI turns SIGTERM into a
    # stop that prints what was covered); the pool ends its workers with SIGTERM.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Out of the terminal's process group: a Ctrl-C or a kill of the group would otherwise
    # kill a worker while it holds the pool's result-queue lock, and the parent's
    # Pool.terminate() would then wait on that lock for ever. The parent alone is
    # signalled and ends its workers; if it dies first, the kernel ends them.
    os.setpgid(0, 0)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(1)


def _call(job: tuple[Callable[..., Any], tuple]) -> tuple[tuple, Any]:
    fn, item = job
    return item, fn(*item)


def _on_ray(fn: Callable[..., Any], items: list[tuple], address: str
            ) -> Iterator[tuple[tuple, Any]]:
    if address == LOCAL or address.split(":")[0] in ("127.0.0.1", "localhost"):
        # Ray maps a loopback address to the machine's own address unless told that this
        # is a single-machine cluster; read when Ray is first imported.
        os.environ.setdefault(SINGLE_MACHINE, "0")
    try:
        import ray
    except ImportError as e:
        raise DistributedError("--ray needs Ray: pip install 'fsrace[ray]'") from e
    started = not ray.is_initialized()
    if started:
        try:
            # Every Ray process of a local instance listens on 127.0.0.1 only; no dashboard.
            if address == LOCAL:
                ray.init(_node_ip_address="127.0.0.1", include_dashboard=False,
                         log_to_driver=False)
            else:
                ray.init(address=address, _node_ip_address="127.0.0.1",
                         log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise DistributedError(f"cannot reach the Ray cluster at {address}: {e}") from e
    try:
        remote = ray.remote(fn)
        pending = {remote.remote(*item): item for item in items}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started:
            ray.shutdown()
