"""The ``reelhouse`` command line, run as a real process against a temporary embedded database."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from conftest import TEST_JWT_SECRET, build_settings
from helpers import auth, login, register
from reelhouse.accounts.models import User
from reelhouse.app import create_app
from reelhouse.plans.models import Plan
from reelhouse.platform.db import build_sqlalchemy_config
from servers import free_ports, stop, wait_until_healthy

REELHOUSE = Path(sys.executable).with_name("reelhouse")
ADMIN_PASSWORD = "cli admin password"


async def reelhouse(var_dir: Path, *args: str, cwd: Path | None = None, **settings: str) -> tuple[int, str]:
    """Run ``reelhouse ARGS`` in a clean environment (no terminal); returns the exit code and what it printed.

    ``VAR_DIR`` is ``var_dir`` unless ``settings`` say otherwise (``VAR_DIR=""`` leaves it unset).
    """
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ["PYTHONPATH"],
        "HOME": str(var_dir),
        "VAR_DIR": str(var_dir),
        "MEDIA_DIR": str(var_dir / "media"),
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_LEVEL": "WARNING",
        "REELHOUSE_ENV_FILE": str(var_dir / "no.env"),
        **settings,
    }
    environ = {name: value for name, value in environ.items() if value}
    process = await asyncio.create_subprocess_exec(
        str(REELHOUSE),
        *args,
        env=environ,
        cwd=cwd or var_dir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


def app_client(var_dir: Path) -> AsyncTestClient:
    """An app with the same settings the command used (it migrates the database if the command has not)."""
    settings = build_settings(VAR_DIR=str(var_dir), DATABASE_MIGRATE_ON_STARTUP="true")
    return AsyncTestClient(app=create_app(settings))


async def count_rows(var_dir: Path, model: type[User] | type[Plan]) -> int:
    engine = build_sqlalchemy_config(build_settings(VAR_DIR=str(var_dir))).get_engine()
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await engine.dispose()


class TestCreateAdmin:
    async def test_creates_an_admin_who_can_sign_in_and_running_again_is_idempotent(self, tmp_path):
        code, output = await reelhouse(
            tmp_path, "users", "create-admin", "--email", "Boss@Example.com", "--password", ADMIN_PASSWORD
        )
        assert code == 0, output
        assert f"Created administrator boss@example.com in the embedded database {tmp_path / 'reelhouse.db'}" in output
        async with app_client(tmp_path) as client:
            boss = await login(client, email="boss@example.com", password=ADMIN_PASSWORD)
            assert boss["user"]["is_admin"] is True
            assert (await client.get("/api/v1/admin/users", headers=auth(boss["token"]))).status_code == 200

        code, output = await reelhouse(
            tmp_path, "users", "create-admin", "--email", "boss@example.com", "--password", ADMIN_PASSWORD
        )
        assert code == 0, output
        assert "Updated administrator boss@example.com" in output
        assert await count_rows(tmp_path, User) == 1
        async with app_client(tmp_path) as client:
            again = await login(client, email="boss@example.com", password=ADMIN_PASSWORD)
            assert again["user"]["id"] == boss["user"]["id"]
            assert again["user"]["is_admin"] is True

    async def test_running_again_with_a_new_password_replaces_it(self, tmp_path):
        async with app_client(tmp_path) as client:
            await register(client, email="boss@example.com", password=ADMIN_PASSWORD)
        code, output = await reelhouse(
            tmp_path, "users", "create-admin", "--email", "boss@example.com", "--password", "a brand new password"
        )
        assert code == 0, output
        assert "Updated administrator boss@example.com" in output
        async with app_client(tmp_path) as client:
            boss = await login(client, email="boss@example.com", password="a brand new password")
            assert boss["user"]["is_admin"] is True
            old = await client.post(
                "/api/v1/auth/login", json={"email": "boss@example.com", "password": ADMIN_PASSWORD}
            )
            assert old.status_code == 401

    async def test_bad_email_or_too_short_password_fails_and_creates_nobody(self, tmp_path):
        short_password, bad_email = await asyncio.gather(
            reelhouse(tmp_path, "users", "create-admin", "--email", "boss@example.com", "--password", "short"),
            reelhouse(tmp_path, "users", "create-admin", "--email", "not-an-email", "--password", ADMIN_PASSWORD),
        )
        assert short_password[0] != 0
        assert "--password" in short_password[1]
        assert bad_email[0] != 0
        assert "--email" in bad_email[1]
        assert not (tmp_path / "reelhouse.db").exists() or await count_rows(tmp_path, User) == 0


class TestDemoSeed:
    async def test_seed_shows_the_admin_password_once_and_adds_nothing_twice(self, tmp_path):
        code, first = await reelhouse(tmp_path, "demo", "seed")
        assert code == 0, first
        assert {"plan added: Free", "plan added: Basic", "plan added: Premium"} <= set(first.splitlines())
        created = re.search(r"demo admin created: (\S+) / (\S+)", first)
        assert created is not None, first
        email, password = created.groups()
        assert await count_rows(tmp_path, Plan) == 3

        code, second = await reelhouse(tmp_path, "demo", "seed")
        assert code == 0, second
        assert "plan added" not in second
        assert f"demo admin exists: {email}" in second
        assert password not in second
        assert await count_rows(tmp_path, Plan) == 3
        assert await count_rows(tmp_path, User) == 1

        async with app_client(tmp_path) as client:
            admin = await login(client, email=email, password=password)
            assert admin["user"]["is_admin"] is True
            # Every demo title plays the demo clip, processed as HLS, and says it lasts that long.
            titles = (await client.get("/api/v1/admin/content?limit=100", headers=auth(admin["token"]))).json()
            assert titles["total"] == 44
            assert all(title["playable"] for title in titles["contents"])
            lengths = {(title["duration_seconds"], title["credits_start_seconds"]) for title in titles["contents"]}
            assert lengths in ({(12, None)}, {(13, None)}), lengths
        assert "demo media: 44 titles given the" in first
        assert "demo media: 0 titles given the" in second


class TestFromAnyDirectory:
    async def test_create_admin_writes_to_the_home_database_whatever_the_working_directory(self, tmp_path):
        home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
        home.mkdir()
        elsewhere.mkdir()
        (home / "litestar.toml").write_text("[app]\nvar_dir = 'state'\n")

        code, output = await reelhouse(
            tmp_path,
            *("users", "create-admin", "--email", "ops@example.com", "--password", ADMIN_PASSWORD),
            cwd=elsewhere,
            VAR_DIR="",
            REELHOUSE_HOME=str(home),
        )

        assert code == 0, output
        database = home / "state" / "reelhouse.db"
        assert f"Created administrator ops@example.com in the embedded database {database}" in output
        assert database.is_file()
        assert list(elsewhere.iterdir()) == []
        assert await count_rows(home / "state", User) == 1


class TestCommandLine:
    async def test_help_describes_the_product_and_offers_no_command_that_cannot_work(self, tmp_path):
        code, output = await reelhouse(tmp_path, "--help")
        assert code == 0, output
        assert "subscription video streaming" in output
        assert "Litestar CLI" not in output
        assert "sessions" not in output
        assert re.search(r"^\W*run\s", output, re.MULTILINE)

    async def test_database_upgrade_without_a_terminal_does_not_prompt(self, tmp_path):
        code, output = await reelhouse(tmp_path, "database", "upgrade")
        assert code == 0, output
        assert "Aborted" not in output
        assert await count_rows(tmp_path, User) == 0  # the tables exist

    async def test_a_bad_setting_prints_its_message_alone_and_fails(self, tmp_path):
        code, output = await reelhouse(tmp_path, "demo", "seed", PORT="eighty")
        assert code != 0
        assert output.strip() == "error: PORT must be a number, not 'eighty'"

    def test_run_serves_without_an_access_log(self, tmp_path):
        port = free_ports(1)[0]
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.environ["PYTHONPATH"],
            "VAR_DIR": str(tmp_path),
            "ENVIRONMENT": "test",
            "JWT_SECRET": TEST_JWT_SECRET,
            "PORT": str(port),
            "REELHOUSE_ENV_FILE": str(tmp_path / "no.env"),
        }
        log = tmp_path / "run.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(REELHOUSE), "run"], env=environ, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT
            )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", process, log)
            answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/content?q=secret-token-in-a-query", timeout=5)
            assert answer.status_code == 200
        finally:
            stop([process])
        printed = log.read_text()
        assert "Uvicorn running" in printed or "Application startup complete" in printed, printed
        assert "secret-token-in-a-query" not in printed
