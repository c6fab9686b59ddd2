"""Periodic background jobs run inside each API instance.

Every job must be safe to run on several instances at once (idempotent, or
claiming its work with row locks), since each instance runs its own copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

from reelhouse.platform.outages import OutageLog, is_outage

logger = logging.getLogger(__name__)


class PeriodicJob:
    def __init__(self, name: str, interval_seconds: float, run: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval_seconds = interval_seconds
        self._run = run
        self._task: asyncio.Task[None] | None = None
        self._outage = OutageLog(f"job {name}")

    def start(self) -> None:
        if self._task is None and self.interval_seconds > 0:
            self._task = asyncio.create_task(self._loop(), name=f"job:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> None:
        try:
            await self._run()
            self._outage.answered()
        except Exception as exc:
            if is_outage(exc):  # a backing service is down: one line per outage, not a traceback per run
                self._outage.failed(exc)
            else:
                logger.exception("job %s failed; it runs again in %ss", self.name, self.interval_seconds)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.run_once()


@contextlib.contextmanager
def stopped_by_signals(stop: asyncio.Event) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``stop`` (a worker process's graceful end), where the
    running loop can take signal handlers (the main thread; not on Windows)."""
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        yield
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
