"""Group commit: many threads' records written by one writer, one flush for all of them.

A matching request must not answer before its match records and audit lines are durable, but
one transaction and one ``fsync`` per request caps a server at what the disk can sync a
second. :class:`GroupCommit` lets every request thread hand its records to one writer thread
and wait: the writer takes everything queued since its last flush as one batch, flushes it
(one transaction, one ``executemany``, one audit ``fsync``) and wakes exactly the threads
whose records were in that batch. Under load many requests share one flush; alone, a request
waits for its own.

* ``submit`` returns only after the batch holding its items was flushed without error, so a
  response that follows it reports a record another connection can already read.
* A failed flush (a database that does not answer) raises the same error in every thread
  whose items were in that batch; nothing of the batch is reported as recorded.
* The queue is bounded (``max_queue`` items): past it, ``submit`` waits for room, so a slow
  disk slows callers down instead of growing memory.
* Order: batches are flushed in the order they were formed, items within a batch in the order
  they were submitted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "GroupCommitClosed"]

T = TypeVar("T")


class GroupCommitClosed(RuntimeError):
    """Items submitted after :meth:`GroupCommit.close`."""


class _Batch:
    """The items of one flush and the condition its submitters wait on."""

    __slots__ = ("cond", "done", "error")

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        self.done = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Batches items submitted from many threads into flushes by one writer thread."""

    def __init__(
        self,
        flush: Callable[[list[T]], None],
        *,
        max_queue: int = 20_000,
        name: str = "hashwatch-group-commit",
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._flush = flush
        self._max_queue = max_queue
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here for items
        self._room = threading.Condition(self._lock)  # submitters wait here for queue room
        self._pending: list[T] = []
        self._batch = _Batch(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False
        self.flushes = 0  # flushes done (for tests and benchmarks)

    def submit(self, items: Sequence[T]) -> None:
        """Queue ``items`` and return once they are flushed; raises the flush's error."""
        if not items:
            return
        with self._lock:
            # A submission larger than the queue goes in alone, once the queue is empty.
            while (
                not self._closed
                and self._pending
                and len(self._pending) + len(items) > self._max_queue
            ):
                self._room.wait()
            if self._closed:
                raise GroupCommitClosed("the match recorder is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            batch = self._batch
            self._pending.extend(items)
            self._work.notify()
            while not batch.done:
                batch.cond.wait()
        if batch.error is not None:
            raise batch.error

    def queued(self) -> int:
        """Items waiting for the next flush."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Flush what is queued, then stop the writer; later submissions raise."""
        with self._lock:
            self._closed = True
            self._work.notify()
            self._room.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._work.wait()
                if not self._pending:
                    return
                items, batch = self._pending, self._batch
                self._pending, self._batch = [], _Batch(self._lock)
                self._room.notify_all()
            try:
                self._flush(items)
            except BaseException as exc:  # handed to every waiter of the batch
                batch.error = exc
            with self._lock:
                self.flushes += 1
                batch.done = True
                batch.cond.notify_all()
