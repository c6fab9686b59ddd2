"""What player sockets and the playback jobs ask of playback, each step in a unit of work of its own.

A socket lives for hours: it never holds a database session. Each thing it needs decided
(is this stream still covered? end it; stop it; save its position) is one short step here,
and the rules stay in :class:`~reelhouse.playback.sessions.PlaybackService` and the snapshots.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reelhouse.accounts.repositories import UserRepository
from reelhouse.plans.models import AccessLevel
from reelhouse.platform.outages import OutageLog, is_outage
from reelhouse.playback.sessions import STARTING
from reelhouse.playback.streams import EndReason

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory
    from reelhouse.playback.heartbeats import PositionWriter
    from reelhouse.playback.pending import PendingWrites
    from reelhouse.playback.sessions import ContentSnapshot, EntitlementSnapshots, PlaybackService
    from reelhouse.playback.streams import EndedStream, StreamSession, StreamStore
    from reelhouse.playback.tokens import PlaybackClaims

logger = logging.getLogger(__name__)

#: Pending writes written per unit of work by the catch-up job.
PENDING_BATCH = 100


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a live stream may go on. ``ending`` names why not; ``already_ended``: it ended
    elsewhere meanwhile (its device only needs telling)."""

    ending: EndReason | None = None
    already_ended: bool = False


MAY_GO_ON = Verdict()


class StreamSupervisor:
    def __init__(
        self,
        *,
        units: UnitOfWorkFactory,
        playback_for: Callable[[UnitOfWork], PlaybackService],
        streams: StreamStore,
        snapshots: EntitlementSnapshots,
        positions: PositionWriter,
        pending: PendingWrites,
    ) -> None:
        self._units = units
        self._playback_for = playback_for
        self._streams = streams
        self._snapshots = snapshots
        self._positions = positions
        self._pending = pending
        self._database = OutageLog("playback's database work")

    async def settle(self, ended: Sequence[EndedStream]) -> None:
        if ended:
            async with self._units.begin() as uow:
                await self._playback_for(uow).settle(ended)

    async def end_stream(self, user_id: str, session_id: str, reason: EndReason) -> None:
        async with self._units.begin() as uow:
            await self._playback_for(uow).end(user_id, session_id, reason)

    async def stop(self, user_id: str, session_id: str, position: float | None) -> None:
        """Raises ``PlaybackSessionNotFound`` when the stream had already ended."""
        async with self._units.begin() as uow:
            await self._playback_for(uow).stop(uuid.UUID(user_id), session_id, position)

    async def sweep(self) -> int:
        """The periodic job: end streams whose heartbeats stopped, saving their last positions."""
        ended = await self._streams.sweep()
        await self.settle(ended)
        return len(ended)

    async def save_live_position(self, claims: PlaybackClaims, last_report: StreamSession | None) -> None:
        """Queue the position of a stream whose socket closed while it is still live (written with
        the other queued positions within a moment; a disconnect storm is a few transactions).
        With the store unreachable, the last position the socket heard is kept instead."""
        try:
            session = await self._streams.get(claims.user_id, claims.session_id)
        except Exception as exc:
            if not is_outage(exc):
                logger.exception("could not save the position of stream %s", claims.session_id)
            session = last_report
        if session is not None and session.state != STARTING:
            self._positions.submit(session)

    async def write_pending(self, limit: int = PENDING_BATCH) -> int:
        """The periodic job: write what the database could not take earlier; how many were written."""
        writes = await self._pending.take(limit)
        if not writes:
            return 0
        try:
            async with self._units.begin() as uow:
                playback = self._playback_for(uow)
                for write in writes:
                    await playback.write_pending(write)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._database.failed(exc)
            return 0
        self._database.answered()
        await self._pending.done(writes)
        return len(writes)

    async def readmit(self, claims: PlaybackClaims, position: float, state: str) -> EndReason | None:
        async with self._units.begin() as uow:
            return await self._playback_for(uow).readmit(claims, position, state)

    # is the stream still covered?

    async def verdict(self, user_id: str, session_id: str, content_id: str) -> Verdict:
        """Check a stream against the user's and the title's remembered state.

        A title's state is read again when stale (every half interval, once however many sockets
        ask). A user's stale entitlement is read again in the background while this heartbeat goes
        on by it: what the refresh finds is applied to every stream of the user through the usual
        path, which tells the devices it ends. Only a user with nothing remembered waits.
        """
        snapshots = self._snapshots
        content = snapshots.content(content_id)
        if content is None:
            try:
                content = await snapshots.read_content_once(content_id, lambda: self.read_title(content_id))
            except Exception as exc:
                # An outage never ends a stream: go on with what was known of the title.
                content = snapshots.content(content_id, stale=True)
                if content is None or not is_outage(exc):
                    raise
                self._database.failed(exc)
        user = snapshots.user(user_id)
        if user is None:
            user = snapshots.user(user_id, stale=True)
            if user is None:
                await self.refresh_user(user_id)
                if await self._streams.get(user_id, session_id) is None:
                    reason = await self._streams.ended_reason(user_id, session_id)
                    return Verdict(reason or EndReason.SUBSCRIPTION_ENDED, already_ended=True)
                return await self.verdict(user_id, session_id, content_id)
            snapshots.refresh_user_soon(user_id, lambda: self.refresh_user(user_id))
        if not user.active:
            return Verdict(EndReason.SIGNED_OUT)
        if user.may_watch(content):
            return MAY_GO_ON
        return Verdict(EndReason.SUBSCRIPTION_ENDED)

    async def refresh_user(self, user_id: str) -> None:
        """Read the user's state and entitlement again, remember them, and apply them to every one of
        their streams (ending what they no longer cover)."""
        user = uuid.UUID(user_id)
        async with self._units.begin() as uow:
            playback = self._playback_for(uow)
            subject = await UserRepository(session=uow.session).token_subject(user)
            if subject is None or not subject.is_active:
                await playback.end_all(user, EndReason.SIGNED_OUT)
                self._snapshots.remember_user(user_id, active=False, entitlement=None)
                return
            entitlement = await playback.apply_entitlement(user)
        self._snapshots.remember_user(user_id, active=True, entitlement=entitlement)

    async def read_title(self, content_id: str) -> ContentSnapshot:
        async with self._units.begin() as uow:
            state = await self._playback_for(uow).title_state(uuid.UUID(content_id))
        published, level = state if state is not None else (False, AccessLevel.PREMIUM)
        return self._snapshots.remember_content(content_id, published=published, access_level=level)
