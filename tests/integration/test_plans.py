"""Plans: public list and detail, admin writes, validation, archiving instead of dropping."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import auth, make_admin, register

PREMIUM = {
    "name": "Premium",
    "price": 1599,
    "validity_days": 30,
    "access_level": "premium",
    "max_devices_allowed": 4,
    "resolution": "4k",
    "description": "Everything in 4K",
}


async def create_plan(client, admin_token: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/admin/plans", json={**PREMIUM, **overrides}, headers=auth(admin_token))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class TestPublicPlans:
    async def test_list_shows_active_plans_only_with_pagination_keys(self, client):
        admin = await make_admin(client)
        await create_plan(client, admin["token"], name="Basic", price=899, access_level="basic")
        await create_plan(client, admin["token"], name="Old", is_active=False)
        response = await client.get("/api/v1/plans")
        assert response.status_code == 200
        body = response.json()
        assert [plan["name"] for plan in body["plans"]] == ["Basic"]
        assert body["total"] == 1
        assert body["limit"] == 20
        assert body["offset"] == 0

    async def test_only_admins_see_archived_plans_with_active_false(self, client):
        admin = await make_admin(client)
        await create_plan(client, admin["token"], name="Old", is_active=False)
        user = await register(client)
        as_user = await client.get("/api/v1/plans?active=false", headers=auth(user["token"]))
        as_admin = await client.get("/api/v1/plans?active=false", headers=auth(admin["token"]))
        assert as_user.json()["plans"] == []
        assert [plan["name"] for plan in as_admin.json()["plans"]] == ["Old"]

    async def test_detail_has_every_plan_field(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"])
        response = await client.get(f"/api/v1/plans/{plan['id']}")
        assert response.status_code == 200
        assert set(response.json()) == {
            "id", "name", "price", "currency", "validity_days", "access_level", "max_devices_allowed",
            "resolution", "stream_limit_policy", "description", "is_active", "created_at", "updated_at",
        }  # fmt: skip
        assert response.json()["currency"] == "USD"
        assert response.json()["stream_limit_policy"] == "evict_oldest"

    async def test_unknown_or_archived_plan_is_404_for_the_public(self, client):
        admin = await make_admin(client)
        archived = await create_plan(client, admin["token"], is_active=False)
        assert (await client.get(f"/api/v1/plans/{archived['id']}")).status_code == 404
        missing = await client.get("/api/v1/plans/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404
        assert missing.json()["code"] == "plan_not_found"


class TestAdminPlans:
    async def test_anonymous_401_and_user_403_on_every_write(self, client):
        user = await register(client)
        plan_path = "/api/v1/admin/plans/00000000-0000-0000-0000-000000000000"
        for method, path, body in [
            ("POST", "/api/v1/admin/plans", PREMIUM),
            ("PUT", plan_path, PREMIUM),
            ("PATCH", plan_path, {"price": 1}),
            ("DELETE", plan_path, None),
        ]:
            anonymous = await client.request(method, path, json=body)
            assert anonymous.status_code == 401, (method, path)
            as_user = await client.request(method, path, json=body, headers=auth(user["token"]))
            assert as_user.status_code == 403, (method, path)
            assert as_user.json()["code"] == "admin_required"

    async def test_put_replaces_and_patch_changes_only_given_fields(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], description="old words")
        replaced = await client.put(
            f"/api/v1/admin/plans/{plan['id']}",
            json={**PREMIUM, "price": 1999, "currency": "EUR"},
            headers=auth(admin["token"]),
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["price"] == 1999
        assert replaced.json()["description"] == PREMIUM["description"]
        patched = await client.patch(
            f"/api/v1/admin/plans/{plan['id']}", json={"max_devices_allowed": 2}, headers=auth(admin["token"])
        )
        assert patched.status_code == 200
        assert patched.json()["max_devices_allowed"] == 2
        assert patched.json()["price"] == 1999
        assert patched.json()["currency"] == "EUR"

    async def test_duplicate_name_is_409_on_create_and_rename(self, client):
        admin = await make_admin(client)
        await create_plan(client, admin["token"], name="Basic")
        other = await create_plan(client, admin["token"], name="Premium")
        duplicate = await client.post(
            "/api/v1/admin/plans", json={**PREMIUM, "name": "Basic"}, headers=auth(admin["token"])
        )
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "plan_name_taken"
        rename = await client.patch(
            f"/api/v1/admin/plans/{other['id']}", json={"name": "Basic"}, headers=auth(admin["token"])
        )
        assert rename.status_code == 409

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("price", -1),
            ("validity_days", 0),
            ("validity_days", 3651),
            ("max_devices_allowed", 0),
            ("max_devices_allowed", 11),
            ("access_level", "gold"),
            ("resolution", "8k"),
            ("currency", "usd"),
            ("stream_limit_policy", "whatever"),
            ("name", ""),
        ],
    )
    async def test_invalid_fields_are_422_naming_the_field(self, client, field, value):
        admin = await make_admin(client)
        response = await client.post(
            "/api/v1/admin/plans", json={**PREMIUM, field: value}, headers=auth(admin["token"])
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert any(error["field"] == field for error in response.json()["errors"])

    async def test_delete_drops_an_unused_plan(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"])
        response = await client.delete(f"/api/v1/admin/plans/{plan['id']}", headers=auth(admin["token"]))
        assert response.status_code == 200  # with a message, as the seed API answers
        assert response.json() == {"message": "plan deleted successfully", "archived": False, "plan": None}
        assert (await client.get(f"/api/v1/plans/{plan['id']}", headers=auth(admin["token"]))).status_code == 404

    async def test_delete_archives_a_plan_with_subscriptions(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"])
        user = await register(client)
        subscribed = await client.post(
            "/api/v1/subscriptions", json={"plan_id": plan["id"]}, headers=auth(user["token"])
        )
        assert subscribed.status_code == 201
        response = await client.delete(f"/api/v1/admin/plans/{plan['id']}", headers=auth(admin["token"]))
        assert response.status_code == 200
        assert response.json()["archived"] is True
        assert response.json()["plan"]["is_active"] is False
        kept = await client.get(f"/api/v1/plans/{plan['id']}", headers=auth(admin["token"]))
        assert kept.status_code == 200
        history = await client.get("/api/v1/subscriptions/history", headers=auth(user["token"]))
        assert history.json()["subscriptions"][0]["plan"]["id"] == plan["id"]
