"""Access tokens refuse every forgery; refresh tokens rotate, detect replay, and sign-out stops tokens at once."""

from __future__ import annotations

import time
from typing import Any

import jwt

from conftest import TEST_JWT_SECRET
from helpers import auth, login, profile_status, refresh_status, register, send_concurrently

PROFILE = "/api/v1/users/profile"
REFRESH = "/api/v1/auth/refresh"


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a real access token, to forge variants that differ in one way only."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def sign(claims: dict[str, Any], key: str = TEST_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


async def assert_invalid_token(client, token_header: str) -> None:
    response = await client.get(PROFILE, headers={"Authorization": token_header})
    assert response.status_code == 401, (token_header, response.text)
    assert response.json()["code"] == "invalid_token", token_header
    assert response.headers["www-authenticate"] == "Bearer"


class TestAccessTokenForgery:
    async def test_a_token_signed_like_ours_is_accepted(self, client):
        """The control for every forgery below: re-signing the real claims gives a working token."""
        session = await register(client)
        now = int(time.time())
        token = sign({**claims_of(session["token"]), "jti": "re-signed", "iat": now, "exp": now + 600})
        assert await profile_status(client, token) == 200

    async def test_unsigned_alg_none_token_is_refused(self, client):
        session = await register(client)
        token = jwt.encode(claims_of(session["token"]), None, algorithm="none")
        await assert_invalid_token(client, f"Bearer {token}")

    async def test_other_algorithm_with_the_same_secret_is_refused(self, client):
        session = await register(client)
        await assert_invalid_token(client, f"Bearer {sign(claims_of(session['token']), algorithm='HS512')}")

    async def test_token_signed_with_another_key_is_refused(self, client):
        session = await register(client)
        token = sign(claims_of(session["token"]), key="another-secret-that-is-long-enough-for-hs256-000")
        await assert_invalid_token(client, f"Bearer {token}")

    async def test_token_expired_beyond_the_leeway_is_refused(self, client):
        session = await register(client)
        now = int(time.time())
        token = sign({**claims_of(session["token"]), "iat": now - 1000, "exp": now - 120})
        await assert_invalid_token(client, f"Bearer {token}")

    async def test_token_expired_within_the_leeway_still_works(self, client):
        session = await register(client)
        now = int(time.time())
        token = sign({**claims_of(session["token"]), "iat": now - 900, "exp": now - 5})
        assert await profile_status(client, token) == 200

    async def test_token_with_a_foreign_claim_value_is_refused(self, client):
        session = await register(client)
        for claim, value in [("iss", "someone-else"), ("aud", "another-api"), ("typ", "refresh"), ("typ", None)]:
            await assert_invalid_token(client, f"Bearer {sign({**claims_of(session['token']), claim: value})}")

    async def test_token_issued_in_the_future_is_refused(self, client):
        session = await register(client)
        now = int(time.time())
        token = sign({**claims_of(session["token"]), "iat": now + 3600, "exp": now + 4000})
        await assert_invalid_token(client, f"Bearer {token}")

    async def test_correctly_signed_token_with_nonsense_claims_is_refused(self, client):
        session = await register(client)
        nonsense = [
            ("sub", "not-a-uuid"),
            ("sub", "00000000-0000-4000-8000-000000000000"),
            ("fam", "not-a-uuid"),
            ("ver", "one"),
            ("ver", -1),
            ("ver", 1.5),
            ("adm", "yes"),
            ("exp", "tomorrow"),
            ("iat", "yesterday"),
        ]
        for claim, value in nonsense:
            await assert_invalid_token(client, f"Bearer {sign({**claims_of(session['token']), claim: value})}")

    async def test_token_missing_a_required_claim_is_refused(self, client):
        session = await register(client)
        for claim in ["iss", "aud", "sub", "jti", "iat", "exp", "typ", "fam", "ver"]:
            claims = claims_of(session["token"])
            del claims[claim]
            await assert_invalid_token(client, f"Bearer {sign(claims)}")

    async def test_token_naming_another_user_without_the_secret_is_refused(self, client):
        mallory = await register(client, email="mallory@example.com")
        ada = await register(client, email="ada@example.com")
        forged = sign(
            {**claims_of(mallory["token"]), "sub": ada["user"]["id"]}, key="guessed-secret-0123456789-0123456789"
        )
        await assert_invalid_token(client, f"Bearer {forged}")

    async def test_malformed_authorization_header_is_refused(self, client):
        for header in ["Bearer garbage", "Bearer a.b.c", "Bearer ", "Bearer", "Token abc", "Basic YWRhOnBhc3N3b3Jk"]:
            await assert_invalid_token(client, header)

    async def test_basic_credentials_are_refused_even_when_right(self, client):
        await register(client)
        await assert_invalid_token(client, "Basic YWRhQGV4YW1wbGUuY29tOmNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==")

    async def test_refresh_token_is_not_an_access_token(self, client):
        session = await register(client)
        await assert_invalid_token(client, f"Bearer {session['refresh']}")

    async def test_access_token_is_not_a_refresh_token(self, client):
        session = await register(client)
        posted = await client.post(REFRESH, json={"refresh": session["token"]})
        assert posted.status_code == 401
        assert posted.json()["code"] == "invalid_refresh_token"
        bearer = await client.get(REFRESH, headers=auth(session["token"]))
        assert bearer.status_code == 401
        assert bearer.json()["code"] == "invalid_refresh_token"
        assert await refresh_status(client, session["refresh"]) == 200


class TestRefresh:
    async def test_get_with_the_refresh_token_as_bearer_rotates_it(self, client):
        session = await register(client)
        response = await client.get(REFRESH, headers=auth(session["refresh"]))
        assert response.status_code == 200, response.text
        rotated = response.json()
        assert {"token", "refresh", "user"} <= set(rotated)
        assert rotated["refresh"] != session["refresh"]
        assert rotated["user"]["id"] == session["user"]["id"]
        assert await profile_status(client, rotated["token"]) == 200
        spent = await client.get(REFRESH, headers=auth(session["refresh"]))
        assert spent.status_code == 401
        assert spent.json()["code"] == "invalid_refresh_token"

    async def test_post_with_the_refresh_token_in_the_body_rotates_it(self, client):
        session = await register(client)
        response = await client.post(REFRESH, json={"refresh": session["refresh"]})
        assert response.status_code == 200, response.text
        rotated = response.json()
        assert rotated["refresh"] != session["refresh"]
        assert await profile_status(client, rotated["token"]) == 200
        spent = await client.post(REFRESH, json={"refresh": session["refresh"]})
        assert spent.status_code == 401
        assert spent.json()["code"] == "invalid_refresh_token"

    async def test_get_without_a_token_is_refused(self, client):
        response = await client.get(REFRESH)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_refresh_token"

    async def test_unknown_refresh_token_is_refused(self, client):
        response = await client.post(REFRESH, json={"refresh": "never-issued"})
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_refresh_token"

    async def test_replaying_a_rotated_token_revokes_the_whole_family(self, client):
        first = await register(client)
        second = (await client.post(REFRESH, json={"refresh": first["refresh"]})).json()
        third = (await client.post(REFRESH, json={"refresh": second["refresh"]})).json()
        other_device = await login(client)

        replay = await client.post(REFRESH, json={"refresh": first["refresh"]})
        assert replay.status_code == 401
        assert replay.json()["code"] == "invalid_refresh_token"

        assert await refresh_status(client, third["refresh"]) == 401
        for token in (first["token"], second["token"], third["token"]):
            assert await profile_status(client, token) == 401
        assert await profile_status(client, other_device["token"]) == 200
        assert await refresh_status(client, other_device["refresh"]) == 200

    async def test_of_twenty_concurrent_refreshes_with_one_token_exactly_one_succeeds(self, client):
        session = await register(client)
        responses = send_concurrently(client, [("POST", REFRESH, {"json": {"refresh": session["refresh"]}})] * 20)
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] + [401] * 19, statuses


class TestLogout:
    async def test_logout_stops_this_device_at_once_and_leaves_others_signed_in(self, client):
        this_device = await register(client)
        other_device = await login(client)
        response = await client.post("/api/v1/auth/logout", headers=auth(this_device["token"]))
        assert response.status_code == 204

        assert await profile_status(client, this_device["token"]) == 401
        assert await refresh_status(client, this_device["refresh"]) == 401
        assert await profile_status(client, other_device["token"]) == 200
        assert await refresh_status(client, other_device["refresh"]) == 200

    async def test_logout_stops_access_tokens_already_refreshed_from_this_device(self, client):
        first = await register(client)
        rotated = (await client.post(REFRESH, json={"refresh": first["refresh"]})).json()
        assert (await client.post("/api/v1/auth/logout", headers=auth(rotated["token"]))).status_code == 204
        assert await profile_status(client, first["token"]) == 401

    async def test_checks_made_together_each_get_their_own_answer(self, client):
        """Token checks made at the same moment share a round trip: a signed-out token among
        valid ones is still refused, and the valid ones still pass."""
        signed_out = await register(client)
        signed_in = await login(client)
        stranger = await register(client, email="grace@example.com", name="Grace")
        assert (await client.post("/api/v1/auth/logout", headers=auth(signed_out["token"]))).status_code == 204

        tokens = [signed_out["token"], signed_in["token"], stranger["token"]] * 10
        responses = send_concurrently(client, [("GET", PROFILE, {"headers": auth(token)}) for token in tokens])

        expected = [401, 200, 200] * 10
        assert [response.status_code for response in responses] == expected
        names = [response.json()["name"] for response in responses if response.status_code == 200]
        assert names == [signed_in_name for _ in range(10) for signed_in_name in ("Ada", "Grace")]

    async def test_logout_needs_a_signed_in_user(self, client):
        response = await client.post("/api/v1/auth/logout")
        assert response.status_code == 401

    async def test_logout_everywhere_stops_every_token_and_a_new_login_works(self, client):
        devices = [await register(client), await login(client), await login(client)]
        stranger = await register(client, email="grace@example.com", name="Grace")
        response = await client.post("/api/v1/auth/logout-all", headers=auth(devices[1]["token"]))
        assert response.status_code == 204

        for device in devices:
            assert await profile_status(client, device["token"]) == 401
            assert await refresh_status(client, device["refresh"]) == 401
        assert await profile_status(client, stranger["token"]) == 200

        fresh = await login(client)
        assert await profile_status(client, fresh["token"]) == 200
        assert await refresh_status(client, fresh["refresh"]) == 200
