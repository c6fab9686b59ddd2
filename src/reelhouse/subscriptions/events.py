"""What subscriptions announce to the domains above it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from reelhouse.platform.uow import DomainEvent


@dataclass(frozen=True, slots=True)
class EntitlementChanged(DomainEvent):
    """What the user may watch, on how many devices or at what resolution changed (a plan change,
    a subscription reaching its end): playback applies the new entitlement to live streams."""

    user_id: UUID
