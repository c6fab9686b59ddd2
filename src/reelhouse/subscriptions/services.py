"""Subscription rules: subscribe, cancel, renew, change plan, expiry; every change kept as an event.

Each change first takes a per-user write lock (a no-op UPDATE of the user's row),
so one user's changes never interleave; the partial unique index on
``subscriptions`` still guarantees at most one current subscription per user.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from advanced_alchemy.exceptions import DuplicateKeyError, IntegrityError
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import selectinload

from reelhouse.accounts.repositories import UserRepository
from reelhouse.plans.schemas import plan_out
from reelhouse.plans.services import PlanNotFound, PlanRepository
from reelhouse.platform.errors import Conflict, InvalidInput, NotFound
from reelhouse.subscriptions.entitlement import is_current
from reelhouse.subscriptions.events import EntitlementChanged
from reelhouse.subscriptions.models import (
    IdempotencyRecord,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from reelhouse.subscriptions.schemas import SubscriptionEventOut, SubscriptionOut

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from reelhouse.plans.models import Plan
    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory

IDEMPOTENCY_TTL = timedelta(hours=24)


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"
    default_detail = "No such subscription."


class NoActiveSubscription(NotFound):
    code = "no_active_subscription"
    default_detail = "You have no active subscription."


class AlreadySubscribed(Conflict):
    code = "already_subscribed"
    default_detail = "You already have an active subscription; change its plan or renew it instead."


class PlanNotAvailable(Conflict):
    code = "plan_not_available"
    default_detail = "This plan is no longer offered."


class SubscriptionNotCurrent(Conflict):
    code = "subscription_expired"
    default_detail = "This subscription has expired."


class AlreadyCancelled(Conflict):
    code = "already_cancelled"
    default_detail = "This subscription is already cancelled."


class SamePlan(Conflict):
    code = "same_plan"
    default_detail = "The subscription is already on this plan."


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with a different request body."


@dataclass(frozen=True, slots=True)
class Answer:
    """A JSON-ready response body with its status, as first given (and replayed)."""

    status_code: int
    body: dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


def reported_status(subscription: Subscription, now: datetime) -> SubscriptionStatus:
    if subscription.status != SubscriptionStatus.EXPIRED and subscription.end_date <= now:
        return SubscriptionStatus.EXPIRED
    return subscription.status


def subscription_out(subscription: Subscription, *, with_events: bool = False) -> SubscriptionOut:
    now = utcnow()
    return SubscriptionOut(
        id=subscription.id,
        user_id=subscription.user_id,
        plan_id=subscription.plan_id,
        plan=plan_out(subscription.plan),
        start_date=subscription.start_date,
        end_date=subscription.end_date,
        is_active=is_current(subscription, now),
        status=reported_status(subscription, now),
        auto_renew=subscription.auto_renew,
        cancelled_at=subscription.cancelled_at,
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
        events=[msgspec.convert(event, SubscriptionEventOut, from_attributes=True) for event in subscription.events]
        if with_events
        else None,
    )


def request_fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class SubscriptionService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session

    # reads

    async def active(self, user_id: UUID) -> Subscription:
        now = utcnow()
        subscription = await self.session.scalar(
            self._with_plan()
            .where(
                Subscription.user_id == user_id,
                Subscription.status != SubscriptionStatus.EXPIRED,
                Subscription.end_date > now,
            )
            .limit(1)
        )
        if subscription is None:
            raise NoActiveSubscription()
        return subscription

    async def history(self, user_id: UUID, *, limit: int, offset: int) -> tuple[Sequence[Subscription], int]:
        total = (
            await self.session.scalar(
                select(func.count()).select_from(Subscription).where(Subscription.user_id == user_id)
            )
            or 0
        )
        rows = await self.session.scalars(
            self._with_plan()
            .options(selectinload(Subscription.events))
            .where(Subscription.user_id == user_id)
            .order_by(Subscription.created_at.desc(), Subscription.id)
            .limit(limit)
            .offset(offset)
        )
        return rows.all(), total

    async def owned(self, user_id: UUID, subscription_id: UUID) -> Subscription:
        subscription = await self.session.scalar(
            self._with_plan().where(Subscription.id == subscription_id, Subscription.user_id == user_id)
        )
        if subscription is None:
            raise SubscriptionNotFound()
        return subscription

    # changes

    async def subscribe(self, user_id: UUID, plan_id: UUID, *, idempotency_key: str | None) -> Answer:
        await self._lock_user(user_id)
        fingerprint = request_fingerprint({"plan_id": str(plan_id)})
        if idempotency_key is not None:
            replay = await self._replay(user_id, "subscribe", idempotency_key, fingerprint)
            if replay is not None:
                return replay

        plan = await self._offered_plan(plan_id)
        now = utcnow()
        await self._settle_user(user_id, now)
        if await self._current(user_id, now) is not None:
            raise AlreadySubscribed()
        subscription = Subscription(
            user_id=user_id,
            plan_id=plan.id,
            status=SubscriptionStatus.ACTIVE,
            start_date=now,
            end_date=now + timedelta(days=plan.validity_days),
            auto_renew=True,
        )
        self.session.add(subscription)
        try:
            await self.session.flush()
        except (DuplicateKeyError, IntegrityError):
            raise AlreadySubscribed() from None
        self._record(subscription, SubscriptionEventKind.SUBSCRIBED, plan.id)
        await self.uow.publish(EntitlementChanged(user_id))
        answer = Answer(201, msgspec.to_builtins(subscription_out(await self._reload(subscription.id))))
        if idempotency_key is not None:
            self.session.add(
                IdempotencyRecord(
                    user_id=user_id,
                    scope="subscribe",
                    key=idempotency_key,
                    request_hash=fingerprint,
                    status_code=answer.status_code,
                    response_body=answer.body,
                )
            )
            await self.session.flush()
        return answer

    async def cancel(self, user_id: UUID, subscription_id: UUID) -> Subscription:
        await self._lock_user(user_id)
        subscription = await self.owned(user_id, subscription_id)
        now = utcnow()
        if not is_current(subscription, now):
            raise SubscriptionNotCurrent()
        if subscription.status == SubscriptionStatus.CANCELLED:
            raise AlreadyCancelled()
        subscription.status = SubscriptionStatus.CANCELLED
        subscription.auto_renew = False
        subscription.cancelled_at = now
        self._record(subscription, SubscriptionEventKind.CANCELLED, subscription.plan_id)
        return await self._reload(subscription.id)

    async def renew(self, user_id: UUID, subscription_id: UUID) -> Subscription:
        """A new period of the plan's validity from max(now, end_date): no paid day is lost."""
        await self._lock_user(user_id)
        subscription = await self.owned(user_id, subscription_id)
        now = utcnow()
        if not is_current(subscription, now):
            await self._settle_user(user_id, now)
            if await self._current(user_id, now) is not None:
                raise AlreadySubscribed("Another subscription is active; renew that one instead.")
            subscription.start_date = now
        period_start = max(now, subscription.end_date)
        subscription.end_date = period_start + timedelta(days=subscription.plan.validity_days)
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.auto_renew = True
        subscription.cancelled_at = None
        try:
            await self.session.flush()
        except (DuplicateKeyError, IntegrityError):
            raise AlreadySubscribed() from None
        self._record(subscription, SubscriptionEventKind.RENEWED, subscription.plan_id, period_start=period_start)
        await self.uow.publish(EntitlementChanged(user_id))
        return await self._reload(subscription.id)

    async def change_plan(self, user_id: UUID, subscription_id: UUID, plan_id: UUID) -> Subscription:
        """The new plan applies now; the paid period keeps its end date."""
        await self._lock_user(user_id)
        subscription = await self.owned(user_id, subscription_id)
        now = utcnow()
        if not is_current(subscription, now):
            raise SubscriptionNotCurrent()
        plan = await self._offered_plan(plan_id)
        if plan.id == subscription.plan_id:
            raise SamePlan()
        previous = subscription.plan_id
        subscription.plan_id = plan.id
        self._record(subscription, SubscriptionEventKind.PLAN_CHANGED, plan.id, previous_plan_id=previous)
        await self.session.flush()
        # Live streams follow at once, in this same unit of work.
        await self.uow.publish(EntitlementChanged(user_id))
        return await self._reload(subscription.id)

    # expiry

    async def settle_expired(self, now: datetime | None = None) -> list[UUID]:
        """Store ``expired`` on every subscription past its end; returns their owners, whose
        entitlement changed (announced, so their live streams follow)."""
        now = now or utcnow()
        expired = (
            await self.session.scalars(
                select(Subscription).where(
                    Subscription.status != SubscriptionStatus.EXPIRED, Subscription.end_date <= now
                )
            )
        ).all()
        for subscription in expired:
            subscription.status = SubscriptionStatus.EXPIRED
            self._record(subscription, SubscriptionEventKind.EXPIRED, subscription.plan_id)
        await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - IDEMPOTENCY_TTL)
        )
        await self.session.flush()
        owners = list(dict.fromkeys(subscription.user_id for subscription in expired))
        for user_id in owners:
            await self.uow.publish(EntitlementChanged(user_id))
        return [subscription.user_id for subscription in expired]

    # helpers

    @staticmethod
    def _with_plan() -> Select[tuple[Subscription]]:
        return select(Subscription).options(selectinload(Subscription.plan))

    async def _reload(self, subscription_id: UUID) -> Subscription:
        await self.session.flush()
        subscription = await self.session.scalar(
            self._with_plan()
            .options(selectinload(Subscription.events))
            .where(Subscription.id == subscription_id)
            .execution_options(populate_existing=True)
        )
        assert subscription is not None
        return subscription

    async def _lock_user(self, user_id: UUID) -> None:
        await UserRepository(session=self.session).lock(user_id)

    async def _offered_plan(self, plan_id: UUID) -> Plan:
        plan = await PlanRepository(session=self.session).get_one_or_none(id=plan_id)
        if plan is None:
            raise PlanNotFound()
        if not plan.is_active:
            raise PlanNotAvailable()
        return plan

    async def _current(self, user_id: UUID, now: datetime) -> Subscription | None:
        current: Subscription | None = await self.session.scalar(
            select(Subscription).where(
                Subscription.user_id == user_id,
                Subscription.status != SubscriptionStatus.EXPIRED,
                Subscription.end_date > now,
            )
        )
        return current

    async def _settle_user(self, user_id: UUID, now: datetime) -> None:
        stale = (
            await self.session.scalars(
                select(Subscription).where(
                    Subscription.user_id == user_id,
                    Subscription.status != SubscriptionStatus.EXPIRED,
                    Subscription.end_date <= now,
                )
            )
        ).all()
        for subscription in stale:
            subscription.status = SubscriptionStatus.EXPIRED
            self._record(subscription, SubscriptionEventKind.EXPIRED, subscription.plan_id)
        await self.session.flush()

    async def _replay(self, user_id: UUID, scope: str, key: str, fingerprint: str) -> Answer | None:
        record = await self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id, IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        )
        if record is None:
            return None
        if record.request_hash != fingerprint:
            raise IdempotencyKeyReused()
        return Answer(record.status_code, record.response_body)

    def _record(
        self,
        subscription: Subscription,
        kind: SubscriptionEventKind,
        plan_id: UUID,
        *,
        previous_plan_id: UUID | None = None,
        period_start: datetime | None = None,
    ) -> None:
        self.session.add(
            SubscriptionEvent(
                subscription_id=subscription.id,
                kind=kind,
                plan_id=plan_id,
                previous_plan_id=previous_plan_id,
                period_start=period_start or subscription.start_date,
                period_end=subscription.end_date,
            )
        )


async def settle_expired_subscriptions(units: UnitOfWorkFactory) -> int:
    """The periodic job: store ``expired`` on every subscription past its end; the owners' live
    streams follow through the event, in the same unit of work."""
    async with units.begin() as uow:
        return len(await SubscriptionService(uow).settle_expired())
