"""Messages every instance must hear (a stream's ending, a cleared cache), over Redis pub/sub or in process.

Redis forgets a subscription when its connection drops (a restart, a failover, a network
blip), and a message published meanwhile is gone. So the Redis implementation keeps
resubscribing with backoff for as long as the app runs, says whether it is subscribed
(``/ready`` and a metric report it), and after every reconnection calls the
``on_reconnect`` handlers: each follower then catches up on what it may have missed
(player sockets re-check their streams in the store, caches are cleared).

The channels are shard channels (``SPUBLISH``/``SSUBSCRIBE``, Redis 7), all under one hash
tag. On one Redis they behave as plain pub/sub. On a Redis Cluster a message goes to the one
shard that owns the tag's slot instead of over the cluster bus to every node (which plain
``PUBLISH`` does), and every instance reads from that shard alone: when that node goes away,
the read fails, and this instance resubscribes (to whichever node owns the slot by then) and
catches up as above. With channels spread over several shards, redis-py would quietly keep
reading the healthy ones while one was lost, and nothing would catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Gauge
from redis.asyncio.cluster import ClusterPubSub
from redis.exceptions import RedisClusterException, RedisError

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio.client import PubSub

    from reelhouse.platform.redis_connection import RedisClient

logger = logging.getLogger(__name__)

SUBSCRIBED = Gauge(
    "reelhouse_broadcast_subscribed",
    "1 while this instance is subscribed to the cross-instance messages, 0 while it resubscribes.",
    multiprocess_mode="livemin",
)
#: Seconds between resubscription attempts: doubling from the first to the last.
RESUBSCRIBE_BACKOFF = (0.1, 5.0)
#: How long ``start`` waits for the first subscription before serving anyway.
FIRST_SUBSCRIPTION_SECONDS = 10.0


class Broadcast(Protocol):
    @property
    def subscribed(self) -> bool: ...

    def on_message(self, channel: str, handler: Callable[[bytes], None]) -> None:
        """Call ``handler`` with every message published on ``channel`` (register before ``start``)."""

    def on_reconnect(self, handler: Callable[[], object]) -> None:
        """Call ``handler`` after the subscription came back from a loss (messages may be missed)."""

    async def publish(self, channel: str, message: bytes) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _Followers:
    def __init__(self) -> None:
        self.handlers: dict[str, list[Callable[[bytes], None]]] = defaultdict(list)
        self.reconnect_handlers: list[Callable[[], object]] = []

    def on_message(self, channel: str, handler: Callable[[bytes], None]) -> None:
        self.handlers[channel].append(handler)

    def on_reconnect(self, handler: Callable[[], object]) -> None:
        self.reconnect_handlers.append(handler)

    def deliver(self, channel: str, message: bytes) -> None:
        for handler in self.handlers.get(channel, ()):
            try:
                handler(message)
            except Exception:
                logger.exception("a handler of %s failed", channel)

    async def reconnected(self) -> None:
        for handler in self.reconnect_handlers:
            try:
                result = handler()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("catching up after a resubscription failed")


class MemoryBroadcast(_Followers):
    """One process: a message reaches this process's handlers, on the next loop turn."""

    subscribed = True

    async def publish(self, channel: str, message: bytes) -> None:
        asyncio.get_running_loop().call_soon(self.deliver, channel, message)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisBroadcast(_Followers):
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        super().__init__()
        self._redis = redis
        # One hash tag for every channel: one shard carries them all (see the module's notes).
        self._prefix = f"{prefix}:{{broadcast}}:"
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Event = asyncio.Event()
        self._subscribed = False

    @property
    def subscribed(self) -> bool:
        return self._subscribed

    async def publish(self, channel: str, message: bytes) -> None:
        await self._redis.spublish(self._prefix + channel, message)

    async def start(self) -> None:
        self._first = asyncio.Event()
        self._task = asyncio.create_task(self._follow(), name="broadcast-follow")
        # Sockets accepted from now on must not miss a message: wait (bounded) for the subscription.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), FIRST_SUBSCRIPTION_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_subscribed(False)

    def _set_subscribed(self, value: bool) -> None:
        self._subscribed = value
        SUBSCRIBED.set(1 if value else 0)

    async def _follow(self) -> None:
        delay, lost = RESUBSCRIBE_BACKOFF[0], False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.ssubscribe(*(self._prefix + channel for channel in self.handlers))
                self._set_subscribed(True)
                self._first.set()
                if lost:
                    logger.warning("cross-instance messages: subscribed again")
                    lost = False
                    await self.reconnected()
                delay = RESUBSCRIBE_BACKOFF[0]
                await self._read(pubsub)
            except (RedisError, RedisClusterException, OSError) as exc:
                if not lost:  # one line per outage, not one per attempt
                    logger.warning("cross-instance messages: subscription lost (%s); resubscribing", type(exc).__name__)
                lost = True
                self._set_subscribed(False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESUBSCRIBE_BACKOFF[1])
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _read(self, pubsub: PubSub) -> None:
        # A cluster's pubsub reads shard channels from the node that owns them.
        read = pubsub.get_sharded_message if isinstance(pubsub, ClusterPubSub) else pubsub.get_message
        while True:
            message = await read(timeout=1.0)
            if message is None or message.get("type") != "smessage":
                continue
            channel = message["channel"]
            name = (channel.decode() if isinstance(channel, bytes) else str(channel)).removeprefix(self._prefix)
            data = message["data"]
            self.deliver(name, data if isinstance(data, bytes) else str(data).encode())
