"""The ``hashwatch`` console entry: settle native thread pools before numpy is imported.

hashwatch parallelises with worker processes; BLAS thread pools inside each would only compete
for the same cores (see :func:`hashwatch.runner.single_threaded_libraries`). The runner module
imports nothing heavy, so this runs before numpy, Pillow or numba are loaded.
"""

from __future__ import annotations

from hashwatch.runner import single_threaded_libraries


def main() -> None:
    single_threaded_libraries()
    from hashwatch.cli.main import main as cli_main

    cli_main()
