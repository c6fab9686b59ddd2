"""replaced media is retired, kept for the streams that started on it, then discarded

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media_assets") as batch:
        batch.add_column(sa.Column("retired_at", DateTimeUTC(timezone=True), nullable=True))
        batch.create_index("ix_media_assets_retired_at", ["retired_at"])


def downgrade() -> None:
    with op.batch_alter_table("media_assets") as batch:
        batch.drop_index("ix_media_assets_retired_at")
        batch.drop_column("retired_at")
