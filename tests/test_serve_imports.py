"""A ``hashwatch serve`` worker imports the web application and nothing it only needs for
video, 7z archives or OpenCV: PyAV, py7zr (and its codecs) and cv2 load on the first request
or scan that uses them, so each worker's resident memory stays small (issue 18). Checked by
the modules a fresh interpreter has imported after ``import hashwatch.web.app``; that 7z
archives and videos still read once the libraries load on demand is tests/test_archives.py's
and tests/test_video*.py's part."""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = ("av", "py7zr", "cv2")

PROBE = """
import json, sys
import hashwatch.web.app
sys.stdout.write(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_web_app_import_leaves_video_and_7z_libraries_unloaded() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "hashwatch" in loaded and "fastapi" in loaded
    assert loaded.isdisjoint(LAZY), sorted(loaded & set(LAZY))
