"""Subscriptions: subscribe, the active one, history, cancel, renew, change plan."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import HeaderParameter, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from reelhouse.accounts.auth import CurrentUser, requires_user
from reelhouse.platform.pagination import Pagination
from reelhouse.subscriptions.schemas import (
    CancelledSubscription,
    ChangePlanRequest,
    SubscribeRequest,
    SubscriptionHistory,
    SubscriptionOut,
)
from reelhouse.subscriptions.services import SubscriptionService, subscription_out

SubscriptionId = Annotated[UUID, Parameter(description="One of your subscriptions")]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Repeat a request safely: the first answer is replayed for the same key and body",
    ),
]


async def history_of(
    current_user: CurrentUser, subscriptions: SubscriptionService, pagination: Pagination
) -> SubscriptionHistory:
    rows, total = await subscriptions.history(current_user.id, limit=pagination.limit, offset=pagination.offset)
    return SubscriptionHistory(
        subscriptions=[subscription_out(row, with_events=True) for row in rows],
        total=total,
        limit=pagination.limit,
        offset=pagination.offset,
    )


class SubscriptionController(Controller):
    path = "/api/v1/subscriptions"
    tags = ["Subscriptions"]
    guards = [requires_user]

    @post("/", operation_id="Subscribe", status_code=HTTP_201_CREATED, summary="Subscribe to a plan")
    async def subscribe(
        self,
        data: SubscribeRequest,
        current_user: CurrentUser,
        subscriptions: SubscriptionService,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SubscriptionOut]:
        answer = await subscriptions.subscribe(current_user.id, data.plan_id, idempotency_key=idempotency_key)
        # Converted back through the schema so a replay is byte-for-byte the first answer.
        return Response(msgspec.convert(answer.body, SubscriptionOut), status_code=answer.status_code)

    @get("/active", operation_id="GetActiveSubscription", summary="Your active subscription (404 if none)")
    async def active(self, current_user: CurrentUser, subscriptions: SubscriptionService) -> SubscriptionOut:
        return subscription_out(await subscriptions.active(current_user.id))

    @get("/history", operation_id="SubscriptionHistory", summary="Every subscription you had, newest first")
    async def history(
        self, current_user: CurrentUser, subscriptions: SubscriptionService, pagination: Pagination
    ) -> SubscriptionHistory:
        return await history_of(current_user, subscriptions, pagination)

    @get("/{subscription_id:uuid}", operation_id="GetSubscription", summary="One of your subscriptions")
    async def get_subscription(
        self, subscription_id: SubscriptionId, current_user: CurrentUser, subscriptions: SubscriptionService
    ) -> SubscriptionOut:
        subscription = await subscriptions.owned(current_user.id, subscription_id)
        return subscription_out(subscription)

    @post(
        "/{subscription_id:uuid}/cancel",
        operation_id="CancelSubscription",
        status_code=HTTP_200_OK,
        summary="Stop renewal; access lasts until end_date",
    )
    async def cancel(
        self, subscription_id: SubscriptionId, current_user: CurrentUser, subscriptions: SubscriptionService
    ) -> CancelledSubscription:
        cancelled = subscription_out(await subscriptions.cancel(current_user.id, subscription_id), with_events=True)
        return CancelledSubscription(**msgspec.structs.asdict(cancelled), message="subscription cancelled successfully")

    @post(
        "/{subscription_id:uuid}/renew",
        operation_id="RenewSubscription",
        status_code=HTTP_201_CREATED,
        summary="Add a period of the plan's validity from max(now, end_date)",
    )
    async def renew(
        self, subscription_id: SubscriptionId, current_user: CurrentUser, subscriptions: SubscriptionService
    ) -> SubscriptionOut:
        return subscription_out(await subscriptions.renew(current_user.id, subscription_id), with_events=True)

    @post(
        "/{subscription_id:uuid}/change-plan",
        operation_id="ChangeSubscriptionPlan",
        status_code=HTTP_200_OK,
        summary="Switch plan now; the paid period keeps its end date",
    )
    async def change_plan(
        self,
        subscription_id: SubscriptionId,
        data: ChangePlanRequest,
        current_user: CurrentUser,
        subscriptions: SubscriptionService,
    ) -> SubscriptionOut:
        subscription = await subscriptions.change_plan(current_user.id, subscription_id, data.plan_id)
        return subscription_out(subscription, with_events=True)


class SubscriptionHistoryAliasController(Controller):
    """``/users/subscription-history``: the seed API's path for the same history."""

    path = "/api/v1/users/subscription-history"
    tags = ["Subscriptions"]
    guards = [requires_user]

    @get("/", operation_id="UserSubscriptionHistory", summary="Every subscription you had, newest first")
    async def history(
        self, current_user: CurrentUser, subscriptions: SubscriptionService, pagination: Pagination
    ) -> SubscriptionHistory:
        return await history_of(current_user, subscriptions, pagination)
