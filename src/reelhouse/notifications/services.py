"""Notification rules: what goes into the outbox and when, preferences, and the administrators' view.

Services never commit: every enqueue happens in the caller's transaction, so a mail exists
exactly when the change that causes it does.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reelhouse.accounts.repositories import UserRepository
from reelhouse.catalog.repositories import GenreFollowers
from reelhouse.notifications.models import (
    Notification,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
    release_notices,
)
from reelhouse.notifications.templates import NEW_RELEASES_TEMPLATE, REMINDER_TEMPLATE, subject_for
from reelhouse.notifications.tokens import InvalidUnsubscribeToken, UnsubscribeTokens
from reelhouse.platform.errors import Conflict, InvalidInput, NotFound
from reelhouse.subscriptions.models import SubscriptionStatus
from reelhouse.subscriptions.repositories import SubscriptionRepository

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from reelhouse.catalog.events import TitlePublished
    from reelhouse.config import Settings
    from reelhouse.platform.uow import UnitOfWork, UnitOfWorkFactory

#: How often each process looks for subscriptions that are due a reminder.
REMINDER_SCAN_INTERVAL_SECONDS = 600
#: Merging into an open digest races a dispatcher closing it; this many tries always suffice.
DIGEST_MERGE_TRIES = 3

#: Each kind of mail and the preference that turns it off.
PREFERENCE_OF_KIND: dict[NotificationKind, str] = {
    NotificationKind.SUBSCRIPTION_REMINDER: "subscription_reminders",
    NotificationKind.NEW_RELEASES: "new_releases",
}


class BadUnsubscribeLink(InvalidInput):
    status_code = HTTPStatus.BAD_REQUEST
    code = "invalid_unsubscribe_token"
    default_detail = "This unsubscribe link is not valid."


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    default_detail = "No such notification."


class NotificationNotRequeueable(Conflict):
    code = "notification_not_requeueable"
    default_detail = "Only failed or skipped notifications can be requeued."


def utcnow() -> datetime:
    return datetime.now(UTC)


def reminder_offset_due(time_left: timedelta, offsets: Sequence[int]) -> int | None:
    """The reminder (in days before the end) due with ``time_left`` to go: the nearest one reached.

    With 7, 3 and 1: six days left is the 7-day reminder, two days left the 3-day one. Only the
    nearest is sent, so a subscription cancelled two days before its end gets one mail, not two.
    """
    if time_left <= timedelta(0):
        return None
    reached = [days for days in offsets if time_left <= timedelta(days=days)]
    return min(reached) if reached else None


def reminder_dedupe_key(subscription_id: uuid.UUID, end_date: datetime, offset_days: int) -> str:
    """One reminder per subscription period and offset: a renewal moves ``end_date`` and so starts afresh."""
    return f"reminder:{subscription_id}:{end_date.astimezone(UTC).isoformat()}:{offset_days}d"


class NotificationService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    @property
    def _is_postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def _insert(self, table: Any) -> Any:
        """An INSERT that can say ON CONFLICT DO NOTHING on either database."""
        return postgresql.insert(table) if self._is_postgresql else sqlite.insert(table)

    # preferences

    async def preferences(self, user_id: uuid.UUID) -> NotificationPreference:
        found = await self.session.scalar(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        )
        return found or NotificationPreference(user_id=user_id, subscription_reminders=True, new_releases=True)

    async def update_preferences(self, user_id: uuid.UUID, changes: dict[str, bool]) -> NotificationPreference:
        values = {"user_id": user_id, **changes}
        statement = self._insert(NotificationPreference).values(id=uuid.uuid4(), **values)
        if changes:
            statement = statement.on_conflict_do_update(
                index_elements=[NotificationPreference.user_id], set_={**changes, "updated_at": utcnow()}
            )
        else:
            statement = statement.on_conflict_do_nothing()
        await self.session.execute(statement)
        await self.session.flush()
        preference = await self.session.scalar(
            select(NotificationPreference)
            .where(NotificationPreference.user_id == user_id)
            .execution_options(populate_existing=True)
        )
        assert preference is not None
        return preference

    async def unsubscribe_with_token(self, token: str) -> NotificationKind:
        """Turn off the kind of mail an unsubscribe link names, for the user it names."""
        try:
            request = UnsubscribeTokens(self.settings.auth.jwt_secret).verify(token)
        except InvalidUnsubscribeToken:
            raise BadUnsubscribeLink() from None
        await self.unsubscribe(request.user_id, request.kind)
        return request.kind

    async def unsubscribe(self, user_id: uuid.UUID, kind: NotificationKind) -> None:
        if await UserRepository(session=self.session).get_one_or_none(id=user_id) is None:
            return  # the account is gone, and its mail with it
        await self.update_preferences(user_id, {PREFERENCE_OF_KIND[kind]: False})

    # enqueueing

    async def enqueue(
        self,
        *,
        user_id: uuid.UUID,
        kind: NotificationKind,
        recipient: str,
        template: str,
        context: dict[str, Any],
        dedupe_key: str,
        send_after: datetime,
        open_digest_key: str | None = None,
        row_id: uuid.UUID | None = None,
    ) -> bool:
        """Add a mail to the outbox unless one with this dedupe key exists; True if it was added."""
        row_id = row_id or uuid.uuid4()
        now = utcnow()
        statement = (
            self._insert(Notification)
            .values(
                id=row_id,
                user_id=user_id,
                kind=kind,
                recipient=recipient,
                subject=subject_for(template, context),
                template=template,
                context=context,
                dedupe_key=dedupe_key,
                open_digest_key=open_digest_key,
                status=NotificationStatus.PENDING,
                attempts=0,
                next_attempt_at=send_after,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(Notification.id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def enqueue_due_reminders(self, now: datetime | None = None) -> int:
        """Queue the reminders due at ``now`` for subscriptions ending without renewal; returns how many."""
        now = now or utcnow()
        offsets = self.settings.notifications.reminder_offsets
        if not offsets:
            return 0
        ending = await SubscriptionRepository(self.session).ending_without_renewal(
            now, now + timedelta(days=max(offsets))
        )
        recipients = await self._recipients({e.user_id for e in ending}, NotificationKind.SUBSCRIPTION_REMINDER)
        queued = 0
        for subscription in ending:
            contact = recipients.get(subscription.user_id)
            time_left = subscription.end_date - now
            offset = reminder_offset_due(time_left, offsets)
            if contact is None or offset is None:
                continue
            email, name = contact
            context = {
                "subscription_id": str(subscription.id),
                "end_date": subscription.end_date.astimezone(UTC).isoformat(),
                "plan_name": subscription.plan_name,
                "name": name,
                "offset_days": offset,
                "days": max(1, math.ceil(time_left / timedelta(days=1))),
            }
            queued += await self.enqueue(
                user_id=subscription.user_id,
                kind=NotificationKind.SUBSCRIPTION_REMINDER,
                recipient=email,
                template=REMINDER_TEMPLATE,
                context=context,
                dedupe_key=reminder_dedupe_key(subscription.id, subscription.end_date, offset),
                send_after=now,
            )
        return queued

    async def announce_release(
        self,
        content_id: uuid.UUID,
        *,
        title: str,
        release_year: int | None,
        genre_ids: Sequence[uuid.UUID],
        now: datetime | None = None,
    ) -> int:
        """Tell every follower of any of the title's genres, once per user and title; returns how many."""
        if not genre_ids:
            return 0
        now = now or utcnow()
        followers = await GenreFollowers(self.session).of(genre_ids)
        recipients = await self._recipients(followers, NotificationKind.NEW_RELEASES)
        if not recipients:
            return 0
        table: Table = release_notices
        # The ledger's primary key (user, title) makes the announcement once-only, whatever races.
        told = await self.session.execute(
            self._insert(table)
            .values([{"user_id": user_id, "content_id": content_id, "created_at": now} for user_id in recipients])
            .on_conflict_do_nothing()
            .returning(table.c.user_id)
        )
        user_ids = [row[0] for row in told]
        item = {"id": str(content_id), "title": title, "release_year": release_year}
        send_after = now + timedelta(minutes=self.settings.notifications.new_release_digest_minutes)
        for user_id in sorted(user_ids):
            email, name = recipients[user_id]
            await self._add_to_digest(user_id, email, name, item, send_after)
        return len(user_ids)

    async def _recipients(
        self, user_ids: Iterable[uuid.UUID], kind: NotificationKind
    ) -> dict[uuid.UUID, tuple[str, str]]:
        """Email and name of each of the users with an active account who did not turn ``kind`` off."""
        contacts = await UserRepository(session=self.session).active_contacts(user_ids)
        if not contacts:
            return {}
        column = getattr(NotificationPreference, PREFERENCE_OF_KIND[kind])
        opted_out = set(
            await self.session.scalars(
                select(NotificationPreference.user_id).where(
                    NotificationPreference.user_id.in_(list(contacts)), column.is_(False)
                )
            )
        )
        return {user_id: contact for user_id, contact in contacts.items() if user_id not in opted_out}

    async def _add_to_digest(
        self, user_id: uuid.UUID, email: str, name: str, item: dict[str, Any], send_after: datetime
    ) -> None:
        """Join the user's open new-release digest, or open one that goes out at ``send_after``."""
        open_key = f"{NotificationKind.NEW_RELEASES.value}:{user_id}"
        for _ in range(DIGEST_MERGE_TRIES):
            digest = await self.session.scalar(
                select(Notification).where(Notification.open_digest_key == open_key).with_for_update()
            )
            if digest is not None:
                context = {**digest.context, "titles": [*digest.context["titles"], item]}
                digest.context = context
                digest.subject = subject_for(digest.template, context)
                await self.session.flush()
                return
            row_id = uuid.uuid4()
            opened = await self.enqueue(
                user_id=user_id,
                kind=NotificationKind.NEW_RELEASES,
                recipient=email,
                template=NEW_RELEASES_TEMPLATE,
                context={"name": name, "titles": [item]},
                dedupe_key=f"{open_key}:{row_id}",
                open_digest_key=open_key,
                send_after=send_after,
                row_id=row_id,
            )
            if opened:
                return
        raise RuntimeError("could not open or join a new-release digest")  # pragma: no cover

    # at send time

    async def skip_reason(self, notification: Notification) -> str | None:
        """Why a due mail should no longer go out, or None to send it."""
        if notification.user_id is not None:
            user = await UserRepository(session=self.session).get_one_or_none(id=notification.user_id)
            if user is None or not user.is_active:
                return "the account is disabled"
            preference = await self.preferences(notification.user_id)
            if not getattr(preference, PREFERENCE_OF_KIND[notification.kind]):
                return "the recipient turned this kind of mail off"
        if notification.kind == NotificationKind.SUBSCRIPTION_REMINDER:
            subscription = await SubscriptionRepository(self.session).get(
                uuid.UUID(notification.context["subscription_id"])
            )
            if (
                subscription is None
                or subscription.auto_renew
                or subscription.status == SubscriptionStatus.EXPIRED
                or subscription.end_date.astimezone(UTC).isoformat() != notification.context["end_date"]
            ):
                return "the subscription was renewed or has changed"
        return None

    # administrators

    async def outbox(
        self, *, status: NotificationStatus | None, kind: NotificationKind | None, limit: int, offset: int
    ) -> tuple[Sequence[Notification], int]:
        conditions = []
        if status is not None:
            conditions.append(Notification.status == status)
        if kind is not None:
            conditions.append(Notification.kind == kind)
        total = await self.session.scalar(select(func.count()).select_from(Notification).where(*conditions)) or 0
        rows = await self.session.scalars(
            select(Notification)
            .where(*conditions)
            .order_by(Notification.created_at.desc(), Notification.id)
            .limit(limit)
            .offset(offset)
        )
        return rows.all(), total

    async def requeue(self, notification_id: uuid.UUID, now: datetime | None = None) -> Notification:
        """Send a failed (or skipped) mail again, with a fresh set of attempts."""
        now = now or utcnow()
        notification = await self.session.get(Notification, notification_id)
        if notification is None:
            raise NotificationNotFound()
        if notification.status in (NotificationStatus.SENT, NotificationStatus.SENDING):
            raise NotificationNotRequeueable()
        await self.session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status == notification.status)
            .values(
                status=NotificationStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                claimed_until=None,
                claim_token=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.flush()
        refreshed = await self.session.scalar(
            select(Notification).where(Notification.id == notification_id).execution_options(populate_existing=True)
        )
        assert refreshed is not None
        return refreshed


async def enqueue_due_reminders(units: UnitOfWorkFactory, settings: Settings, now: datetime | None = None) -> int:
    """The periodic job: queue the reminders that are due."""
    async with units.begin() as uow:
        return await NotificationService(uow.session, settings).enqueue_due_reminders(now)


def mail_followers_on_release(settings: Settings) -> Callable[[UnitOfWork, TitlePublished], Awaitable[None]]:
    """The handler of :class:`TitlePublished`: mail the followers of the title's genres, in the
    same unit of work as the publication (the outbox)."""

    async def handle(uow: UnitOfWork, event: TitlePublished) -> None:
        await NotificationService(uow.session, settings).announce_release(
            event.content_id, title=event.title, release_year=event.release_year, genre_ids=list(event.genre_ids)
        )

    return handle
