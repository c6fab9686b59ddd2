"""Playback sessions: starting, stopping, applying entitlement changes, and every way a stream ends.

Every ended stream, whatever ended it, goes through :meth:`PlaybackService.settle`:
its last position is saved to watch history, the event is logged, and its device
is told why over the stream's channel, on whichever instance its socket lives.
Lower domains reach it through events (see :mod:`reelhouse.playback.handlers`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import RedisClusterException, RedisError

from reelhouse.accounts.repositories import UserRepository
from reelhouse.plans.models import AccessLevel, StreamLimitPolicy
from reelhouse.platform.errors import Conflict, NotFound
from reelhouse.platform.outages import OutageLog, is_outage
from reelhouse.playback.events import PlaybackEventKind, PlaybackLog, stream_never_ended
from reelhouse.playback.history import ContentUnavailable, PlanRequired
from reelhouse.playback.metrics import ADMISSIONS, ENDINGS
from reelhouse.playback.pending import PendingWrite
from reelhouse.playback.streams import EndedStream, EndReason, NewStream, StreamSession

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from reelhouse.catalog.services import CatalogService
    from reelhouse.catalog.titles import Title
    from reelhouse.config import PlaybackSettings
    from reelhouse.platform.broadcast import Broadcast
    from reelhouse.platform.uow import UnitOfWork
    from reelhouse.playback.heartbeats import PositionWriter
    from reelhouse.playback.history import WatchHistoryService
    from reelhouse.playback.pending import PendingWrites
    from reelhouse.playback.streams import StreamStore
    from reelhouse.playback.tokens import PlaybackClaims, PlaybackTokenCodec, StreamUrlSigner
    from reelhouse.subscriptions.entitlement import Entitlement, EntitlementService

logger = logging.getLogger(__name__)

#: What a device is told when its stream ends, and the close code its socket gets.
TERMINATION_DETAILS: dict[EndReason, tuple[int, str]] = {
    EndReason.STREAM_LIMIT: (4001, "Another device started watching and your plan's stream limit was reached."),
    EndReason.ADMIN: (4002, "An administrator ended this stream."),
    EndReason.SUBSCRIPTION_ENDED: (4003, "Your subscription no longer covers this title."),
    EndReason.SIGNED_OUT: (4004, "The account was signed out or disabled."),
    EndReason.EXPIRED: (4005, "No heartbeat arrived in time; the stream ended."),
    EndReason.STOPPED: (4006, "The stream was stopped."),
    EndReason.REPLACED: (4007, "This device started another stream."),
}


#: The state of a stream admitted but not yet heard from.
STARTING = "starting"


#: Every instance listens here and hands each notice to the socket of its stream, if it holds it.
PLAYER_NOTICES_CHANNEL = "playback:notices"


def terminated_message(reason: EndReason) -> dict[str, str]:
    return {"type": "terminated", "reason": reason.value, "detail": TERMINATION_DETAILS[reason][1]}


def termination_notice(session_id: str, reason: EndReason) -> dict[str, str]:
    return {"session_id": session_id, "reason": reason.value}


class StreamLimitReached(Conflict):
    code = "stream_limit_reached"
    default_detail = "Your plan's stream limit is reached; name a session to end in replace_session_id."


class PlaybackSessionNotFound(NotFound):
    code = "session_not_found"
    default_detail = "No such live playback session."


class MediaNotReady(Conflict):
    code = "media_not_ready"
    default_detail = "This title's video is not ready to stream yet."


@dataclass(frozen=True, slots=True)
class StartedStream:
    session: StreamSession
    playback_token: str
    stream_query: str
    entitlement: Entitlement
    resume_position_seconds: int
    ended: list[EndedStream]
    heartbeat_interval_seconds: int


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    active: bool
    #: What the user may watch (None for an account no longer active).
    entitlement: Entitlement | None
    #: Epoch seconds after which it must be read again.
    fresh_until: float

    @property
    def access_level(self) -> AccessLevel:
        return (self.entitlement.access_level if self.entitlement else None) or AccessLevel.FREE

    @property
    def max_devices(self) -> int:
        return self.entitlement.max_devices if self.entitlement else 0

    def may_watch(self, content: ContentSnapshot) -> bool:
        return content.published and self.entitlement is not None and self.entitlement.covers(content.access_level)


@dataclass(frozen=True, slots=True)
class ContentSnapshot:
    published: bool
    access_level: AccessLevel
    fresh_until: float


class EntitlementSnapshots:
    """What heartbeats check a stream against, kept in memory so a heartbeat needs no query.

    Changes made through the API reach live streams at once by another path
    (:meth:`PlaybackService.enforce` and :meth:`PlaybackService.end_all`, which also forget
    the user here). These snapshots are the safety net for what happens by time or
    elsewhere: a user's entitlement is read again when their subscription ends (and at
    least every ``user_seconds``); a title's published state and level every
    ``content_seconds`` (half a heartbeat interval), so an unpublished title ends its
    streams within one interval.
    """

    MAX_ENTRIES = 100_000

    def __init__(self, user_seconds: float, content_seconds: float) -> None:
        self._user_seconds = user_seconds
        self._content_seconds = content_seconds
        self._users: dict[str, UserSnapshot] = {}
        self._contents: dict[str, ContentSnapshot] = {}
        self._refreshing: set[str] = set()
        self._content_reads: dict[str, asyncio.Future[ContentSnapshot]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._outage = OutageLog("entitlement refreshes (database)")

    def user(self, user_id: str, *, stale: bool = False) -> UserSnapshot | None:
        """The user's snapshot while fresh (``stale=True``: whatever is remembered)."""
        snapshot = self._users.get(user_id)
        return snapshot if snapshot is not None and (stale or snapshot.fresh_until > time.time()) else None

    def remember_user(self, user_id: str, *, active: bool, entitlement: Entitlement | None) -> UserSnapshot:
        now = time.time()
        fresh_until = now + self._user_seconds
        if entitlement is not None and entitlement.valid_until is not None:
            fresh_until = min(fresh_until, entitlement.valid_until.timestamp())
        snapshot = UserSnapshot(active=active, entitlement=entitlement if active else None, fresh_until=fresh_until)
        self._users = self._bounded(self._users, now)
        self._users[user_id] = snapshot
        return snapshot

    def forget_user(self, user_id: str) -> None:
        self._users.pop(user_id, None)

    def forget_content(self, content_id: str) -> None:
        self._contents.pop(content_id, None)

    def content(self, content_id: str, *, stale: bool = False) -> ContentSnapshot | None:
        snapshot = self._contents.get(content_id)
        return snapshot if snapshot is not None and (stale or snapshot.fresh_until > time.time()) else None

    async def read_content_once(
        self, content_id: str, read: Callable[[], Awaitable[ContentSnapshot]]
    ) -> ContentSnapshot:
        """Read a title's state again; sockets asking meanwhile share the one read."""
        reading = self._content_reads.get(content_id)
        if reading is None:
            reading = asyncio.ensure_future(read())
            self._content_reads[content_id] = reading
            reading.add_done_callback(lambda _: self._content_reads.pop(content_id, None))
        return await asyncio.shield(reading)

    def refresh_user_soon(self, user_id: str, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run ``refresh`` in the background unless one for this user is already running."""
        if user_id in self._refreshing:
            return
        self._refreshing.add(user_id)

        async def run() -> None:
            try:
                await refresh()
                self._outage.answered()
            except Exception as exc:
                # What was known stays in use meanwhile: an outage never ends a stream.
                if not is_outage(exc):
                    logger.exception("could not refresh the entitlement of user %s", user_id)
                self._outage.failed(exc)
            finally:
                self._refreshing.discard(user_id)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def remember_content(self, content_id: str, *, published: bool, access_level: AccessLevel) -> ContentSnapshot:
        now = time.time()
        snapshot = ContentSnapshot(published, access_level, now + self._content_seconds)
        self._contents = self._bounded(self._contents, now)
        self._contents[content_id] = snapshot
        return snapshot

    def _bounded(self, entries: dict[str, Any], now: float) -> dict[str, Any]:
        if len(entries) < self.MAX_ENTRIES:
            return entries
        return {key: value for key, value in entries.items() if value.fresh_until > now}


class PlayerNotices:
    """Tells a stream's device, on whichever instance its socket is, that the stream ended."""

    def __init__(self, broadcast: Broadcast) -> None:
        self._broadcast = broadcast

    async def publish(self, session_id: str, reason: EndReason) -> None:
        try:
            await self._broadcast.publish(
                PLAYER_NOTICES_CHANNEL, msgspec.json.encode(termination_notice(session_id, reason))
            )
        except (RedisError, RedisClusterException, OSError) as exc:
            # The device still learns it at its next heartbeat (the store says the stream ended),
            # or when its instance catches up after resubscribing.
            logger.warning("notice for stream %s not sent: %s", session_id, type(exc).__name__)


class PlaybackService:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        settings: PlaybackSettings,
        streams: StreamStore,
        snapshots: EntitlementSnapshots,
        history: WatchHistoryService,
        entitlements: EntitlementService,
        catalog: CatalogService,
        playback_tokens: PlaybackTokenCodec,
        stream_urls: StreamUrlSigner,
        positions: PositionWriter,
        notices: PlayerNotices,
        pending: PendingWrites,
        public_url: str = "",
    ) -> None:
        #: The address clients reach this service at (``PUBLIC_URL``); empty: the request's own.
        self.public_url = public_url.rstrip("/")
        self.uow = uow
        self.session = uow.session
        self._log = PlaybackLog(uow)
        #: Resume points of the entries this unit of work saved, by (user, title).
        self._saved: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
        self._settings = settings
        self._streams = streams
        self._snapshots = snapshots
        self._history = history
        self._entitlements = entitlements
        self._catalog = catalog
        self._playback_tokens = playback_tokens
        self._stream_urls = stream_urls
        self._positions = positions
        self._notices = notices
        self._pending = pending

    # starting and stopping

    async def start(
        self,
        user_id: uuid.UUID,
        content_id: uuid.UUID,
        *,
        device_id: str,
        device_name: str,
        replace_session_id: str | None,
    ) -> StartedStream:
        content = await self._playable_content(content_id)
        entitlement = await self._entitlements.remembered(user_id)
        if not entitlement.covers(content.access_level):
            raise PlanRequired()
        if not content.playable:
            raise MediaNotReady()
        # What the stream's heartbeats check against, known now (on the instance its socket
        # reaches first; any other reads it once).
        self._snapshots.remember_user(str(user_id), active=True, entitlement=entitlement)
        self._snapshots.remember_content(
            str(content.id), published=content.published, access_level=content.access_level
        )
        new = NewStream(
            session_id=str(uuid.uuid4()),
            user_id=str(user_id),
            device_id=device_id,
            device_name=device_name,
            content_id=str(content.id),
            position=0.0,
        )
        admission = await self._streams.admit(
            new,
            limit=entitlement.max_devices,
            reject_when_full=entitlement.stream_limit_policy == StreamLimitPolicy.REJECT_NEW,
            replace_session_id=replace_session_id,
            resolution_cap=entitlement.max_resolution.value,
        )
        # Settled first, so a device taking over a title resumes where the evicted one was (known
        # from that save when it was this title: no second read).
        await self.settle(admission.ended)
        resume = self._saved.get((user_id, content.id))
        if resume is None:
            resume = await self._history.resume_position(user_id, content.id)
        if not admission.admitted:
            raise StreamLimitReached(
                extra={
                    "max_devices": entitlement.max_devices,
                    "live_sessions": [live_session_json(s) for s in admission.live],
                }
            )
        ADMISSIONS.inc()
        # A concurrent start may have evicted it already; its device is told so when it connects.
        session = _just_admitted(new)
        self._log.record(replace(session, position=float(resume)), PlaybackEventKind.STARTED)
        return StartedStream(
            session=session,
            playback_token=self._playback_tokens.issue(
                user_id=new.user_id, session_id=new.session_id, device_id=device_id, content_id=new.content_id
            ),
            stream_query=self._stream_urls.query(
                user_id=new.user_id,
                session_id=new.session_id,
                content_id=new.content_id,
                max_resolution=entitlement.max_resolution.value,
                media_asset_id=str(content.media_asset_id),
            ),
            entitlement=entitlement,
            resume_position_seconds=resume,
            ended=admission.ended,
            heartbeat_interval_seconds=self._settings.heartbeat_interval_seconds,
        )

    async def stop(self, user_id: uuid.UUID, session_id: str, position: float | None = None) -> None:
        if position is not None:
            await self._streams.heartbeat(str(user_id), session_id, position, "stopped")
        ended = await self._streams.end(str(user_id), session_id, EndReason.STOPPED)
        if ended is None:
            raise PlaybackSessionNotFound()
        await self.settle([ended])

    async def live(self, user_id: uuid.UUID) -> list[StreamSession]:
        return await self._streams.live(str(user_id))

    async def all_live(self, user_id: uuid.UUID | None = None) -> list[StreamSession]:
        users = [str(user_id)] if user_id is not None else await self._streams.live_users()
        sessions: list[StreamSession] = []
        for user in users:
            sessions.extend(await self._streams.live(user))
        return sorted(sessions, key=lambda s: s.started_at)

    async def terminate(self, session_id: str) -> None:
        """An administrator ends someone's stream."""
        for session in await self.all_live():
            if session.session_id == session_id:
                ended = await self._streams.end(session.user_id, session_id, EndReason.ADMIN)
                if ended is not None:
                    await self.settle([ended])
                    return
        raise PlaybackSessionNotFound()

    async def end(self, user_id: str, session_id: str, reason: EndReason) -> None:
        """End one stream for ``reason`` (if it is still live) and settle it."""
        ended = await self._streams.end(user_id, session_id, reason)
        if ended is not None:
            await self.settle([ended])

    # the same path for every other ending

    async def end_all(self, user_id: uuid.UUID, reason: EndReason) -> list[EndedStream]:
        self._snapshots.forget_user(str(user_id))
        ended = await self._streams.end_all(str(user_id), reason)
        await self.settle(ended)
        return ended

    async def apply_entitlement(self, user_id: uuid.UUID) -> Entitlement:
        """Read the user's entitlement again and apply it to their live streams now."""
        entitlement = await self._entitlements.for_user(user_id)
        await self.enforce(user_id, entitlement)
        return entitlement

    async def enforce(self, user_id: uuid.UUID, entitlement: Entitlement) -> None:
        """Apply a user's new entitlement now: end streams of titles it no longer covers, then the
        oldest beyond its device limit. Streams that go on fetch no rendition above its resolution."""
        self._snapshots.forget_user(str(user_id))
        await self._streams.set_resolution_cap(str(user_id), entitlement.max_resolution.value)
        live = await self._streams.live(str(user_id))
        levels = await self._catalog.published_access_levels(uuid.UUID(s.content_id) for s in live)
        ended: list[EndedStream] = []
        for session in live:
            level = levels.get(uuid.UUID(session.content_id))
            if level is None or not entitlement.covers(level):
                gone = await self._streams.end(str(user_id), session.session_id, EndReason.SUBSCRIPTION_ENDED)
                if gone is not None:
                    ended.append(gone)
        ended.extend(await self._streams.trim(str(user_id), entitlement.max_devices, EndReason.STREAM_LIMIT))
        await self.settle(ended)

    async def settle(self, ended: Sequence[EndedStream]) -> None:
        """Save each ended stream's last position, log it, and tell its device.

        The streams have ended in the store whatever happens to this transaction: should it
        roll back (the database is down), what it would have written waits in the pending
        writes, and the devices are told all the same."""
        if ended:
            writes = [PendingWrite(item.session, item.reason) for item in ended]
            self.uow.on_rollback(lambda: self._pending.keep(writes))
        for item in ended:
            ENDINGS.labels(reason=item.reason.value).inc()
            self.notify(item)
            await self.record_ending(item.session, item.reason)

    async def record_ending(self, session: StreamSession, reason: EndReason) -> None:
        if session.state != STARTING:
            # A stream that never sent a heartbeat reported no position: keep the saved one.
            await self._save_position(session)
        self._log.record(session, PlaybackEventKind(reason.value))

    async def write_pending(self, write: PendingWrite) -> None:
        """What an earlier unit of work could not write (see :mod:`reelhouse.playback.pending`)."""
        if write.ending is not None:
            await self.record_ending(write.session, write.ending)
        else:
            await self._history.store_stream_position(write.session, playing=write.session.state == "playing")

    def notify(self, item: EndedStream) -> None:
        """Tell the stream's device once this unit of work is over: the saved position is then
        readable by the time the player hears about the ending. The stream has ended in the store
        whatever the transaction does, so a rollback still tells it."""
        session_id, reason = item.session.session_id, item.reason
        self.uow.after_end(lambda: self._notices.publish(session_id, reason))

    async def readmit(self, claims: PlaybackClaims, position: float, state: str) -> EndReason | None:
        """Bring back a stream the store no longer knows (it lost its data) for the device holding
        its playback token: only when the durable record shows the stream never ended, the title
        is still playable to the user, and within the plan's limit. None when it is back; else
        why it stays ended."""
        user_id = uuid.UUID(claims.user_id)
        if not await stream_never_ended(self.session, user_id, claims.session_id):
            return EndReason.EXPIRED
        subject = await UserRepository(session=self.session).token_subject(user_id)
        if subject is None or not subject.is_active:
            return EndReason.SIGNED_OUT
        content = await self._catalog.find(uuid.UUID(claims.content_id))
        if content is None or not content.published:
            return EndReason.SUBSCRIPTION_ENDED
        entitlement = await self._entitlements.for_user(user_id)
        if not entitlement.covers(content.access_level):
            return EndReason.SUBSCRIPTION_ENDED
        admission = await self._streams.admit(
            NewStream(
                session_id=claims.session_id,
                user_id=claims.user_id,
                device_id=claims.device_id,
                device_name=claims.device_id,
                content_id=claims.content_id,
                position=position,
            ),
            limit=entitlement.max_devices,
            reject_when_full=entitlement.stream_limit_policy == StreamLimitPolicy.REJECT_NEW,
            resolution_cap=entitlement.max_resolution.value,
        )
        await self.settle(admission.ended)
        if not admission.admitted:
            return EndReason.STREAM_LIMIT
        await self._streams.heartbeat(claims.user_id, claims.session_id, position, state)
        logger.info("stream %s admitted again after the store lost it", claims.session_id)
        return None

    async def title_state(self, content_id: uuid.UUID) -> tuple[bool, AccessLevel] | None:
        """Whether a title is published and its access level (None: no such title)."""
        return await self._catalog.publication_state(content_id)

    # positions

    async def _save_position(self, session: StreamSession) -> None:
        self._positions.discard(session.session_id)
        entry = await self._history.store_stream_position(session, playing=False)
        if entry is not None:
            self._saved[(entry.user_id, entry.content_id)] = entry.resume_position_seconds

    async def _playable_content(self, content_id: uuid.UUID) -> Title:
        title = await self._catalog.title(content_id)
        if title is None or not title.published:
            raise ContentUnavailable()
        return title


def _just_admitted(new: NewStream) -> StreamSession:
    now = int(time.time() * 1000)
    return StreamSession(
        session_id=new.session_id,
        user_id=new.user_id,
        device_id=new.device_id,
        device_name=new.device_name,
        content_id=new.content_id,
        position=new.position,
        state="starting",
        started_at=now,
        last_heartbeat_at=now,
    )


def live_session_json(session: StreamSession) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "device_id": session.device_id,
        "device_name": session.device_name,
        "content_id": session.content_id,
        "started_at": _iso(session.started_at),
        "last_heartbeat_at": _iso(session.last_heartbeat_at),
        "position_seconds": session.position,
    }


def _iso(epoch_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
