"""HTTP shape of accounts: parse, call AccountService, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.di import Provide
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from reelhouse.accounts.schemas import (
    Credentials,
    Device,
    DeviceList,
    PasswordChange,
    Profile,
    ProfilePatch,
    ProfileReplace,
    RefreshRequest,
    Registration,
    TokenPair,
    profile_from,
)
from reelhouse.accounts.services import AccountService, InvalidRefreshToken, SignIn
from reelhouse.platform.auth import CurrentUser, bearer_token, provide_current_user, requires_user
from reelhouse.platform.state import AppServices

#: Sign-in routes read no access token and share the stricter per-IP "auth" rate limit.
SIGN_IN_ROUTE = {"exclude_from_auth": True, "rate_limit_bucket": "auth"}
UNKNOWN_DEVICE = "Unknown device"


def provide_account_service(db_session: AsyncSession, services: AppServices) -> AccountService:
    return AccountService(db_session, services)


def device_name_of(request: Request[Any, Any, Any], named: str | None) -> str:
    """The name the client gave, else its User-Agent, else a neutral label."""
    name = named or request.headers.get("user-agent") or UNKNOWN_DEVICE
    return name.strip()[:200] or UNKNOWN_DEVICE


def token_pair(sign_in: SignIn, services: AppServices) -> TokenPair:
    return TokenPair(
        token=sign_in.access.token,
        refresh=sign_in.refresh_token,
        user=profile_from(sign_in.user),
        expires_in=services.settings.auth.access_token_ttl_seconds,
    )


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["Auth"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @post(
        "/register",
        operation_id="Register",
        status_code=HTTP_201_CREATED,
        opt=SIGN_IN_ROUTE,
        summary="Create an account and sign in",
    )
    async def register(
        self, request: Request[Any, Any, Any], data: Registration, accounts: AccountService, services: AppServices
    ) -> TokenPair:
        sign_in = await accounts.register(data, device_name=device_name_of(request, data.device_name))
        return token_pair(sign_in, services)

    @post(
        "/login",
        operation_id="Login",
        status_code=HTTP_200_OK,
        opt=SIGN_IN_ROUTE,
        summary="Sign in with email and password",
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: Credentials,
        accounts: AccountService,
        services: AppServices,
        client_address: str,
    ) -> TokenPair:
        sign_in = await accounts.login(
            data.email,
            data.password,
            device_name=device_name_of(request, data.device_name),
            client_ip=client_address,
        )
        return token_pair(sign_in, services)

    @get(
        "/refresh",
        operation_id="RefreshWithBearer",
        opt=SIGN_IN_ROUTE,
        summary="Rotate a refresh token sent as 'Authorization: Bearer <refresh token>'",
    )
    async def refresh_with_bearer(
        self, request: Request[Any, Any, Any], accounts: AccountService, services: AppServices
    ) -> TokenPair:
        token = bearer_token(request)
        if token is None:
            raise InvalidRefreshToken("Send the refresh token as 'Authorization: Bearer <token>'.")
        return token_pair(await accounts.refresh(token), services)

    @post(
        "/refresh",
        operation_id="Refresh",
        status_code=HTTP_200_OK,
        opt=SIGN_IN_ROUTE,
        summary="Rotate a refresh token sent in the body",
    )
    async def refresh(self, data: RefreshRequest, accounts: AccountService, services: AppServices) -> TokenPair:
        return token_pair(await accounts.refresh(data.refresh), services)

    @post(
        "/logout",
        operation_id="Logout",
        status_code=HTTP_204_NO_CONTENT,
        guards=[requires_user],
        summary="Sign this device out",
    )
    async def logout(self, current_user: CurrentUser, accounts: AccountService) -> None:
        await accounts.logout(current_user.claims)

    @post(
        "/logout-all",
        operation_id="LogoutEverywhere",
        status_code=HTTP_204_NO_CONTENT,
        guards=[requires_user],
        summary="Sign out on every device",
    )
    async def logout_all(self, current_user: CurrentUser, accounts: AccountService) -> None:
        await accounts.logout_all(current_user.id)

    @put(
        "/password",
        operation_id="ChangePassword",
        status_code=HTTP_204_NO_CONTENT,
        guards=[requires_user],
        summary="Change the password; every other device is signed out",
    )
    async def change_password(self, data: PasswordChange, current_user: CurrentUser, accounts: AccountService) -> None:
        await accounts.change_password(current_user.claims, data.current_password, data.new_password)


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["Profile"]
    guards = [requires_user]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @get("/profile", operation_id="GetProfile", summary="Your profile")
    async def get_profile(self, request: Request[CurrentUser, Any, Any]) -> Profile:
        # Read off the request rather than injected: two dependencies would cost a task group per call.
        current_user = provide_current_user(request)
        services: AppServices = request.app.state.services
        remembered = services.profiles.get(current_user.id, current_user.profile_version)
        if remembered is not None:
            return remembered
        async with services.db_config.get_session() as session:
            profile = profile_from(await AccountService(session, services).profile(current_user.id))
        services.profiles.remember(current_user.id, current_user.profile_version, profile)
        return profile

    @put("/profile", operation_id="ReplaceProfile", summary="Replace your profile")
    async def replace_profile(
        self, data: ProfileReplace, current_user: CurrentUser, accounts: AccountService
    ) -> Profile:
        changes = {"name": data.name, "bio": data.bio, "picture": data.picture, "phone": data.phone}
        return profile_from(await accounts.update_profile(current_user.id, changes))

    @patch("/profile", operation_id="UpdateProfile", summary="Change some profile fields")
    async def update_profile(self, data: ProfilePatch, current_user: CurrentUser, accounts: AccountService) -> Profile:
        return profile_from(await accounts.update_profile(current_user.id, data.changes()))

    @get("/devices", operation_id="ListDevices", summary="Devices signed in to your account")
    async def list_devices(self, current_user: CurrentUser, accounts: AccountService) -> DeviceList:
        families = await accounts.devices(current_user.id)
        devices = [
            Device(
                id=family.id,
                device_name=family.device_name,
                signed_in_at=family.created_at,
                last_used_at=family.last_used_at,
                expires_at=family.expires_at,
                current=family.id == current_user.claims.family_id,
            )
            for family in families
        ]
        return DeviceList(devices=devices, total=len(devices))

    @delete(
        "/devices/{device_id:uuid}",
        operation_id="SignOutDevice",
        status_code=HTTP_204_NO_CONTENT,
        summary="Sign one device out",
    )
    async def sign_out_device(
        self,
        device_id: Annotated[UUID, Parameter(description="A device id from the devices list")],
        current_user: CurrentUser,
        accounts: AccountService,
    ) -> None:
        await accounts.sign_out_device(current_user.id, device_id)
