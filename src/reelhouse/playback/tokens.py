"""Playback credentials: the websocket's playback token and the signed stream URL.

Both are bound to one stream session. The playback token is a JWT with its own
``typ`` and audience, so it is refused where an access token goes and the
reverse. Stream URLs carry an HMAC over their parameters with a key derived from
(not equal to) the JWT secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from reelhouse.platform.jwt import InvalidToken, JwtSigner

if TYPE_CHECKING:
    from collections.abc import Mapping

    from reelhouse.config import AuthSettings

PLAYBACK_TOKEN_TYPE = "playback"  # noqa: S105  (a claim value, not a secret)


@dataclass(frozen=True, slots=True)
class PlaybackClaims:
    user_id: str
    session_id: str
    device_id: str
    content_id: str
    expires_at: datetime


class PlaybackTokenCodec:
    def __init__(self, settings: AuthSettings, ttl_seconds: int) -> None:
        self._signer = JwtSigner(settings, audience=f"{settings.jwt_audience}/playback", token_type=PLAYBACK_TOKEN_TYPE)
        self.ttl = timedelta(seconds=ttl_seconds)

    def issue(self, *, user_id: str, session_id: str, device_id: str, content_id: str) -> str:
        token, _, _ = self._signer.sign(user_id, self.ttl, sid=session_id, dev=device_id, cid=content_id)
        return token

    def decode(self, token: str) -> PlaybackClaims:
        payload = self._signer.verify(token)
        try:
            return PlaybackClaims(
                user_id=str(payload["sub"]),
                session_id=str(payload["sid"]),
                device_id=str(payload["dev"]),
                content_id=str(payload["cid"]),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from None


class ExpiredStreamUrl(InvalidToken):
    """The signature is right but the URL's time is up."""


@dataclass(frozen=True, slots=True)
class SignedStream:
    user_id: str
    session_id: str
    content_id: str
    max_resolution: str
    #: The media asset the stream started on: it plays that one to the end, even when the title's
    #: media is replaced meanwhile (segment names are only meaningful within one asset).
    media_asset_id: str
    expires: int


class StreamUrlSigner:
    """``?user=&session=&resolution=&media=&expires=&signature=`` on media URLs, checked by the media routes."""

    FIELDS = ("user", "session", "resolution", "media", "expires")

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._key = hashlib.sha256(b"reelhouse stream-url signing\x00" + secret.encode()).digest()
        self.ttl_seconds = ttl_seconds

    def _signature(self, content_id: str, values: Mapping[str, str]) -> str:
        message = "\n".join([content_id, *(values[name] for name in self.FIELDS)])
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def query(self, *, user_id: str, session_id: str, content_id: str, max_resolution: str, media_asset_id: str) -> str:
        values = {
            "user": user_id,
            "session": session_id,
            "resolution": max_resolution,
            "media": media_asset_id,
            "expires": str(int(time.time()) + self.ttl_seconds),
        }
        return urlencode({**values, "signature": self._signature(content_id, values)})

    def verify(self, content_id: str, params: Mapping[str, str]) -> SignedStream:
        """The signed parameters, or :class:`InvalidToken` when forged, altered or expired."""
        try:
            values = {name: params[name] for name in self.FIELDS}
            signature = params["signature"]
            expires = int(values["expires"])
        except (KeyError, ValueError):
            raise InvalidToken("missing or malformed signature parameters") from None
        if not hmac.compare_digest(signature.encode(), self._signature(content_id, values).encode()):
            raise InvalidToken("bad signature")
        if expires < time.time():
            raise ExpiredStreamUrl("expired")
        return SignedStream(
            user_id=values["user"],
            session_id=values["session"],
            content_id=content_id,
            max_resolution=values["resolution"],
            media_asset_id=values["media"],
            expires=expires,
        )
