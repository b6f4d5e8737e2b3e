"""A JSON lookup is handed to a matching thread and its answer comes back to the awaiting
request: every call answered with its own result or error, calls beyond the threads queued
until one is free, and a call whose request was cancelled still runs to its end (its
matches are recorded)."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from hashwatch.web.routes_match import _MatchThreads

WAIT = 10.0  # generous bound for any thread to get somewhere


def test_calls_beyond_the_threads_wait_for_one_and_each_gets_its_own_answer() -> None:
    threads = _MatchThreads(2)
    gate = threading.Event()
    ran: list[str] = []

    def lookup(n: int) -> int:
        assert gate.wait(WAIT)
        ran.append(threading.current_thread().name)
        return n * n

    async def story() -> list[int]:
        futures = [threads.run(functools.partial(lookup, n)) for n in range(20)]
        await asyncio.sleep(0)  # nothing answers while the first two calls hold both threads
        assert not any(f.done() for f in futures)
        gate.set()
        return list(await asyncio.wait_for(asyncio.gather(*futures), WAIT))

    assert asyncio.run(story()) == [n * n for n in range(20)]
    assert len(set(ran)) <= 2  # never more threads than allowed


def test_an_error_in_the_call_is_raised_to_the_request() -> None:
    threads = _MatchThreads(4)

    def refused() -> None:
        raise LookupError("the database refused the read")

    async def story() -> None:
        with pytest.raises(LookupError, match="refused"):
            await asyncio.wait_for(threads.run(refused), WAIT)
        assert await asyncio.wait_for(threads.run(lambda: "next"), WAIT) == "next"

    asyncio.run(story())


def test_a_cancelled_request_lets_its_call_run_to_the_end() -> None:
    threads = _MatchThreads(4)
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def recording() -> str:
        started.set()
        assert release.wait(WAIT)
        finished.set()
        return "recorded"

    async def story() -> None:
        task = asyncio.ensure_future(threads.run(recording))
        assert await asyncio.to_thread(started.wait, WAIT)
        task.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert await asyncio.to_thread(finished.wait, WAIT)
        # the answer arriving for the cancelled request is dropped, and the thread serves on
        assert await asyncio.wait_for(threads.run(lambda: 7), WAIT) == 7

    asyncio.run(story())
