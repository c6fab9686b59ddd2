"""Every table, imported in one place so Alembic and the app see the same metadata."""

from reelhouse.accounts.models import RefreshFamily, RefreshToken, User
from reelhouse.assets.models import MediaAsset, MediaJob, MediaUpload
from reelhouse.catalog.models import Content, Genre, content_genres, user_genres
from reelhouse.notifications.models import Notification, NotificationPreference, release_notices
from reelhouse.plans.models import Plan
from reelhouse.playback.events import PlaybackEvent
from reelhouse.playback.models import WatchHistory
from reelhouse.subscriptions.models import IdempotencyRecord, Subscription, SubscriptionEvent

__all__ = [
    "Content",
    "Genre",
    "IdempotencyRecord",
    "MediaAsset",
    "MediaJob",
    "MediaUpload",
    "Notification",
    "NotificationPreference",
    "Plan",
    "PlaybackEvent",
    "RefreshFamily",
    "RefreshToken",
    "Subscription",
    "SubscriptionEvent",
    "User",
    "WatchHistory",
    "content_genres",
    "release_notices",
    "user_genres",
]
