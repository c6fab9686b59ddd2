"""The reference web player (/player) in a real headless Chromium against a real uvicorn server.

One account on a one-screen plan: the first browser signs up, subscribes, plays a title at the
plan's highest rendition with heartbeats on the playback websocket, and sees its stream in the
devices panel. A second browser signs in to the same account and plays the same title: the
first page stops its video and says why (the stream limit), and the second is offered the
position the first one reached. The devices panel then stops the second stream from the first
browser, and the second page says so. The second browser asks for hls.js (``?engine=hlsjs``) where
the server has none (its /player/vendor/ answers 404): it plays natively and says so. Runs on the
embedded backends and on PostgreSQL + Redis (``test_player_hlsjs.py`` plays with hls.js).

Chromium is the system one (``/usr/bin/chromium``, Debian package ``chromium``, which
``scripts/test`` installs when it can); Playwright only drives it (never ``playwright install``).
Screenshots of every step land in the test's ``tmp_path``/screenshots.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from .pages import (
    EVICTION_MESSAGE,
    TITLE,
    VIEWER_EMAIL,
    VIEWER_PASSWORD,
    WAIT_MS,
    Shots,
    add_one_screen_plan,
    live_sessions,
    play_title,
    video_time,
    wait_for,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

pytestmark = pytest.mark.slow


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
    # This browser asks for hls.js, which this server lacks here (as without `npm ci`): it plays natively.
    refused_vendor: list[str] = []

    def without_hls_js(route: Route) -> None:
        refused_vendor.append(route.request.url)
        route.fulfill(status=404, content_type="application/problem+json", body='{"code": "hls_js_not_installed"}')

    second.route("**/player/vendor/**", without_hls_js)
    second.goto(f"{url}/player/?engine=hlsjs")
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
    # The player reports its position to a tenth of a second (app.js: position()), which the server
    # floors to whole seconds: a pause at 3.96 s is reported as 4.0 and offered as 0:04.
    offered = math.floor(math.floor(paused_at * 10 + 0.5) / 10)
    assert second.text_content("#resume-text") == f"You stopped at 0:{offered:02d}. Resume from there?"
    shot(second, "resume-offered")
    second.click("#resume-yes")
    second.wait_for_function(
        f"() => document.getElementById('video').currentTime > {offered} && !document.getElementById('video').paused",
        timeout=WAIT_MS,
    )
    (now_playing,) = wait_for(lambda: live_sessions(url, second), "the second stream")
    assert now_playing["session_id"] != stream["session_id"]
    assert [httpx.URL(address).path for address in refused_vendor] == ["/player/vendor/hls.min.js"]
    assert second.text_content("#player-engine") == "native HLS"
    assert second.evaluate("() => typeof window.Hls") == "undefined"
    assert "/manifest.m3u8?" in second.evaluate("() => document.getElementById('video').currentSrc")
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
