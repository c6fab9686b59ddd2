"""HTTP shape of discovery: the signed-in user's recommendations."""

from __future__ import annotations

from litestar import Controller, get

from reelhouse.accounts.auth import CurrentUser, requires_user
from reelhouse.catalog.schemas import RecommendationList, recommended_from
from reelhouse.discovery.services import RecommendationService
from reelhouse.platform.pagination import Pagination


class RecommendationController(Controller):
    path = "/api/v1/content"
    tags = ["Catalog"]

    @get(
        "/recommendations",
        operation_id="Recommendations",
        guards=[requires_user],
        summary="Titles for you: what your plan lets you play first",
    )
    async def recommendations(
        self, current_user: CurrentUser, recommendations: RecommendationService, pagination: Pagination
    ) -> RecommendationList:
        ranked, total = await recommendations.recommendations(
            current_user.id, limit=pagination.limit, offset=pagination.offset
        )
        return RecommendationList(
            recommendations=[recommended_from(content, accessible=accessible) for content, accessible in ranked],
            total=total,
            limit=pagination.limit,
            offset=pagination.offset,
        )
