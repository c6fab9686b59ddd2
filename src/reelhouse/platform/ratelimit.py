"""Rate limiting with GCRA (the generic cell rate algorithm).

A limit is "``limit`` requests per ``period_seconds``", allowing a burst of
``limit`` at once and then one request every ``period / limit`` seconds. The
state per key is a single number, the theoretical arrival time (TAT).

Two limiters share one interface and one contract test suite:
:class:`RedisRateLimiter` (one Lua script per check, so it is atomic across
every API instance) and :class:`MemoryRateLimiter` for the embedded default.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from reelhouse.accounts.tokens import InvalidToken
from reelhouse.platform.client_ip import client_ip
from reelhouse.platform.errors import RateLimited

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from redis.asyncio import Redis

    from reelhouse.platform.state import AppServices


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    #: Seconds until a denied request may be retried (0 when allowed).
    retry_after: float
    #: Seconds until the bucket is completely refilled.
    reset_after: float


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, period_seconds: float, *, consume: bool = True) -> RateLimitDecision:
        """Count one request against ``key``; with ``consume=False`` only ask whether one would pass."""

    async def reset(self, key: str) -> None:
        """Forget everything counted against ``key``."""


def gcra(
    now: float, tat: float | None, limit: int, period: float, *, consume: bool
) -> tuple[RateLimitDecision, float | None]:
    """One GCRA step; returns the decision and the new TAT to store (``None``: store nothing)."""
    interval = period / limit
    current = max(tat if tat is not None else now, now)
    new_tat = current + interval
    allow_at = new_tat - period
    if now < allow_at:
        return RateLimitDecision(False, limit, 0, allow_at - now, current - now), None
    remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
    decision = RateLimitDecision(True, limit, max(remaining, 0), 0.0, new_tat - now)
    return decision, (new_tat if consume else None)


# Same algorithm as gcra(), run inside Redis with Redis's own clock so every
# instance agrees on time and no two checks interleave.
_GCRA_SCRIPT = """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local consume = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval = period / limit
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored), now) end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, tostring(allow_at - now), tostring(tat - now)}
end
if consume == 1 then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000))
end
local remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
return {1, remaining, '0', tostring(new_tat - now)}
"""


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_GCRA_SCRIPT)

    async def hit(self, key: str, limit: int, period_seconds: float, *, consume: bool = True) -> RateLimitDecision:
        allowed, remaining, retry_after, reset_after = await self._script(
            keys=[f"{self._prefix}:rl:{key}"], args=[limit, period_seconds, 1 if consume else 0]
        )
        return RateLimitDecision(
            allowed=bool(int(allowed)),
            limit=limit,
            remaining=int(remaining),
            retry_after=float(retry_after),
            reset_after=float(reset_after),
        )

    async def reset(self, key: str) -> None:
        await self._redis.delete(f"{self._prefix}:rl:{key}")


class MemoryRateLimiter:
    """In-process twin of :class:`RedisRateLimiter` for a single process.

    Each check runs without an ``await`` between read and write, so it is atomic
    on the event loop.
    """

    _PRUNE_EVERY = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._hits = 0

    async def hit(self, key: str, limit: int, period_seconds: float, *, consume: bool = True) -> RateLimitDecision:
        now = self._clock()
        decision, new_tat = gcra(now, self._tats.get(key), limit, period_seconds, consume=consume)
        if new_tat is not None:
            self._tats[key] = new_tat
        self._hits += 1
        if self._hits % self._PRUNE_EVERY == 0:
            self._prune(now)
        return decision

    async def reset(self, key: str) -> None:
        self._tats.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [key for key, tat in self._tats.items() if tat <= now]:
            del self._tats[key]


# --- the middleware ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    """A named limit: ``limit`` requests per ``period_seconds`` for each caller."""

    name: str
    limit: int
    period_seconds: int = 60


def rate_limit_headers(bucket: Bucket, decision: RateLimitDecision) -> dict[str, str]:
    """The IETF ``RateLimit-Policy`` / ``RateLimit`` fields (structured-field form)."""
    reset = math.ceil(decision.retry_after if not decision.allowed else decision.reset_after)
    return {
        "RateLimit-Policy": f'"{bucket.name}";q={bucket.limit};w={bucket.period_seconds}',
        "RateLimit": f'"{bucket.name}";r={decision.remaining};t={reset}',
    }


class RateLimitMiddleware(ASGIMiddleware):
    """Anonymous callers are limited per client IP, signed-in callers per user, and the
    sign-in routes (``opt={"rate_limit_bucket": "auth"}``) by a stricter per-IP bucket.

    It runs before authentication and only checks the token's signature, so a flood of
    requests costs no database work.
    """

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "exclude_from_rate_limit"

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        services: AppServices = scope["litestar_app"].state.services
        settings = services.settings.rate_limit
        if not settings.enabled:
            await next_app(scope, receive, send)
            return
        bucket, caller = self._bucket_for(scope, services)
        decision = await services.backends.rate_limiter.hit(
            f"{bucket.name}:{caller}", bucket.limit, bucket.period_seconds
        )
        headers = rate_limit_headers(bucket, decision)
        if not decision.allowed:
            raise RateLimited(math.ceil(decision.retry_after), "Too many requests; slow down.", headers=headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((name.lower().encode(), value.encode()) for name, value in headers.items()),
                ]
            await send(message)

        await next_app(scope, receive, send_with_headers)

    @staticmethod
    def _bucket_for(scope: Scope, services: AppServices) -> tuple[Bucket, str]:
        settings = services.settings.rate_limit
        handler_opt = scope["route_handler"].opt
        ip = client_ip(scope, services.settings.server.trusted_proxy_networks)
        if handler_opt.get("rate_limit_bucket") == "auth":
            return Bucket("auth", settings.auth_per_minute), f"ip:{ip}"
        user_id = _signed_in_user(scope, services)
        if user_id is not None:
            # Hash-tagged so a user's keys share a Redis Cluster slot.
            return Bucket("user", settings.user_per_minute), f"{{{user_id}}}"
        return Bucket("anonymous", settings.anonymous_per_minute), f"ip:{ip}"


def _signed_in_user(scope: Scope, services: AppServices) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            try:
                return str(services.token_codec.decode(token.strip()).user_id)
            except InvalidToken:
                return None
    return None
