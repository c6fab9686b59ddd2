"""Logging with request ids; access lines carry the path but never the query string.

Query strings can hold credentials (the playback websocket takes its token
there), so nothing here logs them, and the server's own access log is off.

A log line is one line: control characters in a message (a path with ``%0a``, a header, a
field echoed in an error) are written as escapes (``\\n``, ``\\x00``, ``\\u202e``), so a
request cannot forge a line of its own or hide text. Tracebacks stay as they are.
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


# C0 and C1 controls, DEL, bidirectional overrides and isolates, and the line/paragraph separators.
_UNSAFE_IN_LOGS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_control_characters(text: str) -> str:
    """``text`` on one line, its control characters written as escapes."""
    return _UNSAFE_IN_LOGS.sub(_escape, text)


class EscapeControlCharacters(logging.Filter):
    """Renders the message once, with its control characters escaped (tracebacks are kept apart)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = escape_control_characters(message)
        if escaped != message or record.args:
            record.msg, record.args = escaped, None
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
        if not any(isinstance(f, EscapeControlCharacters) for f in server_log.filters):
            server_log.addFilter(EscapeControlCharacters())
    if _configured:
        logging.getLogger("reelhouse").setLevel(level.upper())
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.addFilter(EscapeControlCharacters())
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
