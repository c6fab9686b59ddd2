"""media assets, media jobs and uploads; titles point at their asset

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 10:55:21.092321
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op
from sqlalchemy.dialects import postgresql

sa.GUID = GUID  # type: ignore[attr-defined]
sa.DateTimeUTC = DateTimeUTC  # type: ignore[attr-defined]
sa.JsonB = JsonB  # type: ignore[attr-defined]

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_assets",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column(
            "renditions", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_assets")),
    )
    op.create_table(
        "media_jobs",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("content_id", sa.GUID(length=16), nullable=False),
        sa.Column(
            "source_kind",
            sa.Enum("upload", "url", name="media_source_kind", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=2048), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "processing",
                "succeeded",
                "failed",
                "superseded",
                name="media_job_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("progress_percent", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("asset_id", sa.GUID(length=16), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["media_assets.id"], name=op.f("fk_media_jobs_asset_id_media_assets"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["contents.id"], name=op.f("fk_media_jobs_content_id_contents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_jobs")),
    )
    with op.batch_alter_table("media_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_media_jobs_content_id_created_at", ["content_id", "created_at"], unique=False)
        batch_op.create_index("ix_media_jobs_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "media_uploads",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("content_id", sa.GUID(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("created_by", sa.GUID(length=16), nullable=True),
        sa.Column("completed_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"], ["contents.id"], name=op.f("fk_media_uploads_content_id_contents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_media_uploads_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_uploads")),
    )
    with op.batch_alter_table("media_uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_uploads_content_id"), ["content_id"], unique=False)

    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media_asset_id", sa.GUID(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_contents_media_asset_id"), ["media_asset_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_contents_media_asset_id_media_assets"),
            "media_assets",
            ["media_asset_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_contents_media_asset_id_media_assets"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_contents_media_asset_id"))
        batch_op.drop_column("media_asset_id")

    with op.batch_alter_table("media_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_uploads_content_id"))
    op.drop_table("media_uploads")
    with op.batch_alter_table("media_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_media_jobs_status_next_attempt_at")
        batch_op.drop_index("ix_media_jobs_content_id_created_at")
    op.drop_table("media_jobs")
    op.drop_table("media_assets")
