"""The ceiling: a bare Litestar app served with the same uvicorn settings as the API.

``GET /ping`` answers a small JSON document, ``GET /bytes/{size}`` that many bytes from memory
(the media scenario's ceiling: a playlist's and a segment's worth of bytes with no checks and no
disk), and ``/echo`` is a websocket that sends back every text message it gets. Every
scenario's figure is also reported as a ratio to these.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from litestar import Litestar, Response, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect

MAX_BYTES = 16 * 1024 * 1024


@get("/ping", sync_to_thread=False)
def ping() -> dict[str, str]:
    return {"status": "ok"}


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@cache
def _payload(size: int) -> bytes:
    return bytes(size)


@get("/bytes/{size:int}", sync_to_thread=False)
def payload(size: int) -> Response[bytes]:
    return Response(_payload(min(max(size, 0), MAX_BYTES)), media_type="video/mp4")


@websocket("/echo")
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    try:
        while True:
            await socket.send_text(await socket.receive_text())
    except WebSocketDisconnect:
        return


def create_app() -> Litestar:
    return Litestar(route_handlers=[ping, health, payload, echo], debug=False)
