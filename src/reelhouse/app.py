"""The application: ``create_app()`` and the one plugin that wires everything together."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components as OpenAPIComponents
from litestar.openapi.spec import SecurityScheme, Tag
from litestar.plugins import CLIPluginProtocol, InitPluginProtocol

from reelhouse import __version__
from reelhouse.accounts.auth import AccessTokenMiddleware, provide_current_user, provide_optional_user
from reelhouse.accounts.controllers import AuthController, UserController
from reelhouse.admin.controllers import AdminUserController
from reelhouse.api_docs import API_CONVENTIONS
from reelhouse.assets.controllers import AdminMediaController, AdminUploadController
from reelhouse.catalog.controllers import (
    AdminContentController,
    AdminGenreController,
    ContentController,
    FollowedGenreController,
    GenreController,
)
from reelhouse.config import Settings, SettingsError, get_settings
from reelhouse.discovery.controllers import RecommendationController
from reelhouse.notifications.controllers import (
    AdminNotificationController,
    NotificationPreferenceController,
    UnsubscribeController,
)
from reelhouse.notifications.dispatcher import NotificationDispatcher
from reelhouse.notifications.services import REMINDER_SCAN_INTERVAL_SECONDS, enqueue_due_reminders
from reelhouse.plans.controllers import AdminPlanController, PlanController
from reelhouse.platform import swagger_ui
from reelhouse.platform.cache import PublicCacheMiddleware
from reelhouse.platform.client_ip import client_ip
from reelhouse.platform.db import upgrade_database_async
from reelhouse.platform.errors import EXCEPTION_HANDLERS
from reelhouse.platform.headers import add_security_headers
from reelhouse.platform.health import HealthController, answer_liveness_probes
from reelhouse.platform.hosts import HostGuardMiddleware
from reelhouse.platform.jobs import PeriodicJob
from reelhouse.platform.logging import RequestIdMiddleware, configure_logging, stamp_response
from reelhouse.platform.metrics import metrics_controller, prometheus_config
from reelhouse.platform.openapi import install as install_openapi_document
from reelhouse.platform.pagination import provide_pagination
from reelhouse.platform.ratelimit import RateLimitMiddleware
from reelhouse.platform.requests import InputGuardMiddleware, ReelhouseRequest
from reelhouse.platform.runtime import tune_garbage_collector
from reelhouse.playback.controllers import WatchHistoryController
from reelhouse.playback.events import ensure_event_partitions
from reelhouse.playback.media import MediaController
from reelhouse.playback.metrics import refresh_live_sessions
from reelhouse.playback.retention import archive_old_events
from reelhouse.playback.session_controllers import AdminPlaybackController, PlaybackSessionController
from reelhouse.playback.socket import playback_socket
from reelhouse.player import player_router
from reelhouse.subscriptions.controllers import SubscriptionController, SubscriptionHistoryAliasController
from reelhouse.subscriptions.services import settle_expired_subscriptions
from reelhouse.wiring import Components

if TYPE_CHECKING:
    from click import Group
    from litestar.config.app import AppConfig
    from litestar.types import ControllerRouterHandler, Scope

logger = logging.getLogger("reelhouse")

SUBSCRIPTION_SETTLE_INTERVAL_SECONDS = 60
EVENT_PARTITION_INTERVAL_SECONDS = 6 * 3600
#: A stream silent past its grace period ends within this many seconds (and its screen is free).
SWEEP_INTERVAL_SECONDS = 4.0
#: How often what the database could not take (during an outage) is written again.
PENDING_WRITES_INTERVAL_SECONDS = 5.0
#: How often unfinished uploads past MEDIA_UPLOAD_EXPIRY_HOURS are looked for.
ABANDONED_UPLOADS_INTERVAL_SECONDS = 3600
REPLACED_MEDIA_INTERVAL_SECONDS = 600

ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    HealthController,
    AuthController,
    UserController,
    AdminUserController,
    PlanController,
    AdminPlanController,
    SubscriptionController,
    SubscriptionHistoryAliasController,
    ContentController,
    RecommendationController,
    GenreController,
    FollowedGenreController,
    AdminContentController,
    AdminGenreController,
    WatchHistoryController,
    PlaybackSessionController,
    AdminPlaybackController,
    playback_socket,
    MediaController,
    AdminUploadController,
    AdminMediaController,
    NotificationPreferenceController,
    UnsubscribeController,
    AdminNotificationController,
]


class ReelhousePlugin(InitPluginProtocol, CLIPluginProtocol):
    """Every piece of the app in one readable place."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.components = components = Components(settings)
        # Off (interval 0) when NOTIFICATION_DISPATCH_IN_API=false: `reelhouse notifications worker` sends instead.
        self.notifier = NotificationDispatcher(settings, components.db_config)
        units = components.units
        self.jobs = [
            PeriodicJob(
                "settle-expired-subscriptions",
                SUBSCRIPTION_SETTLE_INTERVAL_SECONDS,
                lambda: settle_expired_subscriptions(units),
            ),
            PeriodicJob("sweep-silent-streams", SWEEP_INTERVAL_SECONDS, components.supervisor.sweep),
            PeriodicJob(
                "write-pending-positions", PENDING_WRITES_INTERVAL_SECONDS, components.supervisor.write_pending
            ),
            PeriodicJob(
                "create-event-partitions", EVENT_PARTITION_INTERVAL_SECONDS, lambda: ensure_event_partitions(units)
            ),
            PeriodicJob(
                "archive-old-playback-events",
                EVENT_PARTITION_INTERVAL_SECONDS,
                lambda: archive_old_events(
                    units, components.event_archive, retention_months=settings.playback.events_retention_months
                ),
            ),
            PeriodicJob(
                "queue-subscription-reminders",
                REMINDER_SCAN_INTERVAL_SECONDS,
                lambda: enqueue_due_reminders(units, settings),
            ),
            PeriodicJob("dispatch-notifications", self.notifier.in_api_interval_seconds, self.notifier.dispatch_due),
            # Off (interval 0) when MEDIA_WORKER_IN_API=false: `reelhouse media worker` transcodes instead.
            PeriodicJob(
                "process-media", components.media_worker.in_api_interval_seconds, components.media_worker.run_due
            ),
            PeriodicJob(
                "discard-abandoned-uploads",
                ABANDONED_UPLOADS_INTERVAL_SECONDS,
                components.media_worker.discard_abandoned_uploads,
            ),
            PeriodicJob(
                "discard-replaced-media",
                REPLACED_MEDIA_INTERVAL_SECONDS,
                components.media_worker.discard_replaced_media,
            ),
        ]

    def on_cli_init(self, cli: Group) -> None:
        from reelhouse.cli import register_commands

        register_commands(cli)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        components = self.components
        configure_logging(settings.server.log_level)
        trusted_proxies = settings.server.trusted_proxy_networks

        def provide_client_address(scope: Scope) -> str:
            return client_ip(scope, trusted_proxies)

        app_config.debug = False
        app_config.request_class = ReelhouseRequest  # strict JSON bodies (platform/requests.py)
        # For the CLI commands and the tests, which stand above everything; no handler reads it.
        app_config.state.components = components
        app_config.plugins.append(SQLAlchemyPlugin(config=components.db_config))
        app_config.route_handlers.extend(ROUTE_HANDLERS)
        streams = components.backends.streams
        app_config.route_handlers.append(
            metrics_controller(lambda: refresh_live_sessions(streams), settings.server.metrics_token)
        )
        # The reference web player at /player (segments may come from MEDIA_PUBLIC_BASE_URL too).
        app_config.route_handlers.append(player_router(settings.player, settings.media.public_base_url))
        app_config.route_handlers.append(swagger_ui.assets_router())  # Swagger UI's scripts and styles
        app_config.dependencies.update(components.dependencies())
        app_config.dependencies.update(
            {
                "current_user": Provide(provide_current_user, sync_to_thread=False),
                "optional_user": Provide(provide_optional_user, sync_to_thread=False),
                "pagination": Provide(provide_pagination, sync_to_thread=False),
                "client_address": Provide(provide_client_address, sync_to_thread=False),
            }
        )
        app_config.exception_handlers.update(EXCEPTION_HANDLERS)
        app_config.before_send.append(stamp_response)
        app_config.before_send.append(add_security_headers)
        app_config.middleware[:0] = [
            RequestIdMiddleware(),
            HostGuardMiddleware(settings.server.allowed_hosts),
            RateLimitMiddleware(
                components.backends.rate_limiter,
                settings.rate_limit,
                trusted_proxies,
                components.authenticator.user_of,
            ),
            InputGuardMiddleware(),  # control characters in the path or the query string
            PublicCacheMiddleware(components.public_cache),  # anonymous reads only: before authentication
            DefineMiddleware(AccessTokenMiddleware, authenticator=components.authenticator),
            prometheus_config().middleware,  # inside auth and rate limits, whose refusals raise past it
        ]
        if settings.server.cors_allowed_origins:
            app_config.cors_config = CORSConfig(
                allow_origins=settings.server.cors_allowed_origins,
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "Idempotency-Key",
                    "X-Request-ID",
                    "Range",
                    "If-Range",
                    "Tus-Resumable",
                    "Upload-Length",
                    "Upload-Offset",
                    "Upload-Metadata",
                ],
                expose_headers=[
                    "RateLimit",
                    "RateLimit-Policy",
                    "Retry-After",
                    "X-Request-ID",
                    "Content-Range",
                    "Accept-Ranges",
                    "Content-Length",
                    "Location",
                    "Tus-Resumable",
                    "Tus-Version",
                    "Tus-Extension",
                    "Tus-Max-Size",
                    "Upload-Offset",
                    "Upload-Length",
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
            components=OpenAPIComponents(
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
                Tag(name="Media", description="Signed stream URLs: HLS playlists and segments, per playback session"),
                Tag(
                    name="Admin: media",
                    description="Administrators upload (tus) or fetch a title's video and see its processing",
                ),
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
        settings, components = self.settings, self.components
        # A bucket that is not there or credentials that do not work stop the start, not the first upload.
        await components.media_store.check()
        if settings.database.migrate_on_startup:
            await upgrade_database_async(components.db_config)
            await ensure_event_partitions(components.units)
        if settings.admin.email and settings.admin.password:
            from advanced_alchemy.exceptions import DuplicateKeyError

            for attempt in range(2):
                try:
                    async with components.units.begin() as uow:
                        _, created = await components.accounts(uow).ensure_admin(
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
            components.backends.kind,
        )

        for job in self.jobs:
            job.start()
        # Subscribed (bounded wait) before serving: sockets accepted from now on miss no notice.
        await components.broadcast.start()
        if settings.is_production:
            tune_garbage_collector()  # a server process; test runs build many apps in one process

    async def _on_shutdown(self) -> None:
        components = self.components
        # Sessions live on in the store; sockets close with 1012 and players reconnect elsewhere.
        await components.open_sockets.close_all()
        await components.broadcast.stop()
        await components.positions.drain()
        await components.invalidations.stop()
        for job in self.jobs:
            await job.stop()
        await components.close()


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
    # Outermost, inside the before_send hooks: a liveness probe costs no middleware (platform/health.py).
    app.asgi_handler = answer_liveness_probes(app.asgi_handler)
    return app
