"""What subscriptions announce to the domains above it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from reelhouse.platform.uow import DomainEvent


@dataclass(frozen=True, slots=True)
class EntitlementChanged(DomainEvent):
    """What the user may watch, on how many devices, at what resolution or until when changed (a
    new subscription, a renewal, a plan change, a subscription reaching its end): playback applies
    the new entitlement to live streams, and every instance forgets the one it remembered."""

    user_id: UUID
