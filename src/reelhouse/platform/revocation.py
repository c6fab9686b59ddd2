"""Revoked access tokens: a ``jti`` denylist and a signed-out refresh-family list, both expiring.

An access token lives at most ``ACCESS_TOKEN_TTL_SECONDS``, so an entry only
has to outlive that. Keys are hash-tagged by user so one ``EXISTS`` answers
both questions in one round trip, also on Redis Cluster.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio import Redis


class RevocationStore(Protocol):
    async def revoke_token(self, user_id: str, jti: str, ttl_seconds: int) -> None: ...

    async def revoke_family(self, user_id: str, family_id: str, ttl_seconds: int) -> None: ...

    async def is_revoked(self, user_id: str, jti: str, family_id: str) -> bool: ...


class RedisRevocationStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _jti_key(self, user_id: str, jti: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:revoked:jti:{jti}"

    def _family_key(self, user_id: str, family_id: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:revoked:family:{family_id}"

    async def revoke_token(self, user_id: str, jti: str, ttl_seconds: int) -> None:
        await self._redis.set(self._jti_key(user_id, jti), b"1", ex=max(1, ttl_seconds))

    async def revoke_family(self, user_id: str, family_id: str, ttl_seconds: int) -> None:
        await self._redis.set(self._family_key(user_id, family_id), b"1", ex=max(1, ttl_seconds))

    async def is_revoked(self, user_id: str, jti: str, family_id: str) -> bool:
        found = await self._redis.exists(self._jti_key(user_id, jti), self._family_key(user_id, family_id))
        return bool(found)


class MemoryRevocationStore:
    _PRUNE_EVERY = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[tuple[str, str, str], float] = {}
        self._writes = 0

    async def revoke_token(self, user_id: str, jti: str, ttl_seconds: int) -> None:
        self._put(("jti", user_id, jti), ttl_seconds)

    async def revoke_family(self, user_id: str, family_id: str, ttl_seconds: int) -> None:
        self._put(("family", user_id, family_id), ttl_seconds)

    async def is_revoked(self, user_id: str, jti: str, family_id: str) -> bool:
        now = self._clock()
        return any(self._expiry.get(key, 0.0) > now for key in (("jti", user_id, jti), ("family", user_id, family_id)))

    def _put(self, key: tuple[str, str, str], ttl_seconds: int) -> None:
        now = self._clock()
        self._expiry[key] = now + max(1, ttl_seconds)
        self._writes += 1
        if self._writes % self._PRUNE_EVERY == 0:
            for stale in [k for k, expires in self._expiry.items() if expires <= now]:
                del self._expiry[stale]
