from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDAuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reelhouse.plans.models import Plan, enum_column


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class SubscriptionEventKind(enum.StrEnum):
    SUBSCRIBED = "subscribed"
    CANCELLED = "cancelled"
    RENEWED = "renewed"
    PLAN_CHANGED = "plan_changed"
    EXPIRED = "expired"


class Subscription(UUIDAuditBase):
    """One subscription; its period moves with renewals and its plan with plan changes.

    ``active`` and ``cancelled`` both mean "in its paid period" (a cancelled one just
    will not renew). At most one such row per user, enforced by a partial unique index.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        Index(
            "uq_subscriptions_one_current_per_user",
            "user_id",
            unique=True,
            postgresql_where=text("status <> 'expired'"),
            sqlite_where=text("status <> 'expired'"),
        ),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[UUID] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"), index=True)
    status: Mapped[SubscriptionStatus] = mapped_column(enum_column(SubscriptionStatus, "subscription_status"))
    start_date: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    end_date: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    plan: Mapped[Plan] = relationship(lazy="raise")
    events: Mapped[list[SubscriptionEvent]] = relationship(
        lazy="raise", order_by="SubscriptionEvent.created_at", cascade="all, delete-orphan", passive_deletes=True
    )


class SubscriptionEvent(UUIDAuditBase):
    """Every change to a subscription, kept for its history."""

    __tablename__ = "subscription_events"

    subscription_id: Mapped[UUID] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[SubscriptionEventKind] = mapped_column(enum_column(SubscriptionEventKind, "subscription_event_kind"))
    plan_id: Mapped[UUID] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"))
    previous_plan_id: Mapped[UUID | None] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"), default=None)
    period_start: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class IdempotencyRecord(UUIDAuditBase):
    """The first answer to a request sent with an ``Idempotency-Key``, replayed for repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "scope", "key"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JsonB)
