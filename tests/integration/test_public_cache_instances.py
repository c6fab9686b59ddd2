"""Two real API processes on one PostgreSQL and one Redis: an admin change made through one
instance clears the other's cached anonymous answers within a second, and what the other
remembers for signed-in routes (titles, a user's entitlement) follows changes made through the
first as quickly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_public_cache import BASIC

from helpers import ok
from servers import emptied_shared_state, running_servers, server_environ

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "public-cache-admin-password-0123"
TEST_TIMEOUT_SECONDS = 60
REQUEST_TIMEOUT_SECONDS = 10
VISIBLE_WITHIN_SECONDS = 1.0
PLANS = "/api/v1/plans"
BASIC_TITLE = {
    "title": "A Basic Film",
    "description": "For subscribers.",
    "access_level": "basic",
    "duration_seconds": 3600,
    "genres": [],
    "video_url": "https://media.example.com/titles/a.m3u8",
    "published": True,
}
GENRES = "/api/v1/genres"


@pytest.fixture
async def shared_prefix(postgres_url: str, redis_url: str, redis_key_prefix: str) -> AsyncIterator[str]:
    """This test's Redis key prefix; the shared database and these keys start empty and are emptied after."""
    async with emptied_shared_state(postgres_url, redis_url, f"{redis_key_prefix}-cache") as prefix:
        yield prefix


@pytest.fixture
def instances(postgres_url: str, redis_url: str, shared_prefix: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    environ = server_environ(
        tmp_path,
        DATABASE_URL=postgres_url,
        DATABASE_MIGRATE_ON_STARTUP="false",  # the test database is migrated already
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=shared_prefix,
        RATE_LIMIT_ENABLED="false",
        ADMIN_EMAIL=ADMIN_EMAIL,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        PUBLIC_CACHE_SECONDS="300",  # far longer than the test: only the invalidation can clear it
    )
    with running_servers(environ, 2, tmp_path) as (first, second):
        yield first, second


async def cached(client: httpx.AsyncClient, url: str) -> Any:
    """Read ``url`` anonymously until it is served from the instance's memory; its body."""
    ok(await client.get(url))
    response = await client.get(url)
    assert response.headers["x-cache"] == "hit"
    return ok(response)


async def seconds_until(check: Callable[[], Awaitable[bool]], limit: float) -> float:
    """How long until ``check()`` holds, polling; fails once ``limit`` has passed."""
    started = time.monotonic()
    while not await check():
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"not seen within {limit} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_an_admin_change_through_one_instance_clears_the_others_cache(instances: tuple[str, str]):
    first, second = instances
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as client, asyncio.timeout(TEST_TIMEOUT_SECONDS):
        login = ok(
            await client.post(f"{first}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        )
        admin = {"Authorization": f"Bearer {login['token']}"}
        assert (await cached(client, f"{second}{PLANS}"))["plans"] == []
        assert (await cached(client, f"{second}{GENRES}"))["genres"] == []

        ok(await client.post(f"{first}/api/v1/admin/plans", json=BASIC, headers=admin), 201)

        async def second_lists_the_plan() -> bool:
            return [plan["name"] for plan in ok(await client.get(f"{second}{PLANS}"))["plans"]] == ["Basic"]

        plan_seen_after = await seconds_until(second_lists_the_plan, VISIBLE_WITHIN_SECONDS)
        # The catalog is another scope: still served from memory on the second instance.
        assert (await client.get(f"{second}{GENRES}")).headers["x-cache"] == "hit"

        genre = {"slug": "drama", "name": "Drama"}
        ok(await client.post(f"{first}/api/v1/admin/genres", json=genre, headers=admin), 201)

        async def second_lists_the_genre() -> bool:
            return [g["slug"] for g in ok(await client.get(f"{second}{GENRES}"))["genres"]] == ["drama"]

        genre_seen_after = await seconds_until(second_lists_the_genre, VISIBLE_WITHIN_SECONDS)

    assert plan_seen_after < VISIBLE_WITHIN_SECONDS
    assert genre_seen_after < VISIBLE_WITHIN_SECONDS


async def test_titles_and_entitlements_remembered_by_one_instance_follow_changes_through_the_other(
    instances: tuple[str, str],
):
    first, second = instances
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as client, asyncio.timeout(TEST_TIMEOUT_SECONDS):
        login = ok(
            await client.post(f"{first}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        )
        admin = {"Authorization": f"Bearer {login['token']}"}
        plan = ok(await client.post(f"{first}/api/v1/admin/plans", json=BASIC, headers=admin), 201)
        title = ok(await client.post(f"{first}/api/v1/admin/content", json=BASIC_TITLE, headers=admin), 201)
        viewer_login = {"email": "viewer@example.com", "password": "viewer-password-0123456789"}
        ok(await client.post(f"{first}/api/v1/auth/register", json={**viewer_login, "name": "Viewer"}), 201)
        viewer = {
            "Authorization": f"Bearer {ok(await client.post(f'{first}/api/v1/auth/login', json=viewer_login))['token']}"
        }
        progress = {"content_id": title["id"], "watched_seconds": 600}

        async def second_answers(code: str | None) -> bool:
            """Whether the second instance now answers the viewer's progress report as expected."""
            response = await client.post(f"{second}/api/v1/watch-history", json=progress, headers=viewer)
            return (response.json().get("code") if response.status_code >= 400 else None) == code

        # The second instance now remembers the title (basic) and the viewer's entitlement (free).
        assert await second_answers("plan_required")

        ok(await client.post(f"{first}/api/v1/subscriptions", json={"plan_id": plan["id"]}, headers=viewer), 201)
        subscription_seen_after = await seconds_until(lambda: second_answers(None), VISIBLE_WITHIN_SECONDS)

        patch = {"access_level": "premium"}
        ok(await client.patch(f"{first}/api/v1/admin/content/{title['id']}", json=patch, headers=admin))
        title_seen_after = await seconds_until(lambda: second_answers("plan_required"), VISIBLE_WITHIN_SECONDS)

    assert subscription_seen_after < VISIBLE_WITHIN_SECONDS
    assert title_seen_after < VISIBLE_WITHIN_SECONDS
