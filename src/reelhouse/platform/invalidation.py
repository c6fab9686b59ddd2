"""How every instance learns that what it keeps in memory of the database changed.

An instance keeps copies of rows that many requests read and few change: anonymous plan and
catalog answers, titles, users' entitlements. Whoever changes such rows says so with
:meth:`Invalidations.changed_on_commit`: once the transaction commits, this instance's listeners
drop their copies at once and every other instance's do as soon as the notice reaches them
through the broadcast. A notice names a topic (``catalog``, ``plans``, ``entitlement``) and
optionally a key (a user id); no key means everything under the topic.

Notices can be missed while an instance's subscription is down: when it comes back, every
listener drops everything (``key`` None). Copies are also kept for a bounded time by their
owners, so a notice lost for another reason leaves them stale for that long at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from reelhouse.platform.broadcast import Broadcast
    from reelhouse.platform.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: The channel on which instances tell each other what changed.
INVALIDATION_CHANNEL = "invalidations"


class Invalidations:
    """This instance's listeners by topic, and the notices to and from the other instances."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[str | None], None]]] = defaultdict(list)
        self._broadcast: Broadcast | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        #: Names this instance in its notices, so it skips its own (its listeners heard at commit
        #: already; hearing again when the echo arrives would only throw away copies read since).
        self._origin = uuid.uuid4().hex.encode()

    def on(self, topic: str, listener: Callable[[str | None], None]) -> None:
        """Call ``listener`` whenever ``topic`` changes here or on another instance, with the key
        that changed or None: everything under the topic."""
        self._listeners[topic].append(listener)

    def changed(self, topic: str, key: str | None = None) -> None:
        """``topic`` (``key`` of it, when given) changed: tell the listeners here now, the others soon."""
        self._deliver(topic, key)
        broadcast = self._broadcast
        if broadcast is None:  # not following (a test's own cache): nothing to tell
            return
        try:
            task = asyncio.get_running_loop().create_task(self._publish(broadcast, topic, key))
        except RuntimeError:
            return
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    def changed_on_commit(self, uow: UnitOfWork, topic: str, key: str | None = None) -> None:
        """:meth:`changed` once ``uow`` commits (not at all if it never does). Not before: a reader
        could otherwise copy the old rows again between the notice and the commit."""
        uow.after_commit(lambda: self.changed(topic, key))

    def follow(self, broadcast: Broadcast) -> None:
        """Publish this instance's changes and follow the others' (before the broadcast starts)."""
        self._broadcast = broadcast
        broadcast.on_message(INVALIDATION_CHANNEL, self._on_notice)
        broadcast.on_reconnect(self._everything_changed)  # notices sent meanwhile were missed

    async def stop(self) -> None:
        tasks = list(self._publishing)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._broadcast = None

    def _deliver(self, topic: str, key: str | None) -> None:
        for listener in self._listeners.get(topic, ()):
            listener(key)

    def _everything_changed(self) -> None:
        for topic in list(self._listeners):
            self._deliver(topic, None)

    async def _publish(self, broadcast: Broadcast, topic: str, key: str | None) -> None:
        message = b" ".join([self._origin, topic.encode()] + ([key.encode()] if key is not None else []))
        try:
            await broadcast.publish(INVALIDATION_CHANNEL, message)
        except Exception as exc:  # noqa: BLE001  (the other instances' copies then last their time at most)
            logger.warning("could not tell other instances that %s changed: %s", topic, type(exc).__name__)

    def _on_notice(self, message: bytes) -> None:
        """Another instance's change: ``b"<origin> <topic>[ <key>]"``."""
        try:
            origin, topic, *rest = message.decode().split(" ")
        except (UnicodeDecodeError, ValueError):
            logger.warning("unreadable invalidation notice %r: dropping every copy", message[:80])
            self._everything_changed()
            return
        if origin.encode() == self._origin:
            return
        self._deliver(topic, rest[0] if rest else None)


__all__ = ["INVALIDATION_CHANNEL", "Invalidations"]
