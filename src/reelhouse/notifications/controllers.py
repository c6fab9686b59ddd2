"""HTTP shape of notifications: preferences, one-click unsubscribe, and the administrators' outbox."""

from __future__ import annotations

from html import escape
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Response, get, post, put
from litestar.params import Parameter

from reelhouse.accounts.auth import CurrentUser, requires_admin, requires_user
from reelhouse.notifications.models import Notification, NotificationKind, NotificationPreference, NotificationStatus
from reelhouse.notifications.schemas import (
    NotificationPreferences,
    NotificationPreferencesWrite,
    OutboxNotification,
    OutboxNotificationList,
)
from reelhouse.notifications.services import NotificationService
from reelhouse.platform.pagination import Pagination

UnsubscribeToken = Annotated[str, Parameter(description="The token from the mail's unsubscribe link", max_length=200)]

KIND_LABELS = {
    NotificationKind.SUBSCRIPTION_REMINDER: "subscription reminders",
    NotificationKind.NEW_RELEASES: "new-release mails",
}


def preferences_from(preference: NotificationPreference) -> NotificationPreferences:
    return NotificationPreferences(
        subscription_reminders=preference.subscription_reminders, new_releases=preference.new_releases
    )


def outbox_from(notification: Notification) -> OutboxNotification:
    return msgspec.convert(notification, OutboxNotification, from_attributes=True)


class NotificationPreferenceController(Controller):
    path = "/api/v1/users/notification-preferences"
    tags = ["Profile"]
    guards = [requires_user]

    @get("/", operation_id="GetNotificationPreferences", summary="Which kinds of mail you get")
    async def get_preferences(
        self, current_user: CurrentUser, notifications: NotificationService
    ) -> NotificationPreferences:
        return preferences_from(await notifications.preferences(current_user.id))

    @put("/", operation_id="UpdateNotificationPreferences", summary="Turn kinds of mail on or off")
    async def update_preferences(
        self, data: NotificationPreferencesWrite, current_user: CurrentUser, notifications: NotificationService
    ) -> NotificationPreferences:
        changes = {key: value for key, value in msgspec.structs.asdict(data).items() if value is not None}
        return preferences_from(await notifications.update_preferences(current_user.id, changes))


class UnsubscribeController(Controller):
    """The link in every mail: works without signing in, because the token is signed for one user and kind."""

    path = "/api/v1/notifications/unsubscribe"
    tags = ["Profile"]

    @get("/", operation_id="Unsubscribe", summary="Turn off one kind of mail from its link", media_type=MediaType.HTML)
    async def unsubscribe_page(self, token: UnsubscribeToken, notifications: NotificationService) -> Response[str]:
        kind = await notifications.unsubscribe_with_token(token)
        label = escape(KIND_LABELS[kind])
        page = (
            "<!DOCTYPE html><html><head><title>Unsubscribed</title></head>"
            '<body style="font-family: sans-serif"><h1>You are unsubscribed</h1>'
            f"<p>You will get no more {label} from Reelhouse. You can turn them back on in your settings.</p>"
            "</body></html>"
        )
        return Response(page, media_type=MediaType.HTML)

    @post("/", operation_id="UnsubscribeOneClick", summary="One-click unsubscribe (RFC 8058)", status_code=200)
    async def unsubscribe_one_click(
        self, token: UnsubscribeToken, notifications: NotificationService
    ) -> dict[str, str]:
        kind = await notifications.unsubscribe_with_token(token)
        return {"kind": kind.value, "status": "unsubscribed"}


class AdminNotificationController(Controller):
    path = "/api/v1/admin/notifications"
    tags = ["Admin: notifications"]
    guards = [requires_admin]

    @get("/", operation_id="AdminListNotifications", summary="The outbox: mail waiting, sent, failed")
    async def list_notifications(
        self,
        notifications: NotificationService,
        pagination: Pagination,
        *,
        status: Annotated[NotificationStatus | None, Parameter(description="Only mail in this state")] = None,
        kind: Annotated[NotificationKind | None, Parameter(description="Only mail of this kind")] = None,
    ) -> OutboxNotificationList:
        rows, total = await notifications.outbox(
            status=status, kind=kind, limit=pagination.limit, offset=pagination.offset
        )
        return OutboxNotificationList(
            notifications=[outbox_from(row) for row in rows],
            total=total,
            limit=pagination.limit,
            offset=pagination.offset,
        )

    @post(
        "/{notification_id:uuid}/requeue",
        operation_id="AdminRequeueNotification",
        summary="Send a failed mail again",
        status_code=200,
    )
    async def requeue(
        self,
        notification_id: Annotated[UUID, Parameter(description="The notification's id")],
        notifications: NotificationService,
    ) -> OutboxNotification:
        return outbox_from(await notifications.requeue(notification_id))
