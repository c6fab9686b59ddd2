"""The OpenAPI document tells the truth: valid, errors as our problem documents, public routes
public, examples everywhere, and a UI that loads without reaching any other host."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from conftest import Client

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head")
PUBLIC = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("get", "/api/v1/content"),
    ("get", "/api/v1/content/trending"),
    ("get", "/api/v1/genres"),
    ("get", "/health"),
}
#: Public, but an administrator's token shows more (archived plans, unpublished titles).
OPTIONAL_TOKEN = {
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/plans/{plan_id}"),
    ("get", "/api/v1/content/{content_id}"),
}


@pytest.fixture
async def document(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


async def test_the_document_is_a_valid_openapi_document(document):
    validate(document)
    assert len(operations(document)) >= 68


async def test_every_error_is_a_problem_document_with_our_codes(document):
    for method, path, operation in operations(document):
        errors = {status: response for status, response in operation["responses"].items() if int(status) >= 400}
        assert errors or path == "/health", f"{method} {path} documents no error"  # liveness cannot fail
        for status, response in errors.items():
            if (path, status) == ("/ready", "503"):
                continue  # readiness names what is down in its own JSON shape
            content = response["content"]
            assert list(content) == ["application/problem+json"], f"{method} {path} {status}"
            codes = content["application/problem+json"]["schema"]["allOf"][1]["properties"]["code"]["enum"]
            assert codes, f"{method} {path} {status}"
            assert set(content["application/problem+json"]["examples"]) == set(codes)
            assert "status_code" not in str(content), "Litestar's default error shape is never sent"


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/api/v1/auth/register", {"400", "409", "422", "429", "503"}),
        ("post", "/api/v1/admin/plans", {"400", "401", "403", "409", "422", "429", "503"}),
        ("get", "/api/v1/subscriptions/active", {"401", "404", "429", "503"}),
        ("delete", "/api/v1/admin/content/{content_id}", {"401", "403", "404", "429", "503"}),
        ("post", "/api/v1/playback/sessions", {"400", "401", "403", "404", "409", "422", "429", "503"}),
    ],
)
async def test_operations_list_the_errors_they_can_give(document, method, path, statuses):
    assert statuses <= set(document["paths"][path][method]["responses"])


async def test_domain_codes_are_named(document):
    def codes(method: str, path: str, status: str) -> list[str]:
        content = document["paths"][path][method]["responses"][status]["content"]["application/problem+json"]
        return list(content["schema"]["allOf"][1]["properties"]["code"]["enum"])

    assert codes("post", "/api/v1/auth/register", "409") == ["email_taken"]
    assert "invalid_credentials" in codes("post", "/api/v1/auth/login", "401")
    assert "already_subscribed" in codes("post", "/api/v1/subscriptions", "409")
    assert codes("post", "/api/v1/admin/plans", "403") == ["admin_required"]
    assert "too_many_login_attempts" in codes("post", "/api/v1/auth/login", "429")


async def test_public_operations_need_no_token_and_the_rest_say_they_do(document):
    assert "security" not in document, "no global requirement: each operation says who may call it"
    for method, path, operation in operations(document):
        if (method, path) in PUBLIC:
            assert operation["security"] == [], f"{method} {path}"
        elif (method, path) in OPTIONAL_TOKEN:
            assert operation["security"] == [{}, {"BearerToken": []}], f"{method} {path}"
    assert document["paths"]["/api/v1/users/profile"]["get"]["security"] == [{"BearerToken": []}]
    assert document["paths"]["/api/v1/admin/plans"]["post"]["security"] == [{"BearerToken": []}]


async def test_every_request_body_and_json_success_answer_has_an_example(document):
    for method, path, operation in operations(document):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            assert "example" in media, f"{method} {path} request {media_type}"
        for status, response in operation["responses"].items():
            if int(status) < 300:
                for media_type, media in response.get("content", {}).items():
                    if "json" in media_type:
                        assert "example" in media, f"{method} {path} {status}"
    register = document["paths"]["/api/v1/auth/register"]["post"]
    example = register["requestBody"]["content"]["application/json"]["example"]
    assert example["email"] == "ada@example.com"
    assert example["picture"].startswith("/")


async def test_one_title_has_one_unambiguous_schema(document):
    schema = document["paths"]["/api/v1/content/{content_id}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    assert "oneOf" not in schema
    assert "anyOf" not in schema
    detail = resolve(document, schema)
    assert {"video_url", "credits_start_seconds", "published"} <= set(detail["properties"])
    assert "video_url" not in detail.get("required", [])


async def test_the_docs_pages_load_only_from_this_server(client):
    for page in ("/schema", "/schema/swagger"):
        response = await client.get(page)
        assert response.status_code == 200
        sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
        assert sources, page
        for source in sources:
            assert source.startswith("/"), f"{page} loads {source} from elsewhere"
            asset = await client.get(source)
            assert asset.status_code == 200, source
            assert len(asset.content) > 100, source
    script = await client.get("/schema/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in script.text
