"""Recommendations: the catalog ranked for one user, from their plan, their viewing and their genres."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reelhouse.plans.models import AccessLevel

if TYPE_CHECKING:
    import uuid

    from reelhouse.catalog.models import Content
    from reelhouse.catalog.services import CatalogService
    from reelhouse.playback.history import ViewingSignal, WatchHistoryService
    from reelhouse.subscriptions.entitlement import EntitlementService

#: A viewing's weight halves every this many days, so recent taste counts more.
TASTE_HALF_LIFE_DAYS = 30.0
#: What following a genre is worth, against 1.0 for one title of it watched to the end today.
FOLLOWED_GENRE_WEIGHT = 1.0
#: How many of the user's latest viewings shape recommendations.
TASTE_HISTORY_LIMIT = 200


def viewing_weight(signal: ViewingSignal, now: datetime) -> float:
    """How much one viewing says about taste: finished beats sampled, recent beats old."""
    engagement = 1.0 if signal.completed else 0.25 + 0.75 * min(signal.progress_percent, 100.0) / 100.0
    age_days = max(0.0, (now - signal.last_watched_at).total_seconds() / 86_400)
    recency: float = 0.5 ** (age_days / TASTE_HALF_LIFE_DAYS)
    return engagement * recency


class RecommendationService:
    def __init__(
        self, *, catalog: CatalogService, history: WatchHistoryService, entitlements: EntitlementService
    ) -> None:
        self._catalog = catalog
        self._history = history
        self._entitlements = entitlements

    async def recommendations(
        self, user_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[tuple[Content, bool]], int]:
        """Published titles the user has not watched, each with whether their plan covers it.

        Ranked: playable first; then by affinity to the genres of what they watched (finished and
        recent viewings weigh more) and the genres they follow; then trending; then newest. A new
        user has no affinity yet, so they get trending titles.
        """
        entitlement = await self._entitlements.for_user(user_id)
        return await self._catalog.ranked_for_viewer(
            playable_levels=[level for level in AccessLevel if entitlement.covers(level)],
            exclude=self._history.titles_watched_by(user_id),
            genre_weights=await self._genre_affinity(user_id),
            limit=limit,
            offset=offset,
        )

    async def _genre_affinity(self, user_id: uuid.UUID) -> dict[uuid.UUID, float]:
        signals = await self._history.viewing_signals(user_id, limit=TASTE_HISTORY_LIMIT)
        now = datetime.now(UTC)
        weight_of_title = {signal.content_id: viewing_weight(signal, now) for signal in signals}
        affinity: dict[uuid.UUID, float] = defaultdict(float)
        for content_id, genre_id in await self._catalog.genres_of_titles(weight_of_title):
            affinity[genre_id] += weight_of_title[content_id]
        for genre in await self._catalog.followed_genres(user_id):
            affinity[genre.id] += FOLLOWED_GENRE_WEIGHT
        return dict(affinity)
