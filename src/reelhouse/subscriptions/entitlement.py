"""The one place that decides what a user may play, on how many devices, at what resolution.

Ladder: free content needs a signed-in user; basic needs an active basic or
premium plan; premium needs premium. No (or an expired) subscription means free
only, on ``FREE_MAX_DEVICES`` devices at the free resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import exists, select

from reelhouse.plans.models import AccessLevel, Plan, StreamLimitPolicy
from reelhouse.plans.resolutions import Resolution
from reelhouse.subscriptions.models import Subscription, SubscriptionStatus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

#: What a signed-in user without a current subscription gets.
FREE_TIER_RESOLUTION = Resolution.SD_480P


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What one caller may do right now. ``access_level`` is ``None`` for anonymous callers."""

    access_level: AccessLevel | None
    max_devices: int
    max_resolution: Resolution
    stream_limit_policy: StreamLimitPolicy
    subscription_id: UUID | None = None
    plan_id: UUID | None = None
    #: When this entitlement lapses by itself (the subscription's end); None: not by time.
    valid_until: datetime | None = None

    def covers(self, content_level: AccessLevel) -> bool:
        return self.access_level is not None and content_level.rank <= self.access_level.rank

    @property
    def signed_in(self) -> bool:
        return self.access_level is not None


ANONYMOUS = Entitlement(
    access_level=None,
    max_devices=0,
    max_resolution=FREE_TIER_RESOLUTION,
    stream_limit_policy=StreamLimitPolicy.EVICT_OLDEST,
)


def free_tier(free_max_devices: int) -> Entitlement:
    return Entitlement(
        access_level=AccessLevel.FREE,
        max_devices=free_max_devices,
        max_resolution=FREE_TIER_RESOLUTION,
        stream_limit_policy=StreamLimitPolicy.EVICT_OLDEST,
    )


def is_current(subscription: Subscription, now: datetime | None = None) -> bool:
    """In its paid period: active or cancelled (not renewing), and not past its end."""
    now = now or datetime.now(UTC)
    return subscription.status != SubscriptionStatus.EXPIRED and subscription.end_date > now


async def entitlement_for(session: AsyncSession, user_id: UUID | None, *, free_max_devices: int) -> Entitlement:
    if user_id is None:
        return ANONYMOUS
    now = datetime.now(UTC)
    row = (
        await session.execute(
            select(Subscription.id, Subscription.end_date, Plan)
            .join(Plan, Plan.id == Subscription.plan_id)
            .where(
                Subscription.user_id == user_id,
                Subscription.status != SubscriptionStatus.EXPIRED,
                Subscription.end_date > now,
            )
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        return free_tier(free_max_devices)
    subscription_id, end_date, plan = row
    return Entitlement(
        access_level=plan.access_level,
        max_devices=plan.max_devices_allowed,
        max_resolution=plan.resolution,
        stream_limit_policy=plan.stream_limit_policy,
        subscription_id=subscription_id,
        plan_id=plan.id,
        valid_until=end_date,
    )


class EntitlementService:
    """What a user may do right now, for the domains above (playback, discovery)."""

    def __init__(self, session: AsyncSession, *, free_max_devices: int) -> None:
        self.session = session
        self._free_max_devices = free_max_devices

    async def for_user(self, user_id: UUID | None) -> Entitlement:
        return await entitlement_for(self.session, user_id, free_max_devices=self._free_max_devices)


class SubscribedPlans:
    """Answers plans' question whether anyone ever subscribed to a plan (see ``plans.services.PlanUsage``)."""

    async def ever_subscribed(self, session: AsyncSession, plan_id: UUID) -> bool:
        return bool(await session.scalar(select(exists().where(Subscription.plan_id == plan_id))))
