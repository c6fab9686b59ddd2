"""Watch history: recording progress under the plan's entitlement, the two lists, editing and hiding entries."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest
from catalog_helpers import (
    ADMIN_CONTENT,
    HISTORY,
    change_plan,
    create_title,
    new_admin,
    new_user,
    report,
    subscribe,
    titles,
)
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from conftest import build_settings
from helpers import send_concurrently
from reelhouse.app import create_app
from reelhouse.catalog.models import Content
from reelhouse.platform.db import build_sqlalchemy_config
from reelhouse.platform.uow import EventBus, UnitOfWork, UnitOfWorkFactory
from reelhouse.playback.history import WatchHistoryService

CONTINUE = f"{HISTORY}/continue-watching"
ENTRY_KEYS = {
    "id",
    "user_id",
    "content_id",
    "content",
    "watched_seconds",
    "total_seconds",
    "progress_percent",
    "resume_position_seconds",
    "status",
    "play_count",
    "completed_at",
    "last_watched_at",
    "accessible",
    "created_at",
    "updated_at",
}


def listed(body: dict[str, Any], key: str) -> list[str]:
    return titles([item["content"] for item in body[key]])


class TestRecording:
    async def test_first_report_creates_the_entry_and_later_ones_update_it(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin, duration_seconds=3600)

        created = await client.post(
            HISTORY, json={"content_id": film["id"], "watched_seconds": 600}, headers=user.headers
        )
        updated = await client.post(
            HISTORY, json={"content_id": film["id"], "watched_seconds": 1200.7}, headers=user.headers
        )

        # 200 for both, as the seed API answers its "create or update".
        assert created.status_code == 200, created.text
        assert updated.status_code == 200, updated.text
        first, second = created.json(), updated.json()
        assert set(first) == ENTRY_KEYS
        assert second["id"] == first["id"]
        assert first["user_id"] == str(user.id)
        assert (first["status"], first["watched_seconds"], first["total_seconds"]) == ("started", 600, 3600)
        assert (second["status"], second["watched_seconds"], second["resume_position_seconds"]) == (
            "paused",
            1200,
            1200,
        )
        assert second["progress_percent"] == pytest.approx(33.3)
        assert (second["play_count"], second["completed_at"], second["accessible"]) == (0, None, True)
        assert second["content"]["title"] == film["title"]
        assert "video_url" not in second["content"]

    async def test_positions_past_the_end_are_taken_as_the_end(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin, duration_seconds=3600)

        entry = await report(client, user, film["id"], 99_999)

        assert (entry["watched_seconds"], entry["progress_percent"], entry["status"]) == (3600, 100.0, "completed")
        assert entry["play_count"] == 1
        assert entry["completed_at"] is not None

    @pytest.mark.parametrize("watched_seconds", [-1, "ten", None])
    async def test_a_bad_position_is_rejected(self, client, watched_seconds):
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin)

        response = await client.post(
            HISTORY, json={"content_id": film["id"], "watched_seconds": watched_seconds}, headers=user.headers
        )

        assert response.status_code == 422
        assert "watched_seconds" in {error["field"] for error in response.json()["errors"]}

    async def test_unknown_and_unpublished_titles_are_not_found(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        draft = await create_title(client, admin, published=False)

        for content_id in (draft["id"], "00000000-0000-0000-0000-000000000000"):
            response = await client.post(
                HISTORY, json={"content_id": content_id, "watched_seconds": 10}, headers=user.headers
            )
            assert response.status_code == 404

    async def test_watch_history_needs_a_signed_in_user(self, client):
        assert (await client.get(HISTORY)).status_code == 401
        assert (await client.get(CONTINUE)).status_code == 401
        response = await client.post(
            HISTORY, json={"content_id": "00000000-0000-0000-0000-000000000000", "watched_seconds": 1}
        )
        assert response.status_code == 401


class TestEntitlement:
    async def test_a_user_without_a_plan_records_free_titles_but_not_premium_ones(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        free = await create_title(client, admin, title="Free", access_level="free")
        premium = await create_title(client, admin, title="Premium", access_level="premium")

        allowed = await client.post(
            HISTORY, json={"content_id": free["id"], "watched_seconds": 60}, headers=user.headers
        )
        refused = await client.post(
            HISTORY, json={"content_id": premium["id"], "watched_seconds": 60}, headers=user.headers
        )

        assert allowed.status_code == 200
        assert refused.status_code == 403
        assert refused.json()["code"] == "plan_required"
        assert refused.json()["required_access_level"] == "premium"
        assert listed((await client.get(HISTORY, headers=user.headers)).json(), "watch_history") == ["Free"]

    @pytest.mark.parametrize(
        ("plan", "content", "status"),
        [("basic", "basic", 200), ("basic", "premium", 403), ("premium", "premium", 200), ("premium", "basic", 200)],
    )
    async def test_the_plan_decides_which_titles_may_be_recorded(self, client, plan, content, status):
        admin = await new_admin(client)
        user = await new_user(client)
        await subscribe(client, user.id, plan)
        title = await create_title(client, admin, access_level=content)

        response = await client.post(
            HISTORY, json={"content_id": title["id"], "watched_seconds": 60}, headers=user.headers
        )

        assert response.status_code == status

    async def test_after_a_downgrade_titles_stay_listed_but_not_as_playable(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        await subscribe(client, user.id, "premium")
        premium = await create_title(client, admin, title="Premium", access_level="premium")
        free = await create_title(client, admin, title="Free", access_level="free")
        await report(client, user, premium["id"], 600)
        await report(client, user, free["id"], 600)

        await change_plan(client, user.id, "basic")

        history = (await client.get(HISTORY, headers=user.headers)).json()["watch_history"]
        resumable = (await client.get(CONTINUE, headers=user.headers)).json()["continue_watching"]
        assert {item["content"]["title"]: item["accessible"] for item in history} == {"Free": True, "Premium": False}
        assert {item["content"]["title"]: item["accessible"] for item in resumable} == {"Free": True, "Premium": False}
        entry_id = next(item["id"] for item in history if item["content"]["title"] == "Premium")
        refused = await client.put(f"{HISTORY}/{entry_id}", json={"watched_seconds": 900}, headers=user.headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "plan_required"


class TestLists:
    async def test_recently_watched_is_most_recent_first_and_pages(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        films = [await create_title(client, admin, title=name) for name in ("A", "B", "C")]
        for film in films:
            await report(client, user, film["id"], 600)
        await report(client, user, films[0]["id"], 700)  # A again: now the most recent

        body = (await client.get(HISTORY, headers=user.headers)).json()
        page = (await client.get(HISTORY, params={"limit": 1, "offset": 1}, headers=user.headers)).json()

        assert listed(body, "watch_history") == ["A", "C", "B"]
        assert (body["total"], body["limit"], body["offset"]) == (3, 20, 0)
        assert listed(page, "watch_history") == ["C"]
        assert page["total"] == 3
        past_the_end = (await client.get(HISTORY, params={"offset": 5}, headers=user.headers)).json()
        assert (listed(past_the_end, "watch_history"), past_the_end["total"]) == ([], 3)
        assert (await client.get(HISTORY, params={"limit": 500}, headers=user.headers)).status_code == 422

    async def test_continue_watching_holds_only_resumable_unfinished_titles(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        barely = await create_title(client, admin, title="Barely Started", duration_seconds=6000)
        midway = await create_title(client, admin, title="Midway", duration_seconds=6000)
        finished = await create_title(client, admin, title="Finished", duration_seconds=6000)
        in_credits = await create_title(
            client, admin, title="In The Credits", duration_seconds=6000, credits_start_seconds=5000
        )
        short = await create_title(client, admin, title="Short", duration_seconds=240)
        later = await create_title(client, admin, title="Later", duration_seconds=6000)
        await report(client, user, barely["id"], 200)  # 3.3 %
        await report(client, user, midway["id"], 3000)
        await report(client, user, finished["id"], 5400)  # 90 %
        await report(client, user, in_credits["id"], 5100)  # 85 %, past the credits
        await report(client, user, short["id"], 120)  # 50 % of a short
        await report(client, user, later["id"], 1000)

        body = (await client.get(CONTINUE, headers=user.headers)).json()
        history = (await client.get(HISTORY, headers=user.headers)).json()

        assert listed(body, "continue_watching") == ["Later", "Midway"]
        assert body["total"] == 2
        assert body["continue_watching"][0]["resume_position_seconds"] == 1000
        statuses = {item["content"]["title"]: item["status"] for item in history["watch_history"]}
        assert statuses["Finished"] == statuses["In The Credits"] == "completed"
        resume_points = {item["content"]["title"]: item["resume_position_seconds"] for item in history["watch_history"]}
        assert resume_points["Barely Started"] == resume_points["Short"] == 0
        assert history["total"] == 6

    async def test_replaying_a_finished_title_keeps_it_finished(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin, duration_seconds=6000)
        finished = await report(client, user, film["id"], 5900)

        replayed = await report(client, user, film["id"], 1500)

        assert replayed["status"] == "completed"
        assert replayed["completed_at"] == finished["completed_at"]
        assert replayed["play_count"] == finished["play_count"] == 1
        assert (replayed["watched_seconds"], replayed["resume_position_seconds"]) == (1500, 1500)
        assert (await client.get(CONTINUE, headers=user.headers)).json()["continue_watching"] == []

        rewatched = await report(client, user, film["id"], 5950)
        assert rewatched["play_count"] == 2

    async def test_a_title_taken_down_leaves_the_lists(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin, title="Gone")
        await report(client, user, film["id"], 600)

        await client.patch(f"{ADMIN_CONTENT}/{film['id']}", json={"published": False}, headers=admin.headers)

        assert (await client.get(HISTORY, headers=user.headers)).json()["watch_history"] == []
        assert (await client.get(CONTINUE, headers=user.headers)).json()["continue_watching"] == []

    async def test_each_user_sees_only_their_own_history(self, client):
        admin = await new_admin(client)
        ada, bob = await new_user(client, "ada"), await new_user(client, "bob")
        film = await create_title(client, admin, title="Ada's")
        await report(client, ada, film["id"], 600)

        assert listed((await client.get(HISTORY, headers=ada.headers)).json(), "watch_history") == ["Ada's"]
        assert (await client.get(HISTORY, headers=bob.headers)).json()["watch_history"] == []


class TestEditingEntries:
    async def test_the_owner_updates_an_entry_by_id(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin, duration_seconds=3600)
        entry = await report(client, user, film["id"], 600)

        response = await client.put(f"{HISTORY}/{entry['id']}", json={"watched_seconds": 3300}, headers=user.headers)

        assert response.status_code == 200, response.text
        assert (response.json()["watched_seconds"], response.json()["status"]) == (3300, "completed")

    async def test_another_users_entry_is_not_found(self, client):
        admin = await new_admin(client)
        owner, other = await new_user(client, "owner"), await new_user(client, "other")
        film = await create_title(client, admin)
        entry = await report(client, owner, film["id"], 600)
        path = f"{HISTORY}/{entry['id']}"

        assert (await client.put(path, json={"watched_seconds": 10}, headers=other.headers)).status_code == 404
        assert (await client.delete(path, headers=other.headers)).status_code == 404
        mine = (await client.get(HISTORY, headers=owner.headers)).json()["watch_history"]
        assert [(item["id"], item["watched_seconds"]) for item in mine] == [(entry["id"], 600)]

    async def test_deleting_hides_the_entry_until_the_title_is_watched_again(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin, title="Hidden")
        entry = await report(client, user, film["id"], 600)
        path = f"{HISTORY}/{entry['id']}"

        assert (await client.delete(path, headers=user.headers)).status_code == 204

        assert (await client.get(HISTORY, headers=user.headers)).json()["watch_history"] == []
        assert (await client.get(CONTINUE, headers=user.headers)).json()["continue_watching"] == []
        assert (await client.delete(path, headers=user.headers)).status_code == 404
        assert (await client.put(path, json={"watched_seconds": 5}, headers=user.headers)).status_code == 404
        back = await report(client, user, film["id"], 900)
        assert back["id"] == entry["id"]
        assert listed((await client.get(HISTORY, headers=user.headers)).json(), "watch_history") == ["Hidden"]


class TestConcurrency:
    async def test_reports_sent_at_once_through_the_route_make_one_entry(self, client):
        """The route's own short write (on PostgreSQL a transaction straight on the driver) locks the
        entry like any other write: twenty reports at once, one entry, every one answered."""
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin, duration_seconds=3600)
        positions = [60 * (index + 1) for index in range(20)]

        responses = send_concurrently(
            client,
            [
                (
                    "POST",
                    HISTORY,
                    {"json": {"content_id": film["id"], "watched_seconds": position}, "headers": user.headers},
                )
                for position in positions
            ],
        )

        assert [response.status_code for response in responses] == [200] * 20
        assert len({response.json()["id"] for response in responses}) == 1
        history = (await client.get(HISTORY, headers=user.headers)).json()
        assert history["total"] == 1
        assert history["watch_history"][0]["watched_seconds"] in positions

    async def test_concurrent_first_reports_make_one_entry(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        film = await create_title(client, admin, duration_seconds=3600)
        components = client.app.state.components
        config = build_sqlalchemy_config(components.settings)
        units = UnitOfWorkFactory(config, components.events)

        async def first_report(position: int) -> bool:
            async with units.begin() as uow:
                content = await uow.session.get(Content, UUID(film["id"]))
                assert content is not None
                _, created = await components.watch_history(uow).store_position(user.id, content, position)
                return created

        try:
            created = await asyncio.gather(*(first_report(position) for position in (600, 900, 1200)))
        finally:
            await config.get_engine().dispose()

        assert sorted(created) == [False, False, True]
        history = (await client.get(HISTORY, headers=user.headers)).json()
        assert history["total"] == 1
        assert history["watch_history"][0]["watched_seconds"] in {600, 900, 1200}


async def test_the_list_routes_session_reads_outside_a_transaction(postgres_url: str):
    """The list routes' session runs each statement on its own (no BEGIN or COMMIT round trips): two
    reads of PostgreSQL's clock a moment apart differ, where inside one transaction they repeat."""
    config = build_sqlalchemy_config(build_settings(DATABASE_URL=postgres_url))
    units = UnitOfWorkFactory(config, EventBus())
    try:
        async with units.read() as session:
            read_first = await session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.01)
            read_second = await session.scalar(text("SELECT now()"))
        async with units.begin() as uow:
            written_first = await uow.session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.01)
            written_second = await uow.session.scalar(text("SELECT now()"))
    finally:
        await config.get_engine().dispose()

    assert read_second > read_first
    assert written_second == written_first


async def test_a_report_overtaken_by_another_write_is_made_again_under_the_lock(postgres_url: str, tmp_path):
    """On PostgreSQL a progress report is a compare-and-set: when another device's report lands
    between its read and its save, it is made again under the row lock, on what that one left.
    The result is what the two reports give one after the other (checked on a second user)."""
    settings = build_settings(DATABASE_URL=postgres_url, VAR_DIR=str(tmp_path))
    async with AsyncTestClient(app=create_app(settings)) as client:
        admin = await new_admin(client)
        film = await create_title(client, admin, media=False, duration_seconds=3600)
        overtaken, serial = await new_user(client), await new_user(client)
        components = client.app.state.components
        # Units of work of this test's own on the app's database (the app's pool lives in its own loop).
        config = build_sqlalchemy_config(components.settings)
        units = UnitOfWorkFactory(config, components.events)
        async with units.read() as session:
            title = await session.get(Content, UUID(film["id"]))
        assert title is not None
        overtakings = 0

        def optimistic(uow: UnitOfWork, kind: type[WatchHistoryService] = WatchHistoryService) -> WatchHistoryService:
            """The progress route's service on PostgreSQL (WatchHistoryRequests.record)."""
            plain = components.watch_history(uow)
            return kind(
                uow,
                rules=plain.rules,
                entitlements=components.entitlements(uow),
                catalog=components.catalog(uow),
                optimistic=True,
            )

        class Overtaken(WatchHistoryService):
            async def _entry(self, on, report, query):  # type: ignore[override]
                entry = await WatchHistoryService._entry(on, report, query)
                nonlocal overtakings
                if overtakings == 0:
                    overtakings += 1
                    await store(serial.id, 3500)  # the other device's report, complete before this one saves
                    await store(overtaken.id, 3500)
                return entry

        async def store(user_id: UUID, position: int, kind: type[WatchHistoryService] = WatchHistoryService) -> Any:
            async with units.read() as session:
                entry, _ = await optimistic(UnitOfWork(session, units.events), kind).store_position(
                    user_id, title, position
                )
            return entry

        await store(overtaken.id, 600)
        await store(serial.id, 600)
        entry = await store(overtaken.id, 100, Overtaken)
        expected = await store(serial.id, 100)
        await config.get_engine().dispose()

    assert overtakings == 1
    fields = ("watched_seconds", "status", "play_count")
    assert {name: getattr(entry, name) for name in fields} == {name: getattr(expected, name) for name in fields}
    assert (entry.completed_at is None) == (expected.completed_at is None)
