"""Request and response shapes for the catalog. Unknown request fields are refused by name (422).

Genres are named by their slug in every request (``"genres": ["drama", "sci-fi"]``) and come back
as objects ``{id, slug, name}``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from reelhouse.plans.models import AccessLevel
from reelhouse.platform.links import Link
from reelhouse.platform.requests import LINE_BREAKS_ALLOWED

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
#: The first surviving motion picture is from 1888; nothing is released after 2100.
FIRST_RELEASE_YEAR = 1888
LAST_RELEASE_YEAR = 2100
MAX_DURATION_SECONDS = 86_400
MAX_GENRES_PER_TITLE = 20
MAX_FOLLOWED_GENRES = 50

Slug = Annotated[str, Meta(min_length=1, max_length=50, pattern=SLUG_PATTERN, examples=["sci-fi"])]
GenreName = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
Title = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
Description = Annotated[str, Meta(max_length=5000, extra=LINE_BREAKS_ALLOWED)]
DurationSeconds = Annotated[int, Meta(gt=0, le=MAX_DURATION_SECONDS)]
CreditsStartSeconds = Annotated[int, Meta(gt=0, le=MAX_DURATION_SECONDS)]
ReleaseYear = Annotated[int, Meta(ge=FIRST_RELEASE_YEAR, le=LAST_RELEASE_YEAR)]
GenreSlugs = Annotated[list[Slug], Meta(max_length=MAX_GENRES_PER_TITLE)]


class ContentSort(enum.StrEnum):
    NEWEST = "newest"
    POPULAR = "popular"
    TITLE = "title"


# --- genres -----------------------------------------------------------------------------------


class Genre(Struct):
    id: UUID
    slug: str
    name: str


class GenreWrite(Struct):
    slug: Slug
    name: GenreName


class GenreList(Struct):
    genres: list[Genre]
    total: int


class FollowedGenresWrite(Struct):
    """The whole set of followed genres, by slug; an empty list follows none."""

    genres: Annotated[list[Slug], Meta(max_length=MAX_FOLLOWED_GENRES)]


# --- content ----------------------------------------------------------------------------------


class Content(Struct):
    """A title as anyone may see it: never where the full video lives."""

    id: UUID
    title: str
    description: str
    access_level: AccessLevel
    duration_seconds: int
    genres: list[Genre]
    release_year: int | None
    thumbnail_url: str | None
    trailer_url: str | None
    #: Always true outside the admin routes: nobody else sees an unpublished title.
    published: bool
    published_at: datetime | None
    #: Its media is ready: a stream of it can start.
    playable: bool
    created_at: datetime
    updated_at: datetime


class AdminContent(Content):
    """A title as administrators see it."""

    credits_start_seconds: int | None
    video_url: str


class ContentDetail(Content):
    """One title: everyone's fields, plus ``credits_start_seconds`` and ``video_url`` for administrators only.

    One schema rather than a choice of two, so a client (and the OpenAPI document) always knows
    which shape it got: the admin fields are simply absent for everyone else.
    """

    credits_start_seconds: int | UnsetType | None = UNSET
    video_url: str | UnsetType = UNSET


class RecommendedContent(Content):
    #: False when the user's plan does not cover the title (it is ranked after every playable one).
    accessible: bool


class ContentDeleted(Struct):
    message: str


class ContentList(Struct):
    contents: list[Content]
    total: int
    limit: int
    offset: int


class AdminContentList(Struct):
    contents: list[AdminContent]
    total: int
    limit: int
    offset: int


class RecommendationList(Struct):
    recommendations: list[RecommendedContent]
    total: int
    limit: int
    offset: int


class ContentWrite(Struct, kw_only=True):
    """POST and PUT: the whole title; an omitted optional field is cleared."""

    title: Title
    description: Description = ""
    access_level: AccessLevel
    duration_seconds: DurationSeconds
    credits_start_seconds: CreditsStartSeconds | None = None
    genres: GenreSlugs = []
    release_year: ReleaseYear | None = None
    thumbnail_url: Link | None = None
    trailer_url: Link | None = None
    video_url: Link
    published: bool = False

    def values(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class ContentPatch(Struct, kw_only=True):
    """PATCH: only the fields present change; ``null`` clears an optional field."""

    title: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    access_level: AccessLevel | UnsetType = UNSET
    duration_seconds: DurationSeconds | UnsetType = UNSET
    credits_start_seconds: CreditsStartSeconds | UnsetType | None = UNSET
    genres: GenreSlugs | UnsetType = UNSET
    release_year: ReleaseYear | UnsetType | None = UNSET
    thumbnail_url: Link | UnsetType | None = UNSET
    trailer_url: Link | UnsetType | None = UNSET
    video_url: Link | UnsetType = UNSET
    published: bool | UnsetType = UNSET

    def values(self) -> dict[str, Any]:
        return {field: value for field in self.__struct_fields__ if (value := getattr(self, field)) is not UNSET}


# --- conversions ------------------------------------------------------------------------------


def genre_from(genre: object) -> Genre:
    return msgspec.convert(genre, Genre, from_attributes=True)


def content_from(content: object) -> Content:
    return msgspec.convert(content, Content, from_attributes=True)


def admin_content_from(content: object) -> AdminContent:
    return msgspec.convert(content, AdminContent, from_attributes=True)


def content_detail_from(content: object, *, admin: bool) -> ContentDetail:
    if admin:
        return msgspec.convert(admin_content_from(content), ContentDetail, from_attributes=True)
    return msgspec.convert(content_from(content), ContentDetail, from_attributes=True)


def recommended_from(content: object, *, accessible: bool) -> RecommendedContent:
    return RecommendedContent(**msgspec.structs.asdict(content_from(content)), accessible=accessible)
