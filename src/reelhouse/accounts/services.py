"""Account rules: registration, sign-in, refresh rotation, sign-out, profile, devices, admin changes.

Services never commit; the unit of work's boundary does. A detected refresh-token
replay, whose revocation must survive the 401 it causes, is written in a unit of work
of its own; profile and admin changes are announced to other instances (remembered
profiles, tokens already issued) after their unit of work commits. Signing out
everywhere and disabling an account publish events that playback handles (their
streams end in the same unit of work).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from advanced_alchemy.exceptions import DuplicateKeyError
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from reelhouse.accounts.emails import normalize_email
from reelhouse.accounts.events import AccountDisabled as AccountDisabledEvent
from reelhouse.accounts.events import SignedOutEverywhere
from reelhouse.accounts.models import RefreshFamily, RefreshToken, User
from reelhouse.accounts.repositories import SignInRepository, TokenSubject, UserRepository
from reelhouse.accounts.schemas import clean_name
from reelhouse.accounts.tokens import IssuedAccessToken, hash_refresh_token, new_refresh_token
from reelhouse.platform.errors import Conflict, DomainError, Forbidden, NotFound, RateLimited, Unauthorized
from reelhouse.platform.ratelimit import caller_network

if TYPE_CHECKING:
    from collections.abc import Sequence

    from reelhouse.accounts.passwords import PasswordHasher
    from reelhouse.accounts.schemas import Registration
    from reelhouse.accounts.tokens import AccessClaims, AccessTokenCodec
    from reelhouse.config import AuthSettings
    from reelhouse.platform.ratelimit import RateLimiter
    from reelhouse.platform.revocation import RevocationStore
    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory


# --- errors -----------------------------------------------------------------------------------


class EmailTaken(Conflict):
    code = "email_taken"
    default_detail = "An account with this email already exists."


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    default_detail = "The email or password is wrong."


class AccountDisabled(Forbidden):
    code = "account_disabled"
    default_detail = "This account is disabled."


class LoginThrottled(RateLimited):
    code = "too_many_login_attempts"
    default_detail = "Too many failed sign-in attempts; try again later."


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    default_detail = "The refresh token is invalid, expired or revoked."


class WrongPassword(Forbidden):
    code = "wrong_password"
    default_detail = "The current password is wrong."


class CannotChangeSelf(Conflict):
    code = "cannot_change_self"
    default_detail = "Administrators cannot revoke their own admin rights or disable themselves."


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    user: User
    access: IssuedAccessToken
    refresh_token: str


def utcnow() -> datetime:
    return datetime.now(UTC)


class UserService(SQLAlchemyAsyncRepositoryService[User, UserRepository]):
    repository_type = UserRepository


# --- the service ------------------------------------------------------------------------------


class AccountService:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        settings: AuthSettings,
        password_hasher: PasswordHasher,
        token_codec: AccessTokenCodec,
        revocations: RevocationStore,
        rate_limiter: RateLimiter,
        units: UnitOfWorkFactory,
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.users = UserService(session=self.session)
        self._sign_ins = SignInRepository(self.session)
        self._hasher = password_hasher
        self._token_codec = token_codec
        self._revocations = revocations
        self._rate_limiter = rate_limiter
        #: For what must stand even when this unit of work rolls back (a detected token replay).
        self._units = units
        self._auth = settings
        self._refresh_ttl = timedelta(days=self._auth.refresh_token_ttl_days)
        # A revoked access token needs to stay denied only until it would expire anyway.
        self._denylist_ttl = self._auth.access_token_ttl_seconds + self._auth.jwt_leeway_seconds

    # registration and sign-in

    async def register(self, data: Registration, *, device_name: str) -> SignIn:
        email = normalize_email(data.email)
        if await self.users.exists(email=email):
            raise EmailTaken()
        user = User(
            email=email,
            password_hash=await self._hasher.hash(data.password),
            name=clean_name(data.name),
            bio=data.bio,
            phone=data.phone,
            picture=data.picture,
            is_admin=False,
        )
        try:
            user = await self.users.create(user)
        except DuplicateKeyError:
            raise EmailTaken() from None
        return await self._start_sign_in(user, device_name)

    async def login(self, email: str, password: str, *, device_name: str, client_ip: str) -> SignIn:
        email = normalize_email(email)
        auth = self._auth
        source = caller_network(client_ip)
        ip_key = f"login:ip:{source}"
        account_key = f"login:account:{email}"
        await self._throttle(ip_key, auth.login_max_failures_per_ip, consume=False)
        await self._throttle(account_key, auth.login_max_failures_per_account_total, consume=False)
        pair_key = await self._charge_password_attempt(f"login:account:{email}:from:{source}")

        user = await self.users.get_one_or_none(email=email)
        hasher = self._hasher
        if not await hasher.verify(user.password_hash if user else None, password) or user is None:
            window = auth.login_failure_window_seconds
            await self._rate_limiter.hit(ip_key, auth.login_max_failures_per_ip, window)
            await self._rate_limiter.hit(account_key, auth.login_max_failures_per_account_total, window)
            raise InvalidCredentials()
        await self._rate_limiter.reset(pair_key)
        if not user.is_active:
            raise AccountDisabled()
        if hasher.needs_rehash(user.password_hash):
            user.password_hash = await hasher.hash(password)
        user.last_login_at = utcnow()
        return await self._start_sign_in(user, device_name)

    # Password guesses slow down the source that makes them, not the account's owner. Each
    # (account, client network) pair has a small allowance, charged *before* the slow password
    # check so guesses sent in parallel cannot all pass a check none of them has counted yet;
    # the right password clears it. Failures also count against the client network across all
    # accounts and against the account from everywhere, both with much higher ceilings and
    # counted after a failure (many people may share an address): a stranger guessing from
    # elsewhere never locks the owner out, short of a distributed attack past the ceiling.
    # Unknown and known emails are counted alike.

    async def _charge_password_attempt(self, key: str) -> str:
        """Count one password attempt against ``key``, or raise LoginThrottled; returns the key."""
        await self._throttle(key, self._auth.login_max_failures_per_account, consume=True)
        return key

    async def _throttle(self, key: str, limit: int, *, consume: bool) -> None:
        decision = await self._rate_limiter.hit(key, limit, self._auth.login_failure_window_seconds, consume=consume)
        if not decision.allowed:
            raise LoginThrottled(int(decision.retry_after) + 1)

    async def _start_sign_in(self, user: User, device_name: str) -> SignIn:
        now = utcnow()
        family = RefreshFamily(
            id=uuid.uuid4(),
            user_id=user.id,
            device_name=device_name,
            last_used_at=now,
            expires_at=now + self._refresh_ttl,
        )
        self.session.add(family)
        refresh_token = self._add_refresh_token(family.id, family.expires_at)
        await self.session.flush()
        access = self._token_codec.issue(user.id, family.id, user.token_version, is_admin=user.is_admin)
        return SignIn(user=user, access=access, refresh_token=refresh_token)

    def _add_refresh_token(self, family_id: uuid.UUID, expires_at: datetime) -> str:
        token = new_refresh_token()
        self.session.add(RefreshToken(family_id=family_id, token_hash=hash_refresh_token(token), expires_at=expires_at))
        return token

    async def refresh(self, refresh_token: str) -> SignIn:
        """Rotate: the presented token is spent, a new one from the same family comes back.

        Spending is one conditional UPDATE, so of many concurrent uses exactly one wins.
        Presenting an already-spent token means two parties hold it: the family ends.
        """
        digest = hash_refresh_token(refresh_token)
        now = utcnow()
        family_id = await self._sign_ins.spend_token(digest, now)
        if family_id is None:
            await self._handle_unusable_refresh_token(digest)
            raise InvalidRefreshToken()

        family = await self._sign_ins.family(family_id)
        if family is None or family.revoked_at is not None or family.expires_at <= now:
            raise InvalidRefreshToken()
        user = await self.session.get(User, family.user_id)
        if user is None or not user.is_active:
            raise InvalidRefreshToken()
        family.last_used_at = now
        family.expires_at = now + self._refresh_ttl
        new_token = self._add_refresh_token(family.id, family.expires_at)
        await self.session.flush()
        access = self._token_codec.issue(user.id, family.id, user.token_version, is_admin=user.is_admin)
        return SignIn(user=user, access=access, refresh_token=new_token)

    async def _handle_unusable_refresh_token(self, digest: str) -> None:
        known = await self._sign_ins.token(digest)
        if known is None or known.used_at is None:
            return  # unknown or merely expired
        # The 401 that follows rolls this unit of work back, and the revocation must stand:
        # it is written in a unit of work of its own once this one has ended (and released
        # its locks).
        family_id = known.family_id
        self.uow.after_end(lambda: self._revoke_replayed_family(family_id))

    async def _revoke_replayed_family(self, family_id: uuid.UUID) -> None:
        async with self._units.begin() as own:
            family = await SignInRepository(own.session).family(family_id)
            if family is not None and family.revoked_at is None:
                family.revoked_at = utcnow()
                family.revoked_reason = "reuse_detected"
                await self._revocations.revoke_family(str(family.user_id), str(family.id), self._denylist_ttl)

    # sign-out

    async def logout(self, claims: AccessClaims) -> None:
        family = await self._sign_ins.family(claims.family_id)
        if family is not None and family.revoked_at is None:
            await self._revoke_families([family], reason="logout")
        await self._revocations.revoke_token(
            str(claims.user_id), claims.jti, claims.seconds_left() + self._auth.jwt_leeway_seconds
        )

    async def logout_all(self, user_id: uuid.UUID) -> None:
        user = await self.users.get(user_id)
        await self._revoke_access_tokens(user)
        await self._revoke_families(await self._live_families(user_id), reason="logout_all")
        await self.session.flush()
        await self.uow.publish(SignedOutEverywhere(user_id))

    async def _revoke_access_tokens(self, user: User) -> None:
        """Every access token issued to the user so far stops working, at once and everywhere."""
        user.token_version += 1
        await self._revocations.revoke_versions_below(str(user.id), user.token_version, self._denylist_ttl)

    async def change_password(self, claims: AccessClaims, current_password: str, new_password: str) -> None:
        user = await self.users.get(claims.user_id)
        # Only the signed-in user reaches this: a key of its own, apart from sign-in's.
        throttle_key = await self._charge_password_attempt(f"password:user:{user.id}")
        if not await self._hasher.verify(user.password_hash, current_password):
            raise WrongPassword()
        await self._rate_limiter.reset(throttle_key)
        user.password_hash = await self._hasher.hash(new_password)
        others = [f for f in await self._live_families(user.id) if f.id != claims.family_id]
        await self._revoke_families(others, reason="password_changed")
        await self.session.flush()

    async def _live_families(self, user_id: uuid.UUID) -> Sequence[RefreshFamily]:
        return await self._sign_ins.live_families(user_id)

    async def _revoke_families(self, families: Sequence[RefreshFamily], *, reason: str) -> None:
        now = utcnow()
        for family in families:
            family.revoked_at = now
            family.revoked_reason = reason
            await self._revocations.revoke_family(str(family.user_id), str(family.id), self._denylist_ttl)
        await self.session.flush()

    # profile and devices

    async def profile(self, user_id: uuid.UUID) -> User:
        return await self.users.get(user_id)

    async def update_profile(self, user_id: uuid.UUID, changes: dict[str, Any]) -> User:
        user = await self.users.get(user_id)
        for field in ("name", "bio", "picture", "phone"):
            if field in changes:
                value = changes[field]
                setattr(user, field, clean_name(value) if field == "name" else value)
        await self.session.flush()
        await self.session.refresh(user)
        self._profile_changed(user)
        return user

    def _profile_changed(self, user: User) -> None:
        """Once committed, tell every instance that remembered profiles of the user are out of date."""
        user_id = str(user.id)
        self.uow.after_commit(lambda: self._revocations.bump_profile_version(user_id))

    async def devices(self, user_id: uuid.UUID) -> Sequence[RefreshFamily]:
        return await self._live_families(user_id)

    async def sign_out_device(self, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        family = await self._sign_ins.family(family_id)
        if family is None or family.user_id != user_id or family.revoked_at is not None:
            raise NotFound("No such device.")
        await self._revoke_families([family], reason="device_signed_out")

    # administration

    async def list_users(
        self, *, query: str | None, is_admin: bool | None, is_active: bool | None, limit: int, offset: int
    ) -> tuple[Sequence[User], int]:
        return await self.users.repository.search(
            query=query, is_admin=is_admin, is_active=is_active, limit=limit, offset=offset
        )

    async def get_user(self, user_id: uuid.UUID) -> User:
        user = await self.users.get_one_or_none(id=user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

    async def set_admin(self, actor_id: uuid.UUID, user_id: uuid.UUID, *, is_admin: bool) -> User:
        user = await self.get_user(user_id)
        if user.id == actor_id and not is_admin:
            raise CannotChangeSelf()
        user.is_admin = is_admin
        await self._apply_admin_flag(user)
        return user

    async def _apply_admin_flag(self, user: User) -> None:
        """Make a changed admin flag hold for the user's tokens already issued. Taking admin away is
        recorded before the change commits (a failure leaves less access, never more); granting it
        only once the change has committed."""
        revocations, user_id, is_admin = self._revocations, str(user.id), user.is_admin
        if not is_admin:
            await revocations.override_admin(user_id, False, self._denylist_ttl)
        self._profile_changed(user)
        self.uow.after_commit(lambda: revocations.override_admin(user_id, is_admin, self._denylist_ttl))

    async def set_active(self, actor_id: uuid.UUID, user_id: uuid.UUID, *, is_active: bool) -> User:
        user = await self.get_user(user_id)
        if user.id == actor_id and not is_active:
            raise CannotChangeSelf()
        user.is_active = is_active
        if not is_active:
            # Access tokens stop at once; refreshes and streams stop too.
            await self._revoke_access_tokens(user)
            await self._revoke_families(await self._live_families(user.id), reason="account_disabled")
            await self.session.flush()
            await self.uow.publish(AccountDisabledEvent(user.id))
        await self.session.flush()
        return user

    async def ensure_admin(self, email: str, password: str, *, name: str = "Administrator") -> tuple[User, bool]:
        """Create the admin, or make an existing account admin with this password. True when created."""
        email = normalize_email(email)
        hasher = self._hasher
        user = await self.users.get_one_or_none(email=email)
        if user is None:
            user = await self.users.create(
                User(email=email, password_hash=await hasher.hash(password), name=name, is_admin=True)
            )
            return user, True
        user.is_active = True
        if not await hasher.verify(user.password_hash, password):
            user.password_hash = await hasher.hash(password)
        if not user.is_admin:
            user.is_admin = True
            await self._apply_admin_flag(user)
        await self.session.flush()
        return user, False


__all__ = [
    "AccountDisabled",
    "AccountService",
    "CannotChangeSelf",
    "DomainError",
    "EmailTaken",
    "InvalidCredentials",
    "InvalidRefreshToken",
    "LoginThrottled",
    "SignIn",
    "TokenSubject",
    "WrongPassword",
    "normalize_email",
]
