"""The one place that decides what a user may play, on how many devices, at what resolution.

Ladder: free content needs a signed-in user; basic needs an active basic or
premium plan; premium needs premium. No (or an expired) subscription means free
only, on ``FREE_MAX_DEVICES`` devices at the free resolution.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import exists, select

from reelhouse.plans.models import AccessLevel, Plan, StreamLimitPolicy
from reelhouse.plans.resolutions import Resolution
from reelhouse.platform.cache import CacheScope
from reelhouse.platform.memory import Remembered
from reelhouse.subscriptions.events import EntitlementChanged
from reelhouse.subscriptions.models import Subscription, SubscriptionStatus

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncSession

    from reelhouse.platform.invalidation import Invalidations
    from reelhouse.platform.uow import EventBus, UnitOfWork

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


#: How long a user's entitlement is remembered at most when no change is heard of (a lost notice).
ENTITLEMENT_MEMORY_SECONDS = 60.0
MAX_REMEMBERED_USERS = 100_000
#: The topic of :mod:`reelhouse.platform.invalidation` naming a user whose entitlement changed.
ENTITLEMENT_TOPIC = "entitlement"


class EntitlementMemory:
    """Users' entitlements as last read, on this instance, for the hot paths (starting a stream,
    reporting progress, listing watch history).

    A user's is forgotten on every instance when their subscriptions change (the ``entitlement``
    topic, keyed by user id) and everyone's when a plan changes; each is kept
    ``ENTITLEMENT_MEMORY_SECONDS`` at most, and never past the moment it lapses by itself (its
    subscription's end). A read that raced a change is not kept.
    """

    def __init__(
        self,
        ttl_seconds: float = ENTITLEMENT_MEMORY_SECONDS,
        *,
        max_users: int = MAX_REMEMBERED_USERS,
        clock: Callable[[], float] = time.time,  # the time base of the subscriptions' end
    ) -> None:
        self._users: Remembered[UUID, Entitlement] = Remembered(ttl_seconds, max_entries=max_users, clock=clock)

    def generation(self) -> int:
        return self._users.generation()

    def recall(self, user_id: UUID) -> Entitlement | None:
        return self._users.recall(user_id)

    def keep(self, user_id: UUID, entitlement: Entitlement, generation: int) -> None:
        until = entitlement.valid_until.timestamp() if entitlement.valid_until is not None else None
        self._users.keep(user_id, entitlement, generation, until=until)

    def forget(self, user_id: str | None) -> None:
        """Forget one user's (by id), or everyone's (None)."""
        if user_id is None:
            self._users.forget_all()
            return
        try:
            key = UUID(user_id)
        except ValueError:
            return  # not a user's id: nobody to forget
        self._users.forget(key)

    def follow(self, invalidations: Invalidations) -> None:
        """Forget what changed, here or on another instance: a user's subscriptions, or any plan."""
        invalidations.on(ENTITLEMENT_TOPIC, self.forget)
        invalidations.on(CacheScope.PLANS.value, lambda _key: self.forget(None))


class EntitlementService:
    """What a user may do right now, for the domains above (playback, discovery)."""

    def __init__(self, session: AsyncSession, *, free_max_devices: int, memory: EntitlementMemory) -> None:
        self.session = session
        self._free_max_devices = free_max_devices
        self._memory = memory

    async def for_user(self, user_id: UUID | None) -> Entitlement:
        """Read now, in this unit of work (what enforcement and changes act on)."""
        return await entitlement_for(self.session, user_id, free_max_devices=self._free_max_devices)

    async def remembered(self, user_id: UUID) -> Entitlement:
        """As :meth:`for_user`, remembered on this instance (see :class:`EntitlementMemory`)."""
        entitlement = self._memory.recall(user_id)
        if entitlement is None:
            generation = self._memory.generation()
            entitlement = await self.for_user(user_id)
            self._memory.keep(user_id, entitlement, generation)
        return entitlement


def forget_changed_entitlements(events: EventBus, invalidations: Invalidations) -> None:
    """Once a change to a user's subscriptions commits, every instance forgets their entitlement."""

    async def changed(uow: UnitOfWork, event: EntitlementChanged) -> None:
        invalidations.changed_on_commit(uow, ENTITLEMENT_TOPIC, str(event.user_id))

    events.subscribe(EntitlementChanged, changed)


class SubscribedPlans:
    """Answers plans' question whether anyone ever subscribed to a plan (see ``plans.services.PlanUsage``)."""

    async def ever_subscribed(self, session: AsyncSession, plan_id: UUID) -> bool:
        return bool(await session.scalar(select(exists().where(Subscription.plan_id == plan_id))))
