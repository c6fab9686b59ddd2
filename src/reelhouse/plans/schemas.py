from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from reelhouse.plans.models import AccessLevel, StreamLimitPolicy
from reelhouse.plans.resolutions import Resolution
from reelhouse.platform.requests import LINE_BREAKS_ALLOWED

PlanName = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
Price = Annotated[int, Meta(ge=0, le=100_000_000, description="In minor units (cents)")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
ValidityDays = Annotated[int, Meta(ge=1, le=3650)]
MaxDevices = Annotated[int, Meta(ge=1, le=10)]
Description = Annotated[str, Meta(max_length=2000, extra=LINE_BREAKS_ALLOWED)]


class PlanCreate(Struct):
    """A whole plan (POST, and PUT which replaces every field)."""

    name: PlanName
    price: Price
    validity_days: ValidityDays
    access_level: AccessLevel
    max_devices_allowed: MaxDevices
    resolution: Resolution
    currency: Currency = "USD"
    stream_limit_policy: StreamLimitPolicy = StreamLimitPolicy.EVICT_OLDEST
    description: Description = ""
    is_active: bool = True

    def fields(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class PlanPatch(Struct):
    name: PlanName | UnsetType = UNSET
    price: Price | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    validity_days: ValidityDays | UnsetType = UNSET
    access_level: AccessLevel | UnsetType = UNSET
    max_devices_allowed: MaxDevices | UnsetType = UNSET
    resolution: Resolution | UnsetType = UNSET
    stream_limit_policy: StreamLimitPolicy | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET

    def fields(self) -> dict[str, Any]:
        return {name: value for name in self.__struct_fields__ if (value := getattr(self, name)) is not UNSET}


class PlanOut(Struct):
    id: UUID
    name: str
    price: int
    currency: str
    validity_days: int
    access_level: AccessLevel
    max_devices_allowed: int
    resolution: Resolution
    stream_limit_policy: StreamLimitPolicy
    description: str
    is_active: bool
    created_at: datetime
    updated_at: datetime


class PlanDeleted(Struct):
    """A deleted plan; one that was ever subscribed to is archived instead, and comes back in ``plan``."""

    message: str
    archived: bool
    plan: PlanOut | None


class PlanList(Struct):
    plans: list[PlanOut]
    total: int
    limit: int
    offset: int


def plan_out(plan: object) -> PlanOut:
    return msgspec.convert(plan, PlanOut, from_attributes=True)
