"""RFC 9457 problem details for every error, each with a stable machine ``code``.

Domain errors live next to the service that raises them and subclass
:class:`DomainError`; the handlers here turn them, and the framework's own
exceptions, into ``application/problem+json`` responses.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, ClassVar

import asyncpg
from advanced_alchemy.exceptions import DuplicateKeyError, IntegrityError, RepositoryError
from advanced_alchemy.exceptions import NotFoundError as RepositoryNotFoundError
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap
from redis.exceptions import RedisClusterException, RedisError
from sqlalchemy.exc import DataError as DatabaseDataError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from reelhouse.platform.links import LINK_PATTERN
from reelhouse.platform.outages import is_database_unavailable

logger = logging.getLogger("reelhouse.errors")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A business rule said no. Subclasses set the status, code and a default detail."""

    status_code: ClassVar[int] = HTTPStatus.BAD_REQUEST
    code: ClassVar[str] = "bad_request"
    default_detail: ClassVar[str] = "The request cannot be processed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra or {}
        self.headers = headers or {}
        super().__init__(self.detail)


class NotFound(DomainError):
    status_code = HTTPStatus.NOT_FOUND
    code = "not_found"
    default_detail = "No such resource."


class Conflict(DomainError):
    status_code = HTTPStatus.CONFLICT
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class Forbidden(DomainError):
    status_code = HTTPStatus.FORBIDDEN
    code = "forbidden"
    default_detail = "You are not allowed to do this."


class Unauthorized(DomainError):
    status_code = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"
    default_detail = "Authentication is required."


class InvalidInput(DomainError):
    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "validation_error"
    default_detail = "The request has invalid fields."


class RateLimited(DomainError):
    status_code = HTTPStatus.TOO_MANY_REQUESTS
    code = "rate_limited"
    default_detail = "Too many requests; try again later."

    def __init__(
        self, retry_after_seconds: int, detail: str | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        retry_after = max(1, retry_after_seconds)
        super().__init__(
            detail,
            headers={**(headers or {}), "Retry-After": str(retry_after)},
            extra={"retry_after": retry_after},
        )


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
    if status == HTTPStatus.UNAUTHORIZED:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem(exc.status_code, exc.code, exc.detail, extra=exc.extra, headers=exc.headers)


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
#: Patterns whose regex would tell a client nothing, said in words instead.
_PATTERN_MESSAGES = {LINK_PATTERN: "Must be a relative path (/images/a.jpg) or an http(s) URL; no other scheme."}


def _field_error(item: dict[str, Any]) -> dict[str, Any]:
    """One framework validation message as ``{field, source, message}``.

    A body error about the object as a whole arrives keyed ``data`` (the handler's
    argument): a missing field is named instead, and other whole-body errors get ``""``.
    """
    field = str(item.get("key") or "")
    raw_source = item.get("source") or "body"
    source = str(getattr(raw_source, "value", raw_source))  # Litestar's ParamType is a str-valued Enum
    message = str(item.get("message") or "invalid value")
    if source == "body" and (field == "data" or field.startswith("data.")):
        field = field.removeprefix("data").removeprefix(".")
    if source == "body" and (missing := _MISSING_FIELD.search(message)):
        field = f"{field}.{missing.group(1)}" if field else missing.group(1)
        message = "This field is required."
    elif source == "body" and not field and message == "'data'":
        message = "A JSON body is required."
    return {"field": field, "source": source, "message": readable_message(message)}


def readable_message(message: str) -> str:
    """A validation message in words where the raw one would only quote a pattern."""
    for pattern, said in _PATTERN_MESSAGES.items():
        # msgspec quotes the pattern, with its backslashes escaped once more by the framework.
        if message.startswith("Expected `str` matching regex") and (
            pattern in message or pattern.replace("\\", "\\\\") in message
        ):
            return said
    return message


def _field_errors(extra: Any) -> list[dict[str, Any]]:
    return [_field_error(item) for item in (extra if isinstance(extra, list) else []) if isinstance(item, dict)]


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    detail = str(exc.detail or "")
    errors = _field_errors(exc.extra)
    if not errors:
        return problem(400, "bad_request", detail or "The request is invalid.")
    return problem(422, "validation_error", "The request has invalid fields.", extra={"errors": errors})


_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if isinstance(exc.__cause__, SerializationException):
        return problem(400, "malformed_json", "The request body is not valid JSON.")
    if status >= 500:
        logger.error("server error: %s", exc.detail)
        return problem(status, "internal_error", "Something went wrong on our side.")
    code = _HTTP_CODES.get(status, "error")
    detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    if isinstance(exc, NotFoundException) and detail.startswith("Not Found"):
        detail = "No such resource."
    if isinstance(exc, NotAuthorizedException) and detail == "Unauthorized":
        detail = "Authentication is required."
    if isinstance(exc, PermissionDeniedException) and detail == "Forbidden":
        detail = "You are not allowed to do this."
    if status == 413:
        detail = "The request body is too large."
    return problem(status, code, detail, headers=exc.headers)


def _repository_not_found(_: Request[Any, Any, Any], __: RepositoryNotFoundError) -> Response[dict[str, Any]]:
    return problem(404, "not_found", "No such resource.")


def _caused_by_unstorable_value(exc: BaseException) -> bool:
    """Whether the database refused a value itself (SQLSTATE class 22: a NUL byte, a number out
    of range, text it cannot encode), somewhere down the chain of wrapped exceptions."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        # asyncpg's own checks of a parameter raise its client-side DataError; the server's
        # refusals carry their SQLSTATE, which SQLAlchemy does not always map to DataError.
        if (
            isinstance(current, DatabaseDataError)
            or str(getattr(current, "sqlstate", "")).startswith("22")
            or (isinstance(current, ValueError) and type(current).__module__.startswith("asyncpg"))
        ):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _unstorable_value(request: Request[Any, Any, Any], exc: BaseException) -> Response[dict[str, Any]]:
    logger.warning("database refused a value on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return problem(400, "invalid_value", "A value in the request cannot be stored or searched for.")


def _database_error(request: Request[Any, Any, Any], exc: RepositoryError | DBAPIError) -> Response[dict[str, Any]]:
    if _caused_by_unstorable_value(exc):
        return _unstorable_value(request, exc)
    return _unexpected(request, exc)


def _integrity_error(
    request: Request[Any, Any, Any], exc: IntegrityError | asyncpg.PostgresError
) -> Response[dict[str, Any]]:
    # advanced-alchemy wraps every statement error, a refused value included, as an IntegrityError.
    if _caused_by_unstorable_value(exc):
        return _unstorable_value(request, exc)
    logger.info("integrity error turned into 409: %s", type(exc).__name__)
    return problem(409, "conflict", "The request conflicts with existing data.")


def _driver_error(request: Request[Any, Any, Any], exc: asyncpg.PostgresError) -> Response[dict[str, Any]]:
    """What PostgreSQL's driver raised itself, for a statement run straight on it (platform/driver.py):
    answered as the same refusal through SQLAlchemy would be."""
    if _caused_by_unstorable_value(exc) or str(getattr(exc, "sqlstate", "")).startswith("23"):
        return _integrity_error(request, exc)  # a refused value (400), or a row it depends on is gone (409)
    return _unexpected(request, exc)


def _backend_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    logger.error("backend unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return problem(
        503,
        "service_unavailable",
        "A backing service is unavailable; try again shortly.",
        headers={"Retry-After": "5"},
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # A database that cannot be reached answers 503 with Retry-After, whatever layer noticed.
    if is_database_unavailable(exc):
        return _backend_unavailable(request, exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal_error", "Something went wrong on our side.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain_error,
    ValidationException: _validation_error,
    HTTPException: _http_exception,
    RepositoryNotFoundError: _repository_not_found,
    DuplicateKeyError: _integrity_error,
    IntegrityError: _integrity_error,
    RepositoryError: _database_error,
    DBAPIError: _database_error,
    asyncpg.PostgresError: _driver_error,
    RedisError: _backend_unavailable,
    RedisClusterException: _backend_unavailable,  # a Redis Cluster that cannot be reached
    PoolTimeout: _backend_unavailable,
    Exception: _unexpected,
}

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_JSON",
    "Conflict",
    "DomainError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "RateLimited",
    "Unauthorized",
    "problem",
]
