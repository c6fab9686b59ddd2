"""The playback event log: started, stopped and every way a stream ended, with device and position.

On PostgreSQL the table is range-partitioned by month (``occurred_at``); a job keeps
the coming months' partitions created ahead, and a default partition catches
anything outside them so no event is ever refused. Old partitions can be detached,
archived and dropped without touching the rest.
"""

from __future__ import annotations

import enum
import logging
import uuid
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, cast

from advanced_alchemy.base import UUIDBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Float, Index, String, insert, select, text
from sqlalchemy.orm import Mapped, mapped_column

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory
    from reelhouse.playback.streams import StreamSession

logger = logging.getLogger(__name__)

PARTITION_MONTHS_AHEAD = 3
#: Any fixed 64-bit number; names the advisory lock that makes instances create partitions in turn.
PARTITION_LOCK_KEY = 0x5EE1_E7E17


class PlaybackEventKind(enum.StrEnum):
    STARTED = "started"
    STOPPED = "stopped"
    STREAM_LIMIT = "stream_limit"
    REPLACED = "replaced"
    EXPIRED = "expired"
    ADMIN = "admin"
    SUBSCRIPTION_ENDED = "subscription_ended"
    SIGNED_OUT = "signed_out"


class PlaybackEvent(UUIDBase):
    __tablename__ = "playback_events"
    __table_args__ = (Index("ix_playback_events_user_occurred", "user_id", "occurred_at"),)
    _sentinel = None  # type: ignore[assignment]  # the table (migration 0004) has no sa_orm_sentinel column

    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column()
    session_id: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[uuid.UUID] = mapped_column()
    device_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    position_seconds: Mapped[float] = mapped_column(Float)


#: Built once: events are a plain insert, without the ORM's unit-of-work flush (which cost more
#: than the rest of a stream's admission together).
_INSERT_EVENTS = insert(cast("Table", PlaybackEvent.__table__))


class PlaybackLog:
    """The events one unit of work appends to the log, inserted together just before it commits:
    one statement however many streams it started and ended, and durable with what it changed
    (the log is what a stream the session store lost is re-admitted on)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._rows: list[dict[str, object]] = []

    def record(self, stream: StreamSession, kind: PlaybackEventKind) -> None:
        if not self._rows:
            self._uow.before_commit(self._write)
        self._rows.append(
            {
                "id": uuid.uuid4(),
                "occurred_at": datetime.now(UTC),
                "user_id": uuid.UUID(stream.user_id),
                "session_id": stream.session_id,
                "content_id": uuid.UUID(stream.content_id),
                "device_id": stream.device_id,
                "kind": kind.value,
                "position_seconds": stream.position,
            }
        )

    async def _write(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            await self._uow.session.execute(_INSERT_EVENTS, rows)


#: Event kinds that end a stream.
ENDING_KINDS = frozenset(kind.value for kind in PlaybackEventKind if kind not in (PlaybackEventKind.STARTED,))


async def stream_never_ended(session: AsyncSession, user_id: uuid.UUID, session_id: str) -> bool:
    """Whether the log shows the stream started and nothing ended it (the durable record, for a
    stream the session store lost). By user first: the log's index."""
    kinds = set(
        await session.scalars(
            select(PlaybackEvent.kind).where(PlaybackEvent.user_id == user_id, PlaybackEvent.session_id == session_id)
        )
    )
    return PlaybackEventKind.STARTED.value in kinds and not kinds & ENDING_KINDS


def month_start(day: date, months_ahead: int = 0) -> date:
    index = day.year * 12 + (day.month - 1) + months_ahead
    return date(index // 12, index % 12 + 1, 1)


def partition_ddl(month: date) -> str:
    start, end = month_start(month), month_start(month, 1)
    # Explicit UTC bounds: a bare date would be midnight in the session's time zone.
    return (
        f"CREATE TABLE IF NOT EXISTS playback_events_{start:%Y_%m} PARTITION OF playback_events "
        f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
    )


async def ensure_event_partitions(units: UnitOfWorkFactory, today: date | None = None) -> list[str]:
    """Create this month's and the next months' partitions (PostgreSQL only); returns their names."""
    if units.db_config.get_engine().dialect.name != "postgresql":
        return []
    today = today or datetime.now(UTC).date()
    created: list[str] = []
    async with units.begin() as uow:
        session = uow.session
        # CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin: instances take turns.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK_KEY})
        for ahead in range(PARTITION_MONTHS_AHEAD + 1):
            month = month_start(today, ahead)
            await session.execute(text(partition_ddl(month)))
            created.append(f"playback_events_{month:%Y_%m}")
    return created
