"""Admin user management: list and search, view, grant or revoke admin, disable or enable."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from reelhouse.accounts.auth import CurrentUser, requires_admin
from reelhouse.accounts.services import AccountService
from reelhouse.admin.schemas import AdminUser, AdminUserList, admin_user_from
from reelhouse.platform.pagination import Pagination

UserId = Annotated[UUID, Parameter(description="The user's id")]


class AdminUserController(Controller):
    path = "/api/v1/admin/users"
    tags = ["Admin: users"]
    guards = [requires_admin]

    @get("/", operation_id="AdminListUsers", summary="List and search users")
    async def list_users(
        self,
        accounts: AccountService,
        pagination: Pagination,
        q: Annotated[str | None, Parameter(description="Part of an email or name", max_length=200)] = None,
        is_admin: bool | None = None,
        is_active: bool | None = None,
    ) -> AdminUserList:
        users, total = await accounts.list_users(
            query=q, is_admin=is_admin, is_active=is_active, limit=pagination.limit, offset=pagination.offset
        )
        return AdminUserList(
            users=[admin_user_from(user) for user in users],
            total=total,
            limit=pagination.limit,
            offset=pagination.offset,
        )

    @get("/{user_id:uuid}", operation_id="AdminGetUser", summary="One user")
    async def get_user(self, user_id: UserId, accounts: AccountService) -> AdminUser:
        return admin_user_from(await accounts.get_user(user_id))

    @post(
        "/{user_id:uuid}/grant-admin",
        operation_id="AdminGrantAdmin",
        status_code=HTTP_200_OK,
        summary="Make the user an administrator",
    )
    async def grant_admin(self, user_id: UserId, current_user: CurrentUser, accounts: AccountService) -> AdminUser:
        return admin_user_from(await accounts.set_admin(current_user.id, user_id, is_admin=True))

    @post(
        "/{user_id:uuid}/revoke-admin",
        operation_id="AdminRevokeAdmin",
        status_code=HTTP_200_OK,
        summary="Take administrator rights away",
    )
    async def revoke_admin(self, user_id: UserId, current_user: CurrentUser, accounts: AccountService) -> AdminUser:
        return admin_user_from(await accounts.set_admin(current_user.id, user_id, is_admin=False))

    @post(
        "/{user_id:uuid}/disable",
        operation_id="AdminDisableUser",
        status_code=HTTP_200_OK,
        summary="Disable the account; its tokens stop working at once",
    )
    async def disable(self, user_id: UserId, current_user: CurrentUser, accounts: AccountService) -> AdminUser:
        return admin_user_from(await accounts.set_active(current_user.id, user_id, is_active=False))

    @post(
        "/{user_id:uuid}/enable",
        operation_id="AdminEnableUser",
        status_code=HTTP_200_OK,
        summary="Enable a disabled account",
    )
    async def enable(self, user_id: UserId, current_user: CurrentUser, accounts: AccountService) -> AdminUser:
        return admin_user_from(await accounts.set_active(current_user.id, user_id, is_active=True))
