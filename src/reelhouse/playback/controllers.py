"""HTTP shape of watch history: parse, call WatchHistoryService, shape the answer."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from reelhouse.accounts.auth import CurrentUser, requires_user
from reelhouse.platform.pagination import Pagination
from reelhouse.playback.history import WatchHistoryRequests, WatchHistoryService
from reelhouse.playback.schemas import (
    ContinueWatchingList,
    ProgressReport,
    ProgressUpdate,
    WatchEntry,
    WatchHistoryList,
    watch_entry_from,
)

EntryId = Annotated[UUID, Parameter(description="A watch-history entry id")]


class WatchHistoryController(Controller):
    path = "/api/v1/watch-history"
    tags = ["Watch history"]
    guards = [requires_user]

    @post(
        "/",
        operation_id="RecordProgress",
        status_code=HTTP_200_OK,
        summary="Save how far you watched a title (creates or updates your entry; 200 either way, as the seed API)",
    )
    async def record(
        self, data: ProgressReport, current_user: CurrentUser, history_requests: WatchHistoryRequests
    ) -> WatchEntry:
        item, _ = await history_requests.record(current_user.id, data.content_id, data.watched_seconds)
        return watch_entry_from(item)

    @get("/", operation_id="RecentlyWatched", summary="Recently watched, most recent first")
    async def recently_watched(
        self, current_user: CurrentUser, history_requests: WatchHistoryRequests, pagination: Pagination
    ) -> WatchHistoryList:
        items, total = await history_requests.recently_watched(
            current_user.id, limit=pagination.limit, offset=pagination.offset
        )
        return WatchHistoryList(
            watch_history=[watch_entry_from(item) for item in items],
            total=total,
            limit=pagination.limit,
            offset=pagination.offset,
        )

    @get(
        "/continue-watching",
        operation_id="ContinueWatching",
        summary="Titles you stopped part-way through, most recent first",
    )
    async def continue_watching(
        self, current_user: CurrentUser, history_requests: WatchHistoryRequests, pagination: Pagination
    ) -> ContinueWatchingList:
        items, total = await history_requests.continue_watching(
            current_user.id, limit=pagination.limit, offset=pagination.offset
        )
        return ContinueWatchingList(
            continue_watching=[watch_entry_from(item) for item in items],
            total=total,
            limit=pagination.limit,
            offset=pagination.offset,
        )

    @put("/{entry_id:uuid}", operation_id="UpdateProgress", summary="Change the position of one of your entries")
    async def update(
        self, entry_id: EntryId, data: ProgressUpdate, current_user: CurrentUser, history: WatchHistoryService
    ) -> WatchEntry:
        return watch_entry_from(await history.update(current_user.id, entry_id, data.watched_seconds))

    @delete("/{entry_id:uuid}", operation_id="HideWatchEntry", status_code=HTTP_204_NO_CONTENT)
    async def hide(self, entry_id: EntryId, current_user: CurrentUser, history: WatchHistoryService) -> None:
        """Remove an entry from your lists (watching the title again brings it back)."""
        await history.hide(current_user.id, entry_id)
