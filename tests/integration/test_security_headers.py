"""Protective headers: no caching of tokens or signed-in answers, no sniffing, no framing, no referrer."""

from __future__ import annotations

import re

from conftest import ROOT
from helpers import auth, register
from reelhouse.cli import SERVER_FLAGS

PROTECTIVE = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def assert_protected(response) -> None:
    for name, value in PROTECTIVE.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers)


async def test_sign_in_register_and_refresh_answers_are_never_stored(client):
    registered = await client.post(
        "/api/v1/auth/register", json={"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"}
    )
    assert registered.status_code == 201
    signed_in = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "correct horse battery"}
    )
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh": signed_in.json()["refresh"]})
    refreshed_by_get = await client.get("/api/v1/auth/refresh", headers=auth(refreshed.json()["refresh"]))
    refused = await client.post("/api/v1/auth/login", json={"email": "ada@example.com", "password": "wrong password!"})
    for response in (registered, signed_in, refreshed, refreshed_by_get, refused):
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert_protected(response)


async def test_signed_in_answers_are_never_stored(client):
    session = await register(client)
    response = await client.get("/api/v1/users/profile", headers=auth(session["token"]))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_every_api_answer_is_protected_errors_and_unknown_routes_included(client):
    for path in ("/api/v1/plans", "/api/v1/no-such-route", "/api/v1/users/profile"):
        response = await client.get(path)
        assert_protected(response)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "cache-control" not in (await client.get("/api/v1/plans")).headers  # anonymous reads may be cached
    assert_protected(await client.get("/health"))


def test_the_servers_we_start_do_not_announce_themselves():
    """scripts/run and the container start the server through `reelhouse run`, whose uvicorn flags
    turn off its Server header and its proxy-header rewriting."""
    assert "--no-server-header" in SERVER_FLAGS
    assert "--no-proxy-headers" in SERVER_FLAGS
    assert re.search(r"^exec reelhouse run\b", (ROOT / "scripts" / "run").read_text(), re.MULTILINE)
    assert 'CMD ["reelhouse", "run"]' in (ROOT / "Dockerfile").read_text()


async def test_options_lists_every_method_of_the_path(client):
    """GET and POST /auth/refresh come from two handlers; OPTIONS names both, as 405 does."""
    for path in ("/api/v1/auth/refresh", "/api/v1/notifications/unsubscribe"):
        options = await client.options(path)
        assert options.status_code == 204
        assert set(options.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}, path
        refused = await client.delete(path)
        assert set(refused.headers["allow"].split(", ")) == set(options.headers["allow"].split(", "))
