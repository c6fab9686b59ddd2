"""Prometheus metrics at ``/metrics``: HTTP requests (Litestar's Prometheus middleware).

Domains declare their own metric objects at module level (created once per process: several
apps built in one process, as the test suite does, share them instead of registering them twice).

``/metrics`` is not public: with ``METRICS_TOKEN`` set it requires ``Authorization: Bearer
<token>`` (401 otherwise); without it only a scraper on this host (a loopback socket peer, never
an address taken from ``X-Forwarded-For``) is answered (403 otherwise). A scrape reads gauges
from elsewhere (the stream store), so nobody else can make the service pay for it.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from reelhouse.platform.client_ip import client_ip, parse_address
from reelhouse.platform.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar import Request
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

METRICS_PATH = "/metrics"


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
