"""One contract for the cross-instance messages: in process, over one Redis, over a Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from contract.conftest import REDIS_IMPLEMENTATIONS
from reelhouse.platform.broadcast import Broadcast, MemoryBroadcast, RedisBroadcast
from reelhouse.platform.redis_connection import RedisClient

WITHIN_SECONDS = 5.0


@pytest.fixture
def redis_for_broadcast(request: pytest.FixtureRequest, implementation: str) -> RedisClient | None:
    return request.getfixturevalue("redis_client") if implementation in REDIS_IMPLEMENTATIONS else None


@pytest.fixture
async def make_broadcast(redis_for_broadcast: RedisClient | None, contract_prefix: str) -> AsyncIterator[object]:
    """``make_broadcast()``: an instance's broadcast (each call another instance), stopped afterwards."""
    started: list[Broadcast] = []
    shared = MemoryBroadcast()

    def make() -> Broadcast:
        # In one process every "instance" is the same one.
        broadcast = shared if redis_for_broadcast is None else RedisBroadcast(redis_for_broadcast, contract_prefix)
        started.append(broadcast)
        return broadcast

    yield make
    for broadcast in started:
        await broadcast.stop()


async def test_a_message_reaches_every_instance_on_its_channel_only(make_broadcast):
    first, second = make_broadcast(), make_broadcast()
    received: dict[str, asyncio.Queue[bytes]] = {name: asyncio.Queue() for name in ("first", "second", "other")}
    first.on_message("notices", received["first"].put_nowait)
    second.on_message("notices", received["second"].put_nowait)
    second.on_message("cache", received["other"].put_nowait)
    await first.start()
    await second.start()
    assert first.subscribed
    assert second.subscribed

    await first.publish("notices", b"session s1 ended")
    async with asyncio.timeout(WITHIN_SECONDS):
        assert await received["first"].get() == b"session s1 ended"
        assert await received["second"].get() == b"session s1 ended"
    await second.publish("cache", b"plans")
    async with asyncio.timeout(WITHIN_SECONDS):
        assert await received["other"].get() == b"plans"
    assert received["first"].empty()
    assert received["second"].empty()


async def test_messages_keep_their_order_and_bytes(make_broadcast):
    publisher, follower = make_broadcast(), make_broadcast()
    received: asyncio.Queue[bytes] = asyncio.Queue()
    follower.on_message("notices", received.put_nowait)
    await publisher.start()
    await follower.start()
    messages = [b"\x00\xffbinary", "ünïcode".encode(), b"{}", *(f"n{index}".encode() for index in range(20))]
    for message in messages:
        await publisher.publish("notices", message)
    async with asyncio.timeout(WITHIN_SECONDS):
        assert [await received.get() for _ in messages] == messages
