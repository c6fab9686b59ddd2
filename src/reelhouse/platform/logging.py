"""Logging with request ids; access lines carry the path but never the query string.

Query strings can hold credentials (the playback websocket takes its token
there), so nothing here logs them, and the server's own access log is off.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
access_logger = logging.getLogger("reelhouse.access")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_configured = False


class StripQueryStrings(logging.Filter):
    """The server logs websocket handshakes with their URL, whose query holds the playback token:
    keep the path, drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, str) and "?" in arg for arg in record.args):
            record.args = tuple(
                arg.split("?", 1)[0] + "?…" if isinstance(arg, str) and "?" in arg else arg for arg in record.args
            )
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str) -> None:
    global _configured  # noqa: PLW0603  (configure once per process)
    for server_logger in ("uvicorn.error", "uvicorn.access"):
        server_log = logging.getLogger(server_logger)
        if not any(isinstance(f, StripQueryStrings) for f in server_log.filters):
            server_log.addFilter(StripQueryStrings())
    if _configured:
        logging.getLogger("reelhouse").setLevel(level.upper())
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger("reelhouse")
    root.handlers = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    _configured = True


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            return incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestIdMiddleware(ASGIMiddleware):
    """Gives each request an id (the caller's ``X-Request-ID`` when sane) for every log line it causes."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = _incoming_request_id(scope)
        scope["state"]["request_id"] = request_id
        scope["state"]["started_at"] = time.perf_counter()
        token = request_id_var.set(request_id)
        try:
            await next_app(scope, receive, send)
        finally:
            request_id_var.reset(token)


async def stamp_response(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: it sees every response, errors and unknown routes included, so the
    ``X-Request-ID`` header and the access line are written here with the status really sent."""
    if message["type"] != "http.response.start":
        return
    state = scope.setdefault("state", {})
    request_id = state.get("request_id") or _incoming_request_id(scope)
    message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
    started = state.get("started_at")
    elapsed = f"{(time.perf_counter() - started) * 1000:.1f}ms" if started is not None else "-"
    token = request_id_var.set(request_id)
    try:
        access_logger.info("%s %s %s %s", scope.get("method", "-"), scope.get("path", "-"), message["status"], elapsed)
    finally:
        request_id_var.reset(token)
