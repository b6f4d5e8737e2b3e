"""Who flushes a group commit: a request alone flushes its own records on its own thread, at
once (no writer thread to wake, no batching delay); requests that queue behind a running flush
share the next one, run by one of them; closing waits for what is queued."""

from __future__ import annotations

import threading

import pytest

from hashwatch.store.group_commit import GroupCommit, GroupCommitClosed

BOUND_S = 60  # generous: the machine is shared


def _wait_until(check: object) -> bool:
    for _ in range(BOUND_S * 1000):
        if check():  # type: ignore[operator]
            return True
        threading.Event().wait(0.001)
    return False


def test_a_request_alone_flushes_its_own_records_on_its_own_thread() -> None:
    flushed_by: list[tuple[int, list[str]]] = []
    commit: GroupCommit[str] = GroupCommit(
        lambda items: flushed_by.append((threading.get_ident(), list(items)))
    )
    threads_before = threading.active_count()
    commit.submit(["match of request 1"])
    commit.submit(["match of request 2"])
    me = threading.get_ident()
    assert flushed_by == [(me, ["match of request 1"]), (me, ["match of request 2"])]
    assert threading.active_count() == threads_before  # no thread of its own
    assert commit.flushes == 2


def test_requests_queued_behind_a_flush_share_the_next_one_run_by_one_of_them() -> None:
    first_started, release = threading.Event(), threading.Event()
    flushes: list[tuple[int, list[int]]] = []

    def flush(items: list[int]) -> None:
        flushes.append((threading.get_ident(), list(items)))
        if len(flushes) == 1:
            first_started.set()
            assert release.wait(BOUND_S)

    commit: GroupCommit[int] = GroupCommit(flush)
    first = threading.Thread(target=commit.submit, args=([0],))
    first.start()
    assert first_started.wait(BOUND_S)
    waiters = [threading.Thread(target=commit.submit, args=([i],)) for i in range(1, 4)]
    for t in waiters:
        t.start()
    assert _wait_until(lambda: commit.queued() == 3)
    release.set()
    for t in [first, *waiters]:
        t.join(BOUND_S)
    assert flushes[0] == (first.ident, [0])
    assert len(flushes) == 2 and sorted(flushes[1][1]) == [1, 2, 3]
    assert flushes[1][0] in {t.ident for t in waiters}  # one of the queued requests ran it


def test_closing_waits_for_the_flush_running_and_what_queued_behind_it() -> None:
    first_started, release = threading.Event(), threading.Event()
    flushed: list[int] = []

    def flush(items: list[int]) -> None:
        if not first_started.is_set():
            first_started.set()
            assert release.wait(BOUND_S)
        flushed.extend(items)

    commit: GroupCommit[int] = GroupCommit(flush)
    submitters = [threading.Thread(target=commit.submit, args=([0],))]
    submitters[0].start()
    assert first_started.wait(BOUND_S)
    submitters.append(threading.Thread(target=commit.submit, args=([1],)))
    submitters[1].start()
    assert _wait_until(lambda: commit.queued() == 1)
    closed = threading.Event()

    def close() -> None:
        commit.close()
        closed.set()

    closer = threading.Thread(target=close)
    closer.start()
    assert not closed.wait(0.2)  # the held flush is not done: close waits
    release.set()
    assert closed.wait(BOUND_S)
    assert flushed == [0, 1]  # close returned after both were flushed
    for t in [closer, *submitters]:
        t.join(BOUND_S)
    with pytest.raises(GroupCommitClosed):
        commit.submit([2])
