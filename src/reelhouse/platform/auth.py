"""Who is calling: the access-token middleware, the current user, and the guards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from reelhouse.accounts.tokens import AccessClaims, InvalidToken
from reelhouse.platform.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

    from reelhouse.platform.state import AppServices


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
    email: str
    is_admin: bool
    claims: AccessClaims


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidAccessToken("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


class AccessTokenMiddleware(AbstractAuthenticationMiddleware):
    """Accepts requests without a token (anonymous) and refuses any bad token with 401.

    A token is good when its signature and claims verify, it is not on the
    revocation lists, and its user still exists, is enabled and has not signed
    out everywhere since it was issued.
    """

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = bearer_token(connection)
        if token is None:
            return AuthenticationResult(user=None, auth=None)
        services: AppServices = connection.app.state.services
        try:
            claims = services.token_codec.decode(token)
        except InvalidToken:
            raise InvalidAccessToken() from None
        if await services.backends.revocations.is_revoked(str(claims.user_id), claims.jti, str(claims.family_id)):
            raise InvalidAccessToken()
        subject = await services.token_subject(claims.user_id)
        if subject is None or not subject.is_active or subject.token_version != claims.token_version:
            raise InvalidAccessToken()
        return AuthenticationResult(
            user=CurrentUser(id=claims.user_id, email=subject.email, is_admin=subject.is_admin, claims=claims),
            auth=claims,
        )


def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if connection.scope.get("user") is None:
        raise AuthenticationRequired()


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
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
