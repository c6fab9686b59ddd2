"""Alembic environment for Reelhouse.

Several instances may start at once, and each applies pending migrations, so
every run holds a database-wide lock while it migrates: the first takes it and
migrates, the others wait and then find nothing to do.

- PostgreSQL: a session-level advisory lock (it survives the commits of
  migrations that need their own transaction).
- SQLite: the whole run is one ``BEGIN IMMEDIATE`` transaction, which takes the
  database's write lock up front; it also makes a failed run leave nothing half done.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.base import metadata_registry
from alembic import context
from sqlalchemy import event, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import reelhouse.models  # noqa: F401  (registers every table on the metadata)
from reelhouse.platform.db import MIGRATION_LOCK_KEY

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig
    from sqlalchemy.engine import Connection

config = cast("AlembicCommandConfig", context.config)
target_metadata = metadata_registry.get(config.bind_key)

#: How long an SQLite migrator waits for another one to finish.
SQLITE_LOCK_TIMEOUT_SECONDS = 60


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        version_table=config.version_table_name,
        render_as_batch=config.render_as_batch,
        user_module_prefix=config.user_module_prefix,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=config.db_url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _migrate_postgresql(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()
    try:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()


def _migrate_sqlite(connection: Connection) -> None:
    # The version is read inside the locked transaction, so a waiter sees what the first one did.
    with connection.begin():
        _configure(connection=connection, transactional_ddl=True)
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        _migrate_postgresql(connection)
    elif connection.dialect.name == "sqlite":
        _migrate_sqlite(connection)
    else:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


def _begin_immediately(engine: AsyncEngine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, start transactions, and start them with the write lock."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


async def run_migrations_online() -> None:
    url = config.db_url
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, poolclass=pool.NullPool, connect_args={"timeout": SQLITE_LOCK_TIMEOUT_SECONDS}
        )
        _begin_immediately(engine)
    else:
        engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
