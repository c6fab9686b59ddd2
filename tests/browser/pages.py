"""What the browser tests share: the accounts, the one-screen plan, waiting, screenshots, and an
administrator's tus upload (plain HTTP) that gives a title its own processed media."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, WebSocketRoute

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


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def admin_token(url: str) -> str:
    with httpx.Client(base_url=url, timeout=10) as client:
        signed_in = ok(client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
    return str(signed_in["token"])


def add_one_screen_plan(url: str) -> None:
    """An administrator adds "Solo": everything, up to 1080p, on one screen at a time."""
    with httpx.Client(base_url=url, timeout=10) as client:
        plan = {
            "name": "Solo",
            "price": 699,
            "validity_days": 30,
            "access_level": "premium",
            "max_devices_allowed": 1,
            "resolution": "1080p",
            "description": "Everything in full HD on one screen.",
        }
        headers = {"Authorization": f"Bearer {admin_token(url)}"}
        ok(client.post("/api/v1/admin/plans", json=plan, headers=headers), 201)


def add_uploaded_title(
    url: str,
    name: str,
    video: bytes,
    chunk_bytes: int = 1024 * 1024,
    renditions: tuple[str, ...] = ("480p", "720p"),
) -> str:
    """An administrator adds a published title and uploads its video with tus (in chunks), then
    waits until its media is processed into ``renditions``; the title's id."""
    headers = {"Authorization": f"Bearer {admin_token(url)}"}
    tus = {**headers, "Tus-Resumable": "1.0.0"}
    with httpx.Client(base_url=url, timeout=30) as client:
        title = {
            "title": name,
            "description": "Uploaded by an administrator.",
            "access_level": "free",
            "duration_seconds": 60,
            "video_url": "harbour-lights.mp4",  # the administrator uploads the video itself below
            "genres": [],
            "published": True,
        }
        content_id = str(ok(client.post("/api/v1/admin/content", json=title, headers=headers), 201)["id"])
        metadata = f"content_id {b64(content_id)},filename {b64('clip.mp4')}"
        created = client.post(
            "/api/v1/admin/uploads", headers={**tus, "Upload-Length": str(len(video)), "Upload-Metadata": metadata}
        )
        assert created.status_code == 201, created.text
        location = created.headers["location"]
        offset = 0
        while offset < len(video):
            sent = client.patch(
                location,
                content=video[offset : offset + chunk_bytes],
                headers={**tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
            )
            assert sent.status_code == 204, sent.text
            offset = int(sent.headers["upload-offset"])
        media = wait_for(
            lambda: ready(ok(client.get(f"/api/v1/admin/content/{content_id}/media", headers=headers))),
            "the uploaded video to be processed",
            seconds=180,
        )
        assert tuple(r["resolution"] for r in media["renditions"]) == renditions, media
    return content_id


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def ready(media: dict[str, Any]) -> dict[str, Any] | None:
    assert media["status"] != "failed", media
    return media if media["status"] == "ready" else None


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


def sign_up(page: Page, url: str, query: str = "") -> None:
    page.goto(f"{url}/player/{query}")
    page.wait_for_selector("#sign-up-form", state="visible")
    page.fill("#sign-up-form input[name=name]", "Vera Viewer")
    page.fill("#sign-up-form input[name=email]", VIEWER_EMAIL)
    page.fill("#sign-up-form input[name=password]", VIEWER_PASSWORD)
    page.click("#sign-up-form button[type=submit]")
    page.wait_for_selector("#nav", state="visible")


def sign_in(page: Page, url: str, query: str = "") -> None:
    page.goto(f"{url}/player/{query}")
    page.fill("#sign-in-form input[name=email]", VIEWER_EMAIL)
    page.fill("#sign-in-form input[name=password]", VIEWER_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#nav", state="visible")


def subscribe_to_solo(page: Page) -> None:
    page.click(".tab[data-view=plans]")
    page.locator(".plan[data-plan-name=Solo] button").click()
    page.wait_for_selector("#notice:has-text('You are subscribed to Solo.')")
    page.wait_for_selector(".plan.current[data-plan-name=Solo]")
    assert page.text_content("#account-plan") == "Solo"


def play_title(page: Page, title: str = TITLE, search: str = "Lighthouse") -> None:
    page.click(".tab[data-view=home]")
    page.fill("#search-q", search)
    page.click("#search-form button[type=submit]")
    page.locator("#catalog-list .card", has_text=title).first.locator(".poster").click()


def video_time(page: Page) -> float:
    return float(page.evaluate("() => document.getElementById('video').currentTime"))


def hold_back_stream_endings(route: WebSocketRoute) -> None:
    """The playback socket as a dead connection leaves it: the page never hears that its stream ended."""
    server = route.connect_to_server()
    server.on_message(lambda message: None if '"terminated"' in str(message) else route.send(message))
    server.on_close(lambda code, reason: None)


def start_elsewhere(url: str, page: Page, content_id: str) -> dict[str, Any]:
    """The same account starts the title on a television through the API (the plan has one screen)."""
    token = page.evaluate("() => JSON.parse(localStorage.getItem('reelhouse.player')).token")
    body = {"content_id": content_id, "device_id": "living-room-tv", "device_name": "Television"}
    response = httpx.post(
        f"{url}/api/v1/playback/sessions", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return ok(response, 201)
