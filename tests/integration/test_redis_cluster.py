"""What only a Redis Cluster can show: one node losing its scripts while the others keep them,
and a node restarting under the cross-instance subscription.

The contract suites (tests/contract) run every store on the cluster too, and
tests/integration/test_playback_instances.py evicts across two API processes on it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from litestar.testing import AsyncTestClient

from conftest import build_settings, delete_redis_keys, redis_client_for, reset_state
from helpers import PASSWORD
from redis_cluster import OwnCluster
from reelhouse.app import create_app
from reelhouse.platform.broadcast import RedisBroadcast
from reelhouse.platform.redis_connection import RedisClient
from reelhouse.playback.streams import EndReason, HeartbeatReport, NewStream, RedisStreamStore, StoreTimings

GRACE_MS = 300
TIMINGS = StoreTimings(grace_ms=GRACE_MS, flush_interval_ms=60_000, ended_ttl_seconds=60)
USERS = 30


@pytest.fixture
async def cluster_client(redis_cluster: OwnCluster, redis_key_prefix: str) -> AsyncIterator[RedisClient]:
    prefix = f"{redis_key_prefix}:cluster"
    await delete_redis_keys(redis_cluster.url, prefix)
    client = redis_client_for(redis_cluster.url)
    try:
        yield client
    finally:
        await client.aclose()
        await delete_redis_keys(redis_cluster.url, prefix)


@pytest.fixture
def prefix(redis_key_prefix: str) -> str:
    return f"{redis_key_prefix}:cluster"


def new_stream(user_id: str, position: float) -> NewStream:
    return NewStream(uuid.uuid4().hex, user_id, "tv", "TV", "c1", position)


def users_on_every_node(cluster: OwnCluster, prefix: str) -> list[str]:
    users = [f"user-{index}" for index in range(USERS)]
    nodes = {cluster.node_of(f"{prefix}:{{{user}}}:streams:started") for user in users}
    assert nodes == set(cluster.ports), "the users' slots should spread over every master"
    return users


def flush_scripts_on(port: int) -> None:
    with redis.Redis(port=port) as node:
        node.script_flush()


async def test_a_node_that_lost_its_scripts_reruns_only_its_own_calls(
    cluster_client: RedisClient, redis_cluster: OwnCluster, prefix: str
):
    streams = RedisStreamStore(cluster_client, prefix, TIMINGS)
    users = users_on_every_node(redis_cluster, prefix)
    sessions = {user: new_stream(user, float(index)) for index, user in enumerate(users)}
    for new in sessions.values():
        assert (await streams.admit(new, limit=1, reject_when_full=False)).admitted

    # Heartbeats: one pipelined batch across the three masters, one of which forgot the script.
    flush_scripts_on(redis_cluster.ports[0])
    reports = [HeartbeatReport(user, new.session_id, 100.0 + index, "playing") for index, (user, new) in
               enumerate(sessions.items())]  # fmt: skip
    outcomes = await streams.heartbeat_many(reports)
    assert all(outcome.alive for outcome in outcomes)
    for report in reports:
        live = await streams.get(report.user_id, report.session_id)
        assert live is not None
        assert live.position == report.position

    # A sweep ends each silent stream once and reports every one of them, also those on the
    # masters that kept their scripts (running the whole batch again would lose those).
    await asyncio.sleep(GRACE_MS / 1000 + 0.2)
    flush_scripts_on(redis_cluster.ports[1])
    ended = await streams.sweep()
    assert sorted(e.session.session_id for e in ended) == sorted(new.session_id for new in sessions.values())
    assert {e.reason for e in ended} == {EndReason.EXPIRED}
    assert await streams.live_users() == []


async def test_the_subscription_follows_a_restarted_node_and_catches_up(
    cluster_client: RedisClient, redis_cluster: OwnCluster, prefix: str
):
    publisher, follower = RedisBroadcast(cluster_client, prefix), RedisBroadcast(cluster_client, prefix)
    received: asyncio.Queue[bytes] = asyncio.Queue()
    caught_up = asyncio.Event()
    follower.on_message("notices", received.put_nowait)
    follower.on_reconnect(caught_up.set)
    await follower.start()
    try:
        assert follower.subscribed
        await publisher.publish("notices", b"before")
        async with asyncio.timeout(5):
            assert await received.get() == b"before"

        # Every channel shares one slot: the master that owns it is the one to lose.
        owner = redis_cluster.node_of(f"{prefix}:{{broadcast}}:notices")
        redis_cluster.kill_node(owner)
        async with asyncio.timeout(10):
            while follower.subscribed:  # noqa: ASYNC110  (a property, no event to wait on)
                await asyncio.sleep(0.05)
        await asyncio.to_thread(redis_cluster.start_node, owner)
        async with asyncio.timeout(20):
            await caught_up.wait()
        assert follower.subscribed

        await publisher.publish("notices", b"after")
        async with asyncio.timeout(5):
            assert await received.get() == b"after"
    finally:
        await follower.stop()


async def test_an_app_on_the_cluster_signs_in_limits_and_reports_a_lost_master(
    redis_cluster: OwnCluster, prefix: str, sqlite_var_dir: Path
):
    settings = build_settings(
        VAR_DIR=str(sqlite_var_dir), REDIS_URL=redis_cluster.url, REDIS_KEY_PREFIX=prefix, RATE_LIMIT_ENABLED="true"
    )
    await reset_state(settings)
    async with AsyncTestClient(app=create_app(settings)) as client:
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "notices": "ok"}

        registered = await client.post(
            "/api/v1/auth/register", json={"email": "cluster@example.com", "password": PASSWORD, "name": "C"}
        )
        assert registered.status_code == 201, registered.text
        headers = {"Authorization": f"Bearer {registered.json()['token']}"}
        profile = await client.get("/api/v1/users/profile", headers=headers)
        assert profile.status_code == 200, profile.text
        assert profile.headers["RateLimit"].startswith('"user"')  # counted on the cluster

        # One master down: /ready names Redis, whichever master the ping would have gone to.
        user_id = profile.json()["id"]
        owner = redis_cluster.node_of(f"{prefix}:{{{user_id}}}:profile-version")
        redis_cluster.kill_node(owner)
        try:
            down = await client.get("/ready")
            assert down.status_code == 503
            assert down.json()["checks"]["redis"] == "unavailable"
            # The token check needs that user's master: 503 with Retry-After, never 500.
            refused = await client.get("/api/v1/users/profile", headers=headers)
            assert refused.status_code == 503, refused.text
        finally:
            await asyncio.to_thread(redis_cluster.start_node, owner)
        assert (await client.get("/api/v1/users/profile", headers=headers)).status_code == 200
    await reset_state(settings)
