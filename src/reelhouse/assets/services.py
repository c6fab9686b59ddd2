"""The rules of a title's media: ingest (tus uploads and URLs), jobs, state and removal.

One job per source; queueing it happens in the request's transaction, so it exists exactly when
the request succeeded. A newer source supersedes jobs that have not started; a running one that
finishes after a newer one has delivered does not replace it. A title points at its media only
once that media is ready, and switches to a replacement in the transaction that records it.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import msgspec

from reelhouse.assets.models import MediaAsset, MediaJob, MediaJobStatus, MediaSourceKind, MediaUpload
from reelhouse.assets.repositories import MediaAssets, MediaJobs, MediaUploads
from reelhouse.assets.schemas import MediaProblem, MediaState, PendingMedia, RenditionInfo
from reelhouse.assets.sources import check_source_url
from reelhouse.assets.store import outside_store
from reelhouse.media import MediaManifest, UnsupportedMedia, looks_like_video
from reelhouse.media.probe import SNIFF_BYTES
from reelhouse.platform.errors import Conflict, DomainError, InvalidInput, NotFound

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from reelhouse.assets.store import MediaStore, StoredObject
    from reelhouse.catalog.services import CatalogService
    from reelhouse.config import MediaSettings
    from reelhouse.platform.uow import UnitOfWork

UPLOADS = "uploads"
ASSETS = "assets"
TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UploadNotFound(NotFound):
    code = "upload_not_found"
    default_detail = "No such upload."


class UploadOffsetMismatch(Conflict):
    code = "upload_offset_mismatch"
    default_detail = "Upload-Offset does not match the bytes received; ask with HEAD and resume from there."


class UploadTooLarge(DomainError):
    status_code = 413
    code = "upload_too_large"
    default_detail = "The upload is larger than this server accepts."


class UploadChunkTooLarge(DomainError):
    status_code = 413
    code = "upload_chunk_too_large"
    default_detail = "A PATCH body may be at most Tus-Max-Chunk-Size bytes."


class UploadTooLong(DomainError):
    code = "upload_exceeds_length"
    default_detail = "More bytes were sent than Upload-Length declared."


class NotAVideo(DomainError):
    status_code = 415
    code = "unsupported_media"
    default_detail = "This file is not a video."


class MediaNotFoundForTitle(NotFound):
    code = "media_not_found"
    default_detail = "This title has no media."


class NoSourceUrl(InvalidInput):
    code = "source_url_required"
    default_detail = "Give source_url, or set the title's video_url to an http(s) URL."


#: Digits of a part's offset in its key: zero-padded, so parts list in order (up to 10^15 bytes).
PART_OFFSET_DIGITS = 15


def part_key(storage_key: str, offset: int) -> str:
    return f"{storage_key}/{offset:0{PART_OFFSET_DIGITS}d}"


async def upload_parts(store: MediaStore, storage_key: str) -> list[StoredObject]:
    """An upload's parts in order: from offset 0, each one at the offset where the one before ends.

    A part a rolled-back PATCH left is either replaced by the one accepted at its offset or lies off
    this chain, so it is never read.
    """
    stored = {}
    for item in await store.list(storage_key):
        name = item.key.rsplit("/", 1)[-1]
        if name.isdigit() and len(name) == PART_OFFSET_DIGITS:
            stored[int(name)] = item
    chain: list[StoredObject] = []
    offset = 0
    while (part := stored.get(offset)) is not None and part.size > 0:
        chain.append(part)
        offset += part.size
    return chain


def parse_upload_metadata(header: str | None) -> dict[str, str]:
    """tus ``Upload-Metadata``: ``key base64value`` pairs separated by commas."""
    values: dict[str, str] = {}
    for item in (header or "").split(","):
        pair = item.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(f"Upload-Metadata: {key} is not base64 of UTF-8 text.") from None
    return values


def _problem_of(job: MediaJob) -> MediaProblem | None:
    if not job.last_error:
        return None
    code, _, detail = job.last_error.partition(": ")
    return MediaProblem(code=code, detail=detail or code)


def renditions_of(manifest: MediaManifest) -> list[dict[str, object]]:
    """The renditions as the admin state and the asset row hold them."""
    return [
        msgspec.to_builtins(
            RenditionInfo(
                resolution=rendition.resolution,
                width=rendition.width,
                height=rendition.height,
                bandwidth=rendition.bandwidth,
                average_bandwidth=rendition.average_bandwidth,
                codecs=rendition.codecs,
                frame_rate=rendition.frame_rate,
            )
        )
        for rendition in manifest.renditions
    ]


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    upload: MediaUpload
    offset: int
    #: Set when the bytes were refused (not a video) and the upload was discarded.
    refused: DomainError | None = None


class MediaService:
    def __init__(self, uow: UnitOfWork, *, settings: MediaSettings, store: MediaStore, catalog: CatalogService) -> None:
        self.uow = uow
        self.session = uow.session
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.assets = MediaAssets(uow.session)
        self.jobs = MediaJobs(uow.session)
        self.uploads = MediaUploads(uow.session)

    # --- state -------------------------------------------------------------------------------

    async def state(self, content_id: uuid.UUID) -> MediaState:
        content = await self.catalog.get_any(content_id)
        asset = await self.assets.get(content.media_asset_id) if content.media_asset_id else None
        job = await self.jobs.latest_for(content_id)
        if asset is not None:
            pending = None
            error = None
            updated = asset.updated_at
            if job is not None and job.asset_id != asset.id:
                if job.status in (MediaJobStatus.QUEUED, MediaJobStatus.PROCESSING):
                    pending = PendingMedia(status=job.status.value, progress_percent=job.progress_percent)  # type: ignore[arg-type]
                elif job.status == MediaJobStatus.FAILED:
                    error = _problem_of(job)
                updated = max(updated, job.updated_at)
            return MediaState(
                status="ready",
                progress_percent=100,
                duration_seconds=asset.duration_seconds,
                renditions=msgspec.convert(asset.renditions, list[RenditionInfo]),
                error=error,
                pending=pending,
                updated_at=updated,
            )
        if job is None or job.status == MediaJobStatus.SUCCEEDED:  # never made, or its media was removed
            return MediaState("none", 0, None, [], None, None, job.updated_at if job else None)
        return MediaState(
            status=job.status.value,  # type: ignore[arg-type]
            progress_percent=job.progress_percent,
            duration_seconds=None,
            renditions=[],
            error=_problem_of(job) if job.status == MediaJobStatus.FAILED else None,
            pending=None,
            updated_at=job.updated_at,
        )

    async def asset(self, asset_id: uuid.UUID) -> MediaAsset | None:
        """Processed media by its id: a title's, or one replaced but still kept for the streams on it."""
        return await self.assets.get(asset_id)

    async def ready_media(self, content_id: uuid.UUID) -> MediaAsset | None:
        """The media the title plays now, if it has any ready."""
        content = await self.catalog.find(content_id)
        if content is None or content.media_asset_id is None:
            return None
        return await self.assets.get(content.media_asset_id)

    # --- jobs --------------------------------------------------------------------------------

    async def queue(self, content_id: uuid.UUID, kind: MediaSourceKind, source: str) -> MediaJob:
        """The title's media job for ``source``, committed with the request that asks for it."""
        now = utcnow()
        await self.jobs.supersede_waiting(content_id, now)
        return await self.jobs.add(
            MediaJob(
                content_id=content_id,
                source_kind=kind,
                source=source,
                status=MediaJobStatus.QUEUED,
                progress_percent=0,
                attempts=0,
                next_attempt_at=now,
            )
        )

    async def ingest_url(self, content_id: uuid.UUID, source_url: str | None) -> MediaState:
        content = await self.catalog.get_any(content_id)
        url = source_url or content.video_url
        if source_url is None and not url.startswith(("http://", "https://")):
            raise NoSourceUrl()
        await check_source_url(url, allow_private=self.settings.ingest_allow_private)
        await self.queue(content_id, MediaSourceKind.URL, url)
        return await self.state(content_id)

    async def remove_media(self, content_id: uuid.UUID) -> None:
        """The title stops being playable at once; media no other title uses is deleted after the commit."""
        await self.catalog.get_any(content_id)
        previous = await self.catalog.detach_media(content_id)
        if previous is None:
            raise MediaNotFoundForTitle()
        await self.forget_if_unused(previous, keep_for_streams=False)

    async def forget_if_unused(self, asset_id: uuid.UUID, *, keep_for_streams: bool) -> None:
        """Media no title uses any more: retired (kept for the streams that started on it, see
        :meth:`discard_retired`) after a replacement, deleted at once otherwise."""
        if await self.catalog.titles_using_media(asset_id):
            return
        asset = await self.assets.get(asset_id)
        if asset is None:
            return
        if keep_for_streams:
            asset.retired_at = asset.retired_at or utcnow()
            return
        await self._discard_asset(asset)

    async def _discard_asset(self, asset: MediaAsset) -> None:
        key = asset.storage_key
        await self.assets.remove(asset.id)
        if not outside_store(key):
            self.uow.after_commit(lambda: self.store.remove(key))

    async def discard_retired(self, keep: timedelta) -> int:
        """Replaced media retired longer than ``keep`` (no stream URL on it is valid any more) is
        deleted, unless a title took it up again meanwhile; how many were deleted."""
        discarded = 0
        for asset in await self.assets.retired_before(utcnow() - keep):
            if await self.catalog.titles_using_media(asset.id):
                asset.retired_at = None
                continue
            await self._discard_asset(asset)
            discarded += 1
        return discarded

    async def share(self, content_id: uuid.UUID, asset_id: uuid.UUID) -> None:
        """Point a title at media another title already has (demo catalogues, fixtures, re-runs)."""
        asset = await self.assets.get(asset_id)
        if asset is None:
            raise MediaNotFoundForTitle("No such media asset.")
        asset.retired_at = None
        previous = await self.catalog.attach_media(content_id, asset_id)
        if previous is not None and previous != asset_id:
            await self.forget_if_unused(previous, keep_for_streams=True)

    async def register(self, storage_key: str, manifest: MediaManifest) -> MediaAsset:
        """Record processed media (complete, in the store under ``storage_key``) as an asset."""
        return await self.assets.add(
            MediaAsset(storage_key=storage_key, duration_seconds=manifest.duration, renditions=renditions_of(manifest))
        )

    # --- tus uploads -------------------------------------------------------------------------

    async def create_upload(
        self, *, length: int, metadata: dict[str, str], created_by: uuid.UUID | None
    ) -> MediaUpload:
        if length > self.settings.max_upload_bytes:
            raise UploadTooLarge(f"The upload is larger than {self.settings.max_upload_bytes} bytes.")
        try:
            content_id = uuid.UUID(metadata.get("content_id", ""))
        except ValueError:
            raise InvalidInput("Upload-Metadata must carry the title's content_id.") from None
        await self.catalog.get_any(content_id)
        filename = (metadata.get("filename") or "upload").replace("/", "_")[:255]
        upload_id = uuid.uuid4()
        key = f"{UPLOADS}/{upload_id}"
        return await self.uploads.add(
            MediaUpload(
                id=upload_id,
                content_id=content_id,
                filename=filename,
                length=length,
                storage_key=key,
                created_by=created_by,
            )
        )

    async def upload(self, upload_id: uuid.UUID, *, for_update: bool = False) -> MediaUpload:
        upload = await self.uploads.get(upload_id, for_update=for_update)
        if upload is None:
            raise UploadNotFound()
        return upload

    async def offset(self, upload: MediaUpload) -> int:
        return upload.length if upload.completed_at is not None else upload.received

    async def append(
        self, upload_id: uuid.UUID, *, offset: int, declared_length: int | None, body: AsyncIterator[bytes]
    ) -> AppendOutcome:
        """Store a PATCH body at ``offset`` (which must be the bytes received so far); the new offset.

        The body streams into the media store as one part, ``<storage_key>/<offset>``, which exists
        only once it is whole, and the upload's offset moves on in this transaction, so any instance
        sharing the store and the database takes the next PATCH. A body that ends early (the
        controller ends it where the client disconnected) is kept as far as it arrived; one that
        fails (an error, a limit) stores nothing and leaves the offset, and the client resumes from
        what HEAD reports. The last byte queues the job.
        """
        upload = await self.upload(upload_id, for_update=True)
        if upload.completed_at is not None:
            raise UploadOffsetMismatch("This upload is complete.", headers={"Upload-Offset": str(upload.length)})
        current = await self.offset(upload)
        if offset != current:
            raise UploadOffsetMismatch(headers={"Upload-Offset": str(current)})
        limit = self.settings.tus_max_chunk_bytes
        if declared_length is not None and declared_length > limit:
            raise UploadChunkTooLarge(f"A PATCH body may be at most {limit} bytes.")
        if declared_length is not None and current + declared_length > upload.length:
            raise UploadTooLong()

        async def checked() -> AsyncIterator[bytes]:
            received = 0
            async for chunk in body:
                received += len(chunk)
                if received > limit:
                    raise UploadChunkTooLarge(f"A PATCH body may be at most {limit} bytes.")
                if current + received > upload.length:
                    raise UploadTooLong()
                yield chunk

        part = part_key(upload.storage_key, current)
        received = await self.store.put_stream(part, checked())
        if received == 0:
            await self.store.delete(part)  # an empty part would stand where the next one goes
        # Should this transaction roll back, the part stays unread until a PATCH at its offset replaces it.
        new_offset = current + received
        upload.received = new_offset
        if current < SNIFF_BYTES and (new_offset >= SNIFF_BYTES or new_offset == upload.length):
            head = await self._head(upload.storage_key, SNIFF_BYTES)
            if not looks_like_video(head):
                # Answered, not raised: the upload is gone for good once this transaction commits.
                await self._discard(upload)
                return AppendOutcome(upload, 0, refused=NotAVideo())
        if new_offset == upload.length:
            upload.completed_at = utcnow()
            await self.queue(upload.content_id, MediaSourceKind.UPLOAD, upload.storage_key)
        return AppendOutcome(upload, new_offset)

    async def terminate(self, upload_id: uuid.UUID) -> None:
        upload = await self.upload(upload_id, for_update=True)
        if upload.completed_at is not None:
            # Its job owns the file now; the upload record goes, the media job goes on.
            await self.uploads.remove(upload.id)
            return
        await self._discard(upload)

    async def discard_abandoned_uploads(self, older_than: timedelta, limit: int = 100) -> int:
        """Uploads started longer ago than ``older_than`` and never finished: their files and records go."""
        abandoned = await self.uploads.abandoned(utcnow() - older_than, limit)
        for upload in abandoned:
            await self.uploads.remove(upload.id)
            self.uow.after_commit(partial(self.store.remove, upload.storage_key))
        return len(abandoned)

    async def _head(self, storage_key: str, size: int) -> bytes:
        """The first ``size`` bytes of an upload, across its parts."""
        head = b""
        for part in await upload_parts(self.store, storage_key):
            if len(head) >= size:
                break
            head += await self.store.read_bytes(part.key, end=size - len(head))
        return head

    async def _discard(self, upload: MediaUpload) -> None:
        key = upload.storage_key
        await self.uploads.remove(upload.id)
        await self.store.remove(key)


__all__ = [
    "ASSETS",
    "TUS_EXTENSIONS",
    "TUS_VERSION",
    "UPLOADS",
    "MediaService",
    "NotAVideo",
    "UnsupportedMedia",
    "parse_upload_metadata",
    "part_key",
    "upload_parts",
]
