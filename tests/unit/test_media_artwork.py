"""Poster choice, sprite layout and the WebVTT seek index."""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image

from reelhouse.media.artwork import ArtworkCollector, render_thumbnails_vtt, tile_interval
from reelhouse.media.manifest import SpriteSheet


def _solid(color: tuple[int, int, int], width: int = 320, height: int = 180) -> av.VideoFrame:
    return av.VideoFrame.from_image(Image.new("RGB", (width, height), color)).reformat(format="yuv420p")


class TestThumbnailsIndex:
    SHEET = SpriteSheet(
        "sprite.jpg", "thumbnails.vtt", interval=2.0, tile_width=160, tile_height=90, columns=3, count=4
    )

    def test_one_cue_per_tile_with_its_rectangle(self) -> None:
        vtt = render_thumbnails_vtt(self.SHEET, duration=7.5, uri_for_sprite=lambda name: f"/signed/{name}?t=1")
        assert vtt == (
            "WEBVTT\n\n"
            "00:00:00.000 --> 00:00:02.000\n/signed/sprite.jpg?t=1#xywh=0,0,160,90\n\n"
            "00:00:02.000 --> 00:00:04.000\n/signed/sprite.jpg?t=1#xywh=160,0,160,90\n\n"
            "00:00:04.000 --> 00:00:06.000\n/signed/sprite.jpg?t=1#xywh=320,0,160,90\n\n"
            "00:00:06.000 --> 00:00:07.500\n/signed/sprite.jpg?t=1#xywh=0,90,160,90\n"
        )

    def test_hours_are_written_out(self) -> None:
        sheet = SpriteSheet("s.jpg", "t.vtt", interval=3600.0, tile_width=160, tile_height=90, columns=10, count=2)
        assert "01:00:00.000 --> 01:30:00.000" in render_thumbnails_vtt(sheet, 5400.0, str)


class TestTileInterval:
    def test_short_titles_get_a_tile_every_two_seconds(self) -> None:
        assert tile_interval(10) == 2.0
        assert tile_interval(600) == 2.0

    def test_long_titles_space_tiles_to_keep_one_sheet_small(self) -> None:
        assert tile_interval(2 * 3600) == 18
        assert 2 * 3600 / tile_interval(2 * 3600) <= 400


class TestCollector:
    def test_poster_is_the_frame_at_a_tenth_of_the_duration(self, tmp_path: Path) -> None:
        collector = ArtworkCollector(duration=10.0, display_width=320, display_height=180)
        for step in range(40):  # 4 fps: red until 1 s, then green
            collector.offer(_solid((220, 0, 0) if step < 4 else (0, 220, 0)), step / 4)
        poster_name, sprite = collector.write(tmp_path)
        with Image.open(tmp_path / poster_name) as poster:
            red, green, _ = poster.convert("RGB").getpixel((160, 90))
            assert green > 180
            assert red < 60
            assert poster.size == (320, 180)
        assert sprite.count == 5
        with Image.open(tmp_path / sprite.filename) as sheet:
            assert sheet.size == (5 * 160, 90)
            first_tile = sheet.convert("RGB").getpixel((80, 45))
            assert first_tile[0] > 180, "the first tile is the first (red) frame"
        assert (tmp_path / sprite.index).read_text().count("#xywh=") == 5

    def test_video_shorter_than_its_stated_duration_still_gets_every_tile(self, tmp_path: Path) -> None:
        collector = ArtworkCollector(duration=10.0, display_width=320, display_height=180)
        collector.offer(_solid((0, 0, 220)), 0.0)  # the stream stops after one frame
        poster_name, sprite = collector.write(tmp_path)
        assert (tmp_path / poster_name).stat().st_size > 0
        assert sprite.count == 5

    def test_tiles_and_poster_keep_the_display_aspect(self) -> None:
        collector = ArtworkCollector(duration=10.0, display_width=1920, display_height=800)
        assert (collector.tile_width, collector.tile_height) == (160, 66)
        assert (collector.poster_width, collector.poster_height) == (1280, 534)
