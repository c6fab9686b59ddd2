"""Playback across two real API processes sharing one PostgreSQL database and one Redis.

A device whose websocket is held by instance A is evicted by a start made through
instance B: the notice crosses over Redis pub/sub and reaches the device within a
second, followed by the stream-limit close code. Sessions live in Redis, so a player
may reconnect to either instance. The eviction also runs with both instances on a Redis
Cluster (``redis+cluster://``, three masters the tests start), the notice crossing over
sharded pub/sub.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from catalog_helpers import give_stored_media, title_fields
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from conftest import SharedMedia
from helpers import PASSWORD
from servers import emptied_shared_state, running_processes, running_servers, server_environ

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "instances-admin-password-0123"
TEST_TIMEOUT_SECONDS = 60
REQUEST_TIMEOUT_SECONDS = 10
NOTICE_WITHIN_SECONDS = 1.0
PLAYBACK = "/api/v1/playback/sessions"


@pytest.fixture
def shared_redis_url(request: pytest.FixtureRequest) -> str:
    """The ``REDIS_URL`` the instances share: the run's Redis, or (param ``redis-cluster``) its cluster."""
    kind = getattr(request, "param", "redis")
    return str(request.getfixturevalue("redis_cluster_url" if kind == "redis-cluster" else "redis_url"))


@pytest.fixture
async def shared_prefix(postgres_url: str, shared_redis_url: str, redis_key_prefix: str) -> AsyncIterator[str]:
    """This test's Redis key prefix; the shared database and these keys start empty and are emptied after."""
    async with emptied_shared_state(postgres_url, shared_redis_url, f"{redis_key_prefix}-instances") as prefix:
        yield prefix


def instance_environ(postgres_url: str, redis_url: str, shared_prefix: str, tmp_path: Path) -> dict[str, str]:
    return server_environ(
        tmp_path,
        DATABASE_URL=postgres_url,
        DATABASE_MIGRATE_ON_STARTUP="false",  # the test database is migrated already
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=shared_prefix,
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL=ADMIN_EMAIL,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
    )


@pytest.fixture
def instances(
    postgres_url: str, shared_redis_url: str, shared_prefix: str, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    environ = instance_environ(postgres_url, shared_redis_url, shared_prefix, tmp_path)
    with running_servers(environ, 2, tmp_path) as (first, second):
        yield first, second


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def receive(ws: ClientConnection, deadline: float) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout=max(0.0, deadline - time.monotonic()))
    message: dict[str, Any] = json.loads(raw)
    return message


async def closed_with(ws: ClientConnection) -> int | None:
    """The close code the server sent, once it closes (messages before that are skipped)."""
    try:
        async with asyncio.timeout(5):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@pytest.mark.parametrize("shared_redis_url", ["redis", "redis-cluster"], indirect=True)
async def test_a_start_on_one_instance_evicts_a_device_connected_to_the_other(
    instances: tuple[str, str], postgres_url: str, shared_media: SharedMedia
):
    a, b = instances
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as http, asyncio.timeout(TEST_TIMEOUT_SECONDS):
        # The admin was created by the instances themselves, from ADMIN_EMAIL / ADMIN_PASSWORD.
        credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        admin = ok(await http.post(f"{a}/api/v1/auth/login", json=credentials))
        as_admin = {"Authorization": f"Bearer {admin['token']}"}
        plan = ok(
            await http.post(
                f"{b}/api/v1/admin/plans",
                json={
                    "name": "Single screen",
                    "price": 599,
                    "validity_days": 30,
                    "access_level": "basic",
                    "max_devices_allowed": 1,
                    "resolution": "720p",
                },
                headers=as_admin,
            ),
            201,
        )
        title = ok(await http.post(f"{a}/api/v1/admin/content", json=title_fields(), headers=as_admin), 201)
        await give_stored_media(postgres_url, title["id"], shared_media.directory())

        viewer = ok(
            await http.post(
                f"{a}/api/v1/auth/register", json={"email": "viewer@example.com", "password": PASSWORD, "name": "V"}
            ),
            201,
        )
        as_viewer = {"Authorization": f"Bearer {viewer['token']}"}
        ok(await http.post(f"{b}/api/v1/subscriptions", json={"plan_id": plan["id"]}, headers=as_viewer), 201)

        tv = ok(
            await http.post(f"{a}{PLAYBACK}", json={"content_id": title["id"], "device_id": "tv"}, headers=as_viewer),
            201,
        )
        assert tv["ws_url"].startswith(a.replace("http://", "ws://"))
        async with connect(tv["ws_url"], open_timeout=5, close_timeout=2) as ws:
            await ws.send(json.dumps({"type": "heartbeat", "position_seconds": 61.0, "state": "playing"}))
            assert await receive(ws, time.monotonic() + 5) == {"type": "ack", "next_heartbeat_seconds": 15}

            sent_at = time.monotonic()
            phone = ok(
                await http.post(
                    f"{b}{PLAYBACK}", json={"content_id": title["id"], "device_id": "phone"}, headers=as_viewer
                ),
                201,
            )
            notice = await receive(ws, sent_at + NOTICE_WITHIN_SECONDS)
            assert notice["type"] == "terminated"
            assert notice["reason"] == "stream_limit"
            assert notice["detail"]
            assert await closed_with(ws) == 4001

        assert [(e["session_id"], e["reason"]) for e in phone["evicted"]] == [(tv["session_id"], "stream_limit")]
        # Both instances see the same live streams.
        for instance in (a, b):
            live = ok(await http.get(f"{instance}{PLAYBACK}", headers=as_viewer))
            assert [s["device_id"] for s in live["sessions"]] == ["phone"]

        # The ended session stays ended on the other instance too; the live one resumes on either.
        async with connect(f"{b.replace('http://', 'ws://')}/api/v1/playback/ws?token={tv['playback_token']}") as ws:
            assert (await receive(ws, time.monotonic() + 5))["reason"] == "stream_limit"
            assert await closed_with(ws) == 4001
        async with connect(f"{a.replace('http://', 'ws://')}/api/v1/playback/ws?token={phone['playback_token']}") as ws:
            await ws.send(json.dumps({"type": "heartbeat", "position_seconds": 5.0}))
            assert (await receive(ws, time.monotonic() + 5))["type"] == "ack"


async def test_shutdown_closes_sockets_with_1012_saves_positions_and_the_session_resumes_elsewhere(
    postgres_url: str, shared_redis_url: str, shared_prefix: str, tmp_path: Path, shared_media: SharedMedia
):
    environ = instance_environ(postgres_url, shared_redis_url, shared_prefix, tmp_path)
    with running_processes(environ, 2, tmp_path) as [(a, process_a), (b, _)]:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as http, asyncio.timeout(TEST_TIMEOUT_SECONDS):
            admin = ok(
                await http.post(f"{b}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            )
            as_admin = {"Authorization": f"Bearer {admin['token']}"}
            title = ok(await http.post(f"{b}/api/v1/admin/content", json=title_fields(), headers=as_admin), 201)
            await give_stored_media(postgres_url, title["id"], shared_media.directory())
            viewer = ok(
                await http.post(
                    f"{b}/api/v1/auth/register", json={"email": "viewer@example.com", "password": PASSWORD, "name": "V"}
                ),
                201,
            )
            as_viewer = {"Authorization": f"Bearer {viewer['token']}"}
            tv = ok(
                await http.post(
                    f"{a}{PLAYBACK}", json={"content_id": title["id"], "device_id": "tv"}, headers=as_viewer
                ),
                201,
            )
            async with connect(tv["ws_url"], open_timeout=5, close_timeout=2) as ws:
                await ws.send(json.dumps({"type": "heartbeat", "position_seconds": 1234.0, "state": "playing"}))
                assert (await receive(ws, time.monotonic() + 5))["type"] == "ack"
                process_a.terminate()
                assert await closed_with(ws) == 1012
            # uvicorn shuts down gracefully, then re-raises the signal it caught.
            assert await asyncio.to_thread(process_a.wait, 10) in (0, -15)

            # The position was saved on the way down, and the session lives on: it resumes on B.
            history = ok(await http.get(f"{b}/api/v1/watch-history", headers=as_viewer))
            assert history["watch_history"][0]["watched_seconds"] == 1234
            on_b = f"{b.replace('http://', 'ws://')}/api/v1/playback/ws?token={tv['playback_token']}"
            async with connect(on_b, open_timeout=5, close_timeout=2) as ws:
                await ws.send(json.dumps({"type": "heartbeat", "position_seconds": 1240.0}))
                assert (await receive(ws, time.monotonic() + 5))["type"] == "ack"


async def test_a_newer_socket_on_another_instance_replaces_the_older_one(
    instances: tuple[str, str], postgres_url: str, shared_media: SharedMedia
):
    a, b = instances
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as http, asyncio.timeout(TEST_TIMEOUT_SECONDS):
        admin = ok(await http.post(f"{a}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        as_admin = {"Authorization": f"Bearer {admin['token']}"}
        title = ok(await http.post(f"{a}/api/v1/admin/content", json=title_fields(), headers=as_admin), 201)
        await give_stored_media(postgres_url, title["id"], shared_media.directory())
        viewer = ok(
            await http.post(
                f"{b}/api/v1/auth/register", json={"email": "twice@example.com", "password": PASSWORD, "name": "T"}
            ),
            201,
        )
        as_viewer = {"Authorization": f"Bearer {viewer['token']}"}
        tv = ok(
            await http.post(f"{a}{PLAYBACK}", json={"content_id": title["id"], "device_id": "tv"}, headers=as_viewer),
            201,
        )
        on_b = f"{b.replace('http://', 'ws://')}/api/v1/playback/ws?token={tv['playback_token']}"
        async with connect(tv["ws_url"], open_timeout=5, close_timeout=2) as older:
            await older.send(json.dumps({"type": "heartbeat", "position_seconds": 3.0}))
            assert (await receive(older, time.monotonic() + 5))["type"] == "ack"
            async with connect(on_b, open_timeout=5, close_timeout=2) as newer:
                notice = await receive(older, time.monotonic() + NOTICE_WITHIN_SECONDS)
                assert notice["type"] == "terminated"
                assert notice["reason"] == "socket_replaced"
                assert await closed_with(older) == 4008
                await newer.send(json.dumps({"type": "heartbeat", "position_seconds": 4.0}))
                assert (await receive(newer, time.monotonic() + 5))["type"] == "ack"
