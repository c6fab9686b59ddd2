"""Admin media routes: tus uploads (core + creation + termination) and a title's media state.

HTTP shape only: the rules live in :mod:`reelhouse.assets.services`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, head, patch, post, route
from litestar.connection import ASGIConnection
from litestar.enums import HttpMethod
from litestar.exceptions import InternalServerException
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from litestar.types import Method
from litestar.types.internal_types import PathParameterDefinition

from reelhouse.accounts.auth import CurrentUser, requires_admin
from reelhouse.assets.schemas import MediaState, UrlIngest
from reelhouse.assets.services import TUS_EXTENSIONS, TUS_VERSION, MediaService, parse_upload_metadata
from reelhouse.config import MediaSettings
from reelhouse.platform.errors import DomainError, InvalidInput, problem

UPLOADS_PATH = "/api/v1/admin/uploads"
OFFSET_STREAM = "application/offset+octet-stream"
#: Uploads send many requests (a chunk each); they are administrators' and bounded by the chunk size.
UPLOAD_ROUTE_OPT = {"exclude_from_rate_limit": True}


class TusVersionUnsupported(DomainError):
    status_code = 412
    code = "tus_version_unsupported"
    default_detail = f"This server speaks tus {TUS_VERSION}: send Tus-Resumable: {TUS_VERSION}."

    def __init__(self) -> None:
        super().__init__(headers={"Tus-Version": TUS_VERSION})


class NotOffsetStream(DomainError):
    status_code = 415
    code = "unsupported_content_type"
    default_detail = f"A PATCH body must be sent as {OFFSET_STREAM}."


def _tus_request(request: Request[Any, Any, Any]) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise TusVersionUnsupported()


def _whole_number(request: Request[Any, Any, Any], header: str) -> int:
    raw = request.headers.get(header)
    if raw is None or not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"{header} must be a whole number of bytes.")
    return int(raw)


def _tus_headers(**headers: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **headers}


def tus_discovery(settings: MediaSettings) -> Response[None]:
    return Response(
        content=None,
        status_code=HTTP_204_NO_CONTENT,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.max_upload_bytes),
            "Tus-Max-Chunk-Size": str(settings.tus_max_chunk_bytes),
        },
    )


async def admin_unless_discovery(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """tus discovery (OPTIONS) is open to anyone; creating an upload is for administrators."""
    if connection.scope.get("method") != HttpMethod.OPTIONS:
        await requires_admin(connection, handler)


def _create_operation_id(_: HTTPRouteHandler, method: Method, __: list[str | PathParameterDefinition]) -> str:
    return "TusDiscovery" if method == HttpMethod.OPTIONS else "CreateUpload"


class AdminUploadController(Controller):
    """Resumable uploads (tus 1.0): create, ask the offset, send chunks, give up."""

    path = UPLOADS_PATH
    tags = ["Admin: media"]

    @route(
        "/",
        # One handler for both: Litestar's automatic OPTIONS answer would otherwise shadow discovery.
        http_method=[HttpMethod.POST, HttpMethod.OPTIONS],
        operation_id=_create_operation_id,
        guards=[admin_unless_discovery],
        summary="Start an upload (tus creation, POST) or discover the server's tus support (OPTIONS, anyone)",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        optional_user: CurrentUser | None,
        media: MediaService,
        media_settings: MediaSettings,
    ) -> Response[None]:
        """POST headers: ``Tus-Resumable: 1.0.0``, ``Upload-Length``, ``Upload-Metadata`` with the
        title's ``content_id`` and the ``filename`` (base64, per tus). 201 with ``Location``."""
        if request.method == HttpMethod.OPTIONS:
            return tus_discovery(media_settings)
        assert optional_user is not None  # the guard let only administrators through
        current_user = optional_user
        _tus_request(request)
        if "upload-defer-length" in request.headers:
            raise InvalidInput("Upload-Defer-Length is not supported: send Upload-Length.")
        upload = await media.create_upload(
            length=_whole_number(request, "upload-length"),
            metadata=parse_upload_metadata(request.headers.get("upload-metadata")),
            created_by=current_user.id,
        )
        return Response(
            content=None,
            status_code=201,
            headers=_tus_headers(Location=f"{UPLOADS_PATH}/{upload.id}", **{"Upload-Offset": "0"}),
        )

    @head(
        "/{upload_id:uuid}",
        operation_id="UploadOffset",
        guards=[requires_admin],
        opt=UPLOAD_ROUTE_OPT,
        summary="How many bytes the server has (resume from there)",
    )
    async def offset(self, request: Request[Any, Any, Any], upload_id: UUID, media: MediaService) -> Response[None]:
        _tus_request(request)
        upload = await media.upload(upload_id)
        return Response(
            content=None,
            status_code=200,
            headers=_tus_headers(
                **{"Upload-Offset": str(await media.offset(upload)), "Upload-Length": str(upload.length)}
            ),
        )

    @patch(
        "/{upload_id:uuid}",
        operation_id="AppendUpload",
        guards=[requires_admin],
        opt=UPLOAD_ROUTE_OPT,
        request_max_body_size=None,  # bounded by TUS_MAX_CHUNK_BYTES while it streams to the media store
        summary="Send the next bytes at Upload-Offset; the last byte queues the title's media job",
    )
    async def append(self, request: Request[Any, Any, Any], upload_id: UUID, media: MediaService) -> Response[Any]:
        _tus_request(request)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != OFFSET_STREAM:
            raise NotOffsetStream()
        declared = request.headers.get("content-length")
        outcome = await media.append(
            upload_id,
            offset=_whole_number(request, "upload-offset"),
            declared_length=int(declared) if declared is not None and declared.isdigit() else None,
            body=_until_disconnect(request),
        )
        if outcome.refused is not None:
            refused = outcome.refused
            return problem(refused.status_code, refused.code, refused.detail, headers=_tus_headers())
        return Response(
            content=None,
            status_code=HTTP_204_NO_CONTENT,
            headers=_tus_headers(**{"Upload-Offset": str(outcome.offset)}),
        )

    @delete(
        "/{upload_id:uuid}",
        operation_id="TerminateUpload",
        guards=[requires_admin],
        summary="Give up an upload (tus termination)",
    )
    async def terminate(self, request: Request[Any, Any, Any], upload_id: UUID, media: MediaService) -> Response[None]:
        _tus_request(request)
        await media.terminate(upload_id)
        return Response(content=None, status_code=HTTP_204_NO_CONTENT, headers=_tus_headers())


class AdminMediaController(Controller):
    """A title's processed media: its state, ingest from a URL, removal."""

    path = "/api/v1/admin/content/{content_id:uuid}/media"
    tags = ["Admin: media"]
    guards = [requires_admin]

    @get("/", operation_id="GetTitleMedia", summary="The title's media: status, progress, renditions")
    async def state(self, content_id: UUID, media: MediaService) -> MediaState:
        return await media.state(content_id)

    @post(
        "/",
        operation_id="IngestTitleMedia",
        status_code=HTTP_202_ACCEPTED,
        summary="Fetch the title's video from a URL (source_url, or its video_url) and process it",
    )
    async def ingest(self, content_id: UUID, data: UrlIngest, media: MediaService) -> MediaState:
        return await media.ingest_url(content_id, data.source_url)

    @delete(
        "/",
        operation_id="DeleteTitleMedia",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove the title's processed media (it stops being playable)",
    )
    async def remove(self, content_id: UUID, media: MediaService) -> None:
        await media.remove_media(content_id)


async def _until_disconnect(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    """A PATCH body as it arrives, ending where the client disconnected: tus keeps what arrived,
    and the client resumes from the offset HEAD reports."""
    try:
        async for chunk in request.stream():
            yield chunk
    except InternalServerException:  # Litestar's "client disconnected prematurely"
        return
