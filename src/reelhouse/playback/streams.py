"""Live stream sessions: who is watching, on which device, since when, and where they are.

One interface, two stores that pass one contract suite:

- :class:`RedisStreamStore`, the reference: every operation is one Lua script over
  the user's keys, all hash-tagged ``{user_id}`` so they share a Redis Cluster slot;
- :class:`MemoryStreamStore`, its in-process twin for the embedded default.

Per user: a sorted set of sessions by start time (who is oldest), a sorted set by
last heartbeat (who went silent), a hash device -> session (a device has one
stream), and a hash per session. An ended session leaves a short-lived marker
with its reason, so a late heartbeat is told why instead of reviving it.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from reelhouse.platform.redis_connection import RedisClient


class EndReason(enum.StrEnum):
    STREAM_LIMIT = "stream_limit"
    ADMIN = "admin"
    SUBSCRIPTION_ENDED = "subscription_ended"
    SIGNED_OUT = "signed_out"
    EXPIRED = "expired"
    STOPPED = "stopped"
    REPLACED = "replaced"


@dataclass(frozen=True, slots=True)
class StreamSession:
    session_id: str
    user_id: str
    device_id: str
    device_name: str
    content_id: str
    position: float
    state: str
    #: Milliseconds since the epoch.
    started_at: int
    last_heartbeat_at: int


@dataclass(frozen=True, slots=True)
class EndedStream:
    session: StreamSession
    reason: EndReason


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    #: Sessions this admission ended: expired ones, the device's previous stream, evicted ones.
    ended: list[EndedStream]
    #: When refused (``reject_new``): the live sessions the caller may choose to replace.
    live: list[StreamSession] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewStream:
    session_id: str
    user_id: str
    device_id: str
    device_name: str
    content_id: str
    position: float


@dataclass(frozen=True, slots=True)
class HeartbeatOutcome:
    """A heartbeat's answer; ``session`` (the stream as just updated) only when its position is due."""

    alive: bool
    session: StreamSession | None = None
    #: Why the session is gone (when not alive); None when the store does not know the session at
    #: all (its ending is no longer remembered, or the store lost its data).
    reason: EndReason | None = None
    #: Set when this heartbeat found the session past its grace period and ended it.
    ended: EndedStream | None = None
    #: True at most once per flush interval per session: time to save the position.
    flush_due: bool = False


@dataclass(frozen=True, slots=True)
class HeartbeatReport:
    user_id: str
    session_id: str
    position: float
    state: str


@dataclass(frozen=True, slots=True)
class StreamAccess:
    """What a media request is judged by, read in one round trip: the session if it is live, why
    it ended if it has, and the user's current resolution cap."""

    session: StreamSession | None
    ended_reason: EndReason | None
    resolution_cap: str | None


class StreamStore(Protocol):
    async def admit(
        self,
        new: NewStream,
        *,
        limit: int,
        reject_when_full: bool,
        replace_session_id: str | None = None,
        resolution_cap: str | None = None,
    ) -> Admission:
        """Start ``new`` within ``limit`` live streams; with ``resolution_cap``, also set the user's
        cap (as :meth:`set_resolution_cap`, admitted or not) in the same round trip."""
        ...

    async def heartbeat(self, user_id: str, session_id: str, position: float, state: str) -> HeartbeatOutcome: ...

    async def heartbeat_many(self, reports: Sequence[HeartbeatReport]) -> list[HeartbeatOutcome]:
        """Several heartbeats in one round trip; one outcome each, in order."""
        ...

    async def end(self, user_id: str, session_id: str, reason: EndReason) -> EndedStream | None: ...

    async def end_all(self, user_id: str, reason: EndReason) -> list[EndedStream]: ...

    async def trim(self, user_id: str, limit: int, reason: EndReason) -> list[EndedStream]: ...

    async def sweep(self) -> list[EndedStream]: ...

    async def live(self, user_id: str) -> list[StreamSession]: ...

    async def live_users(self) -> list[str]: ...

    async def live_count(self) -> int:
        """Live streams across the service, as the sweeper last counted them (a few seconds old at
        most): read without walking the users."""
        ...

    async def get(self, user_id: str, session_id: str) -> StreamSession | None: ...

    async def ended_reason(self, user_id: str, session_id: str) -> EndReason | None: ...

    async def set_resolution_cap(self, user_id: str, resolution: str) -> None:
        """The highest rendition the user's streams may fetch now (their plan's), for every instance."""
        ...

    async def access(self, user_id: str, session_id: str) -> StreamAccess:
        """``get``, ``ended_reason`` and ``resolution_cap`` at once (one round trip)."""
        ...


@dataclass(frozen=True, slots=True)
class StoreTimings:
    grace_ms: int
    flush_interval_ms: int
    #: How long an ended session's reason is remembered.
    ended_ttl_seconds: int = 86_400


#: Users swept per round trip (each chunk is a few milliseconds of work for the event loop).
SWEEP_CHUNK = 100


#: How long one instance's sweep keeps the others from sweeping.
SWEEP_LOCK_MS = 1000
#: How long the sweeper's count of live streams is believed without a newer sweep.
LIVE_COUNT_TTL_SECONDS = 60


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- Redis -----------------------------------------------------------------------------------

_PRELUDE = """
local started_key, beats_key, devices_key = KEYS[1], KEYS[2], KEYS[3]
local session_prefix, ended_prefix = ARGV[1], ARGV[2]
local ended_ttl = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function read_session(sid)
  local fields = redis.call('HGETALL', session_prefix .. sid)
  if #fields == 0 then return nil end
  local s = {session_id = sid}
  for i = 1, #fields, 2 do s[fields[i]] = fields[i + 1] end
  return s
end

local function end_session(sid, reason)
  local s = read_session(sid)
  if not s then return nil end
  redis.call('DEL', session_prefix .. sid)
  redis.call('ZREM', started_key, sid)
  redis.call('ZREM', beats_key, sid)
  if redis.call('HGET', devices_key, s.device_id) == sid then redis.call('HDEL', devices_key, s.device_id) end
  redis.call('SET', ended_prefix .. sid, reason, 'EX', ended_ttl)
  s.reason = reason
  return s
end

local function drop_silent(grace, ended)
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', beats_key, '-inf', '(' .. (now - grace))) do
    local s = end_session(sid, 'expired')
    if s then table.insert(ended, s) end
  end
end

local function live_sessions()
  local sessions = {}
  for _, sid in ipairs(redis.call('ZRANGE', started_key, 0, -1)) do
    local s = read_session(sid)
    if s then table.insert(sessions, s) end
  end
  return sessions
end
"""

_ADMIT = (
    _PRELUDE
    + """
local grace, limit, reject_when_full = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local sid, user_id, device_id, device_name = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local content_id, position, replace_sid = ARGV[11], ARGV[12], ARGV[13]
local ended = {}
drop_silent(grace, ended)
local previous = redis.call('HGET', devices_key, device_id)
if previous then
  local s = end_session(previous, 'replaced')
  if s then table.insert(ended, s) end
end
if replace_sid ~= '' then
  local s = end_session(replace_sid, 'stream_limit')
  if s then table.insert(ended, s) end
end
local live = redis.call('ZCARD', started_key)
if live >= limit then
  if reject_when_full then
    return cjson.encode({admitted = false, ended = ended, live = live_sessions()})
  end
  for _, oldest in ipairs(redis.call('ZRANGE', started_key, 0, live - limit)) do
    local s = end_session(oldest, 'stream_limit')
    if s then table.insert(ended, s) end
  end
end
redis.call('HSET', session_prefix .. sid, 'user_id', user_id, 'device_id', device_id, 'device_name', device_name,
  'content_id', content_id, 'position', position, 'state', 'starting', 'started_at', now,
  'last_heartbeat_at', now, 'flushed_at', now)
redis.call('ZADD', started_key, now, sid)
redis.call('ZADD', beats_key, now, sid)
redis.call('HSET', devices_key, device_id, sid)
return cjson.encode({admitted = true, ended = ended})
"""
)

_HEARTBEAT = (
    _PRELUDE
    + """
local grace, sid, position, state, flush_interval = tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local s = read_session(sid)
if not s then
  -- Ended (its reason is kept a while), or unknown to the store (never admitted, or the store lost it).
  local reason = redis.call('GET', ended_prefix .. sid)
  if reason then return cjson.encode({alive = false, reason = reason}) end
  return cjson.encode({alive = false})
end
if tonumber(s.last_heartbeat_at) < now - grace then
  return cjson.encode({alive = false, reason = 'expired', ended = end_session(sid, 'expired')})
end
redis.call('HSET', session_prefix .. sid, 'position', position, 'state', state, 'last_heartbeat_at', now)
redis.call('ZADD', beats_key, now, sid)
s.position, s.state, s.last_heartbeat_at = position, state, now
if now - tonumber(s.flushed_at) >= flush_interval then
  redis.call('HSET', session_prefix .. sid, 'flushed_at', now)
  return cjson.encode({alive = true, session = s, flush_due = true})
end
return '{"alive":true}'
"""
)

_END = (
    _PRELUDE
    + """
local s = end_session(ARGV[4], ARGV[5])
if not s then return cjson.encode({}) end
return cjson.encode(s)
"""
)

_END_ALL = (
    _PRELUDE
    + """
local ended = {}
for _, sid in ipairs(redis.call('ZRANGE', started_key, 0, -1)) do
  local s = end_session(sid, ARGV[4])
  if s then table.insert(ended, s) end
end
return cjson.encode(ended)
"""
)

_TRIM = (
    _PRELUDE
    + """
local limit, reason = tonumber(ARGV[4]), ARGV[5]
local ended = {}
local live = redis.call('ZCARD', started_key)
if live > limit then
  for _, sid in ipairs(redis.call('ZRANGE', started_key, 0, live - limit - 1)) do
    local s = end_session(sid, reason)
    if s then table.insert(ended, s) end
  end
end
return cjson.encode(ended)
"""
)

_SWEEP_USER = (
    _PRELUDE
    + """
local ended = {}
drop_silent(tonumber(ARGV[4]), ended)
return cjson.encode({ended = ended, remaining = redis.call('ZCARD', started_key)})
"""
)

_LIVE = (
    _PRELUDE
    + """
return cjson.encode(live_sessions())
"""
)

# What a media request is judged by, in one command (cheaper for the client than a pipeline):
# the session's fields, why it ended, and the user's resolution cap; all in the user's slot.
_ACCESS = """
return {redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
"""

# The index of users with live streams lives outside any user's slot, so it is only
# ever touched by single-key commands. A user leaves it only if nobody re-added them
# since the sweeper looked (the score is the time they were last added).
_FORGET_IDLE_USER = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""


def _as_list(value: Any) -> list[Any]:
    # cjson encodes an empty Lua table as {}.
    return value if isinstance(value, list) else []


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _session_from(raw: dict[str, Any]) -> StreamSession:
    return StreamSession(
        session_id=str(raw["session_id"]),
        user_id=str(raw["user_id"]),
        device_id=str(raw["device_id"]),
        device_name=str(raw.get("device_name", "")),
        content_id=str(raw["content_id"]),
        position=float(raw.get("position") or 0),
        state=str(raw.get("state", "")),
        started_at=int(float(raw["started_at"])),
        last_heartbeat_at=int(float(raw["last_heartbeat_at"])),
    )


def _ended_from(raw: dict[str, Any]) -> EndedStream:
    return EndedStream(session=_session_from(raw), reason=EndReason(raw["reason"]))


def _heartbeat_outcome(result: dict[str, Any]) -> HeartbeatOutcome:
    if not result["alive"]:
        ended = result.get("ended")
        reason = result.get("reason")
        return HeartbeatOutcome(
            alive=False,
            reason=EndReason(reason) if reason else None,
            ended=_ended_from(ended) if isinstance(ended, dict) and ended else None,
        )
    if not result.get("flush_due"):
        return HeartbeatOutcome(alive=True)  # the session itself is only sent back when its position is due
    return HeartbeatOutcome(alive=True, session=_session_from(result["session"]), flush_due=True)


class RedisStreamStore:
    def __init__(self, redis: RedisClient, prefix: str, timings: StoreTimings) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timings = timings
        self._index_key = f"{prefix}:streams:live-users"
        self._live_count_key = f"{prefix}:streams:live-count"
        self._sweep_lock_key = f"{prefix}:streams:sweep-lock"
        self._admit = redis.register_script(_ADMIT)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._end = redis.register_script(_END)
        self._end_all = redis.register_script(_END_ALL)
        self._trim = redis.register_script(_TRIM)
        self._sweep_user = redis.register_script(_SWEEP_USER)
        self._live = redis.register_script(_LIVE)
        self._forget_idle_user = redis.register_script(_FORGET_IDLE_USER)
        self._access = redis.register_script(_ACCESS)

    def _keys(self, user_id: str) -> list[str]:
        tag = f"{self._prefix}:{{{user_id}}}:streams"
        return [f"{tag}:started", f"{tag}:beats", f"{tag}:devices"]

    def _common(self, user_id: str) -> list[str | int]:
        tag = f"{self._prefix}:{{{user_id}}}:streams"
        return [f"{tag}:session:", f"{tag}:ended:", self._timings.ended_ttl_seconds]

    async def _run(self, script: Any, user_id: str, *args: str | int | float) -> Any:
        raw = await script(keys=self._keys(user_id), args=[*self._common(user_id), *args])
        return json.loads(raw)

    async def admit(
        self,
        new: NewStream,
        *,
        limit: int,
        reject_when_full: bool,
        replace_session_id: str | None = None,
        resolution_cap: str | None = None,
    ) -> Admission:
        args = [
            *self._common(new.user_id),
            self._timings.grace_ms,
            limit,
            "1" if reject_when_full else "0",
            new.session_id,
            new.user_id,
            new.device_id,
            new.device_name,
            new.content_id,
            repr(float(new.position)),
            replace_session_id or "",
        ]
        # In the same round trip, admitted or not: the sweeper forgets users with nothing live.
        then: list[tuple[Any, ...]] = [("ZADD", self._index_key, _now_ms(), new.user_id)]
        if resolution_cap is not None:
            then.append(self._set_cap(new.user_id, resolution_cap))
        raw, *_ = await self._pipelined(self._admit, [(self._keys(new.user_id), args)], then=then)
        result = json.loads(raw)
        return Admission(
            admitted=bool(result["admitted"]),
            ended=[_ended_from(item) for item in _as_list(result.get("ended"))],
            live=[_session_from(item) for item in _as_list(result.get("live"))],
        )

    async def heartbeat(self, user_id: str, session_id: str, position: float, state: str) -> HeartbeatOutcome:
        return (await self.heartbeat_many([HeartbeatReport(user_id, session_id, position, state)]))[0]

    async def heartbeat_many(self, reports: Sequence[HeartbeatReport]) -> list[HeartbeatOutcome]:
        calls = [
            (
                self._keys(report.user_id),
                [
                    *self._common(report.user_id),
                    self._timings.grace_ms,
                    report.session_id,
                    repr(float(report.position)),
                    report.state,
                    self._timings.flush_interval_ms,
                ],
            )
            for report in reports
        ]
        results = await self._pipelined(self._heartbeat, calls)
        return [_heartbeat_outcome(json.loads(raw)) for raw in results]

    async def _pipelined(
        self, script: Any, calls: Sequence[tuple[list[str], list[Any]]], then: Sequence[tuple[Any, ...]] = ()
    ) -> list[Any]:
        """Run ``script`` once per call, then any plain ``then`` commands, in one round trip.

        ``EVALSHA`` straight away (a pipeline of script objects would first ask the server
        whether the scripts exist, a round trip of its own). Calls that found their server
        without the script (restarted, flushed) get it loaded again and are run once more,
        alone: on a Redis Cluster, where the pipeline is split by node, one node may have lost
        its scripts while the calls on the others already ran, and those must not run twice.
        """
        results = await self._execute(script, calls, then)
        missing = [index for index, result in enumerate(results[: len(calls)]) if isinstance(result, NoScriptError)]
        if missing:
            await self._redis.script_load(script.script)
            again = await self._execute(script, [calls[index] for index in missing], ())
            for index, result in zip(missing, again, strict=True):
                results[index] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _execute(
        self, script: Any, calls: Sequence[tuple[list[str], list[Any]]], then: Sequence[tuple[Any, ...]]
    ) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            for command in then:
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=False))

    async def end(self, user_id: str, session_id: str, reason: EndReason) -> EndedStream | None:
        result = await self._run(self._end, user_id, session_id, reason.value)
        return _ended_from(result) if result else None

    async def end_all(self, user_id: str, reason: EndReason) -> list[EndedStream]:
        return [_ended_from(item) for item in _as_list(await self._run(self._end_all, user_id, reason.value))]

    async def trim(self, user_id: str, limit: int, reason: EndReason) -> list[EndedStream]:
        return [_ended_from(item) for item in _as_list(await self._run(self._trim, user_id, limit, reason.value))]

    async def sweep(self) -> list[EndedStream]:
        # One instance sweeps per second; the others skip (a silent stream ends within a couple of
        # seconds of its grace period, wherever the sweeper runs).
        if not await self._redis.set(self._sweep_lock_key, b"1", nx=True, px=SWEEP_LOCK_MS):
            return []
        ended: list[EndedStream] = []
        live = 0
        members: list[Any] = await self._redis.zrange(self._index_key, 0, -1, withscores=True)
        # Users in pipelined chunks: a few round trips for thousands of users, and the event loop
        # serves sockets between chunks.
        for start in range(0, len(members), SWEEP_CHUNK):
            chunk = [(_text(user), score) for user, score in members[start : start + SWEEP_CHUNK]]
            calls = [(self._keys(user_id), [*self._common(user_id), self._timings.grace_ms]) for user_id, _ in chunk]
            idle: list[tuple[list[str], list[Any]]] = []
            for (user_id, score), raw in zip(chunk, await self._pipelined(self._sweep_user, calls), strict=True):
                result = json.loads(raw)
                ended.extend(_ended_from(item) for item in _as_list(result["ended"]))
                live += int(result["remaining"])
                if int(result["remaining"]) == 0:
                    idle.append(([self._index_key], [user_id, repr(score)]))
            if idle:
                await self._pipelined(self._forget_idle_user, idle)
        # The sweep visits every user with live streams anyway: the count comes with it, and
        # /metrics reads it instead of walking them again (it expires if nobody sweeps).
        await self._redis.set(self._live_count_key, live, ex=LIVE_COUNT_TTL_SECONDS)
        return ended

    async def live_count(self) -> int:
        raw: Any = await self._redis.get(self._live_count_key)
        return int(raw) if raw else 0

    async def live(self, user_id: str) -> list[StreamSession]:
        return [_session_from(item) for item in _as_list(await self._run(self._live, user_id))]

    async def live_users(self) -> list[str]:
        users: list[Any] = await self._redis.zrange(self._index_key, 0, -1)
        return [_text(user) for user in users]

    async def get(self, user_id: str, session_id: str) -> StreamSession | None:
        raw: dict[Any, Any] = await self._redis.hgetall(f"{self._common(user_id)[0]}{session_id}")
        if not raw:
            return None
        decoded = {_text(key): _text(value) for key, value in raw.items()}
        return _session_from({**decoded, "session_id": session_id})

    async def ended_reason(self, user_id: str, session_id: str) -> EndReason | None:
        raw: Any = await self._redis.get(f"{self._common(user_id)[1]}{session_id}")
        return EndReason(_text(raw)) if raw else None

    async def set_resolution_cap(self, user_id: str, resolution: str) -> None:
        await self._redis.set(self._cap_key(user_id), resolution, ex=self._timings.ended_ttl_seconds)

    def _set_cap(self, user_id: str, resolution: str) -> tuple[Any, ...]:
        """:meth:`set_resolution_cap` as a command for a pipeline."""
        return ("SET", self._cap_key(user_id), resolution, "EX", self._timings.ended_ttl_seconds)

    async def access(self, user_id: str, session_id: str) -> StreamAccess:
        session_prefix, ended_prefix, _ = self._common(user_id)
        keys = [f"{session_prefix}{session_id}", f"{ended_prefix}{session_id}", self._cap_key(user_id)]
        raw_fields, raw_reason, raw_cap = await self._access(keys=keys)
        raw_session = dict(zip(raw_fields[::2], raw_fields[1::2], strict=True))
        session = None
        if raw_session:
            decoded = {_text(key): _text(value) for key, value in raw_session.items()}
            session = _session_from({**decoded, "session_id": session_id})
        return StreamAccess(
            session=session,
            ended_reason=EndReason(_text(raw_reason)) if raw_reason else None,
            resolution_cap=_text(raw_cap) if raw_cap else None,
        )

    def _cap_key(self, user_id: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:streams:resolution-cap"


# --- in-process ------------------------------------------------------------------------------


@dataclass
class _UserStreams:
    sessions: dict[str, StreamSession] = field(default_factory=dict)
    flushed_at: dict[str, int] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    ended: dict[str, tuple[EndReason, float]] = field(default_factory=dict)


class MemoryStreamStore:
    """The same rules as the Lua scripts, for one process. No ``await`` happens inside an
    operation, so each one is atomic on the event loop."""

    def __init__(self, timings: StoreTimings, clock: Callable[[], int] = _now_ms) -> None:
        self._timings = timings
        self._clock = clock
        self._users: dict[str, _UserStreams] = {}
        self._caps: dict[str, str] = {}

    def _user(self, user_id: str) -> _UserStreams:
        return self._users.setdefault(user_id, _UserStreams())

    def _end(self, streams: _UserStreams, session_id: str, reason: EndReason, now: int) -> EndedStream | None:
        session = streams.sessions.pop(session_id, None)
        if session is None:
            return None
        streams.flushed_at.pop(session_id, None)
        if streams.devices.get(session.device_id) == session_id:
            del streams.devices[session.device_id]
        streams.ended[session_id] = (reason, now + self._timings.ended_ttl_seconds * 1000)
        return EndedStream(session, reason)

    def _drop_silent(self, streams: _UserStreams, now: int) -> list[EndedStream]:
        silent = [
            sid for sid, session in streams.sessions.items() if session.last_heartbeat_at < now - self._timings.grace_ms
        ]
        return [ended for sid in silent if (ended := self._end(streams, sid, EndReason.EXPIRED, now))]

    @staticmethod
    def _by_start(streams: _UserStreams) -> list[StreamSession]:
        return sorted(streams.sessions.values(), key=lambda s: (s.started_at, s.session_id))

    async def admit(
        self,
        new: NewStream,
        *,
        limit: int,
        reject_when_full: bool,
        replace_session_id: str | None = None,
        resolution_cap: str | None = None,
    ) -> Admission:
        if resolution_cap is not None:
            self._caps[new.user_id] = resolution_cap
        now = self._clock()
        streams = self._user(new.user_id)
        ended = self._drop_silent(streams, now)
        previous = streams.devices.get(new.device_id)
        if previous and (gone := self._end(streams, previous, EndReason.REPLACED, now)):
            ended.append(gone)
        if replace_session_id and (gone := self._end(streams, replace_session_id, EndReason.STREAM_LIMIT, now)):
            ended.append(gone)
        live = self._by_start(streams)
        if len(live) >= limit:
            if reject_when_full:
                return Admission(admitted=False, ended=ended, live=live)
            for oldest in live[: len(live) - limit + 1]:
                if gone := self._end(streams, oldest.session_id, EndReason.STREAM_LIMIT, now):
                    ended.append(gone)
        streams.sessions[new.session_id] = StreamSession(
            session_id=new.session_id,
            user_id=new.user_id,
            device_id=new.device_id,
            device_name=new.device_name,
            content_id=new.content_id,
            position=float(new.position),
            state="starting",
            started_at=now,
            last_heartbeat_at=now,
        )
        streams.flushed_at[new.session_id] = now
        streams.devices[new.device_id] = new.session_id
        return Admission(admitted=True, ended=ended)

    async def heartbeat(self, user_id: str, session_id: str, position: float, state: str) -> HeartbeatOutcome:
        now = self._clock()
        streams = self._user(user_id)
        session = streams.sessions.get(session_id)
        if session is None:
            return HeartbeatOutcome(alive=False, reason=self._ended_reason(streams, session_id, now))
        if session.last_heartbeat_at < now - self._timings.grace_ms:
            ended = self._end(streams, session_id, EndReason.EXPIRED, now)
            return HeartbeatOutcome(alive=False, reason=EndReason.EXPIRED, ended=ended)
        session = replace(session, position=float(position), state=state, last_heartbeat_at=now)
        streams.sessions[session_id] = session
        flush_due = now - streams.flushed_at.get(session_id, now) >= self._timings.flush_interval_ms
        if not flush_due:
            return HeartbeatOutcome(alive=True)
        streams.flushed_at[session_id] = now
        return HeartbeatOutcome(alive=True, session=session, flush_due=True)

    async def heartbeat_many(self, reports: Sequence[HeartbeatReport]) -> list[HeartbeatOutcome]:
        return [await self.heartbeat(r.user_id, r.session_id, r.position, r.state) for r in reports]

    async def end(self, user_id: str, session_id: str, reason: EndReason) -> EndedStream | None:
        return self._end(self._user(user_id), session_id, reason, self._clock())

    async def end_all(self, user_id: str, reason: EndReason) -> list[EndedStream]:
        now = self._clock()
        streams = self._user(user_id)
        return [ended for s in self._by_start(streams) if (ended := self._end(streams, s.session_id, reason, now))]

    async def trim(self, user_id: str, limit: int, reason: EndReason) -> list[EndedStream]:
        now = self._clock()
        streams = self._user(user_id)
        live = self._by_start(streams)
        excess = live[: max(0, len(live) - limit)]
        return [ended for s in excess if (ended := self._end(streams, s.session_id, reason, now))]

    async def sweep(self) -> list[EndedStream]:
        now = self._clock()
        ended: list[EndedStream] = []
        for user_id, streams in list(self._users.items()):
            ended.extend(self._drop_silent(streams, now))
            streams.ended = {sid: entry for sid, entry in streams.ended.items() if entry[1] > now}
            if not streams.sessions and not streams.ended:
                del self._users[user_id]
        return ended

    async def live(self, user_id: str) -> list[StreamSession]:
        streams = self._users.get(user_id)
        return self._by_start(streams) if streams else []

    async def live_users(self) -> list[str]:
        return [user_id for user_id, streams in self._users.items() if streams.sessions]

    async def get(self, user_id: str, session_id: str) -> StreamSession | None:
        streams = self._users.get(user_id)
        return streams.sessions.get(session_id) if streams else None

    async def ended_reason(self, user_id: str, session_id: str) -> EndReason | None:
        streams = self._users.get(user_id)
        if streams is None or session_id not in streams.ended:
            return None
        reason, expires = streams.ended[session_id]
        return reason if expires > self._clock() else None

    async def live_count(self) -> int:
        now = self._clock()
        grace = self._timings.grace_ms
        return sum(
            1
            for streams in self._users.values()
            for session in streams.sessions.values()
            if session.last_heartbeat_at >= now - grace
        )

    async def set_resolution_cap(self, user_id: str, resolution: str) -> None:
        self._caps[user_id] = resolution

    async def access(self, user_id: str, session_id: str) -> StreamAccess:
        return StreamAccess(
            session=await self.get(user_id, session_id),
            ended_reason=await self.ended_reason(user_id, session_id),
            resolution_cap=self._caps.get(user_id),
        )

    def _ended_reason(self, streams: _UserStreams, session_id: str, now: int) -> EndReason | None:
        entry = streams.ended.get(session_id)
        return entry[0] if entry and entry[1] > now else None
