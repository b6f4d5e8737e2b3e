"""The benchmarks: ``make bench`` lists them; ``make bench B="pdq scan"`` runs the named ones.

Each ``bench/bench_NAME.py`` runs the reference beside hashwatch in one run and prints the ratio;
``docs/benchmarks.md`` records what was seen. Some take many minutes (the index at 10 M hashes,
lists of 1,000,000 entries), so nothing runs unless named.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def main(names: list[str]) -> int:
    found = benchmarks()
    if not names:
        for name, path in found.items():
            print(f"{name:14} {summary(path)}")
        print('\nrun some: make bench B="name ..." (each takes its own options: --help)')
        return 0
    unknown = [n for n in names if n not in found]
    if unknown:
        print(f"no benchmark named {', '.join(unknown)} (known: {', '.join(found)})")
        return 2
    for name in names:
        print(f"== bench_{name}.py", flush=True)
        done = subprocess.run([sys.executable, str(found[name])], check=False)
        if done.returncode:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
