"""The client address the rate limits count does not depend on how the server was started.

Plain ``uvicorn`` (as here: proxy headers left on, the default) believes ``X-Forwarded-For`` from
127.0.0.1 and rewrites the client address with it. The app notices and counts every such request
under one key, so a caller cannot pick a fresh rate-limit key per request.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import ROOT
from servers import free_ports, running_servers, server_environ, stop, wait_until_healthy

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


def test_reelhouse_run_does_not_let_uvicorn_rewrite_the_client_address(tmp_path):
    """``reelhouse run`` (Litestar's run command) starts uvicorn with its defaults otherwise."""
    environ = server_environ(tmp_path, RATE_LIMIT_ENABLED="true", RATE_LIMIT_ANONYMOUS_PER_MINUTE=str(LIMIT))
    (port,) = free_ports(1)
    url, log = f"http://127.0.0.1:{port}", tmp_path / "reelhouse-run.log"
    command = [str(Path(sys.executable).parent / "reelhouse"), "run", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(url, process, log)
        forged = [
            httpx.get(f"{url}/api/v1/plans", headers={"X-Forwarded-For": f"192.0.2.{n}"}, timeout=10).status_code
            for n in range(1, LIMIT + 2)
        ]
        direct = httpx.get(f"{url}/api/v1/plans", timeout=10).status_code
    finally:
        stop([process])
    # Counted as 127.0.0.1 itself: the forged addresses and the direct request share its bucket.
    assert forged == [200] * LIMIT + [429]
    assert direct == 429
