"""Contract fixtures: each interface's implementations, one test suite for all of them.

The Redis implementations run on this worker's logical Redis database (``redis_url``) under
this run's key prefix, whose keys are deleted around each test (never ``FLUSHDB``: other
runs may share the server); the in-memory ones start empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from reelhouse.platform.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from reelhouse.platform.revocation import MemoryRevocationStore, RedisRevocationStore, RevocationStore

IMPLEMENTATIONS = ["redis", "memory"]


@pytest.fixture
def contract_prefix(redis_key_prefix: str) -> str:
    return f"{redis_key_prefix}:contract"


async def _delete_keys(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_client(redis_url: str, contract_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await _delete_keys(client, contract_prefix)
    try:
        yield client
    finally:
        await _delete_keys(client, contract_prefix)
        await client.aclose()


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rate_limiter(request: pytest.FixtureRequest, implementation: str) -> RateLimiter:
    if implementation == "redis":
        return RedisRateLimiter(request.getfixturevalue("redis_client"), request.getfixturevalue("contract_prefix"))
    return MemoryRateLimiter()


@pytest.fixture
def revocations(request: pytest.FixtureRequest, implementation: str) -> RevocationStore:
    if implementation == "redis":
        return RedisRevocationStore(request.getfixturevalue("redis_client"), request.getfixturevalue("contract_prefix"))
    return MemoryRevocationStore()
