"""Helpers for catalog and watch-history tests: titles and genres through the admin API,
subscriptions and backdated viewings straight in the database (their own APIs are tested elsewhere).

Direct database work uses its own short-lived engine: the test client runs the app on another
event loop, and asyncpg connections cannot move between loops.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import build_settings
from helpers import ADMIN_EMAIL, PASSWORD, auth, in_app_loop, login, register, session_scope
from reelhouse.media import read_manifest
from reelhouse.plans.models import AccessLevel, Plan, Resolution
from reelhouse.platform.db import build_sqlalchemy_config
from reelhouse.platform.uow import UnitOfWorkFactory
from reelhouse.playback.models import WatchHistory
from reelhouse.subscriptions.models import Subscription, SubscriptionStatus
from reelhouse.wiring import Components

Client = AsyncTestClient[Any]

ADMIN_CONTENT = "/api/v1/admin/content"
ADMIN_GENRES = "/api/v1/admin/genres"
CONTENT = "/api/v1/content"
HISTORY = "/api/v1/watch-history"

_emails = itertools.count(1)


class Person:
    """A signed-in user: ``id`` and ``headers`` for requests."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.id = uuid.UUID(body["user"]["id"])
        self.token: str = body["token"]
        self.headers = auth(self.token)


async def new_user(client: Client, name: str = "viewer") -> Person:
    return Person(await register(client, email=f"{name}{next(_emails)}@example.com", name=name))


async def new_admin(client: Client) -> Person:
    components = client.app.state.components
    config = build_sqlalchemy_config(components.settings)
    try:
        async with UnitOfWorkFactory(config, components.events).begin() as uow:
            await components.accounts(uow).ensure_admin(ADMIN_EMAIL, PASSWORD)
    finally:
        await config.get_engine().dispose()
    return Person(await login(client, ADMIN_EMAIL, PASSWORD))


@asynccontextmanager
async def database(client: Client) -> AsyncIterator[AsyncSession]:
    """A session on the test's database (committed at the end), on this event loop. The app
    hears of no change made this way, so it forgets the titles and entitlements it remembers."""
    components = client.app.state.components
    config = build_sqlalchemy_config(components.settings)
    try:
        async with session_scope(config) as session:
            yield session
    finally:
        await config.get_engine().dispose()
        components.titles.forget_all()
        components.entitlement_memory.forget(None)


async def create_genre(client: Client, admin: Person, slug: str, name: str | None = None) -> dict[str, Any]:
    response = await client.post(ADMIN_GENRES, json={"slug": slug, "name": name or slug.title()}, headers=admin.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def title_fields(**overrides: Any) -> dict[str, Any]:
    """A valid title body: a free, published, one-hour film."""
    fields: dict[str, Any] = {
        "title": "A Film",
        "description": "A film about things.",
        "access_level": "free",
        "duration_seconds": 3600,
        "credits_start_seconds": None,
        "genres": [],
        "release_year": 2020,
        "thumbnail_url": "https://img.example.com/a.jpg",
        "trailer_url": "https://media.example.com/trailers/a.m3u8",
        "video_url": "https://media.example.com/titles/a.m3u8",
        "published": True,
    }
    fields.update(overrides)
    return fields


async def create_title(client: Client, admin: Person, *, media: bool = True, **overrides: Any) -> dict[str, Any]:
    """A title through the admin API; a published one plays the run's shared test media unless ``media=False``."""
    response = await client.post(ADMIN_CONTENT, json=title_fields(**overrides), headers=admin.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    if media and body["published"]:
        give_shared_media(client, body["id"])
        response = await client.get(f"{CONTENT}/{body['id']}", headers=admin.headers)
        assert response.status_code == 200, response.text
        body = response.json()
    return body


async def give_stored_media(database_url: str, content_id: str, directory: Path) -> None:
    """As :func:`give_shared_media`, for a title made through real server processes: in their database."""
    components = Components(build_settings(DATABASE_URL=database_url))
    try:
        async with components.units.begin() as uow:
            media = components.media(uow)
            asset = await media.register(str(directory), read_manifest(directory))
            await media.share(uuid.UUID(content_id), asset.id)
    finally:
        await components.db_config.get_engine().dispose()
        await components.close()


def give_shared_media(client: Client, content_id: str) -> str:
    """Point a title at the run's shared processed clip (transcoded once per run); the asset's id."""
    return give_media(client, content_id, client.app.state.test_media.directory())


def give_media(client: Client, content_id: str, directory: Path, key: str | None = None) -> str:
    """Record processed media in ``directory`` as an asset (stored under ``key``, by default the
    directory itself) and make it the title's media, as a finished media job does; the asset's id."""
    components = client.app.state.components

    async def attach() -> str:
        async with components.units.begin() as uow:
            media = components.media(uow)
            asset = await media.register(key or str(directory), read_manifest(directory))
            await media.share(uuid.UUID(content_id), asset.id)
            return str(asset.id)

    return in_app_loop(client, attach)


async def report(client: Client, person: Person, content_id: str, watched_seconds: float) -> dict[str, Any]:
    response = await client.post(
        HISTORY, json={"content_id": content_id, "watched_seconds": watched_seconds}, headers=person.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def subscribe(client: Client, user_id: uuid.UUID, access_level: str) -> uuid.UUID:
    """Give the user a current subscription to a new plan of ``access_level``; returns its id."""
    now = datetime.now(UTC)
    async with database(client) as session:
        plan = _plan(access_level)
        session.add(plan)
        await session.flush()
        subscription = Subscription(
            user_id=user_id,
            plan_id=plan.id,
            status=SubscriptionStatus.ACTIVE,
            start_date=now - timedelta(days=1),
            end_date=now + timedelta(days=29),
        )
        session.add(subscription)
        await session.flush()
        return subscription.id


async def change_plan(client: Client, user_id: uuid.UUID, access_level: str) -> None:
    """Move the user's current subscription to a new plan of ``access_level`` (a downgrade, say)."""
    async with database(client) as session:
        plan = _plan(access_level)
        session.add(plan)
        await session.flush()
        subscription = await session.scalar(select(Subscription).where(Subscription.user_id == user_id))
        assert subscription is not None
        subscription.plan_id = plan.id


async def backdate_viewing(client: Client, user_id: uuid.UUID, content_id: str, days: float) -> None:
    """Pretend the user last watched the title ``days`` ago."""
    async with database(client) as session:
        await session.execute(
            update(WatchHistory)
            .where(WatchHistory.user_id == user_id, WatchHistory.content_id == uuid.UUID(content_id))
            .values(last_watched_at=datetime.now(UTC) - timedelta(days=days))
        )


def _plan(access_level: str) -> Plan:
    return Plan(
        name=f"{access_level} {uuid.uuid4().hex[:8]}",
        price=999,
        currency="USD",
        validity_days=30,
        access_level=AccessLevel(access_level),
        max_devices_allowed=2,
        resolution=Resolution.HD_720P,
        description="",
    )


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def titles(items: list[dict[str, Any]]) -> list[str]:
    return [item["title"] for item in items]
