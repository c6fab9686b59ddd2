"""Every table, imported in one place so Alembic and the app see the same metadata."""

from reelhouse.accounts.models import RefreshFamily, RefreshToken, User
from reelhouse.plans.models import Plan
from reelhouse.subscriptions.models import IdempotencyRecord, Subscription, SubscriptionEvent

__all__ = [
    "IdempotencyRecord",
    "Plan",
    "RefreshFamily",
    "RefreshToken",
    "Subscription",
    "SubscriptionEvent",
    "User",
]
