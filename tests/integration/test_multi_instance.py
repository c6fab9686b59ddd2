"""Two real API processes on one PostgreSQL and one Redis behave as one service.

Both start against an empty database at the same moment (so both migrate at once,
under the migration lock), then share one rate-limit bucket per caller and one
revocation list.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from conftest import POSTGRES_ADMIN_URL
from servers import running_servers, server_environ

pytestmark = pytest.mark.slow

ANONYMOUS_PER_MINUTE = 20
FLOOD = 100
REQUEST_TIMEOUT_SECONDS = 10
PUBLIC = "/api/v1/plans"


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    name = f"reelhouse_multi_{os.getpid()}"
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def shared_redis_prefix(redis_url: str, redis_key_prefix: str) -> AsyncIterator[str]:
    prefix = f"{redis_key_prefix}-multi"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def instances(
    empty_database: str, redis_url: str, shared_redis_prefix: str, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """Start two uvicorn processes at once; yields their base URLs and stops them after."""
    environ = server_environ(
        tmp_path,
        DATABASE_URL=empty_database,
        DATABASE_MIGRATE_ON_STARTUP="true",
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=shared_redis_prefix,
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_ANONYMOUS_PER_MINUTE=str(ANONYMOUS_PER_MINUTE),
    )
    with running_servers(environ, 2, tmp_path) as (first, second):
        yield first, second


async def test_instances_share_one_rate_limit_bucket(instances: tuple[str, str]):
    first, second = instances
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as client, asyncio.timeout(30):
        started = time.monotonic()
        responses = await asyncio.gather(*(client.get(f"{(first, second)[n % 2]}{PUBLIC}") for n in range(FLOOD)))
        elapsed = time.monotonic() - started

    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 429}, statuses
    # One request is regained every 60 / limit seconds; the flood normally ends long before.
    regained = int(elapsed / (60 / ANONYMOUS_PER_MINUTE))
    assert ANONYMOUS_PER_MINUTE <= statuses.count(200) <= ANONYMOUS_PER_MINUTE + regained
    served_by = {str(response.url).rsplit(PUBLIC, 1)[0] for response in responses if response.status_code == 429}
    assert served_by == {first, second}, "both instances turn callers away once the shared bucket is empty"


async def test_signing_out_on_one_instance_is_refused_on_the_other_at_once(instances: tuple[str, str]):
    first, second = instances
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as client, asyncio.timeout(30):
        registered = await client.post(
            f"{first}/api/v1/auth/register",
            json={"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"},
        )
        assert registered.status_code == 201, registered.text
        tokens = registered.json()
        bearer = {"Authorization": f"Bearer {tokens['token']}"}
        assert (await client.get(f"{second}/api/v1/users/profile", headers=bearer)).status_code == 200

        assert (await client.post(f"{first}/api/v1/auth/logout", headers=bearer)).status_code == 204
        refused = await client.get(f"{second}/api/v1/users/profile", headers=bearer)
        refresh = await client.post(f"{second}/api/v1/auth/refresh", json={"refresh": tokens["refresh"]})

    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert refresh.status_code == 401
