"""Retention of the playback event log: months older than ``PLAYBACK_EVENTS_RETENTION_MONTHS``
leave the database for the archive.

Each old month is exported as gzip-compressed newline-delimited JSON
(``playback-events/YYYY-MM.ndjson.gz``), the archived copy is read back and its rows
counted, and only when the count matches the database's are the rows dropped: on
PostgreSQL the month's partition is detached and dropped (rows that landed in the default
partition are deleted), on the embedded database the month's rows are deleted. A run that
stops half-way leaves the rows in place and writes the same archive object again next time.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread
import msgspec
from sqlalchemy import delete, func, select, text, tuple_

from reelhouse.playback.events import PlaybackEvent, month_start

if TYPE_CHECKING:
    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger(__name__)

#: Any fixed 64-bit number; names the advisory lock that lets one instance archive at a time.
RETENTION_LOCK_KEY = 0x5EE1_A7C41
#: Rows read from the database per round trip while exporting.
EXPORT_CHUNK_ROWS = 5_000
ARCHIVE_PREFIX = "playback-events"


class EventArchive(Protocol):
    """Where archived months go: a prefix of the media store (``archive/``)."""

    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str) -> bytes: ...


class DirectoryArchive:
    """The archive on the local filesystem (``<MEDIA_DIR>/archive``): written whole, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, name: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._put, name, data)

    async def get(self, name: str) -> bytes:
        return await anyio.to_thread.run_sync((self.root / name).read_bytes)

    def _put(self, name: str, data: bytes) -> None:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            Path(partial).replace(target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise


class ArchivedEvent(msgspec.Struct):
    id: str
    occurred_at: str
    user_id: str
    session_id: str
    content_id: str
    device_id: str
    kind: str
    position_seconds: float


_encoder = msgspec.json.Encoder()


def archive_name(month: date) -> str:
    return f"{ARCHIVE_PREFIX}/{month:%Y-%m}.ndjson.gz"


class ArchiveMismatch(RuntimeError):
    """The archived copy does not hold every row of the month: nothing was dropped."""


async def archive_old_events(
    units: UnitOfWorkFactory, archive: EventArchive, *, retention_months: int, today: date | None = None
) -> list[str]:
    """Archive and drop every month before the retention window; returns the archive names written."""
    today = today or datetime.now(UTC).date()
    cutoff = month_start(today, -retention_months)
    written: list[str] = []
    async with units.begin() as uow:
        postgresql = uow.session.get_bind().dialect.name == "postgresql"
        if postgresql and not await uow.session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RETENTION_LOCK_KEY}
        ):
            return written  # another instance is archiving
        oldest = await uow.session.scalar(
            select(func.min(PlaybackEvent.occurred_at)).where(PlaybackEvent.occurred_at < _moment(cutoff))
        )
        if oldest is None:
            return written
        month = month_start(oldest.astimezone(UTC).date())
        while month < cutoff:
            if await _archive_month(uow, archive, month, postgresql=postgresql):
                written.append(archive_name(month))
            month = month_start(month, 1)
    return written


async def _archive_month(uow: UnitOfWork, archive: EventArchive, month: date, *, postgresql: bool) -> bool:
    start, end = _moment(month), _moment(month_start(month, 1))
    in_month = (PlaybackEvent.occurred_at >= start, PlaybackEvent.occurred_at < end)
    session = uow.session
    count = await session.scalar(select(func.count()).select_from(PlaybackEvent).where(*in_month)) or 0
    if count == 0:
        await _drop_month(uow, month, postgresql=postgresql)
        return False
    buffer = bytearray()
    statement = select(PlaybackEvent).where(*in_month).order_by(PlaybackEvent.occurred_at, PlaybackEvent.id)
    after: tuple[datetime, uuid.UUID] | None = None
    while True:  # in chunks, by key (no cursor stays open on the partition about to be dropped)
        page = (
            statement if after is None else statement.where(tuple_(PlaybackEvent.occurred_at, PlaybackEvent.id) > after)
        )
        events = (await session.scalars(page.limit(EXPORT_CHUNK_ROWS))).all()
        for event in events:
            buffer += _encoder.encode(_archived(event)) + b"\n"
        if len(events) < EXPORT_CHUNK_ROWS:
            break
        after = (events[-1].occurred_at, events[-1].id)
    name = archive_name(month)
    await archive.put(name, await anyio.to_thread.run_sync(gzip.compress, bytes(buffer)))
    archived_rows = (await anyio.to_thread.run_sync(gzip.decompress, await archive.get(name))).count(b"\n")
    if archived_rows != count:
        raise ArchiveMismatch(f"{name} holds {archived_rows} rows, the database {count}")
    await _drop_month(uow, month, postgresql=postgresql)
    logger.info("archived %d playback events of %s to %s", count, f"{month:%Y-%m}", name)
    return True


async def _drop_month(uow: UnitOfWork, month: date, *, postgresql: bool) -> None:
    """The month's own partition goes whole (PostgreSQL); rows elsewhere (the default partition,
    or the embedded database's table) are deleted by range."""
    if postgresql:
        name = f"playback_events_{month:%Y_%m}"
        if await uow.session.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name}):
            await uow.session.execute(text(f"ALTER TABLE playback_events DETACH PARTITION {name}"))
            await uow.session.execute(text(f"DROP TABLE {name}"))
    start, end = _moment(month), _moment(month_start(month, 1))
    await uow.session.execute(
        delete(PlaybackEvent).where(PlaybackEvent.occurred_at >= start, PlaybackEvent.occurred_at < end)
    )


def _archived(event: PlaybackEvent) -> ArchivedEvent:
    return ArchivedEvent(
        id=str(event.id),
        occurred_at=event.occurred_at.astimezone(UTC).isoformat(),
        user_id=str(event.user_id),
        session_id=event.session_id,
        content_id=str(event.content_id),
        device_id=event.device_id,
        kind=event.kind,
        position_seconds=event.position_seconds,
    )


def _moment(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
