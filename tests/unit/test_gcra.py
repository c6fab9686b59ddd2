"""GCRA arithmetic with an explicit clock: bursts, spacing, refill, peeking and big epoch clocks."""

from __future__ import annotations

import pytest

from reelhouse.platform.ratelimit import MICROSECONDS, GcraRate, MemoryRateLimiter, RateLimitDecision, gcra

#: A Redis-sized clock (seconds since 1970, in microseconds): floats in seconds lose digits here.
EPOCH_NOW = 1_754_000_000_654_321


def run(rate: GcraRate, now: int, count: int, tat: int | None = None) -> tuple[list[RateLimitDecision], int | None]:
    decisions = []
    for _ in range(count):
        decision, new_tat = gcra(now, tat, rate, consume=True)
        decisions.append(decision)
        tat = new_tat if new_tat is not None else tat
    return decisions, tat


class TestRate:
    def test_the_interval_is_the_period_shared_out_over_the_limit(self):
        rate = GcraRate.of(5, 60)

        assert rate.interval == 12 * MICROSECONDS
        assert rate.tolerance == 4 * 12 * MICROSECONDS

    def test_an_uneven_interval_is_rounded_to_a_whole_microsecond(self):
        assert GcraRate.of(3, 1).interval == 333_333
        assert GcraRate.of(7, 60).interval == 8_571_429

    @pytest.mark.parametrize(("limit", "period"), [(0, 60), (-3, 60), (1, 0), (1, -1)])
    def test_a_rate_that_admits_nothing_is_refused(self, limit: int, period: float):
        with pytest.raises(ValueError, match="rate limit"):
            GcraRate.of(limit, period)


class TestBurst:
    @pytest.mark.parametrize("now", [0, 12_345_678, EPOCH_NOW])
    @pytest.mark.parametrize(("limit", "period"), [(1, 1), (5, 60), (7, 60), (3, 1), (6, 1), (300, 60), (10, 3600)])
    def test_a_burst_at_one_instant_admits_exactly_the_limit(self, now: int, limit: int, period: float):
        decisions, _ = run(GcraRate.of(limit, period), now, limit + 3)

        assert [d.allowed for d in decisions] == [True] * limit + [False] * 3
        assert [d.remaining for d in decisions[:limit]] == list(range(limit - 1, -1, -1))

    def test_the_first_request_is_allowed_with_one_interval_to_refill(self):
        decision, tat = gcra(EPOCH_NOW, None, GcraRate.of(5, 60), consume=True)

        assert decision == RateLimitDecision(allowed=True, limit=5, remaining=4, retry_after=0.0, reset_after=12.0)
        assert tat == EPOCH_NOW + 12 * MICROSECONDS

    def test_a_denied_request_waits_one_interval_and_stores_nothing(self):
        rate = GcraRate.of(5, 60)
        _, tat = run(rate, EPOCH_NOW, 5)

        decision, new_tat = gcra(EPOCH_NOW, tat, rate, consume=True)

        assert decision == RateLimitDecision(allowed=False, limit=5, remaining=0, retry_after=12.0, reset_after=60.0)
        assert new_tat is None


class TestRefill:
    def test_one_request_is_regained_each_interval(self):
        rate = GcraRate.of(5, 60)
        _, tat = run(rate, EPOCH_NOW, 5)
        later = EPOCH_NOW + 12 * MICROSECONDS

        almost, _ = gcra(later - 1, tat, rate, consume=True)
        decisions, _ = run(rate, later, 2, tat)

        assert not almost.allowed
        assert almost.retry_after == pytest.approx(1 / MICROSECONDS)
        assert [d.allowed for d in decisions] == [True, False]
        assert decisions[0].remaining == 0

    def test_after_a_whole_period_the_full_burst_is_back(self):
        rate = GcraRate.of(5, 60)
        _, tat = run(rate, EPOCH_NOW, 5)

        decisions, _ = run(rate, EPOCH_NOW + 60 * MICROSECONDS, 6, tat)

        assert [d.allowed for d in decisions] == [True] * 5 + [False]

    def test_idle_time_does_not_bank_more_than_one_burst(self):
        rate = GcraRate.of(5, 60)
        _, tat = run(rate, EPOCH_NOW, 1)

        decisions, _ = run(rate, EPOCH_NOW + 3600 * MICROSECONDS, 6, tat)

        assert [d.allowed for d in decisions] == [True] * 5 + [False]

    def test_requests_spaced_one_interval_apart_never_eat_into_the_burst(self):
        rate = GcraRate.of(2, 1)
        tat: int | None = None
        for step in range(20):
            decision, tat = gcra(EPOCH_NOW + step * rate.interval, tat, rate, consume=True)
            assert decision.allowed
            assert decision.remaining == 1


class TestPeek:
    def test_peeking_reports_the_decision_but_stores_nothing(self):
        rate = GcraRate.of(3, 60)

        decision, tat = gcra(EPOCH_NOW, None, rate, consume=False)

        assert decision.allowed
        assert decision.remaining == 2
        assert tat is None

    def test_peeking_a_closed_bucket_says_when_it_opens(self):
        rate = GcraRate.of(3, 60)
        _, tat = run(rate, EPOCH_NOW, 3)

        decision, new_tat = gcra(EPOCH_NOW + 5 * MICROSECONDS, tat, rate, consume=False)

        assert not decision.allowed
        assert decision.retry_after == pytest.approx(15.0)
        assert new_tat is None


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TestMemoryLimiterWithAClock:
    async def test_it_follows_the_clock_it_is_given(self):
        clock = FakeClock()
        limiter = MemoryRateLimiter(clock)

        burst = [(await limiter.hit("k", 2, 60)).allowed for _ in range(3)]
        clock.now += 30
        refilled = [(await limiter.hit("k", 2, 60)).allowed for _ in range(2)]

        assert burst == [True, True, False]
        assert refilled == [True, False]

    async def test_expired_keys_are_pruned(self):
        clock = FakeClock()
        limiter = MemoryRateLimiter(clock)
        for index in range(limiter._PRUNE_EVERY - 1):
            await limiter.hit(f"k{index}", 1, 1)
        clock.now += 2

        await limiter.hit("last", 1, 1)

        assert list(limiter._tats) == ["last"]
