"""Notifications end to end: the outbox, a real SMTP server, reminders, new releases, preferences.

The dispatcher runs on the test's event loop with its own engine and an explicit clock (``now``),
so retries, leases and digests are tested without sleeping. The app's own dispatcher is off.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from catalog_helpers import Person, create_genre, create_title, database, new_admin, new_user, subscribe
from sqlalchemy import select

from reelhouse.notifications.dispatcher import NotificationDispatcher
from reelhouse.notifications.mail import FileMailBackend, MailBackend
from reelhouse.notifications.models import Notification, NotificationKind, NotificationStatus
from reelhouse.notifications.services import NotificationService
from reelhouse.platform.db import build_sqlalchemy_config
from reelhouse.subscriptions.models import Subscription
from smtp import MailCatcher, bodies

PREFERENCES = "/api/v1/users/notification-preferences"
OUTBOX = "/api/v1/admin/notifications"
UNSUBSCRIBE_LINK = re.compile(r"https?://[^/\s]+(/api/v1/notifications/unsubscribe\?token=[\w.-]+)")
DIGEST = timedelta(minutes=15)


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    catcher = MailCatcher()
    catcher.start()
    yield catcher
    catcher.stop()


@pytest.fixture
def smtp_down() -> Iterator[MailCatcher]:
    """A catcher whose port is known but which is not listening until the test starts it."""
    catcher = MailCatcher()
    yield catcher
    catcher.stop()


def later(minutes: float = 16) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


@asynccontextmanager
async def dispatcher(client: Any, mailer: MailBackend | None = None) -> AsyncIterator[NotificationDispatcher]:
    """A dispatcher on this event loop with an engine of its own (as a separate worker has)."""
    settings = client.app.state.components.settings
    config = build_sqlalchemy_config(settings)
    try:
        yield NotificationDispatcher(settings, config, mailer, rand=lambda: 0.5)
    finally:
        await config.get_engine().dispose()


async def outbox_rows(client: Any, **filters: Any) -> list[Notification]:
    async with database(client) as session:
        statement = select(Notification).order_by(Notification.created_at)
        for name, value in filters.items():
            statement = statement.where(getattr(Notification, name) == value)
        return list((await session.scalars(statement)).all())


async def follow(client: Any, person: Person, *slugs: str) -> None:
    response = await client.put("/api/v1/users/genres", json={"genres": list(slugs)}, headers=person.headers)
    assert response.status_code == 200, response.text


def unsubscribe_path(message: EmailMessage) -> str:
    text, _ = bodies(message)
    match = UNSUBSCRIBE_LINK.search(text)
    assert match, text
    header = str(message["List-Unsubscribe"])
    assert match.group(1) in header
    return match.group(1)


@pytest.fixture
async def app_client(make_client: Any, smtp: MailCatcher) -> AsyncIterator[Any]:
    async with make_client(SMTP_URL=smtp.url, NOTIFICATION_DISPATCH_IN_API="false") as client:
        yield client


class TestNewReleases:
    async def test_a_title_in_two_followed_genres_is_one_mail_with_text_html_and_a_working_unsubscribe(
        self, app_client, smtp
    ):
        client = app_client
        admin = await new_admin(client)
        await create_genre(client, admin, "drama")
        await create_genre(client, admin, "comedy")
        fan = await new_user(client, "fan")
        await follow(client, fan, "drama", "comedy")
        bystander = await new_user(client, "bystander")
        await create_title(client, admin, title="Dramedy Night", genres=["drama", "comedy"], release_year=2024)

        rows = await outbox_rows(client)
        assert [(row.user_id, row.kind) for row in rows] == [(fan.id, NotificationKind.NEW_RELEASES)]
        async with dispatcher(client) as worker:
            assert (await worker.dispatch_due()).sent == 0  # held back for the digest window
            assert (await worker.dispatch_due(later())).sent == 1
            assert (await worker.dispatch_due(later(60))).handled == 0

        assert len(smtp.received) == 1
        recipients, message = smtp.received[0]
        assert recipients == [rows[0].recipient]
        assert rows[0].recipient.startswith("fan")
        assert message["Subject"] == "New on Reelhouse: Dramedy Night"
        text, html = bodies(message)
        assert "Dramedy Night (2024)" in text
        assert "<strong>Dramedy Night</strong>" in html
        assert "Unsubscribe" in html
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert bystander.id not in {row.user_id for row in rows}

        page = await client.get(unsubscribe_path(message))  # no Authorization header
        assert page.status_code == 200
        assert "new-release mails" in page.text
        preferences = await client.get(PREFERENCES, headers=fan.headers)
        assert preferences.json() == {"subscription_reminders": True, "new_releases": False}
        await create_title(client, admin, title="After Unsubscribing", genres=["drama"])
        assert len(await outbox_rows(client)) == 1

    async def test_a_burst_of_three_releases_is_one_digest(self, app_client, smtp):
        client = app_client
        admin = await new_admin(client)
        await create_genre(client, admin, "horror")
        fan = await new_user(client, "fan")
        await follow(client, fan, "horror")
        for name in ("Night One", "Night Two", "Night Three"):
            await create_title(client, admin, title=name, genres=["horror"])

        rows = await outbox_rows(client)
        assert len(rows) == 1
        assert [item["title"] for item in rows[0].context["titles"]] == ["Night One", "Night Two", "Night Three"]
        async with dispatcher(client) as worker:
            assert (await worker.dispatch_due(later())).sent == 1
            # A release after the digest went out starts the next digest.
            await create_title(client, admin, title="Night Four", genres=["horror"])
            assert (await worker.dispatch_due(later(40))).sent == 1

        first, second = smtp.messages
        assert first["Subject"] == "3 new titles on Reelhouse"
        text, html = bodies(first)
        assert all(name in text and name in html for name in ("Night One", "Night Two", "Night Three"))
        assert second["Subject"] == "New on Reelhouse: Night Four"

    async def test_publishing_later_announces_once_and_republishing_never_again(self, app_client):
        client = app_client
        admin = await new_admin(client)
        await create_genre(client, admin, "anime")
        fan = await new_user(client, "fan")
        await follow(client, fan, "anime")
        draft = await create_title(client, admin, title="Draft", genres=["anime"], published=False)
        assert await outbox_rows(client) == []

        path = f"/api/v1/admin/content/{draft['id']}"
        for published in (True, False, True):
            response = await client.patch(path, json={"published": published}, headers=admin.headers)
            assert response.status_code == 200, response.text
        rows = await outbox_rows(client)
        assert len(rows) == 1
        assert [item["title"] for item in rows[0].context["titles"]] == ["Draft"]

    async def test_the_mail_is_written_with_the_title_in_one_transaction(self, app_client):
        """A refused title write leaves no mail behind."""
        client = app_client
        admin = await new_admin(client)
        await create_genre(client, admin, "noir")
        fan = await new_user(client, "fan")
        await follow(client, fan, "noir")
        bad = await client.post(
            "/api/v1/admin/content",
            json={
                "title": "Broken",
                "access_level": "free",
                "duration_seconds": 100,
                "credits_start_seconds": 200,
                "genres": ["noir"],
                "release_year": 2020,
                "video_url": "https://media.example.com/x.m3u8",
                "published": True,
            },
            headers=admin.headers,
        )
        assert bad.status_code == 422
        assert await outbox_rows(client) == []


async def cancelled_subscription(client: Any, person: Person) -> tuple[uuid.UUID, datetime]:
    subscription_id = await subscribe(client, person.id, "basic")
    response = await client.post(f"/api/v1/subscriptions/{subscription_id}/cancel", headers=person.headers)
    assert response.status_code == 200, response.text
    async with database(client) as session:
        subscription = await session.get(Subscription, subscription_id)
        assert subscription is not None
        return subscription_id, subscription.end_date


async def queue_reminders(client: Any, now: datetime) -> int:
    async with database(client) as session:
        return await NotificationService(session, client.app.state.components.settings).enqueue_due_reminders(now)


def plan_free(subject: str) -> str:
    """The subject without the plan's name (the helper's plans are named "basic <random>")."""
    return re.sub(r"^Your basic \w+ subscription", "Your subscription", subject)


class TestReminders:
    async def test_seven_three_and_one_days_before_the_end_once_each(self, app_client, smtp):
        client = app_client
        person = await new_user(client, "leaving")
        _, end = await cancelled_subscription(client, person)

        schedule = [(8, 0), (6.9, 1), (6.5, 0), (4, 0), (2.9, 1), (2.5, 0), (0.9, 1), (0.1, 0)]
        async with dispatcher(client) as worker:
            for days_left, expected in schedule:
                now = end - timedelta(days=days_left)
                assert await queue_reminders(client, now) == expected, days_left
                await worker.dispatch_due(now)
        assert [plan_free(message["Subject"]) for message in smtp.messages] == [
            "Your subscription ends in 7 days",
            "Your subscription ends in 3 days",
            "Your subscription ends tomorrow",
        ]
        text, html = bodies(smtp.messages[0])
        assert "will not renew" in text
        assert "Unsubscribe" in html

    async def test_a_subscription_cancelled_two_days_before_its_end_gets_one_reminder(self, app_client):
        client = app_client
        person = await new_user(client, "late")
        _, end = await cancelled_subscription(client, person)
        assert await queue_reminders(client, end - timedelta(days=2)) == 1
        assert await queue_reminders(client, end - timedelta(days=1.5)) == 0
        (row,) = await outbox_rows(client)
        assert row.context["offset_days"] == 3
        assert plan_free(row.subject) == "Your subscription ends in 2 days"

    async def test_no_reminder_after_renewing_even_one_already_queued(self, app_client, smtp):
        client = app_client
        person = await new_user(client, "renewer")
        subscription_id, end = await cancelled_subscription(client, person)
        now = end - timedelta(days=6.9)
        assert await queue_reminders(client, now) == 1
        renewed = await client.post(f"/api/v1/subscriptions/{subscription_id}/renew", headers=person.headers)
        assert renewed.status_code == 201, renewed.text
        assert await queue_reminders(client, now) == 0
        assert await queue_reminders(client, end - timedelta(days=0.5)) == 0
        async with dispatcher(client) as worker:
            report = await worker.dispatch_due(now)
        assert (report.sent, report.skipped) == (0, 1)
        assert smtp.messages == []
        (row,) = await outbox_rows(client)
        assert row.status == NotificationStatus.SKIPPED

    async def test_none_for_an_active_auto_renewing_subscription_or_a_user_who_opted_out(self, app_client):
        client = app_client
        renewing = await new_user(client, "renewing")
        subscription_id = await subscribe(client, renewing.id, "basic")
        opted_out = await new_user(client, "quiet")
        response = await client.put(PREFERENCES, json={"subscription_reminders": False}, headers=opted_out.headers)
        assert response.json() == {"subscription_reminders": False, "new_releases": True}
        _, end = await cancelled_subscription(client, opted_out)
        async with database(client) as session:
            subscription = await session.get(Subscription, subscription_id)
            assert subscription is not None
            assert subscription.auto_renew
        assert await queue_reminders(client, end - timedelta(days=1)) == 0


class TestDelivery:
    async def test_smtp_outage_retries_with_backoff_then_delivers_every_mail_exactly_once(self, make_client, smtp_down):
        async with make_client(SMTP_URL=smtp_down.url, NOTIFICATION_DISPATCH_IN_API="false") as client:
            admin = await new_admin(client)
            await create_genre(client, admin, "docs")
            fans = [await new_user(client, "fan") for _ in range(3)]
            for fan in fans:
                await follow(client, fan, "docs")
            await create_title(client, admin, title="Outage", genres=["docs"])
            start = later()
            async with dispatcher(client) as worker:
                first = await worker.dispatch_due(start)
                assert (first.sent, first.retried) == (0, 3)
                rows = await outbox_rows(client)
                assert {row.status for row in rows} == {NotificationStatus.PENDING}
                assert {row.attempts for row in rows} == {1}
                assert all(row.last_error and "SMTP" in row.last_error for row in rows)
                # 30 s base, jitter fixed at the middle: 22.5 s, then 45 s.
                assert {row.next_attempt_at - start for row in rows} == {timedelta(seconds=22.5)}
                visible = await client.get(OUTBOX, params={"status": "pending"}, headers=admin.headers)
                assert visible.json()["total"] == 3
                assert {item["attempts"] for item in visible.json()["notifications"]} == {1}

                assert (await worker.dispatch_due(start + timedelta(seconds=10))).handled == 0  # backing off
                second = await worker.dispatch_due(start + timedelta(seconds=23))
                assert second.retried == 3
                rows = await outbox_rows(client)
                assert {row.next_attempt_at - (start + timedelta(seconds=23)) for row in rows} == {
                    timedelta(seconds=45)
                }

                smtp_down.start()
                assert (await worker.dispatch_due(start + timedelta(minutes=5))).sent == 3
                assert (await worker.dispatch_due(start + timedelta(hours=5))).handled == 0
        messages = smtp_down.messages
        assert len(messages) == 3
        assert len({message["Message-ID"] for message in messages}) == 3
        assert sorted(str(message["To"]) for message in messages) == sorted(row.recipient for row in rows)
        assert {row.status for row in await outbox_rows(client)} == {NotificationStatus.SENT}

    async def test_gives_up_after_max_attempts_then_an_admin_requeues(self, make_client, smtp_down):
        async with make_client(
            SMTP_URL=smtp_down.url, NOTIFICATION_DISPATCH_IN_API="false", NOTIFICATION_MAX_ATTEMPTS="2"
        ) as client:
            admin = await new_admin(client)
            await create_genre(client, admin, "war")
            fan = await new_user(client, "fan")
            await follow(client, fan, "war")
            await create_title(client, admin, title="Doomed", genres=["war"])
            async with dispatcher(client) as worker:
                assert (await worker.dispatch_due(later())).retried == 1
                assert (await worker.dispatch_due(later(60))).failed == 1
                assert (await worker.dispatch_due(later(600))).handled == 0

                failed = await client.get(OUTBOX, params={"status": "failed"}, headers=admin.headers)
                assert failed.status_code == 200
                body = failed.json()
                assert (body["total"], body["limit"], body["offset"]) == (1, 20, 0)
                (item,) = body["notifications"]
                assert (item["status"], item["attempts"], item["kind"]) == ("failed", 2, "new_releases")
                assert item["last_error"]

                requeued = await client.post(f"{OUTBOX}/{item['id']}/requeue", headers=admin.headers)
                assert requeued.status_code == 200, requeued.text
                assert (requeued.json()["status"], requeued.json()["attempts"]) == ("pending", 0)
                smtp_down.start()
                assert (await worker.dispatch_due()).sent == 1
                again = await client.post(f"{OUTBOX}/{item['id']}/requeue", headers=admin.headers)
                assert again.status_code == 409
                assert again.json()["code"] == "notification_not_requeueable"
        assert len(smtp_down.messages) == 1

    async def test_a_claim_left_by_a_crashed_worker_is_sent_after_the_lease(self, app_client, smtp):
        client = app_client
        admin = await new_admin(client)
        await create_genre(client, admin, "crime")
        fan = await new_user(client, "fan")
        await follow(client, fan, "crime")
        await create_title(client, admin, title="Lost Claim", genres=["crime"])
        now = later()
        async with dispatcher(client) as crashed, dispatcher(client) as survivor:
            assert len(await crashed.claim(now, 10)) == 1  # ... and never finishes
            assert (await survivor.dispatch_due(now + timedelta(seconds=299))).handled == 0
            assert (await survivor.dispatch_due(now + timedelta(seconds=301))).sent == 1
        (row,) = await outbox_rows(client)
        assert (row.status, row.attempts) == (NotificationStatus.SENT, 2)
        assert len(smtp.messages) == 1

    async def test_a_claim_takes_at_most_its_batch_and_never_a_claimed_row(self, app_client):
        client = app_client
        admin = await new_admin(client)
        await create_genre(client, admin, "short")
        for _ in range(3):
            await follow(client, await new_user(client, "fan"), "short")
        await create_title(client, admin, title="Batch", genres=["short"])
        now = later()
        async with dispatcher(client) as first, dispatcher(client) as second:
            taken = await first.claim(now, 2)
            rest = await second.claim(now, 2)
            assert (len(taken), len(rest)) == (2, 1)
            assert not {mail.id for mail in taken} & {mail.id for mail in rest}
            assert await first.claim(now, 2) == []

    async def test_two_dispatchers_at_once_deliver_each_mail_once(self, make_client, smtp):
        async with make_client(
            SMTP_URL=smtp.url, NOTIFICATION_DISPATCH_IN_API="false", NOTIFICATION_BATCH_SIZE="3"
        ) as client:
            admin = await new_admin(client)
            await create_genre(client, admin, "sci-fi")
            fans = [await new_user(client, "fan") for _ in range(12)]
            for fan in fans:
                await follow(client, fan, "sci-fi")
            await create_title(client, admin, title="Crowded", genres=["sci-fi"])

            class SlowSmtp:
                """The real SMTP backend, a little slower, so the two dispatchers overlap."""

                def __init__(self, inner: MailBackend) -> None:
                    self.inner = inner

                async def send(self, message: EmailMessage) -> None:
                    await asyncio.sleep(0.01)
                    await self.inner.send(message)

            now = later()
            async with dispatcher(client) as first, dispatcher(client) as second:
                first.mailer = SlowSmtp(first.mailer)
                second.mailer = SlowSmtp(second.mailer)
                reports = await asyncio.gather(first.dispatch_due(now), second.dispatch_due(now))
        assert sum(report.sent for report in reports) == 12
        assert all(report.sent > 0 for report in reports), f"both dispatchers took a share: {reports}"
        assert len(smtp.messages) == 12
        assert len({message["Message-ID"] for message in smtp.messages}) == 12
        assert sorted(str(message["To"]) for message in smtp.messages) == sorted(
            row.recipient for row in await outbox_rows(client)
        )

    async def test_the_eml_file_backend_writes_readable_messages(self, app_client, tmp_path: Path):
        from email import message_from_bytes, policy

        client = app_client
        admin = await new_admin(client)
        await create_genre(client, admin, "family")
        fan = await new_user(client, "fan")
        await follow(client, fan, "family")
        await create_title(client, admin, title="On Disk", genres=["family"])
        async with dispatcher(client, FileMailBackend(tmp_path / "mail")) as worker:
            assert (await worker.dispatch_due(later())).sent == 1
        (path,) = (tmp_path / "mail").glob("*.eml")
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        assert message["Subject"] == "New on Reelhouse: On Disk"
        text, html = bodies(message)
        assert "On Disk" in text
        assert "On Disk" in html
        assert UNSUBSCRIBE_LINK.search(text)


class TestPreferencesAndUnsubscribe:
    async def test_preferences_default_on_and_change_one_kind_at_a_time(self, app_client):
        client = app_client
        person = await new_user(client)
        assert (await client.get(PREFERENCES, headers=person.headers)).json() == {
            "subscription_reminders": True,
            "new_releases": True,
        }
        changed = await client.put(PREFERENCES, json={"new_releases": False}, headers=person.headers)
        assert changed.json() == {"subscription_reminders": True, "new_releases": False}
        changed = await client.put(PREFERENCES, json={"subscription_reminders": False}, headers=person.headers)
        assert changed.json() == {"subscription_reminders": False, "new_releases": False}
        assert (await client.get(PREFERENCES)).status_code == 401

    async def test_one_click_post_unsubscribes_and_a_forged_token_is_refused(self, app_client):
        from reelhouse.notifications.tokens import UnsubscribeTokens

        client = app_client
        person = await new_user(client)
        tokens = UnsubscribeTokens(client.app.state.components.settings.auth.jwt_secret)
        token = tokens.issue(person.id, NotificationKind.SUBSCRIPTION_REMINDER)
        response = await client.post(
            "/api/v1/notifications/unsubscribe",
            params={"token": token},
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
        assert (await client.get(PREFERENCES, headers=person.headers)).json()["subscription_reminders"] is False

        forged = UnsubscribeTokens("another-secret-that-is-long-enough-0123456789").issue(
            person.id, NotificationKind.NEW_RELEASES
        )
        for bad in (forged, "garbage", token[:-2] + "xx"):
            refused = await client.get("/api/v1/notifications/unsubscribe", params={"token": bad})
            assert refused.status_code == 400
            assert refused.json()["code"] == "invalid_unsubscribe_token"
        assert (await client.get(PREFERENCES, headers=person.headers)).json()["new_releases"] is True


class TestAdminOutbox:
    async def test_only_administrators_see_and_requeue(self, app_client):
        client = app_client
        person = await new_user(client)
        assert (await client.get(OUTBOX)).status_code == 401
        assert (await client.get(OUTBOX, headers=person.headers)).status_code == 403
        assert (await client.post(f"{OUTBOX}/{uuid.uuid4()}/requeue", headers=person.headers)).status_code == 403
        admin = await new_admin(client)
        listed = await client.get(OUTBOX, headers=admin.headers)
        assert listed.json() == {"notifications": [], "total": 0, "limit": 20, "offset": 0}
        missing = await client.post(f"{OUTBOX}/{uuid.uuid4()}/requeue", headers=admin.headers)
        assert missing.status_code == 404
        assert missing.json()["code"] == "notification_not_found"
        assert (await client.get(OUTBOX, params={"status": "nope"}, headers=admin.headers)).status_code in (400, 422)
