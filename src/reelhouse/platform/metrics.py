"""Prometheus metrics at ``/metrics``: HTTP requests (Litestar's Prometheus middleware, with its
per-request label lookups done once per route and status: :class:`RouteMetricsMiddleware`).

Domains declare their own metric objects at module level (created once per process: several
apps built in one process, as the test suite does, share them instead of registering them twice).

``/metrics`` is not public: with ``METRICS_TOKEN`` set it requires ``Authorization: Bearer
<token>`` (401 otherwise); without it only a scraper on this host (a loopback socket peer, never
an address taken from ``X-Forwarded-For``) is answered (403 otherwise). A scrape reads gauges
from elsewhere (the stream store), so nobody else can make the service pay for it.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from reelhouse.platform.client_ip import client_ip, parse_address
from reelhouse.platform.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar import Request
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from prometheus_client.metrics import MetricWrapperBase

METRICS_PATH = "/metrics"


class RouteMetricsMiddleware(PrometheusMiddleware):
    """Litestar's Prometheus middleware (the same metrics, names and labels: method, route template,
    status code, app name) without its per-request work of building a request object and label
    dictionaries and looking each labelled child up four times: the children of each route and
    status are found once and kept (the routes and statuses are few)."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._in_progress: dict[tuple[str, str], MetricWrapperBase] = {}
        self._finished: dict[tuple[str, str, int], tuple[MetricWrapperBase, MetricWrapperBase]] = {}

    def _labels(self, method: str, path: str, status_code: int) -> dict[str, str | int | float]:
        return {"method": method, "path": path, "status_code": status_code, "app_name": self._config.app_name}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]  # type: ignore[typeddict-item]  # HTTP scopes only (the config's)
        path: str = scope.get("path_template") or scope["path"]
        in_progress = self._in_progress.get((method, path))
        if in_progress is None:
            labels = self._labels(method, path, 200)
            in_progress = self.requests_in_progress(labels).labels(*labels.values())
            self._in_progress[(method, path)] = in_progress
        started = time.perf_counter()
        status_code = 200
        duration = 0.0

        async def measured_send(message: Message) -> None:
            nonlocal status_code, duration
            if message["type"] == "http.response.start":
                status_code = message["status"]
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        in_progress.inc()  # type: ignore[attr-defined]
        try:
            await self.app(scope, receive, measured_send)
        finally:
            in_progress.dec()  # type: ignore[attr-defined]
            count, request_time = self._children(method, path, status_code)
            if status_code >= HTTP_500_INTERNAL_SERVER_ERROR:
                labels = self._labels(method, path, status_code)
                self.requests_error_count(labels).labels(*labels.values()).inc()
            count.inc()  # type: ignore[attr-defined]
            request_time.observe(duration)  # type: ignore[attr-defined]

    def _children(self, method: str, path: str, status_code: int) -> tuple[MetricWrapperBase, MetricWrapperBase]:
        key = (method, path, status_code)
        children = self._finished.get(key)
        if children is None:
            labels = self._labels(method, path, status_code)
            children = (
                self.request_count(labels).labels(*labels.values()),
                self.request_time(labels).labels(*labels.values()),
            )
            self._finished[key] = children
        return children


def prometheus_config() -> PrometheusConfig:
    """HTTP request counts and durations per route template (not per URL: ids would explode the
    label space). Websockets are left out: a socket is one long "request"; playback counts them.
    So are the probes (``/health``, ``/ready``) and the scrape itself: they would only count the
    load balancer and Prometheus, and a liveness answer should cost next to nothing."""
    return PrometheusConfig(
        app_name="reelhouse",
        prefix="reelhouse_http",
        group_path=True,
        scopes={ScopeType.HTTP},
        middleware_class=RouteMetricsMiddleware,
        exclude=[f"^{METRICS_PATH}$", "^/health$", "^/ready$"],
    )


class MetricsTokenRequired(Unauthorized):
    code = "metrics_token_required"
    default_detail = "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>."


class MetricsOnlyFromThisHost(Forbidden):
    code = "metrics_forbidden"
    default_detail = "Metrics answer only on this host unless METRICS_TOKEN is set."


def metrics_access_guard(metrics_token: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """The scraper's guard: the metrics token when one is set, else a loopback socket peer."""

    def requires_metrics_access(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if metrics_token:
            scheme, __, presented = connection.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                presented.strip().encode(), metrics_token.encode()
            ):
                raise MetricsTokenRequired()
            return
        peer = parse_address(client_ip(connection.scope, []))
        if peer is None or not peer.is_loopback:
            raise MetricsOnlyFromThisHost()

    return requires_metrics_access


def metrics_controller(
    before_scrape: Callable[[], Awaitable[None]], metrics_token: str = ""
) -> type[PrometheusController]:
    """``GET /metrics`` in the Prometheus text format, for the scraper only (never rate limited).
    ``before_scrape`` brings gauges read from elsewhere (the stream store) up to date."""

    async def refresh(_: Request[Any, Any, Any]) -> None:
        await before_scrape()

    class MetricsController(PrometheusController):
        path = METRICS_PATH
        include_in_schema = False
        guards = [metrics_access_guard(metrics_token)]
        opt = {"exclude_from_auth": True, "exclude_from_rate_limit": True}
        before_request = staticmethod(refresh)

    return MetricsController
