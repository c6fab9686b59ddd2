"""The ceiling: a bare Litestar app served with the same uvicorn settings as the API.

``GET /ping`` answers a small JSON document and ``/echo`` is a websocket that sends back every
text message it gets. Every scenario's figure is also reported as a ratio to these.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect


@get("/ping", sync_to_thread=False)
def ping() -> dict[str, str]:
    return {"status": "ok"}


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@websocket("/echo")
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    try:
        while True:
            await socket.send_text(await socket.receive_text())
    except WebSocketDisconnect:
        return


def create_app() -> Litestar:
    return Litestar(route_handlers=[ping, health, echo], debug=False)
