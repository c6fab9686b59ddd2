"""Prometheus metrics at ``/metrics``: HTTP requests (Litestar's Prometheus middleware) and playback.

The metric objects live at module level, created once per process: several apps built in
one process (the test suite does that) share them instead of registering them twice.
Counters are therefore process-wide; so is the open-websockets gauge (this instance's
sockets). The live-sessions gauge is the whole service's figure, read from the stream
store when ``/metrics`` is scraped: every instance reports the same value, so aggregate it
with ``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter, Gauge

from reelhouse.playback.streams import EndReason

if TYPE_CHECKING:
    from litestar import Request

    from reelhouse.platform.state import AppServices
    from reelhouse.playback.streams import StreamStore

METRICS_PATH = "/metrics"

#: How many users' live streams are read from the store at once when counting them.
LIVE_COUNT_CONCURRENCY = 50

LIVE_SESSIONS = Gauge(
    "reelhouse_playback_live_sessions",
    "Live playback sessions across the service (read from the stream store at scrape time).",
    multiprocess_mode="max",
)
ADMISSIONS = Counter("reelhouse_playback_admissions", "Streams admitted by POST /api/v1/playback/sessions.")
ENDINGS = Counter(
    "reelhouse_playback_endings",
    "Streams ended, by reason (stream_limit: evicted for a newer device).",
    labelnames=["reason"],
)
HEARTBEATS = Counter("reelhouse_playback_heartbeats", "Heartbeat messages received on playback websockets.")
OPEN_WEBSOCKETS = Gauge(
    "reelhouse_playback_websockets_open", "Playback websockets open on this instance.", multiprocess_mode="livesum"
)

for _reason in EndReason:
    ENDINGS.labels(reason=_reason.value)  # every reason is exported from the start, at 0


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


async def count_live_sessions(streams: StreamStore) -> int:
    users = await streams.live_users()
    total = 0
    for start in range(0, len(users), LIVE_COUNT_CONCURRENCY):
        chunk = users[start : start + LIVE_COUNT_CONCURRENCY]
        total += sum(len(sessions) for sessions in await asyncio.gather(*(streams.live(u) for u in chunk)))
    return total


async def refresh_live_sessions(request: Request[Any, Any, Any]) -> None:
    services: AppServices = request.app.state.services
    LIVE_SESSIONS.set(await count_live_sessions(services.backends.streams))


class MetricsController(PrometheusController):
    """``GET /metrics`` in the Prometheus text format; open to the scraper (no auth, no rate limit)."""

    path = METRICS_PATH
    include_in_schema = False
    opt = {"exclude_from_auth": True, "exclude_from_rate_limit": True}
    before_request = staticmethod(refresh_live_sessions)
