"""Request and response shapes for watch history."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from msgspec import Meta, Struct

from reelhouse.catalog.schemas import Content
from reelhouse.playback.models import WatchStatus

if TYPE_CHECKING:
    from reelhouse.playback.history import HistoryItem

#: A position in seconds; beyond the title's end it is taken as the end.
WatchedSeconds = Annotated[float, Meta(ge=0, le=1_000_000, examples=[1234])]


class ProgressReport(Struct):
    content_id: UUID
    watched_seconds: WatchedSeconds


class ProgressUpdate(Struct):
    watched_seconds: WatchedSeconds


class WatchEntry(Struct):
    id: UUID
    user_id: UUID
    content_id: UUID
    content: Content
    watched_seconds: int
    total_seconds: int
    progress_percent: float
    #: Where playback resumes; 0 means from the start.
    resume_position_seconds: int
    status: WatchStatus
    play_count: int
    completed_at: datetime | None
    last_watched_at: datetime
    #: False when your plan no longer covers the title: it is listed but cannot be played.
    accessible: bool
    created_at: datetime
    updated_at: datetime


class WatchHistoryList(Struct):
    watch_history: list[WatchEntry]
    total: int
    limit: int
    offset: int


class ContinueWatchingList(Struct):
    continue_watching: list[WatchEntry]
    total: int
    limit: int
    offset: int


def watch_entry_from(item: HistoryItem) -> WatchEntry:
    entry = item.entry
    return WatchEntry(
        id=entry.id,
        user_id=entry.user_id,
        content_id=entry.content_id,
        content=item.title.card,
        watched_seconds=entry.watched_seconds,
        total_seconds=entry.total_seconds,
        progress_percent=entry.progress_percent,
        resume_position_seconds=entry.resume_position_seconds,
        status=entry.status,
        play_count=entry.play_count,
        completed_at=entry.completed_at,
        last_watched_at=entry.last_watched_at,
        accessible=item.accessible,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )
