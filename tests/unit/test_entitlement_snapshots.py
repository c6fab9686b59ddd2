"""Heartbeats trust remembered entitlements only until they may have changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reelhouse.plans.models import AccessLevel, Resolution, StreamLimitPolicy
from reelhouse.playback.sessions import EntitlementSnapshots
from reelhouse.subscriptions.entitlement import Entitlement


def premium(valid_until: datetime | None) -> Entitlement:
    return Entitlement(
        access_level=AccessLevel.PREMIUM,
        max_devices=4,
        max_resolution=Resolution.UHD_4K,
        stream_limit_policy=StreamLimitPolicy.EVICT_OLDEST,
        valid_until=valid_until,
    )


def test_a_remembered_entitlement_is_used_until_it_goes_stale():
    snapshots = EntitlementSnapshots(user_seconds=60, content_seconds=60)
    snapshots.remember_user("u1", active=True, entitlement=premium(None))
    remembered = snapshots.user("u1")
    assert remembered is not None
    assert remembered.access_level == AccessLevel.PREMIUM
    assert remembered.max_devices == 4


def test_a_subscription_ending_sooner_than_the_snapshot_lifetime_ends_the_snapshot_with_it():
    snapshots = EntitlementSnapshots(user_seconds=60, content_seconds=60)
    snapshots.remember_user("u1", active=True, entitlement=premium(datetime.now(UTC) - timedelta(seconds=1)))
    assert snapshots.user("u1") is None


def test_forgetting_a_user_forces_a_fresh_read():
    snapshots = EntitlementSnapshots(user_seconds=60, content_seconds=60)
    snapshots.remember_user("u1", active=True, entitlement=premium(None))
    snapshots.forget_user("u1")
    assert snapshots.user("u1") is None


def test_titles_are_remembered_for_their_own_lifetime():
    snapshots = EntitlementSnapshots(user_seconds=60, content_seconds=0)
    snapshots.remember_content("c1", published=True, access_level=AccessLevel.FREE)
    assert snapshots.content("c1") is None
    fresh = EntitlementSnapshots(user_seconds=60, content_seconds=60)
    fresh.remember_content("c1", published=False, access_level=AccessLevel.BASIC)
    remembered = fresh.content("c1")
    assert remembered is not None
    assert remembered.published is False
