from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from advanced_alchemy.base import UUIDAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reelhouse.plans.models import AccessLevel, enum_column

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

SEARCH_INDEX_EXPRESSION = "to_tsvector('english'::regconfig, (title::text || ' '::text) || description)"

#: Which titles carry which genres.
content_genres = Table(
    "content_genres",
    UUIDAuditBase.metadata,
    Column("content_id", ForeignKey("contents.id", ondelete="CASCADE"), primary_key=True),
    Column("genre_id", ForeignKey("genres.id", ondelete="CASCADE"), primary_key=True, index=True),
)

#: The genres each user follows (for new-release mail and recommendations).
user_genres = Table(
    "user_genres",
    UUIDAuditBase.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("genre_id", ForeignKey("genres.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Genre(UUIDAuditBase):
    __tablename__ = "genres"

    slug: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))


class Content(UUIDAuditBase):
    """A title. Only published titles are visible to non-admins; ``video_url`` only ever to admins."""

    __tablename__ = "contents"
    __table_args__ = (
        CheckConstraint("duration_seconds > 0", name="duration_positive"),
        CheckConstraint(
            "credits_start_seconds IS NULL OR (credits_start_seconds > 0 AND credits_start_seconds < duration_seconds)",
            name="credits_within_duration",
        ),
        CheckConstraint("release_year BETWEEN 1888 AND 2100", name="release_year_range"),
        Index("ix_contents_published_published_at", "published", "published_at"),
        # Full-text search, PostgreSQL only (SQLite searches with LIKE). Spelled as PostgreSQL
        # prints it back, so autogenerate sees no change; the same as search_document() below.
        Index("ix_contents_search_document", text(SEARCH_INDEX_EXPRESSION), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    access_level: Mapped[AccessLevel] = mapped_column(enum_column(AccessLevel, "access_level"))
    duration_seconds: Mapped[int] = mapped_column(Integer)
    #: Where the end credits begin; reaching it completes the title even before the 90 % mark.
    credits_start_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    release_year: Mapped[int | None] = mapped_column(Integer, default=None)
    thumbnail_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    trailer_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    video_url: Mapped[str] = mapped_column(String(2048))
    published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: Set the first time the title is published and kept afterwards ("new releases" sort by it).
    published_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    #: The processed media this title plays (``media_assets``, managed by ``reelhouse.assets``); set
    #: only once that media is ready, so a title with one is playable. Several titles may share one.
    media_asset_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("media_assets.id", ondelete="SET NULL"), default=None, index=True
    )

    genres: Mapped[list[Genre]] = relationship(secondary=content_genres, lazy="raise", order_by=Genre.name)

    @property
    def playable(self) -> bool:
        """Its media is ready to stream."""
        return self.media_asset_id is not None


def search_document() -> ColumnElement[object]:
    """PostgreSQL full-text document of a title: the expression of ``ix_contents_search_document``.

    The configuration and separator are literals, not bound parameters, so the planner matches
    the index expression and searches use the index.
    """
    return func.to_tsvector(text("'english'"), Content.title + literal_column("' '") + Content.description)
