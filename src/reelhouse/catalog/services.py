"""Catalog rules: titles and genres, search, trending, new releases, recommendations, followed genres.

Services never commit; the request boundary does.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Float, and_, case, delete, func, insert, literal, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from reelhouse.catalog.events import TitlePublished, TitleWithdrawn
from reelhouse.catalog.models import Content, Genre, content_genres, search_document, user_genres
from reelhouse.catalog.schemas import ContentSort, content_from
from reelhouse.catalog.titles import Title
from reelhouse.platform.cache import CacheScope
from reelhouse.platform.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sqlalchemy import ColumnElement, Select, Subquery
    from sqlalchemy.orm.interfaces import LoaderOption

    from reelhouse.catalog.titles import TitleMemory
    from reelhouse.plans.models import AccessLevel
    from reelhouse.platform.cache import PublicResponseCache
    from reelhouse.platform.uow import UnitOfWork

#: "Trending" counts the viewers of this many last days.
TRENDING_WINDOW_DAYS = 7
MAX_SEARCH_TERMS = 8

_SEARCH_TERM = re.compile(r"[^\W_]+")


# --- errors -----------------------------------------------------------------------------------


class ContentNotFound(NotFound):
    default_detail = "No such title."


class GenreNotFound(NotFound):
    default_detail = "No such genre."


class GenreSlugTaken(Conflict):
    code = "genre_slug_taken"
    default_detail = "A genre with this slug already exists."


def field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(extra={"errors": [{"field": field, "source": "body", "message": message}]})


# --- queries ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContentFilters:
    q: str | None = None
    genre: str | None = None
    access_level: AccessLevel | None = None
    #: ``None``: by relevance when searching, else newest first.
    sort: ContentSort | None = None
    #: ``True`` for everyone but admins; ``None`` means published or not.
    published: bool | None = True


def search_terms(query: str | None) -> list[str]:
    """The words of a search, lower-cased; punctuation (and so any query syntax) is dropped."""
    if not query:
        return []
    return [term[:50] for term in _SEARCH_TERM.findall(query.lower())][:MAX_SEARCH_TERMS]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _newest_first() -> list[ColumnElement[Any]]:
    return [Content.published_at.desc().nulls_last(), Content.created_at.desc(), Content.id.desc()]


def _with_genres() -> LoaderOption:
    return selectinload(Content.genres)


class ViewerCounts(Protocol):
    """How many people watched each title: kept by playback (a higher domain), handed in by the
    composition root, so "popular" and "trending" can rank by it."""

    def per_title(self, since: datetime | None = None) -> Subquery:
        """``(content_id, viewers)``: distinct viewers of each title (since ``since``, when given)."""
        ...


class CatalogService:
    def __init__(
        self, uow: UnitOfWork, *, public_cache: PublicResponseCache, viewers: ViewerCounts, titles: TitleMemory
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self._public_cache = public_cache
        self._viewers = viewers
        self._titles = titles

    @property
    def _is_postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # browsing

    async def search(self, filters: ContentFilters, *, limit: int, offset: int) -> tuple[Sequence[Content], int]:
        conditions: list[ColumnElement[bool]] = []
        if filters.published is not None:
            conditions.append(Content.published.is_(filters.published))
        if filters.access_level is not None:
            conditions.append(Content.access_level == filters.access_level)
        if filters.genre:
            conditions.append(
                Content.id.in_(
                    select(content_genres.c.content_id)
                    .join(Genre, Genre.id == content_genres.c.genre_id)
                    .where(Genre.slug == filters.genre.strip().lower())
                )
            )
        relevance: ColumnElement[Any] | None = None
        terms = search_terms(filters.q)
        if terms:
            matches, relevance = self._text_search(terms)
            conditions.append(matches)

        total = await self.session.scalar(select(func.count()).select_from(Content).where(*conditions)) or 0
        statement = select(Content).where(*conditions)
        sort = filters.sort
        if sort is ContentSort.TITLE:
            statement = statement.order_by(func.lower(Content.title), Content.id)
        elif sort is ContentSort.POPULAR:
            viewers = self._viewers.per_title()
            statement = statement.outerjoin(viewers, viewers.c.content_id == Content.id).order_by(
                func.coalesce(viewers.c.viewers, 0).desc(), *_newest_first()
            )
        elif sort is None and relevance is not None:
            statement = statement.order_by(relevance.desc(), *_newest_first())
        else:
            statement = statement.order_by(*_newest_first())
        contents = await self.session.scalars(statement.options(_with_genres()).limit(limit).offset(offset))
        return contents.all(), total

    def _text_search(self, terms: list[str]) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
        """Full-text search (prefix-matching each word) on PostgreSQL; a LIKE fallback on SQLite."""
        if self._is_postgresql:
            query = func.to_tsquery(text("'english'"), " & ".join(f"{term}:*" for term in terms))
            # Matching uses the indexed document; ranking (of the matches only) weighs the title higher.
            weighted = func.setweight(func.to_tsvector(text("'english'"), Content.title), text("'A'")).op("||")(
                func.setweight(func.to_tsvector(text("'english'"), Content.description), text("'B'"))
            )
            return search_document().bool_op("@@")(query), func.ts_rank(weighted, query)
        title, description = func.lower(Content.title), func.lower(Content.description)
        in_title = [title.contains(term, autoescape=True) for term in terms]
        in_description = [description.contains(term, autoescape=True) for term in terms]
        matches = and_(*(or_(*pair) for pair in zip(in_title, in_description, strict=True)))
        title_hits = sum((case((hit, 1), else_=0) for hit in in_title), start=literal(0))
        return matches, title_hits

    async def trending(self, *, limit: int, offset: int) -> tuple[Sequence[Content], int]:
        """Published titles by distinct viewers over the last days, then newest."""
        viewers = self._viewers.per_title(since=utcnow() - timedelta(days=TRENDING_WINDOW_DAYS))
        published = Content.published.is_(True)
        total = await self.session.scalar(select(func.count()).select_from(Content).where(published)) or 0
        contents = await self.session.scalars(
            select(Content)
            .outerjoin(viewers, viewers.c.content_id == Content.id)
            .where(published)
            .order_by(func.coalesce(viewers.c.viewers, 0).desc(), *_newest_first())
            .options(_with_genres())
            .limit(limit)
            .offset(offset)
        )
        return contents.all(), total

    async def new_releases(self, *, limit: int, offset: int) -> tuple[Sequence[Content], int]:
        return await self.search(ContentFilters(sort=ContentSort.NEWEST), limit=limit, offset=offset)

    async def get_published(self, content_id: uuid.UUID) -> Content:
        content = await self._get(content_id)
        if not content.published:
            raise ContentNotFound()
        return content

    async def find(self, content_id: uuid.UUID) -> Content | None:
        """A title (published or not) without its genres, or None."""
        return await self.session.get(Content, content_id)

    async def title(self, content_id: uuid.UUID) -> Title | None:
        """A title (published or not) as playback and watch history read it, or None."""
        return (await self.titles([content_id])).get(content_id)

    async def titles(self, content_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Title]:
        """Titles (published or not) by id: remembered on this instance, one query for the rest.
        Not for a unit of work that changes the catalog (what it read would be its own, uncommitted)."""
        found: dict[uuid.UUID, Title] = {}
        missing: set[uuid.UUID] = set()
        for content_id in content_ids:
            title = self._titles.recall(content_id)
            if title is None:
                missing.add(content_id)
            else:
                found[content_id] = title
        if missing:
            generation = self._titles.generation()
            rows = await self.session.scalars(
                select(Content).where(Content.id.in_(missing)).options(selectinload(Content.genres))
            )
            read = [
                Title(
                    card=content_from(content),
                    credits_start_seconds=content.credits_start_seconds,
                    media_asset_id=content.media_asset_id,
                )
                for content in rows
            ]
            self._titles.keep(read, generation)
            found.update((title.id, title) for title in read)
        return found

    async def published_access_levels(self, content_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AccessLevel]:
        """The access level of each of the titles that is published."""
        ids = list(set(content_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Content.id, Content.access_level).where(Content.id.in_(ids), Content.published.is_(True))
        )
        return dict(rows.tuples().all())

    async def publication_state(self, content_id: uuid.UUID) -> tuple[bool, AccessLevel] | None:
        """Whether a title is published, and its access level; None when there is no such title."""
        row = (
            await self.session.execute(select(Content.published, Content.access_level).where(Content.id == content_id))
        ).one_or_none()
        return None if row is None else (bool(row[0]), row[1])

    async def get_any(self, content_id: uuid.UUID) -> Content:
        """A title whether published or not (administrators)."""
        return await self._get(content_id)

    async def _get(self, content_id: uuid.UUID) -> Content:
        content = await self.session.scalar(select(Content).where(Content.id == content_id).options(_with_genres()))
        if content is None:
            raise ContentNotFound()
        return content

    # ranking for someone

    async def ranked_for_viewer(
        self,
        *,
        playable_levels: Sequence[AccessLevel],
        exclude: Select[tuple[uuid.UUID]],
        genre_weights: Mapping[uuid.UUID, float],
        limit: int,
        offset: int,
    ) -> tuple[list[tuple[Content, bool]], int]:
        """Published titles not in ``exclude``, each with whether it is of a playable level.

        Ranked: playable first; then by the summed weights of their genres; then trending;
        then newest.
        """
        accessible = case((Content.access_level.in_(list(playable_levels)), 1), else_=0)
        conditions = [Content.published.is_(True), Content.id.not_in(exclude)]
        viewers = self._viewers.per_title(since=utcnow() - timedelta(days=TRENDING_WINDOW_DAYS))
        statement = select(Content, accessible.label("accessible")).outerjoin(
            viewers, viewers.c.content_id == Content.id
        )
        order: list[ColumnElement[Any]] = [accessible.desc()]
        if genre_weights:
            genre_weight = case(
                *(
                    (content_genres.c.genre_id == genre_id, literal(weight, Float))
                    for genre_id, weight in genre_weights.items()
                ),
                else_=literal(0.0, Float),
            )
            scores = (
                select(content_genres.c.content_id, func.sum(genre_weight).label("score"))
                .where(content_genres.c.genre_id.in_(list(genre_weights)))
                .group_by(content_genres.c.content_id)
                .subquery("affinity")
            )
            statement = statement.outerjoin(scores, scores.c.content_id == Content.id)
            order.append(func.coalesce(scores.c.score, 0.0).desc())
        order += [func.coalesce(viewers.c.viewers, 0).desc(), *_newest_first()]

        total = await self.session.scalar(select(func.count()).select_from(Content).where(*conditions)) or 0
        rows = await self.session.execute(
            statement.where(*conditions).order_by(*order).options(_with_genres()).limit(limit).offset(offset)
        )
        return [(content, bool(is_accessible)) for content, is_accessible in rows], total

    async def genres_of_titles(self, content_ids: Iterable[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """``(content_id, genre_id)`` pairs of the given titles."""
        ids = list(content_ids)
        if not ids:
            return []
        rows = await self.session.execute(
            select(content_genres.c.content_id, content_genres.c.genre_id).where(content_genres.c.content_id.in_(ids))
        )
        return [(content_id, genre_id) for content_id, genre_id in rows]

    # administration of titles

    async def create_content(self, values: dict[str, Any]) -> Content:
        content = Content(genres=[])
        await self._apply(content, values, creating=True)
        self.session.add(content)
        await self.session.flush()
        self._catalog_changed()
        content = await self._get(content.id)
        if content.published_at is not None:
            await self.uow.publish(_published(content))
        return content

    async def update_content(self, content_id: uuid.UUID, values: dict[str, Any]) -> Content:
        """Set the given fields: all of them for PUT (a whole ``ContentWrite``), some for PATCH."""
        content = await self._get(content_id)
        first_publication, was_published = content.published_at is None, content.published
        await self._apply(content, values, creating=False)
        await self.session.flush()
        self._catalog_changed()
        content = await self._get(content.id)
        if first_publication and content.published_at is not None:
            await self.uow.publish(_published(content))
        if was_published and not content.published:
            await self.uow.publish(TitleWithdrawn(content.id))
        return content

    # the title's media (decided by reelhouse.assets, which owns the media tables)

    async def attach_media(
        self,
        content_id: uuid.UUID,
        asset_id: uuid.UUID,
        *,
        measured_duration_seconds: float | None = None,
        poster_url: str | None = None,
    ) -> uuid.UUID | None:
        """Point the title at ready media; the media it played before, if any, is returned.

        A measured duration replaces the one the administrator guessed (credits that would no
        longer fall inside it are cleared); the poster fills ``thumbnail_url`` only when none was given.
        """
        content = await self._get(content_id)
        previous = content.media_asset_id
        content.media_asset_id = asset_id
        if measured_duration_seconds is not None:
            duration = max(1, round(measured_duration_seconds))
            content.duration_seconds = duration
            if content.credits_start_seconds is not None and content.credits_start_seconds >= duration:
                content.credits_start_seconds = None
        if poster_url is not None and not content.thumbnail_url:
            content.thumbnail_url = poster_url
        await self.session.flush()
        self._catalog_changed()
        return previous if previous != asset_id else None

    async def detach_media(self, content_id: uuid.UUID) -> uuid.UUID | None:
        """The title has no media any more (it stops being playable); the media it had is returned."""
        content = await self._get(content_id)
        previous, content.media_asset_id = content.media_asset_id, None
        await self.session.flush()
        self._catalog_changed()
        return previous

    async def titles_using_media(self, asset_id: uuid.UUID) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).select_from(Content).where(Content.media_asset_id == asset_id)
            )
            or 0
        )

    def _catalog_changed(self) -> None:
        """What anonymous callers were shown of the catalog is out of date once this transaction commits."""
        self._public_cache.invalidate_on_commit(self.uow, CacheScope.CATALOG)

    async def delete_content(self, content_id: uuid.UUID) -> None:
        content = await self._get(content_id)
        await self.session.delete(content)
        await self.session.flush()
        self._catalog_changed()
        await self.uow.publish(TitleWithdrawn(content_id))

    async def _apply(self, content: Content, values: dict[str, Any], *, creating: bool) -> None:
        """Validate the fields against each other, then set them."""
        duration = values.get("duration_seconds", None if creating else content.duration_seconds)
        credits_start = values.get("credits_start_seconds", None if creating else content.credits_start_seconds)
        if credits_start is not None and duration is not None and credits_start >= duration:
            raise field_error("credits_start_seconds", "must be less than duration_seconds")
        genres = await self._genres_by_slug(values["genres"]) if "genres" in values else None
        for field, value in values.items():
            if field != "genres":
                setattr(content, field, " ".join(value.split()) if field == "title" else value)
        if genres is not None:
            content.genres = genres
        if content.published and content.published_at is None:
            content.published_at = utcnow()

    async def _genres_by_slug(self, slugs: Iterable[str]) -> list[Genre]:
        wanted = list(dict.fromkeys(slugs))
        if not wanted:
            return []
        found = {genre.slug: genre for genre in await self.session.scalars(select(Genre).where(Genre.slug.in_(wanted)))}
        unknown = [slug for slug in wanted if slug not in found]
        if unknown:
            raise field_error("genres", f"unknown genre slugs: {', '.join(unknown)}")
        return [found[slug] for slug in wanted]

    # genres

    async def genres(self) -> Sequence[Genre]:
        return (await self.session.scalars(select(Genre).order_by(Genre.name, Genre.slug))).all()

    async def create_genre(self, slug: str, name: str) -> Genre:
        if await self.session.scalar(select(Genre.id).where(Genre.slug == slug)) is not None:
            raise GenreSlugTaken()
        genre = Genre(slug=slug, name=name.strip())
        self.session.add(genre)
        await self._flush_genre()
        self._catalog_changed()
        return genre

    async def update_genre(self, genre_id: uuid.UUID, slug: str, name: str) -> Genre:
        genre = await self._genre(genre_id)
        taken = await self.session.scalar(select(Genre.id).where(Genre.slug == slug, Genre.id != genre_id))
        if taken is not None:
            raise GenreSlugTaken()
        genre.slug = slug
        genre.name = name.strip()
        await self._flush_genre()
        self._catalog_changed()
        return genre

    async def delete_genre(self, genre_id: uuid.UUID) -> None:
        """Titles and followers simply lose the genre."""
        genre = await self._genre(genre_id)
        await self.session.delete(genre)
        await self.session.flush()
        self._catalog_changed()

    async def _genre(self, genre_id: uuid.UUID) -> Genre:
        genre = await self.session.get(Genre, genre_id)
        if genre is None:
            raise GenreNotFound()
        return genre

    async def _flush_genre(self) -> None:
        try:
            await self.session.flush()
        except IntegrityError:  # the slug is the only constraint: a concurrent request took it
            raise GenreSlugTaken() from None

    # followed genres

    async def followed_genres(self, user_id: uuid.UUID) -> Sequence[Genre]:
        return (
            await self.session.scalars(
                select(Genre)
                .join(user_genres, user_genres.c.genre_id == Genre.id)
                .where(user_genres.c.user_id == user_id)
                .order_by(Genre.name, Genre.slug)
            )
        ).all()

    async def follow_genres(self, user_id: uuid.UUID, slugs: Iterable[str]) -> Sequence[Genre]:
        """Replace the set of genres the user follows."""
        genres = await self._genres_by_slug(slugs)
        await self.session.execute(delete(user_genres).where(user_genres.c.user_id == user_id))
        if genres:
            try:
                await self.session.execute(
                    insert(user_genres), [{"user_id": user_id, "genre_id": genre.id} for genre in genres]
                )
            except IntegrityError:  # the same user's concurrent request got there first
                raise Conflict("Your genres were changed at the same time; try again.") from None
        return await self.followed_genres(user_id)


def _published(content: Content) -> TitlePublished:
    return TitlePublished(
        content_id=content.id,
        title=content.title,
        release_year=content.release_year,
        genre_ids=tuple(genre.id for genre in content.genres),
    )
