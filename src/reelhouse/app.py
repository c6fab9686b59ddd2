"""The application: ``create_app()`` and the one plugin that wires everything together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import TYPE_CHECKING

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.config.cors import CORSConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.plugins import CLIPluginProtocol, InitPluginProtocol

from reelhouse import __version__
from reelhouse.accounts.controllers import AuthController, UserController
from reelhouse.admin.controllers import AdminUserController
from reelhouse.api_docs import API_CONVENTIONS
from reelhouse.catalog.controllers import (
    AdminContentController,
    AdminGenreController,
    ContentController,
    FollowedGenreController,
    GenreController,
)
from reelhouse.config import Settings, SettingsError, get_settings
from reelhouse.notifications.controllers import (
    AdminNotificationController,
    NotificationPreferenceController,
    UnsubscribeController,
)
from reelhouse.notifications.dispatcher import NotificationDispatcher
from reelhouse.notifications.services import REMINDER_SCAN_INTERVAL_SECONDS, enqueue_due_reminders
from reelhouse.plans.controllers import AdminPlanController, PlanController
from reelhouse.platform import swagger_ui
from reelhouse.platform.auth import AccessTokenMiddleware
from reelhouse.platform.cache import PublicCacheMiddleware
from reelhouse.platform.db import upgrade_database_async
from reelhouse.platform.dependencies import APP_DEPENDENCIES
from reelhouse.platform.errors import EXCEPTION_HANDLERS
from reelhouse.platform.health import HealthController
from reelhouse.platform.jobs import PeriodicJob
from reelhouse.platform.logging import RequestIdMiddleware, configure_logging, stamp_response
from reelhouse.platform.metrics import MetricsController, prometheus_config
from reelhouse.platform.openapi import install as install_openapi_document
from reelhouse.platform.ratelimit import RateLimitMiddleware
from reelhouse.platform.runtime import tune_garbage_collector
from reelhouse.platform.state import AppServices
from reelhouse.playback.controllers import WatchHistoryController
from reelhouse.playback.events import ensure_event_partitions
from reelhouse.playback.media import MediaController
from reelhouse.playback.session_controllers import AdminPlaybackController, PlaybackSessionController
from reelhouse.playback.sessions import sweep_expired_streams
from reelhouse.playback.socket import playback_socket
from reelhouse.player import player_router
from reelhouse.subscriptions.controllers import SubscriptionController, SubscriptionHistoryAliasController
from reelhouse.subscriptions.services import settle_expired_subscriptions

if TYPE_CHECKING:
    from click import Group
    from litestar.config.app import AppConfig
    from litestar.types import ControllerRouterHandler

logger = logging.getLogger("reelhouse")

SUBSCRIPTION_SETTLE_INTERVAL_SECONDS = 60
EVENT_PARTITION_INTERVAL_SECONDS = 6 * 3600
PLAYER_NOTICES_SUBSCRIBE_SECONDS = 10

ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    HealthController,
    MetricsController,
    AuthController,
    UserController,
    AdminUserController,
    PlanController,
    AdminPlanController,
    SubscriptionController,
    SubscriptionHistoryAliasController,
    ContentController,
    GenreController,
    FollowedGenreController,
    AdminContentController,
    AdminGenreController,
    WatchHistoryController,
    PlaybackSessionController,
    AdminPlaybackController,
    playback_socket,
    MediaController,
    NotificationPreferenceController,
    UnsubscribeController,
    AdminNotificationController,
]


class ReelhousePlugin(InitPluginProtocol, CLIPluginProtocol):
    """Every piece of the app in one readable place."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = AppServices(settings)
        self.channels = ChannelsPlugin(backend=self.services.backends.channels, arbitrary_channels_allowed=True)
        self.services.channels = self.channels
        self.notice_listener: asyncio.Task[None] | None = None
        self.jobs = [
            PeriodicJob(
                "settle-expired-subscriptions",
                SUBSCRIPTION_SETTLE_INTERVAL_SECONDS,
                lambda: settle_expired_subscriptions(self.services),
            ),
            PeriodicJob(
                "sweep-silent-streams",
                max(1.0, settings.playback.heartbeat_interval_seconds / 2),
                lambda: sweep_expired_streams(self.services),
            ),
            PeriodicJob(
                "create-event-partitions",
                EVENT_PARTITION_INTERVAL_SECONDS,
                lambda: ensure_event_partitions(self.services),
            ),
            PeriodicJob(
                "queue-subscription-reminders",
                REMINDER_SCAN_INTERVAL_SECONDS,
                lambda: enqueue_due_reminders(self.services),
            ),
        ]
        # Off (interval 0) when NOTIFICATION_DISPATCH_IN_API=false: `reelhouse notifications worker` sends instead.
        self.notifier = NotificationDispatcher.from_services(self.services)
        self.jobs.append(
            PeriodicJob("dispatch-notifications", self.notifier.in_api_interval_seconds, self.notifier.dispatch_due)
        )

    def on_cli_init(self, cli: Group) -> None:
        from reelhouse.cli import register_commands

        register_commands(cli)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        services = self.services
        configure_logging(settings.server.log_level)

        app_config.debug = False
        app_config.state.services = services
        app_config.plugins.append(SQLAlchemyPlugin(config=services.db_config))
        app_config.plugins.append(self.channels)
        app_config.route_handlers.extend(ROUTE_HANDLERS)
        app_config.route_handlers.append(player_router())  # the reference web player at /player
        app_config.route_handlers.append(swagger_ui.assets_router())  # Swagger UI's scripts and styles
        app_config.dependencies.update(APP_DEPENDENCIES)
        app_config.exception_handlers.update(EXCEPTION_HANDLERS)
        app_config.before_send.append(stamp_response)
        app_config.middleware[:0] = [
            RequestIdMiddleware(),
            RateLimitMiddleware(),
            PublicCacheMiddleware(services.public_cache),  # anonymous reads only: before authentication
            DefineMiddleware(AccessTokenMiddleware),
            prometheus_config().middleware,  # inside auth and rate limits, whose refusals raise past it
        ]
        if settings.server.cors_allowed_origins:
            app_config.cors_config = CORSConfig(
                allow_origins=settings.server.cors_allowed_origins,
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID", "Range", "If-Range"],
                expose_headers=[
                    "RateLimit",
                    "RateLimit-Policy",
                    "Retry-After",
                    "X-Request-ID",
                    "Content-Range",
                    "Accept-Ranges",
                    "Content-Length",
                ],
                allow_credentials=False,
            )
        app_config.openapi_config = OpenAPIConfig(
            title="Reelhouse API",
            version=__version__,
            description="Subscription video streaming: accounts, plans, catalog, watch history and playback.",
            path="/schema",
            # Swagger UI at /schema and /schema/swagger, its scripts served by the app itself (no CDN).
            render_plugins=[swagger_ui.render_plugin(paths=["/", "/swagger"])],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
                }
            ),
            tags=[
                Tag(name="Health"),
                Tag(name="Auth", description="Register, sign in, refresh and sign out"),
                Tag(name="Profile", description="Your profile and signed-in devices"),
                Tag(name="Admin: users", description="Administrators manage accounts"),
                Tag(name="Plans", description="What a subscription buys"),
                Tag(name="Admin: plans", description="Administrators manage plans"),
                Tag(name="Subscriptions", description="Subscribe, cancel, renew and change plan"),
                Tag(name="Playback", description="Start, list and stop streams; the player's websocket"),
                Tag(name="Media", description="Signed stream URLs: HLS playlists and rendition files"),
                Tag(name="Admin: playback", description="Administrators see and end live streams"),
                Tag(name="Catalog", description="Browse, search, trending, new releases and recommendations"),
                Tag(name="Admin: catalog", description="Administrators manage titles and genres"),
                Tag(name="Watch history", description="Recently watched, continue watching and progress"),
                Tag(name="Admin: notifications", description="Administrators see the mail outbox and requeue failures"),
            ],
            use_handler_docstrings=True,
        )
        app_config.on_startup.append(self._on_startup)
        app_config.on_shutdown.append(self._on_shutdown)
        return app_config

    async def _on_startup(self) -> None:
        settings = self.settings
        if settings.database.migrate_on_startup:
            await upgrade_database_async(self.services.db_config)
            await ensure_event_partitions(self.services)
        if settings.admin.email and settings.admin.password:
            from advanced_alchemy.exceptions import DuplicateKeyError

            from reelhouse.accounts.services import AccountService
            from reelhouse.platform.db import session_scope

            for attempt in range(2):
                try:
                    async with session_scope(self.services.db_config) as session:
                        _, created = await AccountService(session, self.services).ensure_admin(
                            settings.admin.email, settings.admin.password
                        )
                    break
                except DuplicateKeyError:
                    if attempt:  # a twin instance created the admin at the same moment: ensure it again
                        raise
            logger.info("admin %s %s", settings.admin.email, "created" if created else "ensured")
        logger.info(
            "started: environment=%s database=%s backends=%s",
            settings.environment,
            "postgresql" if settings.database.is_postgresql else "sqlite",
            self.services.backends.kind,
        )

        for job in self.jobs:
            job.start()
        await self.services.public_cache.start(self.channels)
        subscribed = asyncio.Event()
        self.notice_listener = asyncio.create_task(self._listen_for_player_notices(subscribed))
        # Sockets accepted from now on must not miss a notice: wait (bounded) for the subscription.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), PLAYER_NOTICES_SUBSCRIBE_SECONDS)
        if settings.is_production:
            tune_garbage_collector()  # a server process; test runs build many apps in one process

    async def _listen_for_player_notices(self, subscribed: asyncio.Event) -> None:
        """Hand stream-termination notices from every instance to the sockets held here."""
        while True:
            try:
                await self.services.open_sockets.listen(self.channels, subscribed)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("player notices: subscription failed; subscribing again")
                await asyncio.sleep(1)

    async def _on_shutdown(self) -> None:
        # Sessions live on in the store; sockets close with 1012 and players reconnect elsewhere.
        await self.services.open_sockets.close_all()
        if self.notice_listener is not None:
            self.notice_listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.notice_listener
        await self.services.positions.drain()
        await self.services.public_cache.stop()
        for job in self.jobs:
            await job.stop()
        await self.services.backends.close()


def create_app(settings: Settings | None = None) -> Litestar:
    if settings is None:
        try:
            settings = get_settings()
        except SettingsError as exc:
            # A bad setting is the operator's to fix: say which, not a traceback (uvicorn and the CLI
            # print any other exception raised here as one).
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    # The body limit is read from the constructor only (not from a plugin's AppConfig).
    app = Litestar(plugins=[ReelhousePlugin(settings)], request_max_body_size=settings.server.request_max_body_bytes)
    install_openapi_document(app, API_CONVENTIONS)
    return app
