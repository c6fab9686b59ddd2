"""Stream positions (and endings) the database could not take yet: kept, never dropped.

When a position flush, a stop, an eviction or an expiry cannot be written because the
database is down, what it would have written waits here and a job writes it once the
database answers. With Redis the waiting entries survive this instance (any instance
drains them); one entry per stream, the newest observation kept. Writing them later is
safe: an observation older than what the history holds changes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from reelhouse.playback.streams import EndReason, StreamSession

if TYPE_CHECKING:
    from collections.abc import Sequence

    from reelhouse.platform.redis_connection import RedisClient

logger = logging.getLogger(__name__)


class PendingWrite(msgspec.Struct, frozen=True):
    """A stream's position to save, and the ending to log with it (None: a plain flush)."""

    session: StreamSession
    ending: EndReason | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PendingWrite)


class PendingWrites(Protocol):
    async def keep(self, writes: Sequence[PendingWrite]) -> None:
        """Keep each write unless a newer observation of its stream is kept already."""

    async def take(self, limit: int) -> list[PendingWrite]:
        """Up to ``limit`` kept writes (they stay until :meth:`done`)."""

    async def done(self, writes: Sequence[PendingWrite]) -> None:
        """Forget writes that were written (unless a newer one replaced them meanwhile)."""

    async def count(self) -> int: ...


def _key(write: PendingWrite) -> str:
    # An ending and a flush of one stream are both kept: the ending also logs an event.
    return f"{write.session.session_id}:{write.ending.value if write.ending else 'position'}"


class MemoryPendingWrites:
    def __init__(self) -> None:
        self._writes: dict[str, PendingWrite] = {}

    async def keep(self, writes: Sequence[PendingWrite]) -> None:
        for write in writes:
            kept = self._writes.get(_key(write))
            if kept is None or kept.session.last_heartbeat_at <= write.session.last_heartbeat_at:
                self._writes[_key(write)] = write

    async def take(self, limit: int) -> list[PendingWrite]:
        return list(self._writes.values())[:limit]

    async def done(self, writes: Sequence[PendingWrite]) -> None:
        for write in writes:
            if self._writes.get(_key(write)) == write:
                del self._writes[_key(write)]

    async def count(self) -> int:
        return len(self._writes)


# ARGV: field, value, its observation time. Newer (or equal) observations replace older ones.
_KEEP = """
local kept = redis.call('HGET', KEYS[1], ARGV[1])
if kept then
  local seen = redis.call('HGET', KEYS[2], ARGV[1])
  if seen and tonumber(seen) > tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""
# ARGV: field, the value that was written. Forget it only if nothing replaced it meanwhile.
_DONE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""


class RedisPendingWrites:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        # Both keys in one slot (one hash tag), so the scripts work on Redis Cluster.
        self._keys = [f"{prefix}:{{pending-writes}}:values", f"{prefix}:{{pending-writes}}:observed"]
        self._keep = redis.register_script(_KEEP)
        self._done = redis.register_script(_DONE)

    async def keep(self, writes: Sequence[PendingWrite]) -> None:
        for write in writes:
            await self._keep(
                keys=self._keys, args=[_key(write), _encoder.encode(write), write.session.last_heartbeat_at]
            )

    async def take(self, limit: int) -> list[PendingWrite]:
        found: dict[Any, Any] = (await self._redis.hscan(self._keys[0], 0, count=limit))[1]  # type: ignore[assignment]
        writes: list[PendingWrite] = []
        for raw in list(found.values())[:limit]:
            try:
                writes.append(_decoder.decode(raw))
            except msgspec.DecodeError:
                logger.warning("dropped an unreadable pending write")
        return writes

    async def done(self, writes: Sequence[PendingWrite]) -> None:
        for write in writes:
            await self._done(keys=self._keys, args=[_key(write), _encoder.encode(write)])

    async def count(self) -> int:
        return int(await self._redis.hlen(self._keys[0]))
