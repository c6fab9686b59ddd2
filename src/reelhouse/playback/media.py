"""Delivery that follows the session: the HLS behind ``stream_url``, authorized per request.

Routes (under ``/media/{content_id}/``; every URL but the poster carries the signed query
``?user=&session=&resolution=&media=&expires=&signature=`` that ``POST /api/v1/playback/sessions``
issued; the signature is the credential, so no access token is needed and the per-caller rate
limiter does not count them: a player fetches a segment every few seconds):

- ``manifest.m3u8`` (the ``stream_url``): the master playlist of the title's ready media, listing
  the renditions up to the stream's cap with their measured ``BANDWIDTH``, ``AVERAGE-BANDWIDTH``,
  ``CODECS``, ``RESOLUTION`` and ``FRAME-RATE``.
- ``{rendition}/index.m3u8``: that rendition's VOD media playlist (CMAF, ``EXT-X-MAP``).
- ``{rendition}/init.mp4`` and ``{rendition}/seg_NNNNN.m4s``: the initialization segment and the
  ~4 s media segments (single byte ranges honoured).
- ``poster.jpg``: the title's poster frame, public (it fills ``thumbnail_url``).

A stream plays the media asset it started on (``media`` in the signed query): when the title's
media is replaced mid-stream, its players carry on with the old renditions, kept as long as a
stream URL lives (``MediaService.discard_retired``); new streams get the replacement.

Playlists are rendered per request from the asset's ``manifest.json`` with this session's
query on every URI; nothing from the request reaches a file path but a rendition named by
:class:`~reelhouse.plans.models.Resolution` and a file name the manifest lists.

Every request is checked, in this order, and refused with a problem response:

1. the signature and expiry: 403 ``invalid_stream_signature`` or ``stream_url_expired``;
2. the stream is live (one session-store round trip: its session is in the store, for this
   title, not silent past the grace period); otherwise 403 with the reason it ended as the code
   (``stream_limit``, ``admin``, ``subscription_ended``, ``signed_out``, ``expired``, ``stopped``,
   ``replaced``), or
   ``stream_ended`` when the store no longer remembers why;
3. the rendition is within the stream's cap (the plan's at the start, lowered at once when the plan
   changes to a lower resolution: the stream goes on at the allowed renditions): 403
   ``resolution_not_allowed``;
4. the media exists (the title still has media, and the stream's asset is still kept): 404
   ``media_not_found``.

Playlists are ``Cache-Control: no-store`` (they must stop working with the session); segments
and init segments never change, so the player may keep them privately (``private, immutable``).
A segment is one request of a few seconds of video, so no answer outlives its session by more.
Recently served segments are answered from memory (:class:`SegmentCache`); others are read
in one go in a worker thread (large files in pieces), never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import time
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode
from uuid import UUID

import anyio
import anyio.to_thread
import msgspec
from litestar import Controller, Request, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse

from reelhouse.assets.store import MediaStoreError, StoredObject, outside_store
from reelhouse.media import MediaManifest, Rendition, SegmentKey, read_manifest, render_master, render_media
from reelhouse.media.encryption import KEY_BYTES, MediaKeys, key_filename, key_period_of
from reelhouse.media.manifest import MANIFEST_FILENAME, decode_manifest
from reelhouse.plans.resolutions import Resolution
from reelhouse.platform.errors import PROBLEM_JSON, DomainError, Forbidden, NotFound
from reelhouse.platform.jwt import InvalidToken
from reelhouse.platform.requests import OWN_INPUT_CHECKS
from reelhouse.playback.tokens import ExpiredStreamUrl, SignedStream, StreamUrlSigner

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from litestar.handlers import HTTPRouteHandler
    from litestar.types import Method, OperationIDCreator
    from litestar.types.internal_types import PathParameterDefinition

    from reelhouse.assets.services import MediaService
    from reelhouse.assets.store import MediaStore
    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory
    from reelhouse.playback.streams import StreamStore

T = TypeVar("T")

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp4"
MANIFEST_NAME = "manifest.m3u8"
MEDIA_PLAYLIST_NAME = "index.m3u8"
POSTER_NAME = "poster.jpg"
PLAYLIST_CACHE = "no-store"
#: A key is handed out per request, to a live stream only: never kept by a cache or CDN.
KEY_CACHE = "no-store, private"
#: Segments never change once made, and each URL belongs to one session.
SEGMENT_CACHE = "private, max-age=86400, immutable"
#: The signature is the credential: no access token, and not counted per caller (a player
#: fetches a playlist per rendition and a segment every few seconds). The URL's own checks
#: judge its path and query: anything unsigned is a 403, any other name a 404.
MEDIA_ROUTE_OPT = {"exclude_from_auth": True, "exclude_from_rate_limit": True, OWN_INPUT_CHECKS: True}
READ_CHUNK_BYTES = 256 * 1024
#: How long an instance trusts what it read of a title's current media (a replacement or removal
#: reaches new requests within this long).
MEDIA_LOOKUP_SECONDS = 2.0
MANIFESTS_KEPT = 256
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_BYTE_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.ASCII | re.IGNORECASE)
#: Larger than any file; range positions beyond it are clamped rather than parsed.
_HUGE = 10**18


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


def stream_ended(reason: str | None) -> StreamEnded:
    """403 whose code says why the stream ended (as the player's socket was told)."""
    error = StreamEnded(f"The stream ended: {reason}." if reason else None, extra={"reason": reason})
    if reason:
        error.code = reason  # type: ignore[misc]
    return error


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


def _file_size(path: Path) -> int | None:
    try:
        info = path.stat()
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _read_small_file(path: Path, limit: int) -> bytes | int | None:
    """The file's bytes when it is at most ``limit`` long, else its size; ``None`` when it is not a file."""
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None
            if info.st_size > limit:
                return info.st_size
            return file.read()
    except (OSError, ValueError):
        return None


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


@dataclass(frozen=True, slots=True)
class ReadyMedia:
    asset_id: UUID
    #: Where the media store keeps it (its keys are derived from it).
    storage_key: str
    #: Its directory on this machine (the filesystem store, shared fixtures); ``None`` in object
    #: storage, read through the store.
    directory: Path | None
    manifest: MediaManifest
    #: Each rendition's file names (its init segment and segments), for the per-request check.
    files: Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class LiveStream:
    """A media request that passed the checks: its signed query (copied onto every URI of a
    playlist), the stream's cap now, and the media asset it plays."""

    query: dict[str, str]
    cap: Resolution
    media_asset_id: UUID


class SegmentCache:
    """Recently served init segments and segments, in memory, up to ``max_bytes`` in all.

    Processed media never changes once its asset exists (a replacement is a new asset under a new
    key), so a file is remembered by its asset, rendition and name. Many viewers of one title ask
    for the same few seconds of it: they are answered without a disk read or a thread hop.
    """

    def __init__(self, max_bytes: int, max_file_bytes: int = 8 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.max_file_bytes = min(max_file_bytes, max_bytes)
        self._files: OrderedDict[tuple[UUID, str, str], bytes] = OrderedDict()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def get(self, key: tuple[UUID, str, str]) -> bytes | None:
        data = self._files.get(key)
        if data is not None:
            self._files.move_to_end(key)
        return data

    def put(self, key: tuple[UUID, str, str], data: bytes) -> None:
        if len(data) > self.max_file_bytes or key in self._files:
            return
        self._files[key] = data
        self._size += len(data)
        while self._size > self.max_bytes:
            _, dropped = self._files.popitem(last=False)
            self._size -= len(dropped)


class MediaAccess:
    """What the media routes check a request against and read media from; built once by the composition root."""

    def __init__(
        self,
        *,
        stream_urls: StreamUrlSigner,
        streams: StreamStore,
        grace_seconds: int,
        store: MediaStore,
        units: UnitOfWorkFactory,
        media_for: Callable[[UnitOfWork], MediaService],
        keys: MediaKeys,
        public_base_url: str = "",
        segment_cache_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream_urls = stream_urls
        self._streams = streams
        self._grace_ms = grace_seconds * 1000
        self._store = store
        self._units = units
        self._media_for = media_for
        self._clock = clock
        self._current: dict[UUID, tuple[float, tuple[UUID, str] | None]] = {}
        self._assets: dict[UUID, tuple[float, str | None]] = {}
        self._lookups: dict[tuple[str, UUID], asyncio.Future[Any]] = {}
        self._manifests: OrderedDict[UUID, tuple[MediaManifest, Mapping[str, frozenset[str]]]] = OrderedDict()
        self.segments = SegmentCache(segment_cache_bytes)
        self._keys = keys
        self._public_base = public_base_url.rstrip("/")

    async def check_live(self, content_id: UUID, signed: SignedStream, cap: Resolution) -> Resolution:
        """The stream's cap now, or a 403 with the reason the stream ended (one store round trip).

        The cap is the plan's at the start (``cap``, signed into the URL), lowered since when the
        plan changed to a lower resolution (the stream goes on at the renditions still allowed).
        """
        access = await self._streams.access(signed.user_id, signed.session_id)
        session = access.session
        if session is None or session.user_id != signed.user_id or session.content_id != str(content_id):
            reason = access.ended_reason if session is None else None
            raise stream_ended(reason.value if reason is not None else None)
        if session.last_heartbeat_at < time.time() * 1000 - self._grace_ms:
            # Silent past the grace period: the sweeper ends it shortly; it is over already.
            raise stream_ended("expired")
        try:
            lowered = Resolution(access.resolution_cap) if access.resolution_cap else cap
        except ValueError:
            return cap
        return lowered if lowered.rank < cap.rank else cap

    async def _title_media(self, content_id: UUID) -> tuple[UUID, str] | None:
        """The title's current media (looked up at most every couple of seconds per instance)."""
        cached = self._current.get(content_id)
        if cached is not None and cached[0] >= self._clock():
            return cached[1]
        return await self._single_flight(("title", content_id), lambda: self._look_up_title_media(content_id))

    async def _look_up_title_media(self, content_id: UUID) -> tuple[UUID, str] | None:
        async with self._units.begin() as uow:
            asset = await self._media_for(uow).ready_media(content_id)
        found = (asset.id, asset.storage_key) if asset is not None else None
        if len(self._current) > 10_000:
            self._current.clear()
        self._current[content_id] = (self._clock() + MEDIA_LOOKUP_SECONDS, found)
        return found

    async def _asset_key(self, asset_id: UUID) -> str | None:
        """Where a (possibly replaced) asset is stored, while it is kept."""
        cached = self._assets.get(asset_id)
        if cached is not None and cached[0] >= self._clock():
            return cached[1]
        return await self._single_flight(("asset", asset_id), lambda: self._look_up_asset_key(asset_id))

    async def _look_up_asset_key(self, asset_id: UUID) -> str | None:
        async with self._units.begin() as uow:
            asset = await self._media_for(uow).asset(asset_id)
        found = asset.storage_key if asset is not None else None
        if len(self._assets) > 10_000:
            self._assets.clear()
        self._assets[asset_id] = (self._clock() + MEDIA_LOOKUP_SECONDS, found)
        return found

    async def _single_flight(self, key: tuple[str, UUID], look_up: Callable[[], Awaitable[T]]) -> T:
        """Requests that find the same entry expired wait for one lookup instead of each making
        their own (a busy title would otherwise send a burst of queries every couple of seconds)."""
        pending = self._lookups.get(key)
        if pending is None:
            pending = self._lookups[key] = asyncio.ensure_future(look_up())
            pending.add_done_callback(lambda _: self._lookups.pop(key, None))
        return await asyncio.shield(pending)

    async def ready_media(self, content_id: UUID) -> ReadyMedia:
        """The title's current ready media."""
        current = await self._title_media(content_id)
        if current is None:
            raise MediaNotFound("This title has no media to stream yet.")
        return await self._open(*current)

    async def stream_media(self, content_id: UUID, asset_id: UUID) -> ReadyMedia:
        """The media a stream started on: the title's current media, or the one it replaced while
        it is kept (for as long as a stream URL lives). A title whose media was removed has none."""
        current = await self._title_media(content_id)
        if current is None:
            raise MediaNotFound("This title has no media to stream.")
        if current[0] == asset_id:
            return await self._open(*current)
        key = await self._asset_key(asset_id)
        if key is None:
            raise MediaNotFound("The media this stream started on was replaced; start playback again.")
        return await self._open(asset_id, key)

    async def _open(self, asset_id: UUID, key: str) -> ReadyMedia:
        directory = self._store.local_path(key)
        known = self._manifests.get(asset_id)
        if known is None:
            try:
                if directory is not None:
                    manifest = await anyio.to_thread.run_sync(read_manifest, directory)
                else:
                    manifest = decode_manifest(await self._store.read_bytes(f"{key}/{MANIFEST_FILENAME}"))
            except (OSError, MediaStoreError, msgspec.ValidationError, msgspec.DecodeError):
                raise MediaNotFound("This title's media is not available.") from None
            files = {
                rendition.resolution.value: frozenset([rendition.init, *(s.filename for s in rendition.segments)])
                for rendition in manifest.renditions
            }
            known = self._manifests[asset_id] = (manifest, files)
            while len(self._manifests) > MANIFESTS_KEPT:
                self._manifests.popitem(last=False)
        else:
            self._manifests.move_to_end(asset_id)
        return ReadyMedia(asset_id, key, directory, *known)

    async def authorize(self, request: Request[Any, Any, Any], content_id: UUID) -> LiveStream:
        """The request's live stream, or a 403 that says why not."""
        query = _signed_query(request)
        signed = verify_stream_url(self.stream_urls, content_id, query)
        cap = signed_cap(signed)
        try:
            asset_id = UUID(signed.media_asset_id)
        except ValueError:
            raise InvalidStreamSignature() from None
        return LiveStream(query, await self.check_live(content_id, signed, cap), asset_id)

    def media_playlist(self, media: ReadyMedia, rendition: Rendition, signed: str) -> str:
        """A rendition's media playlist for one stream: every URI signed, and an EXT-X-KEY per key
        period when the segments are encrypted (the key's URI, never the key)."""
        encryption = media.manifest.encryption

        def key_for_segment(index: int) -> SegmentKey:
            assert encryption is not None
            return SegmentKey(uri=f"{key_filename(encryption.period_of(index))}?{signed}")

        public = self.public_directory(media, rendition)
        if public is not None:  # encrypted files from the CDN; the keys from here
            return render_media(
                rendition, lambda name: f"{public}/{name}", lambda name: f"{public}/{name}", key_for_segment
            )
        return render_media(
            rendition,
            lambda segment: f"{segment}?{signed}",
            lambda init: f"{init}?{signed}",
            key_for_segment if encryption is not None else None,
        )

    def public_directory(self, media: ReadyMedia, rendition: Rendition) -> str | None:
        """The rendition's directory under ``MEDIA_PUBLIC_BASE_URL`` when its files are served
        there: only encrypted media in the media store (never media in the clear, whose segments
        must check the session, nor directories outside the store)."""
        if not self._public_base or media.manifest.encryption is None or outside_store(media.storage_key):
            return None
        return f"{self._public_base}/{quote(media.storage_key)}/{quote(rendition.directory)}"

    def key_response(
        self, request: Request[Any, Any, Any], media: ReadyMedia, rendition: Rendition, period: int
    ) -> ASGIResponse:
        """The AES-128 key of one key period of a rendition, for a live stream within its cap."""
        encryption = media.manifest.encryption
        if encryption is None or period >= encryption.periods(len(rendition.segments)):
            raise MediaNotFound(f"The {rendition.resolution.value} rendition has no such key.")
        key = self._keys.key(media.storage_key, rendition.resolution.value, period)
        return ASGIResponse(
            body=b"" if _is_head(request) else key,
            is_head_response=_is_head(request),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(KEY_BYTES),
                "Cache-Control": KEY_CACHE,
            },
        )

    async def segment_response(
        self, request: Request[Any, Any, Any], media: ReadyMedia, rendition: Rendition, name: str
    ) -> ASGIResponse:
        """An init segment or segment: from memory when recently served, else read in one go off the loop."""
        key = (media.asset_id, rendition.resolution.value, name)
        data = self.segments.get(key)
        if data is None:
            path = f"{rendition.directory}/{name}"
            read = await self._read_small(media, path)
            if not isinstance(read, bytes):  # larger than the cache takes: streamed in pieces
                return await self.file_response(request, media, path, SEGMENT_CACHE, found=read)
            data = read
            self.segments.put(key, data)
        return _bytes_response(request, data, SEGMENT_TYPE, SEGMENT_CACHE)

    async def _read_small(self, media: ReadyMedia, name: str) -> bytes | StoredObject | None:
        """The file's bytes when the cache would keep it; else what the store knows of it (``None``
        for a file on this machine). 404 when it is missing."""
        limit = self.segments.max_file_bytes
        if media.directory is not None:
            read = await anyio.to_thread.run_sync(_read_small_file, media.directory / name, limit)
            if read is None:
                raise MediaNotFound("This file of the title's media is missing.")
            return read if isinstance(read, bytes) else None
        found = await self._stat(media, name)
        return found if found.size > limit else await self._store.read_bytes(found.key)

    async def _stat(self, media: ReadyMedia, name: str) -> StoredObject:
        try:
            found = await self._store.stat(f"{media.storage_key}/{name}")
        except MediaStoreError:
            found = None
        if found is None:
            raise MediaNotFound("This file of the title's media is missing.")
        return found

    async def file_response(
        self,
        request: Request[Any, Any, Any],
        media: ReadyMedia,
        name: str,
        cache_control: str,
        found: StoredObject | None = None,
    ) -> ASGIResponse:
        """A file of the media, streamed in pieces (a single byte range honoured); ``found``: what
        the store already said of it."""
        media_type = "image/jpeg" if name.endswith(".jpg") else SEGMENT_TYPE
        if media.directory is not None:
            return await _file_response(request, media.directory / name, media_type, cache_control)
        stored = found or await self._stat(media, name)
        answer = RangedAnswer.of(request, stored.size, media_type, cache_control)
        if answer.bodiless(request):
            return answer.streamed(request, None)
        chunks = await self._store.read(stored.key, start=answer.start, end=answer.start + answer.length)
        return answer.streamed(request, chunks)


def allowed(resolution: Resolution, cap: Resolution) -> bool:
    return resolution.rank <= cap.rank


def _rendition(media: ReadyMedia, name: str, cap: Resolution) -> Rendition:
    try:
        resolution = Resolution(name)
    except ValueError:
        raise MediaNotFound() from None
    if not allowed(resolution, cap):
        raise ResolutionNotAllowed(f"Your plan streams up to {cap.value}, not {resolution.value}.")
    rendition = media.manifest.rendition(resolution)
    if rendition is None:
        raise MediaNotFound(f"This title has no {resolution.value} rendition.")
    return rendition


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
            "Cache-Control": PLAYLIST_CACHE,
        },
    )


@dataclass(frozen=True, slots=True)
class RangedAnswer:
    """The status, headers and byte span of an answer for ``size`` bytes to this request's Range."""

    status: HTTPStatus
    start: int
    length: int
    headers: dict[str, str]

    @classmethod
    def of(cls, request: Request[Any, Any, Any], size: int, media_type: str, cache_control: str) -> RangedAnswer:
        headers = {"Content-Type": media_type, "Accept-Ranges": "bytes", "Cache-Control": cache_control}
        byte_range = parse_range(request.headers.get("range"), size)
        if byte_range is None:
            status, start, length = HTTPStatus.OK, 0, size
        else:
            status, start, length = HTTPStatus.PARTIAL_CONTENT, byte_range.start, byte_range.length
            headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
        headers["Content-Length"] = str(length)
        return cls(status, start, length, headers)

    def bodiless(self, request: Request[Any, Any, Any]) -> bool:
        return _is_head(request) or self.length == 0

    def streamed(self, request: Request[Any, Any, Any], chunks: AsyncIterator[bytes] | None) -> ASGIResponse:
        """The answer, its body read from ``chunks`` (``None`` when :meth:`bodiless`)."""
        if chunks is None or self.bodiless(request):
            return ASGIResponse(status_code=self.status, headers=self.headers, is_head_response=_is_head(request))
        return ASGIStreamingResponse(iterator=chunks, status_code=self.status, headers=self.headers)


async def _file_response(
    request: Request[Any, Any, Any], path: Path, media_type: str, cache_control: str
) -> ASGIResponse:
    size = await anyio.to_thread.run_sync(_file_size, path)
    if size is None:
        raise MediaNotFound("This file of the title's media is missing.")
    answer = RangedAnswer.of(request, size, media_type, cache_control)
    return answer.streamed(request, read_slice(path, answer.start, answer.length))


def _bytes_response(request: Request[Any, Any, Any], data: bytes, media_type: str, cache_control: str) -> ASGIResponse:
    answer = RangedAnswer.of(request, len(data), media_type, cache_control)
    body = b"" if _is_head(request) else data[answer.start : answer.start + answer.length]
    return ASGIResponse(
        status_code=answer.status, headers=answer.headers, body=body, is_head_response=_is_head(request)
    )


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=None, description=description, media_type=PROBLEM_JSON)


_REFUSALS: dict[int, ResponseSpec] = {
    403: _problem(
        "invalid_stream_signature, stream_url_expired, the reason the stream ended (stream_limit, admin, "
        "subscription_ended, signed_out, expired, stopped, replaced, or stream_ended) or resolution_not_allowed"
    ),
    404: _problem("media_not_found: the title has no ready media, or no such rendition or file"),
}


def _operation_id(name: str) -> OperationIDCreator:
    """One id per method of a GET-and-HEAD route (``StreamManifest``, ``StreamManifestHead``)."""

    def create(_: HTTPRouteHandler, method: Method, __: list[str | PathParameterDefinition]) -> str:
        verb = method.value if isinstance(method, HttpMethod) else str(method)
        return name if verb == "GET" else f"{name}{verb.title()}"

    return create


class MediaController(Controller):
    """Signed media URLs: playlists and segments for one live stream."""

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
        summary="HLS master playlist of a live stream (the signed stream_url): the renditions up to its cap",
    )
    async def manifest(self, request: Request[Any, Any, Any], content_id: UUID, delivery: MediaAccess) -> ASGIResponse:
        live = await delivery.authorize(request, content_id)
        ready = await delivery.stream_media(content_id, live.media_asset_id)
        allowed_here = [rendition.resolution for rendition in ready.manifest.renditions_up_to(live.cap)]
        if not allowed_here:
            raise MediaNotFound("This title has no media at your plan's resolution.")
        signed = urlencode(live.query)
        body = render_master(
            ready.manifest, allowed_here, lambda r: f"{r.resolution.value}/{MEDIA_PLAYLIST_NAME}?{signed}"
        )
        return _text_response(request, body)

    @route(
        f"/{POSTER_NAME}",
        http_method=[HttpMethod.GET, HttpMethod.HEAD],
        operation_id=_operation_id("TitlePoster"),
        opt=MEDIA_ROUTE_OPT,
        security=[{}],
        media_type="image/jpeg",
        summary="The poster frame of a title's media (public, like the rest of its metadata)",
    )
    async def poster(self, request: Request[Any, Any, Any], content_id: UUID, delivery: MediaAccess) -> ASGIResponse:
        ready = await delivery.ready_media(content_id)
        return await delivery.file_response(request, ready, ready.manifest.poster, "public, max-age=300")

    @route(
        "/{rendition:str}/{name:str}",
        http_method=[HttpMethod.GET, HttpMethod.HEAD],
        operation_id=_operation_id("StreamRendition"),
        opt=MEDIA_ROUTE_OPT,
        security=[{}],
        responses={
            206: ResponseSpec(data_container=None, description="The requested byte range", media_type=SEGMENT_TYPE),
            **_REFUSALS,
            416: _problem("range_not_satisfiable: the range starts past the end (Content-Range: bytes */size)"),
        },
        summary="One rendition of a live stream: its media playlist (index.m3u8), init segment, a segment, "
        "or (encrypted media) the AES-128 key of a key period (key_NNNNN.key)",
    )
    async def rendition(
        self, request: Request[Any, Any, Any], content_id: UUID, rendition: str, name: str, delivery: MediaAccess
    ) -> ASGIResponse:
        live = await delivery.authorize(request, content_id)
        ready = await delivery.stream_media(content_id, live.media_asset_id)
        chosen = _rendition(ready, rendition, live.cap)
        if name == MEDIA_PLAYLIST_NAME:
            return _text_response(request, delivery.media_playlist(ready, chosen, urlencode(live.query)))
        if (period := key_period_of(name)) is not None:
            return delivery.key_response(request, ready, chosen, period)
        if name not in ready.files.get(chosen.resolution.value, ()):
            raise MediaNotFound(f"The {chosen.resolution.value} rendition has no file {name!r}.")
        return await delivery.segment_response(request, ready, chosen, name)


__all__ = [
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
