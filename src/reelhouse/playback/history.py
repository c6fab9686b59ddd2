"""Watch history: the resume rules (decided here and nowhere else) and the service that keeps progress.

The rules, with their defaults from ``PlaybackSettings``:

- below ``resume_min_percent`` (5 %) watched, an item offers no resume point;
- at ``completion_percent`` (90 %) or past the title's ``credits_start_seconds``, it is ``completed``
  and leaves Continue Watching;
- titles shorter than ``resume_min_duration_seconds`` (300 s) never offer a resume point;
- replaying a completed title and stopping early keeps it ``completed`` with its ``completed_at``
  and ``play_count``; only the resume position changes;
- ``play_count`` counts the times the title was watched to the end: the first completion makes it
  1, and each later completion of a replay (a viewing that went back below the end first) adds 1.
  Positions reported while still past the end (the credits rolling) never count twice.

:func:`apply_progress` is the pure rule; the REST routes and the playback websocket both go through
:meth:`WatchHistoryService.save_position`, which applies it.
"""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import contains_eager, selectinload

from reelhouse.catalog.models import Content
from reelhouse.platform.errors import Forbidden, NotFound
from reelhouse.playback.models import WatchHistory, WatchStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Executable, Select, Subquery

    from reelhouse.catalog.services import CatalogService
    from reelhouse.config import PlaybackSettings
    from reelhouse.platform.uow import UnitOfWork
    from reelhouse.playback.streams import StreamSession
    from reelhouse.subscriptions.entitlement import Entitlement, EntitlementService


# --- errors -----------------------------------------------------------------------------------


class PlanRequired(Forbidden):
    code = "plan_required"
    default_detail = "Your plan does not include this title."


class WatchEntryNotFound(NotFound):
    default_detail = "No such watch-history entry."


class ContentUnavailable(NotFound):
    code = "content_not_found"
    default_detail = "No such title."


# --- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResumeRules:
    resume_min_percent: float = 5.0
    completion_percent: float = 90.0
    resume_min_duration_seconds: int = 300

    def __post_init__(self) -> None:
        if not 0 <= self.resume_min_percent < self.completion_percent <= 100:
            raise ValueError("resume rules need 0 <= RESUME_MIN_PERCENT < COMPLETION_PERCENT <= 100")
        if self.resume_min_duration_seconds < 0:
            raise ValueError("RESUME_MIN_DURATION_SECONDS must not be negative")

    @classmethod
    def from_settings(cls, playback: PlaybackSettings) -> ResumeRules:
        return cls(
            resume_min_percent=playback.resume_min_percent,
            completion_percent=playback.completion_percent,
            resume_min_duration_seconds=playback.resume_min_duration_seconds,
        )

    def is_finished(self, position: int, duration: int, credits_start: int | None) -> bool:
        """At or past the completion share, or inside the end credits."""
        if position * 100 >= self.completion_percent * duration:
            return True
        return credits_start is not None and 0 < credits_start < duration and position >= credits_start

    def resume_point(self, position: int, duration: int, credits_start: int | None) -> int:
        """Where playback resumes; 0 means from the start."""
        if duration < self.resume_min_duration_seconds:
            return 0
        if position * 100 < self.resume_min_percent * duration:
            return 0
        if self.is_finished(position, duration, credits_start):
            return 0
        return position


@dataclass(frozen=True, slots=True)
class ProgressState:
    """What the rules decide about one viewing."""

    watched_seconds: int
    total_seconds: int
    progress_percent: float
    resume_position_seconds: int
    status: WatchStatus
    play_count: int
    completed_at: datetime | None

    @classmethod
    def of(cls, entry: WatchHistory) -> ProgressState:
        return cls(
            watched_seconds=entry.watched_seconds,
            total_seconds=entry.total_seconds,
            progress_percent=entry.progress_percent,
            resume_position_seconds=entry.resume_position_seconds,
            status=entry.status,
            play_count=entry.play_count,
            completed_at=entry.completed_at,
        )

    def write_to(self, entry: WatchHistory) -> None:
        entry.watched_seconds = self.watched_seconds
        entry.total_seconds = self.total_seconds
        entry.progress_percent = self.progress_percent
        entry.resume_position_seconds = self.resume_position_seconds
        entry.status = self.status
        entry.play_count = self.play_count
        entry.completed_at = self.completed_at


def apply_progress(
    previous: ProgressState | None,
    position_seconds: float,
    *,
    duration_seconds: int,
    credits_start_seconds: int | None,
    rules: ResumeRules,
    now: datetime,
    playing: bool = False,
) -> ProgressState:
    """The state after a player reports ``position_seconds`` (clamped to the title's length).

    ``previous`` is ``None`` for the first report of a title. ``playing`` says the player is still
    playing (a websocket heartbeat); a REST report or a stop means it stopped there (``paused``).
    """
    duration = max(1, duration_seconds)
    position = min(max(0, math.floor(position_seconds)) if math.isfinite(position_seconds) else 0, duration)
    progress_percent = round(position * 100 / duration, 1)
    finished = rules.is_finished(position, duration, credits_start_seconds)
    resume = rules.resume_point(position, duration, credits_start_seconds)
    was_completed = previous is not None and previous.status == WatchStatus.COMPLETED
    completed_at: datetime | None

    if finished:
        if previous is None or not was_completed:
            play_count, completed_at = (previous.play_count if previous else 0) + 1, now
        elif rules.is_finished(previous.watched_seconds, duration, credits_start_seconds):
            # Still in the credits of the viewing that already counted.
            play_count, completed_at = previous.play_count, previous.completed_at
        else:
            # A replay went back below the end and has now reached it again.
            play_count, completed_at = previous.play_count + 1, now
        status = WatchStatus.COMPLETED
    elif was_completed:
        assert previous is not None
        # Replaying a finished title never makes it unwatched again.
        status, play_count, completed_at = WatchStatus.COMPLETED, previous.play_count, previous.completed_at
    else:
        status = WatchStatus.STARTED if previous is None or playing else WatchStatus.PAUSED
        play_count = previous.play_count if previous else 0
        completed_at = None

    return ProgressState(
        watched_seconds=position,
        total_seconds=duration,
        progress_percent=progress_percent,
        resume_position_seconds=resume,
        status=status,
        play_count=play_count,
        completed_at=completed_at,
    )


# --- queries other domains build on -----------------------------------------------------------


def viewers_per_title(since: datetime | None = None) -> Subquery:
    """``(content_id, viewers)``: distinct users who watched each title (since ``since``, when given)."""
    statement = select(WatchHistory.content_id, func.count().label("viewers")).group_by(WatchHistory.content_id)
    if since is not None:
        statement = statement.where(WatchHistory.last_watched_at >= since)
    return statement.subquery("viewers_per_title")


def titles_watched_by(user_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
    """Every title the user has an entry for, hidden ones included."""
    return select(WatchHistory.content_id).where(WatchHistory.user_id == user_id)


class ViewerCountsFromHistory:
    """The catalog's ``ViewerCounts``, answered from watch history."""

    def per_title(self, since: datetime | None = None) -> Subquery:
        return viewers_per_title(since)


@dataclass(frozen=True, slots=True)
class ViewingSignal:
    """What one viewing says about a user's taste."""

    content_id: uuid.UUID
    completed: bool
    progress_percent: float
    last_watched_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryItem:
    entry: WatchHistory
    #: False when the user's plan no longer covers the title: shown, never as playable.
    accessible: bool


# --- the service ------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


class WatchHistoryService:
    def __init__(
        self, uow: UnitOfWork, *, rules: ResumeRules, entitlements: EntitlementService, catalog: CatalogService
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.rules = rules
        self._entitlements = entitlements
        self._catalog = catalog

    async def entitlement(self, user_id: uuid.UUID) -> Entitlement:
        return await self._entitlements.for_user(user_id)

    def titles_watched_by(self, user_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
        return titles_watched_by(user_id)

    # reports

    async def record(
        self, user_id: uuid.UUID, content_id: uuid.UUID, watched_seconds: float
    ) -> tuple[HistoryItem, bool]:
        """Save a reported position for a title the user may watch. True when the entry is new."""
        content = await self._published_content(content_id)
        await self._ensure_covered(user_id, content)
        entry, created = await self.save_position(user_id, content, watched_seconds)
        return HistoryItem(entry, accessible=True), created

    async def update(self, user_id: uuid.UUID, entry_id: uuid.UUID, watched_seconds: float) -> HistoryItem:
        entry = await self.session.scalar(
            select(WatchHistory)
            .where(WatchHistory.id == entry_id, WatchHistory.user_id == user_id, WatchHistory.hidden.is_(False))
            .with_for_update()
        )
        if entry is None:
            raise WatchEntryNotFound()
        content = await self._published_content(entry.content_id)
        await self._ensure_covered(user_id, content)
        saved, _ = await self.save_position(user_id, content, watched_seconds)
        return HistoryItem(saved, accessible=True)

    async def save_position(
        self, user_id: uuid.UUID, content: Content, position_seconds: float, *, playing: bool = False
    ) -> tuple[WatchHistory, bool]:
        """Upsert the user's entry for ``content`` through the resume rules; True when it was created."""
        entry_id, created = await self.store_position(user_id, content, position_seconds, playing=playing)
        return await self._load(entry_id), created

    async def store_stream_position(self, stream: StreamSession, *, playing: bool) -> None:
        """Save a stream's last reported position, observed at its last heartbeat (its title may have
        been deleted meanwhile: then nothing)."""
        content = await self._catalog.find(uuid.UUID(stream.content_id))
        if content is None:
            return
        observed_at = datetime.fromtimestamp(stream.last_heartbeat_at / 1000, UTC)
        await self.store_position(
            uuid.UUID(stream.user_id), content, stream.position, playing=playing, observed_at=observed_at
        )

    async def store_position(
        self,
        user_id: uuid.UUID,
        content: Content,
        position_seconds: float,
        *,
        playing: bool = False,
        observed_at: datetime | None = None,
    ) -> tuple[uuid.UUID, bool]:
        """:meth:`save_position` without reading the entry back (the players' flushes need no answer).

        Entitlement is the caller's to check. The row is updated under a row lock; two concurrent
        first reports cannot both insert (the insert does nothing on conflict, and the loser updates).
        Every position carries the moment it was observed (``observed_at``; now when not given),
        stored as the entry's ``last_watched_at``. An observation no newer than what the entry
        holds (a queued flush overtaken by a stream's final save, a phone that went silent
        before a TV played on and is expired later) changes nothing: progress never rewinds.
        """
        now = utcnow()
        observed = min(observed_at, now) if observed_at is not None else now
        entry = await self._locked_entry(user_id, content.id)
        if entry is not None and observed_at is not None and entry.last_watched_at >= observed:
            return entry.id, False
        if entry is None:
            first = apply_progress(
                None,
                position_seconds,
                duration_seconds=content.duration_seconds,
                credits_start_seconds=content.credits_start_seconds,
                rules=self.rules,
                now=observed,
                playing=playing,
            )
            statement, values = self._insert_if_absent(user_id, content.id, first, now, observed)
            inserted_id = await self.session.scalar(statement, values)
            if inserted_id is not None:
                return inserted_id, True
            # A concurrent first report inserted the row: update it like any later report.
            entry = await self._locked_entry(user_id, content.id)
            if entry is None:
                raise ContentUnavailable()

        apply_progress(
            ProgressState.of(entry),
            position_seconds,
            duration_seconds=content.duration_seconds,
            credits_start_seconds=content.credits_start_seconds,
            rules=self.rules,
            now=observed,
            playing=playing,
        ).write_to(entry)
        entry.last_watched_at = observed
        entry.hidden = False
        await self.session.flush()
        return entry.id, False

    async def _locked_entry(self, user_id: uuid.UUID, content_id: uuid.UUID) -> WatchHistory | None:
        entry: WatchHistory | None = await self.session.scalar(
            select(WatchHistory)
            .where(WatchHistory.user_id == user_id, WatchHistory.content_id == content_id)
            .with_for_update()
        )
        return entry

    def _insert_if_absent(
        self, user_id: uuid.UUID, content_id: uuid.UUID, state: ProgressState, now: datetime, observed: datetime
    ) -> tuple[Executable, dict[str, Any]]:
        """The first report's row, inserted unless a concurrent one was first: one statement per
        dialect, built once, with the values as parameters (so it is compiled once, not per call)."""
        values = {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "content_id": content_id,
            "watched_seconds": state.watched_seconds,
            "total_seconds": state.total_seconds,
            "progress_percent": state.progress_percent,
            "resume_position_seconds": state.resume_position_seconds,
            "status": state.status,
            "play_count": state.play_count,
            "completed_at": state.completed_at,
            "last_watched_at": observed,
            "hidden": False,
            "created_at": now,
            "updated_at": now,
        }
        return _insert_if_absent_statement(self.session.get_bind().dialect.name), values

    async def hide(self, user_id: uuid.UUID, entry_id: uuid.UUID) -> None:
        entry = await self.session.scalar(
            select(WatchHistory).where(
                WatchHistory.id == entry_id, WatchHistory.user_id == user_id, WatchHistory.hidden.is_(False)
            )
        )
        if entry is None:
            raise WatchEntryNotFound()
        entry.hidden = True
        await self.session.flush()

    async def resume_position(self, user_id: uuid.UUID, content_id: uuid.UUID) -> int:
        """Where the user's next playback of the title starts (0: from the beginning)."""
        position = await self.session.scalar(
            select(WatchHistory.resume_position_seconds).where(
                WatchHistory.user_id == user_id, WatchHistory.content_id == content_id
            )
        )
        return position or 0

    # lists

    async def recently_watched(self, user_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[HistoryItem], int]:
        return await self._list(user_id, continue_watching=False, limit=limit, offset=offset)

    async def continue_watching(self, user_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[HistoryItem], int]:
        """Started or paused, not completed, with a resume point; most recent first."""
        return await self._list(user_id, continue_watching=True, limit=limit, offset=offset)

    async def _list(
        self, user_id: uuid.UUID, *, continue_watching: bool, limit: int, offset: int
    ) -> tuple[list[HistoryItem], int]:
        conditions = [
            WatchHistory.user_id == user_id,
            WatchHistory.hidden.is_(False),
            # A title taken down disappears from the lists rather than showing as unplayable.
            Content.published.is_(True),
        ]
        if continue_watching:
            conditions += [
                WatchHistory.status.in_([WatchStatus.STARTED, WatchStatus.PAUSED]),
                WatchHistory.resume_position_seconds > 0,
            ]
        joined = select(WatchHistory).join(Content, Content.id == WatchHistory.content_id).where(*conditions)
        # The page and the total in one query (the total rides on every row as a window count).
        rows = (
            await self.session.execute(
                joined.add_columns(func.count().over().label("total"))
                .options(contains_eager(WatchHistory.content).selectinload(Content.genres))
                .order_by(WatchHistory.last_watched_at.desc(), WatchHistory.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        entries = [row[0] for row in rows]
        if rows:
            total = int(rows[0].total)
        else:  # a page past the end: the total still counts
            total = await self.session.scalar(select(func.count()).select_from(joined.subquery())) or 0
        entitlement = await self.entitlement(user_id)
        items = [HistoryItem(entry, accessible=entitlement.covers(entry.content.access_level)) for entry in entries]
        return items, total

    async def viewing_signals(self, user_id: uuid.UUID, *, limit: int = 200) -> Sequence[ViewingSignal]:
        """The user's most recent viewings (not hidden), for recommendations."""
        rows = await self.session.execute(
            select(
                WatchHistory.content_id,
                WatchHistory.status,
                WatchHistory.progress_percent,
                WatchHistory.last_watched_at,
            )
            .where(WatchHistory.user_id == user_id, WatchHistory.hidden.is_(False))
            .order_by(WatchHistory.last_watched_at.desc())
            .limit(limit)
        )
        return [
            ViewingSignal(
                content_id=content_id,
                completed=status == WatchStatus.COMPLETED,
                progress_percent=progress_percent,
                last_watched_at=last_watched_at,
            )
            for content_id, status, progress_percent, last_watched_at in rows
        ]

    # helpers

    async def _published_content(self, content_id: uuid.UUID) -> Content:
        content = await self._catalog.find(content_id)
        if content is None or not content.published:
            raise ContentUnavailable()
        return content

    async def _ensure_covered(self, user_id: uuid.UUID, content: Content) -> None:
        entitlement = await self.entitlement(user_id)
        if not entitlement.covers(content.access_level):
            raise PlanRequired(
                f"Your plan does not include {content.access_level.value} titles.",
                extra={"required_access_level": content.access_level.value},
            )

    async def _load(self, entry_id: uuid.UUID) -> WatchHistory:
        entry = await self.session.scalar(
            select(WatchHistory)
            .where(WatchHistory.id == entry_id)
            .options(selectinload(WatchHistory.content).selectinload(Content.genres))
            .execution_options(populate_existing=True)
        )
        assert entry is not None
        return entry


__all__ = [
    "ContentUnavailable",
    "HistoryItem",
    "PlanRequired",
    "ProgressState",
    "ResumeRules",
    "ViewingSignal",
    "WatchEntryNotFound",
    "WatchHistoryService",
    "apply_progress",
    "titles_watched_by",
    "viewers_per_title",
]


@functools.cache
def _insert_if_absent_statement(dialect: str) -> Executable:
    """Plain SQL, because this version's dialect inserts (``ON CONFLICT``) are compiled on every
    execution; a text statement is compiled once. Both PostgreSQL and SQLite (3.35+) accept it."""
    del dialect  # the same statement for both
    columns = WatchHistory.__table__.c
    names = (
        "id", "user_id", "content_id", "watched_seconds", "total_seconds", "progress_percent",
        "resume_position_seconds", "status", "play_count", "completed_at", "last_watched_at", "hidden",
        "created_at", "updated_at",
    )  # fmt: skip
    statement = text(
        f"INSERT INTO {WatchHistory.__tablename__} ({', '.join(names)}) "  # noqa: S608  (fixed names)
        f"VALUES ({', '.join(':' + name for name in names)}) "
        "ON CONFLICT (user_id, content_id) DO NOTHING RETURNING id"
    )
    return statement.bindparams(*(bindparam(name, type_=columns[name].type) for name in names)).columns(columns["id"])
