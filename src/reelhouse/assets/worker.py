"""The media worker: claims queued media jobs, transcodes and packages them, switches the title.

Jobs sit in a :class:`~reelhouse.platform.leases.LeasedQueue` (the mail outbox's claim/lease
machinery), so they are durable and shared by any number of workers: the API processes (the
embedded default) and ``reelhouse media worker``. A running job renews its lease while it works
and reports progress in percent; a worker that dies stops renewing, and the job is claimed again
once the lease runs out and restarted from its source. Every attempt works in a local scratch
directory of its own (``MEDIA_WORK_DIR/<job>/<attempt>``: the source assembled from its upload parts or
downloaded, the output the media core makes there), then publishes the output to the media store
under a new prefix (``assets/<job>/<attempt>``) and only then records the asset: the title points
at it in that transaction, so a crash leaves no half-published output to serve, only an
unregistered prefix the next attempt removes. Failures are retried with backoff (a source that is
not a video is not), then the job is ``failed`` with its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from reelhouse.assets.models import MediaJob, MediaJobStatus, MediaSourceKind
from reelhouse.assets.repositories import MEDIA_QUEUE, MediaJobs
from reelhouse.assets.services import ASSETS, MediaService, upload_parts
from reelhouse.assets.sources import download
from reelhouse.assets.store import MediaObjectNotFound
from reelhouse.media import (
    EncoderSettings,
    MediaError,
    MediaManifest,
    TranscodeFailed,
    UnsupportedMedia,
    process_media_in_subprocess,
)
from reelhouse.media.encryption import MediaKeys, encrypt_media
from reelhouse.media.manifest import MANIFEST_FILENAME
from reelhouse.platform.errors import DomainError
from reelhouse.platform.jobs import stopped_by_signals
from reelhouse.platform.leases import Claimed, retry_delay

if TYPE_CHECKING:
    from reelhouse.assets.store import MediaStore
    from reelhouse.config import MediaSettings
    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500
#: In a job's scratch directory: its source (assembled or downloaded) and the output made from it.
SOURCE_FILE = "source"
OUTPUT_DIRECTORY = "output"


def utcnow() -> datetime:
    return datetime.now(UTC)


class LeaseLost(Exception):
    """Another worker holds the job now (this one was too slow to renew): stop working on it."""


class MediaWorker:
    def __init__(
        self,
        *,
        settings: MediaSettings,
        units: UnitOfWorkFactory,
        store: MediaStore,
        media_for: Callable[[UnitOfWork], MediaService],
        replaced_media_kept_seconds: float,
        keys: MediaKeys,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        #: How long replaced media stays for the streams that started on it (their URLs' lifetime).
        self.replaced_media_kept = timedelta(seconds=replaced_media_kept_seconds)
        self._keys = keys
        self._units = units
        self._store = store
        self._media_for = media_for
        self._rand = rand
        self.encoder = EncoderSettings(preset=settings.encoder_preset)  # type: ignore[arg-type]

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    @property
    def in_api_interval_seconds(self) -> float:
        """The API's job interval; 0 (never) when ``reelhouse media worker`` processes instead."""
        return self.settings.poll_seconds if self.settings.worker_in_api else 0

    async def discard_abandoned_uploads(self) -> int:
        """Unfinished uploads older than ``MEDIA_UPLOAD_EXPIRY_HOURS`` are given up (files and records)."""
        async with self._units.begin() as uow:
            return await self._media_for(uow).discard_abandoned_uploads(
                timedelta(hours=self.settings.upload_expiry_hours)
            )

    async def discard_replaced_media(self) -> int:
        """Replaced media no stream URL can reach any more is deleted (files and records)."""
        async with self._units.begin() as uow:
            return await self._media_for(uow).discard_retired(self.replaced_media_kept)

    async def run_due(self, now: datetime | None = None) -> int:
        """Process due jobs one at a time until none is left; how many were handled."""
        handled = 0
        while True:
            async with self._units.begin() as uow:
                claimed = await MEDIA_QUEUE.claim(uow.session, now or utcnow(), 1, self.lease)
            if not claimed:
                return handled
            await self.process(claimed[0])
            handled += 1

    async def process(self, claimed: Claimed) -> None:
        async with self._units.begin() as uow:
            job = await MediaJobs(uow.session).get(claimed.id)
            if job is None:
                return
            uow.session.expunge(job)
        if claimed.attempts > self.settings.max_attempts:
            # Claimed again and again without an outcome: its workers die on it (killed, out of memory).
            await self._failed(job, claimed, TranscodeFailed("every attempt stopped before it ended"))
            return
        # One directory per attempt: a worker that lost its lease but has not noticed yet keeps its own.
        scratch = Path(self.settings.work_dir) / str(job.id) / str(claimed.attempts)
        destination_key = f"{ASSETS}/{job.id}/{claimed.attempts}"
        renewal = asyncio.create_task(self._renew_lease(claimed))
        try:
            await anyio.to_thread.run_sync(_fresh_directory, scratch)
            # Earlier attempts' output was never recorded (or the job would not run again): it goes.
            await self._store.delete_prefix(f"{ASSETS}/{job.id}")
            source = await self._source(job, scratch / SOURCE_FILE)
            output = scratch / OUTPUT_DIRECTORY
            manifest = await process_media_in_subprocess(
                source,
                output,
                settings=self.encoder,
                on_progress=lambda percent: self._progress(claimed, percent),
            )
            if self.settings.encrypts:
                manifest = await self._encrypt(destination_key, output, manifest)
            # The manifest last: whoever finds it under the prefix finds every file it names.
            await self._store.publish_tree(output, destination_key, last=(MANIFEST_FILENAME,))
        except asyncio.CancelledError:
            # Stopped (shutdown): give the job back at once rather than after the lease.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self._record(
                        claimed,
                        {
                            "status": MediaJobStatus.QUEUED,
                            "claim_token": None,
                            "claimed_until": None,
                            "progress_percent": 0,
                        },
                    )
                )
            raise
        except LeaseLost:
            logger.warning("media job %s was claimed by another worker; leaving it", job.id)
            return
        except (MediaError, DomainError, OSError) as error:
            await self._failed(job, claimed, error)
            return
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            await anyio.to_thread.run_sync(_remove_scratch, scratch)
        await self._finished(job, claimed, destination_key, manifest)

    async def _encrypt(self, key: str, output: Path, manifest: MediaManifest) -> MediaManifest:
        """Full-segment AES-128 of the local output before it is published (keys derive from the
        storage key it will have), so the store only ever holds the sealed segments."""

        def key_for(rendition: str, period: int) -> bytes:
            return self._keys.key(key, rendition, period)

        return await anyio.to_thread.run_sync(
            encrypt_media, output, manifest, key_for, self.settings.key_period_segments
        )

    async def _source(self, job: MediaJob, destination: Path) -> Path:
        """The job's source as a local file: its upload's parts joined in order, or the URL fetched."""
        if job.source_kind == MediaSourceKind.UPLOAD:
            parts = await upload_parts(self._store, job.source)
            if not parts:
                raise MediaObjectNotFound(f"the upload {job.source} has no bytes in the media store")
            await anyio.to_thread.run_sync(destination.touch)
            for part in parts:
                await self._store.download(part.key, destination, append=True)
            return destination
        return await download(
            job.source,
            destination,
            max_bytes=self.settings.max_upload_bytes,
            timeout_seconds=self.settings.ingest_timeout_seconds,
            allow_private=self.settings.ingest_allow_private,
        )

    async def _renew_lease(self, claimed: Claimed) -> None:
        while True:
            await asyncio.sleep(max(0.5, self.settings.lease_seconds / 3))
            with contextlib.suppress(Exception):
                await self._record(claimed, {"claimed_until": utcnow() + self.lease})

    async def _progress(self, claimed: Claimed, percent: int) -> None:
        now = utcnow()
        held = await self._record(
            claimed, {"progress_percent": min(99, percent), "claimed_until": now + self.lease, "updated_at": now}
        )
        if not held:
            raise LeaseLost()

    async def _record(self, claimed: Claimed, values: dict[str, object]) -> bool:
        async with self._units.begin() as uow:
            return await MEDIA_QUEUE.record(uow.session, claimed, values)

    async def _finished(self, job: MediaJob, claimed: Claimed, key: str, manifest: MediaManifest) -> None:
        now = utcnow()
        async with self._units.begin() as uow:
            media = self._media_for(uow)
            jobs = MediaJobs(uow.session)
            current = await jobs.get(job.id)
            if current is None or current.claim_token != claimed.claim_token:
                # Lost its claim (or its title was deleted): this output is nobody's.
                uow.after_end(lambda: self._store.remove(key))
                return
            asset = await media.register(key, manifest)
            current.status = MediaJobStatus.SUCCEEDED
            current.progress_percent = 100
            current.asset_id = asset.id
            current.claim_token = None
            current.claimed_until = None
            current.last_error = None
            current.updated_at = now
            if not await jobs.newer_succeeded(current):
                previous = await media.catalog.attach_media(
                    job.content_id,
                    asset.id,
                    measured_duration_seconds=manifest.duration,
                    poster_url=f"/media/{job.content_id}/poster.jpg",
                )
                if previous is not None:
                    await media.forget_if_unused(previous, keep_for_streams=True)
            else:  # a newer job delivered first: no stream ever started on this output
                await media.forget_if_unused(asset.id, keep_for_streams=False)
            await self._source_done(uow, jobs, job)
            uow.on_rollback(lambda: self._store.remove(key))
        logger.info("media job %s: %s is ready (%.1f s)", job.id, job.content_id, manifest.duration)

    async def _source_done(self, uow: UnitOfWork, jobs: MediaJobs, job: MediaJob) -> None:
        """An upload is no longer needed once its job has ended and no other job reads it (a download
        lived in the job's scratch directory, gone already)."""
        if job.source_kind == MediaSourceKind.UPLOAD and await jobs.unfinished_sources(job.source) <= 1:
            uow.after_commit(lambda: self._store.remove(job.source))

    async def _failed(self, job: MediaJob, claimed: Claimed, error: Exception) -> None:
        code = getattr(error, "code", None) or "transcode_failed"
        message = f"{code}: {error}"[:MAX_ERROR_LENGTH]
        permanent = isinstance(error, UnsupportedMedia | DomainError)
        now = utcnow()
        values: dict[str, object] = {
            "claim_token": None,
            "claimed_until": None,
            "last_error": message,
            "updated_at": now,
        }
        if permanent or claimed.attempts >= self.settings.max_attempts:
            logger.warning("media job %s failed after %s attempt(s): %s", job.id, claimed.attempts, message)
            values.update(status=MediaJobStatus.FAILED, progress_percent=0)
            async with self._units.begin() as uow:
                if await MEDIA_QUEUE.record(uow.session, claimed, values):
                    await self._source_done(uow, MediaJobs(uow.session), job)
        else:
            delay = retry_delay(
                claimed.attempts,
                base_seconds=self.settings.retry_base_seconds,
                max_seconds=self.settings.retry_max_seconds,
                rand=self._rand,
            )
            logger.warning(
                "media job %s failed (attempt %s), retrying in %s: %s", job.id, claimed.attempts, delay, message
            )
            values.update(status=MediaJobStatus.QUEUED, next_attempt_at=now + delay, progress_percent=0)
            await self._record(claimed, values)
        await self._store.remove(f"{ASSETS}/{job.id}/{claimed.attempts}")


def _fresh_directory(directory: Path) -> None:
    """An empty ``directory`` for this attempt; what earlier attempts of the job left beside it goes."""
    if directory.parent.is_dir():
        for earlier in directory.parent.iterdir():
            shutil.rmtree(earlier, ignore_errors=True)
    directory.mkdir(parents=True)


def _remove_scratch(directory: Path) -> None:
    """The attempt's directory, and the job's once no attempt is left in it."""
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another attempt of the job is at work
        directory.parent.rmdir()


async def run_worker(worker: MediaWorker, *, once: bool = False, stop: asyncio.Event | None = None) -> None:
    """``reelhouse media worker``: process media jobs until SIGINT/SIGTERM.

    A signal stops the job in hand (its child process is killed); the job is claimed again after
    its lease and restarted.
    """
    stop = stop or asyncio.Event()
    with stopped_by_signals(stop):
        while not stop.is_set():
            work = asyncio.create_task(worker.run_due())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await work
                except Exception:
                    logger.exception("processing media jobs failed; trying again shortly")
            stopped.cancel()
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), worker.settings.poll_seconds)
