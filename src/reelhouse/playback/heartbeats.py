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
import itertools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory
    from reelhouse.playback.history import WatchHistoryService
    from reelhouse.playback.streams import HeartbeatOutcome, HeartbeatReport, StreamSession, StreamStore

logger = logging.getLogger(__name__)


class HeartbeatBatcher:
    """Group commit for heartbeats: at most one batch in flight, the next one gathering meanwhile."""

    #: Heartbeats per round trip at most (a pipeline, not a transaction).
    MAX_BATCH = 500

    def __init__(self, store: StreamStore) -> None:
        self._store = store
        self._waiting: list[tuple[HeartbeatReport, asyncio.Future[HeartbeatOutcome]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def heartbeat(self, report: HeartbeatReport) -> HeartbeatOutcome:
        answer: asyncio.Future[HeartbeatOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((report, answer))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        return await answer

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.MAX_BATCH], self._waiting[self.MAX_BATCH :]
                try:
                    outcomes = await self._store.heartbeat_many([report for report, _ in batch])
                except Exception as exc:  # noqa: BLE001  (each waiting socket gets the failure)
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for (_, answer), outcome in zip(batch, outcomes, strict=True):
                    if not answer.done():
                        answer.set_result(outcome)
        finally:
            self._sender = None


@dataclass(frozen=True, slots=True)
class QueuedPosition:
    session: StreamSession
    observed_at: datetime


class PositionWriter:
    """Flush-due positions, written together ``delay_seconds`` after the first of a batch."""

    #: Positions per transaction: a commit's bookkeeping is synchronous work, kept to milliseconds.
    MAX_BATCH = 25

    def __init__(
        self,
        units: UnitOfWorkFactory,
        history_for: Callable[[UnitOfWork], WatchHistoryService],
        delay_seconds: float = 0.5,
    ) -> None:
        self._units = units
        self._history_for = history_for
        self._delay = delay_seconds
        self._queued: dict[str, QueuedPosition] = {}
        self._writer: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._queued)

    def submit(self, session: StreamSession) -> None:
        self._queued[session.session_id] = QueuedPosition(session, datetime.now(UTC))
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
        while self._queued:
            batch = list(itertools.islice(self._queued.values(), self.MAX_BATCH))
            for item in batch:
                del self._queued[item.session.session_id]
            await self._write(batch)

    async def _write(self, batch: list[QueuedPosition]) -> None:
        try:
            async with self._units.begin() as uow:
                history = self._history_for(uow)
                # A fixed order: two writers never wait on each other's rows in opposite orders.
                for item in sorted(batch, key=lambda queued: (queued.session.user_id, queued.session.content_id)):
                    await history.store_stream_position(
                        item.session, playing=item.session.state == "playing", observed_at=item.observed_at
                    )
        except Exception:
            # Positions are re-sent every flush period; the next one carries the newer position.
            logger.exception("could not save %d stream positions", len(batch))
