"""At most N uploads decoded at once in a process; a short queue; 503 beyond it.

Decoding an image or a video is CPU- and memory-heavy (a 13,300-pixel-square PNG holds
800 MB while it is hashed), so a burst of uploads must not all decode at once. A
:class:`DecodeLimiter` admits ``slots`` decodes; up to ``queue`` more wait at most ``wait_s``
seconds for one to end; any other upload is refused at once with 503 and ``Retry-After``.
Decodes run in worker threads, so the limiter is a thread semaphore.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hashwatch.signals.hasher import FileSignals
from hashwatch.web.auth import ApiError
from hashwatch.web.service import MatchService

__all__ = ["BoundedMatchService", "DecodeLimiter"]


class DecodeLimiter:
    def __init__(self, slots: int, queue: int, wait_s: float, retry_after_s: int) -> None:
        if slots < 1 or queue < 0 or wait_s < 0:
            raise ValueError("decode slots must be >= 1, the queue and the wait >= 0")
        self.slots = slots
        self.queue = queue
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Uploads waiting for a slot now."""
        with self._lock:
            return self._waiting

    def _busy(self) -> ApiError:
        return ApiError(
            503,
            f"all {self.slots} decoders are busy; try again shortly",
            {"Retry-After": str(self.retry_after_s)},
        )

    def acquire(self) -> None:
        """Take a decode slot, waiting in the queue if there is room; 503 otherwise."""
        if self._semaphore.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self.queue:
                raise self._busy()
            self._waiting += 1
        try:
            acquired = self._semaphore.acquire(timeout=self.wait_s)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise self._busy()

    def release(self) -> None:
        self._semaphore.release()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


class BoundedMatchService(MatchService):
    """The match service whose decodes of uploads (``hash_bytes``, which ``match_file`` calls)
    go through a :class:`DecodeLimiter`."""

    def __init__(self, *args: Any, decoders: DecodeLimiter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decoders = decoders

    def hash_bytes(self, *args: Any, **kwargs: Any) -> FileSignals:
        with self.decoders.slot():
            return super().hash_bytes(*args, **kwargs)
