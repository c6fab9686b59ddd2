"""Extra ``litestar`` commands (``users create-admin``, ``demo seed``) and the ``reelhouse`` entry point.

``reelhouse ...`` is ``litestar ...`` with the app already chosen, so
``reelhouse database upgrade`` and ``reelhouse users create-admin`` work from anywhere.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import TYPE_CHECKING

import anyio
import click
from litestar.cli._utils import LitestarGroup

if TYPE_CHECKING:
    from litestar import Litestar

    from reelhouse.wiring import Components

DEMO_ADMIN_EMAIL = "admin@reelhouse.local"


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
    from reelhouse.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
    from reelhouse.accounts.schemas import EMAIL_PATTERN
    from reelhouse.accounts.services import normalize_email
    from reelhouse.platform.db import upgrade_database

    email = normalize_email(email)
    # The same rule registration applies, so the CLI cannot create an account the API would refuse.
    if len(email) > 320 or not re.fullmatch(EMAIL_PATTERN, email):
        raise click.BadParameter("must be an email address like admin@example.com", param_hint="--email")
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
    click.echo(f"{'Created' if created else 'Updated'} administrator {email}")


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
    from litestar.cli.main import litestar_group

    litestar_group()
