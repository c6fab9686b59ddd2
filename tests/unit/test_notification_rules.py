"""Pure rules of notifications: backoff, which reminder is due, unsubscribe tokens, SMTP URLs, templates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from reelhouse.notifications.dispatcher import retry_delay
from reelhouse.notifications.mail import SmtpTarget
from reelhouse.notifications.models import NotificationKind
from reelhouse.notifications.services import reminder_dedupe_key, reminder_offset_due
from reelhouse.notifications.templates import NEW_RELEASES_TEMPLATE, REMINDER_TEMPLATE, render
from reelhouse.notifications.tokens import InvalidUnsubscribeToken, UnsubscribeTokens

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


class TestBackoff:
    def test_doubles_from_the_base_up_to_the_cap_with_jitter_in_the_upper_half(self):
        def delays(rand: float) -> list[float]:
            return [
                retry_delay(n, base_seconds=30, max_seconds=600, rand=lambda: rand).total_seconds() for n in range(1, 8)
            ]

        assert delays(1.0) == [30, 60, 120, 240, 480, 600, 600]
        assert delays(0.0) == [15, 30, 60, 120, 240, 300, 300]


class TestReminderOffsets:
    @pytest.mark.parametrize(
        ("days_left", "due"),
        [(8, None), (7, 7), (6.5, 7), (3.01, 7), (3, 3), (1.5, 3), (1, 1), (0.01, 1), (0, None), (-1, None)],
    )
    def test_the_nearest_reached_offset_is_due(self, days_left, due):
        assert reminder_offset_due(timedelta(days=days_left), [7, 3, 1]) == due

    def test_the_dedupe_key_changes_with_the_period(self):
        subscription = uuid.uuid4()
        end = datetime(2030, 1, 31, 12, tzinfo=UTC)
        assert reminder_dedupe_key(subscription, end, 7) == reminder_dedupe_key(subscription, end, 7)
        assert reminder_dedupe_key(subscription, end, 7) != reminder_dedupe_key(subscription, end, 3)
        assert reminder_dedupe_key(subscription, end, 7) != reminder_dedupe_key(
            subscription, end + timedelta(days=30), 7
        )


class TestUnsubscribeTokens:
    def test_round_trip(self):
        user = uuid.uuid4()
        tokens = UnsubscribeTokens(SECRET)
        request = tokens.verify(tokens.issue(user, NotificationKind.NEW_RELEASES))
        assert (request.user_id, request.kind) == (user, NotificationKind.NEW_RELEASES)

    @pytest.mark.parametrize("mangle", [lambda t: t + "A", lambda t: "x" + t, lambda t: t.replace(".", ""), str.upper])
    def test_tampered_tokens_are_refused(self, mangle):
        tokens = UnsubscribeTokens(SECRET)
        token = tokens.issue(uuid.uuid4(), NotificationKind.SUBSCRIPTION_REMINDER)
        with pytest.raises(InvalidUnsubscribeToken):
            tokens.verify(mangle(token))

    def test_another_key_or_an_access_token_is_refused(self):
        token = UnsubscribeTokens("another-" + SECRET).issue(uuid.uuid4(), NotificationKind.NEW_RELEASES)
        with pytest.raises(InvalidUnsubscribeToken):
            UnsubscribeTokens(SECRET).verify(token)
        with pytest.raises(InvalidUnsubscribeToken):
            UnsubscribeTokens(SECRET).verify("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")


class TestSmtpUrl:
    def test_credentials_port_and_starttls(self):
        target = SmtpTarget.parse("smtp://mailer%40example.com:p%40ss@mail.example.com:587?starttls=true")
        assert (target.hostname, target.port, target.username, target.password) == (
            "mail.example.com",
            587,
            "mailer@example.com",
            "p@ss",
        )
        assert (target.use_tls, target.start_tls) == (False, True)

    def test_smtps_is_tls_from_the_start_and_plain_smtp_upgrades_when_offered(self):
        assert SmtpTarget.parse("smtps://mail.example.com").port == 465
        assert SmtpTarget.parse("smtps://mail.example.com").use_tls is True
        plain = SmtpTarget.parse("smtp://127.0.0.1:2525")
        assert (plain.port, plain.start_tls, plain.username) == (2525, None, None)
        assert SmtpTarget.parse("smtp://127.0.0.1:2525?starttls=false").start_tls is False


class TestTemplates:
    def test_every_mail_has_text_html_and_the_unsubscribe_link_and_escapes_titles(self):
        link = "https://reelhouse.example/api/v1/notifications/unsubscribe?token=abc"
        digest = render(
            NEW_RELEASES_TEMPLATE,
            {"name": "Ada", "titles": [{"id": "1", "title": "<script>", "release_year": 2024}]},
            link,
        )
        assert digest.subject == "New on Reelhouse: <script>"
        assert "<script>" in digest.text
        assert "&lt;script&gt;" in digest.html
        assert "<script>" not in digest.html
        reminder = render(
            REMINDER_TEMPLATE,
            {"name": "Ada", "plan_name": "Premium", "end_date": "2030-01-31T12:00:00+00:00", "days": 3},
            link,
        )
        assert reminder.subject == "Your Premium subscription ends in 3 days"
        assert "31 January 2030" in reminder.text
        for mail in (digest, reminder):
            assert link in mail.text
            assert link.replace("&", "&amp;") in mail.html
