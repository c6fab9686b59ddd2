"""Group commit: callers that arrive while a batch is on its way share the next round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from reelhouse.platform.batching import GroupCommit


class Backend:
    """Answers each item doubled, one batch at a time, after the test lets it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.failing: set[int] = set()

    async def send_many(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.failing & set(items):
            raise ConnectionError("backend down")
        return [item * 2 for item in items]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_arriving_during_a_round_trip_share_the_next_one():
    backend = Backend()
    commit = GroupCommit(backend.send_many, max_batch=100)

    first = asyncio.create_task(commit.submit(1))
    await settle()
    later = [asyncio.create_task(commit.submit(item)) for item in (2, 3, 4)]
    await settle()
    backend.release.set()

    assert await first == 2
    assert [await task for task in later] == [4, 6, 8]
    assert backend.batches == [[1], [2, 3, 4]]


async def test_a_batch_never_exceeds_its_size():
    backend = Backend()
    backend.release.set()
    commit = GroupCommit(backend.send_many, max_batch=3)

    answers = await asyncio.gather(*(commit.submit(item) for item in range(8)))

    assert answers == [item * 2 for item in range(8)]
    assert all(len(batch) <= 3 for batch in backend.batches)
    assert sorted(item for batch in backend.batches for item in batch) == list(range(8))


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_goes():
    backend = Backend()
    backend.failing = {1}
    commit = GroupCommit(backend.send_many, max_batch=100)

    first = asyncio.create_task(commit.submit(1))
    await settle()
    second = asyncio.create_task(commit.submit(5))
    await settle()
    backend.release.set()

    with pytest.raises(ConnectionError):
        await first
    assert await second == 10


async def test_a_caller_that_gives_up_does_not_disturb_the_others():
    backend = Backend()
    commit = GroupCommit(backend.send_many, max_batch=100)

    first = asyncio.create_task(commit.submit(1))
    await settle()
    impatient = asyncio.create_task(commit.submit(2))
    patient = asyncio.create_task(commit.submit(3))
    await settle()
    impatient.cancel()
    backend.release.set()

    assert await first == 2
    assert await patient == 6
    assert impatient.cancelled()


async def test_the_sender_starts_again_after_going_idle():
    backend = Backend()
    backend.release.set()
    commit = GroupCommit(backend.send_many, max_batch=100)

    assert await commit.submit(1) == 2
    await settle()
    assert await commit.submit(2) == 4
    assert backend.batches == [[1], [2]]
