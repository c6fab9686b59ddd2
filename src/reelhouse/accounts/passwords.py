"""Argon2id password hashing, run in worker threads with a cap on how many run at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

if TYPE_CHECKING:
    from reelhouse.config import AuthSettings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


class PasswordHasher:
    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # Each hash holds ~19 MiB for tens of milliseconds; the cap keeps a login
        # burst from exhausting memory or starving the thread pool.
        self._limiter = anyio.CapacityLimiter(settings.max_concurrent_hashes)
        # Verified against when an email is unknown, so the answer costs the same.
        self._decoy_hash = self._hasher.hash("reelhouse-decoy-password")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no hash, spends the same effort and says no."""
        target = password_hash or self._decoy_hash
        matched = await anyio.to_thread.run_sync(self._verify, target, password, limiter=self._limiter)
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
