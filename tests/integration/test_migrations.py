"""Migrations: several migrators at once apply each revision once, and the CLI migrates either URL spelling."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from conftest import POSTGRES_ADMIN_URL, ROOT, TEST_JWT_SECRET, build_settings
from reelhouse.platform.db import MIGRATIONS_DIR, build_sqlalchemy_config, upgrade_database

MIGRATORS = 4
PROCESS_TIMEOUT_SECONDS = 60
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
# Each process says it is ready and waits for "go", so all of them reach the lock together.
UPGRADE_ON_GO = """
import sys
from reelhouse.config import load_settings
from reelhouse.platform.db import build_sqlalchemy_config, upgrade_database
config = build_sqlalchemy_config(load_settings())
print("ready", flush=True)
sys.stdin.readline()
upgrade_database(config)
"""


def child_environ(**settings: str) -> dict[str, str]:
    """A clean environment for a child process: test settings only, no .env file."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ["PYTHONPATH"],
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_LEVEL": "WARNING",
        "REELHOUSE_ENV_FILE": str(ROOT / "tests" / "no-such.env"),
        **settings,
    }


def run_processes(
    commands: list[list[str]], environ: dict[str, str], *, on_go: bool = False
) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands side by side; with ``on_go``, release them together once each has printed "ready"."""
    children = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    finished = []
    # readline() has no timeout of its own: a child stuck before "ready" is killed, ending the wait.
    watchdog = threading.Timer(PROCESS_TIMEOUT_SECONDS, lambda: [child.kill() for child in children])
    watchdog.start()
    try:
        if on_go:
            ready = [child.stdout.readline().strip() if child.stdout else "" for child in children]
            assert ready == ["ready"] * len(children), ready
            for child in children:
                if child.stdin:
                    child.stdin.write("go\n")
                    child.stdin.flush()
        for child in children:
            output, _ = child.communicate(timeout=PROCESS_TIMEOUT_SECONDS)
            finished.append(subprocess.CompletedProcess(child.args, child.returncode, output))
    finally:
        watchdog.cancel()
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return finished


def upgrade_from_processes(**settings: str) -> None:
    command = [sys.executable, "-c", UPGRADE_ON_GO]
    results = run_processes([command] * MIGRATORS, child_environ(**settings), on_go=True)
    assert [result.returncode for result in results] == [0] * MIGRATORS, "\n".join(r.stdout for r in results)


def upgrade_from_threads(**settings: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(MIGRATORS, timeout=PROCESS_TIMEOUT_SECONDS)

    def migrate() -> None:
        try:
            config = build_sqlalchemy_config(build_settings(**settings))
            start.wait()
            upgrade_database(config)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(MIGRATORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PROCESS_TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _fetch_column(url: str, query: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return [row[0] for row in await connection.fetch(query)]
    finally:
        await connection.close()


def postgres_versions(url: str) -> list[str]:
    return asyncio.run(_fetch_column(url, "SELECT version_num FROM alembic_version"))


def postgres_tables(url: str) -> set[str]:
    return set(asyncio.run(_fetch_column(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")))


def sqlite_versions(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as connection:
        return [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]


@pytest.fixture
def fresh_postgres() -> Iterator[Callable[[], str]]:
    """``fresh_postgres()`` creates an empty database and returns its ``postgresql://`` URL; all are dropped after."""
    created: list[str] = []

    def create() -> str:
        name = f"reelhouse_migrate_{os.getpid()}_{len(created)}"
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    yield create
    for name in created:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class TestConcurrentUpgradesOnPostgresql:
    def test_threads_at_once_apply_every_revision_once(self, fresh_postgres):
        url = fresh_postgres()

        upgrade_from_threads(DATABASE_URL=url)

        assert postgres_versions(url) == [HEAD]
        assert {"users", "alembic_version"} <= postgres_tables(url)

    def test_processes_at_once_apply_every_revision_once(self, fresh_postgres):
        url = fresh_postgres()

        upgrade_from_processes(DATABASE_URL=url)

        assert postgres_versions(url) == [HEAD]

    def test_upgrading_an_up_to_date_database_changes_nothing(self, fresh_postgres):
        url = fresh_postgres()
        upgrade_database(build_sqlalchemy_config(build_settings(DATABASE_URL=url)))

        upgrade_from_threads(DATABASE_URL=url)

        assert postgres_versions(url) == [HEAD]


class TestConcurrentUpgradesOnSqlite:
    def test_threads_at_once_apply_every_revision_once(self, tmp_path):
        upgrade_from_threads(VAR_DIR=str(tmp_path))

        assert sqlite_versions(tmp_path / "reelhouse.db") == [HEAD]

    def test_processes_at_once_apply_every_revision_once(self, tmp_path):
        upgrade_from_processes(VAR_DIR=str(tmp_path))

        assert sqlite_versions(tmp_path / "reelhouse.db") == [HEAD]


class TestCommandLine:
    @pytest.mark.parametrize("scheme", ["postgresql", "postgresql+asyncpg"])
    def test_database_upgrade_migrates_either_url_spelling(self, fresh_postgres, scheme: str):
        url = fresh_postgres().replace("postgresql://", f"{scheme}://", 1)
        command = [str(Path(sys.executable).parent / "reelhouse"), "database", "upgrade", "--no-prompt"]

        [result] = run_processes([command], child_environ(DATABASE_URL=url))

        assert result.returncode == 0, result.stdout
        plain_url = url.replace(f"{scheme}://", "postgresql://", 1)
        assert postgres_versions(plain_url) == [HEAD]
        assert "users" in postgres_tables(plain_url)

    def test_database_upgrade_on_the_embedded_database(self, tmp_path):
        command = [str(Path(sys.executable).parent / "reelhouse"), "database", "upgrade", "--no-prompt"]

        [result] = run_processes([command], child_environ(VAR_DIR=str(tmp_path)))

        assert result.returncode == 0, result.stdout
        assert sqlite_versions(tmp_path / "reelhouse.db") == [HEAD]


class TestCanonicalEmails:
    """Revision 0007 rewrites stored addresses in the canonical form sign-in looks up."""

    STORED = [  # (stored before 0007, stored after)
        ("ada@d.test.", "ada@d.test"),
        ("\uff42\uff4f\uff42@d.test", "bob@d.test"),
        ("eve@b\u00fccher.example", "eve@xn--bcher-kva.example"),
        ("carol@example.com", "carol@example.com"),
        ("dave@example.com", "dave@example.com"),
        ("dave@example.com.", "dave@example.com."),  # the canonical form is taken: left alone
        ("ma\u200bllory@example.com", "ma\u200bllory@example.com"),  # no canonical form: left alone
    ]

    @staticmethod
    def migrate_with_users(settings) -> dict[str, str]:
        from datetime import UTC, datetime, timedelta

        from sqlalchemy import select
        from sqlalchemy.ext.asyncio import AsyncSession

        from reelhouse.accounts.models import User

        config = build_sqlalchemy_config(settings)
        upgrade_database(config, "0005")
        started = datetime(2026, 1, 1, tzinfo=UTC)

        async def insert_then_read(after_upgrade: bool) -> dict[str, str]:
            engine_config = build_sqlalchemy_config(settings)
            try:
                async with AsyncSession(engine_config.get_engine()) as session, session.begin():
                    if not after_upgrade:
                        for index, (email, _) in enumerate(TestCanonicalEmails.STORED):
                            session.add(
                                User(
                                    email=email,
                                    password_hash="x",
                                    name=f"user {index}",
                                    created_at=started + timedelta(minutes=index),
                                )
                            )
                        return {}
                    rows = (await session.execute(select(User.name, User.email))).all()
                    return {str(name): str(email) for name, email in rows}
            finally:
                await engine_config.get_engine().dispose()

        asyncio.run(insert_then_read(False))
        upgrade_database(build_sqlalchemy_config(settings))
        return asyncio.run(insert_then_read(True))

    def expected(self) -> dict[str, str]:
        return {f"user {index}": after for index, (_, after) in enumerate(self.STORED)}

    def test_on_postgresql(self, fresh_postgres):
        assert self.migrate_with_users(build_settings(DATABASE_URL=fresh_postgres())) == self.expected()

    def test_on_sqlite(self, tmp_path):
        assert self.migrate_with_users(build_settings(VAR_DIR=str(tmp_path))) == self.expected()
