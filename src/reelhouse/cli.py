"""The ``reelhouse`` command: Litestar's CLI with the app chosen, described as the product, and
Reelhouse's own commands (``run``, ``users create-admin``, ``demo seed``, ``notifications worker``).

``reelhouse ...`` works from any directory: settings and the embedded database are found in the
Reelhouse home (see :func:`reelhouse.config.reelhouse_home`).
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from typing import TYPE_CHECKING

import anyio
import click
from litestar.cli._utils import LitestarGroup

if TYPE_CHECKING:
    from litestar import Litestar

    from reelhouse.config import Settings
    from reelhouse.wiring import Components

DEMO_ADMIN_EMAIL = "admin@reelhouse.local"

PRODUCT_HELP = """Reelhouse: the backend of a subscription video streaming service.

`reelhouse run` serves the API (extra arguments go to uvicorn). `reelhouse database upgrade`
applies the migrations, `reelhouse users create-admin` creates an administrator (or resets one's
password), `reelhouse demo seed` adds the demo plans, catalog, media and administrator, and
`reelhouse notifications worker` sends the mail outbox from its own process.

Settings come from the environment, then .env, then litestar.toml in the Reelhouse home:
REELHOUSE_HOME when set, else the checkout reelhouse is installed from, else the working
directory. The embedded database (under VAR_DIR, default var/) lives there too, so every command
finds the same one from any directory.
"""

#: How the API is served, by `reelhouse run`, scripts/run and the container alike. No access log
#: (ours logs paths without query strings, which can carry tokens); client addresses come from
#: TRUSTED_PROXIES, read by the app, never uvicorn's proxy headers; no per-message compression
#: (tiny heartbeat frames, tens of KB of zlib state per socket); protocol pings once a minute
#: (players heartbeat every HEARTBEAT_INTERVAL_SECONDS anyway).
SERVER_FLAGS = (
    "--factory",
    "reelhouse.app:create_app",
    "--no-access-log",
    "--no-proxy-headers",
    "--no-server-header",
    "--ws-per-message-deflate",
    "false",
    "--ws-ping-interval",
    "60",
)


def _components(app: Litestar) -> Components:
    return app.state.components  # type: ignore[no-any-return]


@click.group(cls=LitestarGroup, name="users")
def users_group() -> None:
    """Manage user accounts."""


@users_group.command(name="create-admin")  # type: ignore[untyped-decorator]
@click.option("--email", required=True, help="The administrator's email.")
@click.option(
    "--password",
    envvar="ADMIN_PASSWORD",
    help="The password (or set ADMIN_PASSWORD); asked for when omitted.",
)
@click.option("--name", default="Administrator", show_default=True, help="Display name.")
def create_admin(app: Litestar, email: str, password: str | None, name: str) -> None:
    """Create an administrator, or make an existing account one (and set its password)."""
    from reelhouse.accounts.emails import InvalidEmail
    from reelhouse.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
    from reelhouse.accounts.schemas import EMAIL_PATTERN
    from reelhouse.accounts.services import normalize_email
    from reelhouse.platform.db import upgrade_database

    # The same rules registration applies, so the CLI cannot create an account the API would refuse.
    if len(email) > 320 or not re.fullmatch(EMAIL_PATTERN, email.strip()):
        raise click.BadParameter("must be an email address like admin@example.com", param_hint="--email")
    try:
        email = normalize_email(email)
    except InvalidEmail as exc:
        reason = exc.extra["errors"][0]["message"]
        raise click.BadParameter(f"cannot be used: {reason}", param_hint="--email") from None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise click.BadParameter(
            f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters", param_hint="--password"
        )
    components = _components(app)
    upgrade_database(components.db_config)

    async def run() -> bool:
        async with components.units.begin() as uow:
            _, created = await components.accounts(uow).ensure_admin(email, password, name=name)
        await components.db_config.get_engine().dispose()
        return created

    created = anyio.run(run)
    click.echo(f"{'Created' if created else 'Updated'} administrator {email} in {database_name(components.settings)}")


@click.group(cls=LitestarGroup, name="demo")
def demo_group() -> None:
    """Demo data for a first look."""


@demo_group.command(name="seed")  # type: ignore[untyped-decorator]
def seed_demo(app: Litestar) -> None:
    """Apply migrations and add the demo plans and admin (idempotent)."""
    from reelhouse.demo import seed_demo_data
    from reelhouse.platform.db import upgrade_database

    components = _components(app)
    upgrade_database(components.db_config)
    admin_password = secrets.token_urlsafe(12)

    async def run() -> list[str]:
        lines = await seed_demo_data(components, admin_email=DEMO_ADMIN_EMAIL, admin_password=admin_password)
        await components.db_config.get_engine().dispose()
        return lines

    for line in anyio.run(run):
        click.echo(line)


@click.group(cls=LitestarGroup, name="notifications")
def notifications_group() -> None:
    """Mail: the outbox dispatcher."""


@notifications_group.command(name="worker")  # type: ignore[untyped-decorator]
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def notifications_worker(app: Litestar, once: bool) -> None:
    """Queue reminders and send due mail until SIGINT/SIGTERM (set NOTIFICATION_DISPATCH_IN_API=false)."""
    from reelhouse.notifications.dispatcher import run_worker

    components = _components(app)
    click.echo("notification worker started" + (" (once)" if once else "; Ctrl-C stops it"))
    anyio.run(lambda: run_worker(components.settings, components.db_config, once=once))
    click.echo("notification worker stopped")


def database_name(settings: Settings) -> str:
    """The database a command wrote to: the SQLite file, or the server URL without its password."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database.url)
    if url.get_backend_name() == "sqlite":
        return f"the embedded database {url.database}"
    return url.render_as_string(hide_password=True)


@click.command(
    name="run",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("uvicorn_args", nargs=-1, type=click.UNPROCESSED)
def run_command(uvicorn_args: tuple[str, ...]) -> None:
    """Serve the API on HOST:PORT with uvicorn, as scripts/run and the container do; extra arguments go to uvicorn."""
    from reelhouse.config import get_settings

    server = get_settings().server
    command = [sys.executable, "-m", "uvicorn", *SERVER_FLAGS, "--host", server.host, "--port", str(server.port)]
    os.execv(sys.executable, [*command, *uvicorn_args])  # noqa: S606  (our own interpreter, fixed flags)


def _without_prompts_off_a_terminal(args: list[str]) -> list[str]:
    """``database upgrade`` asks for confirmation; with no terminal to answer it, do not ask."""
    if len(args) >= 2 and args[0] in {"database", "db"} and args[1] == "upgrade" and not sys.stdin.isatty():
        return [*args, "--no-prompt"] if "--no-prompt" not in args else args
    return args


@click.group(cls=LitestarGroup, name="media")
def media_group() -> None:
    """Media: the transcoding worker."""


@media_group.command(name="worker")  # type: ignore[untyped-decorator]
@click.option("--once", is_flag=True, help="Process what is queued now, then exit.")
def media_worker(app: Litestar, once: bool) -> None:
    """Transcode and package queued media jobs until SIGINT/SIGTERM (set MEDIA_WORKER_IN_API=false)."""
    from reelhouse.assets.worker import run_worker

    components = _components(app)

    async def run() -> None:
        try:
            await run_worker(components.media_worker, once=once)
        finally:
            await components.db_config.get_engine().dispose()

    click.echo("media worker started" + (" (once)" if once else "; Ctrl-C stops it"))
    anyio.run(run)
    click.echo("media worker stopped")


def register_commands(cli: click.Group) -> None:
    cli.add_command(users_group)
    cli.add_command(demo_group)
    cli.add_command(notifications_group)
    cli.add_command(media_group)


def main() -> None:
    os.environ.setdefault("LITESTAR_APP", "reelhouse.app:create_app")
    # `reelhouse run` starts uvicorn, which would otherwise believe X-Forwarded-For from 127.0.0.1
    # and rewrite the client address; the app reads that header itself, from TRUSTED_PROXIES only.
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "")
    from litestar.cli.main import litestar_group

    litestar_group.help = PRODUCT_HELP
    # Litestar's server-side session commands need its session middleware, which Reelhouse does not use.
    litestar_group.commands.pop("sessions", None)
    litestar_group.add_command(run_command)  # type: ignore[arg-type]  # in place of Litestar's `run` (access log on)
    litestar_group.main(args=_without_prompts_off_a_terminal(sys.argv[1:]), prog_name="reelhouse")
