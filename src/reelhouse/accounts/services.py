"""Account rules: registration, sign-in, refresh rotation, sign-out, profile, devices, admin changes.

Services never commit; the request boundary does. The exceptions: a detected
refresh-token replay, whose revocation must survive the 401 it causes, and profile
and admin changes, which are announced to other instances (remembered profiles,
tokens already issued) only once they have committed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from advanced_alchemy.exceptions import DuplicateKeyError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, or_, select, update

from reelhouse.accounts.models import RefreshFamily, RefreshToken, User
from reelhouse.accounts.schemas import clean_name
from reelhouse.accounts.tokens import IssuedAccessToken, hash_refresh_token, new_refresh_token
from reelhouse.platform.errors import Conflict, DomainError, Forbidden, NotFound, RateLimited, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

    from reelhouse.accounts.schemas import Registration
    from reelhouse.accounts.tokens import AccessClaims
    from reelhouse.platform.state import AppServices


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


class TokenSubject(NamedTuple):
    email: str
    is_admin: bool
    is_active: bool
    token_version: int


@dataclass(frozen=True, slots=True)
class SignIn:
    user: User
    access: IssuedAccessToken
    refresh_token: str


def normalize_email(email: str) -> str:
    return email.strip().lower()


def utcnow() -> datetime:
    return datetime.now(UTC)


async def load_token_subject(session: AsyncSession, user_id: uuid.UUID) -> TokenSubject | None:
    row = (
        await session.execute(
            select(User.email, User.is_admin, User.is_active, User.token_version).where(User.id == user_id)
        )
    ).one_or_none()
    return None if row is None else TokenSubject(*row)


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User


class UserService(SQLAlchemyAsyncRepositoryService[User, UserRepository]):
    repository_type = UserRepository


# --- the service ------------------------------------------------------------------------------


class AccountService:
    def __init__(self, session: AsyncSession, app: AppServices) -> None:
        self.session = session
        self.users = UserService(session=session)
        self._app = app
        self._auth = app.settings.auth
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
            password_hash=await self._app.password_hasher.hash(data.password),
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
        ip_key, ip_limit = f"login:ip:{client_ip}", self._auth.login_max_failures_per_ip
        await self._throttle(ip_key, ip_limit, consume=False)
        account_key = await self._charge_password_attempt(email)

        user = await self.users.get_one_or_none(email=email)
        hasher = self._app.password_hasher
        if not await hasher.verify(user.password_hash if user else None, password) or user is None:
            await self._app.backends.rate_limiter.hit(ip_key, ip_limit, self._auth.login_failure_window_seconds)
            raise InvalidCredentials()
        await self._app.backends.rate_limiter.reset(account_key)
        if not user.is_active:
            raise AccountDisabled()
        if hasher.needs_rehash(user.password_hash):
            user.password_hash = await hasher.hash(password)
        user.last_login_at = utcnow()
        return await self._start_sign_in(user, device_name)

    # Password guesses are limited per account and per client IP. An account's attempt is
    # charged *before* the slow password check, so guesses sent in parallel cannot all pass
    # a check none of them has counted yet; the right password clears the count. The per-IP
    # limit counts failures only (many people may share one address): checked first,
    # charged after a failure.

    async def _charge_password_attempt(self, email: str) -> str:
        """Count one password attempt against the account, or raise LoginThrottled; returns the key."""
        key = f"login:account:{email}"
        await self._throttle(key, self._auth.login_max_failures_per_account, consume=True)
        return key

    async def _throttle(self, key: str, limit: int, *, consume: bool) -> None:
        decision = await self._app.backends.rate_limiter.hit(
            key, limit, self._auth.login_failure_window_seconds, consume=consume
        )
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
        access = self._app.token_codec.issue(user.id, family.id, user.token_version, is_admin=user.is_admin)
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
        spent = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == digest,
                RefreshToken.used_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(RefreshToken.family_id)
        )
        family_id = spent.scalar_one_or_none()
        if family_id is None:
            await self._handle_unusable_refresh_token(digest)
            raise InvalidRefreshToken()

        family = await self.session.get(RefreshFamily, family_id)
        if family is None or family.revoked_at is not None or family.expires_at <= now:
            raise InvalidRefreshToken()
        user = await self.session.get(User, family.user_id)
        if user is None or not user.is_active:
            raise InvalidRefreshToken()
        family.last_used_at = now
        family.expires_at = now + self._refresh_ttl
        new_token = self._add_refresh_token(family.id, family.expires_at)
        await self.session.flush()
        access = self._app.token_codec.issue(user.id, family.id, user.token_version, is_admin=user.is_admin)
        return SignIn(user=user, access=access, refresh_token=new_token)

    async def _handle_unusable_refresh_token(self, digest: str) -> None:
        known = await self.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == digest))
        if known is None or known.used_at is None:
            return  # unknown or merely expired
        family = await self.session.get(RefreshFamily, known.family_id)
        if family is not None and family.revoked_at is None:
            await self._revoke_families([family], reason="reuse_detected")
            # The 401 that follows would roll this back; the revocation must stand.
            await self.session.commit()

    # sign-out

    async def logout(self, claims: AccessClaims) -> None:
        family = await self.session.get(RefreshFamily, claims.family_id)
        if family is not None and family.revoked_at is None:
            await self._revoke_families([family], reason="logout")
        await self._app.backends.revocations.revoke_token(
            str(claims.user_id), claims.jti, claims.seconds_left() + self._auth.jwt_leeway_seconds
        )

    async def logout_all(self, user_id: uuid.UUID) -> None:
        user = await self.users.get(user_id)
        await self._revoke_access_tokens(user)
        await self._revoke_families(await self._live_families(user_id), reason="logout_all")
        await self._end_streams(user_id)
        await self.session.flush()

    async def _revoke_access_tokens(self, user: User) -> None:
        """Every access token issued to the user so far stops working, at once and everywhere."""
        user.token_version += 1
        await self._app.backends.revocations.revoke_versions_below(str(user.id), user.token_version, self._denylist_ttl)

    async def _end_streams(self, user_id: uuid.UUID) -> None:
        """Sign-out everywhere and disabling end the user's streams, through playback's one path for endings."""
        # Imported here: playback builds on accounts (tokens, users), not the other way round.
        from reelhouse.playback.sessions import PlaybackService
        from reelhouse.playback.streams import EndReason

        await PlaybackService(self.session, self._app).end_all(user_id, EndReason.SIGNED_OUT)

    async def change_password(self, claims: AccessClaims, current_password: str, new_password: str) -> None:
        user = await self.users.get(claims.user_id)
        throttle_key = await self._charge_password_attempt(user.email)
        if not await self._app.password_hasher.verify(user.password_hash, current_password):
            raise WrongPassword()
        await self._app.backends.rate_limiter.reset(throttle_key)
        user.password_hash = await self._app.password_hasher.hash(new_password)
        others = [f for f in await self._live_families(user.id) if f.id != claims.family_id]
        await self._revoke_families(others, reason="password_changed")
        await self.session.flush()

    async def _live_families(self, user_id: uuid.UUID) -> Sequence[RefreshFamily]:
        result = await self.session.scalars(
            select(RefreshFamily)
            .where(
                RefreshFamily.user_id == user_id,
                RefreshFamily.revoked_at.is_(None),
                RefreshFamily.expires_at > utcnow(),
            )
            .order_by(RefreshFamily.last_used_at.desc())
        )
        return result.all()

    async def _revoke_families(self, families: Sequence[RefreshFamily], *, reason: str) -> None:
        now = utcnow()
        for family in families:
            family.revoked_at = now
            family.revoked_reason = reason
            await self._app.backends.revocations.revoke_family(str(family.user_id), str(family.id), self._denylist_ttl)
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
        await self._profile_changed(user)
        return user

    async def _profile_changed(self, user: User) -> None:
        """Commit, then tell every instance that remembered profiles of the user are out of date."""
        await self.session.commit()
        await self._app.backends.revocations.bump_profile_version(str(user.id))

    async def devices(self, user_id: uuid.UUID) -> Sequence[RefreshFamily]:
        return await self._live_families(user_id)

    async def sign_out_device(self, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        family = await self.session.get(RefreshFamily, family_id)
        if family is None or family.user_id != user_id or family.revoked_at is not None:
            raise NotFound("No such device.")
        await self._revoke_families([family], reason="device_signed_out")

    # administration

    async def list_users(
        self, *, query: str | None, is_admin: bool | None, is_active: bool | None, limit: int, offset: int
    ) -> tuple[Sequence[User], int]:
        conditions: list[Any] = []
        if query:
            # autoescape: a "%" or "_" the admin types is a character to find, not a wildcard.
            term = query.strip().lower()
            conditions.append(
                or_(User.email.contains(term, autoescape=True), func.lower(User.name).contains(term, autoescape=True))
            )
        if is_admin is not None:
            conditions.append(User.is_admin.is_(is_admin))
        if is_active is not None:
            conditions.append(User.is_active.is_(is_active))
        total = await self.session.scalar(select(func.count()).select_from(User).where(*conditions)) or 0
        users = await self.session.scalars(
            select(User).where(*conditions).order_by(User.created_at.desc(), User.id).limit(limit).offset(offset)
        )
        return users.all(), total

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
        revocations = self._app.backends.revocations
        if not user.is_admin:
            await revocations.override_admin(str(user.id), False, self._denylist_ttl)
        await self._profile_changed(user)
        await revocations.override_admin(str(user.id), user.is_admin, self._denylist_ttl)

    async def set_active(self, actor_id: uuid.UUID, user_id: uuid.UUID, *, is_active: bool) -> User:
        user = await self.get_user(user_id)
        if user.id == actor_id and not is_active:
            raise CannotChangeSelf()
        user.is_active = is_active
        if not is_active:
            # Access tokens stop at once; refreshes and streams stop too.
            await self._revoke_access_tokens(user)
            await self._revoke_families(await self._live_families(user.id), reason="account_disabled")
            await self._end_streams(user.id)
        await self.session.flush()
        return user

    async def ensure_admin(self, email: str, password: str, *, name: str = "Administrator") -> tuple[User, bool]:
        """Create the admin, or make an existing account admin with this password. True when created."""
        email = normalize_email(email)
        hasher = self._app.password_hasher
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
    "load_token_subject",
    "normalize_email",
]
