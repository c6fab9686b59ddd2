from __future__ import annotations

import enum

from advanced_alchemy.base import UUIDAuditBase
from sqlalchemy import Boolean, CheckConstraint, Enum, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from reelhouse.plans.resolutions import Resolution


class AccessLevel(enum.StrEnum):
    FREE = "free"
    BASIC = "basic"
    PREMIUM = "premium"

    @property
    def rank(self) -> int:
        return _ACCESS_RANKS[self]


#: Lowest first (a heartbeat compares ranks, so they are looked up, not recounted).
_ACCESS_RANKS = {level: rank for rank, level in enumerate(AccessLevel)}


class StreamLimitPolicy(enum.StrEnum):
    EVICT_OLDEST = "evict_oldest"
    REJECT_NEW = "reject_new"


def enum_column(enum_type: type[enum.StrEnum], name: str) -> Enum:
    """Enums stored as their string values with a CHECK constraint (portable to SQLite)."""
    return Enum(
        enum_type,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class Plan(UUIDAuditBase):
    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("validity_days BETWEEN 1 AND 3650", name="validity_days_range"),
        CheckConstraint("max_devices_allowed BETWEEN 1 AND 10", name="max_devices_range"),
    )

    name: Mapped[str] = mapped_column(String(100), unique=True)
    price: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    validity_days: Mapped[int] = mapped_column(Integer)
    access_level: Mapped[AccessLevel] = mapped_column(enum_column(AccessLevel, "access_level"))
    max_devices_allowed: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[Resolution] = mapped_column(enum_column(Resolution, "resolution"))
    stream_limit_policy: Mapped[StreamLimitPolicy] = mapped_column(
        enum_column(StreamLimitPolicy, "stream_limit_policy"),
        default=StreamLimitPolicy.EVICT_OLDEST,
        server_default=StreamLimitPolicy.EVICT_OLDEST.value,
    )
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
