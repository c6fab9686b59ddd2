"""The playback event log: what streams did, and (on PostgreSQL) its monthly partitions.

Rows are read straight from ``playback_events``; partitions from the catalog
(``pg_partitioned_table``, ``pg_inherits``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg
import pytest
from catalog_helpers import create_title, database, new_admin
from sqlalchemy import select
from test_playback import create_plan, expect_termination, heartbeat, started, subscriber, ws_path

from conftest import build_settings
from reelhouse.config import Settings
from reelhouse.platform.db import build_sqlalchemy_config
from reelhouse.platform.uow import EventBus, UnitOfWorkFactory
from reelhouse.playback.events import PARTITION_MONTHS_AHEAD, PlaybackEvent, ensure_event_partitions, month_start

PARTITIONS_OF = """
SELECT child.relname, pg_get_expr(child.relpartbound, child.oid) AS bound
FROM pg_inherits
JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class child ON child.oid = pg_inherits.inhrelid
WHERE parent.relname = 'playback_events'
"""


async def events_of(client, user_id: uuid.UUID) -> list[PlaybackEvent]:
    async with database(client) as session:
        rows = await session.scalars(
            select(PlaybackEvent).where(PlaybackEvent.user_id == user_id).order_by(PlaybackEvent.occurred_at)
        )
        return list(rows)


async def test_start_eviction_replacement_and_stop_are_logged_with_device_and_position(client):
    admin = await new_admin(client)
    film = await create_title(client, admin, title="Logged Film")
    short = await create_title(client, admin, title="Logged Short")
    plan = await create_plan(client, admin, max_devices=1)
    viewer = await subscriber(client, plan)

    tv = await started(client, viewer, film["id"], "tv")
    with await client.websocket_connect(ws_path(tv)) as ws:
        assert heartbeat(ws, 300.5)["type"] == "ack"
        phone = await started(client, viewer, film["id"], "phone")
        expect_termination(ws, "stream_limit", 4001)
    with await client.websocket_connect(ws_path(phone)) as ws:
        assert heartbeat(ws, 30.0)["type"] == "ack"
        next_title = await started(client, viewer, short["id"], "phone")
        expect_termination(ws, "replaced", 4007)
    with await client.websocket_connect(ws_path(next_title)) as ws:
        ws.send_json({"type": "stop", "position_seconds": 42.0})
        expect_termination(ws, "stopped", 4006)

    events = await events_of(client, viewer.id)
    logged = [(e.kind, e.session_id, e.device_id, e.content_id, e.position_seconds) for e in events]
    film_id, short_id = uuid.UUID(film["id"]), uuid.UUID(short["id"])
    assert logged == [
        ("started", tv["session_id"], "tv", film_id, 0.0),
        ("stream_limit", tv["session_id"], "tv", film_id, 300.5),
        ("started", phone["session_id"], "phone", film_id, float(phone["resume_position_seconds"])),
        ("replaced", phone["session_id"], "phone", film_id, 30.0),
        ("started", next_title["session_id"], "phone", short_id, 0.0),
        ("stopped", next_title["session_id"], "phone", short_id, 42.0),
    ]
    assert {e.user_id for e in events} == {viewer.id}
    assert all(e.occurred_at.tzinfo is not None for e in events)


# --- PostgreSQL: monthly range partitions ----------------------------------------------------


@dataclass
class Instance:
    """What ``ensure_event_partitions`` needs of an app: units of work on its database."""

    settings: Settings

    def __post_init__(self) -> None:
        self.db_config = build_sqlalchemy_config(self.settings)
        self.units = UnitOfWorkFactory(self.db_config, EventBus())


@pytest.fixture
async def postgres(postgres_url: str) -> AsyncIterator[Instance]:
    app = Instance(build_settings(DATABASE_URL=postgres_url))
    try:
        yield app
    finally:
        await app.db_config.get_engine().dispose()


async def catalog(postgres_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(postgres_url, server_settings={"timezone": "UTC"})
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def partitions(postgres_url: str) -> dict[str, str]:
    return {row["relname"]: row["bound"] for row in await catalog(postgres_url, PARTITIONS_OF)}


def names_from(today: date) -> list[str]:
    return [f"playback_events_{month_start(today, ahead):%Y_%m}" for ahead in range(PARTITION_MONTHS_AHEAD + 1)]


async def test_the_table_is_range_partitioned_by_month_with_a_default(postgres_url: str):
    strategy = await catalog(
        postgres_url,
        "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'playback_events'::regclass",
    )
    assert [row["partstrat"] for row in strategy] == [b"r"]  # range
    existing = await partitions(postgres_url)
    assert existing["playback_events_default"] == "DEFAULT"
    assert set(names_from(datetime.now(UTC).date())) <= set(existing)


async def test_partitions_are_created_ahead_idempotently_with_utc_month_bounds(postgres, postgres_url: str):
    year = datetime.now(UTC).year + 1
    today = date(year, 11, 17)
    # This month and the next three, across the new year.
    expected = [f"playback_events_{y}_{m:02}" for y, m in ((year, 11), (year, 12), (year + 1, 1), (year + 1, 2))]

    first = await ensure_event_partitions(postgres.units, today)
    second = await ensure_event_partitions(postgres.units, today)
    assert first == second == expected

    existing = await partitions(postgres_url)
    for ahead, name in enumerate(expected):
        start, end = month_start(today, ahead), month_start(today, ahead + 1)
        assert existing[name] == f"FOR VALUES FROM ('{start} 00:00:00+00') TO ('{end} 00:00:00+00')"


async def test_bounds_are_utc_whatever_the_session_time_zone(postgres, postgres_url: str):
    """A bare date in the DDL would mean midnight in the connection's time zone."""
    today = date(datetime.now(UTC).year + 3, 6, 1)
    name = postgres_url.rsplit("/", 1)[1]
    await catalog(postgres_url, f"ALTER DATABASE \"{name}\" SET timezone TO 'Pacific/Kiritimati'")
    try:
        await postgres.db_config.get_engine().dispose()  # new connections take the database's time zone
        created = await ensure_event_partitions(postgres.units, today)
    finally:
        await catalog(postgres_url, f'ALTER DATABASE "{name}" RESET timezone')
        await postgres.db_config.get_engine().dispose()
    assert (await partitions(postgres_url))[created[0]] == (
        f"FOR VALUES FROM ('{today} 00:00:00+00') TO ('{month_start(today, 1)} 00:00:00+00')"
    )


async def test_instances_creating_the_same_partitions_at_once_all_succeed(postgres_url: str):
    """Every instance runs the job; CREATE TABLE IF NOT EXISTS alone fails for all but one."""
    today = date(datetime.now(UTC).year + 5, 1, 1)
    settings = build_settings(DATABASE_URL=postgres_url)
    instances = [Instance(settings) for _ in range(4)]
    try:
        results = await asyncio.gather(*(ensure_event_partitions(app.units, today) for app in instances))
    finally:
        for app in instances:
            await app.db_config.get_engine().dispose()
    assert results == [names_from(today)] * len(instances)


async def test_events_land_in_their_months_partition(postgres, postgres_url: str):
    future = date(datetime.now(UTC).year + 1, 11, 17)
    await ensure_event_partitions(postgres.units, future)
    moments = {
        "now": datetime.now(UTC),
        "future": datetime(future.year, future.month, 30, 23, 59, tzinfo=UTC),
        "beyond": datetime(future.year + 40, 1, 1, tzinfo=UTC),
    }
    ids = {label: uuid.uuid4() for label in moments}
    async with postgres.db_config.get_session() as session:
        for label, moment in moments.items():
            session.add(
                PlaybackEvent(
                    id=ids[label],
                    occurred_at=moment,
                    user_id=uuid.uuid4(),
                    session_id=str(uuid.uuid4()),
                    content_id=uuid.uuid4(),
                    device_id="probe",
                    kind="started",
                    position_seconds=0.0,
                )
            )
        await session.commit()
    rows = await catalog(
        postgres_url,
        "SELECT id, tableoid::regclass::text AS partition FROM playback_events WHERE id = ANY($1::uuid[])",
        list(ids.values()),
    )
    where = {row["id"]: row["partition"] for row in rows}
    assert where[ids["now"]] == f"playback_events_{datetime.now(UTC):%Y_%m}"
    assert where[ids["future"]] == f"playback_events_{future:%Y_%m}"
    assert where[ids["beyond"]] == "playback_events_default"


async def test_sqlite_has_no_partitions_to_create(sqlite_var_dir):
    embedded = Instance(build_settings(VAR_DIR=str(sqlite_var_dir)))
    try:
        assert await ensure_event_partitions(embedded.units, date(2030, 1, 1)) == []
    finally:
        await embedded.db_config.get_engine().dispose()
