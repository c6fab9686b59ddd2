"""Registration, sign-in (with its throttles and password rehashing) and changing the password."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from sqlalchemy import select

from helpers import PASSWORD, auth, login, make_admin, profile_status, refresh_status, register, send_concurrently
from reelhouse.accounts.models import User
from reelhouse.config import Settings
from reelhouse.platform.db import build_sqlalchemy_config

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
PROFILE_KEYS = {"id", "email", "name", "bio", "picture", "phone", "is_admin", "created_at", "updated_at"}


def error_fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


async def stored_password_hash(settings: Settings, email: str) -> str:
    """Read the stored hash straight from the database (assertions only; no API shows it)."""
    engine = build_sqlalchemy_config(settings).get_engine()
    try:
        async with engine.connect() as connection:
            password_hash = await connection.scalar(select(User.password_hash).where(User.email == email))
    finally:
        await engine.dispose()
    assert isinstance(password_hash, str)
    return password_hash


class TestRegister:
    async def test_register_returns_tokens_and_the_new_user(self, client):
        response = await client.post(
            REGISTER,
            json={
                "email": "ada@example.com",
                "password": PASSWORD,
                "name": "Ada Lovelace",
                "bio": "Analyst",
                "phone": "+44 20 7946 0000",
                "picture": "https://example.com/ada.png",
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["token"]
        assert body["refresh"]
        assert set(body["user"]) == PROFILE_KEYS
        assert body["user"]["email"] == "ada@example.com"
        assert body["user"]["name"] == "Ada Lovelace"
        assert body["user"]["bio"] == "Analyst"
        assert body["user"]["is_admin"] is False
        assert await profile_status(client, body["token"]) == 200

    async def test_email_is_unique_whatever_its_case(self, client):
        await register(client, email="ada@x.com")
        response = await client.post(REGISTER, json={"email": "ADA@x.com", "password": PASSWORD, "name": "Other"})
        assert response.status_code == 409
        assert response.json()["code"] == "email_taken"
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_email_is_stored_lower_cased_and_signs_in_in_any_case(self, client):
        body = await register(client, email="Grace@Example.COM")
        assert body["user"]["email"] == "grace@example.com"
        await login(client, email="GRACE@example.com")

    async def test_concurrent_sign_ups_with_one_email_create_one_account(self, client):
        requests = [
            ("POST", REGISTER, {"json": {"email": email, "password": PASSWORD, "name": "Ada"}})
            for email in ["ada@x.com", "ADA@x.com", "Ada@X.com", "ada@X.COM"] * 2
        ]
        responses = send_concurrently(client, requests)
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] + [409] * 7, [response.text for response in responses]
        assert {response.json()["code"] for response in responses if response.status_code == 409} == {"email_taken"}

    async def test_password_outside_8_to_256_characters_is_rejected(self, client):
        for length in (7, 257):
            response = await client.post(REGISTER, json={"email": "ada@x.com", "password": "p" * length, "name": "Ada"})
            assert response.status_code == 422, length
            body = response.json()
            assert body["code"] == "validation_error"
            assert "password" in error_fields(body), length

    async def test_any_password_of_8_to_256_characters_is_accepted(self, client):
        for index, password in enumerate(["p" * 8, "p" * 256, "12345678", "        "]):
            email = f"user{index}@example.com"
            body = await register(client, email=email, password=password)
            assert body["user"]["email"] == email
            await login(client, email=email, password=password)

    async def test_malformed_email_is_rejected(self, client):
        for email in ["not-an-email", "ada@", "@example.com", "ada@example", "a b@example.com", ""]:
            response = await client.post(REGISTER, json={"email": email, "password": PASSWORD, "name": "Ada"})
            assert response.status_code == 422, email
            assert "email" in error_fields(response.json()), email

    async def test_missing_name_is_rejected(self, client):
        response = await client.post(REGISTER, json={"email": "ada@x.com", "password": PASSWORD})
        assert response.status_code == 422
        assert "name" in error_fields(response.json())

    async def test_an_unknown_field_is_refused_by_name(self, client):
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "mallory@example.com", "password": "correct horse battery", "name": "M", "role": "admin"},
        )
        assert response.status_code == 422
        assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [("role", "Unknown field.")]
        login = {"email": "mallory@example.com", "password": "correct horse battery"}
        assert (await client.post("/api/v1/auth/login", json=login)).status_code == 401

    async def test_is_admin_and_is_active_in_the_body_are_ignored(self, client):
        body = await register(client, email="mallory@example.com", is_admin=True, is_active=False)
        assert body["user"]["is_admin"] is False
        profile = await client.get("/api/v1/users/profile", headers=auth(body["token"]))
        assert profile.json()["is_admin"] is False
        assert (await client.get("/api/v1/admin/users", headers=auth(body["token"]))).status_code == 403

        admin = await make_admin(client)
        stored = await client.get(f"/api/v1/admin/users/{body['user']['id']}", headers=auth(admin["token"]))
        assert stored.status_code == 200
        assert stored.json()["is_admin"] is False
        assert stored.json()["is_active"] is True


class TestLogin:
    async def test_login_returns_tokens_for_the_right_password(self, client):
        registered = await register(client)
        response = await client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})
        assert response.status_code == 200
        body = response.json()
        assert body["user"]["id"] == registered["user"]["id"]
        assert body["token"] != registered["token"]
        assert body["refresh"] != registered["refresh"]
        assert await profile_status(client, body["token"]) == 200
        assert await refresh_status(client, body["refresh"]) == 200

    async def test_unknown_email_and_wrong_password_get_the_same_answer(self, client):
        await register(client)
        wrong_password = await client.post(LOGIN, json={"email": "ada@example.com", "password": "wrong password"})
        unknown_email = await client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
        assert wrong_password.status_code == unknown_email.status_code == 401
        assert wrong_password.json() == unknown_email.json()
        assert wrong_password.json()["code"] == "invalid_credentials"

    async def test_sixth_attempt_after_five_failures_is_throttled_even_with_the_right_password(self, client):
        await register(client)
        for _ in range(5):
            failed = await client.post(LOGIN, json={"email": "ada@example.com", "password": "wrong password"})
            assert failed.status_code == 401
        throttled = await client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})
        assert throttled.status_code == 429
        assert throttled.json()["code"] == "too_many_login_attempts"
        assert int(throttled.headers["retry-after"]) >= 1

    async def test_parallel_guesses_cannot_slip_past_the_account_limit(self, client):
        await register(client)
        guess = ("POST", LOGIN, {"json": {"email": "ada@example.com", "password": "wrong password"}})
        statuses = [response.status_code for response in send_concurrently(client, [guess] * 12)]
        assert statuses.count(401) <= 5, statuses
        assert set(statuses) == {401, 429}, statuses
        # From the same source (the concurrent client's address), even the right password waits.
        right = ("POST", LOGIN, {"json": {"email": "ada@example.com", "password": PASSWORD}})
        [throttled] = send_concurrently(client, [right])
        assert throttled.status_code == 429

    async def test_account_throttle_ignores_the_email_case(self, client):
        await register(client)
        for index in range(5):
            email = "ADA@example.com" if index % 2 else "ada@EXAMPLE.com"
            failed = await client.post(LOGIN, json={"email": email, "password": "wrong password"})
            assert failed.status_code == 401
        throttled = await client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})
        assert throttled.status_code == 429

    async def test_a_success_before_the_limit_resets_the_failure_count(self, client):
        await register(client)
        for _ in range(4):
            assert (
                await client.post(LOGIN, json={"email": "ada@example.com", "password": "nope nope"})
            ).status_code == 401
        await login(client)
        for _ in range(4):
            assert (
                await client.post(LOGIN, json={"email": "ada@example.com", "password": "nope nope"})
            ).status_code == 401
        await login(client)

    async def test_failures_over_many_emails_from_one_ip_are_throttled(self, make_client):
        async with make_client(LOGIN_MAX_FAILURES_PER_IP="3") as client:
            await register(client)
            for index in range(3):
                failed = await client.post(LOGIN, json={"email": f"guess{index}@example.com", "password": PASSWORD})
                assert failed.status_code == 401
            throttled = await client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})
            assert throttled.status_code == 429
            assert throttled.json()["code"] == "too_many_login_attempts"
            assert "retry-after" in throttled.headers

    async def test_disabled_account_cannot_sign_in(self, client):
        user = await register(client)
        admin = await make_admin(client)
        disabled = await client.post(f"/api/v1/admin/users/{user['user']['id']}/disable", headers=auth(admin["token"]))
        assert disabled.status_code == 200
        response = await client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})
        assert response.status_code == 403
        assert response.json()["code"] == "account_disabled"

    async def test_disabled_account_with_a_wrong_password_is_told_only_invalid_credentials(self, client):
        user = await register(client)
        admin = await make_admin(client)
        await client.post(f"/api/v1/admin/users/{user['user']['id']}/disable", headers=auth(admin["token"]))
        response = await client.post(LOGIN, json={"email": "ada@example.com", "password": "wrong password"})
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"

    async def test_login_rehashes_a_password_stored_with_weaker_parameters(self, make_client, make_settings):
        async with make_client(ARGON2_TIME_COST="1") as weak:
            await register(weak)
        settings = make_settings()
        assert ",t=1," in await stored_password_hash(settings, "ada@example.com")

        async with make_client(reset=False) as client:
            await login(client)
            rehashed = await stored_password_hash(settings, "ada@example.com")
            assert f",t={settings.auth.argon2_time_cost}," in rehashed
            assert ",t=1," not in rehashed
            await login(client)
        assert await stored_password_hash(settings, "ada@example.com") == rehashed


class TestChangePassword:
    URL = "/api/v1/auth/password"

    async def test_wrong_current_password_is_refused_and_changes_nothing(self, client):
        session = await register(client)
        response = await client.put(
            self.URL,
            json={"current_password": "not my password", "new_password": "brand new secret"},
            headers=auth(session["token"]),
        )
        assert response.status_code == 403
        assert response.json()["code"] == "wrong_password"
        await login(client)
        assert (
            await client.post(LOGIN, json={"email": "ada@example.com", "password": "brand new secret"})
        ).status_code == 401

    async def test_guessing_the_current_password_is_throttled_like_sign_in(self, client):
        session = await register(client)
        wrong = {"current_password": "not my password", "new_password": "brand new secret"}
        for _ in range(5):
            assert (await client.put(self.URL, json=wrong, headers=auth(session["token"]))).status_code == 403
        right = {"current_password": PASSWORD, "new_password": "brand new secret"}
        throttled = await client.put(self.URL, json=right, headers=auth(session["token"]))
        assert throttled.status_code == 429
        assert throttled.json()["code"] == "too_many_login_attempts"
        assert "retry-after" in throttled.headers

    async def test_changing_the_password_does_not_use_up_sign_in_attempts(self, client):
        session = await register(client)
        passwords = [PASSWORD, *(f"new password {index}" for index in range(6))]
        for current, new in pairwise(passwords):
            body = {"current_password": current, "new_password": new}
            assert (await client.put(self.URL, json=body, headers=auth(session["token"]))).status_code == 204
        await login(client, password=passwords[-1])

    async def test_new_password_must_be_8_to_256_characters(self, client):
        session = await register(client)
        response = await client.put(
            self.URL, json={"current_password": PASSWORD, "new_password": "short"}, headers=auth(session["token"])
        )
        assert response.status_code == 422
        assert "new_password" in error_fields(response.json())

    async def test_change_replaces_the_password_and_signs_out_other_devices_only(self, client):
        current = await register(client)
        other = await login(client)
        response = await client.put(
            self.URL,
            json={"current_password": PASSWORD, "new_password": "brand new secret"},
            headers=auth(current["token"]),
        )
        assert response.status_code == 204

        old = await client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})
        assert old.status_code == 401
        await login(client, password="brand new secret")

        assert await profile_status(client, other["token"]) == 401
        assert await refresh_status(client, other["refresh"]) == 401
        assert await profile_status(client, current["token"]) == 200
        assert await refresh_status(client, current["refresh"]) == 200

    async def test_anonymous_cannot_change_a_password(self, client):
        response = await client.put(self.URL, json={"current_password": PASSWORD, "new_password": "brand new secret"})
        assert response.status_code == 401
