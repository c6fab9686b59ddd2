"""Two real API processes on one PostgreSQL and one Redis behave as one service.

Both start against an empty database at the same moment (so both migrate at once,
under the migration lock), then share one rate-limit bucket per caller and one
revocation list.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from conftest import POSTGRES_ADMIN_URL, ROOT, TEST_JWT_SECRET

pytestmark = pytest.mark.slow

ANONYMOUS_PER_MINUTE = 20
FLOOD = 100
START_TIMEOUT_SECONDS = 30
REQUEST_TIMEOUT_SECONDS = 10
PUBLIC = "/api/v1/plans"


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on; the probes stay open until all are chosen, so none repeats."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


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
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATABASE_URL": empty_database,
        "DATABASE_MIGRATE_ON_STARTUP": "true",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": shared_redis_prefix,
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_ANONYMOUS_PER_MINUTE": str(ANONYMOUS_PER_MINUTE),
        "VAR_DIR": str(tmp_path / "var"),
        "REELHOUSE_ENV_FILE": str(tmp_path / "no.env"),
        "LOG_LEVEL": "WARNING",
    }
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        urls = []
        for index, port in enumerate(free_ports(2)):
            log = tmp_path / f"instance-{index}.log"
            command = [uvicorn, "--factory", "reelhouse.app:create_app"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
            with log.open("wb") as output:
                process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=output, stderr=subprocess.STDOUT)
            processes.append((process, log))
            urls.append(f"http://127.0.0.1:{port}")
        for url, (process, log) in zip(urls, processes, strict=True):
            wait_until_healthy(url, process, log)
        yield urls[0], urls[1]
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not become healthy in {START_TIMEOUT_SECONDS} s:\n{log.read_text()}")


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
