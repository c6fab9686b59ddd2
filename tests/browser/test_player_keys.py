"""Encrypted media from a CDN still stops playing when the session ends: the web player (hls.js) in
headless Chromium, with segments straight from the object store and keys only from the API.

One API process keeps its media in a bucket on the run's own S3 server (moto) and encrypts new
media with AES-128, a new key every segment (``MEDIA_KEY_PERIOD_SEGMENTS=1``), listing segments at
``MEDIA_PUBLIC_BASE_URL``: the bucket itself, which lets anyone read ``<prefix>/assets`` (a bucket
policy) and lets pages on the API's origin read it (a bucket CORS rule), as a CDN in front of it
would. An administrator uploads a 40 s clip with tus; a viewer on a one-screen plan plays it with
hls.js, every segment from the bucket and every key and playlist from the API.

Another device of the account then takes the screen while the page's websocket never delivers the
``terminated`` notice (the test holds it back), so only the key refusal can stop the page: the
next key request answers 403 ``stream_limit``, and the page stops and says why. What it may still
play after the eviction is bounded by what it buffered plus the key period it holds a key for:
hls.js buffers at most ``maxMaxBufferLength`` seconds ahead (app.js) plus the segment being
loaded, and with that segment's key it can decrypt the rest of its key period. So the bound is
``maxMaxBufferLength + MEDIA_KEY_PERIOD_SEGMENTS x target duration`` (16 + 1 x 4 = 20 s here; 16 +
3 x 4 = 28 s with the default key period), and the test checks that the position where the page
stopped is within it of the position at the eviction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from conftest import ROOT
from media.clips import make_test_clip
from servers import running_servers, server_environ

from .pages import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    EVICTION_MESSAGE,
    HEARTBEAT_SECONDS,
    WAIT_MS,
    Shots,
    add_one_screen_plan,
    add_uploaded_title,
    hold_back_stream_endings,
    live_sessions,
    play_title,
    sign_up,
    start_elsewhere,
    subscribe_to_solo,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response

    from object_storage import OwnS3

pytestmark = pytest.mark.slow

TITLE = "Harbour Lights"
CLIP_SECONDS = 40
KEY_PERIOD_SEGMENTS = 1
DEFAULT_KEY_PERIOD_SEGMENTS = 3  # MEDIA_KEY_PERIOD_SEGMENTS when unset
PREFIX = "reelhouse"
APP_JS = ROOT / "src" / "reelhouse" / "player" / "static" / "app.js"
# The furthest position the video reached (the page clears the video's src when it stops, which
# sets currentTime back to 0). timeupdate does not bubble, so the document listens in its capture phase.
WATCH_POSITION = """
window.playedTo = 0;
document.addEventListener("timeupdate", (event) => {
  window.playedTo = Math.max(window.playedTo, event.target.currentTime || 0);
}, true);
"""


class Keyed:
    """The API's address and where its encrypted segments are listed (the bucket's public base)."""

    def __init__(self, url: str, public_base: str) -> None:
        self.url = url
        self.public_base = public_base


@pytest.fixture
def keyed_server(s3_server: OwnS3, tmp_path: Path) -> Iterator[Keyed]:
    """One uvicorn process keeping its media in a bucket of the run's S3 server, encrypting it with a
    new key every segment, and listing segments at the bucket's public base URL."""
    bucket = s3_server.new_bucket()
    public_base = f"{s3_server.endpoint_url}/{bucket}/{PREFIX}"
    s3_server.allow_public_reads(bucket, f"{PREFIX}/assets")  # processed media only, never uploads
    settings = {
        **s3_server.settings(bucket, prefix=PREFIX),
        "MEDIA_DIR": str(tmp_path / "media"),
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT_SECONDS),
        "PROGRESS_FLUSH_SECONDS": "1",
        "MEDIA_POLL_SECONDS": "0.2",
        "MEDIA_ENCODER_PRESET": "superfast",
        "MEDIA_ENCRYPTION": "aes-128",
        "MEDIA_KEY_PERIOD_SEGMENTS": str(KEY_PERIOD_SEGMENTS),
        "MEDIA_PUBLIC_BASE_URL": public_base,
    }
    with running_servers(server_environ(tmp_path, **settings), 1, tmp_path) as (url,):
        s3_server.allow_cross_origin_reads(bucket, url)  # the player's origin, known once it listens
        yield Keyed(url, public_base)


class Traffic:
    """What one page asked for, and the answers: requests by URL, refused media, console errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[str] = []
        self.answers: list[tuple[str, int, str | None]] = []  # (url, status, Access-Control-Allow-Origin)
        self.refused: list[tuple[str, str]] = []  # (API media path, problem code) of answers 403
        self.errors: list[str] = []
        page.add_init_script(WATCH_POSITION)
        page.on("request", self.on_request)
        page.on("response", self.on_response)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self.on_console)

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_response(self, response: Response) -> None:
        self.answers.append((response.url, response.status, response.headers.get("access-control-allow-origin")))
        path = httpx.URL(response.url).path
        if path.startswith("/media/") and response.status == 403:
            self.refused.append((path, str(response.json().get("code"))))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def media(self, suffixes: tuple[str, ...]) -> list[str]:
        return [url for url in self.requests if httpx.URL(url).path.endswith(suffixes)]


def buffer_setting(name: str) -> int:
    """One of hls.js's buffer settings in the player's app.js."""
    match = re.search(rf"\b{name}: (\d+)\b", APP_JS.read_text())
    assert match, f"app.js configures no {name} for hls.js"
    return int(match.group(1))


def target_duration(playlist_url: str) -> int:
    """The longest a segment of the rendition lasts, rounded up (EXT-X-TARGETDURATION)."""
    playlist = httpx.get(playlist_url, timeout=10)
    assert playlist.status_code == 200, playlist.text
    match = re.search(r"^#EXT-X-TARGETDURATION:(\d+)$", playlist.text, re.MULTILINE)
    assert match, playlist.text
    keys = re.findall(r'^#EXT-X-KEY:METHOD=AES-128,URI="(key_\d+\.key)\?', playlist.text, re.MULTILINE)
    segments = re.findall(r"^\S+/seg_\d+\.m4s$", playlist.text, re.MULTILINE)
    assert len(segments) >= CLIP_SECONDS // 4, playlist.text
    assert len(set(keys)) == len(segments), "a new key every segment"
    return int(match.group(1))


def position(page: Page) -> dict[str, float]:
    """Where the video is, how far it has buffered ahead, and the furthest it has played."""
    state: dict[str, float] = page.evaluate(
        """() => {
          const v = document.getElementById('video');
          const ranges = v.buffered;
          const end = ranges.length ? ranges.end(ranges.length - 1) : v.currentTime;
          return { current: v.currentTime, ahead: end - v.currentTime, playedTo: window.playedTo };
        }"""
    )
    return state


def test_encrypted_media_from_the_bucket_stops_within_the_buffer_and_key_period_bound(
    hls_js_installed: None, keyed_server: Keyed, browser: Browser, tmp_path: Path
) -> None:
    url, public_base = keyed_server.url, keyed_server.public_base
    add_one_screen_plan(url)
    clip = make_test_clip(
        tmp_path / "clip.mp4",
        width=640,
        height=360,
        seconds=CLIP_SECONDS,
        fps=Fraction(24),
        with_audio=True,
        container_format="mp4",
    )
    content_id = add_uploaded_title(url, TITLE, clip.read_bytes(), renditions=("480p",))  # 640x360: one rung
    shot = Shots(tmp_path / "screenshots")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    traffic = Traffic(page)
    sign_up(page, url, "?engine=hlsjs")
    subscribe_to_solo(page)
    # From here the page never hears over its socket that its stream ended: only a refusal stops it.
    page.route_web_socket(re.compile(r"/api/v1/playback/ws"), hold_back_stream_endings)
    play_title(page, TITLE, search="Harbour")
    page.wait_for_function("() => document.getElementById('video').currentTime > 4", timeout=WAIT_MS)
    assert traffic.errors == []
    assert page.is_hidden("#player-message")
    assert (page.text_content("#player-engine") or "").startswith("hls.js ")
    shot(page, "playing-from-the-bucket")

    # Init segments and segments come from the bucket; keys and playlists only from the API.
    api_media = f"{url}/media/{content_id}/"
    segments = traffic.media((".m4s", "/init.mp4"))
    keys = traffic.media((".key",))
    playlists = traffic.media((".m3u8",))
    assert segments, "no segment requests"
    assert keys, "no key requests"
    assert playlists, "no playlist requests"
    assert all(segment.startswith(f"{public_base}/assets/") for segment in segments), segments
    assert all("?" not in segment for segment in segments), "segments on a CDN carry no query"
    assert all(key.startswith(f"{api_media}480p/key_") for key in keys), keys
    assert all(playlist.startswith(api_media) for playlist in playlists), playlists
    from_bucket = [answer for answer in traffic.answers if answer[0].startswith(public_base)]
    assert from_bucket
    assert all(status == 200 and allowed == url for _, status, allowed in from_bucket), from_bucket

    # The bound: what hls.js may hold ahead, plus the key period of the last key it fetched.
    segment_seconds = target_duration(next(p for p in playlists if "/480p/index.m3u8" in p))
    max_buffer = buffer_setting("maxMaxBufferLength")
    assert buffer_setting("maxBufferLength") <= max_buffer
    bound = max_buffer + KEY_PERIOD_SEGMENTS * segment_seconds
    assert max_buffer + DEFAULT_KEY_PERIOD_SEGMENTS * segment_seconds <= 30, "the README's bound"

    # Another device of the account takes the one screen; the page hears nothing over its socket.
    at_eviction = position(page)
    # The clip outlasts the bound by a segment or more, so a page that missed the stop would show it.
    assert at_eviction["current"] + bound + segment_seconds < CLIP_SECONDS
    evicted_at = time.monotonic()
    start_elsewhere(url, page, content_id)
    page.wait_for_selector("#player-message", state="visible", timeout=(bound + 20) * 1000)
    stopped_after = time.monotonic() - evicted_at
    assert page.text_content("#player-message-text") == EVICTION_MESSAGE
    assert page.text_content("#player-status") == "Stopped"
    assert [s["device_id"] for s in live_sessions(url, page)] == ["living-room-tv"]
    # The key was what the API refused (the page asks the refused key why, so it is asked twice).
    assert traffic.refused, "no key request was refused"
    assert all(re.fullmatch(rf"/media/{content_id}/480p/key_\d+\.key", path) for path, _ in traffic.refused)
    assert {code for _, code in traffic.refused} == {"stream_limit"}
    # It stopped, and stays stopped: the video has no source and its position no longer moves.
    assert page.evaluate("() => document.getElementById('video').getAttribute('src')") is None
    stopped_at = position(page)["playedTo"]
    time.sleep(1.5)
    assert position(page)["playedTo"] == stopped_at
    played_after = stopped_at - at_eviction["current"]
    measured = (
        f"evicted at {at_eviction['current']:.2f} s with {at_eviction['ahead']:.2f} s buffered ahead; "
        f"stopped at {stopped_at:.2f} s ({played_after:.2f} s of media after the eviction, "
        f"{stopped_after:.1f} s later); bound {bound} s"
    )
    print(measured)
    assert 0 <= played_after <= bound, measured
    shot(page, "stopped-by-the-key")

    unexpected = [
        error
        for error in traffic.errors
        if not error.startswith("Failed to load resource: the server responded with a status of 403")
    ]
    assert unexpected == []
    context.close()
