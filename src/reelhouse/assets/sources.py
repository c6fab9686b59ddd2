"""Fetching a source from a URL, guarded against server-side request forgery.

Only http(s) URLs whose host resolves to public addresses are fetched (unless
``MEDIA_INGEST_ALLOW_PRIVATE``); every redirect is checked the same way before it is followed;
the body is streamed to disk and stopped at ``MAX_UPLOAD_BYTES`` or the time limit. (A host whose
DNS answer changes between the check and the connection is not caught: put the worker behind an
egress proxy where that matters.)
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import anyio
import anyio.to_thread
import httpx

from reelhouse.media import UnsupportedMedia, looks_like_video
from reelhouse.media.probe import SNIFF_BYTES
from reelhouse.platform.errors import DomainError

MAX_REDIRECTS = 5
_DOWNLOAD_CHUNK_BYTES = 1024 * 1024


class SourceUrlNotAllowed(DomainError):
    code = "source_url_not_allowed"
    default_detail = "Media can only be fetched from public http(s) addresses."


class SourceTooLarge(DomainError):
    status_code = 413
    code = "upload_too_large"
    default_detail = "The source is larger than this server accepts."


class SourceUnreachable(DomainError):
    status_code = 502
    code = "source_unreachable"
    default_detail = "The source URL could not be fetched."


def _address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_source_url(url: str, *, allow_private: bool) -> None:
    """Refuse (400 ``source_url_not_allowed``) what is not http(s) or reaches a private address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceUrlNotAllowed("The source must be an http:// or https:// URL.")
    if parts.username or parts.password:
        raise SourceUrlNotAllowed("The source URL may not carry credentials.")
    if allow_private:
        return
    host = parts.hostname
    try:
        infos = await anyio.to_thread.run_sync(
            lambda: socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        )
    except (OSError, UnicodeError):
        raise SourceUrlNotAllowed(f"The host {host} does not resolve.") from None
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(_address_allowed(address) for address in addresses):
        raise SourceUrlNotAllowed(f"The host {host} is not a public address.")


async def download(url: str, destination: Path, *, max_bytes: int, timeout_seconds: float, allow_private: bool) -> Path:
    """Fetch ``url`` into ``destination`` (checked as above at every hop); the first bytes must look like video."""
    try:
        with anyio.fail_after(timeout_seconds):
            async with httpx.AsyncClient(follow_redirects=False, timeout=30.0) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    await check_source_url(url, allow_private=allow_private)
                    async with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code != httpx.codes.OK:
                            raise SourceUnreachable(f"The source answered {response.status_code}.")
                        declared = response.headers.get("content-length")
                        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                            raise SourceTooLarge()
                        await _save(response, destination, max_bytes)
                        return destination
                raise SourceUnreachable("Too many redirects.")
    except TimeoutError:
        raise SourceUnreachable(f"The source took longer than {timeout_seconds:g} s.") from None
    except httpx.HTTPError as error:
        raise SourceUnreachable(f"The source could not be fetched: {type(error).__name__}.") from None


async def _save(response: httpx.Response, destination: Path, max_bytes: int) -> None:
    received = 0
    head = b""
    async with await anyio.open_file(destination, "wb") as file:
        async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK_BYTES):
            received += len(chunk)
            if received > max_bytes:
                raise SourceTooLarge()
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES and not looks_like_video(head):
                    raise UnsupportedMedia("The source is not a video file.")
            await file.write(chunk)
    if len(head) < SNIFF_BYTES and not looks_like_video(head):
        raise UnsupportedMedia("The source is not a video file.")
