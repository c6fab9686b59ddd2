"""Database wiring: the advanced-alchemy config and migrations (units of work: ``platform/uow.py``)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event

if TYPE_CHECKING:
    from reelhouse.config import Settings

logger = logging.getLogger(__name__)

#: Where the Alembic environment and versions live (``db/`` at the project root).
MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "db"
#: Any fixed 64-bit number shared by every instance; names the migration lock.
MIGRATION_LOCK_KEY = 0x5EE1_4005E
#: Alembic keeps the running migration's context in module globals, so two upgrades in one
#: process (two apps starting in one test run, a CLI command beside the server) must take turns.
#: Across processes ``db/env.py`` serialises them in the database itself.
_UPGRADE_IN_PROCESS = threading.Lock()


def build_sqlalchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    database = settings.database
    if database.is_postgresql:
        engine_config = EngineConfig(
            echo=database.echo,
            pool_size=database.pool_size,
            max_overflow=database.max_overflow,
            # No ping per checkout (a round trip on every request); stale connections are
            # recycled instead, and a broken one fails its request once.
            pool_pre_ping=False,
            pool_recycle=1800,
        )
    else:
        Path(settings.var_dir).mkdir(parents=True, exist_ok=True)
        engine_config = EngineConfig(echo=database.echo)
    config = SQLAlchemyAsyncConfig(
        connection_string=database.url,
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit",
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS_DIR),
            script_config=str(MIGRATIONS_DIR / "alembic.ini"),
            version_table_name="alembic_version",
            render_as_batch=True,
        ),
    )
    if not database.is_postgresql:
        _tune_sqlite(config)
    return config


def _tune_sqlite(config: SQLAlchemyAsyncConfig) -> None:
    """WAL and a busy timeout let the embedded database take concurrent requests."""
    engine = config.get_engine()

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def upgrade_database(config: SQLAlchemyAsyncConfig, revision: str = "head") -> None:
    """Apply migrations (blocking); safe to call from several threads and processes at once.

    ``db/env.py`` holds a PostgreSQL advisory lock, or SQLite's write lock, while it migrates.
    """
    with _UPGRADE_IN_PROCESS:
        AlembicCommands(sqlalchemy_config=config).upgrade(revision=revision)


async def upgrade_database_async(config: SQLAlchemyAsyncConfig) -> None:
    # Alembic's async environment runs its own event loop, so give it a thread.
    await anyio.to_thread.run_sync(upgrade_database, config)
