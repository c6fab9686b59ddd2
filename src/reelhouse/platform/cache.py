"""Anonymous public reads (plans, catalog) answered from memory, cleared on every admin change.

Each instance keeps its own :class:`PublicResponseCache`: the status-200 answers of GET
handlers that opt in with ``opt=public_cache(CacheScope...)``, keyed by path and query
string, for ``PUBLIC_CACHE_SECONDS``. :class:`PublicCacheMiddleware` answers a repeated
anonymous request straight from it, so no dependency, database session or serialisation
runs. Requests carrying an ``Authorization`` header are never answered from it nor stored.

An admin change clears its scope once its transaction commits
(:meth:`PublicResponseCache.invalidate_on_commit`): here at once, and on every other instance
through :mod:`reelhouse.platform.invalidation`. Clearing before the commit would let a reader re-cache the old rows; and
a reader that read the old rows but finishes after the clear is refused by the scope's
generation, which it captured before it read. What changes with time or watching (trending,
popular) is as stale as the TTL at most.
"""

from __future__ import annotations

import enum
import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from prometheus_client import Counter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from reelhouse.platform.invalidation import Invalidations
    from reelhouse.platform.uow import UnitOfWork

#: The route handler ``opt`` key naming the scope a handler's answers belong to.
PUBLIC_CACHE_OPT = "public_cache_scope"
MAX_ENTRIES = 2_000
#: All bodies together; an anonymous caller walking through pages cannot grow the cache past it.
MAX_BYTES = 64 * 1024 * 1024
#: Larger answers are served but not kept.
MAX_BODY_BYTES = 1024 * 1024
#: Requests with a longer query string are passed through and not kept.
MAX_QUERY_BYTES = 512
#: Bookkeeping counted against MAX_BYTES per entry besides its body.
ENTRY_OVERHEAD_BYTES = 512

#: Headers other layers add to every answer (request id, rate limit fields): never stored.
_PER_REQUEST_HEADERS = frozenset(
    {b"x-request-id", b"ratelimit", b"ratelimit-policy", b"retry-after", b"date", b"server", b"x-cache"}
)
_HIT_HEADER = (b"x-cache", b"hit")
_MISS_HEADER = (b"x-cache", b"miss")

LOOKUPS = Counter(
    "reelhouse_public_cache_lookups",
    "Anonymous public reads looked up in the response cache, by result (hits skip the HTTP metrics).",
    labelnames=["result"],
)
_HITS = LOOKUPS.labels(result="hit")
_MISSES = LOOKUPS.labels(result="miss")


class CacheScope(enum.StrEnum):
    """What an admin change clears: every cached answer that may show it."""

    PLANS = "plans"
    CATALOG = "catalog"


def public_cache(scope: CacheScope) -> dict[str, Any]:
    """A GET handler's ``opt`` making its anonymous answers cacheable under ``scope``.

    Only for answers that are the same for every anonymous caller; signed-in callers always
    reach the handler.
    """
    return {PUBLIC_CACHE_OPT: scope}


CacheKey = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class CachedResponse:
    scope: CacheScope
    #: The handler's headers, ``X-Cache: hit`` included.
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    expires_at: float

    @property
    def size(self) -> int:
        return len(self.body) + ENTRY_OVERHEAD_BYTES


def canonical_query(query_string: bytes) -> bytes:
    """The query string with its parameters ordered by name (values of one name keep their order)."""
    if b"&" not in query_string:
        return query_string
    parameters = query_string.split(b"&")
    parameters.sort(key=_parameter_name)  # stable: values of one name keep their order
    return b"&".join(parameters)


def _parameter_name(parameter: bytes) -> bytes:
    return parameter.partition(b"=")[0]


class PublicResponseCache:
    """This instance's cached anonymous answers; ``ttl_seconds`` 0 turns it off."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: dict[CacheKey, CachedResponse] = {}
        self._bytes = 0
        self._generations = dict.fromkeys(CacheScope, 0)
        self._invalidations: Invalidations | None = None

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    # reading and filling

    def lookup(self, key: CacheKey) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            self._drop(key)
            return None
        return entry

    def generation(self, scope: CacheScope) -> int:
        """Capture before reading what will be stored: :meth:`store` refuses it if ``scope`` was cleared since."""
        return self._generations[scope]

    def store(
        self,
        key: CacheKey,
        scope: CacheScope,
        generation: int,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
    ) -> bool:
        """Keep a status-200 answer; ``False`` when it is not kept (off, too large, or read before a clear)."""
        if not self.enabled or generation != self._generations[scope] or len(body) > MAX_BODY_BYTES:
            return False
        entry = CachedResponse(scope, (*headers, _HIT_HEADER), body, self._clock() + self.ttl_seconds)
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))  # the oldest: dicts keep insertion order
        return True

    def _drop(self, key: CacheKey) -> None:
        self._bytes -= self._entries.pop(key).size

    # clearing

    def clear(self, scope: CacheScope) -> None:
        """Forget ``scope`` on this instance only, and refuse answers read before now."""
        self._generations[scope] += 1
        for key in [key for key, entry in self._entries.items() if entry.scope is scope]:
            self._drop(key)

    def invalidate(self, scope: CacheScope) -> None:
        """Forget ``scope`` here at once, and on every other instance as soon as they hear of it."""
        if self._invalidations is None:
            self.clear(scope)
        else:
            self._invalidations.changed(scope.value)

    def invalidate_on_commit(self, uow: UnitOfWork, scope: CacheScope) -> None:
        """Invalidate ``scope`` once ``uow`` commits (not at all if it never does)."""
        uow.after_commit(lambda: self.invalidate(scope))

    def follow(self, invalidations: Invalidations) -> None:
        """Hear of every change to the scopes, made here or on another instance."""
        self._invalidations = invalidations
        for scope in CacheScope:
            invalidations.on(scope.value, functools.partial(self._changed, scope))

    def _changed(self, scope: CacheScope, _key: str | None) -> None:
        self.clear(scope)

    def clear_all(self) -> None:
        for scope in CacheScope:
            self.clear(scope)


class PublicCacheMiddleware(ASGIMiddleware):
    """Answers anonymous GETs of handlers marked with :func:`public_cache` from the cache, and fills it.

    It sits inside the request id and rate limit middleware (a cached answer still counts
    against the caller's limit and gets its request id) and outside authentication.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, cache: PublicResponseCache) -> None:
        self.cache = cache

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        cache_scope: CacheScope | None = scope["route_handler"].opt.get(PUBLIC_CACHE_OPT)
        query_string: bytes = scope["query_string"]
        if (
            cache_scope is None
            or not self.cache.enabled
            or scope["method"] != "GET"  # type: ignore[typeddict-item]
            or len(query_string) > MAX_QUERY_BYTES
            or any(name == b"authorization" for name, _ in scope["headers"])
        ):
            await next_app(scope, receive, send)
            return
        key = (scope["path"], canonical_query(query_string))
        entry = self.cache.lookup(key)
        if entry is not None:
            _HITS.inc()
            await send({"type": "http.response.start", "status": 200, "headers": list(entry.headers)})
            await send({"type": "http.response.body", "body": entry.body, "more_body": False})
            return
        _MISSES.inc()
        await self._answer_and_keep(scope, receive, send, next_app, key=key, cache_scope=cache_scope)

    async def _answer_and_keep(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
        *,
        key: CacheKey,
        cache_scope: CacheScope,
    ) -> None:
        generation = self.cache.generation(cache_scope)
        kept_headers: list[tuple[bytes, bytes]] | None = None
        chunks: list[bytes] = []
        size = 0
        complete = False

        async def keep(message: Message) -> None:
            nonlocal kept_headers, size, complete
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if message["status"] == 200:
                    kept_headers = storable_headers(headers)
                message["headers"] = [*headers, _MISS_HEADER]
            elif message["type"] == "http.response.body" and kept_headers is not None and not complete:
                body = message.get("body", b"")
                size += len(body)
                if size > MAX_BODY_BYTES:
                    kept_headers = None
                else:
                    chunks.append(body)
                    complete = not message.get("more_body", False)
                    if complete:
                        # Kept before the last part goes out: a client that sends its next request
                        # the moment this answer is complete must find it.
                        self.cache.store(key, cache_scope, generation, kept_headers, b"".join(chunks))
            await send(message)

        await next_app(scope, receive, keep)


def storable_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    """The headers to replay on a hit; ``None`` when the answer must not be kept at all."""
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"set-cookie" or (lowered == b"cache-control" and (b"no-store" in value or b"private" in value)):
            return None
        if lowered not in _PER_REQUEST_HEADERS:
            kept.append((name, value))
    return kept
