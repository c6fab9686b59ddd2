"""Driver queries: hot reads run on asyncpg beneath a read session, and through SQLAlchemy elsewhere."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import Integer, String, bindparam, column, func, literal, literal_column, select, text

from conftest import POSTGRES_ADMIN_URL, build_settings
from reelhouse.platform.db import build_sqlalchemy_config
from reelhouse.platform.driver import DriverQuery, driver_transaction
from reelhouse.platform.uow import EventBus, UnitOfWorkFactory

ANSWER = DriverQuery(
    select(bindparam("question", type_=Integer) + literal_column("1"), func.lower(bindparam("word", type_=String)))
)


@pytest.fixture
async def units(backend_environ: dict[str, str]) -> AsyncIterator[UnitOfWorkFactory]:
    config = build_sqlalchemy_config(build_settings(**backend_environ))
    try:
        yield UnitOfWorkFactory(config, EventBus())
    finally:
        await config.get_engine().dispose()


async def test_a_driver_query_answers_alike_on_every_database(units: UnitOfWorkFactory, backend: str):
    async with units.read() as session:
        rows = await ANSWER.rows(session, {"question": 41, "word": "Hello", "unused": "ignored"})

    assert [tuple(row) for row in rows] == [(42, "hello")]
    # On PostgreSQL the rows are the driver's own: SQLAlchemy's execution was skipped.
    assert isinstance(rows[0], asyncpg.Record) == (backend == "postgres")


@pytest.mark.parametrize(
    "statement",
    [select(literal(5)), select(column("n")).where(column("n").in_([1, 2]))],
    ids=["a constant", "an expanding IN"],
)
async def test_parameters_not_given_at_call_time_are_refused(postgres_url: str, statement):
    """Only PostgreSQL compiles for the driver (elsewhere a statement runs as it is)."""
    config = build_sqlalchemy_config(build_settings(DATABASE_URL=postgres_url))
    try:
        async with UnitOfWorkFactory(config, EventBus()).read() as session:
            with pytest.raises(ValueError, match="named parameters"):
                await DriverQuery(statement).rows(session, {})
    finally:
        await config.get_engine().dispose()


async def test_a_connection_lost_under_a_driver_query_is_not_handed_out_again(postgres_url: str):
    settings = build_settings(DATABASE_URL=postgres_url, DATABASE_POOL_SIZE="1", DATABASE_MAX_OVERFLOW="0")
    config = build_sqlalchemy_config(settings)
    units = UnitOfWorkFactory(config, EventBus())
    backend_pid = DriverQuery(select(func.pg_backend_pid()))
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        async with units.read() as session:
            (pid,) = (await backend_pid.rows(session, {}))[0]
        await admin.execute("SELECT pg_terminate_backend($1)", pid)

        # Whichever way the driver notices, the request is told the database connection was lost
        # (a 503 with Retry-After, platform/errors.py).
        with pytest.raises(ConnectionError, match="connection was lost"):
            async with units.read() as session:
                await backend_pid.rows(session, {})

        # The one pooled connection was replaced, not handed out broken again.
        async with units.read() as session:
            (replacement,) = (await backend_pid.rows(session, {}))[0]
        assert replacement != pid
    finally:
        await admin.close()
        await config.get_engine().dispose()


async def test_a_driver_transaction_commits_at_the_end_and_rolls_back_on_an_error(postgres_url: str):
    config = build_sqlalchemy_config(build_settings(DATABASE_URL=postgres_url))
    units = UnitOfWorkFactory(config, EventBus())
    insert = DriverQuery(text("INSERT INTO driver_scratch (n) VALUES (:n) RETURNING n").columns(column("n", Integer)))
    count = DriverQuery(select(func.count()).select_from(text("driver_scratch")))
    admin = await asyncpg.connect(postgres_url)
    await admin.execute("CREATE TABLE driver_scratch (n integer)")
    try:
        async with units.read() as session, driver_transaction(session) as transaction:
            assert transaction is not None
            assert [tuple(row) for row in await insert.rows(transaction, {"n": 1})] == [(1,)]
            # Not visible outside the transaction until it ends.
            assert await admin.fetchval("SELECT count(*) FROM driver_scratch") == 0
        assert await admin.fetchval("SELECT count(*) FROM driver_scratch") == 1

        async def write_then_fail() -> None:
            async with units.read() as session, driver_transaction(session) as transaction:
                assert transaction is not None
                await insert.rows(transaction, {"n": 2})
                raise RuntimeError("refused after the write")

        with pytest.raises(RuntimeError, match="refused"):
            await write_then_fail()
        assert await admin.fetch("SELECT n FROM driver_scratch") == [(1,)]

        # The connection went back to the pool outside any transaction: a read sees the committed row.
        async with units.read() as session:
            assert [tuple(row) for row in await count.rows(session, {})] == [(1,)]
    finally:
        await admin.execute("DROP TABLE driver_scratch")
        await admin.close()
        await config.get_engine().dispose()


async def test_there_is_no_driver_transaction_on_the_embedded_database(backend_environ: dict[str, str], backend: str):
    config = build_sqlalchemy_config(build_settings(**backend_environ))
    try:
        async with UnitOfWorkFactory(config, EventBus()).read() as session, driver_transaction(session) as transaction:
            assert (transaction is not None) == (backend == "postgres")
    finally:
        await config.get_engine().dispose()
