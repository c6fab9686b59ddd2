"""The media behind ``stream_url``: HLS playlists and the rendition files, with byte ranges.

Routes (all under ``/media/{content_id}/``, each URL carrying the signed query
``?user=&session=&resolution=&expires=&signature=`` that ``POST /api/v1/playback/sessions``
issued; the signature is the credential, so no access token is needed and the per-caller
rate limiter does not count them: a player fetches many of them):

- ``manifest.m3u8``: the HLS master playlist. One variant per rendition that exists on
  disk at or below the plan's resolution (the cap signed into the URL), lowest first,
  each with ``BANDWIDTH`` and ``RESOLUTION``.
- ``{rendition}.m3u8``: that rendition's media playlist, a VOD playlist whose one segment
  is the rendition's file (its ``EXTINF`` is the title's duration from the catalog).
- ``{rendition}.mp4``: the file itself, with HTTP range requests (``Accept-Ranges: bytes``;
  ``Range: bytes=a-b``, ``a-`` and ``-n`` answer 206 with ``Content-Range``; a range
  starting past the end answers 416 with ``Content-Range: bytes */size``; a multi-range,
  malformed or non-byte ``Range`` is ignored and the whole file answers 200, as RFC 9110
  allows; ``If-Range`` is honoured against the ``ETag`` or ``Last-Modified``). A progressive
  MP4 (best made with ``ffmpeg -movflags +faststart``) plays in any player from this URL.

``GET`` and ``HEAD`` answer on every route. Files live at
``<MEDIA_DIR>/<content id>/<rendition>.mp4`` (``480p``, ``720p``, ``1080p``, ``4k``);
nothing from the request reaches a file path but the parsed UUID and a rendition name
from the :class:`~reelhouse.plans.models.Resolution` enum, so no path can escape ``MEDIA_DIR``.

Every request is checked, in this order, and refused with a problem response:

1. the signature and expiry: 403 ``invalid_stream_signature`` (missing, malformed, forged or
   altered parameters, or a URL for another title) or 403 ``stream_url_expired``;
2. the stream is live: its session is still in the session store, for this title, and has
   not been silent past the heartbeat grace period; otherwise 403 ``stream_ended`` (stopped,
   evicted by another device, terminated, expired);
3. the rendition is within the signed cap: 403 ``resolution_not_allowed``;
4. the media exists: 404 ``media_not_found``. A title with no local file at or below the
   cap has no playable manifest (an empty master playlist is not valid HLS), so the
   manifest answers 404 ``media_not_found`` too, naming whether files exist above the cap.

Answers are ``Cache-Control: no-store``: a URL must stop working once its stream ends, so
no cache may keep answering for it.
"""

from __future__ import annotations

import re
import stat
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import UUID

import anyio
import anyio.to_thread
from litestar import Controller, Request, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse

from reelhouse.plans.models import Resolution
from reelhouse.platform.errors import PROBLEM_JSON, DomainError, Forbidden, NotFound
from reelhouse.platform.jwt import InvalidToken
from reelhouse.platform.requests import OWN_INPUT_CHECKS
from reelhouse.playback.tokens import ExpiredStreamUrl, SignedStream, StreamUrlSigner

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from litestar.handlers import HTTPRouteHandler
    from litestar.types import Method, OperationIDCreator
    from litestar.types.internal_types import PathParameterDefinition

    from reelhouse.catalog.services import CatalogService
    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory
    from reelhouse.playback.streams import StreamStore

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
VIDEO_TYPE = "video/mp4"
MANIFEST_NAME = "manifest.m3u8"
#: The signature is the credential: no access token, and not counted per caller (a player
#: fetches a playlist per rendition and a range request every few seconds). The URL's own checks
#: judge its path and query: anything unsigned is a 403, any other name a 404.
MEDIA_ROUTE_OPT = {"exclude_from_auth": True, "exclude_from_rate_limit": True, OWN_INPUT_CHECKS: True}
READ_CHUNK_BYTES = 512 * 1024
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_BYTE_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.ASCII | re.IGNORECASE)
#: Larger than any file; range positions beyond it are clamped rather than parsed.
_HUGE = 10**18


@dataclass(frozen=True, slots=True)
class Rendition:
    width: int
    height: int
    #: Peak bits per second, as HLS ``BANDWIDTH`` wants it.
    bandwidth: int


RENDITIONS: dict[Resolution, Rendition] = {
    Resolution.SD_480P: Rendition(854, 480, 1_200_000),
    Resolution.HD_720P: Rendition(1280, 720, 3_000_000),
    Resolution.FHD_1080P: Rendition(1920, 1080, 6_000_000),
    Resolution.UHD_4K: Rendition(3840, 2160, 16_000_000),
}


class InvalidStreamSignature(Forbidden):
    code = "invalid_stream_signature"
    default_detail = "This stream URL is not valid; start playback again for a new one."


class StreamUrlExpired(Forbidden):
    code = "stream_url_expired"
    default_detail = "This stream URL has expired; start playback again for a new one."


class StreamEnded(Forbidden):
    code = "stream_ended"
    default_detail = "The stream this URL belongs to has ended."


class ResolutionNotAllowed(Forbidden):
    code = "resolution_not_allowed"
    default_detail = "Your plan does not include this resolution."


class MediaNotFound(NotFound):
    code = "media_not_found"
    default_detail = "No such media for this title."


class RangeNotSatisfiable(DomainError):
    status_code = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
    code = "range_not_satisfiable"
    default_detail = "The requested range is outside the file."

    def __init__(self, size: int) -> None:
        super().__init__(headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})


# --- byte ranges ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Inclusive, as ``Content-Range`` writes it."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return _HUGE if len(digits) > 18 else int(digits)


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to send, ``None`` for the whole file, or :class:`RangeNotSatisfiable`.

    Only a single ``bytes`` range is honoured; anything else (another unit, several ranges,
    bad syntax) is ignored, which RFC 9110 allows, so the whole file is sent.
    """
    if header is None:
        return None
    match = _BYTE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = _position(first)
    end = _position(last) if last else _HUGE
    if end < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    return ByteRange(start, min(end, size - 1))


# --- files ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaFile:
    path: Path
    size: int
    modified: float
    etag: str

    @property
    def last_modified(self) -> str:
        return formatdate(self.modified, usegmt=True)


def rendition_path(media_dir: str, content_id: UUID, resolution: Resolution) -> Path:
    return Path(media_dir) / str(content_id) / f"{resolution.value}.mp4"


def _stat_file(path: Path) -> MediaFile | None:
    try:
        info = path.stat()
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return MediaFile(path, info.st_size, info.st_mtime, f'"{info.st_size:x}-{info.st_mtime_ns:x}"')


async def find_renditions(media_dir: str, content_id: UUID) -> dict[Resolution, MediaFile]:
    """The title's rendition files that exist, by resolution."""

    def scan() -> dict[Resolution, MediaFile]:
        found = {r: _stat_file(rendition_path(media_dir, content_id, r)) for r in Resolution}
        return {r: file for r, file in found.items() if file is not None}

    return await anyio.to_thread.run_sync(scan)


async def read_slice(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as file:
        await file.seek(start)
        remaining = length
        while remaining > 0:
            chunk = await file.read(min(READ_CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


# --- checks -----------------------------------------------------------------------------------


def verify_stream_url(signer: StreamUrlSigner, content_id: UUID, query: Mapping[str, str]) -> SignedStream:
    """The signed parameters of a media URL, or a 403 that says what is wrong with them."""
    signature = query.get("signature", "")
    if not _SIGNATURE.fullmatch(signature):
        raise InvalidStreamSignature()
    try:
        signed = signer.verify(str(content_id), query)
    except ExpiredStreamUrl:
        raise StreamUrlExpired() from None
    except InvalidToken:
        raise InvalidStreamSignature() from None
    return signed


def signed_cap(signed: SignedStream) -> Resolution:
    try:
        return Resolution(signed.max_resolution)
    except ValueError:
        raise InvalidStreamSignature() from None


class MediaAccess:
    """What the media routes check a request against, built once by the composition root."""

    def __init__(
        self,
        *,
        stream_urls: StreamUrlSigner,
        streams: StreamStore,
        grace_seconds: int,
        media_dir: str,
        units: UnitOfWorkFactory,
        catalog_for: Callable[[UnitOfWork], CatalogService],
    ) -> None:
        self.stream_urls = stream_urls
        self.media_dir = media_dir
        self._streams = streams
        self._grace_ms = grace_seconds * 1000
        self._units = units
        self._catalog_for = catalog_for

    async def ensure_live(self, content_id: UUID, signed: SignedStream) -> None:
        session = await self._streams.get(signed.user_id, signed.session_id)
        if session is None or session.user_id != signed.user_id or session.content_id != str(content_id):
            raise StreamEnded()
        if session.last_heartbeat_at < time.time() * 1000 - self._grace_ms:
            # Silent past the grace period: the sweeper ends it shortly; it is over already.
            raise StreamEnded()

    async def cap(self, signed: SignedStream) -> Resolution:
        """The highest rendition the stream may fetch now: the plan's at the start (signed into the
        URL), lowered since when the plan changed to a lower resolution (the stream goes on)."""
        cap = signed_cap(signed)
        current = await self._streams.resolution_cap(signed.user_id)
        try:
            lowered = Resolution(current) if current else cap
        except ValueError:
            return cap
        return lowered if lowered.rank < cap.rank else cap

    async def duration(self, content_id: UUID) -> int:
        async with self._units.begin() as uow:
            content = await self._catalog_for(uow).find(content_id)
        if content is None:
            raise MediaNotFound("No such title.")
        return int(content.duration_seconds)


def parse_rendition_name(name: str) -> tuple[Resolution, str]:
    """``720p.mp4`` -> (720p, "mp4"); anything else is not media of ours."""
    stem, dot, extension = name.rpartition(".")
    if not dot or extension not in ("mp4", "m3u8"):
        raise MediaNotFound()
    try:
        return Resolution(stem), extension
    except ValueError:
        raise MediaNotFound() from None


def allowed(resolution: Resolution, cap: Resolution) -> bool:
    return resolution.rank <= cap.rank


# --- playlists --------------------------------------------------------------------------------


def master_playlist(renditions: list[Resolution], query: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for resolution in renditions:
        spec = RENDITIONS[resolution]
        lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={spec.bandwidth},RESOLUTION={spec.width}x{spec.height}")
        lines.append(f"{resolution.value}.m3u8?{query}")
    return "\n".join(lines) + "\n"


def media_playlist(resolution: Resolution, duration_seconds: int, query: str) -> str:
    duration = max(1, duration_seconds)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXT-X-TARGETDURATION:{duration}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXTINF:{duration}.0,",
        f"{resolution.value}.mp4?{query}",
        "#EXT-X-ENDLIST",
    ]
    return "\n".join(lines) + "\n"


# --- responses --------------------------------------------------------------------------------


def _signed_query(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The first value of each signed parameter (others are ignored and never copied on)."""
    params = request.query_params
    names = (*StreamUrlSigner.FIELDS, "signature")
    return {name: str(params.get(name)) for name in names if params.get(name) is not None}


def _is_head(request: Request[Any, Any, Any]) -> bool:
    return request.method == HttpMethod.HEAD


def _text_response(request: Request[Any, Any, Any], body: str) -> ASGIResponse:
    encoded = body.encode()
    return ASGIResponse(
        body=b"" if _is_head(request) else encoded,
        is_head_response=_is_head(request),
        headers={
            "Content-Type": PLAYLIST_TYPE,
            "Content-Length": str(len(encoded)),
            "Cache-Control": "no-store",
        },
    )


def _file_response(request: Request[Any, Any, Any], media: MediaFile) -> ASGIResponse:
    headers = {
        "Content-Type": VIDEO_TYPE,
        "Accept-Ranges": "bytes",
        "ETag": media.etag,
        "Last-Modified": media.last_modified,
        "Cache-Control": "no-store",
    }
    if_range = request.headers.get("if-range")
    requested = request.headers.get("range")
    if if_range is not None and if_range.strip() not in (media.etag, media.last_modified):
        requested = None  # the file changed since the client's first part: send it all
    byte_range = parse_range(requested, media.size)
    if byte_range is None:
        status, start, length = HTTPStatus.OK, 0, media.size
    else:
        status, start, length = HTTPStatus.PARTIAL_CONTENT, byte_range.start, byte_range.length
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{media.size}"
    headers["Content-Length"] = str(length)
    if _is_head(request):
        return ASGIResponse(status_code=status, headers=headers, is_head_response=True)
    return ASGIStreamingResponse(iterator=read_slice(media.path, start, length), status_code=status, headers=headers)


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=None, description=description, media_type=PROBLEM_JSON)


_REFUSALS: dict[int, ResponseSpec] = {
    403: _problem(
        "invalid_stream_signature, stream_url_expired, stream_ended (stopped, evicted, terminated or silent) "
        "or resolution_not_allowed (above the plan's resolution)"
    ),
    404: _problem("media_not_found: no such rendition file, or none up to the plan's resolution"),
}


def _operation_id(name: str) -> OperationIDCreator:
    """One id per method of a GET-and-HEAD route (``StreamManifest``, ``StreamManifestHead``)."""

    def create(_: HTTPRouteHandler, method: Method, __: list[str | PathParameterDefinition]) -> str:
        verb = method.value if isinstance(method, HttpMethod) else str(method)
        return name if verb == "GET" else f"{name}{verb.title()}"

    return create


class MediaController(Controller):
    """Signed media URLs: playlists and files for one live stream."""

    path = "/media/{content_id:uuid}"
    tags = ["Media"]

    @route(
        f"/{MANIFEST_NAME}",
        http_method=[HttpMethod.GET, HttpMethod.HEAD],
        operation_id=_operation_id("StreamManifest"),
        opt=MEDIA_ROUTE_OPT,
        security=[{}],
        responses=_REFUSALS,
        media_type=PLAYLIST_TYPE,
        summary="HLS master playlist of a live stream (the signed stream_url): the renditions up to "
        "the plan's resolution",
    )
    async def manifest(self, request: Request[Any, Any, Any], content_id: UUID, media: MediaAccess) -> ASGIResponse:
        query = _signed_query(request)
        signed = verify_stream_url(media.stream_urls, content_id, query)
        signed_cap(signed)
        await media.ensure_live(content_id, signed)
        cap = await media.cap(signed)
        files = await find_renditions(media.media_dir, content_id)
        playable = [r for r in Resolution if r in files and allowed(r, cap)]
        if not playable:
            raise MediaNotFound(
                "This title has no media at your plan's resolution."
                if files
                else "This title has no media to stream yet."
            )
        return _text_response(request, master_playlist(playable, urlencode(query)))

    @route(
        "/{name:str}",
        http_method=[HttpMethod.GET, HttpMethod.HEAD],
        operation_id=_operation_id("StreamRendition"),
        opt=MEDIA_ROUTE_OPT,
        security=[{}],
        responses={
            206: ResponseSpec(data_container=None, description="The requested byte range", media_type=VIDEO_TYPE),
            **_REFUSALS,
            416: _problem("range_not_satisfiable: the range starts past the end (Content-Range: bytes */size)"),
        },
        summary="One rendition of a live stream: its media playlist ({rendition}.m3u8) or its file "
        "({rendition}.mp4, with byte ranges)",
    )
    async def rendition(
        self, request: Request[Any, Any, Any], content_id: UUID, name: str, media: MediaAccess
    ) -> ASGIResponse:
        resolution, extension = parse_rendition_name(name)
        query = _signed_query(request)
        signed = verify_stream_url(media.stream_urls, content_id, query)
        signed_cap(signed)
        await media.ensure_live(content_id, signed)
        cap = await media.cap(signed)
        if not allowed(resolution, cap):
            raise ResolutionNotAllowed(f"Your plan streams up to {cap.value}, not {resolution.value}.")
        found = await anyio.to_thread.run_sync(_stat_file, rendition_path(media.media_dir, content_id, resolution))
        if found is None:
            raise MediaNotFound(f"This title has no {resolution.value} rendition.")
        if extension == "m3u8":
            duration = await media.duration(content_id)
            return _text_response(request, media_playlist(resolution, duration, urlencode(query)))
        return _file_response(request, found)


__all__ = [
    "RENDITIONS",
    "ByteRange",
    "InvalidStreamSignature",
    "MediaController",
    "MediaNotFound",
    "RangeNotSatisfiable",
    "ResolutionNotAllowed",
    "StreamEnded",
    "StreamUrlExpired",
    "parse_range",
    "verify_stream_url",
]
