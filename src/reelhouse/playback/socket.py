"""The player's websocket: heartbeats in, acks and termination notices out.

``/api/v1/playback/ws?token=<playback token>``. Close codes:

- 4401: the playback token is missing, invalid or expired (get a new one by starting again);
- 4001-4007: the stream ended, one code per reason (see ``TERMINATION_DETAILS``), 4006 also when
  the player itself sent ``stop``;
- 1008: too many messages; 1009: a message too large;
- 1012: the server is restarting (the session survives; reconnect with the same token).

Heartbeats touch only the stream store. The database is used when a position flush
is due, when the entitlement re-check is due (at most every half interval per user),
and when the stream ends.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from sqlalchemy import select

from reelhouse.accounts.tokens import InvalidToken
from reelhouse.catalog.models import Content
from reelhouse.plans.models import AccessLevel
from reelhouse.platform.db import session_scope
from reelhouse.platform.metrics import HEARTBEATS, OPEN_WEBSOCKETS
from reelhouse.playback.sessions import (
    STARTING,
    TERMINATION_DETAILS,
    PlaybackService,
    PlaybackSessionNotFound,
    stream_channel,
    terminated_message,
)
from reelhouse.playback.streams import EndReason, StreamSession
from reelhouse.subscriptions.entitlement import entitlement_for

if TYPE_CHECKING:
    from litestar.channels import ChannelsPlugin

    from reelhouse.platform.state import AppServices
    from reelhouse.playback.tokens import PlaybackClaims

logger = logging.getLogger(__name__)

CLOSE_INVALID_TOKEN = 4401
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012


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
    """The sockets this instance holds, so shutdown can save positions and close them with 1012."""

    def __init__(self) -> None:
        self._sockets: dict[int, tuple[WebSocket[Any, Any, Any], PlaybackClaims]] = {}
        self._drained: anyio.Event | None = None

    def add(self, socket: WebSocket[Any, Any, Any], claims: PlaybackClaims) -> None:
        self._sockets[id(socket)] = (socket, claims)

    def discard(self, socket: WebSocket[Any, Any, Any]) -> None:
        self._sockets.pop(id(socket), None)
        if not self._sockets and self._drained is not None:
            self._drained.set()

    def __len__(self) -> int:
        return len(self._sockets)

    async def close_all(self, wait_seconds: float = 5.0) -> None:
        """Close every socket with 1012, then wait (bounded) while their handlers save positions."""
        for socket, _ in list(self._sockets.values()):
            with contextlib.suppress(Exception):
                await socket.close(code=CLOSE_RESTART, reason="server restarting")
        if self._sockets:
            self._drained = anyio.Event()
            with anyio.move_on_after(wait_seconds):
                await self._drained.wait()


async def save_live_position(app: AppServices, claims: PlaybackClaims) -> None:
    try:
        session = await app.backends.streams.get(claims.user_id, claims.session_id)
        if session is not None and session.state != STARTING:
            await _save_position(app, session)
    except Exception:
        logger.exception("could not save the position of stream %s", claims.session_id)


async def _save_position(app: AppServices, session: StreamSession) -> None:
    async with session_scope(app.db_config) as db:
        await PlaybackService(db, app).save_heartbeat_position(session)


class PlayerConnection:
    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        claims: PlaybackClaims,
        app: AppServices,
        channels: ChannelsPlugin,
    ) -> None:
        self.socket = socket
        self.claims = claims
        self.app = app
        self.channels = channels
        self.closed = False
        self.budget = MessageBudget(app.settings.playback.ws_max_messages_per_second)
        self.interval = app.settings.playback.heartbeat_interval_seconds

    async def close(self, code: int, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                await self.socket.close(code=code, reason=reason[:120])

    async def end_with(self, reason: EndReason) -> None:
        if self.closed:
            return
        with contextlib.suppress(Exception):
            await self.socket.send_json(terminated_message(reason))
        await self.close(TERMINATION_DETAILS[reason][0], reason.value)

    async def run(self) -> None:
        streams = self.app.backends.streams
        async with self.channels.start_subscription([stream_channel(self.claims.session_id)]) as subscriber:
            # Subscribed first, then checked: an ending between the two is not missed.
            if await streams.get(self.claims.user_id, self.claims.session_id) is None:
                reason = await streams.ended_reason(self.claims.user_id, self.claims.session_id)
                await self.end_with(reason or EndReason.EXPIRED)
                return
            async with anyio.create_task_group() as tasks:

                async def forward_notices() -> None:
                    async for raw in subscriber.iter_events():
                        notice = msgspec.json.decode(raw)
                        await self.end_with(EndReason(notice["reason"]))
                        tasks.cancel_scope.cancel()
                        return

                tasks.start_soon(forward_notices)
                await self.read_messages()
                tasks.cancel_scope.cancel()

    async def read_messages(self) -> None:
        limit = self.app.settings.playback.ws_max_message_bytes
        while not self.closed:
            try:
                event = await self.socket.receive()
            except WebSocketDisconnect:
                return
            if event["type"] == "websocket.disconnect":
                self.closed = True
                return
            payload: str | bytes = event.get("text") or event.get("bytes") or ""  # type: ignore[assignment]
            if len(payload) > limit:
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
            await self.heartbeat(message)

    async def heartbeat(self, message: Heartbeat) -> None:
        claims = self.claims
        HEARTBEATS.inc()
        outcome = await self.app.backends.streams.heartbeat(
            claims.user_id, claims.session_id, message.position_seconds, message.state
        )
        if not outcome.alive:
            if outcome.ended is not None:
                async with session_scope(self.app.db_config) as db:
                    await PlaybackService(db, self.app).settle([outcome.ended])
            await self.end_with(outcome.reason or EndReason.EXPIRED)
            return
        if not await self.still_entitled():
            return
        if outcome.flush_due and outcome.session is not None:
            await _save_position(self.app, outcome.session)
        await self.socket.send_json({"type": "ack", "next_heartbeat_seconds": self.interval})

    async def still_entitled(self) -> bool:
        """Check this stream against the user's and the title's remembered state; read them again
        (and apply them to every stream of the user) only when the snapshots are stale.
        False when this stream ended."""
        snapshots = self.app.entitlement_snapshots
        user_id = uuid.UUID(self.claims.user_id)
        user = snapshots.user(self.claims.user_id)
        content = snapshots.content(self.claims.content_id)
        if user is not None and content is not None:
            if not user.active:
                return await self.end_this(EndReason.SIGNED_OUT)
            if content.published and content.access_level.rank <= user.access_level.rank:
                return True
            return await self.end_this(EndReason.SUBSCRIPTION_ENDED)
        async with session_scope(self.app.db_config) as db:
            playback = PlaybackService(db, self.app)
            if user is None:
                subject = await self.app.token_subject(user_id)
                if subject is None or not subject.is_active:
                    await playback.end_all(user_id, EndReason.SIGNED_OUT)
                    snapshots.remember_user(self.claims.user_id, active=False, entitlement=None)
                else:
                    entitlement = await entitlement_for(
                        db, user_id, free_max_devices=self.app.settings.playback.free_max_devices
                    )
                    assert entitlement.access_level is not None
                    await playback.enforce(
                        user_id, max_devices=entitlement.max_devices, access_level=entitlement.access_level
                    )
                    snapshots.remember_user(self.claims.user_id, active=True, entitlement=entitlement)
            if content is None:
                row = (
                    await db.execute(
                        select(Content.published, Content.access_level).where(
                            Content.id == uuid.UUID(self.claims.content_id)
                        )
                    )
                ).one_or_none()
                snapshots.remember_content(
                    self.claims.content_id,
                    published=bool(row and row[0]),
                    access_level=row[1] if row else AccessLevel.PREMIUM,
                )
        session = await self.app.backends.streams.get(self.claims.user_id, self.claims.session_id)
        if session is None:
            reason = await self.app.backends.streams.ended_reason(self.claims.user_id, self.claims.session_id)
            await self.end_with(reason or EndReason.SUBSCRIPTION_ENDED)
            return False
        return await self.still_entitled()

    async def end_this(self, reason: EndReason) -> bool:
        """End this stream (position saved, device told) and close; always False."""
        async with session_scope(self.app.db_config) as db:
            ended = await self.app.backends.streams.end(self.claims.user_id, self.claims.session_id, reason)
            if ended is not None:
                await PlaybackService(db, self.app).settle([ended])
        await self.end_with(reason)
        return False

    async def stop(self, position: float | None) -> None:
        try:
            async with session_scope(self.app.db_config) as db:
                await PlaybackService(db, self.app).stop(
                    uuid.UUID(self.claims.user_id), self.claims.session_id, position
                )
        except PlaybackSessionNotFound:
            pass  # it had already ended; the notice about that is on its way
        await self.end_with(EndReason.STOPPED)


@websocket(
    "/api/v1/playback/ws",
    opt={"exclude_from_auth": True, "exclude_from_rate_limit": True},
    name="playback-socket",
)
async def playback_socket(socket: WebSocket[Any, Any, Any]) -> None:
    app: AppServices = socket.app.state.services
    channels = app.channels
    assert channels is not None
    token = socket.query_params.get("token") or ""
    await socket.accept()
    try:
        claims = app.playback_tokens.decode(token)
    except InvalidToken:
        await socket.send_json({"type": "error", "code": "invalid_token", "detail": "Start playback again."})
        await socket.close(code=CLOSE_INVALID_TOKEN, reason="invalid playback token")
        return
    app.open_sockets.add(socket, claims)
    connection = PlayerConnection(socket, claims, app, channels)
    OPEN_WEBSOCKETS.inc()
    try:
        await connection.run()
    finally:
        OPEN_WEBSOCKETS.dec()
        await connection.close(1000)
        # The player went away (or the server is shutting down) with its stream still live:
        # keep its last position, whichever way the socket ended. Shutdown waits for this.
        await save_live_position(app, claims)
        app.open_sockets.discard(socket)
