"""What an instance remembers of the database for the hot paths (titles, entitlements), and the
notices that make every instance forget it: expiry on an explicit clock, the generation check
that keeps a read racing a change out, the bounds, and notices between two instances."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from reelhouse.catalog.schemas import Content
from reelhouse.catalog.titles import Title, TitleMemory
from reelhouse.plans.models import AccessLevel, StreamLimitPolicy
from reelhouse.plans.resolutions import Resolution
from reelhouse.platform.broadcast import MemoryBroadcast
from reelhouse.platform.cache import CacheScope
from reelhouse.platform.invalidation import INVALIDATION_CHANNEL, Invalidations
from reelhouse.subscriptions.entitlement import ENTITLEMENT_TOPIC, Entitlement, EntitlementMemory, free_tier


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def a_title(access_level: AccessLevel = AccessLevel.FREE) -> Title:
    now = datetime.now(UTC)
    card = Content(
        id=uuid.uuid4(),
        title="A Film",
        description="",
        access_level=access_level,
        duration_seconds=3600,
        genres=[],
        release_year=None,
        thumbnail_url=None,
        trailer_url=None,
        published=True,
        published_at=now,
        playable=True,
        created_at=now,
        updated_at=now,
    )
    return Title(card=card, credits_start_seconds=None, media_asset_id=uuid.uuid4())


class TestTitleMemory:
    def test_a_title_is_recalled_until_its_time_is_up(self):
        clock = Clock()
        memory = TitleMemory(60, clock=clock)
        title = a_title()
        memory.keep([title], memory.generation())

        clock.now += 59.9
        assert memory.recall(title.id) is title
        clock.now += 0.1
        assert memory.recall(title.id) is None
        assert len(memory) == 0

    def test_a_read_that_raced_a_catalog_change_is_not_kept(self):
        memory = TitleMemory(60)
        generation = memory.generation()  # a request starts reading the old row
        memory.forget_all()  # an admin change commits meanwhile
        title = a_title()
        memory.keep([title], generation)
        assert memory.recall(title.id) is None

    def test_it_holds_at_most_its_bound_dropping_the_oldest(self):
        memory = TitleMemory(60, max_titles=2)
        titles = [a_title() for _ in range(3)]
        for title in titles:
            memory.keep([title], memory.generation())
        assert [memory.recall(title.id) for title in titles] == [None, titles[1], titles[2]]

    def test_a_time_of_zero_remembers_nothing(self):
        memory = TitleMemory(0)
        title = a_title()
        memory.keep([title], memory.generation())
        assert memory.recall(title.id) is None

    def test_a_catalog_notice_forgets_every_title(self):
        invalidations = Invalidations()
        memory = TitleMemory(60)
        memory.follow(invalidations)
        title = a_title()
        memory.keep([title], memory.generation())

        invalidations.changed(CacheScope.PLANS.value)
        assert memory.recall(title.id) is title
        invalidations.changed(CacheScope.CATALOG.value)
        assert memory.recall(title.id) is None


class TestEntitlementMemory:
    def test_an_entitlement_is_never_recalled_past_its_subscription_end(self):
        clock = Clock()
        memory = EntitlementMemory(60, clock=clock)
        user = uuid.uuid4()
        ending = Entitlement(
            access_level=AccessLevel.BASIC,
            max_devices=2,
            max_resolution=Resolution.HD_720P,
            stream_limit_policy=StreamLimitPolicy.EVICT_OLDEST,
            valid_until=datetime.fromtimestamp(clock.now + 10, UTC),
        )
        memory.keep(user, ending, memory.generation())

        clock.now += 9.9
        assert memory.recall(user) is ending
        clock.now += 0.1
        assert memory.recall(user) is None

    def test_a_users_notice_forgets_that_user_only_and_a_plan_change_everyone(self):
        invalidations = Invalidations()
        memory = EntitlementMemory(60)
        memory.follow(invalidations)
        changed, other = uuid.uuid4(), uuid.uuid4()
        for user in (changed, other):
            memory.keep(user, free_tier(1), memory.generation())

        invalidations.changed(ENTITLEMENT_TOPIC, str(changed))
        assert memory.recall(changed) is None
        assert memory.recall(other) == free_tier(1)

        invalidations.changed(CacheScope.PLANS.value)
        assert memory.recall(other) is None

    def test_a_read_that_raced_a_change_is_not_kept(self):
        memory = EntitlementMemory(60)
        user = uuid.uuid4()
        generation = memory.generation()
        memory.forget(str(user))
        memory.keep(user, free_tier(1), generation)
        assert memory.recall(user) is None

    def test_a_malformed_user_key_forgets_nobody_and_does_not_fail(self):
        memory = EntitlementMemory(60)
        user = uuid.uuid4()
        memory.keep(user, free_tier(1), memory.generation())
        memory.forget("not-a-uuid")
        assert memory.recall(user) == free_tier(1)


class TestNoticesBetweenInstances:
    async def test_a_change_on_one_instance_reaches_the_others_listeners_not_its_own_twice(self):
        broadcast = MemoryBroadcast()  # one channel shared by two instances in this process
        here, there = Invalidations(), Invalidations()
        heard: dict[str, list[str | None]] = {"here": [], "there": []}
        here.on(ENTITLEMENT_TOPIC, heard["here"].append)
        there.on(ENTITLEMENT_TOPIC, heard["there"].append)
        here.follow(broadcast)
        there.follow(broadcast)

        here.changed(ENTITLEMENT_TOPIC, "user-1")
        for _ in range(5):
            await asyncio.sleep(0)

        assert heard == {"here": ["user-1"], "there": ["user-1"]}
        await here.stop()
        await there.stop()

    async def test_an_unreadable_notice_or_a_lost_subscription_forgets_everything(self):
        broadcast = MemoryBroadcast()
        invalidations = Invalidations()
        heard: list[str | None] = []
        invalidations.on(CacheScope.CATALOG.value, heard.append)
        invalidations.follow(broadcast)

        broadcast.deliver(INVALIDATION_CHANNEL, b"\xff\xfe")
        broadcast.deliver(INVALIDATION_CHANNEL, b"")
        for handler in broadcast.reconnect_handlers:
            handler()

        assert heard == [None, None, None]
