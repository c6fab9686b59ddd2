"""Recommendations: taste from history and followed genres, playable titles first, trending for newcomers."""

from __future__ import annotations

from catalog_helpers import (
    CONTENT,
    backdate_viewing,
    create_genre,
    create_title,
    new_admin,
    new_user,
    report,
    subscribe,
    titles,
)

RECOMMENDATIONS = f"{CONTENT}/recommendations"
FOLLOWED = "/api/v1/users/genres"


async def recommended(client, person) -> list[str]:
    response = await client.get(RECOMMENDATIONS, headers=person.headers)
    assert response.status_code == 200, response.text
    return titles(response.json()["recommendations"])


async def with_genres(client, admin, *slugs: str) -> None:
    for slug in slugs:
        await create_genre(client, admin, slug)


class TestRecommendations:
    async def test_recommendations_need_a_signed_in_user(self, client):
        assert (await client.get(RECOMMENDATIONS)).status_code == 401

    async def test_titles_like_what_the_user_watched_come_first_and_watched_ones_never(self, client):
        admin = await new_admin(client)
        await with_genres(client, admin, "drama", "comedy")
        # The comedy is the newest title, so without taste it would come first.
        unwatched_drama = await create_title(client, admin, title="Unwatched Drama", genres=["drama"])
        seen = [await create_title(client, admin, title=f"Drama {n}", genres=["drama"]) for n in (1, 2)]
        await create_title(client, admin, title="Unwatched Comedy", genres=["comedy"])
        user = await new_user(client)
        for title in seen:
            await report(client, user, title["id"], 3500)

        body = (await client.get(RECOMMENDATIONS, headers=user.headers)).json()

        assert titles(body["recommendations"]) == ["Unwatched Drama", "Unwatched Comedy"]
        assert body["total"] == 2
        assert body["recommendations"][0]["id"] == unwatched_drama["id"]
        assert body["recommendations"][0]["accessible"] is True
        assert "video_url" not in body["recommendations"][0]

    async def test_followed_genres_count_even_without_history(self, client):
        admin = await new_admin(client)
        await with_genres(client, admin, "drama", "horror")
        await create_title(client, admin, title="Horror", genres=["horror"])
        await create_title(client, admin, title="Drama", genres=["drama"])
        user = await new_user(client)
        assert await recommended(client, user) == ["Drama", "Horror"]  # newest first without taste

        await client.put(FOLLOWED, json={"genres": ["horror"]}, headers=user.headers)

        assert await recommended(client, user) == ["Horror", "Drama"]

    async def test_titles_the_plan_cannot_play_come_after_playable_ones(self, client):
        admin = await new_admin(client)
        await with_genres(client, admin, "drama", "comedy")
        await create_title(client, admin, title="Premium Drama", genres=["drama"], access_level="premium")
        await create_title(client, admin, title="Free Comedy", genres=["comedy"])
        seen = await create_title(client, admin, title="Seen Drama", genres=["drama"])
        user = await new_user(client)
        await report(client, user, seen["id"], 3500)

        body = (await client.get(RECOMMENDATIONS, headers=user.headers)).json()

        assert [(item["title"], item["accessible"]) for item in body["recommendations"]] == [
            ("Free Comedy", True),
            ("Premium Drama", False),
        ]

    async def test_a_premium_subscriber_gets_premium_titles_by_taste(self, client):
        admin = await new_admin(client)
        await with_genres(client, admin, "drama", "comedy")
        await create_title(client, admin, title="Premium Drama", genres=["drama"], access_level="premium")
        await create_title(client, admin, title="Free Comedy", genres=["comedy"])
        seen = await create_title(client, admin, title="Seen Drama", genres=["drama"])
        user = await new_user(client)
        await subscribe(client, user.id, "premium")
        await report(client, user, seen["id"], 3500)

        body = (await client.get(RECOMMENDATIONS, headers=user.headers)).json()

        assert [(item["title"], item["accessible"]) for item in body["recommendations"]] == [
            ("Premium Drama", True),
            ("Free Comedy", True),
        ]

    async def test_recent_viewing_weighs_more_than_old_viewing(self, client):
        admin = await new_admin(client)
        await with_genres(client, admin, "drama", "comedy")
        await create_title(client, admin, title="Next Comedy", genres=["comedy"])
        await create_title(client, admin, title="Next Drama", genres=["drama"])  # newer: first without taste
        old_drama = await create_title(client, admin, title="Old Drama", genres=["drama"])
        new_comedy = await create_title(client, admin, title="New Comedy", genres=["comedy"])
        user = await new_user(client)
        await report(client, user, old_drama["id"], 3500)
        await report(client, user, new_comedy["id"], 3500)
        await backdate_viewing(client, user.id, old_drama["id"], days=120)

        assert await recommended(client, user) == ["Next Comedy", "Next Drama"]

    async def test_finished_viewing_weighs_more_than_a_sample(self, client):
        admin = await new_admin(client)
        await with_genres(client, admin, "drama", "comedy")
        await create_title(client, admin, title="Next Comedy", genres=["comedy"])
        await create_title(client, admin, title="Next Drama", genres=["drama"])  # newer: first without taste
        sampled = await create_title(client, admin, title="Sampled Drama", genres=["drama"])
        finished = await create_title(client, admin, title="Finished Comedy", genres=["comedy"])
        user = await new_user(client)
        await report(client, user, sampled["id"], 300)
        await report(client, user, finished["id"], 3500)

        assert await recommended(client, user) == ["Next Comedy", "Next Drama"]

    async def test_a_new_user_gets_trending_titles(self, client):
        admin = await new_admin(client)
        quiet = await create_title(client, admin, title="Quiet")
        hit = await create_title(client, admin, title="Hit")
        await create_title(client, admin, title="Brand New")
        for _ in range(2):
            fan = await new_user(client, "fan")
            await report(client, fan, hit["id"], 600)
        fan = await new_user(client, "fan")
        await report(client, fan, quiet["id"], 600)
        newcomer = await new_user(client, "newcomer")

        body = (await client.get(RECOMMENDATIONS, headers=newcomer.headers)).json()
        trending = (await client.get(f"{CONTENT}/trending")).json()

        assert titles(body["recommendations"]) == ["Hit", "Quiet", "Brand New"]
        assert titles(body["recommendations"]) == titles(trending["contents"])

    async def test_unpublished_titles_are_never_recommended(self, client):
        admin = await new_admin(client)
        await create_title(client, admin, title="Draft", published=False)
        await create_title(client, admin, title="Live")
        user = await new_user(client)

        assert await recommended(client, user) == ["Live"]
