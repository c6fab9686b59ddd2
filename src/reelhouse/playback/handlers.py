"""How playback reacts to what the lower domains announce: the same path ends every stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelhouse.accounts.events import AccountDisabled, SignedOutEverywhere
from reelhouse.catalog.events import TitleWithdrawn
from reelhouse.playback.streams import EndReason
from reelhouse.subscriptions.events import EntitlementChanged

if TYPE_CHECKING:
    from collections.abc import Callable

    from reelhouse.platform.uow import EventBus, UnitOfWork
    from reelhouse.playback.sessions import EntitlementSnapshots, PlaybackService


def subscribe_playback(
    events: EventBus, playback_for: Callable[[UnitOfWork], PlaybackService], snapshots: EntitlementSnapshots
) -> None:
    async def end_streams_of_signed_out(uow: UnitOfWork, event: SignedOutEverywhere | AccountDisabled) -> None:
        await playback_for(uow).end_all(event.user_id, EndReason.SIGNED_OUT)

    async def apply_entitlement(uow: UnitOfWork, event: EntitlementChanged) -> None:
        await playback_for(uow).apply_entitlement(event.user_id)

    async def forget_title(_: UnitOfWork, event: TitleWithdrawn) -> None:
        # Its streams end at their next title check (within half a heartbeat interval everywhere).
        snapshots.forget_content(str(event.content_id))

    events.subscribe(SignedOutEverywhere, end_streams_of_signed_out)
    events.subscribe(AccountDisabled, end_streams_of_signed_out)
    events.subscribe(EntitlementChanged, apply_entitlement)
    events.subscribe(TitleWithdrawn, forget_title)
