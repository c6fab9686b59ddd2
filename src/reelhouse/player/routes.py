"""``/player``: the reference web player, plain static files (no build step).

The page talks to the public API on the same origin with the user's bearer token, keeps the
playback websocket open while a title plays and plays the signed rendition files directly.
Its responses carry a strict Content-Security-Policy: scripts and styles from this origin only
(no inline script, no eval), media from this origin, posters from anywhere over HTTPS.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from litestar import Response
    from litestar.router import Router

PLAYER_PATH = "/player"
STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "media-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


async def _security_headers(response: Response[object]) -> Response[object]:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def player_router() -> Router:
    """The static files of the player under ``/player`` (``/player/`` answers ``index.html``)."""
    return create_static_files_router(
        path=PLAYER_PATH,
        directories=[STATIC_DIR],
        html_mode=True,
        name="player",
        after_request=_security_headers,
        cache_control=CacheControlHeader(no_cache=True),
        opt={"exclude_from_auth": True, "exclude_from_rate_limit": True},
        include_in_schema=False,
        tags=["Player"],
    )
