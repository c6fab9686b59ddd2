"""Hot statements straight on PostgreSQL's driver, on the connection of a read session.

For a short statement SQLAlchemy's execution and result layers, and its session's transaction
handling, cost about twice the CPU of the driver itself (parameter and result processing, the
execution context, events, the commit's own machinery). A :class:`DriverQuery` is a Core
statement compiled once for asyncpg and run on the asyncpg connection, returning the driver's
own rows (read by position); on any other database (the embedded SQLite), or on a session in
a transaction, it runs through the session as usual.

- On a read session (:meth:`UnitOfWorkFactory.read`, outside a transaction) each statement
  runs on its own.
- :func:`driver_transaction` opens a transaction of the driver's own on a read session's
  connection, for a short write that takes no part in a unit of work (it commits when the
  block ends, and rolls back on any error); elsewhere it gives None, and the caller writes
  through a unit of work instead.

The driver never runs a statement on a session in a transaction: SQLAlchemy begins that
transaction lazily, with its own first statement, so a statement sent beside it would fall
outside. Every parameter must be a named ``bindparam`` given at call time (no constants, no
expanding ``IN``): that is checked once, when the statement is first compiled.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from sqlalchemy import Select, TextualSelect, Update
    from sqlalchemy.engine import Dialect
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    #: What may run on the driver: statements whose rows are read.
    Statement: TypeAlias = Select[Any] | TextualSelect | Update

#: The driver the statements are run on directly.
DRIVER = "asyncpg"
AUTOCOMMIT = "AUTOCOMMIT"


class DriverTransaction:
    """A transaction on the driver's connection (see :func:`driver_transaction`)."""

    __slots__ = ("dialect", "driver", "session_connection")

    def __init__(self, session_connection: AsyncConnection, driver: Any, dialect: Dialect) -> None:
        self.session_connection = session_connection
        self.driver = driver  # an asyncpg connection
        self.dialect = dialect


def _on_the_driver(connection: AsyncConnection) -> bool:
    """Whether statements on ``connection`` may go straight to the driver: PostgreSQL through
    asyncpg, outside a transaction of SQLAlchemy's."""
    synchronous = connection.sync_connection
    return (
        connection.dialect.driver == DRIVER
        and synchronous is not None
        and synchronous.get_execution_options().get("isolation_level") == AUTOCOMMIT
    )


async def _driver_of(connection: AsyncConnection) -> Any:
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None:  # pragma: no cover  (a checked-out connection always has one)
        raise ConnectionError("the database connection was lost")
    return driver


async def _lost(connection: AsyncConnection, driver: Any, exc: Exception) -> NoReturn:
    """Raise ``exc`` as it is when the server refused a statement on a working connection;
    otherwise the connection is unusable (lost, terminated, out of step), and SQLAlchemy did not
    see it fail: its pool must not hand it out again, and the caller is told of an outage."""
    if isinstance(exc, asyncpg.PostgresError) and not driver.is_closed():
        raise exc
    await connection.invalidate(exc)
    raise ConnectionError(f"the database connection was lost ({type(exc).__name__})") from exc


class DriverQuery:
    """A statement run straight on the PostgreSQL driver where it may be (see the module)."""

    def __init__(self, statement: Statement, *, column_keys: Sequence[str] = ()) -> None:
        """``column_keys``: the columns an UPDATE sets, each a parameter of the same name."""
        self.statement = statement
        self._column_keys = list(column_keys)
        self._compiled: tuple[str, tuple[str, ...]] | None = None

    def _sql(self, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        """The statement's SQL for ``dialect`` and its parameters' names in positional order."""
        if self._compiled is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=self._column_keys or None)
            constants = sorted(name for name, bind in compiled.binds.items() if not bind.required)
            if constants or "POSTCOMPILE" in compiled.string:
                raise ValueError(f"a driver query takes only named parameters given at call time: {constants}")
            self._compiled = (compiled.string, tuple(compiled.positiontup or ()))
        return self._compiled

    async def rows(
        self, on: AsyncSession | DriverTransaction, parameters: Mapping[str, object]
    ) -> Sequence[Sequence[Any]]:
        if isinstance(on, DriverTransaction):
            return await self._fetch(on.session_connection, on.driver, on.dialect, parameters)
        connection = await on.connection()
        if not _on_the_driver(connection):
            return (await connection.execute(self.statement, dict(parameters))).all()
        return await self._fetch(connection, await _driver_of(connection), connection.dialect, parameters)

    async def _fetch(
        self, connection: AsyncConnection, driver: Any, dialect: Dialect, parameters: Mapping[str, object]
    ) -> Sequence[Sequence[Any]]:
        sql, names = self._sql(dialect)
        try:
            rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *(parameters[name] for name in names))
        except Exception as exc:  # noqa: BLE001  (re-raised by _lost, as it is or as an outage)
            await _lost(connection, driver, exc)
        return rows


@asynccontextmanager
async def driver_transaction(session: AsyncSession) -> AsyncIterator[DriverTransaction | None]:
    """A transaction of the driver's own on a read session's connection, committed when the block
    ends and rolled back on any error; None where statements cannot go to the driver."""
    connection = await session.connection()
    if not _on_the_driver(connection):
        yield None
        return
    driver = await _driver_of(connection)
    transaction = driver.transaction()
    try:
        await transaction.start()
    except Exception as exc:  # noqa: BLE001  (re-raised by _lost)
        await _lost(connection, driver, exc)
    try:
        yield DriverTransaction(connection, driver, connection.dialect)
    except BaseException as failure:
        try:
            await transaction.rollback()
        except BaseException:  # noqa: BLE001  (whatever stopped it, the rollback is not known to be done)
            # Not known to be rolled back: the connection must not return to the pool in a transaction.
            await connection.invalidate(failure if isinstance(failure, Exception) else None)
        raise
    try:
        await transaction.commit()
    except Exception as exc:  # noqa: BLE001  (re-raised by _lost)
        await _lost(connection, driver, exc)


__all__ = ["DriverQuery", "DriverTransaction", "driver_transaction"]
