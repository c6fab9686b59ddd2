"""The README's "A first walk through the API", pasted as it stands into one shell, against a live
``scripts/run`` (demo data and all). Every request must succeed, except those the README itself
marks as answering ``# 401``, and the walk must end with the title in Continue Watching.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT
from servers import emptied_shared_state, free_ports, stop, wait_until_healthy

README = ROOT / "README.md"
SECTION = "## A first walk through the API"
README_URL = "http://127.0.0.1:8000"
WALK_TIMEOUT_SECONDS = 120
#: scripts/run checks the virtualenv, seeds the demo data (hashing the admin's password) and migrates first.
START_TIMEOUT_SECONDS = 120
#: Each request's status and URL, written by curl to stderr, apart from what the walk prints.
STATUS_LINE = re.compile(r"^HTTP (\d{3}) (\S+)$", re.MULTILINE)

pytestmark = pytest.mark.slow


def walk_blocks(readme: str) -> list[str]:
    """The ``sh`` blocks of the walk section, in order."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end > 0 else None]
    return re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def test_the_walk_has_blocks_that_use_the_documented_address():
    blocks = walk_blocks(README.read_text())
    assert len(blocks) >= 2
    assert README_URL in blocks[0]


@pytest.fixture
def backing(backend: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """What ``scripts/run`` is pointed at: nothing (embedded), or the test PostgreSQL and Redis, emptied."""
    if backend == "embedded":
        yield {}
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    redis_url: str = request.getfixturevalue("redis_url")
    prefix = f"{request.getfixturevalue('redis_key_prefix')}-walk"
    emptied = emptied_shared_state(postgres_url, redis_url, prefix)
    asyncio.run(emptied.__aenter__())
    try:
        yield {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    finally:
        asyncio.run(emptied.__aexit__(None, None, None))


def test_the_readme_walk_runs_top_to_bottom_against_scripts_run(tmp_path: Path, backing: dict[str, str]):
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ["PYTHONPATH"],
        "HOME": str(tmp_path),
        "PORT": str(port),
        "VAR_DIR": str(tmp_path / "var"),
        "MEDIA_DIR": str(tmp_path / "media"),
        "REELHOUSE_ENV_FILE": str(tmp_path / "no.env"),
        "LOG_LEVEL": "WARNING",
        **backing,
    }
    blocks = walk_blocks(README.read_text())
    expected_refusals = sum(
        line.rstrip().endswith("# 401 invalid_token") for block in blocks for line in block.splitlines()
    )
    # As a person pastes it, with curl also reporting each answer's status on stderr.
    script = "curl() { command curl --write-out '%{stderr}HTTP %{http_code} %{url_effective}\\n' \"$@\"; }\n"
    script += "\n".join(blocks).replace(README_URL, url)

    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(ROOT / "scripts" / "run")], cwd=tmp_path, env=environ, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until_healthy(url, server, log, START_TIMEOUT_SECONDS)
        walk = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=WALK_TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        stop([server])

    answers = STATUS_LINE.findall(walk.stderr)
    shown = f"stdout:\n{walk.stdout}\nstderr:\n{walk.stderr}"
    assert walk.returncode == 0, shown
    assert len(answers) >= 15, shown
    refused = [(status, where) for status, where in answers if not status.startswith("2")]
    assert [status for status, _ in refused] == ["401"] * expected_refusals, shown
    assert re.search(r'"continue_watching":\[\{"id"', walk.stdout), shown
    assert '"playback_token"' in walk.stdout, shown
