"""What the admin media routes answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from msgspec import Struct

from reelhouse.plans.resolutions import Resolution

MediaStatus = Literal["none", "queued", "processing", "ready", "failed"]


class RenditionInfo(Struct):
    resolution: Resolution
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float


class MediaProblem(Struct):
    code: str
    detail: str


class PendingMedia(Struct):
    """A replacement being processed while the current media stays ready."""

    status: Literal["queued", "processing"]
    progress_percent: int


class MediaState(Struct):
    status: MediaStatus
    progress_percent: int
    duration_seconds: float | None
    renditions: list[RenditionInfo]
    error: MediaProblem | None
    pending: PendingMedia | None
    updated_at: datetime | None


class UrlIngest(Struct, kw_only=True, forbid_unknown_fields=True):
    """``{"source_url": "https://..."}``, or ``{}`` for the title's ``video_url``."""

    source_url: str | None = None
