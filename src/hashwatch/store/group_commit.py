"""Group commit: many threads' records flushed together, one flush for all of them.

A matching request must not answer before its match records and audit lines are durable, but
one transaction and one ``fsync`` per request caps a server at what the disk can sync a
second. :class:`GroupCommit` batches what request threads submit: when no flush is running,
the submitting thread flushes at once, itself (no batching delay and no hand-off to another
thread at low load); while one runs, submissions queue, and when it ends one of the queued
threads flushes everything queued meanwhile as one batch (one transaction, one
``executemany``, one audit ``fsync``) and wakes exactly the threads whose records were in it.
Under load many requests share one flush; alone, a request flushes its own on its own thread.

* ``submit`` returns only after the batch holding its items was flushed without error, so a
  response that follows it reports a record another connection can already read.
* A failed flush of several submissions is retried one submission at a time, so one bad
  item fails only the request that submitted it; the others are answered as recorded. The
  flush must therefore leave nothing behind when it raises (one transaction, rolled back).
  An error ``retry_alone`` says no to (a database that does not answer) is not retried:
  every thread whose items were in the batch raises it, none reported as recorded.
* Each waiting thread raises its own exception object (of the flush error's type, the
  error itself as its ``__cause__``): one object raised in many threads would share, and
  grow, one traceback.
* The queue is bounded (``max_queue`` items, counted as submitted — for the match service
  one item is one request's recording): past it, ``submit`` waits for room, so a slow disk
  slows callers down instead of growing memory.
* Order: one flush at a time; batches are flushed in the order they were formed, items
  within a batch in the order they were submitted.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "GroupCommitClosed"]

T = TypeVar("T")


class GroupCommitClosed(RuntimeError):
    """Items submitted after :meth:`GroupCommit.close`."""


class _Batch(Generic[T]):
    """The submissions of one flush and the condition their submitters wait on."""

    __slots__ = ("cond", "done", "submissions")

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        self.done = False
        self.submissions: list[_Submission[T]] = []


class _Submission(Generic[T]):
    """One ``submit`` call's items and, once flushed, its error (None: recorded)."""

    __slots__ = ("error", "items")

    def __init__(self, items: list[T]) -> None:
        self.items = items
        self.error: BaseException | None = None


def _fresh(exc: BaseException) -> BaseException:
    """A new exception of ``exc``'s type and arguments, without its traceback, caused by it."""
    try:
        out = copy.copy(exc)
    except Exception:  # a type that cannot be rebuilt from its arguments
        out = exc
    if out is not exc:
        out.__traceback__ = None
    return out


class GroupCommit(Generic[T]):
    """Batches items submitted from many threads into flushes, one flush at a time, each run
    by one of the submitting threads (the first to find no flush running)."""

    def __init__(
        self,
        flush: Callable[[list[T]], None],
        *,
        max_queue: int = 20_000,
        name: str = "hashwatch-group-commit",
        retry_alone: Callable[[BaseException], bool] = lambda exc: True,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """``flush``: writes a batch, all or nothing; ``retry_alone``: whether a failed
        batch's submissions are retried one by one after this error; ``on_close``: called
        once by :meth:`close` after the last flush (releases what the flushes kept, e.g. a
        connection: no flush runs after it); ``name`` is kept for callers that name their
        recorder (no thread of its own is started)."""
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._flush = flush
        self._retry_alone = retry_alone
        self._max_queue = max_queue
        self._name = name
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # submitters wait here for queue room
        self._idle = threading.Condition(self._lock)  # close waits here for the last flush
        self._pending: list[T] = []
        self._batch: _Batch[T] = _Batch(self._lock)  # the batch that queued items join
        self._flushing = False  # a submitter is flushing a batch (one at a time)
        self._closed = False
        self._on_close = on_close
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
            batch = self._batch
            submission = _Submission(list(items))
            batch.submissions.append(submission)
            self._pending.extend(items)
            while not batch.done:
                if self._flushing:
                    batch.cond.wait()  # the flush running now ends by waking one of us
                else:
                    # No flush runs, so every earlier batch is done: ``batch`` is the one
                    # queued items join, and this thread flushes it (and what joined it).
                    self._lead()
        error = submission.error
        if error is not None:
            fresh = _fresh(error)
            if fresh is error:
                raise error
            raise fresh from error

    def queued(self) -> int:
        """Items waiting for the next flush."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Wait for what is queued to be flushed (by its submitters); later submissions
        raise. Then ``on_close`` runs (once)."""
        with self._lock:
            self._closed = True
            self._room.notify_all()
            while self._flushing or self._pending:
                self._idle.wait()
            on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def _lead(self) -> None:
        """Flush the queued batch on this thread; called and returns with the lock held."""
        self._flushing = True
        items, batch = self._pending, self._batch
        self._pending, self._batch = [], _Batch(self._lock)
        self._room.notify_all()
        self._lock.release()
        try:
            self._flush_batch(items, batch.submissions)
        finally:
            self._lock.acquire()
            self._flushing = False
            self.flushes += 1
            batch.done = True
            batch.cond.notify_all()
            if self._pending:
                self._batch.cond.notify()  # one thread of the next batch flushes it
            else:
                self._idle.notify_all()

    def _flush_batch(self, items: list[T], submissions: list[_Submission[T]]) -> None:
        """Flush the batch; if it fails, each submission alone (unless ``retry_alone`` says
        the error is not one submission's), each keeping its own error."""
        try:
            self._flush(items)
            return
        except BaseException as exc:
            error = exc
        try:
            retry = len(submissions) > 1 and self._retry_alone(error)
        except Exception:  # cannot tell: every submission keeps the flush's error
            retry = False
        if not retry:
            for submission in submissions:
                submission.error = error
            return
        for submission in submissions:
            try:
                self._flush(submission.items)
            except BaseException as exc:  # this submission's own error
                submission.error = exc
