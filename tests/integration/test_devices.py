"""Signed-in devices: one per sign-in, the caller's marked current, and any one can be signed out."""

from __future__ import annotations

import uuid
from datetime import datetime

from helpers import auth, login, profile_status, refresh_status, register

DEVICES = "/api/v1/users/devices"


async def devices_of(client, token: str) -> list[dict]:
    response = await client.get(DEVICES, headers=auth(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["devices"])
    return list(body["devices"])


class TestListDevices:
    async def test_each_sign_in_is_one_device_and_the_callers_is_current(self, client):
        phone = await register(client, device_name="Ada's phone")
        tv = await login(client, device_name="Living-room TV")
        browser = await login(client)

        devices = await devices_of(client, tv["token"])
        assert len(devices) == 3
        assert {device["device_name"] for device in devices} >= {"Ada's phone", "Living-room TV"}
        current = [device for device in devices if device["current"]]
        assert [device["device_name"] for device in current] == ["Living-room TV"]
        for device in devices:
            assert set(device) == {"id", "device_name", "signed_in_at", "last_used_at", "expires_at", "current"}
            assert datetime.fromisoformat(device["expires_at"]) > datetime.fromisoformat(device["signed_in_at"])

        from_phone = await devices_of(client, phone["token"])
        assert [device["device_name"] for device in from_phone if device["current"]] == ["Ada's phone"]
        assert {device["id"] for device in from_phone} == {device["id"] for device in devices}
        assert await profile_status(client, browser["token"]) == 200

    async def test_device_name_defaults_to_the_user_agent(self, client):
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"},
            headers={"User-Agent": "ReelhouseTV/2.1"},
        )
        devices = await devices_of(client, response.json()["token"])
        assert [device["device_name"] for device in devices] == ["ReelhouseTV/2.1"]

    async def test_refreshing_keeps_the_same_device(self, client):
        session = await register(client)
        rotated = (await client.post("/api/v1/auth/refresh", json={"refresh": session["refresh"]})).json()
        devices = await devices_of(client, rotated["token"])
        assert len(devices) == 1
        assert devices[0]["current"] is True

    async def test_users_see_only_their_own_devices(self, client):
        ada = await register(client)
        await login(client)
        grace = await register(client, email="grace@example.com", name="Grace")
        assert len(await devices_of(client, grace["token"])) == 1
        assert len(await devices_of(client, ada["token"])) == 2

    async def test_signed_out_devices_are_not_listed(self, client):
        ada = await register(client)
        other = await login(client)
        assert (await client.post("/api/v1/auth/logout", headers=auth(other["token"]))).status_code == 204
        devices = await devices_of(client, ada["token"])
        assert [device["current"] for device in devices] == [True]

    async def test_anonymous_caller_gets_401(self, client):
        assert (await client.get(DEVICES)).status_code == 401
        assert (await client.delete(f"{DEVICES}/{uuid.uuid4()}")).status_code == 401


class TestSignOutDevice:
    async def test_deleting_another_device_signs_it_out_at_once(self, client):
        laptop = await register(client, device_name="Laptop")
        tv = await login(client, device_name="TV")
        tv_id = next(device["id"] for device in await devices_of(client, laptop["token"]) if not device["current"])

        response = await client.delete(f"{DEVICES}/{tv_id}", headers=auth(laptop["token"]))
        assert response.status_code == 204

        assert await profile_status(client, tv["token"]) == 401
        assert await refresh_status(client, tv["refresh"]) == 401
        assert await profile_status(client, laptop["token"]) == 200
        assert [device["device_name"] for device in await devices_of(client, laptop["token"])] == ["Laptop"]

    async def test_deleting_another_users_device_is_404_and_leaves_it_signed_in(self, client):
        ada = await register(client)
        grace = await register(client, email="grace@example.com", name="Grace")
        grace_device = (await devices_of(client, grace["token"]))[0]["id"]

        response = await client.delete(f"{DEVICES}/{grace_device}", headers=auth(ada["token"]))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert await profile_status(client, grace["token"]) == 200
        assert await refresh_status(client, grace["refresh"]) == 200

    async def test_unknown_device_id_is_404(self, client):
        ada = await register(client)
        response = await client.delete(f"{DEVICES}/{uuid.uuid4()}", headers=auth(ada["token"]))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    async def test_deleting_a_device_twice_is_404_the_second_time(self, client):
        ada = await register(client)
        other = await login(client)
        other_id = next(device["id"] for device in await devices_of(client, ada["token"]) if not device["current"])
        assert (await client.delete(f"{DEVICES}/{other_id}", headers=auth(ada["token"]))).status_code == 204
        assert (await client.delete(f"{DEVICES}/{other_id}", headers=auth(ada["token"]))).status_code == 404
        assert await profile_status(client, other["token"]) == 401

    async def test_malformed_device_id_is_not_a_server_error(self, client):
        ada = await register(client)
        response = await client.delete(f"{DEVICES}/not-a-uuid", headers=auth(ada["token"]))
        assert response.status_code in {404, 422}
        assert response.headers["content-type"].startswith("application/problem+json")
