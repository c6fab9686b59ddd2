"""Prometheus metrics at ``/metrics``: HTTP requests (Litestar's Prometheus middleware).

Domains declare their own metric objects at module level (created once per process: several
apps built in one process, as the test suite does, share them instead of registering them twice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar import Request

METRICS_PATH = "/metrics"


def prometheus_config() -> PrometheusConfig:
    """HTTP request counts and durations per route template (not per URL: ids would explode the
    label space). Websockets are left out: a socket is one long "request"; playback counts them."""
    return PrometheusConfig(
        app_name="reelhouse",
        prefix="reelhouse_http",
        group_path=True,
        scopes={ScopeType.HTTP},
        exclude=[f"^{METRICS_PATH}$"],
    )


def metrics_controller(before_scrape: Callable[[], Awaitable[None]]) -> type[PrometheusController]:
    """``GET /metrics`` in the Prometheus text format; open to the scraper (no auth, no rate limit).
    ``before_scrape`` brings gauges read from elsewhere (the stream store) up to date."""

    async def refresh(_: Request[Any, Any, Any]) -> None:
        await before_scrape()

    class MetricsController(PrometheusController):
        path = METRICS_PATH
        include_in_schema = False
        opt = {"exclude_from_auth": True, "exclude_from_rate_limit": True}
        before_request = staticmethod(refresh)

    return MetricsController
