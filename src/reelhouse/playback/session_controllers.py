"""Playback sessions over HTTP: start a stream, list and stop yours; admins list and terminate any."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta, Struct

from reelhouse.accounts.auth import CurrentUser, provide_current_user, requires_admin, requires_user
from reelhouse.platform.hosts import public_origin, websocket_origin
from reelhouse.playback.sessions import PlaybackService
from reelhouse.playback.streams import EndReason, StreamSession

DeviceId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
SessionId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[0-9a-fA-F-]{32,36}$")]


class StartPlayback(Struct):
    content_id: UUID
    device_id: DeviceId
    device_name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    replace_session_id: SessionId | None = None


class EndedSession(Struct):
    session_id: str
    device_id: str
    device_name: str
    content_id: str
    reason: EndReason


class PlaybackStarted(Struct):
    session_id: str
    playback_token: str
    stream_url: str
    ws_url: str
    heartbeat_interval_seconds: int
    max_resolution: str
    resume_position_seconds: int
    evicted: list[EndedSession]


class LiveSession(Struct):
    session_id: str
    user_id: str
    device_id: str
    device_name: str
    content_id: str
    state: str
    position_seconds: float
    started_at: datetime
    last_heartbeat_at: datetime


class LiveSessionList(Struct):
    sessions: list[LiveSession]
    total: int


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def live_session(session: StreamSession) -> LiveSession:
    return LiveSession(
        session_id=session.session_id,
        user_id=session.user_id,
        device_id=session.device_id,
        device_name=session.device_name,
        content_id=session.content_id,
        state=session.state,
        position_seconds=session.position,
        started_at=_moment(session.started_at),
        last_heartbeat_at=_moment(session.last_heartbeat_at),
    )


def public_base(request: Request[Any, Any, Any], playback: PlaybackService) -> str:
    """PUBLIC_URL, the request's vouched-for origin, or "" for relative URLs (platform/hosts.py)."""
    return public_origin(request, playback.public_url)


class PlaybackSessionController(Controller):
    path = "/api/v1/playback/sessions"
    tags = ["Playback"]
    guards = [requires_user]

    @post(
        "/",
        operation_id="StartPlayback",
        status_code=HTTP_201_CREATED,
        summary="Start a stream: checks your plan, admits the device (ending your oldest stream if the "
        "plan's device limit is reached) and returns the playback token and stream URL",
    )
    async def start(
        self, request: Request[CurrentUser, Any, Any], data: StartPlayback, playback: PlaybackService
    ) -> PlaybackStarted:
        current_user = provide_current_user(request)
        started = await playback.start(
            current_user.id,
            data.content_id,
            device_id=data.device_id,
            device_name=data.device_name or request.headers.get("user-agent", "")[:200] or data.device_id,
            replace_session_id=data.replace_session_id,
        )
        base = public_base(request, playback)
        ws_base = websocket_origin(base)
        return PlaybackStarted(
            session_id=started.session.session_id,
            playback_token=started.playback_token,
            stream_url=f"{base}/media/{started.session.content_id}/manifest.m3u8?{started.stream_query}",
            ws_url=f"{ws_base}/api/v1/playback/ws?token={started.playback_token}",
            heartbeat_interval_seconds=started.heartbeat_interval_seconds,
            max_resolution=started.entitlement.max_resolution.value,
            resume_position_seconds=started.resume_position_seconds,
            evicted=[
                EndedSession(
                    session_id=item.session.session_id,
                    device_id=item.session.device_id,
                    device_name=item.session.device_name,
                    content_id=item.session.content_id,
                    reason=item.reason,
                )
                for item in started.ended
                if item.reason != EndReason.EXPIRED
            ],
        )

    @get("/", operation_id="ListPlaybackSessions", summary="Your live streams")
    async def list_sessions(self, current_user: CurrentUser, playback: PlaybackService) -> LiveSessionList:
        sessions = [live_session(s) for s in await playback.live(current_user.id)]
        return LiveSessionList(sessions=sessions, total=len(sessions))

    @delete(
        "/{session_id:str}",
        operation_id="StopPlayback",
        status_code=HTTP_204_NO_CONTENT,
        summary="Stop one of your streams; its last position is saved",
    )
    async def stop(
        self,
        session_id: Annotated[str, Parameter(max_length=64)],
        current_user: CurrentUser,
        playback: PlaybackService,
    ) -> None:
        await playback.stop(current_user.id, session_id)


class AdminPlaybackController(Controller):
    path = "/api/v1/admin/playback/sessions"
    tags = ["Admin: playback"]
    guards = [requires_admin]

    @get("/", operation_id="AdminListPlaybackSessions", summary="Every live stream, optionally one user's")
    async def list_sessions(self, playback: PlaybackService, user_id: UUID | None = None) -> LiveSessionList:
        sessions = [live_session(s) for s in await playback.all_live(user_id)]
        return LiveSessionList(sessions=sessions, total=len(sessions))

    @delete(
        "/{session_id:str}",
        operation_id="AdminTerminatePlayback",
        status_code=HTTP_204_NO_CONTENT,
        summary="End a stream; its device is told an administrator ended it",
    )
    async def terminate(self, session_id: Annotated[str, Parameter(max_length=64)], playback: PlaybackService) -> None:
        await playback.terminate(session_id)
