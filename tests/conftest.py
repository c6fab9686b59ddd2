"""Test fixtures: every integration test runs on PostgreSQL + Redis and on the embedded backends.

- PostgreSQL: one database per test process (``reelhouse_test_<pid>``), created fresh and
  migrated once per run, its tables truncated before each test, dropped at the end.
- Redis: one key prefix per test process (``rhtest<pid>``), its keys deleted before each test,
  so several runs can share one server.
- Embedded: a SQLite file per worker and the in-process backends.

``TEST_POSTGRES_URL`` and ``TEST_REDIS_URL`` point the suite at other servers.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from advanced_alchemy.base import metadata_registry
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.testing import AsyncTestClient
from sqlalchemy import text

import reelhouse.models  # noqa: F401  (registers the tables)
from reelhouse.app import create_app
from reelhouse.config import RedisSettings, Settings, load_settings
from reelhouse.platform.db import build_sqlalchemy_config, upgrade_database
from reelhouse.platform.redis_connection import RedisClient, RedisLimits, connect_redis

if TYPE_CHECKING:
    from object_storage import OwnS3
    from redis_cluster import OwnCluster

ROOT = Path(__file__).resolve().parents[1]
# Servers, workers and CLI commands the tests start import this checkout's source, whatever
# the virtualenv's editable install points at.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
TEST_JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
BACKENDS = ["postgres", "embedded"]
TEST_REDIS_LIMITS = RedisLimits(
    max_connections=100, pool_timeout_seconds=5, socket_timeout_seconds=5, connect_timeout_seconds=5
)

Client = AsyncTestClient[Any]
ClientFactory = Callable[..., AbstractAsyncContextManager[Client]]


def _worker_index(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))


@pytest.fixture(scope="session")
def worker_index(worker_id: str) -> int:
    return _worker_index(worker_id)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _recreate_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        # Databases left behind by test runs that were killed.
        for row in await connection.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'reelhouse_test_%'"):
            suffix = row["datname"].removeprefix("reelhouse_test_")
            if suffix.isdigit() and not _pid_alive(int(suffix)):
                await connection.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def _base_environ(**overrides: str) -> dict[str, str]:
    environ = {
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATABASE_MIGRATE_ON_STARTUP": "false",
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    environ.update(overrides)
    return environ


def build_settings(**environ: str) -> Settings:
    return load_settings(
        environ=_base_environ(**environ),
        config_file=ROOT / "litestar.toml",
        env_file=ROOT / "tests" / "no-such.env",
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"reelhouse_test_{os.getpid()}"
    asyncio.run(_recreate_database(POSTGRES_ADMIN_URL, name))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    settings = build_settings(DATABASE_URL=url)
    upgrade_database(build_sqlalchemy_config(settings))
    yield url
    asyncio.run(_drop_database(POSTGRES_ADMIN_URL, name))


@pytest.fixture(scope="session")
def redis_url(worker_index: int) -> str:
    return f"{REDIS_BASE_URL}/{1 + worker_index % 15}"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnCluster]:
    """A three-master Redis Cluster of this test process's own, started the first time a test asks."""
    from redis_cluster import running_cluster  # it imports servers, which imports this module

    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: OwnCluster) -> str:
    """``REDIS_URL`` for the app on the cluster: ``redis+cluster://`` and every master."""
    return redis_cluster.url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[OwnS3]:
    """An S3 endpoint of this test process's own (moto's server on 127.0.0.1), started the first time a test asks."""
    from object_storage import running_s3  # it imports servers, which imports this module

    with running_s3() as server:
        yield server


@pytest.fixture(scope="session")
def redis_key_prefix() -> str:
    return f"rhtest{os.getpid()}"


@pytest.fixture(scope="session")
def sqlite_var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    var_dir = tmp_path_factory.mktemp("var")
    upgrade_database(build_sqlalchemy_config(build_settings(VAR_DIR=str(var_dir))))
    return var_dir


@pytest.fixture(autouse=True)
def forget_database_config_keys() -> Iterator[None]:
    """advanced-alchemy gives every config instance a unique app-state key, kept in class-level sets
    and found by counting up recursively; a run builds thousands of apps, so start each test afresh."""
    yield
    for registry in (
        "_SESSION_SCOPE_KEY_REGISTRY",
        "_ENGINE_APP_STATE_KEY_REGISTRY",
        "_SESSIONMAKER_APP_STATE_KEY_REGISTRY",
    ):
        getattr(SQLAlchemyAsyncConfig, registry).clear()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_environ(request: pytest.FixtureRequest, backend: str) -> dict[str, str]:
    """The settings that select this test's backends."""
    if backend == "postgres":
        return {
            "DATABASE_URL": request.getfixturevalue("postgres_url"),
            "REDIS_URL": request.getfixturevalue("redis_url"),
            "REDIS_KEY_PREFIX": request.getfixturevalue("redis_key_prefix"),
            # Files the app writes (mail in the embedded mail backend) stay out of the checkout.
            "VAR_DIR": str(request.getfixturevalue("sqlite_var_dir")),
        }
    return {"VAR_DIR": str(request.getfixturevalue("sqlite_var_dir"))}


async def reset_state(settings: Settings) -> None:
    """Empty every table and this run's Redis keys, so each test starts from nothing."""
    config = build_sqlalchemy_config(settings)
    tables = [table.name for table in metadata_registry.get(None).sorted_tables]
    engine = config.get_engine()
    async with engine.begin() as connection:
        if settings.database.is_postgresql:
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608  (table names from metadata)
    await engine.dispose()
    if settings.redis.enabled:
        await delete_redis_keys(settings.redis.url, settings.redis.key_prefix)


def redis_client_for(url: str) -> RedisClient:
    """A client for a ``REDIS_URL``, built as the app builds its own (one Redis or a cluster)."""
    return connect_redis(RedisSettings(url=url), TEST_REDIS_LIMITS)


async def delete_redis_keys(url: str, prefix: str) -> None:
    """Delete the keys under ``prefix`` (on a cluster: on every master), never the whole database."""
    client = redis_client_for(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def make_settings(backend_environ: dict[str, str]) -> Callable[..., Settings]:
    """Settings for this test's backend, with any setting overridden by name (``RATE_LIMIT_ENABLED="true"``)."""

    def factory(**overrides: str) -> Settings:
        return build_settings(**{**backend_environ, **overrides})

    return factory


@pytest.fixture
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings()
    await reset_state(settings)
    return settings


class SharedMedia:
    """Processed media that test titles share: a tiny clip made and transcoded once per test run.

    Made on first use (most runs never play anything), under a file lock, in a workspace every
    xdist worker of the run shares, so the whole run transcodes it once.
    """

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self._directory: Path | None = None

    def directory(self) -> Path:
        if self._directory is None:
            self._directory = processed_once(self.workspace)
        return self._directory


def processed_once(workspace: Path) -> Path:
    from media.clips import make_test_clip
    from reelhouse.media import EncoderSettings, process_media

    destination = workspace / "shared-title"
    workspace.mkdir(parents=True, exist_ok=True)
    with (workspace / "shared-title.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not destination.exists():
            source = make_test_clip(
                workspace / "shared-source.mp4",
                width=1280,
                height=720,
                seconds=6,
                fps=25,
                with_audio=True,
                container_format="mp4",
            )
            process_media(source, destination, settings=EncoderSettings(preset="superfast"))
    return destination


@pytest.fixture(scope="session")
def shared_media(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SharedMedia:
    base = tmp_path_factory.getbasetemp()
    return SharedMedia((base if worker_id == "master" else base.parent) / "shared-media")


@pytest.fixture
def make_client(make_settings: Callable[..., Settings], shared_media: SharedMedia) -> ClientFactory:
    """Start an app with overridden settings: ``async with make_client(RATE_LIMIT_ENABLED="true") as client``."""

    @asynccontextmanager
    async def factory(*, reset: bool = True, **overrides: str) -> AsyncIterator[Client]:
        settings = make_settings(**overrides)
        if reset:
            await reset_state(settings)
        async with AsyncTestClient(app=create_app(settings)) as client:
            client.app.state.test_media = shared_media  # for catalog_helpers.create_title
            yield client

    return factory


@pytest.fixture
async def client(settings: Settings, shared_media: SharedMedia) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        client.app.state.test_media = shared_media  # for catalog_helpers.create_title
        yield client
