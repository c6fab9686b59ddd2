"""Access tokens (JWT) and refresh tokens (opaque, stored hashed).

Access tokens are signed with one pinned algorithm and must carry ``iss``,
``aud``, ``sub``, ``jti``, ``iat``, ``exp`` and ``typ=access``. Refresh tokens
are random strings, never JWTs, so neither kind is accepted where the other goes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from reelhouse.platform.jwt import InvalidToken, JwtSigner

if TYPE_CHECKING:
    from reelhouse.config import AuthSettings

ACCESS_TOKEN_TYPE = "access"  # noqa: S105  (a claim value, not a secret)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    jti: str
    family_id: uuid.UUID
    token_version: int
    expires_at: datetime
    #: The holder was an administrator when the token was issued (see ``TokenStanding.admin_override``).
    is_admin: bool = False

    def seconds_left(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        return max(0, int((self.expires_at - now).total_seconds()) + 1)


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    claims: AccessClaims
    #: Seconds the token is valid for.
    expires_in: int


class AccessTokenCodec:
    """Issues and verifies access tokens; a verified token is remembered until it expires, so a
    player's repeated requests cost one signature check, not one per request."""

    #: Verified tokens kept; past this many the memory starts over (a cache, not a record).
    MAX_REMEMBERED = 20_000

    def __init__(self, settings: AuthSettings) -> None:
        self._signer = JwtSigner(settings, audience=settings.jwt_audience, token_type=ACCESS_TOKEN_TYPE)
        self.ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        self._leeway = settings.jwt_leeway_seconds
        self._verified: dict[str, tuple[float, AccessClaims]] = {}

    def issue(
        self, user_id: uuid.UUID, family_id: uuid.UUID, token_version: int, *, is_admin: bool = False
    ) -> IssuedAccessToken:
        token, jti, expires_at = self._signer.sign(
            str(user_id), self.ttl, fam=str(family_id), ver=token_version, adm=is_admin
        )
        claims = AccessClaims(user_id, jti, family_id, token_version, expires_at, is_admin)
        return IssuedAccessToken(token, claims, int(self.ttl.total_seconds()))

    def decode(self, token: str) -> AccessClaims:
        remembered = self._verified.get(token)
        if remembered is not None:
            if remembered[0] > time.time():
                return remembered[1]
            del self._verified[token]
        claims = self._decode(token)
        if len(self._verified) >= self.MAX_REMEMBERED:
            self._verified.clear()
        self._verified[token] = (claims.expires_at.timestamp() + self._leeway, claims)
        return claims

    def _decode(self, token: str) -> AccessClaims:
        payload = self._signer.verify(token)
        version, is_admin = payload.get("ver"), payload.get("adm", False)
        if type(version) is not int or version < 0 or not isinstance(is_admin, bool):
            raise InvalidToken("bad ver or adm claim")
        try:
            return AccessClaims(
                user_id=uuid.UUID(str(payload["sub"])),
                jti=str(payload["jti"]),
                family_id=uuid.UUID(str(payload["fam"])),
                token_version=version,
                expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
                is_admin=is_admin,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
