"""The one place fsrace runs work in parallel: in this process, in forked processes, or as
tasks on a Ray cluster (the optional extra, `pip install 'fsrace[ray]'`).

`map_unordered(fn, items, jobs, ray)` calls `fn(*item)` for every item and yields
`(item, result)` as each finishes. Results cross back pickled, so `fn` must return plain
data (a check's result does: recorded steps pickle as what they recorded). Nothing here
knows what the work is; the matrix uses it, and any set of independent jobs can.

`Actors(factory, n, ray)` is for work that is not independent: n objects made by
`factory()`, each in a forked process or as a Ray actor, whose methods are called by name;
calls to one object run in order, and `replies()` yields results as calls end. One stateful
search shared by several workers uses it (explore/parallel.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Generator, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any, cast

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
        with _sigterm_held():
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


@contextlib.contextmanager
def _sigterm_held() -> Iterator[None]:
    """SIGTERM held back while workers are forked, in this thread and the threads the
    pool starts (which fork the workers that replace dead ones): each worker takes it back
    in _worker_start, after it dropped the handler it inherited."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _worker_start(parent: int) -> None:
    # A forked worker inherits the parent's SIGTERM handler (the CLI turns SIGTERM into a
    # stop that prints what was covered); the pool ends its workers with SIGTERM. One sent
    # while the worker starts waits, held back, until the default action is in place: had
    # it arrived to the inherited handler, the handler might have run after the reset and
    # been skipped, and the worker would wait for jobs for ever while the pool joins it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
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


class Actors:
    """n objects made by `factory()`, in forked processes (`ray` None) or as actors on a
    Ray cluster; `submit(i, method, *args)` calls one, `replies()` yields (i, result) as
    calls end, `close()` ends them all (also on Ctrl-C or an error: use `with`)."""

    def __init__(self, factory: Callable[[], Any], n: int, ray: str | None = None) -> None:
        self.size = n
        self._pending: dict[Any, int] = {}
        self._ray = None
        self._procs: list[Any] = []
        self._conns: list[Connection] = []
        if ray is not None:
            self._ray, self._started = _ray_connect(ray)
            remote = self._ray.remote(_RayActor)
            self._actors = [remote.remote(factory) for _ in range(n)]
            return
        ctx = multiprocessing.get_context("fork")
        for _ in range(n):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_actor_loop, args=(factory, theirs, os.getpid()),
                               daemon=True)
            with _sigterm_held():
                proc.start()
            theirs.close()
            self._procs.append(proc)
            self._conns.append(mine)

    def submit(self, i: int, method: str, *args: Any) -> None:
        if self._ray is not None:
            self._pending[self._actors[i].call.remote(method, args)] = i
        else:
            self._conns[i].send((method, args))
            self._pending[self._conns[i]] = i

    def replies(self) -> Iterator[tuple[int, Any]]:
        while self._pending:
            if self._ray is not None:
                done, _ = self._ray.wait(list(self._pending), num_returns=1)
                for ref in done:
                    yield self._pending.pop(ref), self._ray.get(ref)
                continue
            for ready in wait(list(self._pending)):
                conn = cast(Connection, ready)
                i = self._pending.pop(conn)
                try:
                    ok, value = conn.recv()
                except EOFError:
                    raise DistributedError(f"worker {i} died") from None
                if not ok:
                    raise DistributedError(f"worker {i} failed:\n{value}")
                yield i, value

    def close(self) -> None:
        if self._ray is not None:
            for actor in self._actors:
                self._ray.kill(actor)
            if self._started:
                self._ray.shutdown()
            self._ray = None
            return
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
            proc.join()
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []

    def __enter__(self) -> Actors:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _actor_loop(factory: Callable[[], Any], conn: Connection, parent: int) -> None:
    _worker_start(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone hears Ctrl-C
    import traceback

    obj = factory()
    while True:
        try:
            method, args = conn.recv()
        except EOFError:
            os._exit(0)
        try:
            conn.send((True, getattr(obj, method)(*args)))
        except Exception:
            conn.send((False, traceback.format_exc()))


class _RayActor:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self.obj = factory()

    def call(self, method: str, args: tuple) -> Any:
        return getattr(self.obj, method)(*args)


def _on_ray(fn: Callable[..., Any], items: list[tuple], address: str
            ) -> Iterator[tuple[tuple, Any]]:
    ray, started = _ray_connect(address)
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


def _ray_connect(address: str) -> tuple[Any, bool]:
    """Ray, connected to `address` (LOCAL: a new instance here); and whether this call
    started the connection (then the caller shuts it down)."""
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
    return ray, started
