"""The dispatcher: claims due mail from the outbox, sends it, records the outcome.

The outbox is a :class:`~reelhouse.platform.leases.LeasedQueue` (as the media jobs are): a claim
moves due rows to ``sending`` under a fresh claim token and a lease, so any number of dispatchers
(API processes, ``reelhouse notifications worker``) share the work and never take the same row.
A row whose lease runs out (its dispatcher died mid-send) is due again. Outcomes are recorded
only under the claim token, so a dispatcher that lost its lease cannot overwrite a newer claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from reelhouse.notifications.mail import MailBackend, build_message, mail_backend_for, message_id_for
from reelhouse.notifications.models import Notification, NotificationStatus
from reelhouse.notifications.services import (
    PREFERENCE_OF_KIND,
    REMINDER_SCAN_INTERVAL_SECONDS,
    NotificationService,
    enqueue_due_reminders,
)
from reelhouse.notifications.templates import render
from reelhouse.notifications.tokens import UnsubscribeTokens
from reelhouse.platform.jobs import stopped_by_signals
from reelhouse.platform.leases import LeasedQueue, retry_delay
from reelhouse.platform.uow import EventBus, UnitOfWorkFactory

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig

    from reelhouse.config import Settings

logger = logging.getLogger(__name__)

#: Batches one dispatch run may send before yielding to the next run.
MAX_BATCHES_PER_RUN = 10
MAX_ERROR_LENGTH = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


#: The outbox is a leased queue: the claim machinery is the one the media jobs use too.
OUTBOX = LeasedQueue(Notification, waiting=NotificationStatus.PENDING, running=NotificationStatus.SENDING)


def public_base_url(settings: Settings) -> str:
    server = settings.server
    return (server.public_url or f"http://{server.host}:{server.port}").rstrip("/")


def unsubscribe_url(settings: Settings, token: str) -> str:
    return f"{public_base_url(settings)}/api/v1/notifications/unsubscribe?token={token}"


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    id: uuid.UUID
    claim_token: str
    attempts: int


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.skipped


class NotificationDispatcher:
    def __init__(
        self,
        settings: Settings,
        db_config: SQLAlchemyAsyncConfig,
        mailer: MailBackend | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.db_config = db_config
        self._units = UnitOfWorkFactory(db_config, EventBus())
        self.mailer = mailer or mail_backend_for(settings)
        self.unsubscribe_tokens = UnsubscribeTokens(settings.auth.jwt_secret)
        self._rand = rand

    @property
    def units(self) -> UnitOfWorkFactory:
        return self._units

    @property
    def in_api_interval_seconds(self) -> float:
        """The API's job interval; 0 (never) when a separate worker sends the mail."""
        notifications = self.settings.notifications
        return notifications.poll_seconds if notifications.dispatch_in_api else 0

    async def dispatch_due(self, now: datetime | None = None) -> DispatchReport:
        """Send what is due at ``now``, a batch at a time, until nothing is left (or enough for one run)."""
        report = DispatchReport()
        batch_size = self.settings.notifications.batch_size
        for _ in range(MAX_BATCHES_PER_RUN):
            claimed = await self.claim(now or utcnow(), batch_size)
            for mail in claimed:
                await self._deliver(mail, now, report)
            if len(claimed) < batch_size:
                break
        return report

    async def claim(self, now: datetime, limit: int) -> list[ClaimedMail]:
        """Move up to ``limit`` due rows to ``sending`` under a new claim token and lease."""
        async with self._units.begin() as uow:
            claimed = await OUTBOX.claim(
                uow.session,
                now,
                limit,
                timedelta(seconds=self.settings.notifications.lease_seconds),
                # A digest takes no more titles once it is on its way.
                extra_values={"open_digest_key": None},
            )
        return [ClaimedMail(id=item.id, claim_token=item.claim_token, attempts=item.attempts) for item in claimed]

    async def _deliver(self, mail: ClaimedMail, now: datetime | None, report: DispatchReport) -> None:
        async with self._units.begin() as uow:
            session = uow.session
            notification = await session.get(Notification, mail.id)
            if notification is None:  # its account was deleted meanwhile
                return
            skip = await NotificationService(session, self.settings).skip_reason(notification)
            session.expunge(notification)
        if skip is not None:
            await self._finish(mail, now, status=NotificationStatus.SKIPPED, error=skip)
            report.skipped += 1
            return
        try:
            await self.mailer.send(self._message(notification, now or utcnow()))
        except Exception as exc:  # noqa: BLE001  (any failure to send is retried, then reported)
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
            report.errors.append(error)
            if mail.attempts >= self.settings.notifications.max_attempts:
                logger.warning("notification %s failed for good after %s attempts: %s", mail.id, mail.attempts, error)
                await self._finish(mail, now, status=NotificationStatus.FAILED, error=error)
                report.failed += 1
            else:
                notifications = self.settings.notifications
                delay = retry_delay(
                    mail.attempts,
                    base_seconds=notifications.retry_base_seconds,
                    max_seconds=notifications.retry_max_seconds,
                    rand=self._rand,
                )
                await self._finish(mail, now, status=NotificationStatus.PENDING, error=error, retry_in=delay)
                report.retried += 1
            return
        await self._finish(mail, now, status=NotificationStatus.SENT)
        report.sent += 1

    def _message(self, notification: Notification, now: datetime) -> Any:
        settings = self.settings
        link = unsubscribe_url(settings, self._unsubscribe_token(notification))
        rendered = render(notification.template, notification.context, link)
        return build_message(
            sender=settings.notifications.mail_from,
            recipient=notification.recipient,
            rendered=rendered,
            unsubscribe_url=link,
            message_id=message_id_for(notification.id, settings.notifications.mail_from),
            date=now,
        )

    def _unsubscribe_token(self, notification: Notification) -> str:
        assert notification.kind in PREFERENCE_OF_KIND
        assert notification.user_id is not None
        return self.unsubscribe_tokens.issue(notification.user_id, notification.kind)

    async def _finish(
        self,
        mail: ClaimedMail,
        now: datetime | None,
        *,
        status: NotificationStatus,
        error: str | None = None,
        retry_in: timedelta | None = None,
    ) -> None:
        now = now or utcnow()
        values: dict[str, Any] = {
            "status": status,
            "claim_token": None,
            "claimed_until": None,
            "last_error": error,
            "updated_at": now,
        }
        if status is NotificationStatus.SENT:
            values["sent_at"] = now
        if retry_in is not None:
            values["next_attempt_at"] = now + retry_in
        async with self._units.begin() as uow:
            session = uow.session
            await session.execute(
                update(Notification)
                .where(Notification.id == mail.id, Notification.claim_token == mail.claim_token)
                .values(**values)
                .execution_options(synchronize_session=False)
            )


async def run_worker(
    settings: Settings, db_config: SQLAlchemyAsyncConfig, *, once: bool = False, stop: asyncio.Event | None = None
) -> None:
    """``reelhouse notifications worker``: queue reminders and send mail until SIGINT/SIGTERM.

    A signal lets the batch in hand finish (each send is bounded by the SMTP timeout), then exits;
    anything claimed and not finished is claimed again after the lease.
    """
    dispatcher = NotificationDispatcher(settings, db_config)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    last_scan = 0.0
    try:
        with stopped_by_signals(stop):
            while not stop.is_set():
                if loop.time() - last_scan >= REMINDER_SCAN_INTERVAL_SECONDS or last_scan == 0.0:
                    last_scan = loop.time()
                    try:
                        await enqueue_due_reminders(dispatcher.units, settings)
                    except Exception:
                        logger.exception("queueing subscription reminders failed; trying again later")
                try:
                    report = await dispatcher.dispatch_due()
                    if report.handled:
                        logger.info(
                            "notifications: %s sent, %s to retry, %s failed, %s skipped",
                            report.sent,
                            report.retried,
                            report.failed,
                            report.skipped,
                        )
                except Exception:
                    logger.exception("dispatching notifications failed; trying again shortly")
                if once:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.notifications.poll_seconds)
    finally:
        await db_config.get_engine().dispose()
