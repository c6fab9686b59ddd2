"""``/metrics``: Prometheus text format, for the scraper only, and playback counters that move.

The metric objects are process-wide (several apps live in one test process), so every
assertion compares a scrape before with a scrape after.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from catalog_helpers import create_title, new_admin
from prometheus_client.parser import text_string_to_metric_families
from test_playback import PLAYBACK, create_plan, expect_termination, heartbeat, started, subscriber, ws_path

from helpers import in_app_loop

Sample = tuple[str, frozenset[tuple[str, str]]]
METRICS_TOKEN = "scraper-token-0123456789abcdef"
AS_SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
async def client(make_client):
    """The app with a metrics token (the test client's peer is not a loopback address)."""
    async with make_client(METRICS_TOKEN=METRICS_TOKEN) as client:
        yield client


def parse(text: str) -> dict[Sample, float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client) -> dict[Sample, float]:
    response = await client.get("/metrics", headers=AS_SCRAPER)
    assert response.status_code == 200, response.text
    return parse(response.text)


def value(metrics: dict[Sample, float], name: str, **labels: str) -> float:
    """A sample's value; 0 when it is absent (a labelled series not yet seen)."""
    return metrics.get((name, frozenset(labels.items())), 0.0)


def http_requests(metrics: dict[Sample, float], method: str, path: str, status: int) -> float:
    return value(
        metrics,
        "reelhouse_http_requests_total",
        app_name="reelhouse",
        method=method,
        path=path,
        status_code=str(status),
    )


async def test_metrics_answer_in_the_prometheus_text_format(client):
    response = await client.get("/metrics", headers=AS_SCRAPER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "reelhouse_playback_live_sessions",
        "reelhouse_playback_admissions",
        "reelhouse_playback_endings",
        "reelhouse_playback_heartbeats",
        "reelhouse_playback_websockets_open",
    } <= families
    endings = parse(response.text)
    for reason in ("stream_limit", "admin", "subscription_ended", "signed_out", "expired", "stopped", "replaced"):
        assert ("reelhouse_playback_endings_total", frozenset({("reason", reason)})) in endings
    assert "/metrics" not in (await client.get("/schema/openapi.json")).json()["paths"]


async def test_metrics_need_the_metrics_token_and_are_never_rate_limited(make_client):
    settings = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "2", "METRICS_TOKEN": METRICS_TOKEN}
    async with make_client(**settings) as client:
        statuses = [(await client.get("/api/v1/plans")).status_code for _ in range(3)]
        assert statuses[-1] == 429, statuses
        for _ in range(5):
            response = await client.get("/metrics", headers=AS_SCRAPER)
            assert response.status_code == 200
            assert "RateLimit" not in response.headers
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": METRICS_TOKEN}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["code"] == "metrics_token_required"
            assert "reelhouse_" not in refused.text


async def test_without_a_token_metrics_answer_only_a_scraper_on_this_host(make_client):
    async with make_client() as client:
        refused = await client.get("/metrics")  # the test client's peer is "testclient", not loopback
        assert refused.status_code == 403
        assert refused.json()["code"] == "metrics_forbidden"


def test_without_a_token_a_loopback_scraper_is_answered_but_not_a_forwarded_address(tmp_path):
    import httpx

    from servers import running_servers, server_environ

    with running_servers(server_environ(tmp_path), 1, tmp_path) as (url,):
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200
        # Plain uvicorn rewrites the peer from X-Forwarded-For; the app does not believe it.
        forged = httpx.get(f"{url}/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10)
        assert forged.status_code == 403


async def test_http_requests_are_counted_per_route_template(client):
    before = await scrape(client)
    missing = "/api/v1/content/00000000-0000-0000-0000-000000000000"
    assert (await client.get(missing)).status_code == 404
    assert (await client.get("/api/v1/plans")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    after = await scrape(client)
    template = "/api/v1/content/{content_id}"
    assert http_requests(after, "GET", template, 404) - http_requests(before, "GET", template, 404) == 1
    plans = "/api/v1/plans"
    assert http_requests(after, "GET", plans, 200) - http_requests(before, "GET", plans, 200) == 1
    labels = {"app_name": "reelhouse", "method": "GET", "path": plans, "status_code": "200"}
    timed = "reelhouse_http_request_duration_seconds_count"
    assert value(after, timed, **labels) - value(before, timed, **labels) == 1
    assert value(after, "reelhouse_http_requests_in_progress", **labels) == 0
    assert http_requests(after, "GET", "/health", 200) == 0, "probes are not counted"
    assert http_requests(after, "GET", missing, 404) == 0, "paths are grouped by their template"
    assert http_requests(after, "GET", "/metrics", 200) == 0, "scrapes are not counted"


async def live_sessions_once_swept(client, expected: float) -> float:
    """The live-sessions gauge as the sweeper counts it: it runs every few seconds (one sweep a
    second across instances), so the count follows a change within a few seconds."""
    sweep = client.app.state.components.supervisor.sweep
    deadline = time.monotonic() + 10
    while True:
        in_app_loop(client, sweep)
        live = value(await scrape(client), "reelhouse_playback_live_sessions")
        if live == expected or time.monotonic() > deadline:
            return live
        await asyncio.sleep(0.3)


async def test_a_start_a_heartbeat_an_eviction_and_a_stop_move_the_playback_metrics(client):
    admin = await new_admin(client)
    film = await create_title(client, admin, title="Counted Film")
    plan = await create_plan(client, admin, max_devices=1)
    viewer = await subscriber(client, plan)

    before = await scrape(client)
    tv = await started(client, viewer, film["id"], "tv")
    with await client.websocket_connect(ws_path(tv)) as ws:
        assert heartbeat(ws, 12.0)["type"] == "ack"
        during = await scrape(client)
        assert value(during, "reelhouse_playback_websockets_open") >= 1
        assert await live_sessions_once_swept(client, 1) == 1
        phone = await started(client, viewer, film["id"], "phone")
        expect_termination(ws, "stream_limit", 4001)
    assert (await client.delete(f"{PLAYBACK}/{phone['session_id']}", headers=viewer.headers)).status_code == 204
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("reelhouse_playback_admissions_total") == 2
    assert moved("reelhouse_playback_heartbeats_total") == 1
    assert moved("reelhouse_playback_endings_total", reason="stream_limit") == 1
    assert moved("reelhouse_playback_endings_total", reason="stopped") == 1
    assert moved("reelhouse_playback_endings_total", reason="expired") == 0
    assert await live_sessions_once_swept(client, 0) == 0
    started_requests = http_requests(after, "POST", PLAYBACK, 201) - http_requests(before, "POST", PLAYBACK, 201)
    assert started_requests == 2

    # The evicted socket is closed by now; its handler lets go of the gauge right after.
    deadline = time.monotonic() + 2
    while value(await scrape(client), "reelhouse_playback_websockets_open") >= value(
        during, "reelhouse_playback_websockets_open"
    ):
        assert time.monotonic() < deadline, "the open-websockets gauge never went down"
        await asyncio.sleep(0.02)
