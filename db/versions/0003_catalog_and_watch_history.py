"""catalog and watch history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 21:43:15.438704
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

sa.GUID = GUID  # type: ignore[attr-defined]
sa.DateTimeUTC = DateTimeUTC  # type: ignore[attr-defined]
sa.JsonB = JsonB  # type: ignore[attr-defined]

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "contents",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "access_level",
            sa.Enum(
                "free", "basic", "premium", name="access_level", native_enum=False, create_constraint=True, length=16
            ),
            nullable=False,
        ),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("credits_start_seconds", sa.Integer(), nullable=True),
        sa.Column("release_year", sa.Integer(), nullable=False),
        sa.Column("thumbnail_url", sa.String(length=2048), nullable=True),
        sa.Column("trailer_url", sa.String(length=2048), nullable=True),
        sa.Column("video_url", sa.String(length=2048), nullable=False),
        sa.Column("published", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("published_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "credits_start_seconds IS NULL OR (credits_start_seconds > 0 AND credits_start_seconds < duration_seconds)",
            name=op.f("ck_contents_credits_within_duration"),
        ),
        sa.CheckConstraint("duration_seconds > 0", name=op.f("ck_contents_duration_positive")),
        sa.CheckConstraint("release_year BETWEEN 1888 AND 2100", name=op.f("ck_contents_release_year_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contents")),
    )
    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.create_index("ix_contents_published_published_at", ["published", "published_at"], unique=False)
    if _is_postgresql():
        # Full-text search; the same expression as reelhouse.catalog.models.search_document().
        op.create_index(
            "ix_contents_search_document",
            "contents",
            [sa.literal_column("to_tsvector('english', title || ' ' || description)")],
            unique=False,
            postgresql_using="gin",
        )

    op.create_table(
        "genres",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("slug", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genres")),
        sa.UniqueConstraint("slug", name=op.f("uq_genres_slug")),
    )
    op.create_table(
        "content_genres",
        sa.Column("content_id", sa.GUID(length=16), nullable=False),
        sa.Column("genre_id", sa.GUID(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"], ["contents.id"], name=op.f("fk_content_genres_content_id_contents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["genre_id"], ["genres.id"], name=op.f("fk_content_genres_genre_id_genres"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("content_id", "genre_id", name=op.f("pk_content_genres")),
    )
    with op.batch_alter_table("content_genres", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_content_genres_genre_id"), ["genre_id"], unique=False)

    op.create_table(
        "user_genres",
        sa.Column("user_id", sa.GUID(length=16), nullable=False),
        sa.Column("genre_id", sa.GUID(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["genre_id"], ["genres.id"], name=op.f("fk_user_genres_genre_id_genres"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_genres_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "genre_id", name=op.f("pk_user_genres")),
    )
    with op.batch_alter_table("user_genres", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_genres_genre_id"), ["genre_id"], unique=False)

    op.create_table(
        "watch_history",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("user_id", sa.GUID(length=16), nullable=False),
        sa.Column("content_id", sa.GUID(length=16), nullable=False),
        sa.Column("watched_seconds", sa.Integer(), nullable=False),
        sa.Column("total_seconds", sa.Integer(), nullable=False),
        sa.Column("progress_percent", sa.Float(), nullable=False),
        sa.Column("resume_position_seconds", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "started",
                "paused",
                "completed",
                name="watch_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("play_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("completed_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("last_watched_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("hidden", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"], ["contents.id"], name=op.f("fk_watch_history_content_id_contents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_watch_history_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_history")),
        sa.UniqueConstraint("user_id", "content_id", name=op.f("uq_watch_history_user_id")),
    )
    with op.batch_alter_table("watch_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watch_history_content_id"), ["content_id"], unique=False)
        batch_op.create_index(
            "ix_watch_history_last_watched_at_content_id", ["last_watched_at", "content_id"], unique=False
        )
        batch_op.create_index("ix_watch_history_user_id_last_watched_at", ["user_id", "last_watched_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("watch_history", schema=None) as batch_op:
        batch_op.drop_index("ix_watch_history_user_id_last_watched_at")
        batch_op.drop_index("ix_watch_history_last_watched_at_content_id")
        batch_op.drop_index(batch_op.f("ix_watch_history_content_id"))

    op.drop_table("watch_history")
    with op.batch_alter_table("user_genres", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_genres_genre_id"))

    op.drop_table("user_genres")
    with op.batch_alter_table("content_genres", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_genres_genre_id"))

    op.drop_table("content_genres")
    op.drop_table("genres")
    if _is_postgresql():
        op.drop_index("ix_contents_search_document", table_name="contents", postgresql_using="gin")
    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.drop_index("ix_contents_published_published_at")

    op.drop_table("contents")
