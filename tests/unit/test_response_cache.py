"""The public response cache on its own: expiry on an explicit clock, its bounds, scopes, the
generation check that keeps a read racing an admin change out, and clearing on commit only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar, get
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from reelhouse.platform.cache import (
    MAX_BODY_BYTES,
    CacheScope,
    PublicCacheMiddleware,
    PublicResponseCache,
    canonical_query,
    public_cache,
    storable_headers,
)
from reelhouse.platform.uow import EventBus, UnitOfWork

JSON = [(b"content-type", b"application/json")]
PLANS_KEY = ("/api/v1/plans", b"")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keep(cache: PublicResponseCache, key: tuple[str, bytes], scope: CacheScope = CacheScope.PLANS) -> bool:
    return cache.store(key, scope, cache.generation(scope), JSON, b'{"plans": []}')


class TestExpiry:
    def test_an_entry_is_served_until_its_ttl_has_passed(self):
        clock = Clock()
        cache = PublicResponseCache(30, clock=clock)
        assert keep(cache, PLANS_KEY)

        clock.now += 29.9
        entry = cache.lookup(PLANS_KEY)
        assert entry is not None
        assert entry.body == b'{"plans": []}'
        assert (b"x-cache", b"hit") in entry.headers

        clock.now += 0.1
        assert cache.lookup(PLANS_KEY) is None
        assert len(cache) == 0

    def test_a_ttl_of_zero_keeps_nothing(self):
        cache = PublicResponseCache(0)

        assert not cache.enabled
        assert not keep(cache, PLANS_KEY)
        assert cache.lookup(PLANS_KEY) is None


class TestBounds:
    def test_past_the_entry_limit_the_oldest_entries_go(self):
        cache = PublicResponseCache(30, max_entries=3)
        keys = [(f"/api/v1/plans/{n}", b"") for n in range(5)]
        for key in keys:
            keep(cache, key)

        assert len(cache) == 3
        assert [cache.lookup(key) is not None for key in keys] == [False, False, True, True, True]

    def test_storing_a_key_again_replaces_it_without_growing(self):
        cache = PublicResponseCache(30, max_entries=2)
        keep(cache, PLANS_KEY)
        keep(cache, PLANS_KEY)

        assert len(cache) == 1

    def test_past_the_byte_limit_the_oldest_entries_go(self):
        body = b"x" * 10_000
        cache = PublicResponseCache(30, max_bytes=25_000)
        for n in range(4):
            cache.store((f"/p/{n}", b""), CacheScope.CATALOG, 0, JSON, body)

        assert len(cache) == 2
        assert cache.size_bytes <= 25_000

    def test_a_body_too_large_is_not_kept(self):
        cache = PublicResponseCache(30)

        assert not cache.store(PLANS_KEY, CacheScope.PLANS, 0, JSON, b"x" * (MAX_BODY_BYTES + 1))


class TestScopes:
    def test_clearing_a_scope_leaves_the_other_alone(self):
        cache = PublicResponseCache(30)
        keep(cache, PLANS_KEY, CacheScope.PLANS)
        keep(cache, ("/api/v1/genres", b""), CacheScope.CATALOG)

        cache.clear(CacheScope.CATALOG)

        assert cache.lookup(PLANS_KEY) is not None
        assert cache.lookup(("/api/v1/genres", b"")) is None

    def test_an_answer_read_before_its_scope_was_cleared_is_refused(self):
        cache = PublicResponseCache(30)
        read_at = cache.generation(CacheScope.PLANS)
        catalog_read_at = cache.generation(CacheScope.CATALOG)

        cache.invalidate(CacheScope.PLANS)  # an admin change commits while the read is under way

        assert not cache.store(PLANS_KEY, CacheScope.PLANS, read_at, JSON, b"old")
        assert cache.lookup(PLANS_KEY) is None
        assert cache.store(("/api/v1/genres", b""), CacheScope.CATALOG, catalog_read_at, JSON, b"[]")


class TestKeysAndHeaders:
    def test_parameters_are_ordered_by_name_and_repeated_names_keep_their_order(self):
        assert canonical_query(b"offset=0&limit=5") == canonical_query(b"limit=5&offset=0") == b"limit=5&offset=0"
        assert canonical_query(b"genre=b&q=x&genre=a") == b"genre=b&genre=a&q=x"
        assert canonical_query(b"") == b""

    def test_per_request_headers_are_not_replayed(self):
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
            (b"x-request-id", b"abc"),
            (b"ratelimit", b'"anonymous";r=5;t=1'),
        ]

        assert storable_headers(headers) == [(b"content-type", b"application/json"), (b"content-length", b"2")]

    @pytest.mark.parametrize(
        "header", [(b"set-cookie", b"a=b"), (b"cache-control", b"no-store"), (b"cache-control", b"private")]
    )
    def test_an_answer_that_asks_not_to_be_shared_is_not_kept(self, header: tuple[bytes, bytes]):
        assert storable_headers([*JSON, header]) is None


class TestMiddlewareRace:
    async def test_a_read_that_started_before_an_invalidation_is_served_but_not_kept(self):
        cache = PublicResponseCache(30)
        reading = asyncio.Event()
        release = asyncio.Event()
        plans = ["Basic"]

        @get("/plans", opt=public_cache(CacheScope.PLANS))
        async def list_plans() -> list[str]:
            snapshot = list(plans)  # what the database returned before the change committed
            reading.set()
            await release.wait()
            return snapshot

        app = Litestar([list_plans], middleware=[PublicCacheMiddleware(cache)])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            slow_read = asyncio.create_task(client.get("/plans"))
            await reading.wait()
            plans.append("Premium")
            cache.invalidate(CacheScope.PLANS)
            release.set()
            stale = await slow_read

            fresh = await client.get("/plans")
            again = await client.get("/plans")

        assert stale.json() == ["Basic"]
        assert fresh.headers["x-cache"] == "miss"
        assert fresh.json() == ["Basic", "Premium"]
        assert again.headers["x-cache"] == "hit"
        assert again.json() == ["Basic", "Premium"]


@pytest.fixture
async def uow() -> AsyncIterator[UnitOfWork]:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        async with AsyncSession(engine) as session:
            yield UnitOfWork(session, EventBus())
    finally:
        await engine.dispose()


class TestInvalidateOnCommit:
    async def test_the_scope_is_cleared_when_the_transaction_commits_not_before(self, uow: UnitOfWork):
        cache = PublicResponseCache(30)
        keep(cache, PLANS_KEY)
        await uow.session.execute(text("SELECT 1"))

        cache.invalidate_on_commit(uow, CacheScope.PLANS)
        assert cache.lookup(PLANS_KEY) is not None

        await uow.commit()
        assert cache.lookup(PLANS_KEY) is None

    async def test_a_rolled_back_change_clears_nothing(self, uow: UnitOfWork):
        cache = PublicResponseCache(30)
        keep(cache, PLANS_KEY)
        await uow.session.execute(text("SELECT 1"))

        cache.invalidate_on_commit(uow, CacheScope.PLANS)
        await uow.rollback()

        assert cache.lookup(PLANS_KEY) is not None

    async def test_a_savepoint_released_inside_the_transaction_does_not_clear_yet(self, uow: UnitOfWork):
        cache = PublicResponseCache(30)
        keep(cache, PLANS_KEY)
        await uow.session.execute(text("SELECT 1"))

        async with uow.session.begin_nested():
            cache.invalidate_on_commit(uow, CacheScope.PLANS)
        assert cache.lookup(PLANS_KEY) is not None

        await uow.commit()
        assert cache.lookup(PLANS_KEY) is None
