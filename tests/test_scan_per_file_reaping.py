"""A process that ran work on the local pool leaves no helper process behind when it exits.

The pool's workers are forked from a fork server, beside which multiprocessing runs a resource
tracker. Left to notice on their own that the process has gone, both outlive it, are handed to
PID 1 and stay zombies until it reaps them (in a container, it may not); their CPU time is also
missing from the process's children's times, which the scan benchmarks measure.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import atexit, os, sys

    def check():  # registered before multiprocessing is imported: runs after its exit hooks
        import multiprocessing.forkserver as fs, multiprocessing.resource_tracker as rt

        for name, pid in (("forkserver", fs._forkserver._forkserver_pid),
                          ("resource tracker", rt._resource_tracker._pid)):
            if pid is None:
                print(name, "stopped")
                continue
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                print(name, "reaped")
            else:
                print(name, "left running" if done == 0 else "left to exit")

    def square(x):
        return x * x

    if __name__ == "__main__":
        atexit.register(check)
        import multiprocessing.forkserver as fs, multiprocessing.resource_tracker as rt
        from hashwatch.runner.local import LocalRunner

        runner = LocalRunner(2)
        assert sorted(runner.map_units(square, range(6))) == [0, 1, 4, 9, 16, 25]
        if sys.argv[1] == "close":
            runner.close()
        print("pids", fs._forkserver._forkserver_pid, rt._resource_tracker._pid)
    """
)


@pytest.mark.parametrize("ending", ["close", "left open"])
def test_an_investigator_s_scan_process_waits_for_its_fork_server_before_exiting(
    tmp_path: Path, ending: str
) -> None:
    """Closed or not (a library caller may leave its runner to the exit), the helpers are
    stopped after multiprocessing's own cleanup: no leaked-semaphore warning, no traceback."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    done = subprocess.run(
        [sys.executable, str(script), ending],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("pids ") and "None" not in lines[0]  # both helpers had started
    assert set(lines[1:]) == {"forkserver stopped", "resource tracker stopped"}, done.stdout
    assert "leaked" not in done.stderr and "Traceback" not in done.stderr, done.stderr
