"""``/player``: the reference web player, plain static files (no build step), and hls.js.

The page talks to the public API on the same origin with the user's bearer token, keeps the
playback websocket open while a title plays and hands the signed HLS master playlist to the
video element, natively or through hls.js. hls.js is a pinned npm dependency (``package.json``),
installed by the project's scripts and the image build, never copied into the repository; its
built files are served from ``PLAYER_VENDOR_DIR`` at ``/player/vendor/`` (404 when they are not
installed: the page then plays natively only).

Every answer carries a strict Content-Security-Policy: scripts, styles and workers from this
origin only (no inline script, no eval), media from this origin and from ``blob:`` (hls.js feeds
the video element through Media Source Extensions), and from ``MEDIA_PUBLIC_BASE_URL``'s origin
when segments are served there (fetched by hls.js too), posters from anywhere over HTTPS.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
from litestar import Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import File
from litestar.static_files import create_static_files_router

from reelhouse.platform.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar import Response
    from litestar.types import AfterRequestHookHandler

    from reelhouse.config import PlayerSettings

PLAYER_PATH = "/player"
VENDOR_PATH = f"{PLAYER_PATH}/vendor"  # the page loads hls.js from here
STATIC_DIR = Path(__file__).parent / "static"

#: The files of hls.js's ``dist`` the page uses (the library, its transmuxing worker and their
#: source maps), with their media types; nothing else of the package is served.
VENDOR_FILES = {
    "hls.min.js": "text/javascript",
    "hls.min.js.map": "application/json",
    "hls.worker.js": "text/javascript",
    "hls.worker.js.map": "application/json",
}


def content_security_policy(media_origins: Sequence[str] = ()) -> str:
    """The player's policy; ``media_origins`` also serve segments (``MEDIA_PUBLIC_BASE_URL``'s
    origin), which the video element (natively) and hls.js (by fetching them) load from there."""
    media = "".join(f" {origin}" for origin in media_origins)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: https:",
            f"media-src 'self' blob:{media}",
            "worker-src 'self'",
            f"connect-src 'self' ws: wss:{media}",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


_OPT = {"exclude_from_auth": True, "exclude_from_rate_limit": True}


class HlsJsNotInstalled(NotFound):
    code = "hls_js_not_installed"
    default_detail = "hls.js is not installed on this server; the player plays HLS natively only."


def _security_headers(policy: str) -> AfterRequestHookHandler:
    async def add(response: Response[object]) -> Response[object]:
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return add


def vendor_router(vendor_dir: Path, policy: str) -> Router:
    """hls.js's built files at ``/player/vendor/<name>``, from where the scripts installed it."""

    @get("/{name:str}", name="player-vendor")
    async def vendor_file(name: str) -> File:
        media_type = VENDOR_FILES.get(name)
        if media_type is None:
            raise NotFound
        path = vendor_dir / name
        if not await anyio.Path(path).is_file():
            raise HlsJsNotInstalled
        return File(path, media_type=media_type, content_disposition_type="inline", filename=name)

    return Router(
        path=VENDOR_PATH.removeprefix(PLAYER_PATH),  # inside the player's router
        route_handlers=[vendor_file],
        after_request=_security_headers(policy),
        cache_control=CacheControlHeader(no_cache=True),
        opt=_OPT,
        include_in_schema=False,
    )


def player_router(settings: PlayerSettings, media_base_url: str = "") -> Router:
    """The player under ``/player`` (``/player/`` answers ``index.html``) and hls.js under ``/player/vendor``;
    ``media_base_url`` (``MEDIA_PUBLIC_BASE_URL``): where else segments come from."""
    parts = urlsplit(media_base_url)
    policy = content_security_policy([f"{parts.scheme}://{parts.netloc}"] if parts.netloc else [])
    static = create_static_files_router(
        path="/",
        directories=[STATIC_DIR],
        html_mode=True,
        name="player",
        after_request=_security_headers(policy),
        cache_control=CacheControlHeader(no_cache=True),
        opt=_OPT,
        include_in_schema=False,
        tags=["Player"],
    )
    return Router(path=PLAYER_PATH, route_handlers=[vendor_router(Path(settings.vendor_dir), policy), static])
