"""Playback's Prometheus metrics.

Counters are process-wide; so is the open-websockets gauge (this instance's sockets). The
live-sessions gauge is the whole service's figure, as the stream store's sweeper last counted it, read when
``/metrics`` is scraped: every instance reports the same value, so aggregate it with ``max``,
not ``sum``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

from reelhouse.playback.streams import EndReason

if TYPE_CHECKING:
    from reelhouse.playback.streams import StreamStore

LIVE_SESSIONS = Gauge(
    "reelhouse_playback_live_sessions",
    "Live playback sessions across the service (as the sweeper last counted them, seconds ago at most).",
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


async def refresh_live_sessions(streams: StreamStore) -> None:
    LIVE_SESSIONS.set(await streams.live_count())
