"""Liveness (``/health``) and readiness (``/ready``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from msgspec import Struct

from reelhouse.platform.state import AppServices

NO_LIMITS = {"exclude_from_auth": True, "exclude_from_rate_limit": True}


class Health(Struct):
    status: str


class HealthController(Controller):
    tags = ["Health"]
    include_in_schema = True

    @get("/health", operation_id="Health", opt=NO_LIMITS, summary="Liveness: the process answers")
    async def health(self) -> Health:
        return Health(status="healthy")

    @get(
        "/ready",
        operation_id="Ready",
        opt=NO_LIMITS,
        summary="Readiness: 200 when the database and Redis answer, 503 naming what is down",
    )
    async def ready(self, services: AppServices) -> Response[dict[str, Any]]:
        checks = await services.readiness()
        ready = all(state == "ok" for state in checks.values())
        body = {"status": "ready" if ready else "unavailable", "checks": checks}
        return Response(body, status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE)
