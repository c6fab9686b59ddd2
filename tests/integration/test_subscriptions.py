"""Subscriptions: subscribe, active, history, cancel, renew, change plan, expiry, idempotency, concurrency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, update

from helpers import auth, in_app_loop, make_admin, register, send_concurrently, session_scope
from reelhouse.subscriptions.models import Subscription, SubscriptionStatus
from reelhouse.subscriptions.services import settle_expired_subscriptions

PLAN = {"price": 899, "validity_days": 30, "max_devices_allowed": 2, "resolution": "1080p", "access_level": "basic"}


async def create_plan(client, admin_token: str, name: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/admin/plans", json={**PLAN, "name": name, **overrides}, headers=auth(admin_token)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def subscribe(client, token: str, plan_id: str, **headers: str) -> dict[str, Any]:
    response = await client.post("/api/v1/subscriptions", json={"plan_id": plan_id}, headers={**auth(token), **headers})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def move_end_date(client, subscription_id: str, end_date: datetime) -> None:
    services = client.app.state.components

    async def change() -> None:
        async with session_scope(services.db_config) as session:
            await session.execute(
                update(Subscription).where(Subscription.id == UUID(subscription_id)).values(end_date=end_date)
            )
        services.entitlement_memory.forget(None)  # the app hears of no change made around it

    in_app_loop(client, change)


def stored_rows(client, user_id: str) -> list[tuple[SubscriptionStatus, datetime]]:
    services = client.app.state.components

    async def read() -> list[tuple[SubscriptionStatus, datetime]]:
        async with session_scope(services.db_config) as session:
            rows = await session.execute(
                select(Subscription.status, Subscription.end_date).where(Subscription.user_id == UUID(user_id))
            )
            return [(row[0], row[1]) for row in rows]

    return in_app_loop(client, read)


class TestSubscribe:
    async def test_subscribe_returns_201_with_the_plan_and_a_period_of_validity_days(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        body = await subscribe(client, user["token"], plan["id"])
        assert body["plan"]["id"] == plan["id"]
        assert body["plan_id"] == plan["id"]
        assert body["user_id"] == user["user"]["id"]
        assert body["status"] == "active"
        assert body["is_active"] is True
        assert body["auto_renew"] is True
        assert body["cancelled_at"] is None
        assert parse(body["end_date"]) - parse(body["start_date"]) == timedelta(days=30)
        active = await client.get("/api/v1/subscriptions/active", headers=auth(user["token"]))
        assert active.status_code == 200
        assert active.json()["id"] == body["id"]

    async def test_second_subscribe_while_active_is_409(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        await subscribe(client, user["token"], plan["id"])
        again = await client.post("/api/v1/subscriptions", json={"plan_id": plan["id"]}, headers=auth(user["token"]))
        assert again.status_code == 409
        assert again.json()["code"] == "already_subscribed"

    async def test_unknown_plan_is_404_and_archived_plan_is_409(self, client):
        admin = await make_admin(client)
        archived = await create_plan(client, admin["token"], "Old", is_active=False)
        user = await register(client)
        unknown = await client.post(
            "/api/v1/subscriptions",
            json={"plan_id": "00000000-0000-0000-0000-000000000000"},
            headers=auth(user["token"]),
        )
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "plan_not_found"
        gone = await client.post("/api/v1/subscriptions", json={"plan_id": archived["id"]}, headers=auth(user["token"]))
        assert gone.status_code == 409
        assert gone.json()["code"] == "plan_not_available"

    async def test_bad_plan_id_is_422_and_anonymous_is_401(self, client):
        user = await register(client)
        bad = await client.post("/api/v1/subscriptions", json={"plan_id": "nope"}, headers=auth(user["token"]))
        assert bad.status_code == 422
        anonymous = await client.post("/api/v1/subscriptions", json={"plan_id": "nope"})
        assert anonymous.status_code == 401

    async def test_active_is_404_without_a_subscription(self, client):
        user = await register(client)
        response = await client.get("/api/v1/subscriptions/active", headers=auth(user["token"]))
        assert response.status_code == 404
        assert response.json()["code"] == "no_active_subscription"


class TestConcurrency:
    async def test_twenty_simultaneous_subscribes_create_exactly_one_subscription(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        request = ("POST", "/api/v1/subscriptions", {"json": {"plan_id": plan["id"]}, "headers": auth(user["token"])})
        responses = send_concurrently(client, [request] * 20)
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] + [409] * 19, [r.text for r in responses if r.status_code not in (201, 409)]
        assert len(stored_rows(client, user["user"]["id"])) == 1

    async def test_twenty_simultaneous_subscribes_with_one_idempotency_key_return_the_same_body(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        headers = {**auth(user["token"]), "Idempotency-Key": "checkout-42"}
        request = ("POST", "/api/v1/subscriptions", {"json": {"plan_id": plan["id"]}, "headers": headers})
        responses = send_concurrently(client, [request] * 20)
        assert {response.status_code for response in responses} == {201}
        assert len({response.text for response in responses}) == 1, {response.text for response in responses}
        assert len(stored_rows(client, user["user"]["id"])) == 1

    async def test_idempotency_key_with_another_body_is_422(self, client):
        admin = await make_admin(client)
        basic = await create_plan(client, admin["token"], "Basic")
        premium = await create_plan(client, admin["token"], "Premium", access_level="premium")
        user = await register(client)
        first = await subscribe(client, user["token"], basic["id"], **{"Idempotency-Key": "k1"})
        replay = await client.post(
            "/api/v1/subscriptions",
            json={"plan_id": basic["id"]},
            headers={**auth(user["token"]), "Idempotency-Key": "k1"},
        )
        assert replay.status_code == 201
        assert replay.json() == first
        other = await client.post(
            "/api/v1/subscriptions",
            json={"plan_id": premium["id"]},
            headers={**auth(user["token"]), "Idempotency-Key": "k1"},
        )
        assert other.status_code == 422
        assert other.json()["code"] == "idempotency_key_reused"

    async def test_idempotency_keys_belong_to_one_user(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        ada = await register(client)
        bob = await register(client, email="bob@example.com", name="Bob")
        ada_sub = await subscribe(client, ada["token"], plan["id"], **{"Idempotency-Key": "same"})
        bob_sub = await subscribe(client, bob["token"], plan["id"], **{"Idempotency-Key": "same"})
        assert ada_sub["id"] != bob_sub["id"]
        assert bob_sub["user_id"] == bob["user"]["id"]


class TestLifecycle:
    async def test_cancel_stops_renewal_but_access_lasts_until_end_date(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        sub = await subscribe(client, user["token"], plan["id"])
        response = await client.post(f"/api/v1/subscriptions/{sub['id']}/cancel", headers=auth(user["token"]))
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "cancelled"
        assert body["auto_renew"] is False
        assert body["cancelled_at"] is not None
        assert body["is_active"] is True
        assert body["end_date"] == sub["end_date"]
        active = await client.get("/api/v1/subscriptions/active", headers=auth(user["token"]))
        assert active.status_code == 200
        twice = await client.post(f"/api/v1/subscriptions/{sub['id']}/cancel", headers=auth(user["token"]))
        assert twice.status_code == 409
        assert twice.json()["code"] == "already_cancelled"

    async def test_renew_adds_a_period_from_the_end_date_so_no_paid_day_is_lost(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        sub = await subscribe(client, user["token"], plan["id"])
        await client.post(f"/api/v1/subscriptions/{sub['id']}/cancel", headers=auth(user["token"]))
        response = await client.post(f"/api/v1/subscriptions/{sub['id']}/renew", headers=auth(user["token"]))
        assert response.status_code == 201
        body = response.json()
        assert parse(body["end_date"]) == parse(sub["end_date"]) + timedelta(days=30)
        assert body["status"] == "active"
        assert body["auto_renew"] is True
        assert body["cancelled_at"] is None
        assert [event["kind"] for event in body["events"]] == ["subscribed", "cancelled", "renewed"]

    async def test_renew_after_expiry_starts_a_new_period_now(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        sub = await subscribe(client, user["token"], plan["id"])
        move_end_date(client, sub["id"], datetime.now(UTC) - timedelta(days=3))
        before = datetime.now(UTC)
        response = await client.post(f"/api/v1/subscriptions/{sub['id']}/renew", headers=auth(user["token"]))
        assert response.status_code == 201
        end = parse(response.json()["end_date"])
        assert before + timedelta(days=30) <= end <= datetime.now(UTC) + timedelta(days=30)
        assert response.json()["is_active"] is True

    async def test_change_plan_takes_effect_now_and_keeps_the_period(self, client):
        admin = await make_admin(client)
        basic = await create_plan(client, admin["token"], "Basic")
        premium = await create_plan(client, admin["token"], "Premium", access_level="premium", max_devices_allowed=4)
        user = await register(client)
        sub = await subscribe(client, user["token"], basic["id"])
        response = await client.post(
            f"/api/v1/subscriptions/{sub['id']}/change-plan",
            json={"plan_id": premium["id"]},
            headers=auth(user["token"]),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["plan"]["id"] == premium["id"]
        assert body["end_date"] == sub["end_date"]
        change = body["events"][-1]
        assert change["kind"] == "plan_changed"
        assert change["previous_plan_id"] == basic["id"]
        assert change["plan_id"] == premium["id"]
        active = await client.get("/api/v1/subscriptions/active", headers=auth(user["token"]))
        assert active.json()["plan"]["access_level"] == "premium"

    async def test_change_to_the_same_or_an_archived_plan_is_409(self, client):
        admin = await make_admin(client)
        basic = await create_plan(client, admin["token"], "Basic")
        old = await create_plan(client, admin["token"], "Old", is_active=False)
        user = await register(client)
        sub = await subscribe(client, user["token"], basic["id"])
        path = f"/api/v1/subscriptions/{sub['id']}/change-plan"
        same = await client.post(path, json={"plan_id": basic["id"]}, headers=auth(user["token"]))
        assert same.json()["code"] == "same_plan"
        archived = await client.post(path, json={"plan_id": old["id"]}, headers=auth(user["token"]))
        assert archived.json()["code"] == "plan_not_available"


class TestExpiry:
    async def test_a_subscription_past_its_end_reads_expired_before_any_job_runs(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        sub = await subscribe(client, user["token"], plan["id"])
        move_end_date(client, sub["id"], datetime.now(UTC) - timedelta(seconds=1))
        assert (await client.get("/api/v1/subscriptions/active", headers=auth(user["token"]))).status_code == 404
        history = await client.get("/api/v1/subscriptions/history", headers=auth(user["token"]))
        entry = history.json()["subscriptions"][0]
        assert entry["status"] == "expired"
        assert entry["is_active"] is False
        assert stored_rows(client, user["user"]["id"])[0][0] == SubscriptionStatus.ACTIVE
        cancel = await client.post(f"/api/v1/subscriptions/{sub['id']}/cancel", headers=auth(user["token"]))
        assert cancel.status_code == 409
        assert cancel.json()["code"] == "subscription_expired"

    async def test_the_settle_job_stores_expired_and_records_it(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        sub = await subscribe(client, user["token"], plan["id"])
        move_end_date(client, sub["id"], datetime.now(UTC) - timedelta(seconds=1))
        settled = in_app_loop(client, settle_expired_subscriptions, client.app.state.components.units)
        assert settled == 1
        assert stored_rows(client, user["user"]["id"])[0][0] == SubscriptionStatus.EXPIRED
        history = await client.get("/api/v1/subscriptions/history", headers=auth(user["token"]))
        assert history.json()["subscriptions"][0]["events"][-1]["kind"] == "expired"
        assert in_app_loop(client, settle_expired_subscriptions, client.app.state.components.units) == 0

    async def test_subscribing_again_after_expiry_works_and_history_keeps_both(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        user = await register(client)
        first = await subscribe(client, user["token"], plan["id"])
        move_end_date(client, first["id"], datetime.now(UTC) - timedelta(seconds=1))
        second = await subscribe(client, user["token"], plan["id"])
        for path in ("/api/v1/subscriptions/history", "/api/v1/users/subscription-history"):
            history = await client.get(path, headers=auth(user["token"]))
            assert history.status_code == 200
            assert [entry["id"] for entry in history.json()["subscriptions"]] == [second["id"], first["id"]]
            assert history.json()["total"] == 2
            assert history.json()["subscriptions"][0]["plan"]["name"] == "Basic"


class TestOwnership:
    async def test_another_users_subscription_is_404_everywhere(self, client):
        admin = await make_admin(client)
        basic = await create_plan(client, admin["token"], "Basic")
        premium = await create_plan(client, admin["token"], "Premium", access_level="premium")
        ada = await register(client)
        bob = await register(client, email="bob@example.com", name="Bob")
        sub = await subscribe(client, ada["token"], basic["id"])
        bob_headers = auth(bob["token"])
        base = f"/api/v1/subscriptions/{sub['id']}"
        assert (await client.get(base, headers=bob_headers)).status_code == 404
        for action, body in (("cancel", None), ("renew", None), ("change-plan", {"plan_id": premium["id"]})):
            response = await client.post(f"{base}/{action}", json=body, headers=bob_headers)
            assert response.status_code == 404, action
            assert response.json()["code"] == "subscription_not_found"
        own = await client.get(base, headers=auth(ada["token"]))
        assert own.status_code == 200
        assert own.json()["status"] == "active"

    async def test_history_shows_only_your_own(self, client):
        admin = await make_admin(client)
        plan = await create_plan(client, admin["token"], "Basic")
        ada = await register(client)
        bob = await register(client, email="bob@example.com", name="Bob")
        await subscribe(client, ada["token"], plan["id"])
        history = await client.get("/api/v1/subscriptions/history", headers=auth(bob["token"]))
        assert history.json()["subscriptions"] == []
        assert history.json()["total"] == 0
