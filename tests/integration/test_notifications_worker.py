"""``reelhouse notifications worker`` as a real process: it sends due mail and stops cleanly on a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import TEST_JWT_SECRET, build_settings
from helpers import session_scope
from reelhouse.accounts.models import User
from reelhouse.notifications.models import NotificationKind
from reelhouse.notifications.services import NotificationService
from reelhouse.notifications.templates import NEW_RELEASES_TEMPLATE
from reelhouse.platform.db import build_sqlalchemy_config, upgrade_database

REELHOUSE = Path(sys.executable).with_name("reelhouse")


async def queue_one_mail(var_dir: Path) -> None:
    settings = build_settings(VAR_DIR=str(var_dir))
    config = build_sqlalchemy_config(settings)
    await asyncio.to_thread(upgrade_database, config)  # Alembic runs its own event loop
    async with session_scope(config) as session:
        user = User(email="worker@example.com", password_hash="not-a-hash", name="Wanda")
        session.add(user)
        await session.flush()
        await NotificationService(session, settings).enqueue(
            user_id=user.id,
            kind=NotificationKind.NEW_RELEASES,
            recipient=user.email,
            template=NEW_RELEASES_TEMPLATE,
            context={"name": "Wanda", "titles": [{"id": str(uuid.uuid4()), "title": "Wired", "release_year": 2025}]},
            dedupe_key="worker-test",
            send_after=datetime.now(UTC),
        )
    await config.get_engine().dispose()


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_the_worker_sends_due_mail_and_stops_cleanly_on_a_signal(tmp_path: Path, stop_signal: signal.Signals):
    await queue_one_mail(tmp_path)
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ["PYTHONPATH"],
        "HOME": str(tmp_path),
        "VAR_DIR": str(tmp_path),
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_LEVEL": "WARNING",
        "NOTIFICATION_POLL_SECONDS": "0.2",
    }
    process = await asyncio.create_subprocess_exec(
        str(REELHOUSE),
        "notifications",
        "worker",
        env=environ,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        mail_dir = tmp_path / "mail"
        for _ in range(150):
            if list(mail_dir.glob("*.eml")):
                break
            await asyncio.sleep(0.1)
        (written,) = mail_dir.glob("*.eml")
        assert b"Subject: New on Reelhouse: Wired" in written.read_bytes()
        process.send_signal(stop_signal)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, output.decode()
    assert "notification worker stopped" in output.decode()
