"""Who is calling: the access-token middleware, the current user, and the guards.

Every domain's controllers guard their routes with :func:`requires_user` and
:func:`requires_admin` from here; accounts is the lowest domain, so any may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from reelhouse.accounts.tokens import AccessClaims
from reelhouse.platform.batching import GroupCommit
from reelhouse.platform.errors import Forbidden, Unauthorized
from reelhouse.platform.jwt import InvalidToken
from reelhouse.platform.revocation import StandingCheck

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp

    from reelhouse.accounts.repositories import KnownUsers
    from reelhouse.accounts.tokens import AccessTokenCodec
    from reelhouse.platform.revocation import RevocationStore, TokenStanding


class InvalidAccessToken(Unauthorized):
    code = "invalid_token"
    default_detail = "The access token is invalid, expired or revoked."


class AuthenticationRequired(Unauthorized):
    code = "authentication_required"
    default_detail = "Sign in to do this."


class AdminRequired(Forbidden):
    code = "admin_required"
    default_detail = "Only administrators may do this."


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: UUID
    is_admin: bool
    claims: AccessClaims
    #: Tells whether a remembered copy of the user's profile is still current.
    profile_version: int = 0


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidAccessToken("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


class AccessTokenAuthenticator:
    """Turns a bearer access token into the :class:`CurrentUser`, or refuses it.

    A token is good when its signature and claims verify and the revocation store does not
    refuse it (signed out, device signed out, signed out everywhere or account disabled since
    it was issued). Its admin flag is the token's own unless it changed since. One round trip
    to the revocation store, shared by the requests checked at the same moment (a group
    commit: while one batch of checks is on its way, the next gathers); the database only the
    first time an instance sees a user (accounts are never deleted, so that answer is kept).
    """

    #: Token checks per round trip at most (a pipeline of ``MGET``s).
    MAX_CHECKS_PER_ROUND_TRIP = 256

    def __init__(self, codec: AccessTokenCodec, revocations: RevocationStore, known_users: KnownUsers) -> None:
        self._codec = codec
        self._standings: GroupCommit[StandingCheck, TokenStanding] = GroupCommit(
            revocations.standings, self.MAX_CHECKS_PER_ROUND_TRIP
        )
        self._known_users = known_users

    def user_of(self, token: str) -> str | None:
        """The user a token names when its signature verifies (no revocation check): what the
        rate limiter keys a signed-in caller by."""
        try:
            return str(self._codec.decode(token).user_id)
        except InvalidToken:
            return None

    async def authenticate(self, token: str) -> CurrentUser:
        try:
            claims = self._codec.decode(token)
        except InvalidToken:
            raise InvalidAccessToken() from None
        standing = await self._standings.submit(
            StandingCheck(str(claims.user_id), claims.jti, str(claims.family_id), claims.token_version)
        )
        if standing.revoked or not await self._known_users.exists(claims.user_id):
            raise InvalidAccessToken()
        is_admin = claims.is_admin if standing.admin_override is None else standing.admin_override
        return CurrentUser(
            id=claims.user_id, is_admin=is_admin, claims=claims, profile_version=standing.profile_version
        )


class AccessTokenMiddleware(AbstractAuthenticationMiddleware):
    """Accepts requests without a token (anonymous) and refuses any bad token with 401."""

    def __init__(self, app: ASGIApp, *, authenticator: AccessTokenAuthenticator, **options: Any) -> None:
        super().__init__(app, **options)
        self._authenticator = authenticator

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = bearer_token(connection)
        if token is None:
            return AuthenticationResult(user=None, auth=None)
        user = await self._authenticator.authenticate(token)
        return AuthenticationResult(user=user, auth=user.claims)


# Guards are coroutines: the framework runs a plain function guard in a worker thread.
async def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if connection.scope.get("user") is None:
        raise AuthenticationRequired()


async def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = connection.scope.get("user")
    if user is None:
        raise AuthenticationRequired()
    if not user.is_admin:
        raise AdminRequired()


def provide_current_user(request: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser:
    user = request.scope.get("user")
    if user is None:
        raise AuthenticationRequired()
    return user  # type: ignore[no-any-return]


def provide_optional_user(request: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    user: CurrentUser | None = request.scope.get("user")
    return user
