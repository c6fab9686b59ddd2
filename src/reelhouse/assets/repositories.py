"""The only code that queries the media tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from reelhouse.assets.models import MediaAsset, MediaJob, MediaJobStatus, MediaUpload
from reelhouse.platform.leases import LeasedQueue

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

#: Media jobs are a leased queue, claimed as the mail outbox is.
MEDIA_QUEUE = LeasedQueue(MediaJob, waiting=MediaJobStatus.QUEUED, running=MediaJobStatus.PROCESSING)


class MediaAssets:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, asset_id: uuid.UUID) -> MediaAsset | None:
        return await self.session.get(MediaAsset, asset_id)

    async def add(self, asset: MediaAsset) -> MediaAsset:
        self.session.add(asset)
        await self.session.flush()
        return asset

    async def remove(self, asset_id: uuid.UUID) -> None:
        await self.session.execute(delete(MediaAsset).where(MediaAsset.id == asset_id))

    async def retired_before(self, cutoff: datetime, limit: int = 100) -> list[MediaAsset]:
        query = select(MediaAsset).where(MediaAsset.retired_at < cutoff).order_by(MediaAsset.retired_at).limit(limit)
        return list((await self.session.scalars(query)).all())


class MediaJobs:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, job_id: uuid.UUID) -> MediaJob | None:
        return await self.session.get(MediaJob, job_id)

    async def add(self, job: MediaJob) -> MediaJob:
        self.session.add(job)
        await self.session.flush()
        return job

    async def latest_for(self, content_id: uuid.UUID) -> MediaJob | None:
        """The title's newest job that still counts (superseded ones never ran)."""
        job: MediaJob | None = await self.session.scalar(
            select(MediaJob)
            .where(MediaJob.content_id == content_id, MediaJob.status != MediaJobStatus.SUPERSEDED)
            .order_by(MediaJob.created_at.desc(), MediaJob.id.desc())
            .limit(1)
        )
        return job

    async def supersede_waiting(self, content_id: uuid.UUID, now: datetime) -> None:
        """Jobs of the title that have not started yet will not: a newer source replaces theirs."""
        await self.session.execute(
            update(MediaJob)
            .where(MediaJob.content_id == content_id, MediaJob.status == MediaJobStatus.QUEUED)
            .values(status=MediaJobStatus.SUPERSEDED, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def newer_succeeded(self, job: MediaJob) -> bool:
        """Whether a job of the same title queued after ``job`` has already delivered its media."""
        found = await self.session.scalar(
            select(MediaJob.id)
            .where(
                MediaJob.content_id == job.content_id,
                MediaJob.status == MediaJobStatus.SUCCEEDED,
                MediaJob.created_at > job.created_at,
            )
            .limit(1)
        )
        return found is not None

    async def unfinished_sources(self, source: str) -> int:
        """How many queued or running jobs read ``source``."""
        rows = await self.session.scalars(
            select(MediaJob.id).where(
                MediaJob.source == source,
                MediaJob.status.in_([MediaJobStatus.QUEUED, MediaJobStatus.PROCESSING]),
            )
        )
        return len(list(rows))


class MediaUploads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, upload_id: uuid.UUID, *, for_update: bool = False) -> MediaUpload | None:
        query = select(MediaUpload).where(MediaUpload.id == upload_id)
        if for_update:
            query = query.with_for_update()
        upload: MediaUpload | None = await self.session.scalar(query)
        return upload

    async def add(self, upload: MediaUpload) -> MediaUpload:
        self.session.add(upload)
        await self.session.flush()
        return upload

    async def remove(self, upload_id: uuid.UUID) -> None:
        await self.session.execute(delete(MediaUpload).where(MediaUpload.id == upload_id))

    async def abandoned(self, started_before: datetime, limit: int) -> list[MediaUpload]:
        """Uploads that never got their last byte and were started before ``started_before``."""
        rows = await self.session.scalars(
            select(MediaUpload)
            .where(MediaUpload.completed_at.is_(None), MediaUpload.created_at < started_before)
            .order_by(MediaUpload.created_at)
            .limit(limit)
        )
        return list(rows)
