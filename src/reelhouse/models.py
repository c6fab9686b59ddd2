"""Every table, imported in one place so Alembic and the app see the same metadata."""

from reelhouse.accounts.models import RefreshFamily, RefreshToken, User
from reelhouse.plans.models import Plan

__all__ = ["Plan", "RefreshFamily", "RefreshToken", "User"]
