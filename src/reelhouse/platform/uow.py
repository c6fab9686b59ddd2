"""The unit of work: one database transaction, the domain events raised in it, and what waits for its end.

Services never commit. The boundary that opened the unit of work does: a request (the
``uow`` dependency), a job run, a socket step or a CLI command, each through
:class:`UnitOfWorkFactory`. A service that changes something a higher domain must react to
publishes a :class:`DomainEvent` on the unit of work; the handlers the composition root
subscribed run at once, in the same transaction, so what they write commits (or rolls back)
with its cause. Work meant for after the commit (telling other instances, clearing caches)
is queued with :meth:`UnitOfWork.after_commit` and dropped on rollback.
"""

from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reelhouse.platform.driver import DRIVER

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig

logger = logging.getLogger(__name__)


class DomainEvent:
    """Something that happened in a domain, for the domains above it to react to.

    Subclasses are frozen dataclasses declared next to the service that publishes them.
    """


EventT = TypeVar("EventT", bound=DomainEvent)


class EventBus:
    """Which handlers react to which domain event; filled once by the composition root."""

    def __init__(self) -> None:
        self._handlers: dict[type[DomainEvent], list[Callable[[UnitOfWork, Any], Awaitable[None]]]] = defaultdict(list)

    def subscribe(self, event_type: type[EventT], handler: Callable[[UnitOfWork, EventT], Awaitable[None]]) -> None:
        self._handlers[event_type].append(handler)

    def handlers_of(self, event_type: type[DomainEvent]) -> list[Callable[[UnitOfWork, Any], Awaitable[None]]]:
        return self._handlers.get(event_type, [])


class UnitOfWork:
    """A session and its transaction's bookkeeping: events published in it and deferred work."""

    def __init__(self, session: AsyncSession, events: EventBus) -> None:
        self.session = session
        self._events = events
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self._after_commit: list[Callable[[], object]] = []
        self._on_rollback: list[Callable[[], object]] = []
        self._after_end: list[Callable[[], object]] = []

    async def publish(self, event: DomainEvent) -> None:
        """Run every handler of ``event`` now, inside this transaction."""
        for handler in self._events.handlers_of(type(event)):
            await handler(self, event)

    def before_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` in this transaction just before it commits (writes gathered on the way, made
        together); an error in it rolls the transaction back like any other."""
        self._before_commit.append(action)

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run ``action`` once this unit of work has committed; never if it rolls back."""
        self._after_commit.append(action)

    def on_rollback(self, action: Callable[[], object]) -> None:
        """Run ``action`` if this unit of work rolls back (to keep, elsewhere, what it could not write)."""
        self._on_rollback.append(action)

    def after_end(self, action: Callable[[], object]) -> None:
        """Run ``action`` once this unit of work has ended, committed or not: for telling others
        about a change made outside the database (the stream store), which stands either way."""
        self._after_end.append(action)

    async def commit(self) -> None:
        while self._before_commit:
            writes, self._before_commit = self._before_commit, []
            for write in writes:
                await write()
        await self.session.commit()
        actions, self._after_commit = self._after_commit, []
        self._on_rollback.clear()
        await _run_all(actions)
        await self._ended()

    async def rollback(self) -> None:
        try:
            await self.session.rollback()
        finally:
            # Also when the rollback itself fails (the connection is gone).
            self._before_commit.clear()
            self._after_commit.clear()
            actions, self._on_rollback = self._on_rollback, []
            await _run_all(actions)
            await self._ended()

    async def _ended(self) -> None:
        actions, self._after_end = self._after_end, []
        await _run_all(actions)


async def _run_all(actions: list[Callable[[], object]]) -> None:
    for action in actions:
        try:
            result = action()
            if inspect.isawaitable(result):
                await result
        except Exception:
            # The transaction stands; a follow-up that failed must not turn it into an error.
            logger.exception("an action after the end of a unit of work failed")


@dataclass(frozen=True, slots=True)
class ShortWrite:
    """Where a short write happens: through ``uow``, either on PostgreSQL's driver outside a
    transaction (``on_the_driver``: the writer brings its own atomicity, a single statement or
    a transaction of the driver's) or in ``uow``'s transaction."""

    uow: UnitOfWork
    on_the_driver: bool


class UnitOfWorkFactory:
    """Opens units of work on the app's database: commit on success, roll back on any error."""

    def __init__(self, db_config: SQLAlchemyAsyncConfig, events: EventBus) -> None:
        self.db_config = db_config
        self.events = events
        self._session_maker = db_config.create_session_maker()
        self._reading_session_maker: async_sessionmaker[AsyncSession] | None = None

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[UnitOfWork]:
        async with self._session_maker() as session:
            uow = UnitOfWork(session, self.events)
            try:
                yield uow
            except BaseException:
                await uow.rollback()
                raise
            await uow.commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: each statement runs on its own, outside a transaction, so a
        read costs no BEGIN and no COMMIT round trip. Never write through it (nothing would undo a
        write, and writes made together would not be atomic)."""
        if self._reading_session_maker is None:
            engine = self.db_config.get_engine().execution_options(isolation_level="AUTOCOMMIT")
            self._reading_session_maker = async_sessionmaker(engine, expire_on_commit=False)
        async with self._reading_session_maker() as session:
            yield session

    @asynccontextmanager
    async def short_write(self) -> AsyncIterator[ShortWrite]:
        """Where one short write goes (a progress report). On PostgreSQL: a unit of work on a
        :meth:`read` session, outside a transaction, whose write goes straight to the driver and
        brings its own atomicity (``platform/driver.py``); its commit hooks never run. Elsewhere:
        an ordinary unit of work, committed when the block ends and rolled back on any error."""
        if self.db_config.get_engine().dialect.driver == DRIVER:
            async with self.read() as session:
                yield ShortWrite(UnitOfWork(session, self.events), on_the_driver=True)
            return
        async with self.begin() as uow:
            yield ShortWrite(uow, on_the_driver=False)

    async def provide(self) -> AsyncIterator[UnitOfWork]:
        """The request boundary, as a generator dependency: the framework throws the handler's
        error into it (rollback) and otherwise closes it before the answer is sent (commit)."""
        async with self.begin() as uow:
            yield uow
