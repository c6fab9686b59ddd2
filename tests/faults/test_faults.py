"""Faults under connected players: an API instance on its own PostgreSQL and Redis, which are
killed, stopped, paused and restarted while players heartbeat.

For every scenario: no position is lost beyond the last heartbeat, none is ever rewound,
notices reach devices after recovery, a database outage answers 503 (never 500), no player
is closed with 1000, and the stream limit is never exceeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from own_services import OwnPostgres, OwnRedis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from conftest import SharedMedia
from helpers import PASSWORD
from integration.catalog_helpers import give_stored_media
from servers import running_processes, server_environ

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "faults-admin@example.com"
ADMIN_PASSWORD = "faults admin password"
HEARTBEAT_SECONDS = 2
PLAYBACK = "/api/v1/playback/sessions"


def title_fields(**overrides: Any) -> dict[str, Any]:
    """A free, published, one-hour film."""
    fields: dict[str, Any] = {
        "title": "A Film",
        "description": "A film for the fault tests.",
        "access_level": "free",
        "duration_seconds": 3600,
        "genres": [],
        "release_year": 2020,
        "thumbnail_url": "https://img.example.com/a.jpg",
        "trailer_url": "https://media.example.com/trailers/a.m3u8",
        "video_url": "https://media.example.com/titles/a.m3u8",
        "published": True,
    }
    return {**fields, **overrides}


@pytest.fixture(scope="module")
def postgres() -> Iterator[OwnPostgres]:
    with OwnPostgres.running() as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with OwnRedis.running(tmp_path / "redis") as server:
        yield server


@dataclass
class Api:
    url: str
    http: httpx.AsyncClient
    admin: dict[str, str]
    database_url: str
    #: The run's shared processed clip, which every title here plays.
    media: Path

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.http.request(method, f"{self.url}{path}", **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def viewer(self, name: str, plan: dict[str, Any] | None = None) -> dict[str, str]:
        body = {"email": f"{name}@example.com", "password": PASSWORD, "name": name}
        registered = await self.ok("POST", "/api/v1/auth/register", 201, json=body)
        headers = {"Authorization": f"Bearer {registered['token']}"}
        if plan is not None:
            await self.ok("POST", "/api/v1/subscriptions", 201, json={"plan_id": plan["id"]}, headers=headers)
        return headers

    async def plan(self, name: str, screens: int) -> dict[str, Any]:
        fields = {
            "name": name,
            "price": 999,
            "validity_days": 30,
            "access_level": "basic",
            "max_devices_allowed": screens,
            "resolution": "1080p",
        }
        plan: dict[str, Any] = await self.ok("POST", "/api/v1/admin/plans", 201, json=fields, headers=self.admin)
        return plan

    async def title(self, **overrides: Any) -> dict[str, Any]:
        title: dict[str, Any] = await self.ok(
            "POST", "/api/v1/admin/content", 201, json=title_fields(**overrides), headers=self.admin
        )
        await give_stored_media(self.database_url, title["id"], self.media)
        return title

    async def watched(self, headers: dict[str, str]) -> dict[str, int]:
        """Saved positions by title id."""
        history = await self.ok("GET", "/api/v1/watch-history", headers=headers)
        return {entry["content_id"]: entry["watched_seconds"] for entry in history["watch_history"]}

    async def eventually_watched(self, headers: dict[str, str], content_id: str, seconds: int, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            try:
                if (await self.watched(headers)).get(content_id) == seconds:
                    return
            except AssertionError:
                pass  # the database may still be coming back
            if time.monotonic() > deadline:
                assert (await self.watched(headers)).get(content_id) == seconds
            await asyncio.sleep(0.5)


@dataclass
class Player:
    """A device that heartbeats every ``HEARTBEAT_SECONDS / 2`` with a growing position and
    records everything the server says."""

    name: str
    ws: ClientConnection
    position: float = 10.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    stopped: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def errors(self) -> list[str]:
        return [m.get("code", "") for m in self.messages if m["type"] == "error"]

    @property
    def acks(self) -> int:
        return sum(1 for m in self.messages if m["type"] == "ack")

    @property
    def terminated(self) -> list[str]:
        return [m["reason"] for m in self.messages if m["type"] == "terminated"]

    async def _receive(self) -> None:
        try:
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code

    async def run(self) -> None:
        receiver = asyncio.create_task(self._receive())
        try:
            while not self.stopped and self.close_code is None:
                self.position += HEARTBEAT_SECONDS / 2
                with contextlib.suppress(ConnectionClosed):
                    await self.ws.send(
                        json.dumps({"type": "heartbeat", "position_seconds": self.position, "state": "playing"})
                    )
                await asyncio.sleep(HEARTBEAT_SECONDS / 2)
        finally:
            if self.stopped:
                await asyncio.wait_for(receiver, 10)
            else:
                receiver.cancel()

    async def stop(self) -> None:
        self.stopped = True
        self.position += 1.0
        await self.ws.send(json.dumps({"type": "stop", "position_seconds": self.position}))
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    async def vanish(self) -> None:
        """Drop off without a stop, as a phone whose app was killed."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.ws.close()

    async def acked_since(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        while self.acks <= count:
            assert time.monotonic() < deadline, f"{self.name}: no ack since the fault: {self.messages[-5:]}"
            assert self.close_code is None, f"{self.name} closed with {self.close_code}"
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def api_on(
    postgres: OwnPostgres, own_redis: OwnRedis, tmp_path: Path, media: SharedMedia, **settings: str
) -> AsyncIterator[Api]:
    environ = server_environ(
        tmp_path,
        DATABASE_URL=postgres.url,
        REDIS_URL=own_redis.url,
        REDIS_KEY_PREFIX=f"faults{tmp_path.name[-8:]}",
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL=ADMIN_EMAIL,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        HEARTBEAT_INTERVAL_SECONDS=str(HEARTBEAT_SECONDS),
        HEARTBEAT_GRACE_INTERVALS="3",
        PROGRESS_FLUSH_SECONDS="1",
        NOTIFICATION_DISPATCH_IN_API="false",
        **settings,
    )
    with running_processes(environ, 1, tmp_path) as [(url, _)]:
        async with httpx.AsyncClient(timeout=15) as http:
            login = await http.post(f"{url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            assert login.status_code == 200, login.text
            yield Api(url, http, {"Authorization": f"Bearer {login.json()['token']}"}, postgres.url, media.directory())


async def start_player(
    api: Api, headers: dict[str, str], content_id: str, device: str
) -> tuple[Player, dict[str, Any]]:
    started = await api.ok("POST", PLAYBACK, 201, json={"content_id": content_id, "device_id": device}, headers=headers)
    ws = await connect(started["ws_url"], open_timeout=5, close_timeout=2)
    player = Player(device, ws)
    player.task = asyncio.create_task(player.run())
    await player.acked_since(0, within=10)
    return player, started


async def live_sessions(api: Api, headers: dict[str, str]) -> int:
    return len((await api.ok("GET", PLAYBACK, headers=headers))["sessions"])


# --- Redis ------------------------------------------------------------------------------------


async def test_a_redis_restart_that_loses_every_key_is_invisible_to_viewers(
    postgres: OwnPostgres, own_redis: OwnRedis, tmp_path: Path, shared_media: SharedMedia
):
    async with api_on(postgres, own_redis, tmp_path, shared_media) as api, asyncio.timeout(120):
        single = await api.plan("Single screen", screens=1)
        film = await api.title(title="Redis film", access_level="basic")
        alice = await api.viewer("alice-redis", single)
        bob = await api.viewer("bob-redis", single)
        alice_tv, _ = await start_player(api, alice, film["id"], "alice-tv")
        bob_tv, _ = await start_player(api, bob, film["id"], "bob-tv")
        players = [alice_tv, bob_tv]

        own_redis.kill()
        await asyncio.sleep(HEARTBEAT_SECONDS * 2)
        for player in players:
            assert "service_unavailable" in player.errors
            assert player.close_code is None
        own_redis.start()  # empty: the sessions, the ended markers and the subscriptions are gone

        # The players are admitted again from their playback tokens and go on.
        for player in players:
            await player.acked_since(player.acks, within=15)
        assert await live_sessions(api, alice) == 1

        # Notices flow again: a start on alice's phone evicts her TV, which is told why.
        phone, started = await start_player(api, alice, film["id"], "alice-phone")
        assert [e["device_id"] for e in started["evicted"]] == ["alice-tv"]
        deadline = time.monotonic() + 5
        while "stream_limit" not in alice_tv.terminated:
            assert time.monotonic() < deadline, alice_tv.messages[-5:]
            await asyncio.sleep(0.1)
        if alice_tv.task is not None:
            await asyncio.wait_for(alice_tv.task, 5)
        assert alice_tv.close_code == 4001
        assert await live_sessions(api, alice) == 1

        # Stopping saves the very last position.
        await bob_tv.stop()
        assert bob_tv.close_code == 4006
        await api.eventually_watched(bob, film["id"], int(bob_tv.position), within=10)
        await phone.stop()
        assert phone.close_code == 4006
        for player in (alice_tv, bob_tv, phone):
            assert player.close_code != 1000


async def test_a_paused_redis_keeps_every_player(
    postgres: OwnPostgres, own_redis: OwnRedis, tmp_path: Path, shared_media: SharedMedia
):
    async with api_on(postgres, own_redis, tmp_path, shared_media) as api, asyncio.timeout(90):
        film = await api.title(title="Paused film")
        viewers = [await api.viewer(f"paused-{n}") for n in range(3)]
        players = [(await start_player(api, v, film["id"], f"tv-{n}"))[0] for n, v in enumerate(viewers)]

        own_redis.pause()
        await asyncio.sleep(5)  # longer than a Redis command may take: heartbeats are told to retry
        acks = {p.name: p.acks for p in players}
        own_redis.resume()

        for player in players:
            await player.acked_since(acks[player.name], within=10)
            assert player.close_code is None
            assert "service_unavailable" in player.errors
        for player, viewer in zip(players, viewers, strict=True):
            await player.stop()
            assert player.close_code == 4006
            await api.eventually_watched(viewer, film["id"], int(player.position), within=10)


# --- PostgreSQL -------------------------------------------------------------------------------


async def test_a_database_outage_answers_503_keeps_players_and_loses_no_position(
    postgres: OwnPostgres, own_redis: OwnRedis, tmp_path: Path, shared_media: SharedMedia
):
    async with api_on(postgres, own_redis, tmp_path, shared_media) as api, asyncio.timeout(120):
        film = await api.title(title="Outage film")
        viewer = await api.viewer("outage-viewer")
        tv, _ = await start_player(api, viewer, film["id"], "tv")
        await asyncio.sleep(HEARTBEAT_SECONDS)

        postgres.stop()
        try:
            for path in ("/api/v1/watch-history", "/api/v1/content", "/api/v1/subscriptions/active"):
                response = await api.http.get(f"{api.url}{path}", headers=viewer)
                assert response.status_code == 503, f"{path}: {response.status_code} {response.text}"
                assert response.json()["code"] == "service_unavailable"
                assert response.headers["retry-after"]
            ready = await api.http.get(f"{api.url}/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "unavailable"

            # Heartbeats need no database: the player keeps playing, then stops.
            acks = tv.acks
            await tv.acked_since(acks + 1, within=10)
            await tv.stop()
            assert tv.close_code == 4006
        finally:
            postgres.start()

        # The final position waited for the database and is saved once it is back.
        await api.eventually_watched(viewer, film["id"], int(tv.position), within=20)


# --- progress never goes backwards ------------------------------------------------------------


async def test_a_silent_phone_expiring_later_never_rewinds_what_the_tv_saved(
    postgres: OwnPostgres, own_redis: OwnRedis, tmp_path: Path, shared_media: SharedMedia
):
    async with api_on(postgres, own_redis, tmp_path, shared_media, FREE_MAX_DEVICES="2") as api, asyncio.timeout(90):
        film = await api.title(title="Two screens")
        viewer = await api.viewer("rewind-viewer")
        phone, _ = await start_player(api, viewer, film["id"], "phone")
        phone.position = 1004.0
        await phone.acked_since(phone.acks + 1, within=10)
        # The phone goes silent without a stop, its stream still live in the store.
        await phone.vanish()

        tv, _ = await start_player(api, viewer, film["id"], "tv")
        tv.position = 1309.0
        await tv.acked_since(tv.acks + 1, within=10)
        await tv.stop()
        saved = int(tv.position)
        await api.eventually_watched(viewer, film["id"], saved, within=10)

        # The phone's stream expires (grace 3 intervals, then the sweeper): its older position
        # is written and changes nothing.
        deadline = time.monotonic() + HEARTBEAT_SECONDS * 3 + 10
        while await live_sessions(api, viewer):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)
        assert (await api.watched(viewer))[film["id"]] == saved
