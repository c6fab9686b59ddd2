"""Queries of the catalog tables that other domains ask for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from reelhouse.catalog.models import user_genres

if TYPE_CHECKING:
    from collections.abc import Iterable
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession


class GenreFollowers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, genre_ids: Iterable[UUID]) -> list[UUID]:
        """Users who follow any of the genres."""
        ids = list(genre_ids)
        if not ids:
            return []
        rows = await self.session.scalars(
            select(user_genres.c.user_id).where(user_genres.c.genre_id.in_(ids)).distinct()
        )
        return list(rows)
