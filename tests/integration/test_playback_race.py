"""Admission under contention: 200 devices of one account start at the same moment.

The stream limit is enforced by one atomic step in the stream store (a Lua script on
Redis, an await-free method in memory), so however the requests interleave the account
never has more live streams than its plan allows, and every stream pushed out is ended
as ``stream_limit`` and reported, exactly once, to the start that pushed it out.
"""

from __future__ import annotations

import asyncio

import httpx
from catalog_helpers import create_title, new_admin
from test_playback import PLAYBACK, create_plan, expect_termination, subscriber, ws_path

from helpers import in_app_loop
from reelhouse.playback.streams import EndReason

STARTS = 200
MAX_DEVICES = 2
RACE_TIMEOUT_SECONDS = 120


async def test_concurrent_starts_never_exceed_the_plan_limit(client):
    admin = await new_admin(client)
    film = await create_title(client, admin, title="Premiere")
    plan = await create_plan(client, admin, max_devices=MAX_DEVICES)
    viewer = await subscriber(client, plan)
    store = client.app.state.components.backends.streams
    user_id = str(viewer.id)

    def start_body(n: int) -> dict[str, str]:
        return {"content_id": film["id"], "device_id": f"device-{n}"}

    async def race() -> tuple[list[httpx.Response], list[int]]:
        """All starts at once, while a sampler keeps counting the account's live streams."""
        samples: list[int] = []
        racing = True

        async def sample() -> None:
            while racing:
                samples.append(len(await store.live(user_id)))
                await asyncio.sleep(0)

        transport = httpx.ASGITransport(app=client.app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=str(client.base_url)) as http,
            asyncio.timeout(RACE_TIMEOUT_SECONDS),
        ):
            sampler = asyncio.create_task(sample())
            try:
                responses = await asyncio.gather(
                    *(http.post(PLAYBACK, json=start_body(n), headers=viewer.headers) for n in range(STARTS))
                )
            finally:
                racing = False
                await sampler
        return list(responses), samples

    responses, samples = in_app_loop(client, race)

    assert [r.status_code for r in responses] == [201] * STARTS, {r.status_code: r.text for r in responses}
    bodies = [r.json() for r in responses]
    session_ids = [body["session_id"] for body in bodies]
    assert len(set(session_ids)) == STARTS

    # Never more than the limit, at any moment the sampler looked (and it looked during the race).
    assert len(samples) > 1
    assert max(samples) <= MAX_DEVICES, samples

    listed = (await client.get(PLAYBACK, headers=viewer.headers)).json()
    assert listed["total"] == MAX_DEVICES
    live = {s["session_id"] for s in listed["sessions"]}
    assert live <= set(session_ids)

    # Every other stream ended as stream_limit, reported once by the start that evicted it.
    evicted = [item for body in bodies for item in body["evicted"]]
    assert sorted(item["session_id"] for item in evicted) == sorted(set(session_ids) - live)
    assert {item["reason"] for item in evicted} == {"stream_limit"}

    async def ended_reasons() -> dict[str, EndReason | None]:
        return {sid: await store.ended_reason(user_id, sid) for sid in session_ids if sid not in live}

    reasons = in_app_loop(client, ended_reasons)
    assert set(reasons.values()) == {EndReason.STREAM_LIMIT}
    assert len(reasons) == STARTS - MAX_DEVICES

    # An evicted device that connects now is told why; a surviving one is acked.
    loser = next(body for body in bodies if body["session_id"] not in live)
    with await client.websocket_connect(ws_path(loser)) as ws:
        expect_termination(ws, "stream_limit", 4001)
    winner = next(body for body in bodies if body["session_id"] in live)
    with await client.websocket_connect(ws_path(winner)) as ws:
        ws.send_json({"type": "heartbeat", "position_seconds": 1.0})
        assert ws.receive_json(timeout=5)["type"] == "ack"
