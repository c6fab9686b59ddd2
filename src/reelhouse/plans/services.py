"""Plan rules: names are unique, and a plan that was ever subscribed to is archived, never dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from advanced_alchemy.exceptions import DuplicateKeyError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import exists, func, select

from reelhouse.plans.models import Plan
from reelhouse.platform.cache import CacheScope
from reelhouse.platform.errors import Conflict, NotFound

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession

    from reelhouse.platform.cache import PublicResponseCache
    from reelhouse.platform.uow import UnitOfWork


class PlanUsage(Protocol):
    """Whether anyone ever subscribed to a plan: answered by subscriptions (a higher domain),
    handed in by the composition root."""

    async def ever_subscribed(self, session: AsyncSession, plan_id: UUID) -> bool: ...


class PlanNotFound(NotFound):
    code = "plan_not_found"
    default_detail = "No such plan."


class PlanNameTaken(Conflict):
    code = "plan_name_taken"
    default_detail = "A plan with this name already exists."


class PlanRepository(SQLAlchemyAsyncRepository[Plan]):
    model_type = Plan


class PlanService(SQLAlchemyAsyncRepositoryService[Plan, PlanRepository]):
    repository_type = PlanRepository

    def __init__(
        self, uow: UnitOfWork, *, public_cache: PublicResponseCache, plan_usage: PlanUsage, **kwargs: Any
    ) -> None:
        super().__init__(session=uow.session, **kwargs)
        self._uow = uow
        self._public_cache = public_cache
        self._plan_usage = plan_usage

    async def list_plans(self, *, include_inactive: bool, limit: int, offset: int) -> tuple[Sequence[Plan], int]:
        conditions = [] if include_inactive else [Plan.is_active.is_(True)]
        session = self.repository.session
        total = await session.scalar(select(func.count()).select_from(Plan).where(*conditions)) or 0
        plans = await session.scalars(
            select(Plan).where(*conditions).order_by(Plan.price, Plan.name).limit(limit).offset(offset)
        )
        return plans.all(), total

    async def get_plan(self, plan_id: UUID, *, include_inactive: bool) -> Plan:
        plan = await self.get_one_or_none(id=plan_id)
        if plan is None or (not plan.is_active and not include_inactive):
            raise PlanNotFound()
        return plan

    async def create_plan(self, fields: dict[str, Any]) -> Plan:
        await self._ensure_name_free(fields["name"], None)
        try:
            plan = await self.create(Plan(**fields))
        except DuplicateKeyError:
            raise PlanNameTaken() from None
        self._plans_changed()
        return plan

    async def update_plan(self, plan_id: UUID, fields: dict[str, Any]) -> Plan:
        plan = await self.get_plan(plan_id, include_inactive=True)
        if "name" in fields:
            await self._ensure_name_free(fields["name"], plan.id)
        for name, value in fields.items():
            setattr(plan, name, value)
        try:
            await self.repository.session.flush()
        except DuplicateKeyError:
            raise PlanNameTaken() from None
        self._plans_changed()
        await self.repository.session.refresh(plan)
        return plan

    async def delete_plan(self, plan_id: UUID) -> Plan | None:
        """Drop an unused plan (returns None); archive one with subscriptions (returns it)."""
        plan = await self.get_plan(plan_id, include_inactive=True)
        session = self.repository.session
        self._plans_changed()
        if await self._plan_usage.ever_subscribed(self._uow.session, plan.id):
            plan.is_active = False
            await session.flush()
            await session.refresh(plan)
            return plan
        await session.delete(plan)
        await session.flush()
        return None

    def _plans_changed(self) -> None:
        """What anonymous callers were shown of the plans is out of date once this transaction commits."""
        self._public_cache.invalidate_on_commit(self._uow, CacheScope.PLANS)

    async def _ensure_name_free(self, name: str, own_id: UUID | None) -> None:
        conditions = [Plan.name == name] + ([Plan.id != own_id] if own_id is not None else [])
        if await self.repository.session.scalar(select(exists().where(*conditions))):
            raise PlanNameTaken()
