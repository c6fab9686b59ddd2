"""Contract fixtures: each interface's implementations, one test suite for all of them.

The Redis implementations run on this worker's logical Redis database (``redis_url``), and
again on a three-master Redis Cluster of this test process's own (``redis-cluster``), under
this run's key prefix, whose keys are deleted around each test (never ``FLUSHDB``: other
runs may share the server); the in-memory ones start empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conftest import delete_redis_keys, redis_client_for
from reelhouse.platform.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from reelhouse.platform.redis_connection import RedisClient
from reelhouse.platform.revocation import MemoryRevocationStore, RedisRevocationStore, RevocationStore

IMPLEMENTATIONS = ["redis", "redis-cluster", "memory"]
REDIS_IMPLEMENTATIONS = ("redis", "redis-cluster")


@pytest.fixture
def contract_prefix(redis_key_prefix: str) -> str:
    return f"{redis_key_prefix}:contract"


@pytest.fixture
async def redis_client(
    request: pytest.FixtureRequest, implementation: str, contract_prefix: str
) -> AsyncIterator[RedisClient]:
    """The client a Redis implementation is given: one Redis, or the cluster (``redis-cluster``)."""
    url = request.getfixturevalue("redis_cluster_url" if implementation == "redis-cluster" else "redis_url")
    await delete_redis_keys(url, contract_prefix)
    client = redis_client_for(url)
    try:
        yield client
    finally:
        await client.aclose()
        await delete_redis_keys(url, contract_prefix)


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rate_limiter(request: pytest.FixtureRequest, implementation: str) -> RateLimiter:
    if implementation in REDIS_IMPLEMENTATIONS:
        return RedisRateLimiter(request.getfixturevalue("redis_client"), request.getfixturevalue("contract_prefix"))
    return MemoryRateLimiter()


@pytest.fixture
def revocations(request: pytest.FixtureRequest, implementation: str) -> RevocationStore:
    if implementation in REDIS_IMPLEMENTATIONS:
        return RedisRevocationStore(request.getfixturevalue("redis_client"), request.getfixturevalue("contract_prefix"))
    return MemoryRevocationStore()
