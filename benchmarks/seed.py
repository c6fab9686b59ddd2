"""Bench data, inserted directly (COPY), never through the API.

Users share ONE precomputed argon2id hash (same parameters as the server, so logins never
rehash). Plans: Free (1 device), Basic (2), Premium (4); every user holds a subscription
ending in 25 days (no reminders fall due during a run). Titles span the three access levels
and have genres; each user gets a watch history of ``history_per_user`` titles.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from argon2 import PasswordHasher, Type

BENCH_PASSWORD = "bench-password-0123456789"  # noqa: S105  (a throwaway bench account password)
GENRES = ["drama", "comedy", "sci-fi", "thriller", "documentary", "animation", "horror", "romance"]
PLANS = [  # name, price, access level, devices, resolution
    ("Free", 0, "free", 1, "480p"),
    ("Basic", 899, "basic", 2, "720p"),
    ("Premium", 1599, "premium", 4, "4k"),
]


@dataclass
class Seeded:
    """What the scenarios need to know about the data."""

    user_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    plan_of_user: list[str] = field(default_factory=list)
    free_titles: list[str] = field(default_factory=list)
    titles: int = 0
    history_rows: int = 0

    def users_on(self, plan: str) -> list[int]:
        return [index for index, name in enumerate(self.plan_of_user) if name == plan]


def plan_for(index: int) -> str:
    """20 % Free, 50 % Basic, 30 % Premium."""
    bucket = index % 10
    return "Free" if bucket < 2 else "Basic" if bucket < 7 else "Premium"


async def recreate_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def password_hash(memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1) -> str:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID).hash(
        BENCH_PASSWORD
    )


async def shared_asset(connection: asyncpg.Connection, now: datetime) -> uuid.UUID:
    """One media asset every bench title plays (admission needs ready media; its files are not fetched)."""
    asset_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO media_assets (id, storage_key, duration_seconds, renditions, created_at, updated_at)"
        " VALUES ($1, 'bench/shared', 600.0, '[]'::jsonb, $2, $2)",
        asset_id,
        now,
    )
    return asset_id


async def seed(dsn: str, *, users: int, titles: int, history_per_user: int, rng_seed: int = 7) -> Seeded:
    rng = random.Random(rng_seed)  # noqa: S311  (reproducible fake data)
    now = datetime.now(UTC)
    out = Seeded(titles=titles)
    connection = await asyncpg.connect(dsn)
    try:
        plan_ids = {name: uuid.uuid4() for name, *_ in PLANS}
        await connection.copy_records_to_table(
            "plans",
            columns=[
                "id",
                "name",
                "price",
                "currency",
                "validity_days",
                "access_level",
                "max_devices_allowed",
                "resolution",
                "stream_limit_policy",
                "description",
                "is_active",
                "created_at",
                "updated_at",
            ],
            records=[
                (
                    plan_ids[name],
                    name,
                    price,
                    "USD",
                    30,
                    level,
                    devices,
                    resolution,
                    "evict_oldest",
                    name,
                    True,
                    now,
                    now,
                )
                for name, price, level, devices, resolution in PLANS
            ],
        )
        genre_ids = [uuid.uuid4() for _ in GENRES]
        await connection.copy_records_to_table(
            "genres",
            columns=["id", "slug", "name", "created_at", "updated_at"],
            records=[(gid, slug, slug.title(), now, now) for gid, slug in zip(genre_ids, GENRES, strict=True)],
        )
        # Every title shares one asset (titles point at processed media; the scenarios measure
        # admission and catalog reads, not transcoding). Its files need not exist for them.
        asset_id = await shared_asset(connection, now)
        content_rows = []
        content_genre_rows = []
        durations = []
        for index in range(titles):
            cid = uuid.uuid4()
            level = ("free", "basic", "premium")[index % 3]
            duration = rng.randint(20, 150) * 60
            durations.append(duration)
            published_at = now - timedelta(days=rng.randint(0, 900), minutes=index)
            content_rows.append(
                (
                    cid,
                    f"Bench title {index:05d}",
                    f"An invented title number {index} for the benchmark catalog.",
                    level,
                    duration,
                    duration - 300,
                    rng.randint(1950, 2025),
                    f"https://img.example/{index}.jpg",
                    f"https://video.example/{index}.mp4",
                    True,
                    published_at,
                    published_at,
                    published_at,
                    asset_id,
                )
            )
            for gid in rng.sample(genre_ids, 2):
                content_genre_rows.append((cid, gid))
            if level == "free":
                out.free_titles.append(str(cid))
        await connection.copy_records_to_table(
            "contents",
            columns=[
                "id",
                "title",
                "description",
                "access_level",
                "duration_seconds",
                "credits_start_seconds",
                "release_year",
                "thumbnail_url",
                "video_url",
                "published",
                "published_at",
                "created_at",
                "updated_at",
                "media_asset_id",
            ],
            records=content_rows,
        )
        await connection.copy_records_to_table(
            "content_genres", columns=["content_id", "genre_id"], records=content_genre_rows
        )
        hashed = password_hash()
        user_rows, subscription_rows, history_rows = [], [], []
        content_ids = [row[0] for row in content_rows]
        for index in range(users):
            uid = uuid.uuid4()
            email = f"bench{index}@bench.example"
            plan = plan_for(index)
            out.user_ids.append(str(uid))
            out.emails.append(email)
            out.plan_of_user.append(plan)
            created = now - timedelta(days=rng.randint(30, 700))
            user_rows.append((uid, email, hashed, f"Bench User {index}", False, True, 0, created, created))
            subscription_rows.append(
                (
                    uuid.uuid4(),
                    uid,
                    plan_ids[plan],
                    "active",
                    now - timedelta(days=5),
                    now + timedelta(days=25),
                    True,
                    now,
                    now,
                )
            )
            for position in rng.sample(range(titles), min(history_per_user, titles)):
                total = durations[position]
                watched = rng.randint(60, total)
                percent = round(100.0 * watched / total, 2)
                completed = percent >= 90.0
                at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 90))
                history_rows.append(
                    (
                        uuid.uuid4(),
                        uid,
                        content_ids[position],
                        watched,
                        total,
                        percent,
                        0 if completed else watched,
                        "completed" if completed else "paused",
                        1 if completed else 0,
                        at if completed else None,
                        at,
                        False,
                        at,
                        at,
                    )
                )
        await connection.copy_records_to_table(
            "users",
            columns=[
                "id",
                "email",
                "password_hash",
                "name",
                "is_admin",
                "is_active",
                "token_version",
                "created_at",
                "updated_at",
            ],
            records=user_rows,
        )
        await connection.copy_records_to_table(
            "subscriptions",
            columns=[
                "id",
                "user_id",
                "plan_id",
                "status",
                "start_date",
                "end_date",
                "auto_renew",
                "created_at",
                "updated_at",
            ],
            records=subscription_rows,
        )
        await connection.copy_records_to_table(
            "watch_history",
            columns=[
                "id",
                "user_id",
                "content_id",
                "watched_seconds",
                "total_seconds",
                "progress_percent",
                "resume_position_seconds",
                "status",
                "play_count",
                "completed_at",
                "last_watched_at",
                "hidden",
                "created_at",
                "updated_at",
            ],
            records=history_rows,
        )
        out.history_rows = len(history_rows)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return out
