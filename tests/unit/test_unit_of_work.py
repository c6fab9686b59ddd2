"""A unit of work's hooks around its end: writes gathered on the way run inside the transaction just
before it commits (and not at all when it rolls back), follow-ups run after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from reelhouse.platform.uow import EventBus, UnitOfWork


@pytest.fixture
async def uow() -> AsyncIterator[UnitOfWork]:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        async with AsyncSession(engine) as session:
            await session.execute(text("CREATE TABLE log (line TEXT)"))
            await session.commit()
            yield UnitOfWork(session, EventBus())
    finally:
        await engine.dispose()


async def lines(uow: UnitOfWork) -> list[str]:
    return list((await uow.session.scalars(text("SELECT line FROM log ORDER BY rowid"))).all())


async def test_gathered_writes_run_in_the_transaction_before_the_commit_and_before_the_follow_ups(uow: UnitOfWork):
    seen_after_commit: list[list[str]] = []

    async def write() -> None:
        await uow.session.execute(text("INSERT INTO log VALUES ('gathered')"))

    async def follow_up() -> None:
        seen_after_commit.append(await lines(uow))

    await uow.session.execute(text("INSERT INTO log VALUES ('direct')"))
    uow.before_commit(write)
    uow.after_commit(follow_up)
    assert await lines(uow) == ["direct"]  # nothing written before the commit

    await uow.commit()

    assert seen_after_commit == [["direct", "gathered"]]


async def test_a_write_gathered_while_gathered_writes_run_is_made_too(uow: UnitOfWork):
    async def second() -> None:
        await uow.session.execute(text("INSERT INTO log VALUES ('second')"))

    async def first() -> None:
        await uow.session.execute(text("INSERT INTO log VALUES ('first')"))
        uow.before_commit(second)

    uow.before_commit(first)
    await uow.commit()

    assert await lines(uow) == ["first", "second"]


async def test_a_rolled_back_unit_of_work_makes_no_gathered_write(uow: UnitOfWork):
    written: list[str] = []

    async def write() -> None:
        written.append("gathered")

    uow.before_commit(write)
    await uow.rollback()
    await uow.commit()  # a later commit of the same session: the dropped write stays dropped

    assert written == []
