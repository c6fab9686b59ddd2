"""Protective response headers on every answer, errors and unknown routes included.

- ``X-Content-Type-Options: nosniff``: a browser never guesses a type other than the one sent;
- ``X-Frame-Options: DENY`` and, on the API, ``Content-Security-Policy: frame-ancestors 'none'``:
  nothing of ours is framed by another site (the API's policy also forbids loading anything,
  which a JSON answer never needs);
- ``Referrer-Policy: no-referrer``: signed stream URLs and unsubscribe links never leak onwards;
- ``Cache-Control: no-store`` on API answers to anything but an anonymous read: tokens from
  sign-in, register and refresh, and every signed-in answer, stay out of shared and browser caches.

A header the handler set itself is kept (media answers choose their own caching).

:func:`add_security_headers` also corrects ``Allow`` on the framework's automatic ``OPTIONS``
answers: when one path's methods come from several handlers, Litestar's answer lists only some
of them (the 405 answer lists them all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar.types import Message, Scope

API_PREFIX = "/api/"
ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
ON_THE_API: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
NO_STORE = (b"cache-control", b"no-store")
_ANONYMOUS_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _is_anonymous_read(scope: Scope) -> bool:
    if scope.get("method") not in _ANONYMOUS_READS:
        return False
    return not any(name == b"authorization" for name, _ in scope.get("headers", []))


def wanted_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The protective headers an answer to this request carries."""
    headers = list(ALWAYS)
    if scope.get("path", "").startswith(API_PREFIX):
        headers.extend(ON_THE_API)
        if not _is_anonymous_read(scope):
            headers.append(NO_STORE)
    return headers


def _every_method_of_the_path(scope: Scope) -> bytes | None:
    handler, app = scope.get("route_handler"), scope.get("litestar_app")
    if handler is None or app is None:
        return None
    methods = {method for path in handler.paths for method in app.route_handler_method_map.get(path, {})}
    return ", ".join(sorted(methods)).encode() if methods else None


async def add_security_headers(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: adds each protective header the answer does not already have."""
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers", []))
    if scope.get("method") == "OPTIONS" and (allow := _every_method_of_the_path(scope)) is not None:
        headers = [(name, allow if name.lower() == b"allow" else value) for name, value in headers]
    present = {name.lower() for name, _ in headers}
    message["headers"] = headers + [(name, value) for name, value in wanted_headers(scope) if name not in present]
