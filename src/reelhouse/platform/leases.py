"""Durable work claimed under a lease: the one job-runner mechanism that mail and media share.

A queue is a table whose rows carry ``status``, ``attempts``, ``next_attempt_at``,
``claimed_until`` and ``claim_token``. A claim is one UPDATE that moves due rows (waiting and
due, or claimed by a worker whose lease ran out) to the running status under a fresh token and
lease; on PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``, so any number of
workers (API processes, separate worker processes) share the work and never take the same row.
SQLite has one writer at a time, so the same single statement is already exclusive there. A
worker records outcomes (and renews its lease) only under its claim token, so one that lost its
lease cannot overwrite a newer claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    claim_token: str
    attempts: int


def retry_delay(attempts: int, *, base_seconds: float, max_seconds: float, rand: Callable[[], float]) -> timedelta:
    """Exponential backoff with jitter: between half and all of base * 2^(attempts-1), capped."""
    ceiling = min(max_seconds, base_seconds * 2 ** max(0, attempts - 1))
    return timedelta(seconds=ceiling / 2 + rand() * ceiling / 2)


class LeasedQueue:
    """Claims, lease renewals and outcomes on one table of durable work."""

    def __init__(self, model: Any, *, waiting: Any, running: Any) -> None:
        self.model = model
        self.waiting = waiting
        self.running = running

    def _due(self, now: datetime) -> Any:
        model = self.model
        return or_(
            and_(model.status == self.waiting, model.next_attempt_at <= now),
            and_(model.status == self.running, model.claimed_until <= now),
        )

    async def claim(
        self,
        session: AsyncSession,
        now: datetime,
        limit: int,
        lease: timedelta,
        *,
        extra_values: dict[str, Any] | None = None,
    ) -> list[Claimed]:
        """Move up to ``limit`` due rows to the running status under a new claim token and lease."""
        model = self.model
        token = uuid.uuid4().hex
        due = self._due(now)
        candidates = select(model.id).where(due).order_by(model.next_attempt_at).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            # Lock the batch first, then update exactly those rows. (Inside the UPDATE's WHERE the
            # locking subquery may be rescanned per row, and its LIMIT would not hold.)
            ids = list(await session.scalars(candidates.with_for_update(skip_locked=True)))
            if not ids:
                return []
            chosen = model.id.in_(ids)
        else:
            # One statement: SQLite runs it under its single write lock, so it is the claim.
            chosen = model.id.in_(candidates)
        rows = await session.execute(
            update(model)
            .where(chosen, due)
            .values(
                status=self.running,
                claim_token=token,
                claimed_until=now + lease,
                attempts=model.attempts + 1,
                updated_at=now,
                **(extra_values or {}),
            )
            .returning(model.id, model.attempts)
            .execution_options(synchronize_session=False)
        )
        return [Claimed(id=row_id, claim_token=token, attempts=attempts) for row_id, attempts in rows]

    async def record(self, session: AsyncSession, claimed: Claimed, values: dict[str, Any]) -> bool:
        """Write ``values`` on the claimed row if the claim still holds; whether it did."""
        model = self.model
        result = await session.execute(
            update(model)
            .where(model.id == claimed.id, model.claim_token == claimed.claim_token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))
