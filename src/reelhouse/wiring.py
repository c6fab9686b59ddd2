"""The composition root: every long-lived object, built once from the settings with explicit
arguments, one builder per service, and the event handlers that connect the domains.

Nothing else constructs services or reaches for shared objects: request handlers receive
services through the providers in :meth:`Components.dependencies`; jobs, sockets and CLI
commands get what they need handed in from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar.di import Provide
from sqlalchemy import text

from reelhouse.accounts.auth import AccessTokenAuthenticator
from reelhouse.accounts.passwords import PasswordHasher
from reelhouse.accounts.profiles import ProfileReader, RememberedProfiles
from reelhouse.accounts.repositories import KnownUsers
from reelhouse.accounts.services import AccountService
from reelhouse.accounts.tokens import AccessTokenCodec
from reelhouse.assets.services import MediaService
from reelhouse.assets.store import build_media_store
from reelhouse.assets.worker import MediaWorker
from reelhouse.catalog.events import TitlePublished
from reelhouse.catalog.services import CatalogService
from reelhouse.catalog.titles import TitleMemory
from reelhouse.config import Settings
from reelhouse.discovery.services import RecommendationService
from reelhouse.media.encryption import MediaKeys
from reelhouse.notifications.services import NotificationService, mail_followers_on_release
from reelhouse.plans.services import PlanService
from reelhouse.platform.broadcast import Broadcast, MemoryBroadcast, RedisBroadcast
from reelhouse.platform.cache import PublicResponseCache
from reelhouse.platform.db import build_sqlalchemy_config
from reelhouse.platform.health import Readiness
from reelhouse.platform.invalidation import Invalidations
from reelhouse.platform.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from reelhouse.platform.redis_connection import RedisClient, RedisLimits, connect_redis, redis_answers
from reelhouse.platform.revocation import MemoryRevocationStore, RedisRevocationStore, RevocationStore
from reelhouse.platform.uow import EventBus, UnitOfWork, UnitOfWorkFactory
from reelhouse.playback.handlers import subscribe_playback
from reelhouse.playback.heartbeats import HeartbeatBatcher, PositionWriter
from reelhouse.playback.history import ResumeRules, ViewerCountsFromHistory, WatchHistoryRequests, WatchHistoryService
from reelhouse.playback.media import MediaAccess
from reelhouse.playback.pending import MemoryPendingWrites, PendingWrites, RedisPendingWrites
from reelhouse.playback.retention import DirectoryArchive
from reelhouse.playback.sessions import EntitlementSnapshots, PlaybackService, PlayerNotices
from reelhouse.playback.socket import OpenSockets, PlayerSockets
from reelhouse.playback.streams import MemoryStreamStore, RedisStreamStore, StoreTimings, StreamStore
from reelhouse.playback.supervision import StreamSupervisor
from reelhouse.playback.tokens import PlaybackTokenCodec, StreamUrlSigner
from reelhouse.subscriptions.entitlement import (
    EntitlementMemory,
    EntitlementService,
    SubscribedPlans,
    forget_changed_entitlements,
)
from reelhouse.subscriptions.services import SubscriptionService

logger = logging.getLogger(__name__)

#: How long a heartbeat trusts a user's remembered entitlement before reading it again in the
#: background (sooner when their subscription ends sooner). Changes made through the API reach
#: live streams at once through events; this is the safety net for anything else.
ENTITLEMENT_SNAPSHOT_SECONDS = 600
#: Redis connections per instance. A request past this many waits for one (up to the timeout)
#: instead of failing: redis-py's default pool raises "Too many connections" at once.
REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT_SECONDS = 3
#: How long one Redis command or connection attempt may take before it counts as an outage.
#: Short, because heartbeats wait on it: a player is told to retry rather than left hanging
#: (redis-py's default is to wait forever).
REDIS_SOCKET_TIMEOUT_SECONDS = 2.0
REDIS_CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass
class Backends:
    """The pluggable parts, Redis-backed when ``REDIS_URL`` is set, in-process otherwise."""

    redis: RedisClient | None
    rate_limiter: RateLimiter
    revocations: RevocationStore
    streams: StreamStore
    broadcast: Broadcast
    pending: PendingWrites

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        playback = settings.playback
        timings = StoreTimings(
            grace_ms=playback.grace_seconds * 1000,
            flush_interval_ms=playback.progress_flush_seconds * 1000,
        )
        if settings.redis.enabled:
            # One Redis or a Redis Cluster (REDIS_URL=redis+cluster://...): the same parts on either.
            redis = connect_redis(
                settings.redis,
                RedisLimits(
                    max_connections=REDIS_MAX_CONNECTIONS,
                    pool_timeout_seconds=REDIS_POOL_TIMEOUT_SECONDS,
                    socket_timeout_seconds=REDIS_SOCKET_TIMEOUT_SECONDS,
                    connect_timeout_seconds=REDIS_CONNECT_TIMEOUT_SECONDS,
                ),
            )
            prefix = settings.redis.key_prefix
            return cls(
                redis=redis,
                rate_limiter=RedisRateLimiter(redis, prefix),
                revocations=RedisRevocationStore(redis, prefix),
                streams=RedisStreamStore(redis, prefix, timings),
                broadcast=RedisBroadcast(redis, prefix),
                pending=RedisPendingWrites(redis, prefix),
            )
        return cls(
            redis=None,
            rate_limiter=MemoryRateLimiter(),
            revocations=MemoryRevocationStore(),
            streams=MemoryStreamStore(timings),
            broadcast=MemoryBroadcast(),
            pending=MemoryPendingWrites(),
        )

    @property
    def kind(self) -> str:
        return "redis" if self.redis is not None else "memory"

    async def _notices_subscribed(self) -> None:
        if not self.broadcast.subscribed:
            raise ConnectionError("not subscribed to the cross-instance messages")

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


class Components:
    """Everything one running app is made of."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db_config = build_sqlalchemy_config(settings)
        self.backends = backends = Backends.from_settings(settings)
        self.events = EventBus()
        self.units = UnitOfWorkFactory(self.db_config, self.events)
        self.broadcast = backends.broadcast
        #: What instances keep in memory of the database, and the notices that it changed.
        self.invalidations = Invalidations()
        self.invalidations.follow(self.broadcast)
        self.readiness = Readiness()
        self.readiness.add_check("database", self._database_answers)
        if backends.redis is not None:
            redis = backends.redis
            self.readiness.add_check("redis", lambda: redis_answers(redis))
            self.readiness.add_check("notices", self._notices_subscribed)

        # accounts
        self.token_codec = AccessTokenCodec(settings.auth)
        self.password_hasher = PasswordHasher(settings.auth)
        self.authenticator = AccessTokenAuthenticator(
            self.token_codec, backends.revocations, KnownUsers(self.units.read)
        )
        self.profiles = ProfileReader(RememberedProfiles(), self.units.read)
        # plans and catalog
        #: Anonymous plan and catalog answers kept in memory (off when PUBLIC_CACHE_SECONDS is 0).
        self.public_cache = PublicResponseCache(settings.server.public_cache_seconds)
        self.public_cache.follow(self.invalidations)
        #: Titles and entitlements as the hot paths read them (forgotten on every change).
        self.titles = TitleMemory()
        self.titles.follow(self.invalidations)
        self.entitlement_memory = EntitlementMemory()
        self.entitlement_memory.follow(self.invalidations)
        self._plan_usage = SubscribedPlans()
        self._viewer_counts = ViewerCountsFromHistory()
        # playback
        playback = settings.playback
        self.playback_tokens = PlaybackTokenCodec(settings.auth, playback.playback_token_ttl_seconds)
        self.stream_urls = StreamUrlSigner(settings.auth.jwt_secret, playback.stream_url_ttl_seconds)
        self.snapshots = EntitlementSnapshots(
            user_seconds=ENTITLEMENT_SNAPSHOT_SECONDS, content_seconds=playback.heartbeat_interval_seconds / 2
        )
        self._resume_rules = ResumeRules.from_settings(playback)
        self.heartbeats = HeartbeatBatcher(backends.streams)
        self.positions = PositionWriter(self.units, self.watch_history, backends.pending)
        self.notices = PlayerNotices(self.broadcast)
        self.open_sockets = OpenSockets()
        self.open_sockets.follow(self.broadcast, backends.streams)
        self.supervisor = StreamSupervisor(
            units=self.units,
            playback_for=self.playback,
            streams=backends.streams,
            snapshots=self.snapshots,
            positions=self.positions,
            pending=backends.pending,
        )
        self.player_sockets = PlayerSockets(
            settings=playback,
            tokens=self.playback_tokens,
            streams=backends.streams,
            heartbeats=self.heartbeats,
            positions=self.positions,
            supervisor=self.supervisor,
            open_sockets=self.open_sockets,
            broadcast=self.broadcast,
        )
        # media: the store of uploads and processed assets, the job worker, per-session delivery
        # Files under MEDIA_DIR, or the object storage MEDIA_STORE_URL names (shared by every instance).
        self.media_store = build_media_store(settings.media_store)
        self.media_keys = MediaKeys(settings.media.key_secret or settings.auth.jwt_secret)
        self.media_worker = MediaWorker(
            settings=settings.media,
            units=self.units,
            store=self.media_store,
            media_for=self.media,
            replaced_media_kept_seconds=playback.stream_url_ttl_seconds,
            keys=self.media_keys,
        )
        self.media_access = MediaAccess(
            stream_urls=self.stream_urls,
            streams=backends.streams,
            grace_seconds=playback.grace_seconds,
            store=self.media_store,
            units=self.units,
            media_for=self.media,
            segment_cache_bytes=settings.media.segment_cache_mb * 1024 * 1024,
            keys=self.media_keys,
            public_base_url=settings.media.public_base_url,
        )
        self.event_archive = DirectoryArchive(Path(playback.media_dir) / "archive")
        self._subscribe_handlers()

    # one builder per service: the request providers and the jobs use the same

    def accounts(self, uow: UnitOfWork) -> AccountService:
        return AccountService(
            uow,
            settings=self.settings.auth,
            password_hasher=self.password_hasher,
            token_codec=self.token_codec,
            revocations=self.backends.revocations,
            rate_limiter=self.backends.rate_limiter,
            units=self.units,
        )

    def plans(self, uow: UnitOfWork) -> PlanService:
        return PlanService(uow, public_cache=self.public_cache, plan_usage=self._plan_usage)

    def catalog(self, uow: UnitOfWork) -> CatalogService:
        return CatalogService(uow, public_cache=self.public_cache, viewers=self._viewer_counts, titles=self.titles)

    def media(self, uow: UnitOfWork) -> MediaService:
        return MediaService(uow, settings=self.settings.media, store=self.media_store, catalog=self.catalog(uow))

    def entitlements(self, uow: UnitOfWork) -> EntitlementService:
        return EntitlementService(
            uow.session, free_max_devices=self.settings.playback.free_max_devices, memory=self.entitlement_memory
        )

    def subscriptions(self, uow: UnitOfWork) -> SubscriptionService:
        return SubscriptionService(uow)

    def watch_history(self, uow: UnitOfWork) -> WatchHistoryService:
        return self._watch_history(uow)

    def _watch_history(self, uow: UnitOfWork, *, optimistic: bool = False) -> WatchHistoryService:
        return WatchHistoryService(
            uow,
            rules=self._resume_rules,
            entitlements=self.entitlements(uow),
            catalog=self.catalog(uow),
            optimistic=optimistic,
        )

    def watch_history_requests(self) -> WatchHistoryRequests:
        """The seed's hot watch-history routes (pages and progress reports), built once."""
        return WatchHistoryRequests(self.units, lambda uow, optimistic: self._watch_history(uow, optimistic=optimistic))

    def playback(self, uow: UnitOfWork) -> PlaybackService:
        return PlaybackService(
            uow,
            settings=self.settings.playback,
            streams=self.backends.streams,
            snapshots=self.snapshots,
            history=self.watch_history(uow),
            entitlements=self.entitlements(uow),
            catalog=self.catalog(uow),
            playback_tokens=self.playback_tokens,
            stream_urls=self.stream_urls,
            positions=self.positions,
            notices=self.notices,
            pending=self.backends.pending,
            public_url=self.settings.server.public_url,
        )

    def recommendations(self, uow: UnitOfWork) -> RecommendationService:
        return RecommendationService(
            catalog=self.catalog(uow), history=self.watch_history(uow), entitlements=self.entitlements(uow)
        )

    def notifications(self, uow: UnitOfWork) -> NotificationService:
        return NotificationService(uow.session, self.settings)

    # wiring

    def dependencies(self) -> dict[str, Provide]:
        """What request handlers may ask for by name."""
        per_unit_of_work = {
            "accounts": self.accounts,
            "plans": self.plans,
            "catalog": self.catalog,
            "media": self.media,
            "subscriptions": self.subscriptions,
            "history": self.watch_history,
            "playback": self.playback,
            "recommendations": self.recommendations,
            "notifications": self.notifications,
        }
        shared: dict[str, Any] = {
            "profiles": self.profiles,
            "readiness": self.readiness,
            "player_sockets": self.player_sockets,
            "delivery": self.media_access,
            "media_settings": self.settings.media,
            # Pages read outside a transaction; a report is one short write, straight on the driver where it can be.
            "history_requests": self.watch_history_requests(),
        }
        dependencies = {
            "uow": Provide(self.units.provide),
        }
        dependencies.update(
            {name: Provide(builder, sync_to_thread=False) for name, builder in per_unit_of_work.items()}
        )
        dependencies.update({name: Provide(_constant(value), sync_to_thread=False) for name, value in shared.items()})
        return dependencies

    def _subscribe_handlers(self) -> None:
        subscribe_playback(self.events, self.playback, self.snapshots)
        forget_changed_entitlements(self.events, self.invalidations)
        self.events.subscribe(TitlePublished, mail_followers_on_release(self.settings))

    async def _database_answers(self) -> None:
        async with self.db_config.get_engine().connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def _notices_subscribed(self) -> None:
        if not self.broadcast.subscribed:
            raise ConnectionError("not subscribed to the cross-instance messages")

    async def close(self) -> None:
        await self.backends.close()
        await self.media_store.close()


def _constant(value: Any) -> Any:
    def provide() -> Any:
        return value

    return provide
