"""Anonymous plan and catalog reads come from memory, yet every admin change shows on the next read.

Each test runs on PostgreSQL + Redis and on the embedded backends. A row written straight into
the database (no admin API, so nothing clears the cache) shows whether an answer was cached.
"""

from __future__ import annotations

from typing import Any

from catalog_helpers import (
    ADMIN_CONTENT,
    ADMIN_GENRES,
    CONTENT,
    Person,
    create_genre,
    create_title,
    database,
    new_admin,
    new_user,
    title_fields,
)
from sqlalchemy import update

from helpers import auth, make_admin, ok, register
from reelhouse.catalog.models import Content
from reelhouse.plans.models import AccessLevel, Plan, Resolution
from reelhouse.platform.cache import MAX_QUERY_BYTES

PLANS = "/api/v1/plans"
ADMIN_PLANS = "/api/v1/admin/plans"
GENRES = "/api/v1/genres"
BASIC = {
    "name": "Basic",
    "price": 899,
    "validity_days": 30,
    "access_level": "basic",
    "max_devices_allowed": 2,
    "resolution": "720p",
    "description": "HD on two screens",
}


def plan_names(body: dict[str, Any]) -> list[str]:
    return [plan["name"] for plan in body["plans"]]


def titles_of(body: dict[str, Any]) -> list[str]:
    return [content["title"] for content in body["contents"]]


async def add_plan_behind_the_api(client, name: str) -> None:
    """A plan written straight into the database: no admin change, so no cache is cleared."""
    async with database(client) as session:
        session.add(
            Plan(
                name=name,
                price=100,
                currency="USD",
                validity_days=30,
                access_level=AccessLevel.FREE,
                max_devices_allowed=1,
                resolution=Resolution.SD_480P,
                description="",
            )
        )


async def create_plan(client, admin_token: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = ok(
        await client.post(ADMIN_PLANS, json={**BASIC, **overrides}, headers=auth(admin_token)), 201
    )
    return body


class TestAnonymousReadsComeFromMemory:
    async def test_a_repeated_read_is_a_hit_with_its_own_request_id(self, client):
        first = await client.get(PLANS)
        second = await client.get(PLANS)

        assert first.headers["x-cache"] == "miss"
        assert second.headers["x-cache"] == "hit"
        assert second.content == first.content
        assert second.headers["content-type"] == first.headers["content-type"]
        assert second.headers["x-request-id"] != first.headers["x-request-id"]

    async def test_a_hit_does_not_see_rows_written_behind_the_api(self, client):
        assert plan_names(ok(await client.get(PLANS))) == []

        await add_plan_behind_the_api(client, "Hidden")

        assert plan_names(ok(await client.get(PLANS))) == []
        user = await register(client)
        assert plan_names(ok(await client.get(PLANS, headers=auth(user["token"])))) == ["Hidden"]

    async def test_the_order_of_query_parameters_does_not_matter(self, client):
        assert (await client.get(f"{CONTENT}?limit=5&offset=0")).headers["x-cache"] == "miss"
        assert (await client.get(f"{CONTENT}?offset=0&limit=5")).headers["x-cache"] == "hit"
        assert (await client.get(f"{CONTENT}?limit=6&offset=0")).headers["x-cache"] == "miss"


class TestAdminChangesShowOnTheNextRead:
    async def test_plan_create_replace_update_and_delete(self, client):
        admin = await make_admin(client)
        ok(await client.get(PLANS))
        assert (await client.get(PLANS)).headers["x-cache"] == "hit"

        plan = await create_plan(client, admin["token"])
        assert plan_names(ok(await client.get(PLANS))) == ["Basic"]
        detail = f"{PLANS}/{plan['id']}"
        assert ok(await client.get(detail))["price"] == 899
        assert (await client.get(detail)).headers["x-cache"] == "hit"

        ok(await client.patch(f"{ADMIN_PLANS}/{plan['id']}", json={"price": 999}, headers=auth(admin["token"])))
        assert ok(await client.get(detail))["price"] == 999
        assert ok(await client.get(PLANS))["plans"][0]["price"] == 999

        replaced = {**BASIC, "name": "Standard", "price": 1099}
        ok(await client.put(f"{ADMIN_PLANS}/{plan['id']}", json=replaced, headers=auth(admin["token"])))
        assert plan_names(ok(await client.get(PLANS))) == ["Standard"]
        assert ok(await client.get(detail))["name"] == "Standard"

        assert (await client.delete(f"{ADMIN_PLANS}/{plan['id']}", headers=auth(admin["token"]))).status_code == 200
        assert plan_names(ok(await client.get(PLANS))) == []
        assert (await client.get(detail)).status_code == 404

    async def test_archiving_a_subscribed_plan(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"])
        user = await register(client)
        ok(await client.post("/api/v1/subscriptions", json={"plan_id": plan["id"]}, headers=auth(user["token"])), 201)
        assert plan_names(ok(await client.get(PLANS))) == ["Basic"]
        assert (await client.get(PLANS)).headers["x-cache"] == "hit"

        archived = ok(await client.delete(f"{ADMIN_PLANS}/{plan['id']}", headers=auth(admin["token"])))

        assert archived["plan"]["is_active"] is False
        assert plan_names(ok(await client.get(PLANS))) == []
        assert (await client.get(f"{PLANS}/{plan['id']}")).status_code == 404

    async def test_a_refused_admin_write_leaves_the_cache_alone(self, client):
        admin = await make_admin(client)
        await create_plan(client, admin["token"])
        ok(await client.get(PLANS))

        duplicate = await client.post(ADMIN_PLANS, json=BASIC, headers=auth(admin["token"]))

        assert duplicate.status_code == 409
        assert (await client.get(PLANS)).headers["x-cache"] == "hit"

    async def test_title_create_update_replace_unpublish_publish_and_delete(self, client):
        admin = await new_admin(client)
        new_releases = f"{CONTENT}/new-releases"
        assert titles_of(ok(await client.get(CONTENT))) == []
        assert titles_of(ok(await client.get(new_releases))) == []

        title = await create_title(client, admin, title="Orbital Decay")
        assert titles_of(ok(await client.get(CONTENT))) == ["Orbital Decay"]
        assert titles_of(ok(await client.get(new_releases))) == ["Orbital Decay"]
        detail = f"{CONTENT}/{title['id']}"
        assert ok(await client.get(detail))["title"] == "Orbital Decay"
        assert (await client.get(detail)).headers["x-cache"] == "hit"

        path = f"{ADMIN_CONTENT}/{title['id']}"
        ok(await client.patch(path, json={"title": "Orbital Decay II"}, headers=admin.headers))
        assert ok(await client.get(detail))["title"] == "Orbital Decay II"
        assert titles_of(ok(await client.get(CONTENT))) == ["Orbital Decay II"]

        ok(await client.put(path, json=title_fields(title="Drift"), headers=admin.headers))
        assert ok(await client.get(detail))["title"] == "Drift"

        ok(await client.patch(path, json={"published": False}, headers=admin.headers))
        assert (await client.get(detail)).status_code == 404
        assert titles_of(ok(await client.get(CONTENT))) == []

        ok(await client.patch(path, json={"published": True}, headers=admin.headers))
        assert ok(await client.get(detail))["title"] == "Drift"
        assert titles_of(ok(await client.get(new_releases))) == ["Drift"]

        assert (await client.delete(path, headers=admin.headers)).status_code == 200
        assert (await client.get(detail)).status_code == 404
        assert titles_of(ok(await client.get(CONTENT))) == []
        assert titles_of(ok(await client.get(new_releases))) == []

    async def test_genre_create_rename_and_delete_show_in_genres_and_titles(self, client):
        admin = await new_admin(client)
        assert ok(await client.get(GENRES))["genres"] == []

        genre = await create_genre(client, admin, "scifi", "Sci fi")
        title = await create_title(client, admin, title="Orbital Decay", genres=["scifi"])
        detail = f"{CONTENT}/{title['id']}"
        assert [g["name"] for g in ok(await client.get(GENRES))["genres"]] == ["Sci fi"]
        assert [g["name"] for g in ok(await client.get(detail))["genres"]] == ["Sci fi"]
        assert (await client.get(detail)).headers["x-cache"] == "hit"

        renamed = {"slug": "sci-fi", "name": "Science Fiction"}
        ok(await client.put(f"{ADMIN_GENRES}/{genre['id']}", json=renamed, headers=admin.headers))
        assert [g["name"] for g in ok(await client.get(GENRES))["genres"]] == ["Science Fiction"]
        assert [g["slug"] for g in ok(await client.get(detail))["genres"]] == ["sci-fi"]
        assert titles_of(ok(await client.get(f"{CONTENT}?genre=sci-fi"))) == ["Orbital Decay"]

        assert (await client.delete(f"{ADMIN_GENRES}/{genre['id']}", headers=admin.headers)).status_code == 204
        assert ok(await client.get(GENRES))["genres"] == []
        assert ok(await client.get(detail))["genres"] == []

    async def test_a_plan_change_keeps_the_catalog_cached(self, client):
        admin = await make_admin(client)
        ok(await client.get(GENRES))

        await create_plan(client, admin["token"])

        assert (await client.get(GENRES)).headers["x-cache"] == "hit"


class TestSignedInCallersNeverShareTheCache:
    async def test_an_admins_list_with_archived_plans_is_neither_served_from_nor_kept_in_memory(self, client):
        admin = await make_admin(client)
        await create_plan(client, admin["token"], name="Old", is_active=False)
        await create_plan(client, admin["token"], name="Basic")
        assert plan_names(ok(await client.get(f"{PLANS}?active=false"))) == ["Basic"]
        assert (await client.get(f"{PLANS}?active=false")).headers["x-cache"] == "hit"

        as_admin = await client.get(f"{PLANS}?active=false", headers=auth(admin["token"]))
        anonymous_again = await client.get(f"{PLANS}?active=false")

        assert sorted(plan_names(ok(as_admin))) == ["Basic", "Old"]
        assert "x-cache" not in as_admin.headers
        assert plan_names(ok(anonymous_again)) == ["Basic"]

    async def test_an_admin_sees_the_video_location_an_anonymous_hit_never_carries(self, client):
        admin = await new_admin(client)
        title = await create_title(client, admin)
        detail = f"{CONTENT}/{title['id']}"

        ok(await client.get(detail, headers=admin.headers))
        anonymous = ok(await client.get(detail))
        assert "video_url" not in anonymous
        assert (await client.get(detail)).headers["x-cache"] == "hit"
        assert "video_url" in ok(await client.get(detail, headers=admin.headers))

    async def test_a_signed_in_read_sees_rows_the_cache_does_not(self, client):
        ok(await client.get(PLANS))
        viewer = await new_user(client)
        await add_plan_behind_the_api(client, "Fresh")

        assert plan_names(ok(await client.get(PLANS, headers=viewer.headers))) == ["Fresh"]
        assert plan_names(ok(await client.get(PLANS))) == []

    async def test_recommendations_are_never_cached(self, client):
        viewer: Person = await new_user(client)

        anonymous = await client.get(f"{CONTENT}/recommendations")
        signed_in = await client.get(f"{CONTENT}/recommendations", headers=viewer.headers)

        assert anonymous.status_code == 401
        assert "x-cache" not in anonymous.headers
        assert signed_in.status_code == 200
        assert "x-cache" not in signed_in.headers


class TestWhatIsNotKept:
    async def test_error_answers_are_not_kept(self, client):
        missing = f"{PLANS}/00000000-0000-0000-0000-000000000000"
        for _ in range(2):
            response = await client.get(missing)
            assert response.status_code == 404
            assert response.headers["x-cache"] == "miss"
        for _ in range(2):
            response = await client.get(f"{CONTENT}?limit=0")
            assert response.status_code == 422
            assert response.headers["x-cache"] == "miss"

    async def test_a_title_not_found_then_published_behind_the_api_is_found(self, client):
        admin = await new_admin(client)
        draft = await create_title(client, admin, published=False)
        detail = f"{CONTENT}/{draft['id']}"
        assert (await client.get(detail)).status_code == 404

        async with database(client) as session:
            await session.execute(update(Content).where(Content.title == draft["title"]).values(published=True))

        assert (await client.get(detail)).status_code == 200

    async def test_a_long_query_string_is_passed_through(self, client):
        long_search = f"{CONTENT}?limit=5&tracking={'a' * MAX_QUERY_BYTES}"

        response = await client.get(long_search)

        assert response.status_code == 200
        assert "x-cache" not in response.headers

    async def test_public_cache_seconds_zero_turns_it_off(self, make_client):
        async with make_client(PUBLIC_CACHE_SECONDS="0") as client:
            first = await client.get(PLANS)
            await add_plan_behind_the_api(client, "Visible")
            second = await client.get(PLANS)

        assert "x-cache" not in first.headers
        assert "x-cache" not in second.headers
        assert plan_names(ok(second)) == ["Visible"]
