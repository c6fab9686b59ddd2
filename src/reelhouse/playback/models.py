from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import UUIDAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reelhouse.catalog.models import Content
from reelhouse.plans.models import enum_column


class WatchStatus(enum.StrEnum):
    STARTED = "started"
    PAUSED = "paused"
    COMPLETED = "completed"


class WatchHistory(UUIDAuditBase):
    """One user's viewing of one title. Its numbers are derived by ``playback.history.apply_progress``."""

    __tablename__ = "watch_history"
    __table_args__ = (
        UniqueConstraint("user_id", "content_id"),
        # "Recently watched" and "Continue watching" read a user's rows newest first.
        Index("ix_watch_history_user_id_last_watched_at", "user_id", "last_watched_at"),
        # Trending counts the viewers of the last days.
        Index("ix_watch_history_last_watched_at_content_id", "last_watched_at", "content_id"),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    content_id: Mapped[UUID] = mapped_column(ForeignKey("contents.id", ondelete="CASCADE"), index=True)
    #: The last position reported, in whole seconds, within [0, total_seconds].
    watched_seconds: Mapped[int] = mapped_column(Integer)
    #: The title's duration when the position was reported.
    total_seconds: Mapped[int] = mapped_column(Integer)
    progress_percent: Mapped[float] = mapped_column(Float)
    #: Where playback resumes; 0 means "from the start" (too little watched, too short, or finished).
    resume_position_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    status: Mapped[WatchStatus] = mapped_column(enum_column(WatchStatus, "watch_status"))
    #: How many times the title was watched to the end.
    play_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_watched_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    #: Removed from the user's lists (DELETE); a later report brings it back.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    content: Mapped[Content] = relationship(lazy="raise")
