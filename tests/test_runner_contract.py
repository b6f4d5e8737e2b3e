"""The one contract every registered runner passes, in process and on a pool of workers.

A runner takes work units and gives back every unit's result exactly once, as units complete;
a unit's failure reaches the caller; a unit's progress events reach the caller's callback, each
before that unit's result, and while the unit is still running (a unit here waits, with a
generous bound, until the caller has seen its first event: a runner that held events back until
the unit finished would make it time out).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.errors import ConfigError
from hashwatch.runner import RUNNERS, Runner, make_runner, report_progress

SHAPES = [(name, workers) for name in RUNNERS for workers in (1, 2)]
IDS = [f"{name}-{workers}" for name, workers in SHAPES]


@pytest.fixture(params=SHAPES, ids=IDS)
def runner(request: pytest.FixtureRequest) -> Iterator[Runner]:
    name, workers = request.param
    if name == "ray":  # the session's local Ray cluster (skipped if Ray is not installed)
        request.getfixturevalue("ray_cluster")
    with make_runner(name, workers) as made:
        yield made


def square_each(unit: list[int]) -> list[int]:
    out = []
    for n in unit:
        report_progress(("item", n))
        out.append(n * n)
    return out


def fail_on_thirteen(unit: list[int]) -> list[int]:
    if 13 in unit:
        raise ValueError("thirteen")
    return unit


def wait_until_seen(unit: tuple[int, str]) -> int:
    """Report one event, then wait until the caller has answered it by creating a file."""
    number, release = unit
    report_progress(number)
    deadline = time.monotonic() + 30
    while not Path(release).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"unit {number}: its progress event never reached the caller")
        time.sleep(0.01)
    return number


def test_every_unit_once_with_its_events_first(runner: Runner) -> None:
    units = [list(range(start, start + 5)) for start in range(0, 60, 5)]
    log: list[tuple[str, Any]] = []
    results = []
    for result in runner.map_units(
        square_each, units, on_progress=lambda event: log.append(("event", event[1]))
    ):
        results.append(result)
        log.append(("result", result))
    assert sorted(results) == sorted([n * n for n in unit] for unit in units)
    seen_events: set[int] = set()
    for what, value in log:
        if what == "event":
            seen_events.add(value)
        else:  # every item of a finished unit was reported before its result
            assert {int(v**0.5) for v in value} <= seen_events
    assert seen_events == set(range(60))


def test_a_failing_unit_reaches_the_caller(runner: Runner) -> None:
    with pytest.raises(ValueError, match="thirteen"):
        list(runner.map_units(fail_on_thirteen, [[1, 2], [12, 13], [20]]))
    future = runner.submit(fail_on_thirteen, [13])
    with pytest.raises(ValueError, match="thirteen"):
        future.result(timeout=60)
    assert runner.submit(square_each, [3]).result(timeout=60) == [9]


def test_progress_arrives_while_units_are_still_running(runner: Runner, tmp_path: Path) -> None:
    units = [(n, str(tmp_path / f"seen-{n}")) for n in range(4)]

    def seen(number: int) -> None:
        Path(units[number][1]).touch()

    assert sorted(runner.map_units(wait_until_seen, units, on_progress=seen)) == [0, 1, 2, 3]


def test_the_runner_is_chosen_by_configuration(tmp_path: Path) -> None:
    settings = Settings(f"sqlite:///{tmp_path / 'h.db'}", tmp_path, runner="local")
    with Hashwatch(settings).runner(2) as chosen:
        assert chosen.name == "local"
    assert Settings.from_env(data_dir=tmp_path).runner == "local"
    with pytest.raises(ConfigError, match="unknown runner 'nowhere'"):
        Hashwatch(Settings(f"sqlite:///{tmp_path / 'h.db'}", tmp_path, runner="nowhere")).runner()


def test_hashwatch_runner_setting_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHWATCH_RUNNER", "Elsewhere")
    app = Hashwatch(Settings.from_env(data_dir=tmp_path))
    assert app.settings.runner == "elsewhere"
    with pytest.raises(ConfigError, match="known: local"):
        list(app.hash_paths([tmp_path]))
