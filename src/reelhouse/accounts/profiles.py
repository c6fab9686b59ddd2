"""Profiles remembered per instance, each checked against the user's profile version.

The version comes with the caller's token check (one round trip that happens anyway) and
is bumped after every committed change to what a profile shows, on whichever instance;
a remembered profile is served only while its version is still the current one, so a
change is seen at once everywhere. Entries also expire, and the memory is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from reelhouse.accounts.repositories import UserRepository
from reelhouse.accounts.schemas import profile_from

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession

    from reelhouse.accounts.auth import CurrentUser
    from reelhouse.accounts.schemas import Profile


class RememberedProfiles:
    MAX_ENTRIES = 50_000

    def __init__(self, ttl_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[UUID, tuple[int, float, Profile]] = {}

    def get(self, user_id: UUID, version: int) -> Profile | None:
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        remembered_version, expires_at, profile = entry
        if remembered_version != version or expires_at <= self._clock():
            del self._entries[user_id]
            return None
        return profile

    def remember(self, user_id: UUID, version: int, profile: Profile) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[user_id] = (version, self._clock() + self._ttl, profile)


class ProfileReader:
    """The caller's profile: remembered when its version is current, else read and remembered."""

    def __init__(
        self, remembered: RememberedProfiles, read_session: Callable[[], AbstractAsyncContextManager[AsyncSession]]
    ) -> None:
        self._remembered = remembered
        self._read_session = read_session

    async def profile(self, user: CurrentUser) -> Profile:
        profile = self._remembered.get(user.id, user.profile_version)
        if profile is not None:
            return profile
        async with self._read_session() as session:
            profile = profile_from(await UserRepository(session=session).get(user.id))
        self._remembered.remember(user.id, user.profile_version, profile)
        return profile
