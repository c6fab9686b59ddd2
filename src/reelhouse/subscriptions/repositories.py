"""Queries of the subscriptions tables that other domains ask for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from reelhouse.plans.models import Plan
from reelhouse.subscriptions.models import Subscription, SubscriptionStatus

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class EndingSubscription:
    id: UUID
    user_id: UUID
    end_date: datetime
    plan_name: str


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, subscription_id: UUID) -> Subscription | None:
        return await self.session.get(Subscription, subscription_id)

    async def ending_without_renewal(self, after: datetime, until: datetime) -> list[EndingSubscription]:
        """Subscriptions in their paid period that end in ``(after, until]`` and will not renew."""
        rows = await self.session.execute(
            select(Subscription.id, Subscription.user_id, Subscription.end_date, Plan.name)
            .join(Plan, Plan.id == Subscription.plan_id)
            .where(
                Subscription.status != SubscriptionStatus.EXPIRED,
                # A cancelled subscription (or any with renewal turned off) ends at end_date; an
                # auto-renewing one is renewed by billing (see README "Plans and subscriptions").
                Subscription.auto_renew.is_(False),
                Subscription.end_date > after,
                Subscription.end_date <= until,
            )
        )
        return [EndingSubscription(*row) for row in rows]
