"""What accounts announce to the domains above it (playback ends the user's streams)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from reelhouse.platform.uow import DomainEvent


@dataclass(frozen=True, slots=True)
class SignedOutEverywhere(DomainEvent):
    """Every sign-in of the user was revoked by the user."""

    user_id: UUID


@dataclass(frozen=True, slots=True)
class AccountDisabled(DomainEvent):
    """An administrator disabled the account: its sign-ins are revoked."""

    user_id: UUID
