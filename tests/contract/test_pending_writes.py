"""One contract for both pending-write queues: what the database could not take waits, newest kept."""

from __future__ import annotations

import pytest

from contract.conftest import REDIS_IMPLEMENTATIONS
from reelhouse.playback.pending import MemoryPendingWrites, PendingWrite, PendingWrites, RedisPendingWrites
from reelhouse.playback.streams import EndReason, StreamSession


@pytest.fixture
def pending(request: pytest.FixtureRequest, implementation: str) -> PendingWrites:
    if implementation in REDIS_IMPLEMENTATIONS:
        return RedisPendingWrites(request.getfixturevalue("redis_client"), request.getfixturevalue("contract_prefix"))
    return MemoryPendingWrites()


def observed(session_id: str, position: float, at_ms: int) -> StreamSession:
    return StreamSession(
        session_id=session_id,
        user_id="u1",
        device_id="tv",
        device_name="TV",
        content_id="c1",
        position=position,
        state="playing",
        started_at=1_000,
        last_heartbeat_at=at_ms,
    )


async def test_kept_writes_are_taken_until_marked_done(pending: PendingWrites):
    flush = PendingWrite(observed("s1", 30.0, 2_000))
    ending = PendingWrite(observed("s2", 45.0, 3_000), EndReason.STOPPED)
    await pending.keep([flush, ending])
    assert sorted(await pending.take(10), key=lambda w: w.session.session_id) == [flush, ending]
    assert await pending.count() == 2

    await pending.done([flush])
    assert await pending.take(10) == [ending]
    await pending.done([ending])
    assert await pending.take(10) == []


async def test_an_older_observation_never_replaces_a_newer_one(pending: PendingWrites):
    newer = PendingWrite(observed("s1", 90.0, 5_000))
    older = PendingWrite(observed("s1", 60.0, 4_000))
    await pending.keep([newer])
    await pending.keep([older])
    assert await pending.take(10) == [newer]


async def test_a_write_replaced_while_it_was_being_written_is_not_forgotten(pending: PendingWrites):
    first = PendingWrite(observed("s1", 10.0, 1_000))
    await pending.keep([first])
    taken = await pending.take(10)
    later = PendingWrite(observed("s1", 20.0, 2_000))
    await pending.keep([later])
    await pending.done(taken)  # the first one was written; the later one still waits
    assert await pending.take(10) == [later]
