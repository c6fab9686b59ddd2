"""The heartbeat hot path's two batchers: store round trips and watch-history writes.

- :class:`HeartbeatBatcher` sends the heartbeats of every socket on this instance to the
  stream store together: while one batch is on its way, the next gathers. Under light load
  a batch is one heartbeat and nothing waits; under heavy load one round trip carries
  hundreds. Each heartbeat still gets its own answer (alive, ended, flush due) before its
  socket is acknowledged.
- :class:`PositionWriter` saves the positions of streams whose flush is due in one
  transaction a moment later, so a heartbeat's acknowledgement never waits for the
  database. Only the latest position per stream is kept; a queued position older than
  what the stream's final save wrote is dropped by the history rules (``observed_at``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from reelhouse.platform.batching import GroupCommit
from reelhouse.platform.outages import OutageLog, is_outage
from reelhouse.playback.pending import PendingWrite

if TYPE_CHECKING:
    from collections.abc import Callable

    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory
    from reelhouse.playback.history import WatchHistoryService
    from reelhouse.playback.pending import PendingWrites
    from reelhouse.playback.streams import HeartbeatOutcome, HeartbeatReport, StreamSession, StreamStore

logger = logging.getLogger(__name__)


class HeartbeatBatcher:
    """Group commit for heartbeats: at most one batch in flight, the next one gathering meanwhile."""

    #: Heartbeats per round trip at most (a pipeline, not a transaction).
    MAX_BATCH = 500

    def __init__(self, store: StreamStore) -> None:
        self._commit: GroupCommit[HeartbeatReport, HeartbeatOutcome] = GroupCommit(store.heartbeat_many, self.MAX_BATCH)

    async def heartbeat(self, report: HeartbeatReport) -> HeartbeatOutcome:
        return await self._commit.submit(report)


class PositionWriter:
    """Flush-due positions, written together ``delay_seconds`` after the first of a batch."""

    #: Positions per transaction: one locking read and one pipelined write each.
    MAX_BATCH = 100

    def __init__(
        self,
        units: UnitOfWorkFactory,
        history_for: Callable[[UnitOfWork], WatchHistoryService],
        pending: PendingWrites,
        delay_seconds: float = 0.5,
    ) -> None:
        self._units = units
        self._history_for = history_for
        self._pending = pending
        self._outage = OutageLog("position writes (database)")
        self._delay = delay_seconds
        self._queued: dict[str, StreamSession] = {}
        self._writer: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._queued)

    def submit(self, session: StreamSession) -> None:
        self._queued[session.session_id] = session
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_soon())

    def discard(self, session_id: str) -> None:
        """The stream's final position is being saved now; a queued one would only be older."""
        self._queued.pop(session_id, None)

    async def drain(self) -> None:
        """Write everything queued (shutdown): the running writer finishes its batches (a cancelled
        transaction would lose the positions it had taken), then whatever is left is written."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await self._write_queued()

    async def _write_soon(self) -> None:
        try:
            while self._queued:
                await asyncio.sleep(self._delay)
                await self._write_queued()
        finally:
            self._writer = None

    async def _write_queued(self) -> None:
        """Write what is queued now (what arrives meanwhile waits for the next round)."""
        waiting = list(self._queued)
        for start in range(0, len(waiting), self.MAX_BATCH):
            batch = [self._queued.pop(sid) for sid in waiting[start : start + self.MAX_BATCH] if sid in self._queued]
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[StreamSession]) -> None:
        try:
            async with self._units.begin() as uow:
                # Locked in a fixed order: two writers never wait on each other's rows in opposite orders.
                await self._history_for(uow).store_stream_positions(batch)
            self._outage.answered()
        except Exception as exc:
            if not is_outage(exc):
                logger.exception("could not save %d stream positions", len(batch))
            self._outage.failed(exc)
            await self._keep_for_later(batch)

    async def _keep_for_later(self, batch: list[StreamSession]) -> None:
        """The database did not take them: they wait in the pending writes (or, with Redis down
        too, here) until it answers again. A position is never dropped."""
        try:
            await self._pending.keep([PendingWrite(session) for session in batch])
        except Exception as exc:  # noqa: BLE001  (kept in memory and tried again)
            self._outage.failed(exc)
            for session in batch:
                queued = self._queued.get(session.session_id)
                if queued is None or queued.last_heartbeat_at < session.last_heartbeat_at:
                    self._queued[session.session_id] = session
