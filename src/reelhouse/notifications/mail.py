"""Mail backends: SMTP (``SMTP_URL``) in production, ``.eml`` files under ``$VAR_DIR/mail/`` otherwise."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import anyio

if TYPE_CHECKING:
    from datetime import datetime

    from reelhouse.config import Settings
    from reelhouse.notifications.templates import RenderedMail


class MailBackend(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver the message or raise; a raise means "try again later"."""


def build_message(
    *,
    sender: str,
    recipient: str,
    rendered: RenderedMail,
    unsubscribe_url: str,
    message_id: str,
    date: datetime,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date)
    # The same id on every attempt, so a receiver can drop a copy of a mail sent twice.
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def message_id_for(notification_id: object, sender: str) -> str:
    """One id per outbox row, the same on every attempt."""
    domain = sender.rsplit("@", 1)[-1].strip(" <>") or "reelhouse.local"
    return f"<{notification_id}@{domain}>"


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        query = {key: values[-1].lower() for key, values in parse_qs(parts.query).items()}
        use_tls = parts.scheme == "smtps"
        start_tls: bool | None = None  # aiosmtplib: upgrade when the server offers it
        if "starttls" in query:
            start_tls = query["starttls"] in {"1", "true", "yes", "on"}
        return cls(
            hostname=parts.hostname or "127.0.0.1",
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            start_tls=False if use_tls else start_tls,
        )


class SmtpMailBackend:
    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.target = SmtpTarget.parse(url)
        self.timeout_seconds = timeout_seconds

    async def send(self, message: EmailMessage) -> None:
        target = self.target
        await aiosmtplib.send(
            message,
            hostname=target.hostname,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            timeout=self.timeout_seconds,
        )


class FileMailBackend:
    """Writes each message to ``<directory>/<timestamp>-<message id>.eml`` (whole, never half-written)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        await anyio.to_thread.run_sync(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").replace("@", "_").replace("/", "_")
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(message.as_bytes())
        os.replace(temporary, self.directory / f"{name}.eml")


def mail_backend_for(settings: Settings) -> MailBackend:
    notifications = settings.notifications
    if notifications.smtp_url:
        return SmtpMailBackend(notifications.smtp_url, notifications.smtp_timeout_seconds)
    return FileMailBackend(Path(settings.var_dir) / "mail")
