"""What the catalog announces to the domains above it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from reelhouse.platform.uow import DomainEvent


@dataclass(frozen=True, slots=True)
class TitlePublished(DomainEvent):
    """A title was published for the first time (notifications mail the followers of its genres)."""

    content_id: UUID
    title: str
    release_year: int | None
    genre_ids: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class TitleWithdrawn(DomainEvent):
    """A title was unpublished or deleted (playback stops trusting what it remembered of it)."""

    content_id: UUID
