"""Hostile input through HTTP: NUL and other control characters, deep JSON, loose types,
unknown fields. Each is a clear 4xx with a stable code, never a 500, and nothing stored changes."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from catalog_helpers import new_admin, new_user, title_fields
from litestar import get
from litestar.testing import AsyncTestClient
from sqlalchemy import Integer, String, Uuid, bindparam, column, select, text
from sqlalchemy import cast as sql_cast

from conftest import build_settings
from helpers import auth, login, register
from reelhouse.app import create_app
from reelhouse.platform.driver import DriverQuery, driver_transaction

PROFILE = "/api/v1/users/profile"
LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
ADMIN_PLANS = "/api/v1/admin/plans"
PLAN = {
    "name": "Basic",
    "price": 799,
    "validity_days": 30,
    "access_level": "basic",
    "max_devices_allowed": 2,
    "resolution": "1080p",
    "description": "HD on two screens",
}


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert "Traceback" not in response.text
    return body


def invalid_fields(response: Any) -> dict[str, str]:
    """``{field: message}`` of a 422 validation problem."""
    body = problem(response, 422, "validation_error")
    return {error["field"]: error["message"] for error in body["errors"]}


async def create_plan(client, admin_headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(ADMIN_PLANS, json=PLAN, headers=admin_headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class TestControlCharacters:
    async def test_nul_in_a_public_query_parameter_is_422_naming_it(self, client):
        response = await client.get("/api/v1/content?genre=%00")
        assert list(invalid_fields(response)) == ["genre"]
        assert (await client.get("/api/v1/content?q=ab%00c")).status_code == 422

    async def test_nul_in_the_admin_user_search_is_422(self, client):
        admin = await new_admin(client)
        response = await client.get("/api/v1/admin/users?q=%00", headers=admin.headers)
        assert list(invalid_fields(response)) == ["q"]

    async def test_nul_in_profile_fields_is_422_and_changes_nothing(self, client):
        session = await register(client, bio="Before")
        for field in ("bio", "name"):
            response = await client.patch(PROFILE, json={field: "a\u0000b"}, headers=auth(session["token"]))
            assert list(invalid_fields(response)) == [field]
        profile = (await client.get(PROFILE, headers=auth(session["token"]))).json()
        assert (profile["name"], profile["bio"]) == ("Ada", "Before")

    async def test_nul_in_the_device_name_at_sign_in_is_422(self, client):
        await register(client)
        response = await client.post(
            LOGIN, json={"email": "ada@example.com", "password": "correct horse battery", "device_name": "tv\u0000"}
        )
        assert list(invalid_fields(response)) == ["device_name"]

    async def test_nul_in_the_email_at_registration_is_422_not_a_conflict(self, client):
        response = await client.post(
            REGISTER, json={"email": "ada\u0000@example.com", "password": "correct horse battery", "name": "Ada"}
        )
        assert "email" in invalid_fields(response)

    async def test_nul_in_a_plan_name_is_422_and_the_plan_is_unchanged(self, client):
        admin = await new_admin(client)
        plan = await create_plan(client, admin.headers)
        response = await client.patch(f"{ADMIN_PLANS}/{plan['id']}", json={"name": "Pro\u0000"}, headers=admin.headers)
        assert list(invalid_fields(response)) == ["name"]
        assert (await client.get(f"/api/v1/plans/{plan['id']}")).json()["name"] == "Basic"

    @pytest.mark.parametrize(
        "name",
        ["Ada\u202eevil", "Ada\nLovelace", "Ada\tL", "\u2066Ada", "Ada\u0085", "Ada\x7f", "Ada\u2028"],
    )
    async def test_names_refuse_controls_line_breaks_and_bidi_overrides(self, client, name):
        session = await register(client)
        response = await client.patch(PROFILE, json={"name": name}, headers=auth(session["token"]))
        assert list(invalid_fields(response)) == ["name"]

    async def test_free_text_keeps_line_breaks_and_tabs_but_not_nul(self, client):
        session = await register(client)
        response = await client.patch(PROFILE, json={"bio": "Line one\n\tLine two\r\n"}, headers=auth(session["token"]))
        assert response.status_code == 200, response.text
        assert response.json()["bio"] == "Line one\n\tLine two\r\n"
        response = await client.patch(PROFILE, json={"bio": "Line\u202e one"}, headers=auth(session["token"]))
        assert list(invalid_fields(response)) == ["bio"]

    async def test_patterns_refuse_a_trailing_newline(self, client):
        session = await register(client)
        response = await client.patch(PROFILE, json={"phone": "+1 555 1234\n"}, headers=auth(session["token"]))
        assert list(invalid_fields(response)) == ["phone"]
        admin = await new_admin(client)
        response = await client.post(ADMIN_PLANS, json={**PLAN, "currency": "USD\n"}, headers=admin.headers)
        assert list(invalid_fields(response)) == ["currency"]
        response = await client.post(
            "/api/v1/admin/genres", json={"slug": "drama\n", "name": "Drama"}, headers=admin.headers
        )
        assert list(invalid_fields(response)) == ["slug"]

    async def test_control_characters_in_a_path_parameter_are_refused(self, client):
        user = await new_user(client)
        for session_id in ("%00", "a%0Ab", "%E2%80%AE"):
            path = f"/api/v1/playback/sessions/{session_id}"
            problem(await client.delete(path, headers=user.headers), 400, "invalid_path")
        admin = await new_admin(client)
        problem(
            await client.delete("/api/v1/admin/playback/sessions/a%00b", headers=admin.headers), 400, "invalid_path"
        )

    async def test_lone_surrogates_are_refused_as_malformed_json(self, client):
        session = await register(client)
        response = await client.patch(
            PROFILE,
            content=b'{"bio": "a\\ud800b"}',
            headers={**auth(session["token"]), "content-type": "application/json"},
        )
        problem(response, 400, "malformed_json")


class TestDatabaseRefusals:
    async def test_a_value_the_database_refuses_is_400_not_500(self, make_client, backend):
        if backend != "postgres":
            pytest.skip("SQLite stores any text and casts leniently; PostgreSQL refuses (SQLSTATE class 22)")

        @get("/test-only/cast", opt={"exclude_from_auth": True})
        async def cast(value: str) -> dict[str, int]:
            async with app.state.components.db_config.get_engine().connect() as connection:
                statement = text("SELECT CAST(CAST(:value AS text) AS integer)")
                number = await connection.scalar(statement, {"value": value})
            return {"number": int(number)}

        async with make_client() as client:
            app = client.app
            app.register(cast)
            assert (await client.get("/test-only/cast?value=12")).json() == {"number": 12}
            problem(await client.get("/test-only/cast?value=twelve"), 400, "invalid_value")
            problem(await client.get("/test-only/cast?value=99999999999"), 400, "invalid_value")

        @get("/test-only/echo", opt={"exclude_from_auth": True})
        async def echo(value: int) -> dict[str, int]:
            async with app.state.components.db_config.get_engine().connect() as connection:
                number = await connection.scalar(text("SELECT CAST(:value AS integer)"), {"value": value})
            return {"number": int(number)}

        async with make_client() as client:
            app = client.app
            app.register(echo)
            problem(await client.get(f"/test-only/echo?value={2**40}"), 400, "invalid_value")

    async def test_refusals_of_statements_on_the_driver_are_answered_alike(self, postgres_url, tmp_path):
        """platform/driver.py: the driver's own errors are not SQLAlchemy's, yet answer the same."""
        cast = DriverQuery(select(sql_cast(bindparam("value", type_=String), Integer)))
        orphan = DriverQuery(
            text("INSERT INTO watch_history_orphans (content_id) VALUES (:content_id) RETURNING content_id").columns(
                column("content_id", Uuid)
            )
        )

        @get("/test-only/driver-cast", opt={"exclude_from_auth": True})
        async def driver_cast(value: str) -> dict[str, int]:
            async with app.state.components.units.read() as session:
                ((number,),) = await cast.rows(session, {"value": value})
            return {"number": int(number)}

        @get("/test-only/driver-orphan", opt={"exclude_from_auth": True})
        async def driver_orphan() -> dict[str, str]:
            async with app.state.components.units.read() as session, driver_transaction(session) as transaction:
                assert transaction is not None
                await orphan.rows(transaction, {"content_id": uuid.uuid4()})
            return {"stored": "never"}

        admin = await asyncpg.connect(postgres_url)
        await admin.execute("CREATE TABLE watch_history_orphans (content_id uuid NOT NULL REFERENCES contents (id))")
        try:
            settings = build_settings(DATABASE_URL=postgres_url, VAR_DIR=str(tmp_path))
            async with AsyncTestClient(app=create_app(settings)) as client:
                app = client.app
                app.register(driver_cast)
                app.register(driver_orphan)
                assert (await client.get("/test-only/driver-cast?value=12")).json() == {"number": 12}
                problem(await client.get("/test-only/driver-cast?value=twelve"), 400, "invalid_value")
                problem(await client.get("/test-only/driver-orphan"), 409, "conflict")
        finally:
            await admin.execute("DROP TABLE watch_history_orphans")
            await admin.close()


class TestDeepJson:
    async def test_deeply_nested_sign_in_body_is_400_invalid_json(self, client):
        body = b"[" * 1000 + b"]" * 1000
        response = await client.post(LOGIN, content=body, headers={"content-type": "application/json"})
        problem(response, 400, "invalid_json")

    async def test_deep_nesting_inside_an_unknown_field_is_400_invalid_json(self, client):
        session = await register(client)
        for depth in (40, 5000):
            body = b'{"name": "Ada", "extra": ' + b"[" * depth + b"]" * depth + b"}"
            response = await client.patch(
                PROFILE, content=body, headers={**auth(session["token"]), "content-type": "application/json"}
            )
            problem(response, 400, "invalid_json")

    async def test_reasonable_nesting_still_works(self, client):
        admin = await new_admin(client)
        response = await client.post("/api/v1/admin/content", json=title_fields(genres=[]), headers=admin.headers)
        assert response.status_code == 201, response.text


class TestStrictTypes:
    @pytest.mark.parametrize("value", [0, 1, "false", "true", None])
    async def test_booleans_must_be_json_booleans(self, client, value):
        user = await new_user(client)
        response = await client.put(
            "/api/v1/users/notification-preferences", json={"new_releases": value}, headers=user.headers
        )
        if value is None:  # null means "leave as it is" on this route
            assert response.status_code == 200, response.text
        else:
            assert list(invalid_fields(response)) == ["new_releases"]

    async def test_numbers_must_be_json_numbers(self, client):
        admin = await new_admin(client)
        title = (await client.post("/api/v1/admin/content", json=title_fields(), headers=admin.headers)).json()
        user = await new_user(client)
        response = await client.post(
            "/api/v1/watch-history", json={"content_id": title["id"], "watched_seconds": "12"}, headers=user.headers
        )
        assert list(invalid_fields(response)) == ["watched_seconds"]

    async def test_every_invalid_field_of_a_plan_is_reported_at_once(self, client):
        admin = await new_admin(client)
        response = await client.post(
            ADMIN_PLANS,
            json={**PLAN, "is_active": 0, "max_devices_allowed": 2.0, "price": "799", "nmae": "typo"},
            headers=admin.headers,
        )
        errors = invalid_fields(response)
        assert set(errors) == {"is_active", "max_devices_allowed", "price", "nmae"}
        assert errors["nmae"] == "Unknown field."
        assert "bool" in errors["is_active"]
        assert "int" in errors["max_devices_allowed"]
        assert (await client.get("/api/v1/plans")).json()["total"] == 0

    async def test_a_nested_type_error_names_the_element(self, client):
        admin = await new_admin(client)
        response = await client.post(
            "/api/v1/admin/content", json=title_fields(genres=["drama", 7]), headers=admin.headers
        )
        assert list(invalid_fields(response)) == ["genres[1]"]


class TestUnknownFields:
    async def test_a_misspelled_profile_field_is_422_naming_it_and_changes_nothing(self, client):
        session = await register(client)
        response = await client.patch(PROFILE, json={"nmae": "Eve", "bio": "new"}, headers=auth(session["token"]))
        assert invalid_fields(response) == {"nmae": "Unknown field."}
        profile = (await client.get(PROFILE, headers=auth(session["token"]))).json()
        assert (profile["name"], profile["bio"]) == ("Ada", None)

    async def test_an_unknown_content_field_is_422(self, client):
        admin = await new_admin(client)
        response = await client.post(
            "/api/v1/admin/content", json={**title_fields(), "is_published": True}, headers=admin.headers
        )
        assert invalid_fields(response) == {"is_published": "Unknown field."}

    async def test_is_admin_on_registration_stays_ignored(self, client):
        session = await register(client, is_admin=True)
        assert session["user"]["is_admin"] is False
        again = await login(client)
        assert again["user"]["is_admin"] is False
