from __future__ import annotations

from datetime import datetime
from uuid import UUID

from msgspec import Struct

from reelhouse.notifications.models import NotificationKind, NotificationStatus


class NotificationPreferences(Struct):
    """Which kinds of mail you get; everything is on until you turn it off."""

    subscription_reminders: bool
    new_releases: bool


class NotificationPreferencesWrite(Struct):
    """Fields left out keep their value."""

    subscription_reminders: bool | None = None
    new_releases: bool | None = None


class OutboxNotification(Struct):
    id: UUID
    user_id: UUID | None
    kind: NotificationKind
    recipient: str
    subject: str
    status: NotificationStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OutboxNotificationList(Struct):
    notifications: list[OutboxNotification]
    total: int
    limit: int
    offset: int


class Unsubscribed(Struct):
    kind: NotificationKind
    unsubscribed: bool = True
