"""Access tokens (JWT) and refresh tokens (opaque, stored hashed).

Access tokens are signed with one pinned algorithm and must carry ``iss``,
``aud``, ``sub``, ``jti``, ``iat``, ``exp`` and ``typ=access``. Refresh tokens
are random strings, never JWTs, so neither kind is accepted where the other goes.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from reelhouse.config import AuthSettings

ACCESS_TOKEN_TYPE = "access"  # noqa: S105  (a claim value, not a secret)
REQUIRED_CLAIMS = ["iss", "aud", "sub", "jti", "iat", "exp"]


class InvalidToken(Exception):
    """The token is malformed, forged, expired or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    jti: str
    family_id: uuid.UUID
    token_version: int
    expires_at: datetime

    def seconds_left(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        return max(0, int((self.expires_at - now).total_seconds()) + 1)


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    claims: AccessClaims


class AccessTokenCodec:
    def __init__(self, settings: AuthSettings) -> None:
        self._secret = settings.jwt_secret
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self.ttl = timedelta(seconds=settings.access_token_ttl_seconds)

    def issue(self, user_id: uuid.UUID, family_id: uuid.UUID, token_version: int) -> IssuedAccessToken:
        now = datetime.now(UTC).replace(microsecond=0)
        expires_at = now + self.ttl
        jti = uuid.uuid4().hex
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "jti": jti,
            "iat": now,
            "exp": expires_at,
            "typ": ACCESS_TOKEN_TYPE,
            "fam": str(family_id),
            "ver": token_version,
        }
        token = jwt.encode(payload, self._secret, algorithm=self._algorithm)
        return IssuedAccessToken(token, AccessClaims(user_id, jti, family_id, token_version, expires_at))

    def decode(self, token: str) -> AccessClaims:
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
            if payload.get("typ") != ACCESS_TOKEN_TYPE:
                raise InvalidToken("not an access token")
            return AccessClaims(
                user_id=uuid.UUID(str(payload["sub"])),
                jti=str(payload["jti"]),
                family_id=uuid.UUID(str(payload["fam"])),
                token_version=int(payload["ver"]),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
