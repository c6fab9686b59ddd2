"""Titles as the hot paths read them, kept in memory on each instance.

Starting a stream, reporting progress and listing watch history each need a few titles: whether
they are published, their access level, length, media and the card anyone may see. Titles change
rarely (an administrator's edit, media becoming ready), so each instance remembers them for
``TITLE_MEMORY_SECONDS`` and forgets all of them whenever the catalog changes, here or on another
instance (the ``catalog`` topic of :mod:`reelhouse.platform.invalidation`, which the public cache
follows too). A read that raced a change is not kept: the cache's generation moved on meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reelhouse.platform.cache import CacheScope
from reelhouse.platform.memory import Remembered

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from uuid import UUID

    from reelhouse.catalog.schemas import Content as ContentCard
    from reelhouse.plans.models import AccessLevel
    from reelhouse.platform.invalidation import Invalidations

#: How long a title is remembered at most when no change is heard of (a lost notice).
TITLE_MEMORY_SECONDS = 60.0
MAX_TITLES = 50_000


@dataclass(frozen=True, slots=True)
class Title:
    """One title as it was when read: what anyone may see of it, and what playback needs."""

    card: ContentCard
    credits_start_seconds: int | None
    media_asset_id: UUID | None

    @property
    def id(self) -> UUID:
        return self.card.id

    @property
    def published(self) -> bool:
        return self.card.published

    @property
    def access_level(self) -> AccessLevel:
        return self.card.access_level

    @property
    def duration_seconds(self) -> int:
        return self.card.duration_seconds

    @property
    def playable(self) -> bool:
        return self.media_asset_id is not None


class TitleMemory:
    """This instance's remembered titles (published or not); ``ttl_seconds`` 0 remembers nothing."""

    def __init__(
        self,
        ttl_seconds: float = TITLE_MEMORY_SECONDS,
        *,
        max_titles: int = MAX_TITLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._titles: Remembered[UUID, Title] = Remembered(ttl_seconds, max_entries=max_titles, clock=clock)

    def __len__(self) -> int:
        return len(self._titles)

    def generation(self) -> int:
        """Capture before reading what will be kept: :meth:`keep` refuses it if the catalog changed since."""
        return self._titles.generation()

    def recall(self, content_id: UUID) -> Title | None:
        return self._titles.recall(content_id)

    def keep(self, titles: Iterable[Title], generation: int) -> None:
        for title in titles:
            self._titles.keep(title.id, title, generation)

    def forget_all(self) -> None:
        self._titles.forget_all()

    def follow(self, invalidations: Invalidations) -> None:
        """Forget every title when the catalog changes, here or on another instance."""
        invalidations.on(CacheScope.CATALOG.value, lambda _key: self.forget_all())


__all__ = ["TITLE_MEMORY_SECONDS", "Title", "TitleMemory"]
