"""The client's address: the socket peer, or what a trusted proxy says in X-Forwarded-For.

``X-Forwarded-For`` is believed only when the peer is one of ``TRUSTED_PROXIES``.
Each proxy appends the address it received the request from, so the list is read
from the right: the first hop that is not one of our proxies is the client, and
anything to its left was written by the client itself and may be forged. A hop
that is not an address (``unknown``, a typo, an injection attempt) ends the walk
and the peer is used instead.

The peer must be the socket's own. An ASGI server may already have replaced it with an address
from ``X-Forwarded-For`` (uvicorn does by default for requests from 127.0.0.1, and for every
request with ``FORWARDED_ALLOW_IPS=*``), and then the address is whatever the caller wrote. That is
recognisable: the "peer" is one of the forwarded hops. Such a request is counted under one shared
key, :data:`UNVERIFIED_CLIENT`, so it cannot choose its own rate-limit key, and a warning says how
to start the server (``--no-proxy-headers``; ``scripts/run``, the container and ``reelhouse run``
already do). The address is then the same whichever way the app was launched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from litestar.types import Scope

logger = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
Networks = Sequence[IPv4Network | IPv6Network]


def parse_address(value: str) -> IPAddress | None:
    """An address from a peer or a forwarded hop, allowing ``1.2.3.4:port`` and ``[::1]:port``."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ip_address(value)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


#: The one rate-limit identity of every request whose peer address the server took from a header.
UNVERIFIED_CLIENT = "unverified-forwarded-client"
_warned_about_server_rewrite = False


def _trusted(address: IPAddress, networks: Networks) -> bool:
    return any(address in network for network in networks)


def _forwarded_hops(scope: Scope) -> list[str]:
    return [
        hop
        for name, value in scope.get("headers", [])
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
        if hop.strip()
    ]


def _rewritten_by_server(peer: IPAddress, hops: list[str]) -> bool:
    global _warned_about_server_rewrite  # noqa: PLW0603  (one warning per process)
    if not any(parse_address(hop) == peer for hop in hops):
        return False
    if not _warned_about_server_rewrite:
        _warned_about_server_rewrite = True
        logger.warning(
            "the server replaced the client address with one from X-Forwarded-For; such requests share one "
            "rate-limit key. Start it with --no-proxy-headers (uvicorn) and list proxies in TRUSTED_PROXIES."
        )
    return True


def client_ip(scope: Scope, trusted_proxies: Networks) -> str:
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    peer_address = parse_address(peer)
    if peer_address is None:
        return peer
    hops = _forwarded_hops(scope)
    if hops and _rewritten_by_server(peer_address, hops):
        return UNVERIFIED_CLIENT
    if not trusted_proxies or not _trusted(peer_address, trusted_proxies):
        return str(peer_address)
    nearest_trusted = peer_address
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return str(peer_address)
        if not _trusted(address, trusted_proxies):
            return str(address)
        nearest_trusted = address
    # Every hop is one of our proxies: the request started at the farthest of them.
    return str(nearest_trusted)
