"""Liveness (``/health``) and readiness (``/ready``).

Liveness only says the process answers, so a probe needs none of the request path: no
route lookup, host check, rate limit, authentication or metrics. :func:`answer_liveness_probes`
answers a plain ``GET /health`` in front of the framework's middleware (the response still
passes the app's ``before_send`` hooks: request id, access line, protective headers);
anything else about ``/health`` (another method, a query string, a trailing slash) takes the
ordinary path to :class:`HealthController`, which documents the route and answers the same.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Controller, Response, get
from litestar.enums import ScopeType
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from msgspec import Struct

from reelhouse.platform.hosts import ANY_HOST

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

NO_LIMITS = {"exclude_from_auth": True, "exclude_from_rate_limit": True, ANY_HOST: True}
#: Readiness asks the database and Redis: limited per IP (RATE_LIMIT_PROBE_PER_MINUTE), never by a token.
PROBE = {"exclude_from_auth": True, "rate_limit_bucket": "probe", ANY_HOST: True}


class Health(Struct):
    status: str


HEALTHY = Health(status="healthy")
_HEALTHY_BODY = msgspec.json.encode(HEALTHY)
_HEALTHY_HEADERS = ((b"content-type", b"application/json"), (b"content-length", str(len(_HEALTHY_BODY)).encode()))


def _is_liveness_probe(scope: Scope) -> bool:
    return (
        scope["type"] == ScopeType.HTTP
        and scope["path"] == "/health"
        and scope.get("method") == "GET"
        and not scope.get("query_string")
    )


def answer_liveness_probes(app: ASGIApp) -> ASGIApp:
    """``app`` with plain ``GET /health`` requests answered before it is called."""

    async def probed(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_liveness_probe(scope):
            await app(scope, receive, send)
            return
        # A fresh headers list each time: the before_send hooks add to it.
        await send({"type": "http.response.start", "status": HTTP_200_OK, "headers": list(_HEALTHY_HEADERS)})
        await send({"type": "http.response.body", "body": _HEALTHY_BODY, "more_body": False})

    return probed


class Readiness:
    """The checks ``/ready`` runs, by dependency name; the composition root adds one per backend."""

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], Awaitable[object]]] = {}

    def add_check(self, name: str, check: Callable[[], Awaitable[object]]) -> None:
        """``check`` raises when the dependency does not answer."""
        self._checks[name] = check

    async def states(self) -> dict[str, str]:
        """Each dependency's state: ``ok`` or ``unavailable``."""
        states: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                await check()
                states[name] = "ok"
            except Exception as exc:  # noqa: BLE001  (any failure means "not ready")
                logger.warning("%s not ready: %s", name, type(exc).__name__)
                states[name] = "unavailable"
        return states


class HealthController(Controller):
    tags = ["Health"]
    include_in_schema = True

    @get("/health", operation_id="Health", opt=NO_LIMITS, summary="Liveness: the process answers")
    async def health(self) -> Health:
        return HEALTHY

    @get(
        "/ready",
        operation_id="Ready",
        opt=PROBE,
        summary="Readiness: 200 when the database and Redis answer, 503 naming what is down",
    )
    async def ready(self, readiness: Readiness) -> Response[dict[str, Any]]:
        checks = await readiness.states()
        ready = all(state == "ok" for state in checks.values())
        body = {"status": "ready" if ready else "unavailable", "checks": checks}
        return Response(body, status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE)
