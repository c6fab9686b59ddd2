"""The only code that queries the accounts tables (users, refresh families and tokens)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, or_, select, update

from reelhouse.accounts.models import RefreshFamily, RefreshToken, User

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from contextlib import AbstractAsyncContextManager
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession


class TokenSubject(NamedTuple):
    email: str
    is_admin: bool
    is_active: bool
    token_version: int


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User

    async def token_subject(self, user_id: UUID) -> TokenSubject | None:
        row = (
            await self.session.execute(
                select(User.email, User.is_admin, User.is_active, User.token_version).where(User.id == user_id)
            )
        ).one_or_none()
        return None if row is None else TokenSubject(*row)

    async def active_contacts(self, user_ids: Iterable[UUID]) -> dict[UUID, tuple[str, str]]:
        """Email and name of each of the users whose account is active."""
        ids = list(set(user_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(User.id, User.email, User.name).where(User.id.in_(ids), User.is_active.is_(True))
        )
        return {user_id: (email, name) for user_id, email, name in rows}

    async def lock(self, user_id: UUID) -> None:
        """Serialise one user's changes: a no-op write. PostgreSQL locks the row, SQLite takes its
        write lock; either way the next change for this user waits until this transaction ends."""
        await self.session.execute(update(User).where(User.id == user_id).values(token_version=User.token_version))

    async def search(
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


class SignInRepository:
    """Refresh families (one per sign-in, shown as a device) and their rotating tokens."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def family(self, family_id: UUID) -> RefreshFamily | None:
        return await self.session.get(RefreshFamily, family_id)

    async def live_families(self, user_id: UUID) -> Sequence[RefreshFamily]:
        result = await self.session.scalars(
            select(RefreshFamily)
            .where(
                RefreshFamily.user_id == user_id,
                RefreshFamily.revoked_at.is_(None),
                RefreshFamily.expires_at > datetime.now(UTC),
            )
            .order_by(RefreshFamily.last_used_at.desc())
        )
        return result.all()

    async def spend_token(self, digest: str, now: datetime) -> UUID | None:
        """Mark an unused, unexpired token used; its family, or None. One conditional UPDATE, so
        of many concurrent uses exactly one wins."""
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
        return spent.scalar_one_or_none()

    async def token(self, digest: str) -> RefreshToken | None:
        token: RefreshToken | None = await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == digest)
        )
        return token


class KnownUsers:
    """Users this instance has seen exist. Accounts are never deleted, so a yes is kept (up to a
    bound); a token naming a user that does not exist (say, of a database since reset under the
    same secret) is refused."""

    MAX_ENTRIES = 100_000

    def __init__(self, read_session: Callable[[], AbstractAsyncContextManager[AsyncSession]]) -> None:
        self._read_session = read_session
        self._seen: set[UUID] = set()

    async def exists(self, user_id: UUID) -> bool:
        if user_id in self._seen:
            return True
        async with self._read_session() as session:
            found = await session.scalar(select(User.id).where(User.id == user_id))
        if found is None:
            return False
        if len(self._seen) >= self.MAX_ENTRIES:
            self._seen.clear()
        self._seen.add(user_id)
        return True


__all__ = ["KnownUsers", "SignInRepository", "TokenSubject", "UserRepository"]
