"""JWT signing and verification: one pinned algorithm, our issuer, and an audience and ``typ``
per kind of token, so a token of one kind is refused where another kind goes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from reelhouse.config import AuthSettings

REQUIRED_CLAIMS = ["iss", "aud", "sub", "jti", "iat", "exp"]


class InvalidToken(Exception):
    """The token is malformed, forged, expired or of the wrong kind."""


class JwtSigner:
    """Signs and verifies one kind of JWT: one pinned algorithm, our issuer, an audience and a
    ``typ`` of its own, so a token of one kind is refused where another kind goes."""

    def __init__(self, settings: AuthSettings, *, audience: str, token_type: str) -> None:
        self._secret = settings.jwt_secret
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = audience
        self._token_type = token_type
        self._leeway = settings.jwt_leeway_seconds

    def sign(self, subject: str, ttl: timedelta, **claims: Any) -> tuple[str, str, datetime]:
        """The token, its ``jti`` and its expiry."""
        now = datetime.now(UTC).replace(microsecond=0)
        expires_at = now + ttl
        jti = uuid.uuid4().hex
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "jti": jti,
            "iat": now,
            "exp": expires_at,
            "typ": self._token_type,
            **claims,
        }
        return jwt.encode(payload, self._secret, algorithm=self._algorithm), jti, expires_at

    def verify(self, token: str) -> dict[str, Any]:
        """The verified claims, or :class:`InvalidToken`."""
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if payload.get("typ") != self._token_type:
            raise InvalidToken(f"not a {self._token_type} token")
        return payload
