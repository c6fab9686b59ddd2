"""The outbox (``notifications``), per-user mail preferences, and the new-release ledger."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDAuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, Column, Enum, ForeignKey, Index, Integer, String, Table, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from reelhouse.plans.models import enum_column


class NotificationKind(enum.StrEnum):
    """What a mail is about; each kind can be turned off by its recipient."""

    SUBSCRIPTION_REMINDER = "subscription_reminder"
    NEW_RELEASES = "new_releases"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    #: Claimed by a dispatcher until ``claimed_until``; claimable again after that (a crashed worker).
    SENDING = "sending"
    SENT = "sent"
    #: Gave up after the configured attempts; kept for administrators, who may requeue it.
    FAILED = "failed"
    #: Not sent because it no longer applied when its turn came (opted out, subscription renewed).
    SKIPPED = "skipped"


class Notification(UUIDAuditBase):
    """One mail in the outbox, written in the same transaction as the change that causes it."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),)

    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[NotificationKind] = mapped_column(
        Enum(
            NotificationKind,
            name="notification_kind",
            native_enum=False,
            create_constraint=True,
            length=32,
            values_callable=lambda members: [member.value for member in members],
        )
    )
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    #: Rendered at send time from these (see templates.py), so a digest can grow until it goes out.
    template: Mapped[str] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(JsonB)
    #: At most one row per key, ever: a reminder per subscription period and offset, a digest per row.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    #: Set while a digest still takes more items (one open digest per user and kind); cleared when claimed.
    open_digest_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    status: Mapped[NotificationStatus] = mapped_column(
        enum_column(NotificationStatus, "notification_status"), default=NotificationStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    #: Which claim owns the row; a dispatcher whose lease ran out cannot record its result.
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class NotificationPreference(UUIDAuditBase):
    """A user's choices; no row means every kind of mail is on."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    subscription_reminders: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    new_releases: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


#: Who has been told (or is about to be told) about which title: one new-release mail per user and title.
release_notices = Table(
    "release_notices",
    UUIDAuditBase.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("content_id", ForeignKey("contents.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("created_at", DateTimeUTC(timezone=True), nullable=False),
)
