"""The resume rules, as the pure function every progress report goes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reelhouse.config import PlaybackSettings
from reelhouse.playback.history import ProgressState, ResumeRules, apply_progress
from reelhouse.playback.models import WatchStatus

RULES = ResumeRules()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FILM = 6000  # 100 minutes


def watch(
    *positions: float,
    duration: int = FILM,
    credits: int | None = None,
    rules: ResumeRules = RULES,
    playing: bool = False,
) -> ProgressState:
    """Report each position in turn, a minute apart; the state after the last one."""
    state: ProgressState | None = None
    for minute, position in enumerate(positions):
        state = apply_progress(
            state,
            position,
            duration_seconds=duration,
            credits_start_seconds=credits,
            rules=rules,
            now=T0 + timedelta(minutes=minute),
            playing=playing,
        )
    assert state is not None
    return state


class TestResumePoint:
    def test_below_five_percent_there_is_no_resume_point(self):
        state = watch(299)  # 4.98 %

        assert state.resume_position_seconds == 0
        assert state.status == WatchStatus.STARTED

    def test_from_five_percent_playback_resumes_where_it_stopped(self):
        assert watch(300).resume_position_seconds == 300
        assert watch(2500.9).resume_position_seconds == 2500

    def test_titles_shorter_than_five_minutes_never_resume(self):
        state = watch(150, duration=299)

        assert state.resume_position_seconds == 0
        assert state.progress_percent == pytest.approx(50.2)
        assert watch(150, duration=300).resume_position_seconds == 150

    def test_the_thresholds_come_from_the_settings(self):
        rules = ResumeRules.from_settings(
            PlaybackSettings(resume_min_percent=20.0, completion_percent=80.0, resume_min_duration_seconds=60)
        )

        assert watch(600, rules=rules).resume_position_seconds == 0  # 10 % < 20 %
        assert watch(4800, rules=rules).status == WatchStatus.COMPLETED  # 80 %
        assert watch(50, duration=100, rules=rules).resume_position_seconds == 50

    def test_inconsistent_thresholds_are_refused(self):
        with pytest.raises(ValueError, match="COMPLETION_PERCENT"):
            ResumeRules(resume_min_percent=50, completion_percent=40)


class TestCompletion:
    def test_ninety_percent_completes_the_title(self):
        state = watch(5399)
        assert state.status == WatchStatus.STARTED
        assert state.completed_at is None

        state = watch(5400)
        assert state.status == WatchStatus.COMPLETED
        assert state.completed_at == T0
        assert state.play_count == 1
        assert state.resume_position_seconds == 0

    def test_reaching_the_credits_completes_the_title_before_ninety_percent(self):
        state = watch(4000, duration=FILM, credits=4000)

        assert state.status == WatchStatus.COMPLETED
        assert state.progress_percent == pytest.approx(66.7)
        assert watch(3999, credits=4000).status != WatchStatus.COMPLETED

    def test_positions_are_clamped_to_the_title(self):
        assert watch(-30).watched_seconds == 0
        past_end = watch(10**6)
        assert (past_end.watched_seconds, past_end.progress_percent) == (FILM, 100.0)
        assert watch(float("nan")).watched_seconds == 0


class TestViewingsAndStatus:
    def test_first_report_starts_and_a_later_stop_pauses(self):
        assert watch(600).status == WatchStatus.STARTED
        assert watch(600, 900).status == WatchStatus.PAUSED
        assert watch(600, 900, playing=True).status == WatchStatus.STARTED

    def test_replaying_a_completed_title_and_stopping_early_keeps_it_completed(self):
        finished = watch(5900)
        replayed = watch(5900, 1200)

        assert replayed.status == WatchStatus.COMPLETED
        assert replayed.completed_at == finished.completed_at
        assert replayed.play_count == finished.play_count == 1
        assert (replayed.watched_seconds, replayed.resume_position_seconds) == (1200, 1200)

    def test_positions_inside_the_credits_of_the_same_viewing_count_once(self):
        state = watch(5400, 5600, 5999, 6000)

        assert state.play_count == 1
        assert state.completed_at == T0

    def test_each_replay_watched_to_the_end_counts_again(self):
        state = watch(5900, 100, 3000, 5900)

        assert state.play_count == 2
        assert state.completed_at == T0 + timedelta(minutes=3)

        assert watch(5900, 100, 5900, 50, 5950).play_count == 3

    def test_an_unfinished_viewing_has_not_been_played_through(self):
        state = watch(600, 3000)

        assert (state.play_count, state.completed_at) == (0, None)
