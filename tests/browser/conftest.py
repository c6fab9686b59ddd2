"""The browser tests' server (uvicorn with the demo data and demo media, as ``scripts/run`` has
them) and the system Chromium, driven by Playwright (never ``playwright install``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import ROOT, build_settings, reset_state
from helpers import tool_missing
from servers import running_servers, server_environ

from .pages import ADMIN_EMAIL, ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, HEARTBEAT_SECONDS

if TYPE_CHECKING:
    from playwright.sync_api import Browser

HLS_JS_DIST = ROOT / "node_modules" / "hls.js" / "dist"


@pytest.fixture
def server(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One uvicorn process with the demo data and demo media (as ``scripts/run`` has them)."""
    settings: dict[str, str] = {
        "MEDIA_DIR": str(tmp_path / "media"),
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT_SECONDS),
        "PROGRESS_FLUSH_SECONDS": "1",
        # As scripts/run has it: demo titles last as long as the demo clip (processed as HLS), and resume.
        "RESUME_MIN_DURATION_SECONDS": "0",
        # Uploaded titles are processed at once, quickly.
        "MEDIA_POLL_SECONDS": "0.2",
        "MEDIA_ENCODER_PRESET": "superfast",
    }
    shared = None
    if backend == "postgres":
        prefix = f"{request.getfixturevalue('redis_key_prefix')}-browser"
        settings |= {
            "DATABASE_URL": request.getfixturevalue("postgres_url"),
            "DATABASE_MIGRATE_ON_STARTUP": "false",
            "REDIS_URL": request.getfixturevalue("redis_url"),
            "REDIS_KEY_PREFIX": prefix,
        }
        shared = build_settings(
            DATABASE_URL=settings["DATABASE_URL"], REDIS_URL=settings["REDIS_URL"], REDIS_KEY_PREFIX=prefix
        )
        asyncio.run(reset_state(shared))
    environ = server_environ(tmp_path, **settings)
    seed = subprocess.run(
        [str(Path(sys.executable).parent / "reelhouse"), "demo", "seed"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert seed.returncode == 0, seed.stdout + seed.stderr
    assert "demo media: 44 titles given the" in seed.stdout, seed.stdout
    try:
        with running_servers(environ, 1, tmp_path) as (url,):
            yield url
    finally:
        if shared is not None:
            asyncio.run(reset_state(shared))


@pytest.fixture
def hls_js_installed() -> None:
    if not (HLS_JS_DIST / "hls.min.js").is_file():
        tool_missing(f"hls.js is not installed in {HLS_JS_DIST}: run `npm ci` (scripts/test does)")


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (Debian: apt-get install chromium; scripts/test installs it as root)"
        tool_missing(missing)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is a dev dependency: pip install -e .[dev]"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,  # Playwright gives every launch a fresh, temporary user-data dir
        )
        try:
            yield launched
        finally:
            launched.close()
