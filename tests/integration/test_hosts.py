"""A forged Host header never reaches the URLs we hand out; ALLOWED_HOSTS refuses other hosts."""

from __future__ import annotations

from typing import Any

from catalog_helpers import create_title, new_admin, new_user

PLAYBACK = "/api/v1/playback/sessions"


async def start_stream(client, headers: dict[str, str] | None = None) -> dict[str, Any]:
    admin = await new_admin(client)
    title = await create_title(client, admin)
    viewer = await new_user(client)
    response = await client.post(
        PLAYBACK, json={"content_id": title["id"], "device_id": "tv"}, headers={**viewer.headers, **(headers or {})}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_without_public_url_a_foreign_host_gets_relative_urls(client):
    body = await start_stream(client, {"Host": "evil.example"})
    assert body["stream_url"].startswith("/media/")
    assert body["ws_url"].startswith("/api/v1/playback/ws?token=")
    assert "evil" not in body["stream_url"] + body["ws_url"]


async def test_a_loopback_host_gets_absolute_urls_for_local_development(client):
    body = await start_stream(client, {"Host": "127.0.0.1:8000"})
    assert body["stream_url"].startswith("http://127.0.0.1:8000/media/")
    assert body["ws_url"].startswith("ws://127.0.0.1:8000/api/v1/playback/ws?token=")


async def test_public_url_is_the_only_origin_whatever_the_host_says(make_client):
    async with make_client(PUBLIC_URL="https://tv.example.com/") as client:
        body = await start_stream(client, {"Host": "evil.example"})
    assert body["stream_url"].startswith("https://tv.example.com/media/")
    assert body["ws_url"].startswith("wss://tv.example.com/api/v1/playback/ws?token=")


async def test_allowed_hosts_refuse_any_other_host_with_400(make_client):
    async with make_client(ALLOWED_HOSTS="tv.example.com,*.cdn.example.com,testserver.local") as client:
        refused = await client.get("/api/v1/plans", headers={"Host": "evil.example"})
        assert refused.status_code == 400
        assert refused.json()["code"] == "invalid_host"
        lookalike = await client.get("/api/v1/plans", headers={"Host": "tv.example.com.evil.example"})
        assert lookalike.status_code == 400
        assert (await client.get("/api/v1/plans", headers={"Host": "tv.example.com:8443"})).status_code == 200
        assert (await client.get("/api/v1/plans", headers={"Host": "eu.cdn.example.com"})).status_code == 200
        # Orchestrators probe an internal address.
        assert (await client.get("/health", headers={"Host": "10.0.0.7:8000"})).status_code == 200
        assert (await client.get("/ready", headers={"Host": "10.0.0.7:8000"})).status_code == 200
        body = await start_stream(client, {"Host": "tv.example.com"})
    assert body["stream_url"].startswith("http://tv.example.com/media/")
