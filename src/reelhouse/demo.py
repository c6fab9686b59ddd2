"""Demo data for a first run: plans, an administrator and a catalog. Running it again changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from reelhouse.accounts.models import User
from reelhouse.accounts.services import normalize_email
from reelhouse.catalog.demo import seed_demo_catalog
from reelhouse.plans.models import AccessLevel, Plan
from reelhouse.plans.resolutions import Resolution
from reelhouse.player.demo_media import give_demo_titles_media

if TYPE_CHECKING:
    from reelhouse.wiring import Components

DEMO_PLANS = [
    Plan(
        name="Free",
        price=0,
        currency="USD",
        validity_days=365,
        access_level=AccessLevel.FREE,
        max_devices_allowed=1,
        resolution=Resolution.SD_480P,
        description="Free titles in standard definition on one screen.",
    ),
    Plan(
        name="Basic",
        price=899,
        currency="USD",
        validity_days=30,
        access_level=AccessLevel.BASIC,
        max_devices_allowed=2,
        resolution=Resolution.HD_720P,
        description="Free and Basic titles in HD on two screens at once.",
    ),
    Plan(
        name="Premium",
        price=1599,
        currency="USD",
        validity_days=30,
        access_level=AccessLevel.PREMIUM,
        max_devices_allowed=4,
        resolution=Resolution.UHD_4K,
        description="The whole catalog in up to 4K on four screens at once.",
    ),
]


async def seed_demo_data(components: Components, *, admin_email: str, admin_password: str) -> list[str]:
    """Insert what is missing and say what happened, one line per fact."""
    lines: list[str] = []
    async with components.units.begin() as uow:
        session = uow.session
        existing = set((await session.scalars(select(Plan.name))).all())
        for template in DEMO_PLANS:
            if template.name in existing:
                continue
            session.add(
                Plan(
                    name=template.name,
                    price=template.price,
                    currency=template.currency,
                    validity_days=template.validity_days,
                    access_level=template.access_level,
                    max_devices_allowed=template.max_devices_allowed,
                    resolution=template.resolution,
                    description=template.description,
                )
            )
            lines.append(f"plan added: {template.name}")
        lines.extend(await seed_demo_catalog(session))
        await session.flush()
        lines.extend(
            await give_demo_titles_media(
                uow, components.media(uow), components.media_store, Path(components.settings.media.work_dir)
            )
        )
        admin = await session.scalar(select(User).where(User.email == normalize_email(admin_email)))
        if admin is None:
            await components.accounts(uow).ensure_admin(admin_email, admin_password)
            lines.append(f"demo admin created: {admin_email} / {admin_password}  (shown once; keep it)")
        else:
            lines.append(
                f"demo admin exists: {admin_email} (its password was shown when it was created; "
                "set a new one with `reelhouse users create-admin --email ...`)"
            )
    return lines
