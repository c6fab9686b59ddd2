"""Links to pictures and media: relative paths (as the seed API stored them) and http(s) URLs are
kept as sent; any other scheme is refused with a 422 naming the field."""

from __future__ import annotations

import pytest
from catalog_helpers import ADMIN_CONTENT, create_title, new_admin

from helpers import auth, register

ACCEPTED = ["hello.jpg", "/user/image", "/path/to/thumbnail", "images/a.png?size=2", "https://cdn.example.com/a.jpg"]
REFUSED = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "ftp://example.com/a.jpg",
    "//evil.example.com/a.jpg",
    "https://",
    "/with space.jpg",
    "",
]


@pytest.mark.parametrize("picture", ACCEPTED)
async def test_a_profile_picture_may_be_a_relative_path_or_an_http_url(client, picture):
    account = await register(client, picture=picture)
    assert account["user"]["picture"] == picture
    replaced = await client.put(
        "/api/v1/users/profile", json={"name": "Ada", "picture": picture}, headers=auth(account["token"])
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["picture"] == picture


@pytest.mark.parametrize("picture", REFUSED)
async def test_other_schemes_are_refused_for_a_picture(client, picture):
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "ada@example.com", "password": "correct horse battery", "name": "Ada", "picture": picture},
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == ["picture"]
    if picture:
        assert errors[0]["message"].startswith("Must be a relative path"), errors


@pytest.mark.parametrize("field", ["thumbnail_url", "trailer_url", "video_url"])
async def test_title_links_take_relative_paths_and_refuse_other_schemes(client, field):
    admin = await new_admin(client)
    created = await create_title(client, admin, **{field: "/path/to/media"})
    assert created[field] == "/path/to/media"
    refused = await client.patch(
        f"{ADMIN_CONTENT}/{created['id']}", json={field: "javascript:alert(1)"}, headers=admin.headers
    )
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == [field]


async def test_a_title_needs_no_release_year(client):
    admin = await new_admin(client)
    body = {"title": "Untimed", "access_level": "free", "duration_seconds": 600, "video_url": "/v", "published": True}
    created = await client.post(ADMIN_CONTENT, json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    assert created.json()["release_year"] is None
    shown = await client.get(f"/api/v1/content/{created.json()['id']}")
    assert shown.json()["release_year"] is None
    assert shown.json()["published"] is True
