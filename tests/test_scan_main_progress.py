"""A scan's workers send back each evidence file's size as it is done, not the file's whole
description (brief 15G): the caller's bar counts files and bytes from it alone, and an int
crosses the pipe and is read back for a fraction of what the object cost."""

from __future__ import annotations

import pickle
from functools import partial
from typing import Any

from hashwatch.runner import report_progress_of, set_progress_sink
from hashwatch.runner.local import LocalRunner
from hashwatch.scan.walk import EvidenceFile


def _unit(report: Any, unit: list[EvidenceFile]) -> int:
    for ef in unit:
        report(ef)
    return len(unit)


def test_each_file_reports_its_size_in_process_and_from_workers() -> None:
    files = [EvidenceFile("/evidence", f"/evidence/f{n}.jpg", 1000 + n, 7) for n in range(6)]
    seen: list[Any] = []
    old = set_progress_sink(seen.append)
    try:
        report_progress_of("size", files[0])
    finally:
        set_progress_sink(old)
    assert seen == [1000]
    report = pickle.loads(pickle.dumps(partial(report_progress_of, "size")))
    work = partial(_unit, report)
    with LocalRunner(2) as runner:
        events: list[Any] = []
        done = list(runner.map_units(work, [files[:4], files[4:]], on_progress=events.append))
    assert sorted(done) == [2, 4]
    assert sorted(events) == [f.size for f in files]
