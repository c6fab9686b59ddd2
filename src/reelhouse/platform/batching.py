"""Group commit for round trips: many concurrent callers, one request to the backend.

A :class:`GroupCommit` keeps at most one batch in flight; whatever callers arrive while it is
on its way gather into the next one. Under light load a batch is a single call and nothing
waits for company; under heavy load one round trip carries hundreds, and the per-call cost of
the client library (packing, connection checkout, parsing, timeouts) is paid once per batch.
Each caller still gets its own answer, or the batch's failure.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class GroupCommit(Generic[Item, Answer]):
    """Sends items to ``send_many`` in batches of at most ``max_batch``, one batch at a time.

    ``send_many`` answers a batch with one answer per item, in order.
    """

    def __init__(self, send_many: Callable[[Sequence[Item]], Awaitable[Sequence[Answer]]], max_batch: int) -> None:
        self._send_many = send_many
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        return await answer

    async def _send_all(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Answer]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
                try:
                    answers = await self._send_many([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001  (each waiting caller gets the failure)
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for (_, answer), result in zip(batch, answers, strict=True):
                    if not answer.done():
                        answer.set_result(result)
        except BaseException:  # cancelled (shutdown): nobody is left waiting for an answer
            for _, answer in batch + self._waiting:
                answer.cancel()
            self._waiting = []
            raise
        finally:
            self._sender = None


__all__ = ["GroupCommit"]
