"""Administrators manage accounts: list and search, view, grant or revoke admin, disable or enable.

Also the start-up bootstrap of the first administrator from ADMIN_EMAIL / ADMIN_PASSWORD.
"""

from __future__ import annotations

import uuid

import pytest

from helpers import ADMIN_EMAIL, PASSWORD, auth, login, make_admin, profile_status, refresh_status, register

USERS = "/api/v1/admin/users"
ADMIN_USER_KEYS = {
    "id",
    "email",
    "name",
    "bio",
    "picture",
    "phone",
    "is_admin",
    "is_active",
    "last_login_at",
    "created_at",
    "updated_at",
}


@pytest.fixture
async def admin(client):
    return await make_admin(client)


async def list_users(client, admin_token: str, **params) -> dict:
    response = await client.get(USERS, params=params, headers=auth(admin_token))
    assert response.status_code == 200, response.text
    return dict(response.json())


class TestWhoMayManageUsers:
    ROUTES = [
        ("GET", ""),
        ("GET", "/{id}"),
        ("POST", "/{id}/grant-admin"),
        ("POST", "/{id}/revoke-admin"),
        ("POST", "/{id}/disable"),
        ("POST", "/{id}/enable"),
    ]

    async def test_anonymous_gets_401_and_a_normal_user_403(self, client):
        ada = await register(client)
        for method, path in self.ROUTES:
            url = USERS + path.format(id=ada["user"]["id"])
            anonymous = await client.request(method, url)
            assert anonymous.status_code == 401, url
            assert anonymous.json()["code"] == "authentication_required"
            normal = await client.request(method, url, headers=auth(ada["token"]))
            assert normal.status_code == 403, url
            assert normal.json()["code"] == "admin_required"
        assert (await profile_status(client, ada["token"])) == 200
        assert (await client.get("/api/v1/users/profile", headers=auth(ada["token"]))).json()["is_admin"] is False

    async def test_admin_may_list(self, client, admin):
        body = await list_users(client, admin["token"])
        assert body["total"] == 1
        assert body["users"][0]["email"] == ADMIN_EMAIL
        assert set(body["users"][0]) == ADMIN_USER_KEYS


class TestListUsers:
    async def test_search_matches_part_of_the_email_or_name_in_any_case(self, client, admin):
        await register(client, email="ada@example.com", name="Ada Lovelace")
        await register(client, email="grace@navy.mil", name="Grace Hopper")
        await register(client, email="alan@example.org", name="Alan Turing")

        def emails(body: dict) -> set[str]:
            return {user["email"] for user in body["users"]}

        assert emails(await list_users(client, admin["token"], q="LOVELACE")) == {"ada@example.com"}
        assert emails(await list_users(client, admin["token"], q="navy")) == {"grace@navy.mil"}
        assert emails(await list_users(client, admin["token"], q="EXAMPLE.")) == {
            "ada@example.com",
            "alan@example.org",
            ADMIN_EMAIL,
        }
        nothing = await list_users(client, admin["token"], q="nobody-like-this")
        assert nothing["users"] == []
        assert nothing["total"] == 0

    async def test_search_treats_wildcards_literally(self, client, admin):
        await register(client, email="ada_l@example.com", name="Ada")
        await register(client, email="adaxl@example.com", name="Ada X")
        await register(client, email="pct@example.com", name="100% Ada")
        underscore = await list_users(client, admin["token"], q="ada_l")
        assert [user["email"] for user in underscore["users"]] == ["ada_l@example.com"]
        percent = await list_users(client, admin["token"], q="0%")
        assert [user["email"] for user in percent["users"]] == ["pct@example.com"]

    async def test_filters_by_admin_and_active_flags(self, client, admin):
        ada = await register(client)
        grace = await register(client, email="grace@example.com", name="Grace")
        await client.post(f"{USERS}/{grace['user']['id']}/disable", headers=auth(admin["token"]))

        admins = await list_users(client, admin["token"], is_admin="true")
        assert [user["email"] for user in admins["users"]] == [ADMIN_EMAIL]
        non_admins = await list_users(client, admin["token"], is_admin="false")
        assert {user["email"] for user in non_admins["users"]} == {"ada@example.com", "grace@example.com"}
        disabled = await list_users(client, admin["token"], is_active="false")
        assert [user["id"] for user in disabled["users"]] == [grace["user"]["id"]]
        active_non_admins = await list_users(client, admin["token"], is_active="true", is_admin="false")
        assert [user["id"] for user in active_non_admins["users"]] == [ada["user"]["id"]]

    async def test_pages_with_total_limit_and_offset(self, client, admin):
        for index in range(5):
            await register(client, email=f"user{index}@example.com", name=f"User {index}")
        first = await list_users(client, admin["token"], limit=2)
        assert (first["total"], first["limit"], first["offset"], len(first["users"])) == (6, 2, 0, 2)
        second = await list_users(client, admin["token"], limit=2, offset=2)
        third = await list_users(client, admin["token"], limit=2, offset=4)
        past_end = await list_users(client, admin["token"], limit=2, offset=6)
        assert past_end["users"] == []
        assert past_end["total"] == 6
        seen = [user["id"] for page in (first, second, third) for user in page["users"]]
        assert len(seen) == len(set(seen)) == 6

        default = await list_users(client, admin["token"])
        assert (default["limit"], default["offset"], len(default["users"])) == (20, 0, 6)

    async def test_bad_paging_is_a_validation_error(self, client, admin):
        for params in [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "many"}]:
            response = await client.get(USERS, params=params, headers=auth(admin["token"]))
            assert response.status_code == 422, params
            errors = response.json()["errors"]
            assert set(params) <= {error["field"] for error in errors}, params
            assert {error["source"] for error in errors} == {"query"}, params


class TestViewUser:
    async def test_admin_sees_one_user(self, client, admin):
        ada = await register(client)
        response = await client.get(f"{USERS}/{ada['user']['id']}", headers=auth(admin["token"]))
        assert response.status_code == 200
        body = response.json()
        assert set(body) == ADMIN_USER_KEYS
        assert body["email"] == "ada@example.com"
        assert body["is_active"] is True
        assert body["is_admin"] is False

    async def test_last_login_is_recorded(self, client, admin):
        ada = await register(client)
        before = (await client.get(f"{USERS}/{ada['user']['id']}", headers=auth(admin["token"]))).json()
        await login(client)
        after = (await client.get(f"{USERS}/{ada['user']['id']}", headers=auth(admin["token"]))).json()
        assert before["last_login_at"] is None
        assert after["last_login_at"] is not None

    async def test_unknown_user_is_404(self, client, admin):
        for action in ["", "/grant-admin", "/revoke-admin", "/disable", "/enable"]:
            method = "GET" if not action else "POST"
            response = await client.request(method, f"{USERS}/{uuid.uuid4()}{action}", headers=auth(admin["token"]))
            assert response.status_code == 404, action
            assert response.json()["code"] == "not_found"


class TestAdminRights:
    async def test_granting_admin_takes_effect_on_the_users_current_token(self, client, admin):
        ada = await register(client)
        response = await client.post(f"{USERS}/{ada['user']['id']}/grant-admin", headers=auth(admin["token"]))
        assert response.status_code == 200
        assert response.json()["is_admin"] is True
        assert (await client.get(USERS, headers=auth(ada["token"]))).status_code == 200
        assert (await client.get("/api/v1/users/profile", headers=auth(ada["token"]))).json()["is_admin"] is True

    async def test_revoking_admin_takes_effect_at_once(self, client, admin):
        ada = await register(client)
        await client.post(f"{USERS}/{ada['user']['id']}/grant-admin", headers=auth(admin["token"]))
        response = await client.post(f"{USERS}/{ada['user']['id']}/revoke-admin", headers=auth(admin["token"]))
        assert response.status_code == 200
        assert response.json()["is_admin"] is False
        denied = await client.get(USERS, headers=auth(ada["token"]))
        assert denied.status_code == 403
        assert denied.json()["code"] == "admin_required"

    async def test_admin_cannot_revoke_their_own_admin(self, client, admin):
        response = await client.post(f"{USERS}/{admin['user']['id']}/revoke-admin", headers=auth(admin["token"]))
        assert response.status_code == 409
        assert response.json()["code"] == "cannot_change_self"
        assert (await list_users(client, admin["token"]))["users"][0]["is_admin"] is True

    async def test_one_admin_may_revoke_another(self, client, admin):
        other = await register(client)
        await client.post(f"{USERS}/{other['user']['id']}/grant-admin", headers=auth(admin["token"]))
        response = await client.post(f"{USERS}/{admin['user']['id']}/revoke-admin", headers=auth(other["token"]))
        assert response.status_code == 200
        assert (await client.get(USERS, headers=auth(admin["token"]))).status_code == 403


class TestDisableAndEnable:
    async def test_disabling_stops_tokens_at_once_and_refuses_sign_in(self, client, admin):
        ada = await register(client)
        second_device = await login(client)
        response = await client.post(f"{USERS}/{ada['user']['id']}/disable", headers=auth(admin["token"]))
        assert response.status_code == 200
        assert response.json()["is_active"] is False

        for device in (ada, second_device):
            assert await profile_status(client, device["token"]) == 401
            assert await refresh_status(client, device["refresh"]) == 401
        refused = await client.post("/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert refused.status_code == 403
        assert refused.json()["code"] == "account_disabled"

    async def test_enabling_again_allows_sign_in(self, client, admin):
        ada = await register(client)
        await client.post(f"{USERS}/{ada['user']['id']}/disable", headers=auth(admin["token"]))
        response = await client.post(f"{USERS}/{ada['user']['id']}/enable", headers=auth(admin["token"]))
        assert response.status_code == 200
        assert response.json()["is_active"] is True
        fresh = await login(client)
        assert await profile_status(client, fresh["token"]) == 200
        # Tokens issued before the account was disabled stay signed out.
        assert await profile_status(client, ada["token"]) == 401

    async def test_admin_cannot_disable_themselves(self, client, admin):
        response = await client.post(f"{USERS}/{admin['user']['id']}/disable", headers=auth(admin["token"]))
        assert response.status_code == 409
        assert response.json()["code"] == "cannot_change_self"
        assert await profile_status(client, admin["token"]) == 200

    async def test_disabling_an_admin_takes_their_admin_access_away_at_once(self, client, admin):
        other = await register(client)
        await client.post(f"{USERS}/{other['user']['id']}/grant-admin", headers=auth(admin["token"]))
        await client.post(f"{USERS}/{other['user']['id']}/disable", headers=auth(admin["token"]))
        assert (await client.get(USERS, headers=auth(other["token"]))).status_code == 401


class TestAdminBootstrap:
    SETTINGS = {"ADMIN_EMAIL": "Root@Example.com", "ADMIN_PASSWORD": "bootstrap password 1"}

    async def test_start_up_creates_the_configured_admin(self, make_client):
        async with make_client(**self.SETTINGS) as client:
            root = await login(client, email="root@example.com", password="bootstrap password 1")
            assert root["user"]["is_admin"] is True
            assert (await client.get(USERS, headers=auth(root["token"]))).status_code == 200

    async def test_start_up_bootstrap_is_idempotent(self, make_client):
        async with make_client(**self.SETTINGS) as client:
            first = await login(client, email="root@example.com", password="bootstrap password 1")
        async with make_client(reset=False, **self.SETTINGS) as client:
            root = await login(client, email="root@example.com", password="bootstrap password 1")
            assert root["user"]["id"] == first["user"]["id"]
            listed = await list_users(client, root["token"], q="root@")
            assert listed["total"] == 1
            assert listed["users"][0]["is_admin"] is True

    async def test_start_up_promotes_an_existing_account(self, make_client):
        async with make_client() as client:
            ada = await register(client, email="root@example.com")
            assert ada["user"]["is_admin"] is False
        async with make_client(reset=False, **self.SETTINGS) as client:
            root = await login(client, email="root@example.com", password="bootstrap password 1")
            assert root["user"]["id"] == ada["user"]["id"]
            assert root["user"]["is_admin"] is True

    async def test_no_admin_is_created_without_both_settings(self, make_client):
        async with make_client(ADMIN_EMAIL="root@example.com") as client:
            response = await client.post(
                "/api/v1/auth/login", json={"email": "root@example.com", "password": "bootstrap password 1"}
            )
            assert response.status_code == 401
