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

:func:`apply_progress` is the pure rule; the REST routes and the playback websocket (its position
writer's batches and a stream's final save) all go through :class:`WatchHistoryService`, which
applies it (:meth:`~WatchHistoryService.store_position`, :meth:`~WatchHistoryService.store_stream_positions`).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Integer, bindparam, func, literal_column, select, text, tuple_, update

from reelhouse.catalog.models import Content
from reelhouse.platform.driver import DriverQuery, DriverTransaction, driver_transaction
from reelhouse.platform.errors import Forbidden, NotFound
from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory
from reelhouse.playback.models import WatchHistory, WatchStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Select, Subquery, Table, TextualSelect
    from sqlalchemy.ext.asyncio import AsyncSession

    from reelhouse.catalog.services import CatalogService
    from reelhouse.catalog.titles import Title
    from reelhouse.config import PlaybackSettings
    from reelhouse.playback.streams import StreamSession
    from reelhouse.subscriptions.entitlement import EntitlementService


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
    def of(cls, entry: WatchRecord) -> ProgressState:
        return cls(
            watched_seconds=entry.watched_seconds,
            total_seconds=entry.total_seconds,
            progress_percent=entry.progress_percent,
            resume_position_seconds=entry.resume_position_seconds,
            status=entry.status,
            play_count=entry.play_count,
            completed_at=entry.completed_at,
        )

    def values(self) -> dict[str, Any]:
        """The entry's columns this state sets."""
        return {
            "watched_seconds": self.watched_seconds,
            "total_seconds": self.total_seconds,
            "progress_percent": self.progress_percent,
            "resume_position_seconds": self.resume_position_seconds,
            "status": self.status,
            "play_count": self.play_count,
            "completed_at": self.completed_at,
        }


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


class TitleTiming(Protocol):
    """What the resume rules need of a title (a remembered ``Title``, or the catalog's entity)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def duration_seconds(self) -> int: ...

    @property
    def credits_start_seconds(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class WatchRecord:
    """One stored entry as read or written: plain values, never an ORM entity (the hot routes skip
    the identity map and hydration)."""

    id: uuid.UUID
    user_id: uuid.UUID
    content_id: uuid.UUID
    watched_seconds: int
    total_seconds: int
    progress_percent: float
    resume_position_seconds: int
    status: WatchStatus
    play_count: int
    completed_at: datetime | None
    last_watched_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Sequence[Any]) -> WatchRecord:
        """From a row of :data:`RECORD_COLUMNS` (first), from SQLAlchemy or from the driver
        (which gives the status as the text it is stored as)."""
        values = list(row[: len(RECORD_COLUMNS)])
        values[_STATUS_AT] = WatchStatus(values[_STATUS_AT])
        return cls(*values)


_entries = cast("Table", WatchHistory.__table__)
_titles = cast("Table", Content.__table__)
#: The columns of a :class:`WatchRecord`, in its order.
RECORD_COLUMNS = tuple(_entries.c[field.name] for field in dataclasses.fields(WatchRecord))
_RECORD_FIELDS = frozenset(field.name for field in dataclasses.fields(WatchRecord))
_STATUS_AT = [field.name for field in dataclasses.fields(WatchRecord)].index("status")


# The hot statements, built once: a statement object built per call costs more to build and to
# look up in the compiled cache than its round trip to the database.
_ENTRY_OF = select(*RECORD_COLUMNS).where(
    _entries.c.user_id == bindparam("user_id"), _entries.c.content_id == bindparam("content_id")
)
_ENTRY = DriverQuery(_ENTRY_OF)
_LOCKED_ENTRY = DriverQuery(_ENTRY_OF.with_for_update())
#: What saving a report sets: the progress state's columns and these.
_SAVED_COLUMNS = (
    *(field.name for field in dataclasses.fields(ProgressState)),
    "last_watched_at",
    "hidden",
    "updated_at",
)
#: The columns to set are the parameters' names (besides ``entry_id``).
_SAVE_ENTRY = DriverQuery(
    update(_entries).where(_entries.c.id == bindparam("entry_id")).returning(*RECORD_COLUMNS),
    column_keys=_SAVED_COLUMNS,
)
#: What the resume rules read of an entry, and when it last changed: a compare-and-set saves only
#: if the entry still holds what was read (each as a parameter ``seen_<column>``).
_RULE_INPUTS = (*(field.name for field in dataclasses.fields(ProgressState)), "last_watched_at", "updated_at")
_SAVE_ENTRY_IF_UNCHANGED = DriverQuery(
    update(_entries)
    .where(
        _entries.c.id == bindparam("entry_id"),
        *(_entries.c[name].is_not_distinct_from(bindparam(f"seen_{name}")) for name in _RULE_INPUTS),
    )
    .returning(*RECORD_COLUMNS),
    column_keys=_SAVED_COLUMNS,
)
#: The same for many entries at once (one pipelined round trip; nothing returned).
_SAVE_ENTRIES = update(_entries).where(_entries.c.id == bindparam("entry_id"))
_RESUME_POSITION = select(_entries.c.resume_position_seconds).where(
    _entries.c.user_id == bindparam("user_id"), _entries.c.content_id == bindparam("content_id")
)


def _listed(*, continue_watching: bool) -> Select[Any]:
    """A user's listed entries (of published titles, not hidden), as records."""
    conditions = [
        _entries.c.user_id == bindparam("user_id"),
        _entries.c.hidden.is_(False),
        # A title taken down disappears from the lists rather than showing as unplayable.
        _titles.c.published.is_(True),
    ]
    if continue_watching:
        conditions += [
            # Parameters given with each call, not constants: the page runs on the driver (platform/driver.py).
            _entries.c.status.in_([bindparam("started"), bindparam("paused")]),
            _entries.c.resume_position_seconds > literal_column("0", Integer),
        ]
    return (
        select(*RECORD_COLUMNS).join_from(_entries, _titles, _titles.c.id == _entries.c.content_id).where(*conditions)
    )


def _page_of(listed: Select[Any]) -> Select[Any]:
    """A page of ``listed``, most recent first, with the total riding on every row as a window
    count (the page and the total in one query)."""
    return (
        listed.add_columns(func.count().over().label("total"))
        .order_by(_entries.c.last_watched_at.desc(), _entries.c.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


_LISTS = {kind: _listed(continue_watching=kind) for kind in (False, True)}
_PAGES = {kind: DriverQuery(_page_of(listed)) for kind, listed in _LISTS.items()}
#: What the continue-watching list is made of (the parameters its statements take).
_OPEN_STATUSES = {"started": WatchStatus.STARTED, "paused": WatchStatus.PAUSED}
_TOTALS = {kind: select(func.count()).select_from(listed.subquery()) for kind, listed in _LISTS.items()}


@dataclass(frozen=True, slots=True)
class HistoryItem:
    entry: WatchRecord
    title: Title
    #: False when the user's plan no longer covers the title: shown, never as playable.
    accessible: bool


@dataclass(frozen=True, slots=True)
class _Report:
    """One position to store, as :meth:`WatchHistoryService.store_position` was given it."""

    user_id: uuid.UUID
    content: TitleTiming
    position_seconds: float
    playing: bool
    now: datetime
    observed_at: datetime | None

    @property
    def observed(self) -> datetime:
        """When the position was observed: never later than now."""
        return min(self.observed_at, self.now) if self.observed_at is not None else self.now

    def is_stale_for(self, entry: WatchRecord) -> bool:
        """An observation no newer than what the entry holds changes nothing."""
        return self.observed_at is not None and entry.last_watched_at >= self.observed


# --- the service ------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


class WatchHistoryService:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        rules: ResumeRules,
        entitlements: EntitlementService,
        catalog: CatalogService,
        optimistic: bool = False,
    ) -> None:
        """``optimistic``: ``uow``'s session reads outside a transaction, on PostgreSQL's driver
        (the progress route's short write; platform/driver.py), and positions are stored by
        compare-and-set (see :meth:`store_position`)."""
        self.uow = uow
        self.session = uow.session
        self._optimistic = optimistic
        self.rules = rules
        self._entitlements = entitlements
        self._catalog = catalog

    def titles_watched_by(self, user_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
        return titles_watched_by(user_id)

    # reports

    async def record(
        self, user_id: uuid.UUID, content_id: uuid.UUID, watched_seconds: float
    ) -> tuple[HistoryItem, bool]:
        """Save a reported position for a title the user may watch. True when the entry is new."""
        title = await self._published_title(content_id)
        await self._ensure_covered(user_id, title)
        entry, created = await self.store_position(user_id, title, watched_seconds)
        return HistoryItem(entry, title, accessible=True), created

    async def update(self, user_id: uuid.UUID, entry_id: uuid.UUID, watched_seconds: float) -> HistoryItem:
        content_id = await self.session.scalar(
            select(_entries.c.content_id).where(
                _entries.c.id == entry_id, _entries.c.user_id == user_id, _entries.c.hidden.is_(False)
            )
        )
        if content_id is None:
            raise WatchEntryNotFound()
        title = await self._published_title(content_id)
        await self._ensure_covered(user_id, title)
        saved, _ = await self.store_position(user_id, title, watched_seconds)
        return HistoryItem(saved, title, accessible=True)

    async def store_stream_position(self, stream: StreamSession, *, playing: bool) -> WatchRecord | None:
        """Save a stream's last reported position, observed at its last heartbeat; the entry as it
        now stands (None: its title was deleted meanwhile, and nothing was saved)."""
        title = await self._catalog.title(uuid.UUID(stream.content_id))
        if title is None:
            return None
        observed_at = datetime.fromtimestamp(stream.last_heartbeat_at / 1000, UTC)
        entry, _ = await self.store_position(
            uuid.UUID(stream.user_id), title, stream.position, playing=playing, observed_at=observed_at
        )
        return entry

    async def store_stream_positions(self, streams: Sequence[StreamSession]) -> None:
        """:meth:`store_stream_position` for many streams together (the position writer's batches):
        the entries are read and locked in one query, in a fixed order, and written in one
        pipelined round trip. A stream with no entry yet goes the single way (the insert)."""
        titles = await self._catalog.titles({uuid.UUID(stream.content_id) for stream in streams})
        keys = sorted({(uuid.UUID(stream.user_id), uuid.UUID(stream.content_id)) for stream in streams})
        if not keys:
            return
        rows = await self.session.execute(
            select(*RECORD_COLUMNS)
            .where(tuple_(_entries.c.user_id, _entries.c.content_id).in_(keys))
            .order_by(_entries.c.user_id, _entries.c.content_id)
            .with_for_update()
        )
        entries = {(entry.user_id, entry.content_id): entry for entry in map(WatchRecord.of, rows)}
        now = utcnow()
        changed: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]] = {}
        # Oldest observation first: two devices of one user on one title apply in the order they played.
        for stream in sorted(streams, key=lambda stream: stream.last_heartbeat_at):
            key = (uuid.UUID(stream.user_id), uuid.UUID(stream.content_id))
            title = titles.get(key[1])
            if title is None:  # deleted meanwhile
                continue
            observed = min(datetime.fromtimestamp(stream.last_heartbeat_at / 1000, UTC), now)
            playing = stream.state == "playing"
            entry = entries.get(key)
            if entry is None:
                entries[key], _ = await self.store_position(
                    key[0], title, stream.position, playing=playing, observed_at=observed
                )
                continue
            report = _Report(key[0], title, stream.position, playing, now, observed)
            if report.is_stale_for(entry):
                continue  # progress never rewinds
            values = self._next_values(entry, report)
            entries[key] = dataclasses.replace(entry, **{name: values[name] for name in _RECORD_FIELDS & values.keys()})
            changed[key] = {"entry_id": entry.id, **values}
        if changed:
            await self.session.execute(_SAVE_ENTRIES, list(changed.values()))

    async def store_position(
        self,
        user_id: uuid.UUID,
        content: TitleTiming,
        position_seconds: float,
        *,
        playing: bool = False,
        observed_at: datetime | None = None,
    ) -> tuple[WatchRecord, bool]:
        """Upsert the user's entry for ``content`` through the resume rules, returning it as stored
        and whether it was created. Entitlement is the caller's to check.

        The row is updated under a row lock; two concurrent first reports cannot both insert (the
        insert does nothing on conflict, and the loser updates). Every position carries the moment
        it was observed (``observed_at``; now when not given), stored as the entry's
        ``last_watched_at``. An observation no newer than what the entry holds (a queued flush
        overtaken by a stream's final save, a phone that went silent before a TV played on and is
        expired later) changes nothing: progress never rewinds.

        Optimistically (the progress route on PostgreSQL, see ``__init__``) the entry is read
        without a lock and saved only if it still holds what the rules read (a compare-and-set:
        two round trips, no transaction); when another write came between, the report is made
        again the locked way, in a transaction of the driver's own.
        """
        now = utcnow()
        report = _Report(user_id, content, position_seconds, playing, now, observed_at)
        if not self._optimistic:
            return await self._store_locked(self.session, report)
        stored = await self._store_if_unchanged(report)
        if stored is not None:
            return stored
        async with driver_transaction(self.session) as transaction:
            if transaction is None:  # pragma: no cover  (optimistic only where the driver is)
                raise RuntimeError("an optimistic report needs the driver")
            return await self._store_locked(transaction, report)

    async def _store_locked(self, on: AsyncSession | DriverTransaction, report: _Report) -> tuple[WatchRecord, bool]:
        entry = await self._entry(on, report, _LOCKED_ENTRY)
        if entry is None:
            inserted = await _INSERT_IF_ABSENT.rows(on, self._first_values(report))
            if inserted:
                return WatchRecord.of(inserted[0]), True
            # A concurrent first report inserted the row: update it like any later report.
            entry = await self._entry(on, report, _LOCKED_ENTRY)
            if entry is None:
                raise ContentUnavailable()
        if report.is_stale_for(entry):
            return entry, False
        (updated,) = await _SAVE_ENTRY.rows(on, {"entry_id": entry.id, **self._next_values(entry, report)})
        return WatchRecord.of(updated), False

    async def _store_if_unchanged(self, report: _Report) -> tuple[WatchRecord, bool] | None:
        """The report saved by compare-and-set, outside a transaction; None when another write came
        between the read and the save (or a concurrent first report inserted the entry)."""
        entry = await self._entry(self.session, report, _ENTRY)
        if entry is None:
            inserted = await _INSERT_IF_ABSENT.rows(self.session, self._first_values(report))
            return (WatchRecord.of(inserted[0]), True) if inserted else None
        if report.is_stale_for(entry):
            return entry, False
        seen = {f"seen_{name}": getattr(entry, name) for name in _RULE_INPUTS}
        saved = await _SAVE_ENTRY_IF_UNCHANGED.rows(
            self.session, {"entry_id": entry.id, **self._next_values(entry, report), **seen}
        )
        return (WatchRecord.of(saved[0]), False) if saved else None

    @staticmethod
    async def _entry(on: AsyncSession | DriverTransaction, report: _Report, query: DriverQuery) -> WatchRecord | None:
        rows = await query.rows(on, {"user_id": report.user_id, "content_id": report.content.id})
        return WatchRecord.of(rows[0]) if rows else None

    def _first_values(self, report: _Report) -> dict[str, Any]:
        first = apply_progress(
            None,
            report.position_seconds,
            duration_seconds=report.content.duration_seconds,
            credits_start_seconds=report.content.credits_start_seconds,
            rules=self.rules,
            now=report.observed,
            playing=report.playing,
        )
        return _first_row(report.user_id, report.content.id, first, report.now, report.observed)

    def _next_values(self, entry: WatchRecord, report: _Report) -> dict[str, Any]:
        """The columns a report sets on an existing entry, through the resume rules."""
        state = apply_progress(
            ProgressState.of(entry),
            report.position_seconds,
            duration_seconds=report.content.duration_seconds,
            credits_start_seconds=report.content.credits_start_seconds,
            rules=self.rules,
            now=report.observed,
            playing=report.playing,
        )
        return {**state.values(), "last_watched_at": report.observed, "hidden": False, "updated_at": report.now}

    async def hide(self, user_id: uuid.UUID, entry_id: uuid.UUID) -> None:
        hidden = await self.session.scalar(
            update(_entries)
            .where(_entries.c.id == entry_id, _entries.c.user_id == user_id, _entries.c.hidden.is_(False))
            .values(hidden=True, updated_at=utcnow())
            .returning(_entries.c.id)
        )
        if hidden is None:
            raise WatchEntryNotFound()

    async def resume_position(self, user_id: uuid.UUID, content_id: uuid.UUID) -> int:
        """Where the user's next playback of the title starts (0: from the beginning)."""
        position = await self.session.scalar(_RESUME_POSITION, {"user_id": user_id, "content_id": content_id})
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
        which: dict[str, object] = {"user_id": user_id, **(_OPEN_STATUSES if continue_watching else {})}
        rows = await _PAGES[continue_watching].rows(self.session, {**which, "limit": limit, "offset": offset})
        entries = [WatchRecord.of(row) for row in rows]
        if rows:
            total = int(rows[0][len(RECORD_COLUMNS)])
        else:  # a page past the end: the total still counts
            total = await self.session.scalar(_TOTALS[continue_watching], which) or 0
        # The titles' cards come from the catalog's memory: no join of their columns, no genre query.
        titles = await self._catalog.titles(entry.content_id for entry in entries)
        entitlement = await self._entitlements.remembered(user_id)
        items = [
            HistoryItem(entry, title, accessible=entitlement.covers(title.access_level))
            for entry in entries
            if (title := titles.get(entry.content_id)) is not None
        ]
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

    async def _published_title(self, content_id: uuid.UUID) -> Title:
        title = await self._catalog.title(content_id)
        if title is None or not title.published:
            raise ContentUnavailable()
        return title

    async def _ensure_covered(self, user_id: uuid.UUID, title: Title) -> None:
        entitlement = await self._entitlements.remembered(user_id)
        if not entitlement.covers(title.access_level):
            raise PlanRequired(
                f"Your plan does not include {title.access_level.value} titles.",
                extra={"required_access_level": title.access_level.value},
            )


class WatchHistoryRequests:
    """The seed API's hot watch-history routes, each call in a database session of its own: a page
    on a read session (no transaction), a progress report as a short write
    (:meth:`UnitOfWorkFactory.short_write`). Built once, so the routes take no dependency the
    framework opens and closes per request (a generator dependency, its cleanup and one more
    round of dependency resolution cost a hot route about a tenth of its CPU)."""

    def __init__(
        self, units: UnitOfWorkFactory, history_for: Callable[[UnitOfWork, bool], WatchHistoryService]
    ) -> None:
        """``history_for(uow, optimistic)``: the service on a unit of work (see ``WatchHistoryService``)."""
        self._units = units
        self._history_for = history_for

    async def recently_watched(self, user_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[HistoryItem], int]:
        async with self._units.read() as session:
            history = self._history_for(UnitOfWork(session, self._units.events), False)
            return await history.recently_watched(user_id, limit=limit, offset=offset)

    async def continue_watching(self, user_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[HistoryItem], int]:
        async with self._units.read() as session:
            history = self._history_for(UnitOfWork(session, self._units.events), False)
            return await history.continue_watching(user_id, limit=limit, offset=offset)

    async def record(
        self, user_id: uuid.UUID, content_id: uuid.UUID, watched_seconds: float
    ) -> tuple[HistoryItem, bool]:
        async with self._units.short_write() as write:
            return await self._history_for(write.uow, write.on_the_driver).record(user_id, content_id, watched_seconds)


__all__ = [
    "ContentUnavailable",
    "HistoryItem",
    "PlanRequired",
    "ProgressState",
    "ResumeRules",
    "TitleTiming",
    "ViewingSignal",
    "WatchEntryNotFound",
    "WatchHistoryRequests",
    "WatchHistoryService",
    "WatchRecord",
    "apply_progress",
    "titles_watched_by",
    "viewers_per_title",
]


def _insert_if_absent_statement() -> TextualSelect:
    """Plain SQL, because this version's dialect inserts (``ON CONFLICT``) are compiled on every
    execution; a text statement is compiled once. Both PostgreSQL and SQLite (3.35+) accept it."""
    columns = WatchHistory.__table__.c
    returned = ", ".join(column.name for column in RECORD_COLUMNS)
    statement = text(
        f"INSERT INTO {WatchHistory.__tablename__} ({', '.join(_INSERTED_COLUMNS)}) "  # noqa: S608  (fixed names)
        f"VALUES ({', '.join(':' + name for name in _INSERTED_COLUMNS)}) "
        f"ON CONFLICT (user_id, content_id) DO NOTHING RETURNING {returned}"
    )
    statement = statement.bindparams(*(bindparam(name, type_=columns[name].type) for name in _INSERTED_COLUMNS))
    return statement.columns(*RECORD_COLUMNS)


_INSERTED_COLUMNS = ("id", "user_id", "content_id", *_SAVED_COLUMNS, "created_at")
#: A first report's row, inserted unless a concurrent first report was first.
_INSERT_IF_ABSENT = DriverQuery(_insert_if_absent_statement())


def _first_row(
    user_id: uuid.UUID, content_id: uuid.UUID, state: ProgressState, now: datetime, observed: datetime
) -> dict[str, Any]:
    """The values of a first report's row."""
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "content_id": content_id,
        **state.values(),
        "last_watched_at": observed,
        "hidden": False,
        "created_at": now,
        "updated_at": now,
    }
