"""Request and response shapes for accounts.

Unknown request fields are refused by name (422), except those a schema lists in ``ignored_fields``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from reelhouse.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from reelhouse.platform.links import Link
from reelhouse.platform.requests import LINE_BREAKS_ALLOWED

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
PHONE_PATTERN = r"^\+?[0-9 ()\-.]{4,31}$"

Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=EMAIL_PATTERN, examples=["ada@example.com"])]
# Passwords are free text: a tab or a line break someone chose long ago must still sign them in.
Password = Annotated[
    str, Meta(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, extra=LINE_BREAKS_ALLOWED)
]
AnyPassword = Annotated[str, Meta(min_length=1, max_length=MAX_PASSWORD_LENGTH, extra=LINE_BREAKS_ALLOWED)]
Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
Bio = Annotated[str, Meta(max_length=2000, extra=LINE_BREAKS_ALLOWED)]
Phone = Annotated[str, Meta(max_length=32, pattern=PHONE_PATTERN)]
Picture = Link
DeviceName = Annotated[str, Meta(min_length=1, max_length=200)]

_WHITESPACE = re.compile(r"\s+")


def clean_name(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip()


class Registration(Struct):
    #: Account flags a client may send; never applied (admins are made by admins).
    ignored_fields: ClassVar[frozenset[str]] = frozenset({"is_admin", "is_active"})

    email: Email
    password: Password
    name: Name
    bio: Bio | None = None
    phone: Phone | None = None
    picture: Picture | None = None
    device_name: DeviceName | None = None


class Credentials(Struct):
    email: Annotated[str, Meta(min_length=1, max_length=320)]
    password: AnyPassword
    device_name: DeviceName | None = None


class RefreshRequest(Struct):
    # Long enough for any token a client may hold by mistake (an access JWT too), so a
    # wrong kind of token is told 401 invalid_refresh_token rather than a length error.
    refresh: Annotated[str, Meta(min_length=1, max_length=4096)]


class PasswordChange(Struct):
    current_password: AnyPassword
    new_password: Password


#: Read-only fields of a fetched profile, sent back by clients that edit it and save it whole.
PROFILE_READ_ONLY_FIELDS = frozenset({"id", "email", "is_admin", "is_active", "created_at", "updated_at"})


class ProfileReplace(Struct):
    """PUT: the whole editable profile; an omitted optional field is cleared."""

    ignored_fields: ClassVar[frozenset[str]] = PROFILE_READ_ONLY_FIELDS

    name: Name
    bio: Bio | None = None
    picture: Picture | None = None
    phone: Phone | None = None


class ProfilePatch(Struct):
    """PATCH: only the fields present change; ``null`` clears an optional field."""

    ignored_fields: ClassVar[frozenset[str]] = PROFILE_READ_ONLY_FIELDS

    name: Name | UnsetType = UNSET
    bio: Bio | UnsetType | None = UNSET
    picture: Picture | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET

    def changes(self) -> dict[str, str | None]:
        return {field: value for field in self.__struct_fields__ if (value := getattr(self, field)) is not UNSET}


class Profile(Struct):
    id: UUID
    email: str
    name: str
    bio: str | None
    picture: str | None
    phone: str | None
    is_admin: bool
    created_at: datetime
    updated_at: datetime


class TokenPair(Struct):
    token: str
    refresh: str
    user: Profile
    token_type: str = "Bearer"  # noqa: S105  (the OAuth token type, not a secret)
    expires_in: int = 0


class Device(Struct):
    id: UUID
    device_name: str
    signed_in_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool


class DeviceList(Struct):
    devices: list[Device]
    total: int


def profile_from(user: object) -> Profile:
    return msgspec.convert(user, Profile, from_attributes=True)
