"""Every error is an RFC 9457 problem with a stable code; health, readiness and the OpenAPI docs answer."""

from __future__ import annotations

from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from conftest import build_settings
from helpers import auth, register
from reelhouse.app import create_app

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
REGISTER = "/api/v1/auth/register"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["code"] == code
    assert "Traceback" not in response.text
    assert ".py" not in response.text
    return body


class TestProblemDetails:
    async def test_unknown_route_is_a_json_404_problem(self, client):
        body = assert_problem(await client.get("/api/v1/no-such-thing"), 404, "not_found")
        assert body["title"] == "Not Found"
        assert_problem(await client.get("/no-such-page"), 404, "not_found")

    async def test_unknown_route_is_404_for_a_signed_in_user_too(self, client):
        session = await register(client)
        assert_problem(await client.get("/api/v1/users/nothing", headers=auth(session["token"])), 404, "not_found")

    async def test_malformed_json_is_400(self, client):
        response = await client.post(REGISTER, content=b'{"email": "ada@', headers={"content-type": "application/json"})
        assert_problem(response, 400, "malformed_json")

    async def test_oversized_body_is_413(self, make_client):
        async with make_client(REQUEST_MAX_BODY_BYTES="1024") as client:
            body = {"email": "ada@example.com", "password": "correct horse battery", "name": "Ada", "bio": "b" * 2000}
            assert_problem(await client.post(REGISTER, json=body), 413, "payload_too_large")
            small = {"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"}
            assert (await client.post(REGISTER, json=small)).status_code == 201

    async def test_wrong_method_is_405(self, client):
        response = await client.delete("/api/v1/auth/login")
        assert_problem(response, 405, "method_not_allowed")
        assert "POST" in response.headers["allow"]
        assert_problem(await client.put("/health"), 405, "method_not_allowed")

    async def test_invalid_fields_are_422_with_each_field_named(self, client):
        response = await client.post(REGISTER, json={"email": "ada@example.com", "password": "short", "name": "Ada"})
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"] == [{"field": "password", "source": "body", "message": body["errors"][0]["message"]}]
        assert body["errors"][0]["message"]

    async def test_a_missing_field_is_named(self, client):
        response = await client.post(REGISTER, json={"email": "ada@example.com", "password": "correct horse battery"})
        body = assert_problem(response, 422, "validation_error")
        assert [error["field"] for error in body["errors"]] == ["name"]

    async def test_a_body_of_the_wrong_shape_or_none_is_422(self, client):
        for content in (b"[]", b'"text"', b"42", b""):
            response = await client.post(REGISTER, content=content, headers={"content-type": "application/json"})
            body = assert_problem(response, 422, "validation_error")
            assert body["errors"], content

    async def test_invalid_query_parameter_is_422_naming_it(self, client):
        session = await register(client)
        response = await client.get("/api/v1/admin/users?limit=abc", headers=auth(session["token"]))
        assert response.status_code in {403, 422}  # the guard may answer first; either way no 500
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_unauthorized_problem_names_the_bearer_scheme(self, client):
        response = await client.get("/api/v1/users/profile")
        assert_problem(response, 401, "authentication_required")
        assert response.headers["www-authenticate"] == "Bearer"


class TestHealth:
    async def test_health_says_healthy_and_nothing_else(self, client):
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "healthy"}

    async def test_ready_reports_each_dependency(self, client, backend):
        response = await client.get("/ready")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        # "notices": subscribed to the cross-instance messages (Redis pub/sub).
        expected = {"database": "ok", "redis": "ok", "notices": "ok"} if backend == "postgres" else {"database": "ok"}
        assert body["checks"] == expected

    async def test_ready_is_503_naming_what_is_down(self, tmp_path):
        settings = build_settings(
            VAR_DIR=str(tmp_path),
            DATABASE_URL="postgresql://postgres@127.0.0.1:1/unreachable",
            REDIS_URL="redis://127.0.0.1:1/0",
        )
        async with AsyncTestClient(app=create_app(settings)) as client:
            response = await client.get("/ready")
            assert (await client.get("/health")).status_code == 200
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "checks": {"database": "unavailable", "redis": "unavailable", "notices": "unavailable"},
        }
        assert "127.0.0.1" not in response.text


class TestOpenApi:
    async def test_schema_serves_an_interactive_ui(self, client):
        response = await client.get("/schema")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "<html" in response.text.lower()

    async def test_every_operation_has_a_unique_operation_id(self, client):
        response = await client.get("/schema/openapi.json")
        assert response.status_code == 200
        spec = response.json()
        operations = [
            (path, method, operation)
            for path, item in spec["paths"].items()
            for method, operation in item.items()
            if method in {"get", "put", "post", "patch", "delete"}
        ]
        assert len(operations) > 10
        missing = [
            f"{method.upper()} {path}" for path, method, operation in operations if not operation.get("operationId")
        ]
        assert missing == []
        ids = [operation["operationId"] for _, _, operation in operations]
        assert len(ids) == len(set(ids))
        assert {"Register", "Login", "GetProfile", "AdminListUsers", "Health"} <= set(ids)

    async def test_every_documented_handler_names_its_operation_id(self, client):
        """Litestar invents an id from the path when a handler sets none; ours are chosen, stable names."""
        unnamed = [
            f"{sorted(handler.http_methods)} {route.path}"
            for route in client.app.routes
            if isinstance(route, HTTPRoute)
            for handler in route.route_handlers
            if handler.resolve_include_in_schema() and not handler.operation_id
        ]
        assert unnamed == []
