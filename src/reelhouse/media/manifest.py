"""The typed description of processed media, stored as ``manifest.json`` beside the files it names.

Playlists are rendered from it per playback session (their URIs are signed per
session), so it holds everything the renderers need: measured durations, sizes
and bandwidths, never values guessed from settings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import msgspec

from reelhouse.plans.resolutions import Resolution

MANIFEST_FILENAME = "manifest.json"
#: Playlists written beside the files with relative URIs, for local tools (ffmpeg, a file server, the tests).
MASTER_PLAYLIST_FILENAME = "master.m3u8"
MEDIA_PLAYLIST_FILENAME = "index.m3u8"
#: Bumped when the layout changes, so old outputs can be told apart and reprocessed.
MANIFEST_VERSION = 1


class Segment(msgspec.Struct, frozen=True):
    #: Relative to the rendition's directory.
    filename: str
    #: Seconds, measured from the segment's own video samples.
    duration: float
    #: Bytes on disk.
    size: int


class Rendition(msgspec.Struct, frozen=True):
    resolution: Resolution
    width: int
    height: int
    #: Peak bits/s over the segments (RFC 8216 BANDWIDTH).
    bandwidth: int
    #: Bits/s over the whole rendition (AVERAGE-BANDWIDTH).
    average_bandwidth: int
    #: RFC 6381 codecs, e.g. ``avc1.64001f,mp4a.40.2``.
    codecs: str
    frame_rate: float
    #: Directory of this rendition's files, relative to the media directory.
    directory: str
    #: The fMP4 initialization segment (EXT-X-MAP), relative to ``directory``.
    init: str
    segments: tuple[Segment, ...]

    @property
    def duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


class SpriteSheet(msgspec.Struct, frozen=True):
    """Seek-preview thumbnails: tiles in rows of ``columns``, one every ``interval`` seconds."""

    filename: str
    #: The WebVTT index (``#xywh=`` cues) written beside the sprite with a relative URI.
    index: str
    interval: float
    tile_width: int
    tile_height: int
    columns: int
    count: int


#: Segments per key: with 4 s segments a key covers about 12 s of video.
DEFAULT_KEY_PERIOD = 3


class Encryption(msgspec.Struct, frozen=True):
    """How a media's segments are encrypted (see ``reelhouse.media.encryption``)."""

    method: Literal["AES-128"] = "AES-128"
    #: The key changes every this many segments of a rendition.
    key_period: int = DEFAULT_KEY_PERIOD

    def period_of(self, segment_index: int) -> int:
        return segment_index // self.key_period

    def periods(self, segment_count: int) -> int:
        return math.ceil(segment_count / self.key_period)


class MediaManifest(msgspec.Struct, frozen=True):
    #: Seconds of video, as measured from the segments.
    duration: float
    #: Lowest first.
    renditions: tuple[Rendition, ...]
    poster: str
    sprite: SpriteSheet
    version: int = MANIFEST_VERSION
    #: Full-segment AES-128 when the segments are encrypted; ``None``: in the clear.
    encryption: Encryption | None = None

    def rendition(self, resolution: Resolution) -> Rendition | None:
        return next((rendition for rendition in self.renditions if rendition.resolution == resolution), None)

    def renditions_up_to(self, cap: Resolution) -> tuple[Rendition, ...]:
        """The renditions a plan capped at ``cap`` may play."""
        return tuple(rendition for rendition in self.renditions if rendition.resolution.rank <= cap.rank)


def write_manifest(manifest: MediaManifest, directory: Path) -> Path:
    path = directory / MANIFEST_FILENAME
    path.write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
    return path


def read_manifest(directory: Path) -> MediaManifest:
    return decode_manifest((directory / MANIFEST_FILENAME).read_bytes())


def decode_manifest(data: bytes) -> MediaManifest:
    """A manifest read from wherever it is stored (a file, an object store)."""
    return msgspec.json.decode(data, type=MediaManifest)
