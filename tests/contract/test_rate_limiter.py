"""The RateLimiter contract: Redis and in-memory limiters answer every sequence of hits alike."""

from __future__ import annotations

import asyncio

import pytest

from reelhouse.platform.ratelimit import RateLimiter


async def hits(limiter: RateLimiter, key: str, count: int, limit: int, period: float) -> list[bool]:
    return [(await limiter.hit(key, limit, period)).allowed for _ in range(count)]


class TestBurst:
    async def test_exactly_limit_requests_pass_then_the_next_is_denied(self, rate_limiter: RateLimiter):
        assert await hits(rate_limiter, "k", 5, limit=5, period=60) == [True] * 5

        denied = await rate_limiter.hit("k", 5, 60)

        assert not denied.allowed
        assert denied.remaining == 0
        assert denied.retry_after == pytest.approx(60 / 5, abs=0.5)
        assert denied.reset_after == pytest.approx(60, abs=0.5)

    # Intervals of several seconds, so a slow machine regains nothing mid-burst; 100/6 and 3500/300
    # are not whole in binary, which made epoch-sized float clocks miscount.
    @pytest.mark.parametrize(("limit", "period"), [(5, 60), (7, 60), (3, 10), (6, 100), (300, 3500)])
    async def test_remaining_counts_down_to_zero(self, rate_limiter: RateLimiter, limit: int, period: float):
        remaining = [(await rate_limiter.hit("k", limit, period)).remaining for _ in range(limit)]

        assert remaining == list(range(limit - 1, -1, -1))

    async def test_an_allowed_request_reports_when_the_bucket_is_full_again(self, rate_limiter: RateLimiter):
        first = await rate_limiter.hit("k", 4, 60)

        assert first.allowed
        assert first.limit == 4
        assert first.retry_after == 0
        assert first.reset_after == pytest.approx(15, abs=0.5)


class TestPeek:
    async def test_asking_without_consuming_never_changes_the_count(self, rate_limiter: RateLimiter):
        peeks = [await rate_limiter.hit("k", 3, 60, consume=False) for _ in range(10)]

        assert all(peek.allowed and peek.remaining == 2 for peek in peeks)
        assert await hits(rate_limiter, "k", 4, limit=3, period=60) == [True, True, True, False]

    async def test_asking_a_closed_bucket_says_no_and_keeps_it_as_it_was(self, rate_limiter: RateLimiter):
        await hits(rate_limiter, "k", 2, limit=2, period=1)

        peek = await rate_limiter.hit("k", 2, 1, consume=False)

        assert not peek.allowed
        assert peek.retry_after == pytest.approx(0.5, abs=0.1)
        await asyncio.sleep(peek.retry_after + 0.05)
        assert (await rate_limiter.hit("k", 2, 1)).allowed


class TestRefill:
    async def test_a_request_passes_again_once_retry_after_has_passed(self, rate_limiter: RateLimiter):
        assert await hits(rate_limiter, "k", 2, limit=2, period=1) == [True, True]
        denied = await rate_limiter.hit("k", 2, 1)
        assert not denied.allowed
        assert denied.retry_after == pytest.approx(0.5, abs=0.1)

        await asyncio.sleep(denied.retry_after + 0.05)

        assert await hits(rate_limiter, "k", 2, limit=2, period=1) == [True, False]

    async def test_denied_requests_do_not_push_the_retry_time_back(self, rate_limiter: RateLimiter):
        await hits(rate_limiter, "k", 2, limit=2, period=1)
        first_denial = await rate_limiter.hit("k", 2, 1)

        assert await hits(rate_limiter, "k", 20, limit=2, period=1) == [False] * 20
        await asyncio.sleep(first_denial.retry_after + 0.05)

        assert (await rate_limiter.hit("k", 2, 1)).allowed


class TestKeys:
    async def test_reset_forgets_everything_counted(self, rate_limiter: RateLimiter):
        await hits(rate_limiter, "k", 3, limit=3, period=60)

        await rate_limiter.reset("k")

        assert await hits(rate_limiter, "k", 4, limit=3, period=60) == [True, True, True, False]

    async def test_resetting_an_unknown_key_is_harmless(self, rate_limiter: RateLimiter):
        await rate_limiter.reset("never-seen")

        assert (await rate_limiter.hit("never-seen", 1, 60)).allowed

    async def test_keys_are_counted_separately(self, rate_limiter: RateLimiter):
        await hits(rate_limiter, "user:{a}", 3, limit=3, period=60)

        other = await rate_limiter.hit("user:{b}", 3, 60)

        assert other.allowed
        assert other.remaining == 2
        assert not (await rate_limiter.hit("user:{a}", 3, 60)).allowed


class TestConcurrency:
    async def test_concurrent_hits_admit_exactly_the_limit(self, rate_limiter: RateLimiter):
        decisions = await asyncio.gather(*(rate_limiter.hit("k", 10, 60) for _ in range(50)))

        assert sum(decision.allowed for decision in decisions) == 10
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


class TestLimits:
    @pytest.mark.parametrize(("limit", "period"), [(0, 60), (-1, 60), (5, 0)])
    async def test_a_limit_that_admits_nothing_is_refused(self, rate_limiter: RateLimiter, limit: int, period: float):
        with pytest.raises(ValueError, match="rate limit"):
            await rate_limiter.hit("k", limit, period)
