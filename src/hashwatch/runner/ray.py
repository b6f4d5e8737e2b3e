"""Work units as Ray Core tasks: the same units as the local runner, on a Ray cluster.

Chosen by name (``HASHWATCH_RUNNER=ray``, ``hashwatch scan --runner ray [--ray-address ADDR]``);
``ray`` is imported only here, when this runner is made (the optional extra ``hashwatch[ray]``).

* One Ray task per work unit (a few hundred files or ~256 MB), never one per file: a Ray task
  costs ~2 ms against ~24 us per file in units of 500 (``SCALE.md``).
* ``max_retries``: a task whose worker process or node dies is run again elsewhere. The scan
  stores each unit atomically and upserts its records by (root, path), so a unit that runs
  twice changes nothing; a unit that never finished is simply not done (``--resume``).
* Results are taken as tasks finish (``ray.wait``), with a bounded number in flight.
* Progress events (:func:`hashwatch.runner.report_progress`) travel from the remote workers to
  one small actor on the driver's node, which the driver drains while units run. Events are
  numbered per unit and attempt: a retried unit's events are passed on only past those already
  delivered, so the progress bar does not count a retried file twice.
* :meth:`RayRunner.check_readable` runs a small task pinned to every alive node that reads the
  evidence roots' metadata, and names the node that cannot.

A Ray runtime this runner starts itself (no address, none running) stays up for later runners
of the same process (starting one costs seconds) and stops when the process exits; one that the
caller started or connected to is left as it was.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from hashwatch.errors import ConfigError
from hashwatch.runner import ProgressCallback, Runner, set_progress_sink

__all__ = ["RayRunner", "check_paths_here"]

U = TypeVar("U")
R = TypeVar("R")

# How long the driver waits for a unit before draining the progress actor.
PROGRESS_POLL_S = 0.1
# Times a unit is run again after its worker or node died (not after an exception it raised).
MAX_RETRIES = 3


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray runner needs Ray: install the extra, pip install 'hashwatch[ray]'"
        ) from None
    return ray


class _Events:
    """The progress actor: events put by units' tasks, taken by the driver."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, Any]] = []

    def put(self, token: int, seq: int, event: Any) -> None:
        self.events.append((token, seq, event))

    def take(self) -> list[tuple[int, int, Any]]:
        out, self.events = self.events, []
        return out

    def ping(self) -> None:
        """Called by a unit after its last event: calls from one caller run in order, so
        every event it put is stored once this returns."""


def _run_unit(events: Any, token: int | None, fn: Callable[[U], R], unit: U) -> R:
    """A unit in a Ray worker: its progress events go to the ``events`` actor."""
    import ray

    seq = itertools.count()  # from 0 in every attempt: the driver skips what it passed on
    sink = None
    if token is not None and events is not None:

        def sink(event: Any) -> None:
            events.put.remote(token, next(seq), event)

    old = set_progress_sink(sink)
    try:
        return fn(unit)
    finally:
        set_progress_sink(old)
        if sink is not None:
            ray.get(events.ping.remote())  # every event stored before the result is seen


def check_paths_here(paths: Sequence[str]) -> list[str]:
    """On one node: the problems reading each path's metadata (empty: all readable).

    Only metadata is read (``os.stat``, a directory's listing): no evidence file is opened,
    so no access time moves.
    """
    problems: list[str] = []
    for path in paths:
        try:
            st = os.stat(path)
            if not os.access(path, os.R_OK):
                problems.append(f"{path}: not readable")
            elif os.path.isdir(path):
                if not os.access(path, os.X_OK):
                    problems.append(f"{path}: directory cannot be entered")
                else:
                    with os.scandir(path) as it:
                        next(it, None)
            elif st.st_size < 0:  # pragma: no cover - defensive
                problems.append(f"{path}: unreadable size")
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return problems


class RayRunner(Runner):
    """Units as Ray tasks on the cluster at ``address`` (None: ``RAY_ADDRESS``, a runtime
    already started in this process, or a new local one).

    ``workers`` bounds the units in flight (two per worker); None: two per CPU of the cluster.
    """

    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        *,
        address: str | None = None,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        self._ray = ray = _import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.max_retries = max_retries
        self._task = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(
            _run_unit
        )
        self._events: Any = None
        self._sinks: dict[int, ProgressCallback] = {}
        self._counts: dict[int, int] = {}  # token: the most events passed on by any attempt
        self._tokens = itertools.count()
        self._drain_lock = threading.Lock()

    # -- progress --------------------------------------------------------------------------

    def _events_actor(self) -> Any:
        if self._events is None:
            ray = self._ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = ray.get_runtime_context().get_node_id()
            actor = ray.remote(num_cpus=0)(_Events)
            self._events = actor.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)
            ).remote()
        return self._events

    def _drain(self) -> None:
        """Hand every progress event received so far to its unit's callback (a retried
        unit's events only past the number already passed on)."""
        if self._events is None:
            return
        with self._drain_lock:
            for token, seq, event in self._ray.get(self._events.take.remote()):
                sink = self._sinks.get(token)
                if sink is None:
                    continue
                passed = self._counts.get(token, 0)
                if seq < passed:
                    continue  # an earlier attempt of this unit passed it on already
                self._counts[token] = seq + 1
                sink(event)

    def _finish(self, token: int | None) -> None:
        self._drain()
        if token is not None:
            self._sinks.pop(token, None)
            self._counts.pop(token, None)

    # -- running units -----------------------------------------------------------------------

    def _submit(
        self, fn: Callable[[U], R], unit: U, on_progress: ProgressCallback | None
    ) -> tuple[Any, int | None]:
        token = None
        events = None
        if on_progress is not None:
            token = next(self._tokens)
            self._sinks[token] = on_progress
            events = self._events_actor()
        return self._task.remote(events, token, fn, unit), token

    def submit(
        self, fn: Callable[[U], R], unit: U, *, on_progress: ProgressCallback | None = None
    ) -> Future[R]:
        ref, token = self._submit(fn, unit, on_progress)
        future: Future[R] = ref.future()
        if token is not None:
            future.add_done_callback(lambda _f: self._finish(token))
        return future

    def map_units(
        self,
        fn: Callable[[U], R],
        units: Iterable[U],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> Iterator[R]:
        ray = self._ray
        timeout = PROGRESS_POLL_S if on_progress is not None else None

        def wait_some(refs: list[Any]) -> Iterable[Any]:
            done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
            self._drain()  # events of finished units, and of running ones so far
            return done  # type: ignore[no-any-return]

        def collect(ref: Any, token: int | None) -> R:
            result: R = ray.get(ref)
            self._finish(token)
            return result

        yield from self._map_windowed(
            units,
            lambda unit: self._submit(fn, unit, on_progress),
            wait_some,
            collect,
            window=self.workers * 2,
            cancel=lambda ref: ray.cancel(ref, force=False),
        )

    # -- evidence ------------------------------------------------------------------------

    def check_readable(self, paths: Sequence[str]) -> None:
        """Every alive node of the cluster can read ``paths``' metadata, or a
        :class:`ConfigError` names each node that cannot and why."""
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        check = ray.remote(num_cpus=0, max_retries=1)(check_paths_here)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [
            check.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(list(paths))
            for n in nodes
        ]
        failures: list[str] = []
        for node, ref in zip(nodes, refs, strict=True):
            where = f"node {node['NodeID'][:12]} ({node.get('NodeManagerAddress', '?')})"
            try:
                problems = ray.get(ref)
            except Exception as exc:  # the node went away while checking
                failures.append(f"{where}: could not check ({type(exc).__name__})")
                continue
            if problems:
                failures.append(f"{where}: " + "; ".join(problems))
        if failures:
            raise ConfigError(
                "evidence must be readable from every node of the Ray cluster: "
                + " | ".join(failures)
            )

    def close(self) -> None:
        if self._events is not None:
            with contextlib.suppress(Exception):  # the cluster may be gone already
                self._ray.kill(self._events)
            self._events = None
        self._sinks.clear()
        self._counts.clear()

    def __enter__(self) -> RayRunner:
        return self
