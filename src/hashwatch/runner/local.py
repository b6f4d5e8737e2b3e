"""The reference runner: work units on a local process pool (or in this process).

Workers are forked from a fork server with the hashing modules preloaded and replaced after a
number of units, which also contains leaks and crashes in native decoders. Progress events
(:func:`hashwatch.runner.report_progress`) travel back on one pipe shared by the workers and
are handed to the caller's callback while units are still running.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import multiprocessing.context
import multiprocessing.queues
import multiprocessing.util
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from hashwatch.runner import (
    ProgressCallback,
    Runner,
    default_workers,
    set_progress_sink,
    single_threaded_libraries,
)

__all__ = ["LocalRunner"]

U = TypeVar("U")
R = TypeVar("R")
# How long the caller waits for a unit before passing on the progress events received.
PROGRESS_POLL_S = 0.1


# Modules every worker needs, imported once in the fork server rather than in each worker.
WORKER_PRELOAD = ["hashwatch.signals.hasher", "hashwatch.scan.worker", "hashwatch.runner.local"]


def _reap_helpers() -> None:
    """At exit: stop the fork server and the resource tracker this process started, and wait
    for them. Left to stop on their own after this process has gone, they outlive it, are
    handed to PID 1 and stay zombies until it reaps them (in a container, often never), and
    their CPU time is missing from this process's children's times."""
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    for helper in (
        getattr(multiprocessing.forkserver, "_forkserver", None),
        getattr(multiprocessing.resource_tracker, "_resource_tracker", None),
    ):
        stop = getattr(helper, "_stop", None)
        if stop is None:  # pragma: no cover - a Python without the private helpers
            continue
        with contextlib.suppress(OSError):  # already gone (ChildProcessError is an OSError)
            stop()


_reap_registered = False


def _worker_context() -> multiprocessing.context.BaseContext:
    """A fork server with the hashing modules preloaded.

    ``max_tasks_per_child`` rules out plain fork, and Python then defaults to *spawn*: every
    worker, and every replacement after a number of units, would start a new interpreter and
    import numba, Pillow and the decoders again (measured: 1.6x the wall time of sha256sum over
    a 2 GB tree instead of well under it). Forking from a preloaded server costs milliseconds.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    single_threaded_libraries()  # inherited by the fork server when it starts
    global _reap_registered
    if not _reap_registered:
        # Run by multiprocessing's own exit function after its priority-0 finalizers (the
        # pool's semaphores unlinked) and its children joined: stopped earlier, the resource
        # tracker would unlink the semaphores itself, warn of leaks and fail their cleanups.
        multiprocessing.util.Finalize(None, _reap_helpers, exitpriority=-1)
        _reap_registered = True
    ctx.set_forkserver_preload(WORKER_PRELOAD)
    return ctx


# In a worker process: the pipe progress events go back on (set when the worker starts).
_worker_events: multiprocessing.queues.SimpleQueue[tuple[int, Any]] | None = None


def _init_worker(events: multiprocessing.queues.SimpleQueue[tuple[int, Any]]) -> None:
    global _worker_events
    _worker_events = events


def _run_unit(token: int | None, fn: Callable[[U], R], unit: U) -> R:
    """A unit in a worker: its progress events are sent tagged with its token (if wanted)."""
    events = _worker_events
    sink = None
    if token is not None and events is not None:

        def sink(event: Any) -> None:
            events.put((token, event))  # written before the result: the caller sees it first

    old = set_progress_sink(sink)
    try:
        return fn(unit)
    finally:
        set_progress_sink(old)


class LocalRunner(Runner):
    """Units on a local process pool; ``workers=1`` runs in this process (no pickling).

    Workers are replaced after ``max_units_per_worker`` units, which bounds what a leaking
    native decoder can hold; replacing them much more often costs real time (measured: every
    64 units of 16 files added 0.9 s to a 3.4 s run over 2 GB).
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, max_units_per_worker: int = 1000) -> None:
        self.workers = workers or default_workers()
        self.max_units_per_worker = max_units_per_worker
        self._pool: ProcessPoolExecutor | None = None
        self._events: multiprocessing.queues.SimpleQueue[tuple[int, Any]] | None = None
        self._sinks: dict[int, ProgressCallback] = {}
        self._tokens = itertools.count()
        self._drain_lock = threading.Lock()

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = _worker_context()
            self._events = ctx.SimpleQueue()
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=ctx,
                max_tasks_per_child=self.max_units_per_worker,
                initializer=_init_worker,
                initargs=(self._events,),
            )
        return self._pool

    def _submit(
        self, fn: Callable[[U], R], unit: U, on_progress: ProgressCallback | None
    ) -> tuple[Future[R], int | None]:
        if self.workers <= 1:
            future: Future[R] = Future()
            old = set_progress_sink(on_progress)
            try:
                future.set_result(fn(unit))
            except Exception as exc:  # the caller sees it from result(), as from a pool
                future.set_exception(exc)
            finally:
                set_progress_sink(old)
            return future, None
        pool = self._ensure_pool()
        token = next(self._tokens) if on_progress is not None else None
        if token is not None and on_progress is not None:
            self._sinks[token] = on_progress
        return pool.submit(_run_unit, token, fn, unit), token

    def submit(
        self, fn: Callable[[U], R], unit: U, *, on_progress: ProgressCallback | None = None
    ) -> Future[R]:
        future, token = self._submit(fn, unit, on_progress)
        if token is not None:
            # Outside map_units, events are passed on when the unit completes (from the
            # pool's thread).
            future.add_done_callback(lambda _f: self._finish(token))
        return future

    def _drain(self) -> None:
        """Hand every progress event received so far to its unit's callback."""
        with self._drain_lock:
            events = self._events
            while events is not None and not events.empty():
                token, event = events.get()
                sink = self._sinks.get(token)
                if sink is not None:
                    sink(event)

    def _finish(self, token: int | None) -> None:
        self._drain()
        if token is not None:
            self._sinks.pop(token, None)

    def map_units(
        self,
        fn: Callable[[U], R],
        units: Iterable[U],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> Iterator[R]:
        if self.workers <= 1:
            for unit in units:
                yield self._submit(fn, unit, on_progress)[0].result()
            return
        timeout = PROGRESS_POLL_S if on_progress is not None else None

        def wait_some(futures: list[Future[R]]) -> Iterable[Future[R]]:
            done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
            self._drain()  # events of finished units, and of running ones so far
            return done

        def collect(future: Future[R], token: int | None) -> R:
            self._finish(token)
            return future.result()

        yield from self._map_windowed(
            units,
            lambda unit: self._submit(fn, unit, on_progress),
            wait_some,
            collect,
            window=self.workers * 2,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self._events = None
        self._sinks.clear()

    def __enter__(self) -> LocalRunner:
        return self
