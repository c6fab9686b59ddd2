"""Playback events older than the retention window leave the database for the archive, verified first."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from helpers import in_app_loop
from reelhouse.playback.events import PlaybackEvent, partition_ddl
from reelhouse.playback.retention import ArchiveMismatch, DirectoryArchive, archive_old_events

TODAY = date(2026, 12, 4)
#: Month -> events in it. With 6 months kept, everything before June 2026 goes.
EVENTS = {date(2026, 3, 1): 3, date(2026, 4, 1): 2, date(2026, 5, 1): 4, date(2026, 7, 1): 5}
#: Months with a partition of their own on PostgreSQL (the others land in the default partition).
OWN_PARTITIONS = [date(2026, 3, 1), date(2026, 5, 1)]


def test_months_before_the_window_are_archived_verified_and_dropped(client, backend, tmp_path: Path):
    components = client.app.state.components
    archive = DirectoryArchive(tmp_path / "archive")
    postgresql = backend == "postgres"

    async def back_date() -> None:
        async with components.units.begin() as uow:
            if postgresql:
                for month in OWN_PARTITIONS:
                    await uow.session.execute(text(partition_ddl(month)))
            for month, count in EVENTS.items():
                for index in range(count):
                    uow.session.add(
                        PlaybackEvent(
                            id=uuid.uuid4(),
                            occurred_at=datetime(month.year, month.month, 10 + index, 12, tzinfo=UTC),
                            user_id=uuid.uuid4(),
                            session_id=uuid.uuid4().hex,
                            content_id=uuid.uuid4(),
                            device_id="tv",
                            kind="started",
                            position_seconds=float(index),
                        )
                    )

    async def archive_them() -> list[str]:
        return await archive_old_events(components.units, archive, retention_months=6, today=TODAY)

    async def months_left() -> list[int]:
        async with components.units.read() as session:
            moments = await session.scalars(select(PlaybackEvent.occurred_at))
            return sorted({moment.month for moment in moments})

    async def partitions_left() -> set[str]:
        async with components.units.read() as session:
            rows = await session.execute(
                text("SELECT relname FROM pg_class WHERE relname IN (:march, :may)"),
                {"march": "playback_events_2026_03", "may": "playback_events_2026_05"},
            )
            return {row[0] for row in rows}

    in_app_loop(client, back_date)
    written = in_app_loop(client, archive_them)

    assert written == [
        "playback-events/2026-03.ndjson.gz",
        "playback-events/2026-04.ndjson.gz",
        "playback-events/2026-05.ndjson.gz",
    ]
    for name, month in zip(written, [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)], strict=True):
        lines = gzip.decompress((tmp_path / "archive" / name).read_bytes()).decode().splitlines()
        rows = [json.loads(line) for line in lines]
        assert len(rows) == EVENTS[month]
        assert all(row["occurred_at"].startswith(f"{month:%Y-%m}") for row in rows)
        assert {"id", "user_id", "session_id", "content_id", "device_id", "kind", "position_seconds"} <= set(rows[0])
    assert in_app_loop(client, months_left) == [7]
    if postgresql:
        assert in_app_loop(client, partitions_left) == set()

    # Nothing is left to archive: a second run writes nothing and keeps July.
    assert in_app_loop(client, archive_them) == []
    assert in_app_loop(client, months_left) == [7]


def test_an_archive_that_does_not_hold_every_row_drops_nothing(client, tmp_path: Path):
    components = client.app.state.components

    class LosingArchive(DirectoryArchive):
        async def get(self, name: str) -> bytes:
            return gzip.compress(b"")  # as if the copy were truncated

    async def back_date_and_archive() -> None:
        async with components.units.begin() as uow:
            uow.session.add(
                PlaybackEvent(
                    id=uuid.uuid4(),
                    occurred_at=datetime(2026, 4, 10, tzinfo=UTC),
                    user_id=uuid.uuid4(),
                    session_id="s",
                    content_id=uuid.uuid4(),
                    device_id="tv",
                    kind="started",
                    position_seconds=0.0,
                )
            )
        with pytest.raises(ArchiveMismatch, match="holds 0 rows"):
            await archive_old_events(components.units, LosingArchive(tmp_path), retention_months=6, today=TODAY)
        async with components.units.read() as session:
            assert len((await session.scalars(select(PlaybackEvent.id))).all()) == 1

    in_app_loop(client, back_date_and_archive)
