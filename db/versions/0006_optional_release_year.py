"""optional release year: the seed API never sent one

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.alter_column("release_year", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # Titles without a year get the earliest one allowed rather than being lost.
    op.execute("UPDATE contents SET release_year = 1888 WHERE release_year IS NULL")
    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.alter_column("release_year", existing_type=sa.Integer(), nullable=False)
