"""The player's websocket: heartbeats in, acks and termination notices out.

``/api/v1/playback/ws?token=<playback token>``. Close codes:

- 4401: the playback token is missing, invalid or expired (get a new one by starting again);
- 4001-4007: the stream ended, one code per reason (see ``TERMINATION_DETAILS``), 4006 also when
  the player itself sent ``stop``;
- 4008: a newer socket took over this stream (``socket_replaced``; the stream goes on there);
- 1008: too many messages (the budget is per stream, not per socket); 1009: a message too large
  (``WS_MAX_MESSAGE_BYTES``, counted in bytes);
- 1011: an unexpected server error; 1013: a backing service is unavailable (try again later);
- 1012: the server is restarting (the session survives; reconnect with the same token).

While Redis or the database is briefly unreachable the socket stays open: each heartbeat is
answered ``{"type": "error", "code": "service_unavailable", "retry_after_seconds": n}`` and
the last position is kept in memory (saved when the socket ends, if it ends meanwhile).

Heartbeats touch only the stream store. The database is used when a position flush
is due, when the entitlement re-check is due (at most every half interval per user),
and when the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from reelhouse.platform.jwt import InvalidToken
from reelhouse.platform.outages import OutageLog, is_outage
from reelhouse.playback.metrics import HEARTBEATS, OPEN_WEBSOCKETS
from reelhouse.playback.sessions import (
    PLAYER_NOTICES_CHANNEL,
    TERMINATION_DETAILS,
    PlaybackSessionNotFound,
    terminated_message,
)
from reelhouse.playback.streams import EndReason, HeartbeatReport, StreamSession

if TYPE_CHECKING:
    from reelhouse.config import PlaybackSettings
    from reelhouse.platform.broadcast import Broadcast
    from reelhouse.playback.heartbeats import HeartbeatBatcher, PositionWriter
    from reelhouse.playback.streams import StreamStore
    from reelhouse.playback.supervision import StreamSupervisor
    from reelhouse.playback.tokens import PlaybackClaims, PlaybackTokenCodec

logger = logging.getLogger(__name__)

CLOSE_INVALID_TOKEN = 4401
CLOSE_SOCKET_REPLACED = 4008
SOCKET_REPLACED = "socket_replaced"
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
#: What a player is asked to wait before its next heartbeat while a backing service is down.
RETRY_AFTER_SECONDS = 2


Position = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]


class Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="type", forbid_unknown_fields=True):
    position_seconds: Position
    state: Literal["playing", "paused", "buffering"] = "playing"


class Stop(msgspec.Struct, tag="stop", tag_field="type", forbid_unknown_fields=True):
    position_seconds: Position | None = None


ClientMessage = Heartbeat | Stop
_decoder = msgspec.json.Decoder(ClientMessage)


class MessageBudget:
    """A token bucket: ``rate`` messages a second with bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = rate * 2
        self._tokens = self._capacity
        self._updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class OpenSockets:
    """The player sockets this instance holds, by stream: termination notices from any instance
    reach them through one subscription, and shutdown saves their positions and closes them with 1012."""

    def __init__(self) -> None:
        self._by_session: dict[str, list[PlayerConnection]] = {}
        self._budgets: dict[str, MessageBudget] = {}
        self._count = 0
        self._drained: anyio.Event | None = None

    def add(self, connection: PlayerConnection) -> None:
        """Hold ``connection``; older sockets of its stream here are replaced by it."""
        older = self._by_session.setdefault(connection.claims.session_id, [])
        for previous in list(older):
            previous.told_replaced()
        older.append(connection)
        self._count += 1

    def budget(self, session_id: str, rate: float) -> MessageBudget:
        """The stream's message budget, shared by its sockets here (a reconnect does not refill it)."""
        budget = self._budgets.get(session_id)
        if budget is None:
            budget = self._budgets[session_id] = MessageBudget(rate)
        return budget

    def discard(self, connection: PlayerConnection) -> None:
        session_id = connection.claims.session_id
        connections = self._by_session.get(session_id)
        if connections is None or connection not in connections:
            return
        connections.remove(connection)
        if not connections:
            del self._by_session[session_id]
            self._budgets.pop(session_id, None)
        self._count -= 1
        if not self._count and self._drained is not None:
            self._drained.set()

    def __len__(self) -> int:
        return self._count

    def deliver(self, raw: bytes | str) -> None:
        """A notice from the channel for a stream's sockets here: its ending (``reason``), or a newer
        socket for it elsewhere (``socket``: every other socket of the stream is replaced)."""
        try:
            notice = msgspec.json.decode(raw)
            connections = self._by_session.get(notice["session_id"], [])
            if "socket" in notice:
                for connection in list(connections):
                    if connection.socket_id != notice["socket"]:
                        connection.told_replaced()
                return
            reason = EndReason(notice["reason"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            logger.warning("ignored a malformed player notice")
            return
        for connection in list(connections):
            connection.told_to_end(reason)

    def follow(self, broadcast: Broadcast, streams: StreamStore) -> None:
        """Hand every notice to its socket; after a lost subscription, catch up from the store."""
        broadcast.on_message(PLAYER_NOTICES_CHANNEL, self.deliver)
        broadcast.on_reconnect(lambda: self.reconcile(streams))

    async def reconcile(self, streams: StreamStore) -> None:
        """Tell each socket whose stream ended while notices could not arrive (with the ending's
        reason, from the store). A stream the store does not know at all is left to its next
        heartbeat, which decides whether it comes back."""
        for session_id, connections in list(self._by_session.items()):
            for connection in list(connections):
                claims = connection.claims
                if await streams.get(claims.user_id, session_id) is not None:
                    continue
                reason = await streams.ended_reason(claims.user_id, session_id)
                if reason is not None:
                    connection.told_to_end(reason)

    async def close_all(self, wait_seconds: float = 5.0) -> None:
        """Close every socket with 1012, then wait (bounded) while their handlers save positions."""
        for connections in list(self._by_session.values()):
            for connection in list(connections):
                await connection.close(CLOSE_RESTART, "server restarting")
        if self._count:
            self._drained = anyio.Event()
            with anyio.move_on_after(wait_seconds):
                await self._drained.wait()


class PlayerSockets:
    """Everything a player socket needs, built once by the composition root."""

    def __init__(
        self,
        *,
        settings: PlaybackSettings,
        tokens: PlaybackTokenCodec,
        streams: StreamStore,
        heartbeats: HeartbeatBatcher,
        positions: PositionWriter,
        supervisor: StreamSupervisor,
        open_sockets: OpenSockets,
        broadcast: Broadcast,
    ) -> None:
        self.broadcast = broadcast
        self.settings = settings
        self.tokens = tokens
        self.streams = streams
        self.heartbeats = heartbeats
        self.positions = positions
        self.supervisor = supervisor
        self.open = open_sockets
        self.ack = msgspec.json.encode(
            {"type": "ack", "next_heartbeat_seconds": settings.heartbeat_interval_seconds}
        ).decode()
        self.try_again = msgspec.json.encode(
            {
                "type": "error",
                "code": "service_unavailable",
                "retry_after_seconds": RETRY_AFTER_SECONDS,
                "detail": "Playback is briefly unavailable; keep playing and send the next heartbeat.",
            }
        ).decode()
        self.outage = OutageLog("player heartbeats (Redis or the database)")

    async def announce(self, connection: PlayerConnection) -> None:
        """Tell every instance this socket now holds the stream: older sockets of it close (4008)."""
        notice = {"session_id": connection.claims.session_id, "socket": connection.socket_id}
        try:
            await self.broadcast.publish(PLAYER_NOTICES_CHANNEL, msgspec.json.encode(notice))
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.outage.failed(exc)

    async def serve(self, socket: WebSocket[Any, Any, Any]) -> None:
        token = socket.query_params.get("token") or ""
        await socket.accept()
        try:
            claims = self.tokens.decode(token)
        except InvalidToken:
            await socket.send_json({"type": "error", "code": "invalid_token", "detail": "Start playback again."})
            await socket.close(code=CLOSE_INVALID_TOKEN, reason="invalid playback token")
            return
        connection = PlayerConnection(socket, claims, self)
        self.open.add(connection)
        await self.announce(connection)
        OPEN_WEBSOCKETS.inc()
        code = 1000
        try:
            await connection.run()
        except Exception as exc:
            if is_outage(exc):
                self.outage.failed(exc)
                code = CLOSE_TRY_AGAIN_LATER
            else:
                logger.exception("player socket of stream %s failed", claims.session_id)
                code = CLOSE_SERVER_ERROR
        finally:
            OPEN_WEBSOCKETS.dec()
            await connection.close(code)
            # The player went away (or the server is shutting down) with its stream still live:
            # keep its last position, whichever way the socket ended. Shutdown waits for this.
            await self.supervisor.save_live_position(claims, connection.last_report)
            self.open.discard(connection)


class PlayerConnection:
    def __init__(self, socket: WebSocket[Any, Any, Any], claims: PlaybackClaims, sockets: PlayerSockets) -> None:
        self.socket = socket
        self.socket_id = uuid.uuid4().hex
        self.claims = claims
        self.sockets = sockets
        self.closed = False
        self.budget = sockets.open.budget(claims.session_id, sockets.settings.ws_max_messages_per_second)
        self._reading: anyio.CancelScope | None = None
        #: True only while the reader waits for the next message (nothing of its own under way).
        self._idle = False
        self._told: EndReason | None = None
        self._ending: asyncio.Task[None] | None = None
        #: The last position this socket heard, kept for when the store cannot be reached.
        self.last_report: StreamSession | None = None

    async def close(self, code: int, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                await self.socket.close(code=code, reason=reason[:120])

    async def end_with(self, reason: EndReason) -> None:
        if self.closed or self._told is not None:
            return  # told already (this stream's own ending and its notice may cross)
        self._told = reason
        with contextlib.suppress(Exception):
            await self.socket.send_json(terminated_message(reason))
        await self.close(TERMINATION_DETAILS[reason][0], reason.value)

    def told_to_end(self, reason: EndReason) -> None:
        """The stream ended elsewhere: tell the device, close, and stop reading."""
        if self._ending is None and not self.closed:
            self._ending = asyncio.create_task(self._end_and_stop(reason))

    def told_replaced(self) -> None:
        """A newer socket of this stream took over (here or on another instance): close this one;
        the stream itself goes on."""
        if self._ending is None and not self.closed and self._told is None:
            self._ending = asyncio.create_task(self._replaced_and_stop())

    async def _replaced_and_stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.socket.send_json(
                {
                    "type": "terminated",
                    "reason": SOCKET_REPLACED,
                    "detail": "This stream continues on a newer connection.",
                }
            )
        await self.close(CLOSE_SOCKET_REPLACED, SOCKET_REPLACED)
        if self._idle and self._reading is not None:
            self._reading.cancel()

    async def _end_and_stop(self, reason: EndReason) -> None:
        await self.end_with(reason)
        # Interrupt the reader only while it waits for a message: cancelling it mid-work (say, a
        # transaction being closed) would break that work. Busy, it sees the socket closed next.
        if self._idle and self._reading is not None:
            self._reading.cancel()

    async def run(self) -> None:
        streams = self.sockets.streams
        # Registered (by the caller) first, then checked: an ending between the two is not missed.
        if await streams.get(self.claims.user_id, self.claims.session_id) is None:
            reason = await streams.ended_reason(self.claims.user_id, self.claims.session_id)
            if reason is not None:
                await self.end_with(reason)
                return
            # Unknown to the store (it lost its data): the first heartbeat decides (readmission).
        with anyio.CancelScope() as self._reading:
            await self.read_messages()
        if self._ending is not None:
            await self._ending

    async def read_messages(self) -> None:
        limit = self.sockets.settings.ws_max_message_bytes
        while not self.closed and self._told is None:
            self._idle = True
            try:
                event = await self.socket.receive()
            except WebSocketDisconnect:
                return
            finally:
                self._idle = False
            if event["type"] == "websocket.disconnect":
                self.closed = True
                return
            payload: str | bytes = event.get("text") or event.get("bytes") or ""  # type: ignore[assignment]
            # Bytes, not characters: 4,096 euro signs are 12 KB.
            if (len(payload) if isinstance(payload, bytes) else len(payload.encode())) > limit:
                await self.close(CLOSE_TOO_BIG, "message too large")
                return
            if not self.budget.take():
                await self.close(CLOSE_POLICY, "too many messages")
                return
            try:
                message = _decoder.decode(payload)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                await self.socket.send_json({"type": "error", "code": "invalid_message", "detail": str(exc)})
                continue
            if isinstance(message, Stop):
                await self.stop(message.position_seconds)
                return
            self._remember(message)
            try:
                await self.heartbeat(message)
                self.sockets.outage.answered()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                # Keep the player: it retries, and the stream resumes when the service answers.
                self.sockets.outage.failed(exc)
                await self.socket.send_text(self.sockets.try_again)

    def _remember(self, message: Heartbeat) -> None:
        now = int(time.time() * 1000)
        claims = self.claims
        self.last_report = StreamSession(
            session_id=claims.session_id,
            user_id=claims.user_id,
            device_id=claims.device_id,
            device_name=claims.device_id,
            content_id=claims.content_id,
            position=message.position_seconds,
            state=message.state,
            started_at=self.last_report.started_at if self.last_report else now,
            last_heartbeat_at=now,
        )

    async def heartbeat(self, message: Heartbeat) -> None:
        claims, sockets = self.claims, self.sockets
        HEARTBEATS.inc()
        outcome = await sockets.heartbeats.heartbeat(
            HeartbeatReport(claims.user_id, claims.session_id, message.position_seconds, message.state)
        )
        if not outcome.alive and outcome.reason is None and outcome.ended is None:
            # The store does not know the stream at all: it lost its data (a restart without
            # persistence). The durable record decides whether it comes back.
            ending = await sockets.supervisor.readmit(claims, message.position_seconds, message.state)
            if ending is not None:
                await self.end_with(ending)
                return
            await self.socket.send_text(sockets.ack)
            return
        if not outcome.alive:
            if outcome.ended is not None:
                await sockets.supervisor.settle([outcome.ended])
            await self.end_with(outcome.reason or EndReason.EXPIRED)
            return
        verdict = await sockets.supervisor.verdict(claims.user_id, claims.session_id, claims.content_id)
        if verdict.ending is not None:
            if not verdict.already_ended:
                await sockets.supervisor.end_stream(claims.user_id, claims.session_id, verdict.ending)
            await self.end_with(verdict.ending)
            return
        if outcome.flush_due and outcome.session is not None:
            sockets.positions.submit(outcome.session)
        await self.socket.send_text(sockets.ack)

    async def stop(self, position: float | None) -> None:
        try:
            await self.sockets.supervisor.stop(self.claims.user_id, self.claims.session_id, position)
        except PlaybackSessionNotFound:
            pass  # it had already ended; the notice about that is on its way
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The store ended the stream before the database failed (its position waits in the
            # pending writes), or the store itself is down: either way the player is done.
            self.sockets.outage.failed(exc)
        await self.end_with(EndReason.STOPPED)


@websocket(
    "/api/v1/playback/ws",
    opt={"exclude_from_auth": True, "exclude_from_rate_limit": True},
    name="playback-socket",
)
async def playback_socket(socket: WebSocket[Any, Any, Any], player_sockets: PlayerSockets) -> None:
    await player_sockets.serve(socket)
