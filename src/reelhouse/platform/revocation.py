"""Token standing: what a valid-looking access token is still worth, in one round trip.

Access tokens carry their holder's admin flag and token version, so a request needs no
database read. What changes after a token was issued is kept here, each entry only as
long as an access token can live (``ACCESS_TOKEN_TTL_SECONDS`` plus leeway):

- a ``jti`` denylist (logout) and a signed-out refresh-family list;
- a per-user version floor: signing out everywhere or disabling an account raises it,
  and every token below it is refused;
- a per-user admin override: granting or revoking admin applies to tokens already issued;
- a per-user profile version, bumped after every committed profile change, which tells each
  instance whether the profile it remembers is still current (kept for a day: longer than any
  remembered profile).

Keys are hash-tagged by user so one ``MGET`` answers everything, also on Redis Cluster.
:meth:`RevocationStore.standings` answers many tokens' checks in one pipelined round trip
(what the access-token check gathers concurrent requests into).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from reelhouse.platform.redis_connection import RedisClient


@dataclass(frozen=True, slots=True)
class TokenStanding:
    revoked: bool
    #: The holder's admin flag when it changed after tokens were issued; None: the token's own claim holds.
    admin_override: bool | None = None
    #: Changes whenever the user's profile does (0: never changed within a day).
    profile_version: int = 0


@dataclass(frozen=True, slots=True)
class StandingCheck:
    """What a token's standing is asked for: its holder, id, refresh family and token version."""

    user_id: str
    jti: str
    family_id: str
    version: int


REVOKED = TokenStanding(revoked=True)
UNCHANGED = TokenStanding(revoked=False)


class RevocationStore(Protocol):
    async def revoke_token(self, user_id: str, jti: str, ttl_seconds: int) -> None: ...

    async def revoke_family(self, user_id: str, family_id: str, ttl_seconds: int) -> None: ...

    async def revoke_versions_below(self, user_id: str, version: int, ttl_seconds: int) -> None: ...

    async def override_admin(self, user_id: str, is_admin: bool, ttl_seconds: int) -> None: ...

    async def bump_profile_version(self, user_id: str) -> None: ...

    async def standing(self, user_id: str, jti: str, family_id: str, version: int) -> TokenStanding: ...

    async def standings(self, checks: Sequence[StandingCheck]) -> list[TokenStanding]:
        """Each check's standing, in order: one round trip for all of them."""
        ...


#: How long a profile version is kept; remembered profiles live far shorter.
PROFILE_VERSION_TTL_SECONDS = 24 * 3600


def _standing(  # noqa: PLR0917
    jti_hit: bool, family_hit: bool, floor: int | None, version: int, admin: bool | None, profile_version: int
) -> TokenStanding:
    if jti_hit or family_hit or (floor is not None and version < floor):
        return REVOKED
    if admin is None and not profile_version:
        return UNCHANGED
    return TokenStanding(revoked=False, admin_override=admin, profile_version=profile_version)


class RedisRevocationStore:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, user_id: str, *parts: str) -> str:
        return ":".join((f"{self._prefix}:{{{user_id}}}", *parts))

    async def revoke_token(self, user_id: str, jti: str, ttl_seconds: int) -> None:
        await self._redis.set(self._key(user_id, "revoked:jti", jti), b"1", ex=max(1, ttl_seconds))

    async def revoke_family(self, user_id: str, family_id: str, ttl_seconds: int) -> None:
        await self._redis.set(self._key(user_id, "revoked:family", family_id), b"1", ex=max(1, ttl_seconds))

    async def revoke_versions_below(self, user_id: str, version: int, ttl_seconds: int) -> None:
        await self._redis.set(self._key(user_id, "revoked:below"), str(version), ex=max(1, ttl_seconds))

    async def override_admin(self, user_id: str, is_admin: bool, ttl_seconds: int) -> None:
        await self._redis.set(self._key(user_id, "admin"), b"1" if is_admin else b"0", ex=max(1, ttl_seconds))

    async def bump_profile_version(self, user_id: str) -> None:
        key = self._key(user_id, "profile-version")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, PROFILE_VERSION_TTL_SECONDS)
            await pipe.execute()

    def _standing_keys(self, check: StandingCheck) -> tuple[str, ...]:
        return (
            self._key(check.user_id, "revoked:jti", check.jti),
            self._key(check.user_id, "revoked:family", check.family_id),
            self._key(check.user_id, "revoked:below"),
            self._key(check.user_id, "admin"),
            self._key(check.user_id, "profile-version"),
        )

    @staticmethod
    def _standing_of(check: StandingCheck, values: Sequence[bytes | str | None]) -> TokenStanding:
        jti_hit, family_hit, floor, admin, profile_version = values
        return _standing(
            jti_hit is not None,
            family_hit is not None,
            int(floor) if floor is not None else None,
            check.version,
            None if admin is None else admin == b"1",
            int(profile_version) if profile_version is not None else 0,
        )

    async def standing(self, user_id: str, jti: str, family_id: str, version: int) -> TokenStanding:
        check = StandingCheck(user_id, jti, family_id, version)
        return self._standing_of(check, await self._redis.mget(self._standing_keys(check)))

    async def standings(self, checks: Sequence[StandingCheck]) -> list[TokenStanding]:
        if len(checks) <= 1:  # nothing to pipeline
            return [await self.standing(c.user_id, c.jti, c.family_id, c.version) for c in checks]
        async with self._redis.pipeline(transaction=False) as pipe:
            for check in checks:
                # Not pipe.mget, which cluster pipelines refuse: these keys share one user's slot.
                pipe.execute_command("MGET", *self._standing_keys(check))
            replies = await pipe.execute()
        return [self._standing_of(check, values) for check, values in zip(checks, replies, strict=True)]


class MemoryRevocationStore:
    _PRUNE_EVERY = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, str, str], tuple[float, object]] = {}
        self._writes = 0

    async def revoke_token(self, user_id: str, jti: str, ttl_seconds: int) -> None:
        self._put(("jti", user_id, jti), True, ttl_seconds)

    async def revoke_family(self, user_id: str, family_id: str, ttl_seconds: int) -> None:
        self._put(("family", user_id, family_id), True, ttl_seconds)

    async def revoke_versions_below(self, user_id: str, version: int, ttl_seconds: int) -> None:
        self._put(("below", user_id, ""), version, ttl_seconds)

    async def override_admin(self, user_id: str, is_admin: bool, ttl_seconds: int) -> None:
        self._put(("admin", user_id, ""), is_admin, ttl_seconds)

    async def bump_profile_version(self, user_id: str) -> None:
        current = self._get(("profile", user_id, ""))
        self._put(
            ("profile", user_id, ""), (current if isinstance(current, int) else 0) + 1, PROFILE_VERSION_TTL_SECONDS
        )

    async def standing(self, user_id: str, jti: str, family_id: str, version: int) -> TokenStanding:
        floor = self._get(("below", user_id, ""))
        admin = self._get(("admin", user_id, ""))
        profile_version = self._get(("profile", user_id, ""))
        return _standing(
            self._get(("jti", user_id, jti)) is not None,
            self._get(("family", user_id, family_id)) is not None,
            floor if isinstance(floor, int) else None,
            version,
            admin if isinstance(admin, bool) else None,
            profile_version if isinstance(profile_version, int) else 0,
        )

    async def standings(self, checks: Sequence[StandingCheck]) -> list[TokenStanding]:
        return [await self.standing(c.user_id, c.jti, c.family_id, c.version) for c in checks]

    def _get(self, key: tuple[str, str, str]) -> object | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def _put(self, key: tuple[str, str, str], value: object, ttl_seconds: int) -> None:
        now = self._clock()
        self._entries[key] = (now + max(1, ttl_seconds), value)
        self._writes += 1
        if self._writes % self._PRUNE_EVERY == 0:
            for stale in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                del self._entries[stale]
