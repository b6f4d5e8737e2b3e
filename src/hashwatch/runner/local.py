"""One way to run work in parallel: work units of many files, mapped over a runner.

Distributing one task per file costs more than hashing a small file (see SCALE.md: 134 us per
task against 17 us in chunks of 500), so callers group files into *work units* and the runner
maps a function over units, yielding results as units finish. ``LocalRunner`` uses a process
pool whose workers are replaced after a number of units, which also contains leaks and crashes
in native decoders; a cluster backend only has to implement :class:`Runner`.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

__all__ = [
    "LocalRunner",
    "Runner",
    "default_workers",
    "make_units",
    "single_threaded_libraries",
]

U = TypeVar("U")
R = TypeVar("R")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def make_units(items: Iterable[U], max_items: int = 256) -> Iterator[list[U]]:
    unit: list[U] = []
    for item in items:
        unit.append(item)
        if len(unit) >= max_items:
            yield unit
            unit = []
    if unit:
        yield unit


class Runner(ABC):
    @abstractmethod
    def map_units(self, fn: Callable[[U], R], units: Iterable[U]) -> Iterator[R]:
        """Apply ``fn`` to every unit; yield results as units finish (any order)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers."""


# Modules every worker needs, imported once in the fork server rather than in each worker.
WORKER_PRELOAD = ["hashwatch.signals.hasher", "hashwatch.scan.worker"]
# Workers are the parallelism: a BLAS thread pool in each (numpy's matrix products in the PDQ
# filter) only makes them spin against each other. Measured: a 2,000-file scan with 2 workers
# took 27.7 s with OpenBLAS's default threads, 10.7 s with one.
SINGLE_THREADED_LIBRARIES = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


def single_threaded_libraries() -> None:
    """Ask native libraries for one thread each, unless the operator chose otherwise.

    Takes effect in processes started afterwards (and in this one only if it runs before numpy
    is imported: the command-line entry point calls it first).
    """
    for name, value in SINGLE_THREADED_LIBRARIES.items():
        os.environ.setdefault(name, value)


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
    ctx.set_forkserver_preload(WORKER_PRELOAD)
    return ctx


class LocalRunner(Runner):
    """Units on a local process pool; ``workers=1`` runs in this process (no pickling).

    Workers are replaced after ``max_units_per_worker`` units, which bounds what a leaking
    native decoder can hold; replacing them much more often costs real time (measured: every
    64 units of 16 files added 0.9 s to a 3.4 s run over 2 GB).
    """

    def __init__(self, workers: int | None = None, *, max_units_per_worker: int = 1000) -> None:
        self.workers = workers or default_workers()
        self.max_units_per_worker = max_units_per_worker
        self._pool: ProcessPoolExecutor | None = None

    def map_units(self, fn: Callable[[U], R], units: Iterable[U]) -> Iterator[R]:
        if self.workers <= 1:
            for unit in units:
                yield fn(unit)
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_worker_context(),
                max_tasks_per_child=self.max_units_per_worker,
            )
        pending: set[Future[R]] = set()
        window = self.workers * 2  # bounded look-ahead: memory stays flat on huge inputs
        for unit in units:
            pending.add(self._pool.submit(fn, unit))
            if len(pending) >= window:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
