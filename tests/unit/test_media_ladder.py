"""The ABR ladder: rungs at or below the source, plan labels, even sizes, aspect kept."""

from __future__ import annotations

import pytest

from reelhouse.media.ladder import ladder_for
from reelhouse.plans.resolutions import Resolution


def _sizes(width: int, height: int) -> list[tuple[Resolution, int, int]]:
    return [(rung.resolution, rung.width, rung.height) for rung in ladder_for(width, height)]


class TestLadderChoice:
    def test_720p_source_gets_480p_and_720p(self) -> None:
        assert _sizes(1280, 720) == [(Resolution.SD_480P, 854, 480), (Resolution.HD_720P, 1280, 720)]

    def test_1080p_source_stops_at_1080p(self) -> None:
        assert [label for label, _, _ in _sizes(1920, 1080)] == ["480p", "720p", "1080p"]

    def test_uhd_source_gets_every_rung_up_to_4k(self) -> None:
        assert _sizes(3840, 2160)[-1] == (Resolution.UHD_4K, 3840, 2160)
        assert len(_sizes(3840, 2160)) == 4

    def test_source_below_480_lines_gets_one_480p_rung_at_its_own_size(self) -> None:
        assert _sizes(640, 360) == [(Resolution.SD_480P, 640, 360)]

    def test_odd_small_source_is_rounded_down_to_even_never_up(self) -> None:
        assert _sizes(321, 241) == [(Resolution.SD_480P, 320, 240)]

    def test_scope_source_is_labelled_by_its_width(self) -> None:
        # 1920x800 fills the 1080p box's width: it is a 1080p title even with fewer lines.
        assert _sizes(1920, 800) == [
            (Resolution.SD_480P, 854, 356),
            (Resolution.HD_720P, 1280, 534),
            (Resolution.FHD_1080P, 1920, 800),
        ]

    def test_portrait_source_turns_the_boxes(self) -> None:
        assert _sizes(1080, 1920) == [
            (Resolution.SD_480P, 480, 854),
            (Resolution.HD_720P, 720, 1280),
            (Resolution.FHD_1080P, 1080, 1920),
        ]

    def test_slightly_smaller_than_720p_stays_480p_only(self) -> None:
        assert [label for label, _, _ in _sizes(1270, 714)] == ["480p"]

    @pytest.mark.parametrize(
        ("width", "height"),
        [(1280, 720), (1920, 1080), (1440, 1080), (720, 576), (2048, 858), (3840, 1600), (1000, 1000), (853, 480)],
    )
    def test_rungs_are_even_never_upscaled_and_keep_the_aspect(self, width: int, height: int) -> None:
        for rung in ladder_for(width, height):
            assert rung.width % 2 == 0
            assert rung.height % 2 == 0
            assert rung.width <= width
            assert rung.height <= height
            assert rung.width / rung.height == pytest.approx(width / height, rel=0.01)

    def test_caps_grow_with_the_resolution(self) -> None:
        rungs = ladder_for(3840, 2160)
        caps = [rung.max_video_bitrate for rung in rungs]
        assert caps == sorted(caps)
        assert len(set(caps)) == len(caps)
        assert all(rung.video_buffer_size == 2 * rung.max_video_bitrate for rung in rungs)

    @pytest.mark.parametrize(("width", "height"), [(0, 720), (1280, 0), (-2, 4)])
    def test_a_size_without_pixels_is_refused(self, width: int, height: int) -> None:
        with pytest.raises(ValueError, match="positive size"):
            ladder_for(width, height)
