"""HTTP shape of accounts: parse, call AccountService, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from reelhouse.accounts.auth import CurrentUser, bearer_token, provide_current_user, requires_user
from reelhouse.accounts.profiles import ProfileReader
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

#: Sign-in routes read no access token and share the stricter per-IP "auth" rate limit.
SIGN_IN_ROUTE = {"exclude_from_auth": True, "rate_limit_bucket": "auth"}
UNKNOWN_DEVICE = "Unknown device"


def device_name_of(request: Request[Any, Any, Any], named: str | None) -> str:
    """The name the client gave, else its User-Agent, else a neutral label."""
    name = named or request.headers.get("user-agent") or UNKNOWN_DEVICE
    return name.strip()[:200] or UNKNOWN_DEVICE


def token_pair(sign_in: SignIn) -> TokenPair:
    return TokenPair(
        token=sign_in.access.token,
        refresh=sign_in.refresh_token,
        user=profile_from(sign_in.user),
        expires_in=sign_in.access.expires_in,
    )


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["Auth"]

    @post(
        "/register",
        operation_id="Register",
        status_code=HTTP_201_CREATED,
        opt=SIGN_IN_ROUTE,
        summary="Create an account and sign in",
    )
    async def register(
        self, request: Request[Any, Any, Any], data: Registration, accounts: AccountService
    ) -> TokenPair:
        sign_in = await accounts.register(data, device_name=device_name_of(request, data.device_name))
        return token_pair(sign_in)

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
        client_address: str,
    ) -> TokenPair:
        sign_in = await accounts.login(
            data.email,
            data.password,
            device_name=device_name_of(request, data.device_name),
            client_ip=client_address,
        )
        return token_pair(sign_in)

    @get(
        "/refresh",
        operation_id="RefreshWithBearer",
        opt=SIGN_IN_ROUTE,
        summary="Rotate a refresh token sent as 'Authorization: Bearer <refresh token>'",
    )
    async def refresh_with_bearer(self, request: Request[Any, Any, Any], accounts: AccountService) -> TokenPair:
        token = bearer_token(request)
        if token is None:
            raise InvalidRefreshToken("Send the refresh token as 'Authorization: Bearer <token>'.")
        return token_pair(await accounts.refresh(token))

    @post(
        "/refresh",
        operation_id="Refresh",
        status_code=HTTP_200_OK,
        opt=SIGN_IN_ROUTE,
        summary="Rotate a refresh token sent in the body",
    )
    async def refresh(self, data: RefreshRequest, accounts: AccountService) -> TokenPair:
        return token_pair(await accounts.refresh(data.refresh))

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

    @get("/profile", operation_id="GetProfile", summary="Your profile")
    async def get_profile(self, request: Request[CurrentUser, Any, Any], profiles: ProfileReader) -> Profile:
        # The user read off the request rather than injected: two dependencies would cost a task
        # group per call.
        return await profiles.profile(provide_current_user(request))

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
