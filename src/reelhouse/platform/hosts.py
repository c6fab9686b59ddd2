"""Which ``Host`` a request may name, and the origin of the absolute URLs we hand out.

The ``Host`` header is the caller's to write. Links built from it (a stream URL, the player's
websocket URL) would point wherever the caller likes, so:

- absolute URLs start with ``PUBLIC_URL`` (required in production);
- without it, with the request's own origin only when its host is vouched for: listed in
  ``ALLOWED_HOSTS``, or a loopback name (``localhost``, ``127.0.0.1``, ``::1``: development);
- otherwise they are relative (``/media/...``), resolved by the client against the address it used.

With ``ALLOWED_HOSTS`` set, a request naming another host is refused (400 ``invalid_host``),
except the health and readiness probes, which orchestrators send to an internal address.
An entry ``*.example.com`` allows every subdomain of ``example.com``.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from reelhouse.platform.errors import DomainError

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import ASGIApp, Receive, Scope, Send

#: Route ``opt`` key of the probes that answer whatever host they are reached by.
ANY_HOST = "any_host"
#: Set in the request's scope state when ``ALLOWED_HOSTS`` vouched for its host.
_VOUCHED = "host_vouched"


class InvalidHost(DomainError):
    status_code = 400
    code = "invalid_host"
    default_detail = "This service does not answer for that host name."


def hostname(host_header: str) -> str:
    """``Host`` without its port, lower-cased (``[::1]:8000`` gives ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: list[str]) -> bool:
    for entry in (item.strip().lower() for item in allowed):
        if entry == host or (entry.startswith("*.") and host.endswith(entry[1:]) and len(host) > len(entry) - 1):
            return True
    return False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _host_header(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return value.decode("latin-1")
    return ""


def public_origin(request: Request[Any, Any, Any], public_url: str) -> str:
    """``scheme://host[:port]`` for absolute URLs, or ``""`` when they must stay relative."""
    if public_url:
        return public_url.rstrip("/")
    vouched = request.scope.get("state", {}).get(_VOUCHED, False)
    if vouched or is_loopback(hostname(_host_header(request.scope))):
        return str(request.base_url).rstrip("/")
    return ""


def websocket_origin(origin: str) -> str:
    """The ``ws``/``wss`` twin of an http(s) origin (``""`` stays relative)."""
    if origin.startswith("https"):
        return "wss" + origin[len("https") :]
    if origin.startswith("http"):
        return "ws" + origin[len("http") :]
    return origin


class HostGuardMiddleware(ASGIMiddleware):
    """With ``ALLOWED_HOSTS`` set, refuses requests that name any other host (400 ``invalid_host``)."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = ANY_HOST

    def __init__(self, allowed_hosts: list[str]) -> None:
        self.allowed_hosts = allowed_hosts

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if self.allowed_hosts:
            if not host_allowed(hostname(_host_header(scope)), self.allowed_hosts):
                raise InvalidHost()
            scope.setdefault("state", {})[_VOUCHED] = True
        await next_app(scope, receive, send)
