"""What one running app holds: settings, the chosen backends and long-lived helpers.

Built once in ``create_app()`` from the settings and kept on ``app.state.services``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import select, text

from reelhouse.accounts.passwords import PasswordHasher
from reelhouse.accounts.profiles import RememberedProfiles
from reelhouse.accounts.tokens import AccessTokenCodec
from reelhouse.platform.cache import PublicResponseCache
from reelhouse.platform.db import build_sqlalchemy_config
from reelhouse.platform.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from reelhouse.platform.revocation import MemoryRevocationStore, RedisRevocationStore, RevocationStore
from reelhouse.playback.heartbeats import HeartbeatBatcher, PositionWriter
from reelhouse.playback.sessions import EntitlementSnapshots
from reelhouse.playback.socket import OpenSockets
from reelhouse.playback.streams import MemoryStreamStore, RedisStreamStore, StoreTimings, StreamStore
from reelhouse.playback.tokens import PlaybackTokenCodec, StreamUrlSigner

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar.channels import ChannelsPlugin

    from reelhouse.accounts.services import TokenSubject
    from reelhouse.config import Settings

logger = logging.getLogger(__name__)

#: How long a heartbeat trusts a user's remembered entitlement before reading it again in the
#: background (sooner when their subscription ends sooner). Changes made through the API reach
#: live streams at once by another path; this is the safety net for anything else.
ENTITLEMENT_SNAPSHOT_SECONDS = 600
#: Redis connections per instance. A request past this many waits for one (up to the timeout)
#: instead of failing: redis-py's default pool raises "Too many connections" at once.
REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT_SECONDS = 10


@dataclass
class Backends:
    """The pluggable parts, Redis-backed when ``REDIS_URL`` is set, in-process otherwise."""

    redis: Redis | None
    rate_limiter: RateLimiter
    revocations: RevocationStore
    streams: StreamStore
    channels: ChannelsBackend

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        playback = settings.playback
        timings = StoreTimings(
            grace_ms=playback.grace_seconds * 1000,
            flush_interval_ms=playback.progress_flush_seconds * 1000,
        )
        if settings.redis.enabled:
            redis = Redis.from_pool(
                BlockingConnectionPool.from_url(
                    settings.redis.url,
                    max_connections=REDIS_MAX_CONNECTIONS,
                    timeout=REDIS_POOL_TIMEOUT_SECONDS,
                    health_check_interval=30,
                )
            )
            prefix = settings.redis.key_prefix
            return cls(
                redis=redis,
                rate_limiter=RedisRateLimiter(redis, prefix),
                revocations=RedisRevocationStore(redis, prefix),
                streams=RedisStreamStore(redis, prefix, timings),
                channels=RedisChannelsPubSubBackend(redis=redis, key_prefix=f"{prefix}:channels"),
            )
        return cls(
            redis=None,
            rate_limiter=MemoryRateLimiter(),
            revocations=MemoryRevocationStore(),
            streams=MemoryStreamStore(timings),
            channels=MemoryChannelsBackend(),
        )

    @property
    def kind(self) -> str:
        return "redis" if self.redis is not None else "memory"

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


class KnownUsers:
    """Users this instance has seen exist. Accounts are never deleted, so a yes is kept (up to a
    bound); a token naming a user that does not exist (say, of a database since reset under the
    same secret) is refused."""

    MAX_ENTRIES = 100_000

    def __init__(self, db_config: SQLAlchemyAsyncConfig) -> None:
        self._db_config = db_config
        self._seen: set[UUID] = set()

    async def exists(self, user_id: UUID) -> bool:
        if user_id in self._seen:
            return True
        from reelhouse.accounts.models import User

        async with self._db_config.get_session() as session:
            found = await session.scalar(select(User.id).where(User.id == user_id))
        if found is None:
            return False
        if len(self._seen) >= self.MAX_ENTRIES:
            self._seen.clear()
        self._seen.add(user_id)
        return True


class AppServices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db_config: SQLAlchemyAsyncConfig = build_sqlalchemy_config(settings)
        self.backends = Backends.from_settings(settings)
        self.token_codec = AccessTokenCodec(settings.auth)
        self.known_users = KnownUsers(self.db_config)
        self.profiles = RememberedProfiles()
        self.password_hasher = PasswordHasher(settings.auth)
        self.playback_tokens = PlaybackTokenCodec(settings.auth, settings.playback.playback_token_ttl_seconds)
        self.stream_urls = StreamUrlSigner(settings.auth.jwt_secret, settings.playback.stream_url_ttl_seconds)
        self.entitlement_snapshots = EntitlementSnapshots(
            user_seconds=ENTITLEMENT_SNAPSHOT_SECONDS,
            content_seconds=settings.playback.heartbeat_interval_seconds / 2,
        )
        self.open_sockets = OpenSockets()
        self.heartbeats = HeartbeatBatcher(self.backends.streams)
        self.positions = PositionWriter(self)
        #: Anonymous plan and catalog answers kept in memory (off when PUBLIC_CACHE_SECONDS is 0).
        self.public_cache = PublicResponseCache(settings.server.public_cache_seconds)
        #: Cross-instance notices to players; set by the app plugin (absent in bare CLI use).
        self.channels: ChannelsPlugin | None = None

    async def token_subject(self, user_id: UUID) -> TokenSubject | None:
        from reelhouse.accounts.services import load_token_subject

        async with self.db_config.get_session() as session:
            return await load_token_subject(session, user_id)

    async def readiness(self) -> dict[str, str]:
        """Each dependency's state: ``ok`` or what went wrong."""
        checks: dict[str, str] = {}
        try:
            async with self.db_config.get_engine().connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001  (any failure means "not ready")
            logger.warning("database not ready: %s", type(exc).__name__)
            checks["database"] = "unavailable"
        if self.backends.redis is not None:
            try:
                await self.backends.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:  # noqa: BLE001
                logger.warning("redis not ready: %s", type(exc).__name__)
                checks["redis"] = "unavailable"
        return checks
