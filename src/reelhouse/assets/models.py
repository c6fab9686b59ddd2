"""Media tables: processed assets, the jobs that make them, and resumable uploads."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDAuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from reelhouse.plans.models import enum_column


class MediaAsset(UUIDAuditBase):
    """Processed media, complete and measured: any number of titles may point at one.

    An asset exists only once its output is in place; titles switch to it in the transaction that
    records it, so a title's media is never half-written.
    """

    __tablename__ = "media_assets"
    __table_args__ = (Index("ix_media_assets_retired_at", "retired_at"),)

    #: Its prefix in the media store (``assets/<job>/<attempt>``); an absolute path names a directory
    #: outside the store (shared fixtures).
    storage_key: Mapped[str] = mapped_column(String(1024))
    duration_seconds: Mapped[float] = mapped_column(Float)
    #: The renditions as the admin media state shows them (from the manifest), lowest first.
    renditions: Mapped[list[dict[str, Any]]] = mapped_column(JsonB)
    #: When the last title using it switched to a replacement. Streams that started on it play it
    #: to the end, so it is kept as long as their URLs live, then discarded.
    retired_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class MediaJobStatus(enum.StrEnum):
    QUEUED = "queued"
    #: Claimed by a worker until ``claimed_until``; claimed again after that (the worker died).
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: A newer job for the same title was queued before this one started.
    SUPERSEDED = "superseded"


class MediaSourceKind(enum.StrEnum):
    UPLOAD = "upload"
    URL = "url"


class MediaJob(UUIDAuditBase):
    """Transcode and package one source for one title, queued in the transaction that asks for it."""

    __tablename__ = "media_jobs"
    __table_args__ = (
        Index("ix_media_jobs_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_media_jobs_content_id_created_at", "content_id", "created_at"),
    )

    content_id: Mapped[UUID] = mapped_column(ForeignKey("contents.id", ondelete="CASCADE"))
    source_kind: Mapped[MediaSourceKind] = mapped_column(enum_column(MediaSourceKind, "media_source_kind"))
    #: The upload's storage key, or the URL to fetch.
    source: Mapped[str] = mapped_column(String(2048))
    status: Mapped[MediaJobStatus] = mapped_column(enum_column(MediaJobStatus, "media_job_status"))
    progress_percent: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    #: ``code: detail`` of the last failure.
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    asset_id: Mapped[UUID | None] = mapped_column(ForeignKey("media_assets.id", ondelete="SET NULL"), default=None)


class MediaUpload(UUIDAuditBase):
    """A tus upload in progress: each accepted PATCH body is one part in the media store
    (``<storage_key>/<offset>``), and ``received`` (the offset) moves on in the same transaction."""

    __tablename__ = "media_uploads"

    content_id: Mapped[UUID] = mapped_column(ForeignKey("contents.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    length: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(1024))
    #: The bytes accepted so far: the tus offset.
    received: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    #: Set once the last byte arrived and the title's job was queued.
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
