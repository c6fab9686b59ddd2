"""Genres: the public list, admin management, and the genres a user follows."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_helpers import ADMIN_CONTENT, ADMIN_GENRES, CONTENT, create_genre, create_title, new_admin, new_user

GENRES = "/api/v1/genres"
FOLLOWED = "/api/v1/users/genres"


def slugs(body: dict[str, Any]) -> list[str]:
    return [genre["slug"] for genre in body["genres"]]


class TestGenreList:
    async def test_anyone_lists_every_genre_by_name(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "thriller", "Thriller")
        await create_genre(client, admin, "sci-fi", "Science Fiction")
        await create_genre(client, admin, "drama", "Drama")

        response = await client.get(GENRES)

        assert response.status_code == 200
        body = response.json()
        assert slugs(body) == ["drama", "sci-fi", "thriller"]
        assert body["total"] == 3
        assert set(body["genres"][0]) == {"id", "slug", "name"}


class TestAdminGenres:
    async def test_admin_creates_renames_and_deletes_a_genre(self, client):
        admin = await new_admin(client)
        created = await create_genre(client, admin, "scifi", "Sci fi")

        renamed = await client.put(
            f"{ADMIN_GENRES}/{created['id']}", json={"slug": "sci-fi", "name": "Science Fiction"}, headers=admin.headers
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.json() == {"id": created["id"], "slug": "sci-fi", "name": "Science Fiction"}

        deleted = await client.delete(f"{ADMIN_GENRES}/{created['id']}", headers=admin.headers)
        assert deleted.status_code == 204
        assert slugs((await client.get(GENRES)).json()) == []

    async def test_a_duplicate_slug_is_a_conflict(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "drama")
        comedy = await create_genre(client, admin, "comedy")

        duplicate = await client.post(ADMIN_GENRES, json={"slug": "drama", "name": "Dramas"}, headers=admin.headers)
        renamed_onto = await client.put(
            f"{ADMIN_GENRES}/{comedy['id']}", json={"slug": "drama", "name": "Comedy"}, headers=admin.headers
        )

        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "genre_slug_taken"
        assert renamed_onto.status_code == 409
        assert slugs((await client.get(GENRES)).json()) == ["comedy", "drama"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"slug": "Sci Fi", "name": "Sci-fi"}, "slug"),
            ({"slug": "-drama", "name": "Drama"}, "slug"),
            ({"slug": "", "name": "Drama"}, "slug"),
            ({"slug": "drama", "name": ""}, "name"),
            ({"slug": "drama"}, "name"),
        ],
    )
    async def test_invalid_genres_are_rejected(self, client, body, field):
        admin = await new_admin(client)

        response = await client.post(ADMIN_GENRES, json=body, headers=admin.headers)

        assert response.status_code == 422
        assert field in {error["field"] for error in response.json()["errors"]}

    async def test_deleting_a_genre_takes_it_off_its_titles(self, client):
        admin = await new_admin(client)
        drama = await create_genre(client, admin, "drama")
        await create_genre(client, admin, "comedy")
        title = await create_title(client, admin, genres=["drama", "comedy"])

        await client.delete(f"{ADMIN_GENRES}/{drama['id']}", headers=admin.headers)

        body = (await client.get(f"{CONTENT}/{title['id']}")).json()
        assert [genre["slug"] for genre in body["genres"]] == ["comedy"]

    async def test_unknown_genre_is_not_found(self, client):
        admin = await new_admin(client)
        missing = f"{ADMIN_GENRES}/00000000-0000-0000-0000-000000000000"

        assert (await client.put(missing, json={"slug": "x", "name": "X"}, headers=admin.headers)).status_code == 404
        assert (await client.delete(missing, headers=admin.headers)).status_code == 404

    @pytest.mark.parametrize("method", ["post", "put", "delete"])
    async def test_only_admins_may_manage_genres(self, client, method):
        admin = await new_admin(client)
        user = await new_user(client)
        genre = await create_genre(client, admin, "drama", "Drama")
        path = ADMIN_GENRES if method == "post" else f"{ADMIN_GENRES}/{genre['id']}"
        kwargs: dict[str, Any] = {} if method == "delete" else {"json": {"slug": "changed", "name": "Changed"}}

        anonymous = await client.request(method.upper(), path, **kwargs)
        as_user = await client.request(method.upper(), path, headers=user.headers, **kwargs)

        assert anonymous.status_code == 401
        assert as_user.status_code == 403
        assert (await client.get(GENRES)).json()["genres"] == [genre]

    async def test_titles_name_genres_by_slug(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "drama")

        response = await client.post(
            ADMIN_CONTENT,
            json={
                "title": "T",
                "access_level": "free",
                "duration_seconds": 60,
                "release_year": 2000,
                "video_url": "https://media.example.com/t.m3u8",
                "genres": ["drama", "drama"],
            },
            headers=admin.headers,
        )

        assert response.status_code == 201, response.text
        assert [genre["slug"] for genre in response.json()["genres"]] == ["drama"]


class TestFollowedGenres:
    async def test_a_user_follows_genres_by_slug_and_replaces_the_set(self, client):
        admin = await new_admin(client)
        for slug in ("drama", "comedy", "horror"):
            await create_genre(client, admin, slug)
        user = await new_user(client)

        assert slugs((await client.get(FOLLOWED, headers=user.headers)).json()) == []
        first = await client.put(FOLLOWED, json={"genres": ["drama", "comedy"]}, headers=user.headers)
        assert first.status_code == 200, first.text
        assert slugs(first.json()) == ["comedy", "drama"]
        second = await client.put(FOLLOWED, json={"genres": ["horror"]}, headers=user.headers)
        assert slugs(second.json()) == ["horror"]
        assert slugs((await client.get(FOLLOWED, headers=user.headers)).json()) == ["horror"]
        cleared = await client.put(FOLLOWED, json={"genres": []}, headers=user.headers)
        assert cleared.json() == {"genres": [], "total": 0}

    async def test_each_user_has_their_own_genres(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "drama")
        await create_genre(client, admin, "comedy")
        ada, bob = await new_user(client, "ada"), await new_user(client, "bob")

        await client.put(FOLLOWED, json={"genres": ["drama"]}, headers=ada.headers)
        await client.put(FOLLOWED, json={"genres": ["comedy"]}, headers=bob.headers)

        assert slugs((await client.get(FOLLOWED, headers=ada.headers)).json()) == ["drama"]
        assert slugs((await client.get(FOLLOWED, headers=bob.headers)).json()) == ["comedy"]

    async def test_unknown_genres_are_rejected_and_nothing_changes(self, client):
        admin = await new_admin(client)
        await create_genre(client, admin, "drama")
        user = await new_user(client)
        await client.put(FOLLOWED, json={"genres": ["drama"]}, headers=user.headers)

        response = await client.put(FOLLOWED, json={"genres": ["drama", "western"]}, headers=user.headers)

        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "genres"
        assert "western" in response.json()["errors"][0]["message"]
        assert slugs((await client.get(FOLLOWED, headers=user.headers)).json()) == ["drama"]

    async def test_followed_genres_need_a_signed_in_user(self, client):
        assert (await client.get(FOLLOWED)).status_code == 401
        assert (await client.put(FOLLOWED, json={"genres": []})).status_code == 401
