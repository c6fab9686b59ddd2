"""``scripts/bench``: seed PostgreSQL + Redis, start the API and the ceiling app, run every scenario.

Writes ``benchmarks/results/latest.json`` and ``latest.md`` (``--out`` elsewhere); raw wrk output,
loader configs, server logs and optional py-spy profiles go under ``<out>/raw/`` (git-ignored).
``--smoke`` runs tiny counts in about half a minute (the test suite runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from benchmarks import profiles, report
from benchmarks.procs import ROOT, SERVERS, CpuMeter, Loader, Server, run_loader, run_wrk, wait_until_idle
from benchmarks.seed import BENCH_PASSWORD, Seeded, drop_database, recreate_database, seed
from benchmarks.stats import latency_summary_ms

#: The admission probe: this many starts at this rate, while players are connected.
PROBE_STARTS = 200
PROBE_RATE = 20.0
POSTGRES_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@dataclass(frozen=True)
class Sizes:
    users: int
    titles: int
    history_per_user: int
    http_seconds: float
    ws_seconds: float
    connections: int
    flood_sockets: int
    admission_users: int
    players: int
    heartbeat_rate: float
    heartbeat_seconds: float
    login_players: int
    login_player_rate: float
    login_rate: float
    eviction_samples: int
    join_limit_seconds: float
    run_timeout: float
    warmup_seconds: float


FULL = Sizes(
    users=10_000, titles=2_000, history_per_user=25, http_seconds=10, ws_seconds=10, connections=64,
    flood_sockets=64, admission_users=500, players=10_000, heartbeat_rate=1000, heartbeat_seconds=20,
    login_players=5_000, login_player_rate=500, login_rate=20, eviction_samples=200, join_limit_seconds=150,
    run_timeout=900, warmup_seconds=3,
)  # fmt: skip
SMOKE = Sizes(
    users=300, titles=60, history_per_user=5, http_seconds=1, ws_seconds=1, connections=16,
    flood_sockets=8, admission_users=50, players=200, heartbeat_rate=100, heartbeat_seconds=1.5,
    login_players=100, login_player_rate=50, login_rate=5, eviction_samples=5, join_limit_seconds=20,
    run_timeout=120, warmup_seconds=0,
)  # fmt: skip


def mint_tokens(secret: str, user_ids: list[str]) -> list[str]:
    """Access tokens signed exactly as the API signs them (tokens of a random device family)."""
    from reelhouse.accounts.tokens import AccessTokenCodec
    from reelhouse.config import AuthSettings

    codec = AccessTokenCodec(AuthSettings(jwt_secret=secret, access_token_ttl_seconds=3600))
    return [codec.issue(uuid.UUID(user_id), uuid.uuid4(), 0).token for user_id in user_ids]


def lua_script(path: Path, method: str, target: str, tokens: list[str], *, body: str | None, devices: int = 0) -> Path:
    """A wrk script that rotates bearer tokens (and, for starts, device ids: evictions included)."""
    lines = ["local tokens = {" + ",".join(json.dumps(token) for token in tokens) + "}", "local i = 0"]
    lines.append("request = function()")
    lines.append("  i = i + 1")
    lines.append("  local u = (i % #tokens) + 1")
    headers = '{["Authorization"] = "Bearer " .. tokens[u], ["Content-Type"] = "application/json"}'
    if body is not None:
        lines.append(f"  local device = 'bench-' .. (math.floor(i / #tokens) % {devices})")
        lines.append(f"  local body = string.gsub({json.dumps(body)}, 'DEVICE', device)")
        lines.append(f"  return wrk.format({json.dumps(method)}, {json.dumps(target)}, {headers}, body)")
    else:
        lines.append(f"  return wrk.format({json.dumps(method)}, {json.dumps(target)}, {headers}, nil)")
    lines.append("end")
    path.write_text("\n".join(lines) + "\n")
    return path


def progress_script(path: Path, tokens: list[str], titles: list[str]) -> Path:
    """A wrk script reporting progress (``POST /api/v1/watch-history``): request i is user i's
    token on title i, at a position that moves on, so each request updates or creates a row."""
    lines = [
        "local tokens = {" + ",".join(json.dumps(token) for token in tokens) + "}",
        "local titles = {" + ",".join(json.dumps(title) for title in titles) + "}",
        "local i = 0",
        "request = function()",
        "  i = i + 1",
        "  local headers = {['Authorization'] = 'Bearer ' .. tokens[(i % #tokens) + 1],"
        " ['Content-Type'] = 'application/json'}",
        '  local body = string.format(\'{"content_id": "%s", "watched_seconds": %d}\','
        " titles[(i % #titles) + 1], 10 + (i % 500))",
        "  return wrk.format('POST', '/api/v1/watch-history', headers, body)",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def db_stats(dsn: str) -> dict[str, int]:
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
    finally:
        await connection.close()
    assert row is not None
    return dict(row)


def api_environ(database_url: str, redis_prefix: str, secret: str, var_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "src"),  # this checkout's source, whatever the editable install points at
        "ENVIRONMENT": "production",
        "JWT_SECRET": secret,
        "DATABASE_URL": database_url,
        "DATABASE_MIGRATE_ON_STARTUP": "false",  # migrated by the harness before seeding
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        # Deviations from production defaults, stated in the summary:
        "RATE_LIMIT_ENABLED": "false",  # 60/min per IP would measure the limiter, not the service
        "WS_MAX_MESSAGES_PER_SECOND": "1000",  # the flood sends far more than a player's 5/s
        "VAR_DIR": str(var_dir),
        "MEDIA_DIR": str(var_dir / "media"),  # the seeded titles' shared asset is made here (media step)
        "MEDIA_WORKER_IN_API": "false",
        "REELHOUSE_ENV_FILE": str(var_dir / "no.env"),
        "LOG_LEVEL": "WARNING",
        # Each server process sets its own (benchmarks/procs.py); this one serves the in-process migration.
        "PUBLIC_URL": "http://127.0.0.1",
    }


class Bench:
    def __init__(
        self,
        sizes: Sizes,
        out: Path,
        *,
        smoke: bool,
        profile: bool,
        only: frozenset[str] = frozenset(),
        server: str = "uvicorn",
    ) -> None:
        self.sizes = sizes
        self.server = server
        self.only = only
        self.out = out
        self.raw = out / "raw"
        self.smoke = smoke
        self.profile = profile
        self.results: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.run_id = f"{os.getpid()}"
        self.database = f"reelhouse_bench{'_smoke' if smoke else ''}_{self.run_id}"
        self.dsn = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{self.database}"
        self.prefix = f"bench{self.run_id}"
        self.secret = secrets.token_urlsafe(48)
        self.servers: list[Server] = []
        self._second: Server | None = None
        self.seeded = Seeded()

    # ---- setup -------------------------------------------------------------------------------
    async def setup(self) -> None:
        self.raw.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        await recreate_database(POSTGRES_ADMIN, self.database)
        environ = api_environ(self.dsn, self.prefix, self.secret, self.raw / "var")
        await self._migrate_in_process(environ)
        sizes = self.sizes
        self.seeded = await seed(
            self.dsn, users=sizes.users, titles=sizes.titles, history_per_user=sizes.history_per_user
        )
        self.setup_seconds = round(time.perf_counter() - began, 1)
        self.api = self._server("api", "reelhouse.app:create_app", environ)
        self.ceiling = self._server("ceiling", "benchmarks.ceiling_app:create_app", environ)
        await asyncio.gather(self.api.wait_healthy(), self.ceiling.wait_healthy())

    async def _migrate_in_process(self, environ: dict[str, str]) -> None:
        from reelhouse.config import load_settings
        from reelhouse.platform.db import build_sqlalchemy_config, upgrade_database

        settings = load_settings(environ)
        await asyncio.to_thread(upgrade_database, build_sqlalchemy_config(settings))

    def _server(self, name: str, factory: str, environ: dict[str, str]) -> Server:
        server = Server(name, factory, environ, self.raw, self.server)
        self.servers.append(server)
        return server

    async def teardown(self) -> None:
        for server in self.servers:
            server.stop()
        redis = Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in redis.scan_iter(match=f"{self.prefix}:*", count=1000)]
            for start in range(0, len(keys), 1000):
                await redis.delete(*keys[start : start + 1000])
        finally:
            await redis.aclose()
        await drop_database(POSTGRES_ADMIN, self.database)

    # ---- helpers -----------------------------------------------------------------------------
    def record(self, key: str, **values: Any) -> dict[str, Any]:
        self.results[key] = values
        return values

    def tokens(self, indexes: list[int]) -> list[str]:
        return mint_tokens(self.secret, [self.seeded.user_ids[index] for index in indexes])

    async def wrk(self, name: str, server: Server, target: str, **kwargs: Any) -> dict[str, Any]:
        meter = CpuMeter(server)
        result = await run_wrk(
            server.url + target, self.sizes.http_seconds, self.sizes.connections, self.raw / f"{name}.wrk.txt",
            **kwargs,
        )  # fmt: skip
        result["server_cpu_percent"] = meter.percent()
        return result

    async def warm(self, name: str, server: Server, target: str, **kwargs: Any) -> None:
        """The same load for a moment first, unmeasured: caches fill and connection pools open, as
        on a server that has been up for a while (every HTTP scenario, the ceiling too)."""
        seconds = self.sizes.warmup_seconds
        if seconds:
            raw = self.raw / f"{name}.warmup.txt"
            await run_wrk(server.url + target, seconds, self.sizes.connections, raw, **kwargs)

    async def warm_users(self, server: Server, target: str, tokens: list[str]) -> None:
        """One request per token first (64 at a time), unmeasured: what each instance remembers of
        a user (who they are, their entitlement) is there for every one of them, as on a server
        whose users have been active within the last minute. The timed warm-up alone does not
        reach them all: wrk's threads rotate through the tokens at a few hundred a second."""
        gate = asyncio.Semaphore(self.sizes.connections)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def touch(token: str) -> None:
                async with gate:
                    await http.get(target, headers={"Authorization": f"Bearer {token}"})

            await asyncio.gather(*(touch(token) for token in tokens))

    def py_spy(self, name: str, seconds: float) -> subprocess.Popen[bytes] | None:
        spy = shutil.which("py-spy") or str(ROOT / ".venv/bin/py-spy")
        if not self.profile or not Path(spy).exists():
            return None
        command = [spy, "record", "-d", str(max(1, int(seconds))), "-p", str(self.api.pid), "-o"]
        command += [str(self.raw / f"{name}.profile.txt"), "--format", "raw", "--nonblocking"]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603

    async def profiled(self, name: str, scenario: Awaitable[dict[str, Any]], seconds: float | None = None) -> Any:
        """Run a scenario while py-spy samples the API (with ``--profile``), keeping a summary."""
        spy = self.py_spy(name, self.sizes.http_seconds if seconds is None else seconds)
        result = await scenario
        if spy:
            await asyncio.to_thread(spy.wait, 60)
            raw = self.raw / f"{name}.profile.txt"
            if raw.exists():
                self.results.setdefault("_profiles", {})[name] = profiles.summarize(raw)
        return result

    # ---- scenarios ---------------------------------------------------------------------------
    async def ceilings(self) -> None:
        await self.warm("ceiling_ping", self.ceiling, "/ping")
        ping = await self.wrk("ceiling_ping", self.ceiling, "/ping")
        self.record("ceiling_ping", **ping)
        meter = CpuMeter(self.ceiling)
        echo = await run_loader(
            "flood",
            {"echo_url": self.ceiling.url.replace("http", "ws") + "/echo", "sockets": self.sizes.flood_sockets,
             "duration": self.sizes.ws_seconds},
            self.raw, "ceiling_echo", self.sizes.ws_seconds + 60,
        )  # fmt: skip
        echo["server_cpu_percent"] = meter.percent()
        self.record("ceiling_ws_echo", **echo)

    async def http(self) -> None:
        await self.warm("health", self.api, "/health")
        self.record("health", **await self.profiled("health", self.wrk("health", self.api, "/health")))
        await self.warm("plans", self.api, "/api/v1/plans")
        self.record("plans", **await self.profiled("plans", self.wrk("plans", self.api, "/api/v1/plans")))
        await self.warm("content", self.api, "/api/v1/content?limit=20")
        content = self.wrk("content", self.api, "/api/v1/content?limit=20")
        self.record("content", **await self.profiled("content", content))
        tokens = self.tokens(list(range(min(1000, len(self.seeded.user_ids)))))
        script = lua_script(self.raw / "profile.lua", "GET", "/api/v1/users/profile", tokens, body=None)
        await self.warm_users(self.api, "/api/v1/users/profile", tokens)
        await self.warm("profile", self.api, "/api/v1/users/profile", script=script)
        profile = self.wrk("profile", self.api, "/api/v1/users/profile", script=script)
        self.record("profile", **await self.profiled("profile", profile))

    async def history(self) -> None:
        """The seed's watch-history routes, signed in: a page of it, and progress reports spread over
        1,000 users (and all on one user's one title: the one-row hot spot)."""
        users = list(range(min(1000, len(self.seeded.user_ids))))
        tokens = self.tokens(users)
        target = "/api/v1/watch-history?limit=10"
        script = lua_script(self.raw / "history_read.lua", "GET", target, tokens, body=None)
        await self.warm_users(self.api, target, tokens)
        await self.warm("history_read", self.api, target, script=script)
        read = self.wrk("history_read", self.api, target, script=script)
        self.record("history_read", **await self.profiled("history_read", read))
        titles = self.seeded.free_titles[: max(1, min(50, len(self.seeded.free_titles)))]
        script = progress_script(self.raw / "history_write.lua", tokens, titles)
        await self.warm("history_write", self.api, "/api/v1/watch-history", script=script)
        write = self.wrk("history_write", self.api, "/api/v1/watch-history", script=script)
        self.record("history_write", **await self.profiled("history_write", write))
        script = progress_script(self.raw / "history_hot.lua", tokens[:1], titles[:1])
        hot = await self.wrk("history_hot", self.api, "/api/v1/watch-history", script=script)
        self.record("history_hot", **hot)

    async def admission(self) -> None:
        users = self.seeded.users_on("Basic")[: self.sizes.admission_users]
        body = json.dumps({"content_id": self.seeded.free_titles[0], "device_id": "DEVICE"})
        target = "/api/v1/playback/sessions"
        script = lua_script(self.raw / "admission.lua", "POST", target, self.tokens(users), body=body, devices=3)
        await self.warm("admission", self.api, target, script=script)
        result = await self.profiled("admission", self.wrk("admission", self.api, target, script=script))
        result["users"] = len(users)
        result["devices_per_user"] = 3
        result["plan_device_limit"] = 2
        result["evictions_per_start_expected"] = "every start after a user's first two"
        self.record("admission", **result)

    async def admission_on_two_instances(self) -> None:
        """How admission grows from one API process to two (half the connections and users on each;
        the processes share the machine's two cores with PostgreSQL, Redis and the load). Last in
        the run: the streams it starts expire in the background for a while after."""
        users = self.seeded.users_on("Basic")[: self.sizes.admission_users]
        body = json.dumps({"content_id": self.seeded.free_titles[0], "device_id": "DEVICE"})
        second = await self.second_instance()
        target = "/api/v1/playback/sessions"
        halves = [users[: len(users) // 2], users[len(users) // 2 :]]
        scripts = [
            lua_script(self.raw / f"admission_{index}.lua", "POST", target, self.tokens(half), body=body, devices=3)
            for index, half in enumerate(halves)
        ]
        connections = self.sizes.connections // 2
        servers = (self.api, second)
        await asyncio.gather(*(
            run_wrk(server.url + target, self.sizes.warmup_seconds or 1, connections,
                    self.raw / f"admission_two_{index}.warmup.txt", script=script)
            for index, (server, script) in enumerate(zip(servers, scripts, strict=True))
        ))  # fmt: skip
        meters = [CpuMeter(server) for server in servers]
        results = await asyncio.gather(*(
            run_wrk(server.url + target, self.sizes.http_seconds, connections,
                    self.raw / f"admission_two_{index}.wrk.txt", script=script)
            for index, (server, script) in enumerate(zip(servers, scripts, strict=True))
        ))  # fmt: skip
        self.record(
            "admission_two_instances",
            requests_per_s=round(sum(result["requests_per_s"] for result in results), 1),
            p50_ms=max(result["p50_ms"] for result in results),
            p99_ms=max(result["p99_ms"] for result in results),
            non_2xx=sum(result.get("non_2xx", 0) for result in results),
            connections=connections * 2,
            per_instance=[result["requests_per_s"] for result in results],
            server_cpu_percent=[meter.percent() for meter in meters],
        )

    async def second_instance(self) -> Server:
        """A second API process on the same database and Redis (started once, kept for the run)."""
        if self._second is None:
            self._second = self._server("api-2", "reelhouse.app:create_app", api_environ(
                self.dsn, self.prefix, self.secret, self.raw / "var"))  # fmt: skip
            await self._second.wait_healthy()
        return self._second

    async def media(self) -> None:
        """Transcode speed against the ffmpeg CLI; then a player's playlist and segment requests."""
        from benchmarks import media
        from reelhouse.media import read_manifest
        from reelhouse.media.encryption import MediaKeys, encrypt_media

        work = self.raw / "transcode"
        # The production preset in a full run; a fast one keeps the smoke run short.
        settings = media.EncoderSettings(preset="superfast") if self.smoke else None
        # Long enough that our child process's start-up (about 0.3 s) does not decide the figure.
        speed = await media.transcode_speed(work, 10 if self.smoke else 30, settings)
        self.record("transcode", **speed)
        # The seeded titles all point at one asset stored at MEDIA_DIR/bench/shared: this output.
        shared = self.raw / "var" / "media" / "bench" / "shared"
        shared.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(shared, ignore_errors=True)
        (work / "ours").rename(shared)
        # Sealed as MEDIA_ENCRYPTION=aes-128 would (keys from the API's JWT_SECRET), so its key
        # requests can be measured too; serving sealed segments costs the same as clear ones.
        keys = MediaKeys(self.secret)
        await asyncio.to_thread(
            encrypt_media, shared, read_manifest(shared), lambda r, p: keys.key("bench/shared", r, p)
        )
        user = self.seeded.users_on("Premium")[-1]
        async with httpx.AsyncClient(base_url=self.api.url, timeout=10) as http:
            started = await http.post(
                "/api/v1/playback/sessions",
                json={"content_id": self.seeded.free_titles[-1], "device_id": "bench-media"},
                headers={"Authorization": f"Bearer {self.tokens([user])[0]}"},
            )
            started.raise_for_status()
        stream = httpx.URL(started.json()["stream_url"])
        base = stream.path.rsplit("/", 1)[0]
        query = stream.query.decode()
        playlist, segment = f"{base}/480p/index.m3u8?{query}", f"{base}/480p/seg_00000.m4s?{query}"
        script = media.media_requests_script(self.raw / "media.lua", playlist, segment)
        await self.warm("media", self.api, playlist, script=script)
        result = await self.profiled("media", self.wrk("media", self.api, playlist, script=script))
        # The same bytes from the bare app's memory: what answering them costs without any checks.
        async with httpx.AsyncClient(base_url=self.api.url, timeout=10) as http:
            sizes = [len((await http.get(target)).content) for target in (playlist, segment)]
        result["playlist_bytes"], result["segment_bytes"] = sizes
        bare = media.media_requests_script(self.raw / "media_ceiling.lua", *(f"/bytes/{size}" for size in sizes))
        await self.warm("media_ceiling", self.ceiling, f"/bytes/{sizes[0]}", script=bare)
        ceiling = await self.wrk("media_ceiling", self.ceiling, f"/bytes/{sizes[0]}", script=bare)
        result["bytes_ceiling_requests_per_s"] = ceiling.get("requests_per_s")
        self.record("media", **result)
        key = f"{base}/480p/key_00000.key?{query}"
        await self.warm("media_keys", self.api, key)
        self.record("media_keys", **await self.profiled("media_keys", self.wrk("media_keys", self.api, key)))
        await self.media_offload(user)

    async def media_offload(self, user: int) -> None:
        """One player's whole playback through an instance whose segments are listed on a file server
        over the media store (what a CDN in front of the bucket is): the share of bytes the API sent."""
        from benchmarks import media

        files = media.StaticFiles(self.raw / "var" / "media", self.raw / "static_files.log")
        environ = api_environ(self.dsn, self.prefix, self.secret, self.raw / "var")
        environ |= {"MEDIA_ENCRYPTION": "aes-128", "MEDIA_PUBLIC_BASE_URL": files.url}
        offload = self._server("api-cdn", "reelhouse.app:create_app", environ)
        try:
            await offload.wait_healthy()
            async with httpx.AsyncClient(base_url=offload.url, timeout=10) as http:
                started = await http.post(
                    "/api/v1/playback/sessions",
                    json={"content_id": self.seeded.free_titles[-2], "device_id": "bench-cdn"},
                    headers={"Authorization": f"Bearer {self.tokens([user])[0]}"},
                )
                started.raise_for_status()
                counted = await media.play_through(http, started.json()["stream_url"], api_origin=offload.url)
            self.record("media_offload", **counted)
        finally:
            files.stop()

    async def flood(self) -> None:
        users = self.seeded.users_on("Premium")[: self.sizes.flood_sockets]
        meter = CpuMeter(self.api)
        loader = run_loader(
            "flood",
            {"base": self.api.url, "tokens": self.tokens(users), "content_id": self.seeded.free_titles[1],
             "duration": self.sizes.ws_seconds},
            self.raw, "flood", self.sizes.ws_seconds + 90,
        )  # fmt: skip
        result = await self.profiled("flood", loader, self.sizes.ws_seconds)
        result["server_cpu_percent"] = meter.percent()
        self.record("heartbeat_flood", **result)

    async def players(self) -> None:
        sizes = self.sizes
        count = min(sizes.players, len(self.seeded.user_ids))
        tokens = self.tokens(list(range(count)))
        loader = await Loader.start(
            "players",
            {
                "base": self.api.url,
                "tokens": tokens,
                "content_id": self.seeded.free_titles[2],
                "join_limit_seconds": sizes.join_limit_seconds,
            },
            self.raw, "players",
        )  # fmt: skip
        try:
            await loader.read(60)  # ready
            await asyncio.sleep(1)
            rss_before = self.api.rss_kib()
            await loader.send("join")
            joined = await loader.read(sizes.join_limit_seconds + 120)
            await asyncio.sleep(1)
            rss_after = self.api.rss_kib()
            sockets = max(1, int(joined["sockets"]))
            per_connection = (rss_after - rss_before) / sockets
            probe = await self.admission_probe(int(joined["sockets"]))
            self.record(
                "players_memory",
                sockets=joined["sockets"], not_joined=joined["not_joined"], join_errors=joined["errors"],
                first_join_errors=joined["first_errors"],
                join_seconds=joined["seconds"], rss_before_kib=rss_before, rss_after_kib=rss_after,
                kib_per_connection=round(per_connection, 2),
                measured="server VmRSS before the first start and after every player started, connected and "
                "heartbeated once (so it includes per-stream state, not only the socket)",
            )  # fmt: skip
            self.record("admission_with_players", **probe)
            # Heartbeats at a fixed rate across every socket, with database writes counted.
            await asyncio.sleep(1.5)
            stats_before = await db_stats(self.dsn)
            meter, loader_meter = CpuMeter(self.api), CpuMeter(loader.pid)
            await loader.send(f"hb {sizes.heartbeat_rate} {sizes.heartbeat_seconds} {count}")
            beats = await self.profiled(
                "heartbeats", loader.read(sizes.heartbeat_seconds + 60), sizes.heartbeat_seconds
            )
            cpu = meter.percent()
            await asyncio.sleep(1.5)  # statistics reach pg_stat_database within a second
            stats_after = await db_stats(self.dsn)
            beats.pop("event", None)
            self.record(
                "heartbeats", **beats, server_cpu_percent=cpu, loader_cpu_percent=loader_meter.percent(),
                rss_kib=self.api.rss_kib(),
            )  # fmt: skip
            delta = {key: stats_after[key] - stats_before[key] for key in stats_before}
            row_writes = delta["tup_inserted"] + delta["tup_updated"] + delta["tup_deleted"]
            flush = 30
            periods = max(1, -(-beats["seconds"] // flush))
            self.record(
                "db_writes",
                heartbeats=beats["sent"], sessions=beats["sockets"], seconds=beats["seconds"],
                progress_flush_seconds=flush, row_writes=row_writes, commits=delta["xact_commit"],
                row_writes_per_heartbeat=round(row_writes / max(1, beats["sent"]), 4),
                commits_per_heartbeat=round(delta["xact_commit"] / max(1, beats["sent"]), 4),
                row_writes_per_session_per_flush_period=round(row_writes / max(1, beats["sockets"]) / periods, 4),
                **{f"delta_{key}": value for key, value in delta.items()},
            )  # fmt: skip
            # Sign-ins at a fixed rate while a share of the players heartbeat.
            login_users = list(range(len(self.seeded.emails)))[-200:]
            logins_task = asyncio.create_task(
                run_loader(
                    "logins",
                    {"base": self.api.url, "rate": sizes.login_rate, "duration": sizes.heartbeat_seconds,
                     "emails": [self.seeded.emails[index] for index in login_users], "password": BENCH_PASSWORD},
                    self.raw, "logins", sizes.heartbeat_seconds + 90,
                )
            )  # fmt: skip
            meter, loader_meter = CpuMeter(self.api), CpuMeter(loader.pid)
            await loader.send(f"hb {sizes.login_player_rate} {sizes.heartbeat_seconds} {sizes.login_players}")
            under_load = await loader.read(sizes.heartbeat_seconds + 60)
            logins = await logins_task
            under_load.pop("event", None)
            logins.pop("event", None)
            self.record(
                "logins_under_load", heartbeats=under_load, logins=logins, server_cpu_percent=meter.percent(),
                loader_cpu_percent=loader_meter.percent(),
            )  # fmt: skip
            await loader.send("quit")
            await loader.read(60)
        finally:
            loader.kill()
            await loader.finish(10)
        await self.heartbeats_of_fewer_players(count // 10)

    async def admission_probe(self, players: int) -> dict[str, Any]:
        """Starts at a steady 20/s by Premium users on a device of their own (no eviction), while
        ``players`` are connected: how one admission's latency grows with the players held."""
        users = self.seeded.users_on("Premium")[-(20 if self.smoke else PROBE_STARTS) :]
        tokens = self.tokens(users)
        samples: list[float] = []
        statuses: dict[str, int] = {}
        async with httpx.AsyncClient(base_url=self.api.url, timeout=30) as http:
            first = time.perf_counter()
            for index, token in enumerate(tokens):
                began = time.perf_counter()
                response = await http.post(
                    "/api/v1/playback/sessions",
                    json={"content_id": self.seeded.free_titles[5], "device_id": f"probe-{players}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                samples.append(time.perf_counter() - began)
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                if response.status_code == 201:
                    await http.delete(
                        f"/api/v1/playback/sessions/{response.json()['session_id']}",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                await asyncio.sleep(max(0.0, first + (index + 1) / PROBE_RATE - time.perf_counter()))
        return {"players": players, "statuses": statuses, **latency_summary_ms(samples)}

    async def players_on_two_instances(self) -> None:
        """The same players and heartbeat rate split over two API processes (on the same two cores):
        how the heartbeat tail changes from one process to two."""
        second = await self.second_instance()
        await asyncio.sleep(2)
        count = min(self.sizes.players, len(self.seeded.user_ids))
        joined, beats = await self.heartbeats_of_a_group(
            "players_two", count, self.seeded.free_titles[6], [self.api, second]
        )
        self.record("heartbeats_two_instances", **beats, joined=joined["sockets"])

    async def heartbeats_of_fewer_players(self, count: int) -> None:
        """The same heartbeat rate across a tenth of the players (the others gone): how the tail
        grows with the number of connected players; one start's latency among them too."""
        await asyncio.sleep(2)  # the server settles the players that just left

        async def probe(players: int) -> None:
            self.record("admission_with_fewer_players", **await self.admission_probe(players))

        joined, beats = await self.heartbeats_of_a_group(
            "players_fewer", count, self.seeded.free_titles[4], [self.api], once_joined=probe
        )
        self.record("heartbeats_fewer", **beats, joined=joined["sockets"])

    async def heartbeats_of_a_group(
        self,
        name: str,
        count: int,
        content_id: str,
        servers: list[Server],
        once_joined: Callable[[int], Awaitable[None]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first ``count`` users join as players (spread over ``servers``) and heartbeat at the
        run's rate for half its heartbeat time; (what joined, the heartbeats with each server's CPU)."""
        sizes = self.sizes
        loader = await Loader.start(
            "players",
            {"base": servers[0].url, "bases": [server.url for server in servers],
             "tokens": self.tokens(list(range(count))), "content_id": content_id,
             "join_limit_seconds": sizes.join_limit_seconds},
            self.raw, name,
        )  # fmt: skip
        try:
            await loader.read(60)
            await loader.send("join")
            joined = await loader.read(sizes.join_limit_seconds + 120)
            if once_joined is not None:
                await once_joined(int(joined["sockets"]))
            await asyncio.sleep(1.5)
            meters = [CpuMeter(server) for server in servers]
            seconds = sizes.heartbeat_seconds / 2
            await loader.send(f"hb {sizes.heartbeat_rate} {seconds} {count}")
            beats = await loader.read(seconds + 60)
            beats.pop("event", None)
            cpu = [meter.percent() for meter in meters]
            beats["server_cpu_percent"] = cpu[0] if len(cpu) == 1 else cpu
            await loader.send("quit")
            await loader.read(60)
        finally:
            loader.kill()
            await loader.finish(10)
        return joined, beats

    async def eviction(self) -> None:
        self.results.setdefault("_idle_waits", {})["eviction"] = await wait_until_idle(self.api)
        second = await self.second_instance()
        await asyncio.sleep(2)  # let the first instance settle the players that just left
        users = self.seeded.users_on("Free")[-self.sizes.eviction_samples :]
        result = await run_loader(
            "eviction",
            {
                "a": self.api.url,
                "b": second.url,
                "tokens": self.tokens(users),
                "content_id": self.seeded.free_titles[3],
            },
            self.raw,
            "eviction",
            120,
        )
        result.pop("event", None)
        self.record("eviction", **result)

    async def run(self) -> dict[str, Any]:
        started = datetime.now(UTC)
        steps = [
            self.ceilings, self.http, self.history, self.admission, self.media, self.flood, self.players, self.eviction,
            self.admission_on_two_instances, self.players_on_two_instances,
        ]  # fmt: skip
        if self.only:
            # A group's name selects its steps (admission: both admission steps).
            steps = [step for step in steps if step.__name__.split("_")[0] in self.only or step == self.ceilings]
        try:
            async with asyncio.timeout(self.sizes.run_timeout):
                await self.setup()
                for step in steps:
                    began = time.perf_counter()
                    try:
                        await step()
                    except Exception as exc:  # noqa: BLE001  (one failed scenario must not hide the rest)
                        self.notes.append(f"{step.__name__} failed: {type(exc).__name__}: {exc}"[:500])
                    self.results.setdefault("_timings", {})[step.__name__] = round(time.perf_counter() - began, 1)
        finally:
            await self.teardown()
        return await self.summary(started)

    async def summary(self, started: datetime) -> dict[str, Any]:
        return {
            "generated_at": started.isoformat(timespec="seconds"),
            "mode": "smoke" if self.smoke else "full",
            "command": "scripts/bench"
            + (" --smoke" if self.smoke else "")
            + (f" --server {self.server}" if self.server != "uvicorn" else ""),
            "machine": await machine(),
            "settings": {
                "environment": "production",
                "workers": 1,
                "server": SERVER_DESCRIPTIONS[self.server],
                "deviations": [
                    "RATE_LIMIT_ENABLED=false (the default 60/min per IP would measure the limiter)",
                    "WS_MAX_MESSAGES_PER_SECOND=1000 (the flood scenario exceeds a player's 5/s)",
                    "access tokens minted with the API's own codec and secret, not via login "
                    "(logins are measured separately)",
                ],
                "sizes": self.sizes.__dict__,
                "seeded": {
                    "users": len(self.seeded.user_ids),
                    "titles": self.seeded.titles,
                    "watch_history_rows": self.seeded.history_rows,
                },
                "setup_seconds": getattr(self, "setup_seconds", None),
                "wrk": "wrk -t1 -c<connections> --latency; websocket loads: benchmarks/wsload.py in its own process",
            },
            "raw": self.results,
            "scenarios": report.scenarios(self.results),
            "notes": self.notes,
        }


def _host() -> tuple[str, int]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return cpu, int(Path("/proc/meminfo").read_text().split()[1])


async def machine() -> dict[str, Any]:
    cpu, memory_kib = _host()
    versions = {}
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN)
        try:
            versions["postgresql"] = str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()
    except (OSError, asyncpg.PostgresError):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(), "kernel": platform.release(), **versions,
    }  # fmt: skip


STEPS = ("http", "history", "admission", "media", "flood", "players", "eviction")
SERVER_DESCRIPTIONS = {
    "uvicorn": "uvicorn (uvloop, httptools, websockets-sansio), --no-access-log, no websocket compression, "
    "pings every 60 s, one process; ceiling app the same",
    "granian": "granian (ASGI, uvloop), one worker process, --no-access-log; ceiling app the same",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts, about half a minute")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where results go")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the API with py-spy in every scenario; summaries go into the results",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated scenario groups to run (the ceilings always run): {', '.join(STEPS)}",
    )
    parser.add_argument("--server", choices=SERVERS, default="uvicorn", help="the ASGI server to run both apps on")
    args = parser.parse_args(argv)
    only = frozenset(name for name in args.only.split(",") if name)
    if unknown := only - set(STEPS):
        parser.error(f"unknown scenario groups: {', '.join(sorted(unknown))}")
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (Debian: apt-get install wrk); scripts/test installs it when run as root")
    sizes = SMOKE if args.smoke else FULL
    bench = Bench(sizes, args.out, smoke=args.smoke, profile=args.profile, only=only, server=args.server)
    summary = asyncio.run(bench.run())
    args.out.mkdir(parents=True, exist_ok=True)
    name = "smoke" if args.smoke else "latest" if not only else "partial"
    if args.server != "uvicorn":
        name += f"-{args.server}"
    (args.out / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(report.markdown(summary))
    print(report.markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
