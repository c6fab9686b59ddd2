"""Plans: public list and detail; admin create, replace, update and delete."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from reelhouse.accounts.auth import CurrentUser, requires_admin
from reelhouse.plans.schemas import PlanCreate, PlanDeleted, PlanList, PlanOut, PlanPatch, plan_out
from reelhouse.plans.services import PlanService
from reelhouse.platform.cache import CacheScope, public_cache
from reelhouse.platform.pagination import Pagination

PlanId = Annotated[UUID, Parameter(description="The plan's id")]


class PlanController(Controller):
    path = "/api/v1/plans"
    tags = ["Plans"]

    @get(
        "/",
        operation_id="ListPlans",
        summary="Plans on offer (admins may ask ?active=false for all)",
        opt=public_cache(CacheScope.PLANS),
    )
    async def list_plans(
        self,
        plans: PlanService,
        pagination: Pagination,
        optional_user: CurrentUser | None,
        active: Annotated[bool, Parameter(description="false: include archived plans (admins only)")] = True,
    ) -> PlanList:
        include_inactive = not active and optional_user is not None and optional_user.is_admin
        items, total = await plans.list_plans(
            include_inactive=include_inactive, limit=pagination.limit, offset=pagination.offset
        )
        return PlanList(
            plans=[plan_out(plan) for plan in items], total=total, limit=pagination.limit, offset=pagination.offset
        )

    @get("/{plan_id:uuid}", operation_id="GetPlan", summary="One plan", opt=public_cache(CacheScope.PLANS))
    async def get_plan(self, plan_id: PlanId, plans: PlanService, optional_user: CurrentUser | None) -> PlanOut:
        is_admin = optional_user is not None and optional_user.is_admin
        return plan_out(await plans.get_plan(plan_id, include_inactive=is_admin))


class AdminPlanController(Controller):
    path = "/api/v1/admin/plans"
    tags = ["Admin: plans"]
    guards = [requires_admin]

    @post("/", operation_id="AdminCreatePlan", status_code=HTTP_201_CREATED, summary="Create a plan")
    async def create_plan(self, data: PlanCreate, plans: PlanService) -> PlanOut:
        return plan_out(await plans.create_plan(data.fields()))

    @put("/{plan_id:uuid}", operation_id="AdminReplacePlan", summary="Replace every field of a plan")
    async def replace_plan(self, plan_id: PlanId, data: PlanCreate, plans: PlanService) -> PlanOut:
        return plan_out(await plans.update_plan(plan_id, data.fields()))

    @patch("/{plan_id:uuid}", operation_id="AdminUpdatePlan", summary="Change some fields of a plan")
    async def update_plan(self, plan_id: PlanId, data: PlanPatch, plans: PlanService) -> PlanOut:
        return plan_out(await plans.update_plan(plan_id, data.fields()))

    @delete(
        "/{plan_id:uuid}",
        operation_id="AdminDeletePlan",
        status_code=HTTP_200_OK,
        summary="Delete an unused plan; a plan with subscriptions is archived instead (is_active: false)",
    )
    async def delete_plan(self, plan_id: PlanId, plans: PlanService) -> PlanDeleted:
        archived = await plans.delete_plan(plan_id)
        if archived is None:
            return PlanDeleted(message="plan deleted successfully", archived=False, plan=None)
        return PlanDeleted(
            message="plan archived: it has subscriptions, so it is kept but no longer offered",
            archived=True,
            plan=plan_out(archived),
        )
