"""canonical emails

Addresses used to be stored as typed, only trimmed and lower-cased. Each is rewritten in the
canonical form sign-in now looks up (reelhouse.accounts.emails: NFKC, the domain in ASCII without
a trailing dot), so every account keeps signing in. An address whose canonical form another
account already holds is left as it was (that account was the first with the mailbox), and so is
one with no canonical form (invisible characters, mixed scripts); both are reported.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:40:00.000000
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

logger = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    from reelhouse.accounts.emails import InvalidEmail, normalize_email

    connection = op.get_bind()
    users = sa.table("users", sa.column("id"), sa.column("email"), sa.column("created_at"))
    rows = connection.execute(sa.select(users.c.id, users.c.email).order_by(users.c.created_at, users.c.id)).all()
    taken = {email for _, email in rows}
    for user_id, email in rows:
        try:
            canonical = normalize_email(email)
        except InvalidEmail:
            logger.warning("user %s: stored email has no canonical form; left as it is", user_id)
            continue
        if canonical == email:
            continue
        if canonical in taken:
            logger.warning("user %s: another account already holds the canonical form of its email", user_id)
            continue
        connection.execute(sa.update(users).where(users.c.id == user_id).values(email=canonical))
        taken.add(canonical)


def downgrade() -> None:
    """Canonical addresses stay: they are valid addresses of the same mailboxes."""
