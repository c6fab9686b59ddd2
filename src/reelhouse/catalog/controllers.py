"""HTTP shape of the catalog: parse, call CatalogService, shape the answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from reelhouse.accounts.auth import CurrentUser, requires_admin, requires_user
from reelhouse.catalog import models
from reelhouse.catalog.schemas import (
    AdminContent,
    AdminContentList,
    ContentDeleted,
    ContentDetail,
    ContentList,
    ContentPatch,
    ContentSort,
    ContentWrite,
    FollowedGenresWrite,
    Genre,
    GenreList,
    GenreWrite,
    admin_content_from,
    content_detail_from,
    content_from,
    genre_from,
)
from reelhouse.catalog.services import CatalogService, ContentFilters
from reelhouse.plans.models import AccessLevel
from reelhouse.platform.cache import CacheScope, public_cache
from reelhouse.platform.pagination import Pagination

ContentId = Annotated[UUID, Parameter(description="The title's id")]
GenreId = Annotated[UUID, Parameter(description="The genre's id")]
SearchQuery = Annotated[
    str | None, Parameter(description="Words in the title or description (prefix match)", max_length=200)
]
GenreFilter = Annotated[str | None, Parameter(description="A genre slug", max_length=50)]
AccessLevelFilter = Annotated[AccessLevel | None, Parameter(description="Only titles of this access level")]
SortParameter = Annotated[
    ContentSort | None,
    Parameter(description="newest, popular (most viewers) or title; by default relevance when searching, else newest"),
]


#: The same for every anonymous caller: kept in memory between admin changes (trending and popular
#: also move with watching, so they are as stale as PUBLIC_CACHE_SECONDS at most).
PUBLIC_CATALOG = public_cache(CacheScope.CATALOG)


def content_page(contents: Sequence[models.Content], total: int, pagination: Pagination) -> ContentList:
    return ContentList(
        contents=[content_from(content) for content in contents],
        total=total,
        limit=pagination.limit,
        offset=pagination.offset,
    )


class ContentController(Controller):
    path = "/api/v1/content"
    tags = ["Catalog"]

    @get("/", operation_id="ListContent", summary="Browse and search published titles", opt=PUBLIC_CATALOG)
    async def list_content(
        self,
        catalog: CatalogService,
        pagination: Pagination,
        *,
        q: SearchQuery = None,
        genre: GenreFilter = None,
        access_level: AccessLevelFilter = None,
        sort: SortParameter = None,
    ) -> ContentList:
        filters = ContentFilters(q=q, genre=genre, access_level=access_level, sort=sort)
        contents, total = await catalog.search(filters, limit=pagination.limit, offset=pagination.offset)
        return content_page(contents, total, pagination)

    @get("/trending", operation_id="TrendingContent", summary="Most viewers over the last 7 days", opt=PUBLIC_CATALOG)
    async def trending(self, catalog: CatalogService, pagination: Pagination) -> ContentList:
        contents, total = await catalog.trending(limit=pagination.limit, offset=pagination.offset)
        return content_page(contents, total, pagination)

    @get("/new-releases", operation_id="NewReleases", summary="Newest published titles", opt=PUBLIC_CATALOG)
    async def new_releases(self, catalog: CatalogService, pagination: Pagination) -> ContentList:
        contents, total = await catalog.new_releases(limit=pagination.limit, offset=pagination.offset)
        return content_page(contents, total, pagination)

    @get(
        "/{content_id:uuid}",
        operation_id="GetContent",
        summary="One title (administrators also see unpublished titles and the video location)",
        opt=PUBLIC_CATALOG,
    )
    async def get_content(
        self, content_id: ContentId, optional_user: CurrentUser | None, catalog: CatalogService
    ) -> ContentDetail:
        if optional_user is not None and optional_user.is_admin:
            return content_detail_from(await catalog.get_any(content_id), admin=True)
        return content_detail_from(await catalog.get_published(content_id), admin=False)


class GenreController(Controller):
    path = "/api/v1/genres"
    tags = ["Catalog"]

    @get("/", operation_id="ListGenres", summary="All genres", opt=PUBLIC_CATALOG)
    async def list_genres(self, catalog: CatalogService) -> GenreList:
        genres = [genre_from(genre) for genre in await catalog.genres()]
        return GenreList(genres=genres, total=len(genres))


class FollowedGenreController(Controller):
    path = "/api/v1/users/genres"
    tags = ["Profile"]
    guards = [requires_user]

    @get("/", operation_id="ListFollowedGenres", summary="The genres you follow")
    async def list_followed(self, current_user: CurrentUser, catalog: CatalogService) -> GenreList:
        genres = [genre_from(genre) for genre in await catalog.followed_genres(current_user.id)]
        return GenreList(genres=genres, total=len(genres))

    @put("/", operation_id="ReplaceFollowedGenres", summary="Choose the genres you follow (by slug)")
    async def replace_followed(
        self, data: FollowedGenresWrite, current_user: CurrentUser, catalog: CatalogService
    ) -> GenreList:
        genres = [genre_from(genre) for genre in await catalog.follow_genres(current_user.id, data.genres)]
        return GenreList(genres=genres, total=len(genres))


class AdminContentController(Controller):
    path = "/api/v1/admin/content"
    tags = ["Admin: catalog"]
    guards = [requires_admin]

    @get("/", operation_id="AdminListContent", summary="Every title, published or not")
    async def list_content(
        self,
        catalog: CatalogService,
        pagination: Pagination,
        *,
        q: SearchQuery = None,
        genre: GenreFilter = None,
        access_level: AccessLevelFilter = None,
        published: Annotated[bool | None, Parameter(description="Only published or unpublished titles")] = None,
        sort: SortParameter = None,
    ) -> AdminContentList:
        filters = ContentFilters(q=q, genre=genre, access_level=access_level, sort=sort, published=published)
        contents, total = await catalog.search(filters, limit=pagination.limit, offset=pagination.offset)
        return AdminContentList(
            contents=[admin_content_from(content) for content in contents],
            total=total,
            limit=pagination.limit,
            offset=pagination.offset,
        )

    @post("/", operation_id="AdminCreateContent", summary="Add a title")
    async def create_content(self, data: ContentWrite, catalog: CatalogService) -> AdminContent:
        return admin_content_from(await catalog.create_content(data.values()))

    @put("/{content_id:uuid}", operation_id="AdminReplaceContent", summary="Replace a title")
    async def replace_content(self, content_id: ContentId, data: ContentWrite, catalog: CatalogService) -> AdminContent:
        return admin_content_from(await catalog.update_content(content_id, data.values()))

    @patch("/{content_id:uuid}", operation_id="AdminUpdateContent", summary="Change some fields of a title")
    async def update_content(self, content_id: ContentId, data: ContentPatch, catalog: CatalogService) -> AdminContent:
        return admin_content_from(await catalog.update_content(content_id, data.values()))

    @delete("/{content_id:uuid}", operation_id="AdminDeleteContent", status_code=HTTP_200_OK)
    async def delete_content(self, content_id: ContentId, catalog: CatalogService) -> ContentDeleted:
        """Delete a title, with its viewers' history of it (200 with a message, as the seed API answers)."""
        await catalog.delete_content(content_id)
        return ContentDeleted(message="content deleted successfully")


class AdminGenreController(Controller):
    path = "/api/v1/admin/genres"
    tags = ["Admin: catalog"]
    guards = [requires_admin]

    @post("/", operation_id="AdminCreateGenre", summary="Add a genre")
    async def create_genre(self, data: GenreWrite, catalog: CatalogService) -> Genre:
        return genre_from(await catalog.create_genre(data.slug, data.name))

    @put("/{genre_id:uuid}", operation_id="AdminReplaceGenre", summary="Rename a genre or change its slug")
    async def replace_genre(self, genre_id: GenreId, data: GenreWrite, catalog: CatalogService) -> Genre:
        return genre_from(await catalog.update_genre(genre_id, data.slug, data.name))

    @delete("/{genre_id:uuid}", operation_id="AdminDeleteGenre", status_code=HTTP_204_NO_CONTENT)
    async def delete_genre(self, genre_id: GenreId, catalog: CatalogService) -> None:
        """Delete a genre; its titles and followers simply lose it."""
        await catalog.delete_genre(genre_id)
