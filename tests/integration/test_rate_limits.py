"""Rate limits through the HTTP API: who shares a bucket, which bucket a route uses, and what a client is told."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from conftest import build_settings, reset_state
from helpers import auth, register
from reelhouse.app import create_app
from reelhouse.config import Settings

ANONYMOUS, USER, AUTH = 5, 8, 3
LIMITS = {
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_ANONYMOUS_PER_MINUTE": str(ANONYMOUS),
    "RATE_LIMIT_USER_PER_MINUTE": str(USER),
    "RATE_LIMIT_AUTH_PER_MINUTE": str(AUTH),
}
PUBLIC = "/api/v1/plans"
PROFILE = "/api/v1/users/profile"
LOGIN = "/api/v1/auth/login"
WRONG_LOGIN = {"email": "nobody@example.com", "password": "not the password"}


def ratelimit(response: httpx.Response) -> dict[str, str]:
    """The ``RateLimit`` field as ``{"bucket": ..., "r": ..., "t": ...}``."""
    bucket, *params = response.headers["RateLimit"].split(";")
    return {"bucket": bucket.strip('"'), **dict(param.split("=", 1) for param in params)}


async def statuses(client: httpx.AsyncClient, count: int, path: str = PUBLIC, **kwargs: Any) -> list[int]:
    return [(await client.get(path, **kwargs)).status_code for _ in range(count)]


def assert_rate_limited(response: httpx.Response, bucket: str, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    retry_after = int(response.headers["Retry-After"])
    assert retry_after == math.ceil(60 / limit)
    assert body["retry_after"] == retry_after
    assert response.headers["RateLimit-Policy"] == f'"{bucket}";q={limit};w=60'
    assert ratelimit(response) == {"bucket": bucket, "r": "0", "t": str(retry_after)}


@pytest.fixture
def limited(make_client: Callable[..., Any]) -> Callable[..., Any]:
    """``async with limited(**more_settings) as client``: an app with small limits switched on."""

    def factory(**overrides: str) -> Any:
        return make_client(**{**LIMITS, **overrides})

    return factory


class TestAnonymousCallers:
    async def test_a_burst_of_the_limit_passes_then_429_with_retry_after(self, limited):
        async with limited() as client:
            allowed = [await client.get(PUBLIC) for _ in range(ANONYMOUS)]
            denied = await client.get(PUBLIC)

        assert [response.status_code for response in allowed] == [200] * ANONYMOUS
        assert [ratelimit(response)["r"] for response in allowed] == ["4", "3", "2", "1", "0"]
        assert all(r.headers["RateLimit-Policy"] == f'"anonymous";q={ANONYMOUS};w=60' for r in allowed)
        assert ratelimit(allowed[0])["t"] == str(60 // ANONYMOUS)
        assert_rate_limited(denied, "anonymous", ANONYMOUS)

    async def test_refused_requests_count_too(self, limited):
        async with limited() as client:
            refused = await statuses(client, 2, PROFILE)
            public = await statuses(client, ANONYMOUS - 2 + 1)

        assert refused == [401, 401]
        assert public == [200] * (ANONYMOUS - 2) + [429]

    async def test_a_refused_token_counts_against_the_caller_and_says_so(self, limited):
        async with limited() as client:
            refused = await client.get(PROFILE, headers=auth("not-a-token"))
            rest = await statuses(client, ANONYMOUS)

        assert refused.status_code == 401
        assert ratelimit(refused) == {"bucket": "anonymous", "r": str(ANONYMOUS - 1), "t": str(60 // ANONYMOUS)}
        assert rest == [200] * (ANONYMOUS - 1) + [429]

    async def test_health_is_never_limited_and_readiness_has_its_own_bucket(self, limited):
        async with limited() as client:
            probes = await statuses(client, 3 * ANONYMOUS, "/health") + await statuses(client, 3, "/ready")
            health = await client.get("/health")
            public = await statuses(client, ANONYMOUS)

        assert probes == [200] * (3 * ANONYMOUS + 3)
        assert "RateLimit" not in health.headers
        assert public == [200] * ANONYMOUS

    async def test_readiness_probes_are_limited_per_ip(self, limited):
        async with limited(RATE_LIMIT_PROBE_PER_MINUTE="4") as client:
            probes = await statuses(client, 5, "/ready")
            refused = await client.get("/ready")
            health = await statuses(client, 3, "/health")

        assert probes == [200] * 4 + [429]
        assert refused.headers["retry-after"]
        assert ratelimit(refused)["bucket"] == "probe"
        assert health == [200] * 3

    async def test_without_trusted_proxies_x_forwarded_for_is_ignored(self, limited):
        async with limited() as client:
            results = [
                (await client.get(PUBLIC, headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
                for n in range(ANONYMOUS + 1)
            ]

        assert results == [200] * ANONYMOUS + [429]

    async def test_switched_off_nothing_is_limited_or_announced(self, make_client):
        async with make_client(**{**LIMITS, "RATE_LIMIT_ENABLED": "false"}) as client:
            responses = [await client.get(PUBLIC) for _ in range(3 * ANONYMOUS)]

        assert {response.status_code for response in responses} == {200}
        assert "RateLimit" not in responses[-1].headers


class TestSignedInCallers:
    async def test_each_user_has_a_bucket_of_their_own(self, limited):
        async with limited() as client:
            ada = (await register(client, "ada@example.com"))["token"]
            bob = (await register(client, "bob@example.com", name="Bob"))["token"]

            ada_statuses = await statuses(client, USER + 1, PROFILE, headers=auth(ada))
            bob_first = await client.get(PROFILE, headers=auth(bob))
            ada_denied = await client.get(PROFILE, headers=auth(ada))

        assert ada_statuses == [200] * USER + [429]
        assert bob_first.status_code == 200
        assert ratelimit(bob_first) == {"bucket": "user", "r": str(USER - 1), "t": str(math.ceil(60 / USER))}
        assert_rate_limited(ada_denied, "user", USER)

    async def test_signed_in_requests_do_not_use_up_the_anonymous_bucket(self, limited):
        async with limited() as client:
            token = (await register(client))["token"]
            signed_in = await statuses(client, USER, PUBLIC, headers=auth(token))
            anonymous = await statuses(client, ANONYMOUS + 1)

        assert signed_in == [200] * USER
        assert anonymous == [200] * ANONYMOUS + [429]


class TestSignInRoutes:
    async def test_sign_in_routes_share_the_stricter_per_ip_bucket(self, limited):
        async with limited() as client:
            first = await client.post(LOGIN, json=WRONG_LOGIN)
            more = [
                (await client.post("/api/v1/auth/refresh", json={"refresh": "nope"})).status_code,
                (await client.get("/api/v1/auth/refresh", headers=auth("nope"))).status_code,
            ]
            denied = await client.post("/api/v1/auth/register", json={"email": "x@example.com", "password": "x" * 12})
            public = await statuses(client, 1)

        assert first.status_code == 401
        assert first.headers["RateLimit-Policy"] == f'"auth";q={AUTH};w=60'
        assert ratelimit(first)["r"] == str(AUTH - 1)
        assert more == [401, 401]
        assert_rate_limited(denied, "auth", AUTH)
        assert public == [200]

    async def test_a_signed_in_caller_still_uses_the_auth_bucket_there(self, limited):
        async with limited(RATE_LIMIT_AUTH_PER_MINUTE="2") as client:
            token = (await register(client))["token"]
            second = await client.post(LOGIN, json=WRONG_LOGIN, headers=auth(token))
            denied = await client.post(LOGIN, json=WRONG_LOGIN, headers=auth(token))

        assert ratelimit(second) == {"bucket": "auth", "r": "0", "t": "60"}
        assert_rate_limited(denied, "auth", 2)


def from_peer(app: Any, address: str) -> Any:
    """The app as reached from ``address`` (the test client always says its peer is "testclient")."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (address, 50000)}
        await app(scope, receive, send)

    return asgi


@pytest.fixture
def behind_proxy(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """``async with behind_proxy(peer, **settings) as client``: requests arrive from the socket peer ``peer``."""

    @asynccontextmanager
    async def factory(peer: str, **overrides: str) -> AsyncIterator[httpx.AsyncClient]:
        settings = make_settings(**{**LIMITS, **overrides})
        await reset_state(settings)
        async with AsyncTestClient(app=from_peer(create_app(settings), peer)) as client:
            yield client

    return factory


class TestTrustedProxies:
    async def test_each_forwarded_client_has_its_own_bucket(self, behind_proxy):
        async with behind_proxy("10.0.0.2", TRUSTED_PROXIES="10.0.0.0/8") as client:
            first = await statuses(client, ANONYMOUS + 1, headers={"X-Forwarded-For": "198.51.100.1"})
            second = await statuses(client, 1, headers={"X-Forwarded-For": "198.51.100.2"})

        assert first == [200] * ANONYMOUS + [429]
        assert second == [200]

    async def test_a_client_cannot_dodge_its_bucket_by_forging_hops(self, behind_proxy):
        async with behind_proxy("10.0.0.2", TRUSTED_PROXIES="10.0.0.0/8") as client:
            forged = [
                (await client.get(PUBLIC, headers={"X-Forwarded-For": f"192.0.2.{n}, 198.51.100.1"})).status_code
                for n in range(ANONYMOUS + 1)
            ]

        assert forged == [200] * ANONYMOUS + [429]

    async def test_the_auth_bucket_follows_the_forwarded_client_too(self, behind_proxy):
        async with behind_proxy("10.0.0.2", TRUSTED_PROXIES="10.0.0.0/8") as client:
            first = [
                (await client.post(LOGIN, json=WRONG_LOGIN, headers={"X-Forwarded-For": "198.51.100.1"})).status_code
                for _ in range(AUTH + 1)
            ]
            other = await client.post(LOGIN, json=WRONG_LOGIN, headers={"X-Forwarded-For": "198.51.100.2"})

        assert first == [401] * AUTH + [429]
        assert other.status_code == 401

    async def test_ipv6_callers_are_counted_by_their_slash_64(self, behind_proxy):
        async with behind_proxy("10.0.0.2", TRUSTED_PROXIES="10.0.0.0/8") as client:
            same_line = [
                (await client.get(PUBLIC, headers={"X-Forwarded-For": f"2001:db8:0:1::{n:x}"})).status_code
                for n in range(1, ANONYMOUS + 2)
            ]
            next_line = await statuses(client, 1, headers={"X-Forwarded-For": "2001:db8:0:2::1"})

        assert same_line == [200] * ANONYMOUS + [429]
        assert next_line == [200]

    async def test_from_a_peer_that_is_not_trusted_the_header_is_ignored(self, behind_proxy):
        async with behind_proxy("203.0.113.9", TRUSTED_PROXIES="10.0.0.0/8") as client:
            results = [
                (await client.get(PUBLIC, headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
                for n in range(ANONYMOUS + 1)
            ]

        assert results == [200] * ANONYMOUS + [429]


async def test_public_requests_still_answer_while_the_limiter_is_unreachable(postgres_url: str):
    # Nothing listens on port 1: every Redis call fails at once; the limiter lets requests through.
    settings = build_settings(DATABASE_URL=postgres_url, REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMIT_ENABLED="true")
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/api/v1/plans")
        assert response.status_code == 200
        assert "ratelimit" not in response.headers
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] == "unavailable"
        # Signed-in requests cannot have their tokens checked against revocations: 503, not 500.
        await reset_state(build_settings(DATABASE_URL=postgres_url))
        account = await register(client)
        signed_in = await client.get("/api/v1/users/profile", headers=auth(account["token"]))
        assert signed_in.status_code == 503
        assert signed_in.json()["code"] == "service_unavailable"
