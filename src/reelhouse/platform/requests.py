"""Strict request input: JSON bodies decoded without coercion, text without control characters.

Litestar converts a request body into the handler's ``data`` type leniently (``"false"`` and
``0`` become ``False``, ``"12"`` becomes ``12``, unknown fields vanish). :class:`ReelhouseRequest`
checks the body first, so what reaches a handler is exactly what the client sent:

- JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused (400 ``invalid_json``) before the
  decoder's own recursion can fail;
- every field is validated with JSON's own types (no string to number or number to bool), and
  every invalid field is reported at once (422 ``validation_error``, one entry per field);
- a field the schema does not know is refused by name, unless the schema lists it in
  ``ignored_fields`` (fields old clients send and we deliberately do not apply);
- text holds no control characters, no bidirectional overrides and no lone surrogates; tabs and
  line breaks only in fields whose type says so (:data:`LINE_BREAKS_ALLOWED`).

:class:`InputGuardMiddleware` applies the text rule to the path and the query string, where
strings go straight into SQL (``?genre=%00`` once reached PostgreSQL, which refuses NUL).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.serialization import decode_json
from litestar.types import Empty

from reelhouse.platform.errors import DomainError, InvalidInput, readable_message

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

#: Route ``opt`` key of handlers that check their own path and query (no string reaches a database).
OWN_INPUT_CHECKS = "own_input_checks"

#: Deeper JSON is refused: no request schema nests more than a few levels.
MAX_JSON_DEPTH = 32

#: ``Meta(extra=LINE_BREAKS_ALLOWED)`` marks free text (a bio, a description) that may hold
#: tabs and line breaks; every other string is a single line.
LINE_BREAKS_ALLOWED: dict[str, Any] = {"line_breaks": True}

# C0 and C1 controls and DEL (tab, LF and CR are judged separately), bidirectional embeddings,
# overrides and isolates (they make text display as something else), the Unicode line and
# paragraph separators, a byte-order mark, interlinear annotations and lone surrogates
# (which no database can store).
_NEVER_IN_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_LINE_BREAKS = re.compile("[\t\n\r]")


class InvalidJson(DomainError):
    status_code = 400
    code = "invalid_json"
    default_detail = "The request body is not acceptable JSON."


def text_problem(value: str, *, line_breaks: bool = False) -> str | None:
    """Why ``value`` is not acceptable text, or ``None`` when it is."""
    if _NEVER_IN_TEXT.search(value):
        return "Control and bidirectional formatting characters are not allowed."
    if not line_breaks and _LINE_BREAKS.search(value):
        return "Tabs and line breaks are not allowed in this field."
    return None


def field_error(field: str, message: str, source: str = "body") -> dict[str, str]:
    return {"field": field, "source": source, "message": message}


# --- the body ---------------------------------------------------------------------------------


def _check_depth(value: Any) -> None:
    """Walk the decoded body without recursion; refuse it when it nests too deeply."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidJson(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _allows_line_breaks(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.Metadata):
        return bool((info.extra or {}).get("line_breaks")) or _allows_line_breaks(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_allows_line_breaks(member) for member in info.types)
    return False


def _text_errors(value: Any, path: str, *, line_breaks: bool) -> list[dict[str, str]]:
    """Every string (keys included) below ``value`` that breaks the text rule."""
    errors: list[dict[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if (problem := text_problem(item, line_breaks=line_breaks)) is not None:
                errors.append(field_error(where, problem))
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, where))
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return sorted(errors, key=lambda error: error["field"])


_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _validation_error(exc: msgspec.ValidationError, field: str) -> dict[str, str]:
    """A msgspec message (``Expected `int`, got `str` - at `$[2]```) as one field error."""
    message = str(exc)
    if match := _AT_PATH.search(message):
        message = message[: match.start()]
        path = match.group("path")
        field = f"{field}{path}" if path.startswith("[") else f"{field}{path}".lstrip(".")
    return field_error(field, readable_message(message))


@dataclass(frozen=True, slots=True)
class _FieldRule:
    name: str
    required: bool
    line_breaks: bool
    annotation: Any


@functools.cache
def _struct_rules(struct: type[msgspec.Struct]) -> tuple[tuple[_FieldRule, ...], frozenset[str]]:
    """What the checks need of a body type, worked out once per type (inspecting a type costs far
    more than checking a body)."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    annotations = {field.name: field.type for field in msgspec.structs.fields(struct)}
    rules = tuple(
        _FieldRule(field.encode_name, field.required, _allows_line_breaks(field.type), annotations[field.name])
        for field in info.fields
    )
    ignored: frozenset[str] = getattr(struct, "ignored_fields", frozenset())
    return rules, frozenset(rule.name for rule in rules) | ignored


def _struct_errors(value: Any, struct: type[msgspec.Struct]) -> list[dict[str, str]]:
    if not isinstance(value, dict):
        return [field_error("", "A JSON object is required.")]
    errors: list[dict[str, str]] = []
    rules, allowed = _struct_rules(struct)
    for rule in rules:
        if rule.name not in value:
            if rule.required:
                errors.append(field_error(rule.name, "This field is required."))
            continue
        raw = value[rule.name]
        text_errors = _text_errors(raw, rule.name, line_breaks=rule.line_breaks)
        if text_errors:
            errors.extend(text_errors)
            continue
        try:
            msgspec.convert(raw, rule.annotation, strict=True)
        except msgspec.ValidationError as exc:
            errors.append(_validation_error(exc, rule.name))
    errors.extend(field_error(str(name), "Unknown field.") for name in value if name not in allowed)
    return errors


def body_errors(value: Any, annotation: Any) -> list[dict[str, str]]:
    """Every problem of a decoded JSON body against the handler's ``data`` type; empty when valid."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return _struct_errors(value, annotation)
    errors = _text_errors(value, "", line_breaks=False)
    if errors:
        return errors
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError as exc:
        return [_validation_error(exc, "")]
    return []


def checked_json(body: bytes, annotation: Any, type_decoders: Any = None) -> Any:
    """The decoded body after every check; raises a 400 or 422 problem otherwise."""
    try:
        value = decode_json(body, type_decoders=type_decoders)
    except RecursionError:
        raise InvalidJson(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    _check_depth(value)
    if annotation is not None and (errors := body_errors(value, annotation)):
        raise InvalidInput(extra={"errors": errors})
    return value


class ReelhouseRequest(Request[Any, Any, Any]):
    """The app's request class: :meth:`json` returns a body that passed :func:`checked_json`."""

    async def json(self) -> Any:
        if self._json is Empty:
            if (cached := self._connection_state.json) is not Empty:
                self._json = cached
            else:
                body = await self.body()
                data_field = self.route_handler.parsed_data_field
                annotation = data_field.annotation if data_field is not None else None
                self._json = self._connection_state.json = checked_json(
                    body or b"null", annotation, type_decoders=self.route_handler.resolve_type_decoders()
                )
        return self._json


# --- the path and the query string -------------------------------------------------------------


class InputGuardMiddleware(ASGIMiddleware):
    """Refuses control characters in the path (400) and in query parameters (422, naming them).

    Routes whose ``opt`` sets :data:`OWN_INPUT_CHECKS` judge their raw path and query themselves
    (signed media URLs: anything unsigned is their 403, any other name their 404).
    """

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = OWN_INPUT_CHECKS

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if text_problem(scope.get("path", "")) is not None:  # the server has percent-decoded it
            raise BadPath()
        if raw_query := scope.get("query_string", b""):
            errors = query_errors(raw_query)
            if errors:
                raise InvalidInput(extra={"errors": errors})
        await next_app(scope, receive, send)


class BadPath(DomainError):
    status_code = 400
    code = "invalid_path"
    default_detail = "The path holds control characters."


def query_errors(raw_query: bytes) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    pairs = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
    for name, value in pairs:
        shown = name if text_problem(name) is None else repr(name)
        for text in (name, value):
            if (problem := text_problem(text)) is not None:
                errors.append(field_error(shown, problem, "query"))
                break
    return errors


__all__ = [
    "LINE_BREAKS_ALLOWED",
    "MAX_JSON_DEPTH",
    "OWN_INPUT_CHECKS",
    "InputGuardMiddleware",
    "InvalidJson",
    "ReelhouseRequest",
    "body_errors",
    "checked_json",
    "text_problem",
]
