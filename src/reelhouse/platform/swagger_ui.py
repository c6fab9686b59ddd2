"""Swagger UI served by the app itself: the scripts and styles come from the pinned
``swagger-ui-py`` package (Swagger UI 5, which renders OpenAPI 3.1), never from a CDN, so
``/schema`` works offline and behind a strict proxy.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from litestar import Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/schema/assets"


def assets_dir() -> Path:
    """Where the installed ``swagger-ui-py`` keeps Swagger UI's built files."""
    return Path(str(files("swagger_ui") / "static"))


def render_plugin(paths: list[str]) -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        path=paths,
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )


def assets_router() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[assets_dir()],
        include_in_schema=False,
        opt={"exclude_from_rate_limit": True},
        cache_control=None,
    )
