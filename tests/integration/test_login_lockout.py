"""A stranger guessing someone's password slows the stranger down, not the owner.

A real server behind a trusted proxy (127.0.0.1), so each request can come from its own
client address (``X-Forwarded-For``), as it does in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import PASSWORD
from servers import running_servers, server_environ

pytestmark = pytest.mark.slow

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    environ = server_environ(
        tmp_path,
        TRUSTED_PROXIES="127.0.0.1",
        FORWARDED_ALLOW_IPS="",  # the app reads X-Forwarded-For itself (from TRUSTED_PROXIES), not uvicorn
        RATE_LIMIT_ENABLED="false",
        LOGIN_MAX_FAILURES_PER_ACCOUNT_TOTAL="20",
    )
    with running_servers(environ, 1, tmp_path) as (url,):
        yield url


def sign_in(url: str, email: str, password: str, source: str) -> httpx.Response:
    return httpx.post(
        f"{url}{LOGIN}", json={"email": email, "password": password}, headers={"X-Forwarded-For": source}, timeout=10
    )


def test_failures_from_one_network_never_lock_the_owner_out_elsewhere(server: str):
    registered = httpx.post(
        f"{server}/api/v1/auth/register",
        json={"email": "victim@example.com", "password": PASSWORD, "name": "Victim"},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    statuses = [sign_in(server, "victim@example.com", "a wrong guess", "203.0.113.7").status_code for _ in range(7)]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    # The attacker's network stays slowed down, even with the right password ...
    assert sign_in(server, "victim@example.com", PASSWORD, "203.0.113.7").status_code == 429
    # ... while the owner, from home, gets in.
    assert sign_in(server, "victim@example.com", PASSWORD, "198.51.100.20").status_code == 200


def test_unknown_and_known_emails_are_throttled_alike(server: str):
    httpx.post(
        f"{server}/api/v1/auth/register",
        json={"email": "known@example.com", "password": PASSWORD, "name": "Known"},
        timeout=10,
    )
    for email, source in (("known@example.com", "192.0.2.1"), ("nobody@example.com", "192.0.2.2")):
        answers = [sign_in(server, email, "a wrong guess", source) for _ in range(6)]
        assert [a.status_code for a in answers] == [401] * 5 + [429]
        assert answers[0].json() == {**answers[0].json(), "code": "invalid_credentials"}
        assert answers[-1].json()["code"] == "too_many_login_attempts"


def test_a_distributed_attack_meets_the_account_wide_ceiling(server: str):
    httpx.post(
        f"{server}/api/v1/auth/register",
        json={"email": "target@example.com", "password": PASSWORD, "name": "Target"},
        timeout=10,
    )
    statuses = [sign_in(server, "target@example.com", "guess", f"198.18.0.{n}").status_code for n in range(1, 22)]
    assert statuses.count(401) == 20  # one guess from each of many networks, up to the ceiling
    assert statuses[-1] == 429
