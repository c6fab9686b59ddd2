"""Schemathesis against a live server: generated and mutated requests on every operation of the
OpenAPI document, as an anonymous caller, a user and an administrator, never a server error.

Every check runs except ``positive_data_acceptance``, which counts legitimate refusals (403 for a
plan too low, 409 for an email taken, 429) as failures. The server is a real uvicorn process on
127.0.0.1 with the embedded backends; rate limits are off so the run reaches every handler.

The document's own completeness is judged by ``status_code_conformance`` and
``content_type_conformance``. They run once the document describes our error answers
(``application/problem+json``); until then they would only repeat that it does not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import running_servers, server_environ

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 10
RUN_TIMEOUT_SECONDS = 240
ADMIN = {"email": "admin@example.com", "password": "correct horse battery staple"}
USER = {"email": "user@example.com", "password": "correct horse battery staple", "name": "User"}
#: Operations that would end the session a run signs in with (itself, or all of a user's).
ENDS_OWN_SESSION = r"^/api/v1/auth/(logout|logout-all|password)$|^/api/v1/users/devices/|/(revoke-admin|disable)$"
DOCUMENTATION_CHECKS = ("status_code_conformance", "content_type_conformance")
PROBLEM_JSON = "application/problem+json"


def documents_error_answers(document: dict[str, Any]) -> bool:
    return any(
        PROBLEM_JSON in (response.get("content") or {})
        for path in document.get("paths", {}).values()
        for operation in path.values()
        if isinstance(operation, dict)
        for response in (operation.get("responses") or {}).values()
        if isinstance(response, dict)
    )


def schemathesis(url: str, cwd: Path, excluded_checks: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{url}/schema/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(excluded_checks),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261204",
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        *options,
    ]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False)


def signed_in(token: str) -> tuple[str, ...]:
    return ("-H", f"Authorization: Bearer {token}", "--exclude-path-regex", ENDS_OWN_SESSION)


def test_no_generated_request_makes_a_server_error_or_breaks_the_document(tmp_path):
    environ = server_environ(
        tmp_path, ADMIN_EMAIL=ADMIN["email"], ADMIN_PASSWORD=ADMIN["password"], RATE_LIMIT_ENABLED="false"
    )
    with running_servers(environ, 1, tmp_path) as (url,):
        assert url.startswith("http://127.0.0.1:")  # nothing else is ever targeted
        document = httpx.get(f"{url}/schema/openapi.json", timeout=10).json()
        admin_token = httpx.post(f"{url}/api/v1/auth/login", json=ADMIN, timeout=10).json()["token"]
        user_token = httpx.post(f"{url}/api/v1/auth/register", json=USER, timeout=10).json()["token"]
        excluded = ["positive_data_acceptance"]
        if not documents_error_answers(document):
            excluded.extend(DOCUMENTATION_CHECKS)

        runs = {
            "anonymous": schemathesis(url, tmp_path, excluded),
            "user": schemathesis(
                url,
                tmp_path,
                excluded,
                "-H",
                f"Authorization: Bearer {user_token}",
                "--exclude-path-regex",
                ENDS_OWN_SESSION,
            ),
            "admin": schemathesis(
                url,
                tmp_path,
                excluded,
                "-H",
                f"Authorization: Bearer {admin_token}",
                "--exclude-path-regex",
                ENDS_OWN_SESSION,
            ),
        }
    failed = {who: run.stdout[-6000:] + run.stderr[-2000:] for who, run in runs.items() if run.returncode != 0}
    assert not failed, "\n\n".join(f"=== schemathesis as {who} ===\n{output}" for who, output in failed.items())
    for run in runs.values():
        assert "Test cases:" in run.stdout  # it really generated and sent requests
