"""The reference web player (/player) in a real headless Chromium against a real uvicorn server.

One account on a one-screen plan: the first browser signs up, subscribes, plays a title at the
plan's highest rendition with heartbeats on the playback websocket, and sees its stream in the
devices panel. A second browser signs in to the same account and plays the same title: the
first page stops its video and says why (the stream limit), and the second is offered the
position the first one reached. The devices panel then stops the second stream from the first
browser, and the second page says so. Runs on the embedded backends and on PostgreSQL + Redis.

Chromium is the system one (``/usr/bin/chromium``, Debian package ``chromium``, which
``scripts/test`` installs when it can); Playwright only drives it (never ``playwright install``).
Screenshots of every step land in the test's ``tmp_path``/screenshots.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from conftest import ROOT, build_settings, reset_state
from servers import running_servers, server_environ

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
]
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "browser-admin-password-0123"
VIEWER_EMAIL = "viewer@example.com"
VIEWER_PASSWORD = "correct horse battery"
TITLE = "The Lighthouse Keeper's Daughter"  # a free demo title (catalog/demo.py)
HEARTBEAT_SECONDS = 2
WAIT_MS = 20_000

EVICTION_MESSAGE = "Your plan allows 1 screen at once. Playback stopped because another device started watching."


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
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (Debian: apt-get install chromium; scripts/test installs it as root)"
        # In CI the browser is installed by scripts/test, so its absence is a failure, never a skip.
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
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


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def add_one_screen_plan(url: str) -> None:
    """An administrator adds "Solo": everything, up to 1080p, on one screen at a time."""
    with httpx.Client(base_url=url, timeout=10) as client:
        token = ok(client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))["token"]
        plan = {
            "name": "Solo",
            "price": 699,
            "validity_days": 30,
            "access_level": "premium",
            "max_devices_allowed": 1,
            "resolution": "1080p",
            "description": "Everything in full HD on one screen.",
        }
        ok(client.post("/api/v1/admin/plans", json=plan, headers={"Authorization": f"Bearer {token}"}), 201)


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.count = 0

    def __call__(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def live_sessions(url: str, page: Page) -> list[dict[str, Any]]:
    token = page.evaluate("() => JSON.parse(localStorage.getItem('reelhouse.player')).token")
    response = httpx.get(f"{url}/api/v1/playback/sessions", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    sessions: list[dict[str, Any]] = ok(response)["sessions"]
    return sessions


def wait_for(condition: Any, what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def play_title(page: Page) -> None:
    page.click(".tab[data-view=home]")
    page.fill("#search-q", "Lighthouse")
    page.click("#search-form button[type=submit]")
    page.locator("#catalog-list .card", has_text=TITLE).first.locator(".poster").click()


def video_time(page: Page) -> float:
    return float(page.evaluate("() => document.getElementById('video').currentTime"))


def test_two_browsers_one_screen(server: str, browser: Browser, tmp_path: Path) -> None:
    url = server
    add_one_screen_plan(url)
    shot = Shots(tmp_path / "screenshots")

    # --- the first browser: sign up, subscribe to the one-screen plan, play ---
    first_context = browser.new_context(viewport={"width": 1280, "height": 900})
    first = first_context.new_page()
    errors: list[str] = []
    first.on("pageerror", lambda error: errors.append(str(error)))
    first.goto(f"{url}/player/")
    first.wait_for_selector("#sign-up-form", state="visible")
    shot(first, "signed-out")
    first.fill("#sign-up-form input[name=name]", "Vera Viewer")
    first.fill("#sign-up-form input[name=email]", VIEWER_EMAIL)
    first.fill("#sign-up-form input[name=password]", VIEWER_PASSWORD)
    first.click("#sign-up-form button[type=submit]")
    first.wait_for_selector("#nav", state="visible")
    # Posters: the demo images live on example.com, so a generated poster shows the title.
    first.wait_for_selector("#catalog-list .card")
    assert first.locator("#catalog-list .card img").count() == 0
    shot(first, "catalog")

    first.click(".tab[data-view=plans]")
    first.locator(".plan[data-plan-name=Solo] button").click()
    first.wait_for_selector("#notice:has-text('You are subscribed to Solo.')")
    first.wait_for_selector(".plan.current[data-plan-name=Solo]")
    assert first.text_content("#account-plan") == "Solo"
    shot(first, "subscribed")

    play_title(first)
    first.wait_for_function("() => document.getElementById('video').currentTime > 3", timeout=WAIT_MS)
    # The demo media's highest rendition (its 720p source is never upscaled), within Solo's 1080p.
    assert first.text_content("#player-quality") == "720p"
    # The video element plays the signed HLS master playlist (adaptive), not a file.
    assert "/manifest.m3u8?" in first.evaluate("() => document.getElementById('video').currentSrc")
    shot(first, "playing")
    # Heartbeats carry the real position: the server's view of the stream follows the video.
    (stream,) = wait_for(
        lambda: [s for s in live_sessions(url, first) if s["position_seconds"] >= 3 and s["state"] == "playing"],
        "a heartbeat with the video's position",
    )
    first.click(".tab[data-view=devices]")
    first.wait_for_selector("#device-list tr:has-text('this browser')")
    assert first.locator("#device-list tr").count() == 1
    shot(first, "devices")
    first.evaluate("() => document.getElementById('video').pause()")
    paused_at = video_time(first)
    wait_for(
        lambda: [s for s in live_sessions(url, first) if s["state"] == "paused" and s["position_seconds"] >= 3],
        "the paused state to reach the server",
    )

    # --- the second browser, same account: the first one is evicted and says why ---
    second_context = browser.new_context(viewport={"width": 1280, "height": 900})
    second = second_context.new_page()
    second.on("pageerror", lambda error: errors.append(str(error)))
    second.goto(f"{url}/player/")
    second.fill("#sign-in-form input[name=email]", VIEWER_EMAIL)
    second.fill("#sign-in-form input[name=password]", VIEWER_PASSWORD)
    second.click("#sign-in-form button[type=submit]")
    second.wait_for_selector("#nav", state="visible")
    # "Continue watching" already holds the title the first browser played.
    second.wait_for_selector(f'#continue-list .card:has-text("{TITLE}")')
    play_title(second)

    first.wait_for_selector("#player-message", state="visible", timeout=WAIT_MS)
    assert first.text_content("#player-message-text") == EVICTION_MESSAGE
    assert first.evaluate("() => document.getElementById('video').getAttribute('src')") is None
    shot(first, "evicted")

    # The position the first browser reached is offered on the next play.
    second.wait_for_selector("#resume-prompt", state="visible", timeout=WAIT_MS)
    offered = int(paused_at)
    assert second.text_content("#resume-text") == f"You stopped at 0:{offered:02d}. Resume from there?"
    shot(second, "resume-offered")
    second.click("#resume-yes")
    second.wait_for_function(
        f"() => document.getElementById('video').currentTime > {offered} && !document.getElementById('video').paused",
        timeout=WAIT_MS,
    )
    (now_playing,) = wait_for(lambda: live_sessions(url, second), "the second stream")
    assert now_playing["session_id"] != stream["session_id"]
    shot(second, "resumed")

    # --- the devices panel of the first browser stops the second browser's stream ---
    first.click("#player-message-close")
    first.click(".tab[data-view=plans]")
    first.click(".tab[data-view=devices]")
    row = first.locator(f"#device-list tr[data-session-id='{now_playing['session_id']}']")
    row.wait_for()
    shot(first, "devices-other-screen")
    row.locator("button").click()
    second.wait_for_selector("#player-message", state="visible", timeout=WAIT_MS)
    assert "stopped from another device" in (second.text_content("#player-message-text") or "")
    assert live_sessions(url, second) == []
    shot(second, "stopped-elsewhere")

    assert errors == []
    first_context.close()
    second_context.close()
