"""The OpenAPI document, told truthfully from the routes themselves, in one place.

Litestar documents each operation's success answer; what it cannot see is how this app fails
and who may call what. :class:`DocumentedOpenAPIPlugin` completes the generated document once,
from each route handler:

- **Errors** as ``application/problem+json`` with our ``code`` values (never Litestar's default
  ``{status_code, detail, extra}``, which we never send): 400/422 where there is a body or a
  parameter, 401 where a token is needed (or a bad one is refused), 403 on admin routes, 404
  where a path names a resource, 429 on rate-limited routes, 503 wherever the database or Redis
  is reached, plus the domain errors listed per operation by the composition root.
- **Security**: guarded operations need the bearer token; public ones say ``security: []``;
  public ones that show more to a signed-in caller (or an administrator) take it optionally.
- **Examples** for every request body and every JSON success answer, built from the schema
  (its own examples first, then what the field's name says it holds).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from litestar._openapi.plugin import OpenAPIPlugin

from reelhouse.platform.errors import PROBLEM_JSON

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.handlers import HTTPRouteHandler
    from litestar.routes import HTTPRoute

    from reelhouse.platform.errors import DomainError

BEARER = "BearerToken"
PROBLEM_SCHEMA = "ProblemDetails"
FIELD_ERROR_SCHEMA = "FieldError"


@dataclass(frozen=True)
class Failure:
    """One way an operation can fail: its status, our ``code`` and an example ``detail``."""

    status: int
    code: str
    detail: str

    @classmethod
    def of(cls, error: type[DomainError]) -> Failure:
        return cls(int(error.status_code), error.code, error.default_detail)


@dataclass(frozen=True)
class Conventions:
    """What the document cannot learn from a handler: the composition root says it."""

    #: Guards that need a signed-in caller, and the subset that also need an administrator.
    user_guards: frozenset[Callable[..., Any]]
    admin_guards: frozenset[Callable[..., Any]]
    #: Domain errors an operation may answer, by operation id.
    failures: Mapping[str, Sequence[Failure]] = field(default_factory=dict)
    #: Operations that read a token themselves (e.g. a refresh token sent as Bearer).
    bearer_without_guard: frozenset[str] = frozenset()
    #: Path prefixes whose operations never touch the database or Redis (no 503).
    no_backend_prefixes: tuple[str, ...] = ()
    #: Responses documented as given, by operation id (those that are not problem documents).
    responses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


GENERIC_FAILURES = {
    "malformed_json": Failure(400, "malformed_json", "The request body is not valid JSON."),
    "invalid_json": Failure(400, "invalid_json", "The request body nests too deeply or is not a JSON document."),
    "invalid_value": Failure(400, "invalid_value", "A value in the request cannot be stored or searched for."),
    "bad_request": Failure(400, "bad_request", "A parameter is missing or invalid."),
    "invalid_path": Failure(400, "invalid_path", "The path holds characters no resource has."),
    "invalid_host": Failure(400, "invalid_host", "The Host header names a host this service does not answer to."),
    "validation_error": Failure(422, "validation_error", "The request has invalid fields."),
    "authentication_required": Failure(401, "authentication_required", "Sign in to do this."),
    "invalid_token": Failure(401, "invalid_token", "The access token is invalid or expired."),
    "admin_required": Failure(403, "admin_required", "Only administrators may do this."),
    "not_found": Failure(404, "not_found", "No such resource."),
    "rate_limited": Failure(429, "rate_limited", "Too many requests; slow down."),
    "service_unavailable": Failure(503, "service_unavailable", "A backing service is unavailable; try again shortly."),
}


class DocumentedOpenAPIPlugin(OpenAPIPlugin):
    """Litestar's OpenAPI plugin, with the document completed by :func:`complete_document`."""

    __slots__ = ()

    def provide_openapi_schema(self) -> dict[str, Any]:
        if not self._openapi_schema:
            schema = copy.deepcopy(self.provide_openapi().to_schema())
            conventions: Conventions = self.app.state[CONVENTIONS_STATE_KEY]
            complete_document(schema, self.included_routes.values(), conventions)
            self._openapi_schema = schema
        return self._openapi_schema


CONVENTIONS_STATE_KEY = "openapi_conventions"


def install(app: Litestar, conventions: Conventions) -> None:
    """Have ``app`` serve the completed document at ``/schema`` (every UI and format).

    Litestar 2 builds its OpenAPI plugin inside ``Litestar()`` and offers no hook after the document
    is generated, so the plugin instance takes on this subclass (pinned to Litestar 2 in pyproject).
    """
    plugin = app.plugins.get(OpenAPIPlugin)
    plugin.__class__ = DocumentedOpenAPIPlugin  # same slots: only the schema provider changes
    app.state[CONVENTIONS_STATE_KEY] = conventions


# --- the document ---------------------------------------------------------------------------


def complete_document(schema: dict[str, Any], routes: Iterable[HTTPRoute], conventions: Conventions) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_problem_schemas())
    schema.pop("security", None)  # each operation says who may call it
    for route in routes:
        path_item = schema.get("paths", {}).get(route.path_format or "/")
        if path_item is None:
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = path_item.get(method.lower())
                if operation is None:
                    continue
                _complete_operation(operation, route.path_format or "/", handler, conventions, schemas)


def _complete_operation(
    operation: dict[str, Any],
    path: str,
    handler: HTTPRouteHandler,
    conventions: Conventions,
    schemas: dict[str, Any],
) -> None:
    guards = set(handler.resolve_guards())
    signature = handler.parsed_fn_signature.parameters
    # A handler that takes the current user refuses anonymous callers even without a guard.
    needs_user = bool(guards & (conventions.user_guards | conventions.admin_guards)) or "current_user" in signature
    needs_admin = bool(guards & conventions.admin_guards)
    operation_id = str(operation.get("operationId", ""))
    optional_user = "optional_user" in signature

    if needs_user or operation_id in conventions.bearer_without_guard:
        operation["security"] = [{BEARER: []}]
    elif optional_user:
        operation["security"] = [{}, {BEARER: []}]
    else:
        operation["security"] = []

    failures = [
        *_route_failures(
            operation,
            path,
            handler,
            needs_user=needs_user,
            needs_admin=needs_admin,
            bearer_without_guard=operation_id in conventions.bearer_without_guard,
        ),
        *conventions.failures.get(operation_id, ()),
    ]
    if not handler.opt.get("exclude_from_rate_limit") and path.startswith("/api/"):
        failures.append(GENERIC_FAILURES["rate_limited"])
    if not path.startswith(conventions.no_backend_prefixes):
        failures.append(GENERIC_FAILURES["service_unavailable"])

    responses: dict[str, Any] = operation.setdefault("responses", {})
    for key in [key for key in responses if key.isdigit() and int(key) >= 400]:
        del responses[key]  # Litestar's own error shapes, which this app never sends
    by_status: dict[int, list[Failure]] = {}
    for failure in failures:
        codes = by_status.setdefault(failure.status, [])
        if failure.code not in {known.code for known in codes}:
            codes.append(failure)
    # Both a specific 404 (plan_not_found: no such plan) and the generic not_found (the path does
    # not name a resource at all, say an id that is not a UUID) can answer.
    for status in sorted(by_status):
        responses[str(status)] = _problem_response(status, by_status[status])
    responses.update(copy.deepcopy(dict(conventions.responses.get(operation_id, {}))))

    _add_examples(operation, schemas)


def _route_failures(
    operation: dict[str, Any],
    path: str,
    handler: HTTPRouteHandler,
    *,
    needs_user: bool,
    needs_admin: bool,
    bearer_without_guard: bool,
) -> list[Failure]:
    """What the route's shape alone says can go wrong: bad input, missing or bad tokens, unknown ids."""
    failures: list[Failure] = [GENERIC_FAILURES["invalid_host"], GENERIC_FAILURES["invalid_value"]]
    if "requestBody" in operation:
        failures += [
            GENERIC_FAILURES["malformed_json"],
            GENERIC_FAILURES["invalid_json"],
            GENERIC_FAILURES["validation_error"],
        ]
    if operation.get("parameters"):
        failures += [GENERIC_FAILURES["bad_request"], GENERIC_FAILURES["validation_error"]]
    if path.startswith("/api/"):
        if needs_user:
            failures.append(GENERIC_FAILURES["authentication_required"])
        if not handler.opt.get("exclude_from_auth") or bearer_without_guard:
            failures.append(GENERIC_FAILURES["invalid_token"])
    if needs_admin:
        failures.append(GENERIC_FAILURES["admin_required"])
    if "{" in path:
        failures += [GENERIC_FAILURES["not_found"], GENERIC_FAILURES["invalid_path"]]
    return failures


def _problem_schemas() -> dict[str, Any]:
    return {
        FIELD_ERROR_SCHEMA: {
            "type": "object",
            "required": ["field", "source", "message"],
            "properties": {
                "field": {"type": "string", "description": "The field, e.g. `email` or `plan.price`"},
                "source": {"type": "string", "description": "body, query, path or header"},
                "message": {"type": "string"},
            },
        },
        PROBLEM_SCHEMA: {
            "type": "object",
            "description": "An RFC 9457 problem document; `code` is stable and meant for programs.",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": {"type": "string", "example": "about:blank"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "code": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {"$ref": f"#/components/schemas/{FIELD_ERROR_SCHEMA}"},
                    "description": "Field validation (422 validation_error)",
                },
                "retry_after": {"type": "integer", "description": "Seconds to wait (429)"},
            },
        },
    }


def _problem_response(status: int, failures: Sequence[Failure]) -> dict[str, Any]:
    codes = [failure.code for failure in failures]
    examples = {}
    for failure in failures:
        value: dict[str, Any] = {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": failure.detail,
            "code": failure.code,
        }
        if failure.code == "validation_error":
            value["errors"] = [{"field": "email", "source": "body", "message": "This field is required."}]
        if status == 429:
            value["retry_after"] = 12
        examples[failure.code] = {"summary": failure.code, "value": value}
    response: dict[str, Any] = {
        "description": f"{HTTPStatus(status).phrase}: " + ", ".join(f"`{code}`" for code in codes),
        "content": {
            PROBLEM_JSON: {
                "schema": {
                    "allOf": [
                        {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"},
                        {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}},
                    ]
                },
                "examples": examples,
            }
        },
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {"description": "Seconds until a retry may pass", "schema": {"type": "integer"}}
        }
    if status == 503:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
    return response


# --- examples ---------------------------------------------------------------------------------

EXAMPLE_ID = "8f14e45f-ceea-4e7a-9d2b-6a1c3e5b7d90"
EXAMPLE_TIME = "2026-11-08T12:21:03Z"
#: What a field holds, by its name: realistic values where the type alone would say "string".
EXAMPLES_BY_NAME: dict[str, Any] = {
    "email": "ada@example.com",
    "password": "correct horse battery",
    "current_password": "correct horse battery",
    "new_password": "a longer passphrase",
    "name": "Ada Lovelace",
    "bio": "Watches documentaries on trains.",
    "phone": "+44 20 7946 0000",
    "picture": "/images/ada.jpg",
    "title": "The Long Voyage",
    "description": "A crew sails around the world in a wooden boat.",
    "slug": "sci-fi",
    "genres": ["drama", "sci-fi"],
    "thumbnail_url": "/posters/the-long-voyage.jpg",
    "trailer_url": "https://cdn.example.com/trailers/the-long-voyage.m3u8",
    "video_url": "/media/the-long-voyage/master.m3u8",
    "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
    "refresh": "PK-9Kl2x7Qm0v3yTtR1bN8sWc4",
    "playback_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzaWQiOiIuLi4ifQ.c2lnbmF0dXJl",
    "token_type": "Bearer",
    "expires_in": 900,
    "message": "done",
    "currency": "USD",
    "price": 1599,
    "validity_days": 30,
    "max_devices_allowed": 4,
    "duration_seconds": 5400,
    "credits_start_seconds": 5220,
    "release_year": 2024,
    "watched_seconds": 1234,
    "total_seconds": 5400,
    "progress_percent": 22.9,
    "position_seconds": 1234.5,
    "resume_position_seconds": 1234,
    "heartbeat_interval_seconds": 15,
    "play_count": 1,
    "device_id": "laptop-1",
    "device_name": "Laptop",
    "stream_url": "http://127.0.0.1:8000/media/8f14e45f-ceea-4e7a-9d2b-6a1c3e5b7d90/manifest.m3u8?sig=...",
    "ws_url": "ws://127.0.0.1:8000/api/v1/playback/ws?token=...",
    "limit": 20,
    "offset": 0,
    "total": 1,
    "is_admin": False,
}
#: The same name means something else in some schemas (a plan's name is not a person's).
EXAMPLES_BY_SCHEMA: dict[str, dict[str, Any]] = {
    "Plan": {"name": "Premium", "description": "Every title in 4K on four screens", "resolution": "4k"},
    "Genre": {"name": "Science fiction"},
    "Health": {"status": "healthy"},
}
MAX_EXAMPLE_DEPTH = 8


def _add_examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    body = operation.get("requestBody", {}).get("content", {})
    answers = [
        response.get("content", {})
        for status, response in operation.get("responses", {}).items()
        if status.isdigit() and 200 <= int(status) < 300
    ]
    for content in [body, *answers]:
        for media_type, media in content.items():
            if "json" not in media_type or "example" in media or "examples" in media or "schema" not in media:
                continue
            media["example"] = example_for(media["schema"], schemas)


def example_for(
    schema: Mapping[str, Any], schemas: Mapping[str, Any], name: str = "", depth: int = 0, component: str = ""
) -> Any:
    """A plausible value for ``schema``: its own example, else one from the field's name and type."""
    if depth > MAX_EXAMPLE_DEPTH:
        return None
    if "$ref" in schema:
        referenced = schema["$ref"].rsplit("/", 1)[-1]
        return example_for(schemas[referenced], schemas, name, depth + 1, referenced)
    if (given := _given_example(schema)) is not _NO_EXAMPLE:
        return given
    for key in ("oneOf", "anyOf", "allOf"):
        options = [option for option in schema.get(key, []) if option.get("type") != "null"]
        if options:
            return example_for(options[0], schemas, name, depth + 1, component)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), None)
    if kind == "object" or "properties" in schema:
        return {
            key: example_for(value, schemas, key, depth + 1, component)
            for key, value in schema.get("properties", {}).items()
        }
    if (by_name := _example_by_name(component, name)) is not _NO_EXAMPLE:
        return by_name
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "array":
        return [example_for(schema.get("items", {}), schemas, name, depth + 1, component)]
    return _scalar_example(schema, kind, name)


_NO_EXAMPLE = object()


def _given_example(schema: Mapping[str, Any]) -> Any:
    if schema.get("examples"):
        return schema["examples"][0]
    for key in ("example", "const", "default"):
        if key in schema:
            return schema[key]
    return _NO_EXAMPLE


def _example_by_name(component: str, name: str) -> Any:
    for prefix, examples in EXAMPLES_BY_SCHEMA.items():
        if component.startswith(prefix) and name in examples:
            return examples[name]
    return EXAMPLES_BY_NAME.get(name, _NO_EXAMPLE)


def _scalar_example(schema: Mapping[str, Any], kind: Any, name: str) -> Any:
    string_format = schema.get("format")
    if kind == "string":
        if string_format == "uuid" or name == "id" or name.endswith("_id"):
            return EXAMPLE_ID
        if string_format == "date-time" or name.endswith("_at") or name.endswith("_date"):
            return EXAMPLE_TIME
        return name.replace("_", " ") or "text"
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    return None
