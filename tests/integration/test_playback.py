"""Playback through the public API and real websockets: admission, eviction, every termination reason."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from catalog_helpers import Person, create_title, new_admin, new_user
from litestar.exceptions import WebSocketDisconnect
from test_subscriptions import move_end_date

from helpers import auth, in_app_loop
from reelhouse.catalog.models import Content
from reelhouse.playback.streams import StreamSession
from reelhouse.subscriptions.services import settle_expired_subscriptions

PLAYBACK = "/api/v1/playback/sessions"
_plans = itertools.count(1)


async def create_plan(
    client,
    admin: Person,
    *,
    access_level: str = "premium",
    max_devices: int = 2,
    policy: str = "evict_oldest",
    resolution: str = "1080p",
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/admin/plans",
        json={
            "name": f"Plan {next(_plans)}",
            "price": 999,
            "validity_days": 30,
            "access_level": access_level,
            "max_devices_allowed": max_devices,
            "resolution": resolution,
            "stream_limit_policy": policy,
        },
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def subscriber(client, plan: dict[str, Any], name: str = "viewer") -> Person:
    person = await new_user(client, name)
    response = await client.post("/api/v1/subscriptions", json={"plan_id": plan["id"]}, headers=person.headers)
    assert response.status_code == 201, response.text
    return person


async def start(client, person: Person, content_id: str, device_id: str, **extra: Any):
    return await client.post(
        PLAYBACK, json={"content_id": content_id, "device_id": device_id, **extra}, headers=person.headers
    )


async def started(client, person: Person, content_id: str, device_id: str, **extra: Any) -> dict[str, Any]:
    response = await start(client, person, content_id, device_id, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def ws_path(body: dict[str, Any]) -> str:
    return "/api/v1/playback/ws?token=" + body["playback_token"]


def next_event(ws, timeout: float = 5.0) -> dict[str, Any]:
    """The next message as a dict, or ``{"closed": code}`` once the server closed the socket."""
    try:
        message = ws.receive(timeout=timeout)
    except WebSocketDisconnect as closed:
        return {"closed": closed.code}
    return json.loads(message.get("text") or message.get("bytes"))


def expect_termination(ws, reason: str, code: int) -> None:
    notice = next_event(ws)
    assert notice["type"] == "terminated", notice
    assert notice["reason"] == reason
    assert notice["detail"]
    assert next_event(ws) == {"closed": code}


def heartbeat(ws, position: float, state: str = "playing") -> dict[str, Any]:
    ws.send_json({"type": "heartbeat", "position_seconds": position, "state": state})
    return next_event(ws)


@pytest.fixture
async def world(client):
    admin = await new_admin(client)
    free_title = await create_title(client, admin, title="Free Film", access_level="free")
    premium_title = await create_title(client, admin, title="Premium Film", access_level="premium")
    return {"admin": admin, "free": free_title["id"], "premium": premium_title["id"]}


class TestStart:
    async def test_start_returns_everything_a_player_needs(self, client, world):
        plan = await create_plan(client, world["admin"], max_devices=2)
        viewer = await subscriber(client, plan)
        body = await started(client, viewer, world["premium"], "tv-1", device_name="Living room")
        assert body["session_id"]
        assert body["playback_token"]
        assert f"/media/{world['premium']}/manifest.m3u8?" in body["stream_url"]
        # The test client's host is neither loopback nor allowed: links stay relative (platform/hosts.py).
        assert body["stream_url"].startswith("/media/")
        assert body["ws_url"] == ws_path(body)
        assert body["heartbeat_interval_seconds"] == 15
        assert body["max_resolution"] == "1080p"
        assert body["resume_position_seconds"] == 0
        assert body["evicted"] == []
        listed = await client.get(PLAYBACK, headers=viewer.headers)
        assert listed.json()["total"] == 1
        live = listed.json()["sessions"][0]
        assert live["device_id"] == "tv-1"
        assert live["device_name"] == "Living room"
        assert live["content_id"] == world["premium"]

    async def test_plan_must_cover_the_title(self, client, world):
        plan = await create_plan(client, world["admin"], access_level="basic")
        viewer = await subscriber(client, plan)
        premium = await start(client, viewer, world["premium"], "tv")
        assert premium.status_code == 403
        assert premium.json()["code"] == "plan_required"
        assert (await start(client, viewer, world["free"], "tv")).status_code == 201

    async def test_without_a_subscription_only_free_titles_on_one_device(self, client, world):
        viewer = await new_user(client)
        assert (await start(client, viewer, world["premium"], "tv")).status_code == 403
        first = await started(client, viewer, world["free"], "tv")
        assert first["max_resolution"] == "480p"
        second = await started(client, viewer, world["free"], "phone")
        assert [e["device_id"] for e in second["evicted"]] == ["tv"]

    async def test_anonymous_and_unknown_or_unpublished_titles(self, client, world):
        anonymous = await client.post(PLAYBACK, json={"content_id": world["free"], "device_id": "tv"})
        assert anonymous.status_code == 401
        viewer = await new_user(client)
        unknown = await start(client, viewer, "00000000-0000-0000-0000-000000000000", "tv")
        assert unknown.status_code == 404
        draft = await create_title(client, world["admin"], title="Draft", published=False)
        assert (await start(client, viewer, draft["id"], "tv")).status_code == 404

    async def test_bad_bodies_are_422(self, client, world):
        viewer = await new_user(client)
        for body in (
            {"content_id": world["free"]},
            {"content_id": "nope", "device_id": "tv"},
            {"content_id": world["free"], "device_id": ""},
            {"content_id": world["free"], "device_id": "tv", "replace_session_id": "x"},
        ):
            response = await client.post(PLAYBACK, json=body, headers=viewer.headers)
            assert response.status_code == 422, body


class TestStreamLimit:
    async def test_the_oldest_device_is_evicted_and_told_why(self, client, world):
        plan = await create_plan(client, world["admin"], max_devices=1)
        viewer = await subscriber(client, plan)
        tv = await started(client, viewer, world["premium"], "tv")
        with await client.websocket_connect(ws_path(tv)) as ws:
            assert heartbeat(ws, 10.0)["type"] == "ack"
            phone = await started(client, viewer, world["premium"], "phone")
            assert [(e["session_id"], e["reason"]) for e in phone["evicted"]] == [(tv["session_id"], "stream_limit")]
            expect_termination(ws, "stream_limit", 4001)
        sessions = (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"]
        assert [s["device_id"] for s in sessions] == ["phone"]

    async def test_reject_new_lists_live_devices_and_accepts_a_named_replacement(self, client, world):
        plan = await create_plan(client, world["admin"], max_devices=1, policy="reject_new")
        viewer = await subscriber(client, plan)
        tv = await started(client, viewer, world["premium"], "tv")
        refused = await start(client, viewer, world["premium"], "phone")
        assert refused.status_code == 409
        assert refused.json()["code"] == "stream_limit_reached"
        assert [s["session_id"] for s in refused.json()["live_sessions"]] == [tv["session_id"]]
        with await client.websocket_connect(ws_path(tv)) as ws:
            replaced = await started(client, viewer, world["premium"], "phone", replace_session_id=tv["session_id"])
            assert [e["device_id"] for e in replaced["evicted"]] == ["tv"]
            expect_termination(ws, "stream_limit", 4001)

    async def test_the_same_device_starting_the_next_title_replaces_its_own_stream(self, client, world):
        plan = await create_plan(client, world["admin"], max_devices=1)
        viewer = await subscriber(client, plan)
        episode_one = await started(client, viewer, world["premium"], "tv")
        with await client.websocket_connect(ws_path(episode_one)) as ws:
            episode_two = await started(client, viewer, world["free"], "tv")
            assert episode_two["evicted"][0]["reason"] == "replaced"
            expect_termination(ws, "replaced", 4007)
        sessions = (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"]
        assert [s["content_id"] for s in sessions] == [world["free"]]


class TestWebsocket:
    async def test_heartbeats_are_acked_and_update_the_position(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as ws:
            assert heartbeat(ws, 42.5) == {"type": "ack", "next_heartbeat_seconds": 15}
            assert heartbeat(ws, 43.0, "paused")["type"] == "ack"
        live = (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"][0]
        assert live["position_seconds"] == 43.0
        assert live["state"] == "paused"

    async def test_a_bad_token_is_refused_with_4401(self, client, world):
        with await client.websocket_connect("/api/v1/playback/ws?token=forged") as ws:
            assert next_event(ws)["code"] == "invalid_token"
            assert next_event(ws) == {"closed": 4401}
        viewer = await new_user(client)
        with await client.websocket_connect("/api/v1/playback/ws?token=" + viewer.token) as ws:
            assert next_event(ws)["code"] == "invalid_token"
            assert next_event(ws) == {"closed": 4401}

    async def test_bad_messages_get_an_error_and_the_socket_stays_up(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as ws:
            for bad in (
                "not json",
                '{"type": "dance"}',
                '{"type": "heartbeat"}',
                '{"type": "heartbeat", "position_seconds": -1}',
            ):
                ws.send_text(bad)
                reply = next_event(ws)
                assert reply["type"] == "error", bad
                assert reply["code"] == "invalid_message"
            assert heartbeat(ws, 5.0)["type"] == "ack"

    async def test_an_oversized_message_closes_the_socket_with_1009(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as ws:
            ws.send_text(json.dumps({"type": "heartbeat", "position_seconds": 1, "pad": "x" * 5000}))
            assert next_event(ws) == {"closed": 1009}

    async def test_a_flood_of_messages_closes_the_socket_with_1008(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as ws:
            events = []
            for _ in range(40):
                ws.send_text("{}")
            for _ in range(41):
                event = next_event(ws)
                events.append(event)
                if "closed" in event:
                    break
            assert events[-1] == {"closed": 1008}

    async def test_reconnecting_with_the_same_token_resumes_the_session(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as ws:
            assert heartbeat(ws, 100.0)["type"] == "ack"
        with await client.websocket_connect(ws_path(body)) as ws:
            assert heartbeat(ws, 101.0)["type"] == "ack"
        sessions = (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"]
        assert [s["session_id"] for s in sessions] == [body["session_id"]]

    async def test_stop_ends_the_stream_and_saves_the_position(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as ws:
            heartbeat(ws, 600.0)
            ws.send_json({"type": "stop", "position_seconds": 620.0})
            expect_termination(ws, "stopped", 4006)
        assert (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"] == []
        history = (await client.get("/api/v1/watch-history", headers=viewer.headers)).json()["watch_history"]
        assert history[0]["content_id"] == world["free"]
        assert history[0]["watched_seconds"] == 620
        again = await started(client, viewer, world["free"], "tv")
        assert again["resume_position_seconds"] == 620

    async def test_a_socket_for_an_ended_session_is_told_why_and_nothing_revives_it(self, client, world):
        viewer = await new_user(client)
        tv = await started(client, viewer, world["free"], "tv")
        await started(client, viewer, world["free"], "phone")
        with await client.websocket_connect(ws_path(tv)) as ws:
            expect_termination(ws, "stream_limit", 4001)
        sessions = (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"]
        assert [s["device_id"] for s in sessions] == ["phone"]


class TestEndings:
    async def test_delete_stops_a_stream_and_its_device_is_told(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as ws:
            heartbeat(ws, 30.0)
            response = await client.delete(f"{PLAYBACK}/{body['session_id']}", headers=viewer.headers)
            assert response.status_code == 204
            expect_termination(ws, "stopped", 4006)
        assert (await client.delete(f"{PLAYBACK}/{body['session_id']}", headers=viewer.headers)).status_code == 404

    async def test_another_users_session_is_404(self, client, world):
        owner = await new_user(client, "owner")
        other = await new_user(client, "other")
        body = await started(client, owner, world["free"], "tv")
        response = await client.delete(f"{PLAYBACK}/{body['session_id']}", headers=other.headers)
        assert response.status_code == 404
        assert (await client.get(PLAYBACK, headers=other.headers)).json()["sessions"] == []
        assert len((await client.get(PLAYBACK, headers=owner.headers)).json()["sessions"]) == 1

    async def test_an_admin_lists_and_terminates_streams(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        admin_path = "/api/v1/admin/playback/sessions"
        assert (await client.get(admin_path, headers=viewer.headers)).status_code == 403
        assert (await client.get(admin_path)).status_code == 401
        listed = await client.get(admin_path, params={"user_id": str(viewer.id)}, headers=world["admin"].headers)
        assert [s["session_id"] for s in listed.json()["sessions"]] == [body["session_id"]]
        with await client.websocket_connect(ws_path(body)) as ws:
            response = await client.delete(f"{admin_path}/{body['session_id']}", headers=world["admin"].headers)
            assert response.status_code == 204
            expect_termination(ws, "admin", 4002)
        assert (
            await client.delete(f"{admin_path}/{body['session_id']}", headers=world["admin"].headers)
        ).status_code == 404

    async def test_sign_out_everywhere_ends_every_stream(self, client, world):
        plan = await create_plan(client, world["admin"], max_devices=2)
        viewer = await subscriber(client, plan)
        tv = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(tv)) as ws:
            assert (await client.post("/api/v1/auth/logout-all", headers=viewer.headers)).status_code == 204
            expect_termination(ws, "signed_out", 4004)

    async def test_disabling_the_account_ends_its_streams(self, client, world):
        viewer = await new_user(client)
        tv = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(tv)) as ws:
            response = await client.post(f"/api/v1/admin/users/{viewer.id}/disable", headers=world["admin"].headers)
            assert response.status_code == 200
            expect_termination(ws, "signed_out", 4004)

    async def test_a_plan_change_ends_titles_the_new_plan_does_not_cover(self, client, world):
        premium = await create_plan(client, world["admin"], access_level="premium", max_devices=2)
        basic = await create_plan(client, world["admin"], access_level="basic", max_devices=1)
        viewer = await subscriber(client, premium)
        subscription = (await client.get("/api/v1/subscriptions/active", headers=viewer.headers)).json()
        film = await started(client, viewer, world["premium"], "tv")
        with await client.websocket_connect(ws_path(film)) as ws:
            response = await client.post(
                f"/api/v1/subscriptions/{subscription['id']}/change-plan",
                json={"plan_id": basic["id"]},
                headers=viewer.headers,
            )
            assert response.status_code == 200
            expect_termination(ws, "subscription_ended", 4003)

    async def test_a_downgrade_to_fewer_devices_trims_the_oldest(self, client, world):
        big = await create_plan(client, world["admin"], max_devices=2)
        small = await create_plan(client, world["admin"], max_devices=1)
        viewer = await subscriber(client, big)
        subscription = (await client.get("/api/v1/subscriptions/active", headers=viewer.headers)).json()
        tv = await started(client, viewer, world["free"], "tv")
        await asyncio.sleep(0.01)
        await started(client, viewer, world["free"], "phone")
        with await client.websocket_connect(ws_path(tv)) as ws:
            await client.post(
                f"/api/v1/subscriptions/{subscription['id']}/change-plan",
                json={"plan_id": small["id"]},
                headers=viewer.headers,
            )
            expect_termination(ws, "stream_limit", 4001)
        sessions = (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"]
        assert [s["device_id"] for s in sessions] == ["phone"]


class TestExpiry:
    async def test_a_silent_device_ends_as_expired_and_its_last_position_is_saved(self, make_client):
        async with make_client(HEARTBEAT_INTERVAL_SECONDS="1", HEARTBEAT_GRACE_INTERVALS="2") as client:
            admin = await new_admin(client)
            film = await create_title(client, admin, title="Long Film", duration_seconds=7200)
            viewer = await new_user(client)
            body = await started(client, viewer, film["id"], "tv")
            with await client.websocket_connect(ws_path(body)) as ws:
                assert heartbeat(ws, 1800.0)["type"] == "ack"
                notice = next_event(ws, timeout=8)
                assert notice["reason"] == "expired"
                assert next_event(ws) == {"closed": 4005}
            history = (await client.get("/api/v1/watch-history", headers=auth(viewer.token))).json()
            assert history["watch_history"][0]["watched_seconds"] == 1800
            assert (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"] == []


class TestProgress:
    async def test_a_queued_position_older_than_what_is_saved_changes_nothing(self, client, world):
        viewer = await new_user(client)
        components = client.app.state.components

        async def final_save_then_late_flush() -> None:
            async with components.units.begin() as uow:
                content = await uow.session.get(Content, uuid.UUID(world["free"]))
                assert content is not None
                history = components.watch_history(uow)
                observed = datetime.now(UTC)
                await history.store_position(viewer.id, content, 300.0)  # the stream's final save
                await history.store_position(viewer.id, content, 120.0, observed_at=observed)  # queued earlier

        in_app_loop(client, final_save_then_late_flush)
        history = (await client.get("/api/v1/watch-history", headers=viewer.headers)).json()["watch_history"]
        assert [entry["watched_seconds"] for entry in history] == [300]

    async def test_a_batch_of_stream_positions_keeps_the_rules_of_single_saves(self, client, world):
        """The position writer's batch: an observation older than the saved one changes nothing, a
        first one creates the entry, and of two devices of one user on one title the later wins."""
        saved, newcomer = await new_user(client), await new_user(client)
        components = client.app.state.components
        content_id = uuid.UUID(world["free"])
        now_ms = int(datetime.now(UTC).timestamp() * 1000)

        def stream(person: Person, position: float, at_ms: int, device: str = "tv") -> StreamSession:
            return StreamSession(
                session_id=str(uuid.uuid4()), user_id=str(person.id), device_id=device, device_name=device,
                content_id=str(content_id), position=position, state="playing", started_at=at_ms - 60_000,
                last_heartbeat_at=at_ms,
            )  # fmt: skip

        async def save_then_flush_a_batch() -> None:
            async with components.units.begin() as uow:
                content = await uow.session.get(Content, content_id)
                assert content is not None
                await components.watch_history(uow).store_position(saved.id, content, 300.0)
            async with components.units.begin() as uow:
                await components.watch_history(uow).store_stream_positions(
                    [
                        stream(saved, 120.0, now_ms - 5_000),  # observed before the save above
                        stream(newcomer, 260.0, now_ms - 1_000, device="phone"),
                        stream(newcomer, 200.0, now_ms - 2_000),  # played first: overtaken by the phone
                    ]
                )

        in_app_loop(client, save_then_flush_a_batch)
        for person, position in ((saved, 300), (newcomer, 260)):
            history = (await client.get("/api/v1/watch-history", headers=person.headers)).json()["watch_history"]
            assert [(entry["watched_seconds"], entry["status"]) for entry in history] == [(position, "started")]

    async def test_positions_of_live_streams_are_saved_every_flush_period(self, make_client):
        async with make_client(PROGRESS_FLUSH_SECONDS="1") as client:
            admin = await new_admin(client)
            film = await create_title(client, admin, title="Slow Burn", duration_seconds=7200)
            viewer = await new_user(client)
            body = await started(client, viewer, film["id"], "tv")
            history: list[dict[str, Any]] = []
            with await client.websocket_connect(ws_path(body)) as ws:
                assert heartbeat(ws, 600.0)["type"] == "ack"
                await asyncio.sleep(1.1)
                assert heartbeat(ws, 900.0)["type"] == "ack"  # due: queued, written a moment later
                for _ in range(40):  # while the stream is still live
                    await asyncio.sleep(0.1)
                    response = await client.get("/api/v1/watch-history", headers=auth(viewer.token))
                    history = response.json()["watch_history"]
                    if history:
                        break
                assert [entry["watched_seconds"] for entry in history] == [900]
                assert (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"] != []

    async def test_a_device_taking_over_resumes_where_the_evicted_device_was(self, client, world):
        plan = await create_plan(client, world["admin"], max_devices=1)
        viewer = await subscriber(client, plan)
        film = await create_title(client, world["admin"], title="Epic", duration_seconds=7200)
        tv = await started(client, viewer, film["id"], "tv")
        with await client.websocket_connect(ws_path(tv)) as ws:
            assert heartbeat(ws, 1200.0)["type"] == "ack"
            phone = await started(client, viewer, film["id"], "phone")
            assert phone["resume_position_seconds"] == 1200
            expect_termination(ws, "stream_limit", 4001)

    async def test_a_stream_that_never_reported_keeps_the_saved_position(self, client, world):
        viewer = await new_user(client)
        film = await create_title(client, world["admin"], title="Epic", duration_seconds=7200)
        saved = await client.post(
            "/api/v1/watch-history", json={"content_id": film["id"], "watched_seconds": 1500}, headers=viewer.headers
        )
        assert saved.status_code == 200
        body = await started(client, viewer, film["id"], "tv")
        assert body["resume_position_seconds"] == 1500
        assert (await client.delete(f"{PLAYBACK}/{body['session_id']}", headers=viewer.headers)).status_code == 204
        history = (await client.get("/api/v1/watch-history", headers=viewer.headers)).json()["watch_history"]
        assert history[0]["watched_seconds"] == 1500


class TestEntitlementRecheck:
    async def test_a_cancelled_subscription_reaching_its_end_ends_titles_it_covered(self, client, world):
        plan = await create_plan(client, world["admin"], access_level="premium")
        viewer = await subscriber(client, plan)
        subscription = (await client.get("/api/v1/subscriptions/active", headers=viewer.headers)).json()
        await client.post(f"/api/v1/subscriptions/{subscription['id']}/cancel", headers=viewer.headers)
        film = await started(client, viewer, world["premium"], "tv")
        with await client.websocket_connect(ws_path(film)) as ws:
            assert heartbeat(ws, 10.0)["type"] == "ack"
            move_end_date(client, subscription["id"], datetime.now(UTC) - timedelta(seconds=1))
            assert in_app_loop(client, settle_expired_subscriptions, client.app.state.components.units) == 1
            expect_termination(ws, "subscription_ended", 4003)

    async def test_a_heartbeat_notices_an_unpublished_title_within_one_interval(self, make_client):
        async with make_client(HEARTBEAT_INTERVAL_SECONDS="1") as client:
            admin = await new_admin(client)
            film = await create_title(client, admin, title="Soon Gone")
            viewer = await new_user(client)
            body = await started(client, viewer, film["id"], "tv")
            with await client.websocket_connect(ws_path(body)) as ws:
                assert heartbeat(ws, 10.0)["type"] == "ack"
                hidden = await client.patch(
                    f"/api/v1/admin/content/{film['id']}", json={"published": False}, headers=admin.headers
                )
                assert hidden.status_code == 200, hidden.text
                await asyncio.sleep(0.6)
                ws.send_json({"type": "heartbeat", "position_seconds": 11.0, "state": "playing"})
                expect_termination(ws, "subscription_ended", 4003)


class TestDeadDevicesAndCaps:
    async def test_a_device_whose_stream_went_silent_takes_its_own_screen_back_at_once(self, client, world):
        plan = await create_plan(client, world["admin"], max_devices=1, policy="reject_new")
        viewer = await subscriber(client, plan)
        crashed = await started(client, viewer, world["premium"], "tv")  # then never heard from again
        assert (await start(client, viewer, world["premium"], "phone")).status_code == 409
        again = await started(client, viewer, world["premium"], "tv")
        assert [(e["session_id"], e["reason"]) for e in again["evicted"]] == [(crashed["session_id"], "replaced")]

    async def test_a_plan_change_lowers_the_resolution_cap_of_streams_that_go_on(self, client, world):
        premium = await create_plan(client, world["admin"], access_level="premium", max_devices=2, resolution="4k")
        basic = await create_plan(client, world["admin"], access_level="premium", max_devices=2, resolution="720p")
        viewer = await subscriber(client, premium)
        subscription = (await client.get("/api/v1/subscriptions/active", headers=viewer.headers)).json()
        streams = client.app.state.components.backends.streams
        film = await started(client, viewer, world["premium"], "tv")
        assert film["max_resolution"] == "4k"
        assert in_app_loop(client, streams.access, str(viewer.id), film["session_id"]).resolution_cap == "4k"
        with await client.websocket_connect(ws_path(film)) as ws:
            response = await client.post(
                f"/api/v1/subscriptions/{subscription['id']}/change-plan",
                json={"plan_id": basic["id"]},
                headers=viewer.headers,
            )
            assert response.status_code == 200
            assert heartbeat(ws, 20.0)["type"] == "ack"  # the stream goes on
        assert in_app_loop(client, streams.access, str(viewer.id), film["session_id"]).resolution_cap == "720p"


class TestSocketLimits:
    async def test_a_newer_socket_on_the_same_stream_replaces_the_older_and_the_stream_goes_on(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as first:
            assert heartbeat(first, 5.0)["type"] == "ack"
            with await client.websocket_connect(ws_path(body)) as second:
                expect_termination(first, "socket_replaced", 4008)
                assert heartbeat(second, 6.0)["type"] == "ack"
        sessions = (await client.get(PLAYBACK, headers=viewer.headers)).json()["sessions"]
        assert [s["session_id"] for s in sessions] == [body["session_id"]]

    async def test_the_message_budget_belongs_to_the_stream_not_to_each_socket(self, make_client):
        async with make_client(WS_MAX_MESSAGES_PER_SECOND="1") as client:
            admin = await new_admin(client)
            film = await create_title(client, admin, title="Budget Film", access_level="free")
            viewer = await new_user(client)
            body = await started(client, viewer, film["id"], "tv")
            with await client.websocket_connect(ws_path(body)) as first:
                assert heartbeat(first, 1.0)["type"] == "ack"
                assert heartbeat(first, 2.0)["type"] == "ack"  # the burst (twice the rate) is spent
                with await client.websocket_connect(ws_path(body)) as second:
                    second.send_json({"type": "heartbeat", "position_seconds": 3.0})
                    assert next_event(second) == {"closed": 1008}

    async def test_the_size_limit_counts_bytes_not_characters(self, client, world):
        viewer = await new_user(client)
        body = await started(client, viewer, world["free"], "tv")
        with await client.websocket_connect(ws_path(body)) as ws:
            euros = "€" * 4000  # 4,000 characters, 12,000 bytes
            ws.send_text(json.dumps({"type": "heartbeat", "position_seconds": 1, "pad": euros}, ensure_ascii=False))
            assert next_event(ws) == {"closed": 1009}
