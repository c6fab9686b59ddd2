"""playback event log, range-partitioned by month on PostgreSQL

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 22:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from reelhouse.playback.events import PARTITION_MONTHS_AHEAD, month_start, partition_ddl

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE TABLE playback_events (
                id uuid NOT NULL,
                occurred_at timestamptz NOT NULL,
                user_id uuid NOT NULL,
                session_id varchar(64) NOT NULL,
                content_id uuid NOT NULL,
                device_id varchar(200) NOT NULL,
                kind varchar(32) NOT NULL,
                position_seconds double precision NOT NULL,
                CONSTRAINT pk_playback_events PRIMARY KEY (id, occurred_at)
            ) PARTITION BY RANGE (occurred_at)
            """
        )
        op.execute("CREATE TABLE playback_events_default PARTITION OF playback_events DEFAULT")
        today = datetime.now(UTC).date()
        for ahead in range(PARTITION_MONTHS_AHEAD + 1):
            op.execute(partition_ddl(month_start(today, ahead)))
    else:
        op.create_table(
            "playback_events",
            sa.Column("id", GUID(length=16), nullable=False),
            sa.Column("occurred_at", DateTimeUTC(timezone=True), nullable=False),
            sa.Column("user_id", GUID(length=16), nullable=False),
            sa.Column("session_id", sa.String(length=64), nullable=False),
            sa.Column("content_id", GUID(length=16), nullable=False),
            sa.Column("device_id", sa.String(length=200), nullable=False),
            sa.Column("kind", sa.String(length=32), nullable=False),
            sa.Column("position_seconds", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id", "occurred_at", name="pk_playback_events"),
        )
    op.create_index("ix_playback_events_user_occurred", "playback_events", ["user_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_playback_events_user_occurred", table_name="playback_events")
    op.drop_table("playback_events")
