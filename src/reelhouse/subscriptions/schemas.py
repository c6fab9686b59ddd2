from __future__ import annotations

from datetime import datetime
from uuid import UUID

from msgspec import Struct

from reelhouse.plans.schemas import PlanOut
from reelhouse.subscriptions.models import SubscriptionEventKind, SubscriptionStatus


class SubscribeRequest(Struct):
    plan_id: UUID


class ChangePlanRequest(Struct):
    plan_id: UUID


class SubscriptionEventOut(Struct):
    id: UUID
    kind: SubscriptionEventKind
    plan_id: UUID
    previous_plan_id: UUID | None
    period_start: datetime
    period_end: datetime
    created_at: datetime


class SubscriptionOut(Struct, omit_defaults=True):
    id: UUID
    user_id: UUID
    plan_id: UUID
    plan: PlanOut
    start_date: datetime
    end_date: datetime
    #: True while the subscription grants access (active or cancelled, before end_date).
    is_active: bool
    #: As of now: an active subscription past its end_date reads as expired.
    status: SubscriptionStatus
    auto_renew: bool
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    events: list[SubscriptionEventOut] | None = None


class CancelledSubscription(SubscriptionOut, kw_only=True):
    """The cancelled subscription, with the seed API's confirmation ``message``."""

    message: str


class SubscriptionHistory(Struct):
    subscriptions: list[SubscriptionOut]
    total: int
    limit: int
    offset: int
