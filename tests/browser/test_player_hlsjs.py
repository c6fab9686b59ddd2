"""The web player with hls.js (``/player/?engine=hlsjs``) in headless Chromium against a real server.

Chromium plays HLS natively, so the page only uses hls.js when asked; these tests ask. hls.js is
the pinned npm package (``package.json``) that ``scripts/test`` installs with ``npm ci`` and the
server serves at ``/player/vendor/``. One account on a one-screen plan plays:

- a demo title: currentTime passes 4 s with no fatal hls.js error, through Media Source
  Extensions with hls.js's worker from this origin under the page's strict CSP; the page names
  the renditions hls.js may switch between and the one playing, and a pick of another one plays
  it. A second browser then takes the screen: the websocket's notice stops the first page, which
  says why, and the segments it was playing are refused from then on (403 ``stream_limit``).
- a title whose video an administrator uploaded with tus: the same, and this time the eviction
  notice never reaches the page (the test holds the websocket's messages back, as a dead
  connection would): the page's next segment request is refused with 403, and the page asks the
  refused URL why and says so.

Runs on the embedded backends only: the player's side is the same on both, and the two-browser
test in ``test_player.py`` covers PostgreSQL + Redis.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from conftest import ROOT

from .pages import (
    EVICTION_MESSAGE,
    WAIT_MS,
    Shots,
    add_one_screen_plan,
    add_uploaded_title,
    hold_back_stream_endings,
    live_sessions,
    play_title,
    sign_in,
    sign_up,
    start_elsewhere,
    subscribe_to_solo,
    wait_for,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Response

pytestmark = pytest.mark.slow

UPLOADED_TITLE = "Harbour Lights"
# The page's own record of what went wrong: CSP violations (hls.js must need no eval and no blob: worker).
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def hls_js_version() -> str:
    version: str = json.loads((ROOT / "package.json").read_text())["dependencies"]["hls.js"]
    return version


class Watched:
    """One page's console errors, uncaught exceptions, refused media requests and segment requests."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.refused: list[tuple[str, str]] = []  # (url, problem code) of media answered 403
        self.segments: list[str] = []
        page.add_init_script(WATCH_CSP)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self.on_console)
        page.on("response", self.on_response)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_response(self, response: Response) -> None:
        path = httpx.URL(response.url).path
        if not path.startswith("/media/"):
            return
        if response.status == 403:
            self.refused.append((path, str(response.json().get("code"))))
        elif path.endswith(".m4s"):
            self.segments.append(response.url)

    def csp_violations(self) -> list[str]:
        violations: list[str] = self.page.evaluate("() => window.cspViolations")
        return violations


def renditions(page: Page) -> list[tuple[str, str]]:
    """The quality list: (value, label) of each option."""
    options: list[list[str]] = page.eval_on_selector_all(
        "#player-rendition option", "(options) => options.map((o) => [o.value, o.textContent])"
    )
    return [(value, label) for value, label in options]


def plays_with_hls_js(page: Page, watched: Watched, *, pause_after_4s: bool = False) -> None:
    """currentTime passes 4 s, played by hls.js (Media Source Extensions, its worker), no fatal error."""
    passed = "v.currentTime > 4" + ("&& (v.pause(), true)" if pause_after_4s else "")
    page.wait_for_function(f"() => {{ const v = document.getElementById('video'); return {passed}; }}", timeout=WAIT_MS)
    assert watched.errors == []
    assert page.is_hidden("#player-message")
    assert page.evaluate("() => typeof window.Hls") == "function"
    assert page.text_content("#player-engine") == f"hls.js {hls_js_version()}"
    assert page.evaluate("() => document.getElementById('video').currentSrc").startswith("blob:")
    assert any(worker.url.endswith("/player/vendor/hls.worker.js") for worker in page.workers)
    assert watched.csp_violations() == []
    # The renditions hls.js may switch between (the plan allows both), and Auto, naming the one playing.
    options = renditions(page)
    playing = page.text_content("#player-quality")
    assert playing in {"480p", "720p"}
    assert options[0] == ("-1", f"Auto ({playing})")
    assert [re.sub(r" · [\d.]+ Mb/s", "", label) for _, label in options[1:]] == [
        "480p · 854x480" + (" (playing)" if playing == "480p" else ""),
        "720p · 1280x720" + (" (playing)" if playing == "720p" else ""),
    ]
    assert page.input_value("#player-rendition") == "-1"


def pick_the_other_rendition(page: Page) -> tuple[str, str]:
    """Choose, in the quality list, the rendition that is not playing: (its value, its name)."""
    playing = page.text_content("#player-quality")
    other = "480p" if playing == "720p" else "720p"
    value = next(value for value, label in renditions(page) if label.startswith(other))
    page.select_option("#player-rendition", value)
    return value, other


@pytest.mark.parametrize("backend", ["embedded"])
def test_hls_js_plays_a_demo_and_an_uploaded_title_and_says_why_it_stopped(
    hls_js_installed: None, server: str, browser: Browser, shared_media: Any, tmp_path: Path
) -> None:
    url = server
    add_one_screen_plan(url)
    shared_media.directory()  # the run's shared 6 s 1280x720 clip with sound, made once
    uploaded_id = add_uploaded_title(url, UPLOADED_TITLE, (shared_media.workspace / "shared-source.mp4").read_bytes())
    shot = Shots(tmp_path / "screenshots")

    # --- a demo title with hls.js ---
    first_context = browser.new_context(viewport={"width": 1280, "height": 900})
    first = first_context.new_page()
    first_watch = Watched(first)
    sign_up(first, url, "?engine=hlsjs")
    assert first.input_value("#engine-choice") == "hlsjs"
    subscribe_to_solo(first)
    play_title(first)
    plays_with_hls_js(first, first_watch)
    shot(first, "demo-title-hlsjs")

    # Picking the rendition that is not playing plays it: its segments load and it becomes the one playing.
    segments_before = len(first_watch.segments)
    value, other = pick_the_other_rendition(first)
    first.wait_for_function(
        f"() => document.getElementById('player-quality').textContent === '{other}'", timeout=WAIT_MS
    )
    assert any(f"/{other}/seg_" in segment for segment in first_watch.segments[segments_before:])
    assert first.input_value("#player-rendition") == value
    shot(first, "rendition-picked")
    first.select_option("#player-rendition", "-1")
    assert first.input_value("#player-rendition") == "-1"
    assert first_watch.errors == []
    # Paused well before the end, so the position is offered to the next device.
    paused_at = float(
        first.evaluate("() => { const v = document.getElementById('video'); v.pause(); return v.currentTime; }")
    )
    wait_for(
        lambda: [s for s in live_sessions(url, first) if s["state"] == "paused" and s["position_seconds"] >= 4],
        "the paused state to reach the server",
    )

    # A second browser takes the one screen: the websocket's notice stops the first page, which says why.
    second_context = browser.new_context(viewport={"width": 1280, "height": 900})
    second = second_context.new_page()
    second_watch = Watched(second)
    sign_in(second, url, "?engine=hlsjs")
    play_title(second)
    first.wait_for_selector("#player-message", state="visible", timeout=WAIT_MS)
    assert first.text_content("#player-message-text") == EVICTION_MESSAGE
    assert first.evaluate("() => document.getElementById('video').getAttribute('src')") is None
    assert first.is_hidden("#player-rendition-label")
    shot(first, "demo-title-evicted")
    # From now on the first page's stream is refused, segment by segment.
    refused = first_context.request.get(first_watch.segments[-1])
    assert refused.status == 403
    assert refused.json()["code"] == "stream_limit"
    # hls.js starts the second browser where the first one stopped.
    second.wait_for_selector("#resume-prompt", state="visible", timeout=WAIT_MS)
    assert second.text_content("#resume-text") == f"You stopped at 0:{int(paused_at):02d}. Resume from there?"
    second.click("#resume-yes")
    second.wait_for_function(
        f"() => {{ const v = document.querySelector('video'); return v.currentTime > {int(paused_at)} && !v.paused; }}",
        timeout=WAIT_MS,
    )
    assert second.text_content("#player-engine") == f"hls.js {hls_js_version()}"
    assert second_watch.errors == []

    # --- the uploaded title, on the second browser, whose socket notices get lost from now on ---
    second.route_web_socket(re.compile(r"/api/v1/playback/ws"), hold_back_stream_endings)
    play_title(second, UPLOADED_TITLE, search="Harbour")
    plays_with_hls_js(second, second_watch, pause_after_4s=True)
    shot(second, "uploaded-title-hlsjs")
    (stream,) = live_sessions(url, second)
    assert stream["content_id"] == uploaded_id

    # Another device takes the screen; the page hears nothing, and plays on from what it holds.
    start_elsewhere(url, second, uploaded_id)
    wait_for(
        lambda: [s["device_id"] for s in live_sessions(url, second)] == ["living-room-tv"],
        "the television's stream to replace the browser's",
    )
    assert second.is_hidden("#player-message")
    assert second_watch.refused == []
    # Its next segment request (a new rendition from here) is refused, and the page says why.
    pick_the_other_rendition(second)
    second.wait_for_selector("#player-message", state="visible", timeout=WAIT_MS)
    assert second.text_content("#player-message-text") == EVICTION_MESSAGE
    assert second_watch.refused, "no media request was refused"
    assert all(path.startswith(f"/media/{uploaded_id}/") for path, _ in second_watch.refused)
    assert {code for _, code in second_watch.refused} == {"stream_limit"}
    assert second.text_content("#player-status") == "Stopped"
    shot(second, "uploaded-title-refused")

    # The console has hls.js's fatal error and the browser's note of each refused request, nothing else.
    unexpected = [
        error
        for error in second_watch.errors
        if not error.startswith(
            ("hls.js fatal error:", "Failed to load resource: the server responded with a status of 403")
        )
    ]
    assert unexpected == []
    assert first_watch.errors == []
    assert first_watch.csp_violations() == []
    assert second_watch.csp_violations() == []
    first_context.close()
    second_context.close()
