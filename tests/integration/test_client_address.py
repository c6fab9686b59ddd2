"""The client address the rate limits count does not depend on how the server was started.

Plain ``uvicorn`` (as here: proxy headers left on, the default) believes ``X-Forwarded-For`` from
127.0.0.1 and rewrites the client address with it. The app notices and counts every such request
under one key, so a caller cannot pick a fresh rate-limit key per request.
"""

from __future__ import annotations

import httpx
import pytest

from servers import running_servers, server_environ

pytestmark = pytest.mark.slow

LIMIT = 3


def test_forged_forwarded_for_cannot_escape_the_anonymous_limit_under_plain_uvicorn(tmp_path):
    environ = server_environ(tmp_path, RATE_LIMIT_ENABLED="true", RATE_LIMIT_ANONYMOUS_PER_MINUTE=str(LIMIT))
    with running_servers(environ, 1, tmp_path) as (url,):
        statuses = [
            httpx.get(f"{url}/api/v1/plans", headers={"X-Forwarded-For": f"198.51.100.{n}"}, timeout=10).status_code
            for n in range(1, 2 * LIMIT + 1)
        ]
    assert statuses[:LIMIT] == [200] * LIMIT
    assert set(statuses[LIMIT:]) == {429}, statuses


def test_requests_without_forwarded_for_keep_their_own_address(tmp_path):
    environ = server_environ(tmp_path, RATE_LIMIT_ENABLED="true", RATE_LIMIT_ANONYMOUS_PER_MINUTE=str(LIMIT))
    with running_servers(environ, 1, tmp_path) as (url,):
        forged = [
            httpx.get(f"{url}/api/v1/plans", headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=10).status_code
            for n in range(1, LIMIT + 2)
        ]
        direct = httpx.get(f"{url}/api/v1/plans", timeout=10).status_code
    assert forged[-1] == 429
    assert direct == 200  # 127.0.0.1's own bucket is not the shared one
