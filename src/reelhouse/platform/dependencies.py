"""App-wide dependencies, available to every handler by name."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import Scope

from reelhouse.platform.auth import provide_current_user, provide_optional_user
from reelhouse.platform.client_ip import client_ip
from reelhouse.platform.pagination import provide_pagination
from reelhouse.platform.state import AppServices


def provide_services(state: State) -> AppServices:
    return state.services  # type: ignore[no-any-return]


def provide_client_ip(state: State, scope: Scope) -> str:
    services: AppServices = state.services
    return client_ip(scope, services.settings.server.trusted_proxy_networks)


APP_DEPENDENCIES: dict[str, Any] = {
    "services": Provide(provide_services, sync_to_thread=False),
    "current_user": Provide(provide_current_user, sync_to_thread=False),
    "optional_user": Provide(provide_optional_user, sync_to_thread=False),
    "pagination": Provide(provide_pagination, sync_to_thread=False),
    "client_address": Provide(provide_client_ip, sync_to_thread=False),
}
