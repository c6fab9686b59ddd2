"""One contract for both stream stores: admission, eviction, heartbeats, ending, trimming, sweeping."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contract.conftest import REDIS_IMPLEMENTATIONS
from reelhouse.playback.heartbeats import HeartbeatBatcher
from reelhouse.playback.streams import (
    EndReason,
    HeartbeatReport,
    MemoryStreamStore,
    NewStream,
    RedisStreamStore,
    StoreTimings,
    StreamStore,
)

GRACE_MS = 600
TIMINGS = StoreTimings(grace_ms=GRACE_MS, flush_interval_ms=300, ended_ttl_seconds=60)


@pytest.fixture
def streams(request: pytest.FixtureRequest, implementation: str) -> StreamStore:
    if implementation in REDIS_IMPLEMENTATIONS:
        return RedisStreamStore(
            request.getfixturevalue("redis_client"), request.getfixturevalue("contract_prefix"), TIMINGS
        )
    return MemoryStreamStore(TIMINGS)


def stream(user: str, device: str, content: str = "c1", position: float = 0.0) -> NewStream:
    return NewStream(
        session_id=uuid.uuid4().hex,
        user_id=user,
        device_id=device,
        device_name=f"{device} name",
        content_id=content,
        position=position,
    )


async def start(store: StreamStore, new: NewStream, limit: int = 2, reject: bool = False):
    return await store.admit(new, limit=limit, reject_when_full=reject)


class TestAdmission:
    async def test_streams_up_to_the_limit_are_admitted_without_ending_anything(self, streams):
        first = await start(streams, stream("u1", "tv"))
        second = await start(streams, stream("u1", "phone"))
        assert first.admitted
        assert second.admitted
        assert first.ended == []
        assert second.ended == []
        assert sorted(s.device_id for s in await streams.live("u1")) == ["phone", "tv"]

    async def test_the_oldest_stream_is_evicted_when_the_limit_is_reached(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        await asyncio.sleep(0.005)
        await start(streams, stream("u1", "phone"))
        await asyncio.sleep(0.005)
        third = await start(streams, stream("u1", "laptop"))
        assert third.admitted
        assert [(e.session.session_id, e.reason) for e in third.ended] == [(tv.session_id, EndReason.STREAM_LIMIT)]
        assert sorted(s.device_id for s in await streams.live("u1")) == ["laptop", "phone"]
        assert await streams.ended_reason("u1", tv.session_id) == EndReason.STREAM_LIMIT

    async def test_reject_new_refuses_and_lists_the_live_streams(self, streams):
        await start(streams, stream("u1", "tv"))
        await start(streams, stream("u1", "phone"))
        refused = await start(streams, stream("u1", "laptop"), reject=True)
        assert not refused.admitted
        assert refused.ended == []
        assert sorted(s.device_id for s in refused.live) == ["phone", "tv"]
        assert len(await streams.live("u1")) == 2

    async def test_naming_a_session_to_replace_ends_it_and_admits_the_new_one(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        await start(streams, stream("u1", "phone"))
        laptop = stream("u1", "laptop")
        admitted = await streams.admit(laptop, limit=2, reject_when_full=True, replace_session_id=tv.session_id)
        assert admitted.admitted
        assert [e.session.device_id for e in admitted.ended] == ["tv"]
        assert sorted(s.device_id for s in await streams.live("u1")) == ["laptop", "phone"]

    async def test_the_same_device_starting_another_title_replaces_its_own_stream(self, streams):
        episode_one = stream("u1", "tv", content="ep1")
        await start(streams, episode_one, limit=1)
        episode_two = await start(streams, stream("u1", "tv", content="ep2"), limit=1)
        assert episode_two.admitted
        assert [(e.session.content_id, e.reason) for e in episode_two.ended] == [("ep1", EndReason.REPLACED)]
        assert [s.content_id for s in await streams.live("u1")] == ["ep2"]

    async def test_users_do_not_share_limits(self, streams):
        await start(streams, stream("u1", "tv"), limit=1)
        other = await start(streams, stream("u2", "tv"), limit=1)
        assert other.ended == []
        assert len(await streams.live("u1")) == 1

    async def test_concurrent_admissions_never_exceed_the_limit(self, streams):
        starts = [stream("u1", f"device-{n}") for n in range(60)]
        results = await asyncio.gather(*(start(streams, new) for new in starts))
        assert all(result.admitted for result in results)
        live = await streams.live("u1")
        assert len(live) == 2
        ended_ids = {e.session.session_id for result in results for e in result.ended}
        assert ended_ids == {new.session_id for new in starts} - {s.session_id for s in live}

    async def test_silent_streams_are_dropped_at_admission_as_expired(self, streams):
        silent = stream("u1", "tv", position=42.0)
        await start(streams, silent, limit=1)
        await asyncio.sleep(GRACE_MS / 1000 + 0.2)
        fresh = await start(streams, stream("u1", "phone"), limit=1)
        assert [(e.session.session_id, e.reason, e.session.position) for e in fresh.ended] == [
            (silent.session_id, EndReason.EXPIRED, 42.0)
        ]


class TestHeartbeat:
    async def test_a_heartbeat_refreshes_position_and_state(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        outcome = await streams.heartbeat("u1", tv.session_id, 12.5, "playing")
        assert outcome.alive
        assert not outcome.flush_due
        assert outcome.session is None  # sent back only when its position is due
        live = await streams.get("u1", tv.session_id)
        assert live is not None
        assert live.position == 12.5
        assert live.state == "playing"

    async def test_heartbeats_keep_a_stream_alive_past_the_grace_period(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        for _ in range(4):
            await asyncio.sleep(GRACE_MS / 1000 / 3)
            assert (await streams.heartbeat("u1", tv.session_id, 1.0, "playing")).alive
        assert await streams.sweep() == []

    async def test_a_heartbeat_for_an_evicted_stream_says_why_and_never_revives_it(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv, limit=1)
        await start(streams, stream("u1", "phone"), limit=1)
        outcome = await streams.heartbeat("u1", tv.session_id, 99.0, "playing")
        assert not outcome.alive
        assert outcome.reason == EndReason.STREAM_LIMIT
        assert [s.device_id for s in await streams.live("u1")] == ["phone"]

    async def test_a_late_heartbeat_ends_the_stream_as_expired_with_its_last_position(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        await streams.heartbeat("u1", tv.session_id, 30.0, "playing")
        await asyncio.sleep(GRACE_MS / 1000 + 0.2)
        outcome = await streams.heartbeat("u1", tv.session_id, 31.0, "playing")
        assert not outcome.alive
        assert outcome.reason == EndReason.EXPIRED
        assert outcome.ended is not None
        assert outcome.ended.session.position == 30.0
        assert await streams.live("u1") == []

    async def test_flush_is_due_at_most_once_per_interval(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        assert not (await streams.heartbeat("u1", tv.session_id, 1.0, "playing")).flush_due
        await asyncio.sleep(0.35)
        due = await streams.heartbeat("u1", tv.session_id, 2.0, "playing")
        assert due.flush_due
        assert due.session is not None
        assert (due.session.position, due.session.state, due.session.content_id) == (2.0, "playing", "c1")
        assert not (await streams.heartbeat("u1", tv.session_id, 3.0, "playing")).flush_due

    async def test_unknown_session_reads_as_ended(self, streams):
        outcome = await streams.heartbeat("u1", "no-such-session", 1.0, "playing")
        assert not outcome.alive


class TestHeartbeatBatches:
    async def test_each_report_of_a_batch_gets_its_own_outcome_in_order(self, streams):
        tv, phone = stream("u1", "tv"), stream("u2", "phone")
        await start(streams, tv)
        await start(streams, phone)
        outcomes = await streams.heartbeat_many(
            [
                HeartbeatReport("u1", tv.session_id, 10.0, "playing"),
                HeartbeatReport("u2", "no-such-session", 5.0, "playing"),
                HeartbeatReport("u2", phone.session_id, 20.0, "paused"),
            ]
        )
        assert [outcome.alive for outcome in outcomes] == [True, False, True]
        tv_live, phone_live = await streams.get("u1", tv.session_id), await streams.get("u2", phone.session_id)
        assert tv_live is not None
        assert tv_live.position == 10.0
        assert phone_live is not None
        assert (phone_live.position, phone_live.state) == (20.0, "paused")

    async def test_the_batcher_answers_every_concurrent_heartbeat(self, streams):
        sessions = [stream(f"user-{index}", "tv") for index in range(50)]
        for new in sessions:
            await start(streams, new)
        batcher = HeartbeatBatcher(streams)
        reports = [HeartbeatReport(new.user_id, new.session_id, float(index), "playing") for index, new in
                   enumerate(sessions)]  # fmt: skip
        outcomes = await asyncio.gather(*(batcher.heartbeat(report) for report in reports))
        assert all(outcome.alive for outcome in outcomes)
        assert len(outcomes) == 50
        for index, new in enumerate(sessions):
            live = await streams.get(new.user_id, new.session_id)
            assert live is not None
            assert live.position == float(index)

    async def test_a_server_that_lost_its_scripts_is_given_them_again(self, streams, implementation, request):
        if implementation not in REDIS_IMPLEMENTATIONS:
            pytest.skip("only Redis keeps scripts")
        tv = stream("u1", "tv")
        await start(streams, tv)
        await request.getfixturevalue("redis_client").script_flush()
        outcomes = await streams.heartbeat_many([HeartbeatReport("u1", tv.session_id, 7.0, "playing")])
        assert outcomes[0].alive
        await request.getfixturevalue("redis_client").script_flush()
        assert (await start(streams, stream("u1", "phone"))).admitted

    async def test_a_failed_round_trip_fails_only_the_heartbeats_it_carried(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        batcher = HeartbeatBatcher(streams)
        with pytest.raises(ValueError, match="could not convert"):
            await batcher.heartbeat(HeartbeatReport("u1", tv.session_id, "not a number", "playing"))  # type: ignore[arg-type]
        assert (await batcher.heartbeat(HeartbeatReport("u1", tv.session_id, 3.0, "playing"))).alive


class TestEnding:
    async def test_end_returns_the_last_position_and_remembers_the_reason(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        await streams.heartbeat("u1", tv.session_id, 64.0, "paused")
        ended = await streams.end("u1", tv.session_id, EndReason.ADMIN)
        assert ended is not None
        assert ended.session.position == 64.0
        assert ended.reason == EndReason.ADMIN
        assert await streams.end("u1", tv.session_id, EndReason.ADMIN) is None
        assert await streams.ended_reason("u1", tv.session_id) == EndReason.ADMIN
        assert (await streams.heartbeat("u1", tv.session_id, 65.0, "playing")).reason == EndReason.ADMIN

    async def test_a_session_cannot_be_ended_through_another_user(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        assert await streams.end("u2", tv.session_id, EndReason.STOPPED) is None
        assert len(await streams.live("u1")) == 1

    async def test_end_all_ends_every_stream_of_the_user_only(self, streams):
        await start(streams, stream("u1", "tv"))
        await start(streams, stream("u1", "phone"))
        await start(streams, stream("u2", "tv"))
        ended = await streams.end_all("u1", EndReason.SIGNED_OUT)
        assert sorted(e.session.device_id for e in ended) == ["phone", "tv"]
        assert {e.reason for e in ended} == {EndReason.SIGNED_OUT}
        assert await streams.live("u1") == []
        assert len(await streams.live("u2")) == 1

    async def test_trim_ends_the_oldest_beyond_a_new_limit(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv, limit=3)
        await asyncio.sleep(0.005)
        await start(streams, stream("u1", "phone"), limit=3)
        await asyncio.sleep(0.005)
        await start(streams, stream("u1", "laptop"), limit=3)
        ended = await streams.trim("u1", 2, EndReason.STREAM_LIMIT)
        assert [e.session.session_id for e in ended] == [tv.session_id]
        assert await streams.trim("u1", 2, EndReason.STREAM_LIMIT) == []

    async def test_sweep_ends_silent_streams_of_every_user(self, streams):
        await start(streams, stream("u1", "tv", position=5.0))
        await start(streams, stream("u2", "tv", position=7.0))
        assert sorted(await streams.live_users()) == ["u1", "u2"]
        await asyncio.sleep(GRACE_MS / 1000 + 0.2)
        ended = await streams.sweep()
        assert sorted((e.session.user_id, e.reason, e.session.position) for e in ended) == [
            ("u1", EndReason.EXPIRED, 5.0),
            ("u2", EndReason.EXPIRED, 7.0),
        ]
        assert await streams.live("u1") == []


class TestUnknownAndCaps:
    async def test_a_session_the_store_never_knew_has_no_reason_and_an_ended_one_keeps_its_own(self, streams):
        outcome = await streams.heartbeat("u1", uuid.uuid4().hex, 5.0, "playing")
        assert not outcome.alive
        assert outcome.reason is None
        assert outcome.ended is None

        tv = stream("u1", "tv")
        await start(streams, tv)
        await streams.end("u1", tv.session_id, EndReason.ADMIN)
        gone = await streams.heartbeat("u1", tv.session_id, 5.0, "playing")
        assert not gone.alive
        assert gone.reason == EndReason.ADMIN

    async def test_an_admission_sets_the_users_resolution_cap_admitted_or_not(self, streams):
        first = stream("u1", "tv")
        await streams.admit(first, limit=1, reject_when_full=True, resolution_cap="720p")
        assert (await streams.access("u1", first.session_id)).resolution_cap == "720p"
        refused = await streams.admit(stream("u1", "phone"), limit=1, reject_when_full=True, resolution_cap="4k")
        assert not refused.admitted
        assert (await streams.access("u1", first.session_id)).resolution_cap == "4k"
        await streams.admit(stream("u2", "tv"), limit=1, reject_when_full=True)  # no cap given: none set
        assert (await streams.access("u2", "any")).resolution_cap is None

    async def test_a_users_resolution_cap_is_kept_per_user_and_replaced_by_the_latest(self, streams):
        assert (await streams.access("u1", "any")).resolution_cap is None
        await streams.set_resolution_cap("u1", "4k")
        await streams.set_resolution_cap("u1", "720p")
        await streams.set_resolution_cap("u2", "1080p")
        assert (await streams.access("u1", "any")).resolution_cap == "720p"
        assert (await streams.access("u2", "any")).resolution_cap == "1080p"

    async def test_access_reads_the_session_why_it_ended_and_the_cap_together(self, streams):
        tv = stream("u1", "tv")
        await start(streams, tv)
        await streams.set_resolution_cap("u1", "1080p")
        live = await streams.access("u1", tv.session_id)
        assert live.session is not None
        assert (live.session.session_id, live.session.content_id) == (tv.session_id, tv.content_id)
        assert (live.ended_reason, live.resolution_cap) == (None, "1080p")

        await streams.end("u1", tv.session_id, EndReason.STOPPED)
        ended = await streams.access("u1", tv.session_id)
        assert (ended.session, ended.ended_reason, ended.resolution_cap) == (None, EndReason.STOPPED, "1080p")

        unknown = await streams.access("u2", "no-such-session")
        assert (unknown.session, unknown.ended_reason, unknown.resolution_cap) == (None, None, None)


class TestLiveCount:
    async def test_the_sweeper_keeps_the_count_of_live_streams(self, streams):
        for user, device in (("u1", "tv"), ("u1", "phone"), ("u2", "tv")):
            await start(streams, stream(user, device))
        await streams.sweep()
        assert await streams.live_count() == 3

        await streams.end_all("u1", EndReason.SIGNED_OUT)
        (kept,) = await streams.live("u2")
        for _ in range(4):  # past the one-sweep-a-second lock, heartbeating within the grace period
            await asyncio.sleep(GRACE_MS / 1000 / 2)
            await streams.heartbeat("u2", kept.session_id, 5.0, "playing")
        await streams.sweep()
        assert await streams.live_count() == 1
