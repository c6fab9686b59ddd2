"""Poster and seek-preview sprite, taken from the frames the transcoder already decodes.

Collecting during the transcode pass costs a scale per picked frame instead of
a second decode of the whole source. The poster is the frame at 10 % of the
duration (past opening black and logos, still before any spoiler); the sprite
holds a small tile every ``interval`` seconds, indexed by a WebVTT file of
``#xywh=`` cues that players (hls.js plugins, video.js, Shaka) show on seek.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import av
from PIL import Image

from reelhouse.media.manifest import SpriteSheet

POSTER_FILENAME = "poster.jpg"
SPRITE_FILENAME = "sprite.jpg"
SPRITE_INDEX_FILENAME = "thumbnails.vtt"

POSTER_POSITION = 0.10
#: Posters are shown in catalog grids and behind the player: 1280 wide is plenty and keeps them small.
POSTER_MAX_WIDTH = 1280
TILE_WIDTH = 160
SPRITE_COLUMNS = 10
#: A tile every 2 s on short titles; longer titles space them so one sheet holds at most MAX_TILES.
MIN_TILE_INTERVAL = 2.0
MAX_TILES = 400
JPEG_QUALITY = 82


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def tile_interval(duration: float) -> float:
    """Seconds between sprite tiles for a title of this length."""
    return max(MIN_TILE_INTERVAL, math.ceil(duration / MAX_TILES))


class ArtworkCollector:
    """Fed every decoded video frame in order; keeps the poster frame and the sprite tiles."""

    def __init__(self, duration: float, display_width: int, display_height: int) -> None:
        self.duration = duration
        self.interval = tile_interval(duration)
        self.tile_count = max(1, math.ceil(duration / self.interval))
        self.tile_width = TILE_WIDTH
        self.tile_height = _even(TILE_WIDTH * display_height / display_width)
        self.poster_width = min(_even(display_width), POSTER_MAX_WIDTH)
        self.poster_height = _even(self.poster_width * display_height / display_width)
        self._poster_time = duration * POSTER_POSITION
        self._poster: Image.Image | None = None
        self._last_frame: av.VideoFrame | None = None
        self._tiles: list[Image.Image] = []

    def offer(self, frame: av.VideoFrame, time: float) -> None:
        """Look at a decoded frame shown at ``time`` seconds from the start."""
        self._last_frame = frame
        if self._poster is None and time >= self._poster_time:
            self._poster = self._image(frame, self.poster_width, self.poster_height)
        if len(self._tiles) < self.tile_count and time >= len(self._tiles) * self.interval:
            self._tiles.append(self._image(frame, self.tile_width, self.tile_height))

    @staticmethod
    def _image(frame: av.VideoFrame, width: int, height: int) -> Image.Image:
        rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
        image: Image.Image = rgb.to_image()  # type: ignore[no-untyped-call]  # PyAV leaves it unannotated
        return image

    def write(self, directory: Path, duration: float | None = None) -> tuple[str, SpriteSheet]:
        """Write the poster, the sprite and its WebVTT index; returns the poster's filename and the sheet.

        ``duration`` is the measured length of the output, when known, for the index's last cue.
        """
        if self._last_frame is None:
            raise ValueError("no frame was offered")
        # A source whose video ends before its stated duration still gets a poster and full-length tiles.
        poster = self._poster or self._image(self._last_frame, self.poster_width, self.poster_height)
        while len(self._tiles) < self.tile_count:
            self._tiles.append(self._image(self._last_frame, self.tile_width, self.tile_height))
        poster.save(directory / POSTER_FILENAME, "JPEG", quality=JPEG_QUALITY, optimize=True)

        columns = min(SPRITE_COLUMNS, len(self._tiles))
        rows = math.ceil(len(self._tiles) / columns)
        sheet = Image.new("RGB", (columns * self.tile_width, rows * self.tile_height))
        for index, tile in enumerate(self._tiles):
            row, column = divmod(index, columns)
            sheet.paste(tile, (column * self.tile_width, row * self.tile_height))
        sheet.save(directory / SPRITE_FILENAME, "JPEG", quality=JPEG_QUALITY, optimize=True)

        sprite = SpriteSheet(
            filename=SPRITE_FILENAME,
            index=SPRITE_INDEX_FILENAME,
            interval=self.interval,
            tile_width=self.tile_width,
            tile_height=self.tile_height,
            columns=columns,
            count=len(self._tiles),
        )
        (directory / SPRITE_INDEX_FILENAME).write_text(
            render_thumbnails_vtt(sprite, duration or self.duration, lambda filename: filename), encoding="utf-8"
        )
        return POSTER_FILENAME, sprite


def _timestamp(seconds: float) -> str:
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def render_thumbnails_vtt(sprite: SpriteSheet, duration: float, uri_for_sprite: Callable[[str], str]) -> str:
    """The WebVTT index of a sprite: one cue per tile, its time range and ``#xywh=`` rectangle in the sheet."""
    uri = uri_for_sprite(sprite.filename)
    lines = ["WEBVTT", ""]
    for index in range(sprite.count):
        start = index * sprite.interval
        end = min((index + 1) * sprite.interval, duration)
        if end <= start:
            break
        row, column = divmod(index, sprite.columns)
        x, y = column * sprite.tile_width, row * sprite.tile_height
        lines.append(f"{_timestamp(start)} --> {_timestamp(end)}")
        lines.append(f"{uri}#xywh={x},{y},{sprite.tile_width},{sprite.tile_height}")
        lines.append("")
    return "\n".join(lines)
