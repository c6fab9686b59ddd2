"""The catalog: browsing, search, filters, sorting, trending, new releases, and admin management of titles."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_helpers import (
    ADMIN_CONTENT,
    CONTENT,
    backdate_viewing,
    create_genre,
    create_title,
    new_admin,
    new_user,
    report,
    title_fields,
    titles,
)

PUBLIC_KEYS = {
    "id",
    "title",
    "description",
    "access_level",
    "duration_seconds",
    "genres",
    "release_year",
    "thumbnail_url",
    "trailer_url",
    "published",
    "published_at",
    "playable",
    "created_at",
    "updated_at",
}
ADMIN_KEYS = PUBLIC_KEYS | {"video_url", "credits_start_seconds"}


def error_fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


class TestBrowsing:
    async def test_list_shows_only_published_titles_with_public_fields(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "drama", "Drama")
        await create_title(client, admin, title="Shown", genres=["drama"])
        await create_title(client, admin, title="Draft", published=False)

        response = await client.get(CONTENT)

        assert response.status_code == 200, response.text
        body = response.json()
        assert titles(body["contents"]) == ["Shown"]
        assert (body["total"], body["limit"], body["offset"]) == (1, 20, 0)
        item = body["contents"][0]
        assert set(item) == PUBLIC_KEYS
        assert [(genre["slug"], genre["name"]) for genre in item["genres"]] == [("drama", "Drama")]
        assert set(item["genres"][0]) == {"id", "slug", "name"}

    async def test_one_title_shows_the_trailer_but_never_the_video_to_anyone_but_admins(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        created = await create_title(client, admin, trailer_url="https://media.example.com/t.m3u8")
        path = f"{CONTENT}/{created['id']}"

        anonymous = (await client.get(path)).json()
        signed_in = (await client.get(path, headers=user.headers)).json()
        as_admin = (await client.get(path, headers=admin.headers)).json()

        assert set(anonymous) == PUBLIC_KEYS
        assert anonymous["trailer_url"] == "https://media.example.com/t.m3u8"
        assert "video_url" not in signed_in
        assert set(as_admin) == ADMIN_KEYS
        assert as_admin["video_url"] == "https://media.example.com/titles/a.m3u8"

    async def test_unpublished_title_is_not_found_for_everyone_but_admins(self, client):
        admin = await new_admin(client)
        user = await new_user(client)
        draft = await create_title(client, admin, published=False)
        path = f"{CONTENT}/{draft['id']}"

        assert (await client.get(path)).status_code == 404
        refused = await client.get(path, headers=user.headers)
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"
        as_admin = await client.get(path, headers=admin.headers)
        assert as_admin.status_code == 200
        assert as_admin.json()["published"] is False
        assert as_admin.json()["published_at"] is None

    async def test_unknown_title_is_not_found(self, client):
        assert (await client.get(f"{CONTENT}/00000000-0000-0000-0000-000000000000")).status_code == 404
        assert (await client.get(f"{CONTENT}/not-a-uuid")).status_code == 404

    async def test_filters_by_genre_slug_and_access_level(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "drama")
        await create_genre(client, admin, "comedy")
        await create_title(client, admin, title="Free Drama", genres=["drama"])
        await create_title(client, admin, title="Premium Drama", genres=["drama"], access_level="premium")
        await create_title(client, admin, title="Free Comedy", genres=["comedy"])

        dramas = (await client.get(CONTENT, params={"genre": "drama", "sort": "title"})).json()
        premium = (await client.get(CONTENT, params={"access_level": "premium"})).json()
        both = (await client.get(CONTENT, params={"genre": "drama", "access_level": "free"})).json()
        unknown = (await client.get(CONTENT, params={"genre": "western"})).json()

        assert titles(dramas["contents"]) == ["Free Drama", "Premium Drama"]
        assert dramas["total"] == 2
        assert titles(premium["contents"]) == ["Premium Drama"]
        assert titles(both["contents"]) == ["Free Drama"]
        assert unknown == {"contents": [], "total": 0, "limit": 20, "offset": 0}

    async def test_search_finds_words_in_title_or_description_whatever_their_case(self, client):
        admin = await new_admin(client)
        await create_title(client, admin, title="The Lighthouse", description="A keeper alone on an island.")
        await create_title(client, admin, title="Harbour Lights", description="Boats at night.")
        await create_title(client, admin, title="Desert Road", description="Nothing but sand and an island of shade.")
        await create_title(client, admin, title="City", description="Traffic.")

        async def search(query: str) -> list[str]:
            response = await client.get(CONTENT, params={"q": query, "sort": "title"})
            assert response.status_code == 200, response.text
            return titles(response.json()["contents"])

        assert await search("LIGHTHOUSE") == ["The Lighthouse"]
        assert await search("island") == ["Desert Road", "The Lighthouse"]
        assert await search("keeper island") == ["The Lighthouse"]
        assert await search("harb") == ["Harbour Lights"]  # a word's beginning is enough
        assert await search("submarine") == []
        assert await search("%") == ["City", "Desert Road", "Harbour Lights", "The Lighthouse"]  # no words: no filter

    async def test_search_ranks_title_matches_first_by_default(self, client):
        admin = await new_admin(client)
        await create_title(client, admin, title="Ocean Story", description="Waves.")
        # Newer, and says "ocean" twice: still after the title match.
        await create_title(client, admin, title="Mountains", description="An ocean of rock, an ocean of snow.")
        await create_title(client, admin, title="Unrelated", description="Nothing.")

        body = (await client.get(CONTENT, params={"q": "ocean"})).json()
        newest = (await client.get(CONTENT, params={"q": "ocean", "sort": "newest"})).json()

        assert titles(body["contents"]) == ["Ocean Story", "Mountains"]
        assert titles(newest["contents"]) == ["Mountains", "Ocean Story"]

    async def test_sorts_by_title_newest_and_popularity(self, client):
        admin = await new_admin(client)
        first = await create_title(client, admin, title="banana")
        second = await create_title(client, admin, title="Apple")
        third = await create_title(client, admin, title="cherry")
        for _ in range(2):
            viewer = await new_user(client)
            await report(client, viewer, second["id"], 600)
        viewer = await new_user(client)
        await report(client, viewer, first["id"], 600)

        by_title = (await client.get(CONTENT, params={"sort": "title"})).json()
        newest = (await client.get(CONTENT, params={"sort": "newest"})).json()
        default = (await client.get(CONTENT)).json()
        popular = (await client.get(CONTENT, params={"sort": "popular"})).json()

        assert titles(by_title["contents"]) == ["Apple", "banana", "cherry"]
        assert titles(newest["contents"]) == ["cherry", "Apple", "banana"]
        assert titles(default["contents"]) == titles(newest["contents"])
        assert titles(popular["contents"]) == ["Apple", "banana", "cherry"]
        assert third["id"] == popular["contents"][2]["id"]

    async def test_an_unknown_sort_is_rejected_with_a_code(self, client):
        response = await client.get(CONTENT, params={"sort": "random"})

        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        assert "sort" in error_fields(body)

    async def test_pages_through_results_and_caps_the_page_size(self, client):
        admin = await new_admin(client)
        for letter in "abcde":
            await create_title(client, admin, title=letter)

        page = (await client.get(CONTENT, params={"sort": "title", "limit": 2, "offset": 2})).json()
        too_big = await client.get(CONTENT, params={"limit": 101})
        negative = await client.get(CONTENT, params={"offset": -1})

        assert titles(page["contents"]) == ["c", "d"]
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, 2)
        assert too_big.status_code == 422
        assert "limit" in error_fields(too_big.json())
        assert negative.status_code == 422


class TestTrendingAndNewReleases:
    async def test_trending_ranks_by_distinct_viewers_of_the_last_seven_days(self, client):
        admin = await new_admin(client)
        old_hit = await create_title(client, admin, title="Old Hit")
        steady = await create_title(client, admin, title="Steady")
        quiet = await create_title(client, admin, title="Quiet")
        draft = await create_title(client, admin, title="Draft", published=False)
        viewers = [await new_user(client) for _ in range(3)]
        for viewer in viewers:
            await report(client, viewer, old_hit["id"], 600)
            await backdate_viewing(client, viewer.id, old_hit["id"], days=8)
        for viewer in viewers[:2]:
            await report(client, viewer, steady["id"], 600)
            await report(client, viewer, steady["id"], 700)  # the same viewer twice counts once
        await report(client, viewers[0], quiet["id"], 600)

        body = (await client.get(f"{CONTENT}/trending")).json()

        assert titles(body["contents"]) == ["Steady", "Quiet", "Old Hit"]
        assert body["total"] == 3
        assert draft["id"] not in [item["id"] for item in body["contents"]]

    async def test_trending_breaks_ties_by_newest(self, client):
        admin = await new_admin(client)
        await create_title(client, admin, title="Older")
        await create_title(client, admin, title="Newer")

        body = (await client.get(f"{CONTENT}/trending")).json()

        assert titles(body["contents"]) == ["Newer", "Older"]

    async def test_new_releases_lists_newest_published_first(self, client):
        admin = await new_admin(client)
        await create_title(client, admin, title="First")
        late = await create_title(client, admin, title="Published Late", published=False)
        await create_title(client, admin, title="Second")
        response = await client.patch(f"{ADMIN_CONTENT}/{late['id']}", json={"published": True}, headers=admin.headers)
        assert response.status_code == 200

        body = (await client.get(f"{CONTENT}/new-releases", params={"limit": 2})).json()

        assert titles(body["contents"]) == ["Published Late", "Second"]
        assert (body["total"], body["limit"]) == (3, 2)


class TestAdminWrites:
    async def test_admin_creates_a_title_with_its_genres(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "sci-fi", "Science Fiction")
        await create_genre(client, admin, "drama", "Drama")

        response = await client.post(
            ADMIN_CONTENT,
            json=title_fields(
                title="  Orbital   Decay ", genres=["sci-fi", "drama"], credits_start_seconds=3300, published=True
            ),
            headers=admin.headers,
        )

        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == ADMIN_KEYS
        assert body["title"] == "Orbital Decay"
        assert body["credits_start_seconds"] == 3300
        assert body["published"] is True
        assert body["published_at"] is not None
        assert sorted(genre["slug"] for genre in body["genres"]) == ["drama", "sci-fi"]

    async def test_published_at_is_set_when_first_published_and_kept_afterwards(self, client):
        admin = await new_admin(client)
        draft = await create_title(client, admin, published=False)
        path = f"{ADMIN_CONTENT}/{draft['id']}"
        assert draft["published_at"] is None

        published = (await client.patch(path, json={"published": True}, headers=admin.headers)).json()
        unpublished = (await client.patch(path, json={"published": False}, headers=admin.headers)).json()
        again = (await client.patch(path, json={"published": True}, headers=admin.headers)).json()

        assert published["published_at"] is not None
        assert unpublished["published"] is False
        assert unpublished["published_at"] == published["published_at"]
        assert again["published_at"] == published["published_at"]

    async def test_put_replaces_every_field_and_clears_omitted_optional_ones(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "drama")
        await create_genre(client, admin, "comedy")
        created = await create_title(client, admin, genres=["drama"], credits_start_seconds=3000)
        replacement = title_fields(title="Renamed", genres=["comedy"], access_level="basic", duration_seconds=1800)
        del replacement["trailer_url"], replacement["credits_start_seconds"]

        response = await client.put(f"{ADMIN_CONTENT}/{created['id']}", json=replacement, headers=admin.headers)

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["title"], body["access_level"], body["duration_seconds"]) == ("Renamed", "basic", 1800)
        assert body["trailer_url"] is None
        assert body["credits_start_seconds"] is None
        assert [genre["slug"] for genre in body["genres"]] == ["comedy"]

    async def test_patch_changes_only_the_given_fields(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "drama")
        created = await create_title(client, admin, genres=["drama"], credits_start_seconds=3000)

        response = await client.patch(
            f"{ADMIN_CONTENT}/{created['id']}", json={"description": "New words."}, headers=admin.headers
        )

        body = response.json()
        assert response.status_code == 200
        assert body["description"] == "New words."
        assert body["title"] == created["title"]
        assert body["credits_start_seconds"] == 3000
        assert [genre["slug"] for genre in body["genres"]] == ["drama"]

    async def test_delete_removes_the_title(self, client):
        admin = await new_admin(client)
        created = await create_title(client, admin)

        response = await client.delete(f"{ADMIN_CONTENT}/{created['id']}", headers=admin.headers)

        assert response.status_code == 200  # with a message, as the seed API answers
        assert response.json() == {"message": "content deleted successfully"}
        assert (await client.get(f"{CONTENT}/{created['id']}", headers=admin.headers)).status_code == 404
        assert (await client.delete(f"{ADMIN_CONTENT}/{created['id']}", headers=admin.headers)).status_code == 404

    async def test_admin_list_includes_unpublished_titles_and_filters_on_them(self, client):
        admin = await new_admin(client)
        await create_title(client, admin, title="Live")
        await create_title(client, admin, title="Draft", published=False)

        everything = (await client.get(ADMIN_CONTENT, params={"sort": "title"}, headers=admin.headers)).json()
        drafts = (await client.get(ADMIN_CONTENT, params={"published": "false"}, headers=admin.headers)).json()

        assert titles(everything["contents"]) == ["Draft", "Live"]
        assert "video_url" in everything["contents"][0]
        assert titles(drafts["contents"]) == ["Draft"]

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"credits_start_seconds": 3600}, "credits_start_seconds"),
            ({"credits_start_seconds": 4000}, "credits_start_seconds"),
            ({"duration_seconds": 0}, "duration_seconds"),
            ({"duration_seconds": -5}, "duration_seconds"),
            ({"release_year": 1700}, "release_year"),
            ({"release_year": 3000}, "release_year"),
            ({"video_url": "ftp://media.example.com/a"}, "video_url"),
            ({"thumbnail_url": "javascript:alert(1)"}, "thumbnail_url"),
            ({"title": ""}, "title"),
            ({"title": "   "}, "title"),
            ({"title": "x" * 201}, "title"),
            ({"access_level": "gold"}, "access_level"),
            ({"genres": ["no-such-genre"]}, "genres"),
            ({"genres": ["Not A Slug"]}, "genres[0]"),
        ],
    )
    async def test_invalid_fields_are_rejected_naming_the_field(self, client, overrides, field):
        admin = await new_admin(client)

        response = await client.post(ADMIN_CONTENT, json=title_fields(**overrides), headers=admin.headers)

        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "validation_error"
        assert field in error_fields(body)
        assert (await client.get(ADMIN_CONTENT, headers=admin.headers)).json()["total"] == 0

    async def test_patch_checks_credits_against_the_stored_duration(self, client):
        admin = await new_admin(client)
        created = await create_title(client, admin, duration_seconds=1000)

        response = await client.patch(
            f"{ADMIN_CONTENT}/{created['id']}", json={"credits_start_seconds": 1000}, headers=admin.headers
        )
        shorter = await client.patch(
            f"{ADMIN_CONTENT}/{created['id']}",
            json={"credits_start_seconds": 900, "duration_seconds": 800},
            headers=admin.headers,
        )

        assert response.status_code == 422
        assert "credits_start_seconds" in error_fields(response.json())
        assert shorter.status_code == 422

    async def test_missing_required_fields_are_rejected(self, client):
        admin = await new_admin(client)

        response = await client.post(ADMIN_CONTENT, json={"title": "Only a title"}, headers=admin.headers)

        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    async def test_unknown_title_is_not_found_for_admin_writes(self, client):
        admin = await new_admin(client)
        missing = f"{ADMIN_CONTENT}/00000000-0000-0000-0000-000000000000"

        assert (await client.put(missing, json=title_fields(), headers=admin.headers)).status_code == 404
        assert (await client.patch(missing, json={"title": "x"}, headers=admin.headers)).status_code == 404


class TestAdminAuthorization:
    @pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "get"])
    async def test_only_admins_may_manage_titles(self, client, method):
        admin = await new_admin(client)
        user = await new_user(client)
        created = await create_title(client, admin, title="Untouched")
        path = ADMIN_CONTENT if method in {"post", "get"} else f"{ADMIN_CONTENT}/{created['id']}"
        kwargs: dict[str, Any] = {}
        if method in {"post", "put", "patch"}:
            kwargs["json"] = title_fields(title="Changed")

        anonymous = await client.request(method.upper(), path, **kwargs)
        as_user = await client.request(method.upper(), path, headers=user.headers, **kwargs)

        assert anonymous.status_code == 401
        assert as_user.status_code == 403
        assert as_user.json()["code"] == "admin_required"
        after = (await client.get(ADMIN_CONTENT, headers=admin.headers)).json()
        assert titles(after["contents"]) == ["Untouched"]
