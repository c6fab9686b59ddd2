from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import UUIDAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship


class User(UUIDAuditBase):
    __tablename__ = "users"

    #: Stored in canonical form (accounts/emails.py), so one mailbox is one account on every database.
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(100))
    bio: Mapped[str | None] = mapped_column(Text, default=None)
    picture: Mapped[str | None] = mapped_column(String(2048), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    #: Bumped by "sign out everywhere"; access tokens carry the version they were issued under.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    devices: Mapped[list[RefreshFamily]] = relationship(
        back_populates="user", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class RefreshFamily(UUIDAuditBase):
    """One sign-in: every refresh token rotated from it belongs to it. Shown to users as a device."""

    __tablename__ = "refresh_families"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_name: Mapped[str] = mapped_column(String(200))
    last_used_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), default=None)

    user: Mapped[User] = relationship(back_populates="devices", lazy="raise")
    #: Declared so a flush always inserts the family before its tokens (the foreign key needs it).
    tokens: Mapped[list[RefreshToken]] = relationship(
        back_populates="family", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class RefreshToken(UUIDAuditBase):
    """A refresh token, stored only as its SHA-256 digest; ``used_at`` marks it rotated."""

    __tablename__ = "refresh_tokens"

    family_id: Mapped[UUID] = mapped_column(ForeignKey("refresh_families.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    family: Mapped[RefreshFamily] = relationship(back_populates="tokens", lazy="raise")
