"""The signed-in user's profile: read, replace (PUT), change some fields (PATCH)."""

from __future__ import annotations

from datetime import datetime

import pytest

from helpers import auth, make_admin, register

PROFILE = "/api/v1/users/profile"
FULL_PROFILE = {
    "name": "Ada Lovelace",
    "bio": "First programmer.",
    "picture": "https://example.com/ada.png",
    "phone": "+44 20 7946 0000",
}


@pytest.fixture
async def ada(client):
    return await register(client, **{key: value for key, value in FULL_PROFILE.items() if key != "name"})


class TestReadProfile:
    async def test_profile_has_the_documented_shape(self, client, ada):
        response = await client.get(PROFILE, headers=auth(ada["token"]))
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"id", "email", "name", "bio", "picture", "phone", "is_admin", "created_at", "updated_at"}
        assert body["id"] == ada["user"]["id"]
        assert body["email"] == "ada@example.com"
        assert body["bio"] == FULL_PROFILE["bio"]
        assert body["picture"] == FULL_PROFILE["picture"]
        assert body["phone"] == FULL_PROFILE["phone"]
        assert body["is_admin"] is False
        for stamp in ("created_at", "updated_at"):
            assert datetime.fromisoformat(body[stamp]).utcoffset() is not None

    async def test_anonymous_caller_gets_401(self, client):
        for method in ("GET", "PUT", "PATCH"):
            response = await client.request(method, PROFILE, json={"name": "Nobody"})
            assert response.status_code == 401
            assert response.json()["code"] == "authentication_required"

    async def test_each_user_sees_their_own_profile(self, client, ada):
        grace = await register(client, email="grace@example.com", name="Grace")
        assert (await client.get(PROFILE, headers=auth(grace["token"]))).json()["email"] == "grace@example.com"
        assert (await client.get(PROFILE, headers=auth(ada["token"]))).json()["email"] == "ada@example.com"


class TestReplaceProfile:
    async def test_put_replaces_the_profile_and_clears_omitted_fields(self, client, ada):
        response = await client.put(PROFILE, json={"name": "Countess Lovelace"}, headers=auth(ada["token"]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["name"] == "Countess Lovelace"
        assert body["bio"] is None
        assert body["picture"] is None
        assert body["phone"] is None
        assert (await client.get(PROFILE, headers=auth(ada["token"]))).json() == body

    async def test_put_sets_every_field_given(self, client):
        session = await register(client)
        response = await client.put(PROFILE, json=FULL_PROFILE, headers=auth(session["token"]))
        assert response.status_code == 200
        assert {key: response.json()[key] for key in FULL_PROFILE} == FULL_PROFILE

    async def test_put_needs_a_name(self, client, ada):
        response = await client.put(PROFILE, json={"bio": "no name"}, headers=auth(ada["token"]))
        assert response.status_code == 422
        assert [error["field"] for error in response.json()["errors"]] == ["name"]

    async def test_name_whitespace_is_tidied(self, client, ada):
        response = await client.put(PROFILE, json={"name": "  Ada   King  "}, headers=auth(ada["token"]))
        assert response.json()["name"] == "Ada King"


class TestPatchProfile:
    async def test_patch_changes_only_the_fields_given(self, client, ada):
        response = await client.patch(PROFILE, json={"bio": "Poet of science."}, headers=auth(ada["token"]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["bio"] == "Poet of science."
        assert body["name"] == "Ada"
        assert body["picture"] == FULL_PROFILE["picture"]
        assert body["phone"] == FULL_PROFILE["phone"]
        assert body["created_at"] == ada["user"]["created_at"]
        assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(ada["user"]["updated_at"])

    async def test_patch_with_null_clears_a_field(self, client, ada):
        response = await client.patch(PROFILE, json={"phone": None, "picture": None}, headers=auth(ada["token"]))
        body = response.json()
        assert body["phone"] is None
        assert body["picture"] is None
        assert body["bio"] == FULL_PROFILE["bio"]

    async def test_patch_cannot_clear_the_name(self, client, ada):
        response = await client.patch(PROFILE, json={"name": None}, headers=auth(ada["token"]))
        assert response.status_code == 422
        assert (await client.get(PROFILE, headers=auth(ada["token"]))).json()["name"] == "Ada"

    async def test_empty_patch_changes_nothing(self, client, ada):
        before = (await client.get(PROFILE, headers=auth(ada["token"]))).json()
        response = await client.patch(PROFILE, json={}, headers=auth(ada["token"]))
        assert response.status_code == 200
        after = response.json()
        assert {key: after[key] for key in FULL_PROFILE} == {key: before[key] for key in FULL_PROFILE}


class TestProfileValidation:
    INVALID = [
        ("picture", "not a url"),
        ("picture", "javascript:alert(1)"),
        ("picture", "ftp://example.com/a.png"),
        ("name", "x" * 101),
        ("name", "   "),
        ("name", ""),
        ("phone", "call me maybe"),
        ("phone", "1" * 40),
        ("bio", "b" * 2001),
    ]

    @pytest.mark.parametrize("method", ["PUT", "PATCH"])
    async def test_invalid_field_is_rejected_and_nothing_changes(self, client, ada, method):
        for field, value in self.INVALID:
            body = {"name": "Ada", field: value}
            response = await client.request(method, PROFILE, json=body, headers=auth(ada["token"]))
            assert response.status_code == 422, (field, value)
            assert field in {error["field"] for error in response.json()["errors"]}, (field, value)
        profile = (await client.get(PROFILE, headers=auth(ada["token"]))).json()
        assert {key: profile[key] for key in FULL_PROFILE} == {**FULL_PROFILE, "name": "Ada"}

    async def test_is_admin_and_email_in_the_body_change_nothing(self, client, ada):
        body = {"name": "Ada", "is_admin": True, "email": "root@example.com", "is_active": False, "id": "x"}
        for method in ("PUT", "PATCH"):
            response = await client.request(method, PROFILE, json=body, headers=auth(ada["token"]))
            assert response.status_code == 200, method
            assert response.json()["is_admin"] is False, method
        profile = (await client.get(PROFILE, headers=auth(ada["token"]))).json()
        assert profile["is_admin"] is False
        assert profile["email"] == "ada@example.com"
        assert profile["id"] == ada["user"]["id"]
        assert (await client.get("/api/v1/admin/users", headers=auth(ada["token"]))).status_code == 403

        admin = await make_admin(client)
        stored = (await client.get(f"/api/v1/admin/users/{ada['user']['id']}", headers=auth(admin["token"]))).json()
        assert stored["is_admin"] is False
        assert stored["is_active"] is True
        assert stored["email"] == "ada@example.com"


class TestRememberedProfiles:
    """Each instance remembers profiles; a change made anywhere is seen at once everywhere."""

    async def test_a_change_is_seen_by_the_very_next_read(self, client, ada):
        headers = auth(ada["token"])
        for _ in range(2):  # read twice: the second answer comes from memory
            assert (await client.get(PROFILE, headers=headers)).json()["bio"] == FULL_PROFILE["bio"]
        changed = await client.patch(PROFILE, json={"bio": "Analyst."}, headers=headers)
        assert changed.status_code == 200
        assert (await client.get(PROFILE, headers=headers)).json()["bio"] == "Analyst."

    async def test_a_change_through_another_instance_is_seen_at_once(self, backend, make_client, client, ada):
        if backend != "postgres":
            pytest.skip("the embedded backends serve one process")
        headers = auth(ada["token"])
        async with make_client(reset=False) as other:
            assert (await client.get(PROFILE, headers=headers)).json()["name"] == "Ada"
            assert (await other.get(PROFILE, headers=headers)).json()["name"] == "Ada"
            replaced = await other.put(PROFILE, json={**FULL_PROFILE, "name": "Countess"}, headers=headers)
            assert replaced.status_code == 200
            assert (await client.get(PROFILE, headers=headers)).json()["name"] == "Countess"
            admin = await make_admin(other)
            granted = await other.post(
                f"/api/v1/admin/users/{ada['user']['id']}/grant-admin", headers=auth(admin["token"])
            )
            assert granted.status_code == 200
            assert (await client.get(PROFILE, headers=headers)).json()["is_admin"] is True
