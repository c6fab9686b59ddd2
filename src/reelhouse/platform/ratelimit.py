"""Rate limiting with GCRA (the generic cell rate algorithm).

A limit is "``limit`` requests per ``period_seconds``", allowing a burst of
``limit`` at once and then one request every ``period / limit`` seconds. The
state per key is a single number, the theoretical arrival time (TAT).

Two limiters share one interface and one contract test suite:
:class:`RedisRateLimiter` (one Lua script per check, so it is atomic across
every API instance) and :class:`MemoryRateLimiter` for the embedded default.

Time is counted in whole microseconds on both sides. Seconds as floats would
lose the low digits of an epoch-sized clock (Redis's), so a burst at one instant
could admit one request too few or too many and ``remaining`` would be off by one.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING, Protocol

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from redis.exceptions import RedisClusterException, RedisError

from reelhouse.platform.client_ip import client_ip, parse_address
from reelhouse.platform.errors import DomainError, RateLimited

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from reelhouse.config import RateLimitSettings
    from reelhouse.platform.redis_connection import RedisClient

MICROSECONDS = 1_000_000


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


@dataclass(frozen=True, slots=True)
class GcraRate:
    """A limit in the integer microseconds both implementations compute with."""

    limit: int
    #: Microseconds one request adds to the TAT (``period / limit``, rounded).
    interval: int
    #: How far the TAT may run ahead of now and still admit a request: ``limit - 1`` intervals.
    tolerance: int

    @classmethod
    def of(cls, limit: int, period_seconds: float) -> GcraRate:
        if limit < 1 or period_seconds <= 0:
            raise ValueError(f"a rate limit needs limit >= 1 and a positive period, not {limit}/{period_seconds}s")
        period = round(period_seconds * MICROSECONDS)
        interval = max(1, (period + limit // 2) // limit)
        return cls(limit, interval, interval * (limit - 1))


def gcra(now: int, tat: int | None, rate: GcraRate, *, consume: bool) -> tuple[RateLimitDecision, int | None]:
    """One GCRA step at ``now`` (microseconds) against the stored ``tat``.

    Returns the decision and the TAT to store (``None``: store nothing). A denied
    request stores nothing, so hammering a closed bucket does not keep it closed.
    """
    ahead = max(tat if tat is not None else now, now) - now
    if ahead > rate.tolerance:
        retry_after = ahead - rate.tolerance
        return RateLimitDecision(False, rate.limit, 0, retry_after / MICROSECONDS, ahead / MICROSECONDS), None
    new_ahead = ahead + rate.interval
    remaining = (rate.tolerance - ahead) // rate.interval
    decision = RateLimitDecision(True, rate.limit, remaining, 0.0, new_ahead / MICROSECONDS)
    return decision, (now + new_ahead if consume else None)


# Same arithmetic as gcra(), run inside Redis on Redis's own clock so every instance
# agrees on time and no two checks interleave. Every number is a whole count of
# microseconds below 2^53, so Lua's doubles hold them exactly; '%.0f' writes them
# back in full (tostring() would keep only 14 significant digits).
_GCRA_SCRIPT = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local consume = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local ahead = math.max(tat, now) - now
if ahead > tolerance then
  return {0, 0, ahead - tolerance, ahead}
end
local new_ahead = ahead + interval
if consume == 1 then
  redis.call('SET', KEYS[1], string.format('%.0f', now + new_ahead), 'PX', math.ceil(new_ahead / 1000))
end
return {1, math.floor((tolerance - ahead) / interval), 0, new_ahead}
"""


class RedisRateLimiter:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_GCRA_SCRIPT)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:rl:{key}"

    async def hit(self, key: str, limit: int, period_seconds: float, *, consume: bool = True) -> RateLimitDecision:
        rate = GcraRate.of(limit, period_seconds)
        allowed, remaining, retry_after, reset_after = await self._script(
            keys=[self._key(key)], args=[rate.interval, rate.tolerance, 1 if consume else 0]
        )
        return RateLimitDecision(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            retry_after=int(retry_after) / MICROSECONDS,
            reset_after=int(reset_after) / MICROSECONDS,
        )

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._key(key))


class MemoryRateLimiter:
    """In-process twin of :class:`RedisRateLimiter` for a single process.

    Each check runs without an ``await`` between read and write, so it is atomic
    on the event loop. ``clock`` returns seconds (monotonic); tests may inject one.
    """

    _PRUNE_EVERY = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._hits = 0

    async def hit(self, key: str, limit: int, period_seconds: float, *, consume: bool = True) -> RateLimitDecision:
        rate = GcraRate.of(limit, period_seconds)
        now = round(self._clock() * MICROSECONDS)
        decision, new_tat = gcra(now, self._tats.get(key), rate, consume=consume)
        if new_tat is not None:
            self._tats[key] = new_tat
        self._hits += 1
        if self._hits % self._PRUNE_EVERY == 0:
            self._prune(now)
        return decision

    async def reset(self, key: str) -> None:
        self._tats.pop(key, None)

    def _prune(self, now: int) -> None:
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
    """Anonymous callers are limited per client IP (IPv6: per /64), signed-in callers per user,
    the sign-in routes (``opt={"rate_limit_bucket": "auth"}``) by a stricter per-IP bucket, and
    the readiness probe (``"probe"``), which queries the database and Redis, by its own per-IP bucket.

    It runs before authentication and only checks the token's signature, so a flood of
    requests costs no database work.
    """

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "exclude_from_rate_limit"

    def __init__(
        self,
        limiter: RateLimiter,
        settings: RateLimitSettings,
        trusted_proxies: Sequence[IPv4Network | IPv6Network],
        user_of_token: Callable[[str], str | None],
    ) -> None:
        self._limiter = limiter
        self._settings = settings
        self._trusted_proxies = trusted_proxies
        #: The user id a bearer token names when its signature verifies, else None.
        self._user_of_token = user_of_token

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not self._settings.enabled:
            await next_app(scope, receive, send)
            return
        bucket, caller = self._bucket_for(scope)
        try:
            decision = await self._limiter.hit(f"{bucket.name}:{caller}", bucket.limit, bucket.period_seconds)
        except (RedisError, RedisClusterException, OSError) as exc:
            # Fail open: a limiter outage must not take the whole API down with it
            # (/ready reports Redis as down meanwhile).
            logger.warning("rate limiter unavailable (%s); request let through", type(exc).__name__)
            await next_app(scope, receive, send)
            return
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

        try:
            await next_app(scope, receive, send_with_headers)
        except (DomainError, HTTPException) as exc:
            # Refused before its handler (a bad token): the framework's outer handler answers
            # with the original send, so the fields have to travel on the exception.
            exc.headers = {**headers, **(exc.headers or {})}
            raise

    def _bucket_for(self, scope: Scope) -> tuple[Bucket, str]:
        settings = self._settings
        handler_opt = scope["route_handler"].opt
        ip = caller_network(client_ip(scope, self._trusted_proxies))
        if handler_opt.get("rate_limit_bucket") == "auth":
            return Bucket("auth", settings.auth_per_minute), f"ip:{ip}"
        if handler_opt.get("rate_limit_bucket") == "probe":
            return Bucket("probe", settings.probe_per_minute), f"ip:{ip}"
        user_id = self._signed_in_user(scope)
        if user_id is not None:
            # Hash-tagged so a user's keys share a Redis Cluster slot.
            return Bucket("user", settings.user_per_minute), f"{{{user_id}}}"
        return Bucket("anonymous", settings.anonymous_per_minute), f"ip:{ip}"

    def _signed_in_user(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                return self._user_of_token(token.strip())
        return None


def caller_network(ip: str) -> str:
    """What an anonymous caller is counted as: its IPv4 address, or its whole IPv6 /64.

    One IPv6 subscriber line usually gets a /64, so counting single addresses would let a
    caller rotate through billions of them.
    """
    address = parse_address(ip)
    if isinstance(address, IPv6Address):
        return str(IPv6Network((address, 64), strict=False))
    return str(address) if address is not None else ip
