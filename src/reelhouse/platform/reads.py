"""Hot reads on PostgreSQL's driver, beneath a read session.

For a short query SQLAlchemy's execution and result layers cost about twice the CPU of the
driver itself (parameter and result processing, the execution context, events). A
:class:`DriverQuery` is a Core statement compiled once for asyncpg and run on the asyncpg
connection under a session, returning the driver's own rows; on any other database (the
embedded SQLite) it runs through the session as usual. Rows are read by position either way.

Use it only on a read session (:meth:`UnitOfWorkFactory.read`, outside a transaction): the
driver does not take part in a session's transaction, which SQLAlchemy begins lazily with its
own first statement. Every parameter must be a named ``bindparam`` given at call time (no
constants, no expanding ``IN``): that is checked once, when the statement is first compiled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Dialect
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.sql import Select

#: The driver the statements are run on directly.
DRIVER = "asyncpg"


class DriverQuery:
    """A read statement run straight on the PostgreSQL driver when there is one."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: tuple[str, tuple[str, ...]] | None = None

    def _sql(self, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        """The statement's SQL for ``dialect`` and its parameters' names in positional order."""
        if self._compiled is None:
            compiled = self.statement.compile(dialect=dialect)
            constants = sorted(name for name, value in compiled.params.items() if value is not None)
            if constants or "POSTCOMPILE" in compiled.string:
                raise ValueError(f"a driver query takes only named parameters given at call time: {constants}")
            self._compiled = (compiled.string, tuple(compiled.positiontup or ()))
        return self._compiled

    async def rows(self, session: AsyncSession, parameters: Mapping[str, object]) -> Sequence[Sequence[Any]]:
        connection = await session.connection()
        if connection.dialect.driver != DRIVER:
            return (await connection.execute(self.statement, dict(parameters))).all()
        sql, names = self._sql(connection.dialect)
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None  # a checked-out connection always has one
        try:
            rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *(parameters[name] for name in names))
        except Exception as exc:
            if isinstance(exc, asyncpg.PostgresError) and not driver.is_closed():
                raise  # the server refused the statement: the connection itself is fine
            # Anything else leaves the connection unusable (lost, terminated, out of step), and
            # SQLAlchemy did not see it fail: its pool must not hand this connection out again.
            await connection.invalidate(exc)
            raise ConnectionError(f"the database connection was lost ({type(exc).__name__})") from exc
        return rows


__all__ = ["DriverQuery"]
