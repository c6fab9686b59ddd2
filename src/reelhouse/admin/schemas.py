from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from msgspec import Struct


class AdminUser(Struct):
    id: UUID
    email: str
    name: str
    bio: str | None
    picture: str | None
    phone: str | None
    is_admin: bool
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AdminUserList(Struct):
    users: list[AdminUser]
    total: int
    limit: int
    offset: int


def admin_user_from(user: object) -> AdminUser:
    return msgspec.convert(user, AdminUser, from_attributes=True)
