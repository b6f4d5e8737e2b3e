"""Running work in parallel: work units of many files, submitted to a runner chosen by name.

Distributing one task per file costs more than hashing a small file (see SCALE.md: 134 us per
task against 17 us in chunks of 500), so callers group files into *work units*. A
:class:`Runner` has the shape of :class:`concurrent.futures.Executor`: :meth:`Runner.submit`
one unit, and :meth:`Runner.map_units` yields results as units complete (any order), with a
bounded number in flight. A unit's function may call :func:`report_progress` as it goes (for
instance once per file); the runner delivers those events to the caller's ``on_progress``, in
the caller's thread, each before the result of the unit that sent it.

Runners are picked by name (``Settings.runner``, ``HASHWATCH_RUNNER``) from :data:`RUNNERS`;
:class:`~hashwatch.runner.local.LocalRunner` (``local``) is the reference implementation;
:class:`~hashwatch.runner.ray.RayRunner` (``ray``, the optional extra ``hashwatch[ray]``) runs
the same units on a Ray cluster. ``tests/test_runner_contract.py`` runs every registered runner
through one contract.
This module stays light: the command line imports it at start-up.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

__all__ = [
    "RUNNERS",
    "Runner",
    "default_workers",
    "make_runner",
    "make_units",
    "report_progress",
    "report_progress_of",
    "single_threaded_libraries",
]

U = TypeVar("U")
R = TypeVar("R")
H = TypeVar("H")  # a runner's handle on a submitted unit (a future, a Ray object reference)
T = TypeVar("T")  # what the runner keeps beside a handle until the unit's result is taken
ProgressCallback = Callable[[Any], None]


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


# Where report_progress sends events in this process: set by the runner around a unit run in
# process, or once per worker process for the life of a pool. None: nobody listens.
_progress_sink: ProgressCallback | None = None


def report_progress(event: Any) -> None:
    """Called inside a unit's function: hand ``event`` (picklable) to whoever runs it."""
    if _progress_sink is not None:
        _progress_sink(event)


def report_progress_of(name: str, item: Any) -> None:
    """:func:`report_progress` of ``item``'s attribute ``name`` rather than the whole item:
    ``partial(report_progress_of, "size")`` is what a unit's function calls when the caller
    counts sizes only (an int travels back cheaper than the object: a scan's evidence file
    cost ~8 us to unpickle in the caller, a frozen dataclass set field by field)."""
    report_progress(getattr(item, name))


def set_progress_sink(sink: ProgressCallback | None) -> ProgressCallback | None:
    """For runners: where :func:`report_progress` goes in this process; returns the old one."""
    global _progress_sink
    old, _progress_sink = _progress_sink, sink
    return old


class Runner(ABC):
    """Runs work units; see the module docstring for the contract."""

    name: ClassVar[str]

    @abstractmethod
    def submit(
        self, fn: Callable[[U], R], unit: U, *, on_progress: ProgressCallback | None = None
    ) -> Future[R]:
        """Start ``fn(unit)``; its :func:`report_progress` events go to ``on_progress``
        (delivered by :meth:`map_units`, or when the future's result is taken)."""

    @abstractmethod
    def map_units(
        self,
        fn: Callable[[U], R],
        units: Iterable[U],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> Iterator[R]:
        """Apply ``fn`` to every unit; yield results as units complete (any order). Every
        event a unit reported reaches ``on_progress`` before that unit's result is yielded."""

    def _map_windowed(
        self,
        units: Iterable[U],
        submit: Callable[[U], tuple[H, T]],
        wait_some: Callable[[list[H]], Iterable[H]],
        collect: Callable[[H, T], R],
        *,
        window: int,
        cancel: Callable[[H], object] | None = None,
    ) -> Iterator[R]:
        """The loop behind :meth:`map_units`: keep up to ``window`` units submitted (a bounded
        look-ahead, so memory stays flat on huge inputs), yield results as units finish.

        ``submit`` starts a unit and returns its handle and what goes with it; ``wait_some``
        blocks until at least one handle is done (or a progress poll interval passed), passes
        on the progress events received so far and returns the finished handles;
        ``collect`` takes a finished unit's result. ``cancel``, if given, is called on every
        handle still pending when the caller stops early or a unit fails.
        """
        pending: dict[H, T] = {}
        source = iter(units)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < window:
                    unit = next(source, _END)
                    if unit is _END:
                        exhausted = True
                        break
                    handle, extra = submit(unit)
                    pending[handle] = extra
                if not pending:
                    return
                for handle in wait_some(list(pending)):
                    yield collect(handle, pending.pop(handle))
        finally:
            if cancel is not None:
                for handle in pending:
                    cancel(handle)

    def check_readable(self, paths: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~hashwatch.errors.ConfigError` if a worker cannot read ``paths``.

        Local workers see what the caller sees (nothing to check); a cluster runner checks
        every node and names the ones that cannot.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END: Any = object()


def _local(workers: int | None, address: str | None) -> Runner:
    from hashwatch.runner.local import LocalRunner

    return LocalRunner(workers)


def _ray(workers: int | None, address: str | None) -> Runner:
    from hashwatch.runner.ray import RayRunner  # imports ray: only when asked for

    return RayRunner(workers, address=address)


# Runner names, as settings give them, to a factory taking the number of workers and the
# address of a cluster (None: local, or the runner's own default).
RUNNERS: MappingProxyType[str, Callable[[int | None, str | None], Runner]] = MappingProxyType(
    {"local": _local, "ray": _ray}
)


def make_runner(name: str, workers: int | None = None, *, address: str | None = None) -> Runner:
    """The runner called ``name`` with ``workers`` workers (None: one per core), on the
    cluster at ``address`` for a cluster runner (``ray``: ``HASHWATCH_RAY_ADDRESS``).

    Raises :class:`KeyError` naming the known runners for an unknown name.
    """
    try:
        factory = RUNNERS[name.strip().lower()]
    except KeyError:
        raise KeyError(f"unknown runner {name!r} (known: {', '.join(RUNNERS)})") from None
    return factory(workers, address)


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
