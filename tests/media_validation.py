"""An HLS checker for the media tests: the RFC 8216 rules our CMAF/fMP4 playlists must keep.

Parsing is the ``m3u8`` package's (strict mode); the rules are checked here,
each failure named, all failures reported at once. ``validate_hls_directory``
also checks a master playlist against the files on disk: the bandwidths must be
what the segment sizes and EXTINF durations give, the resolution what the init
segment holds.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import av
import m3u8

MIN_VERSION = 6  # EXT-X-MAP in a playlist that is not I-frames-only needs version 6 (RFC 8216 7)


class PlaylistError(AssertionError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _count_tag(text: str, tag: str) -> int:
    return sum(1 for line in text.splitlines() if line == tag or line.startswith(tag + ":"))


def _common_problems(text: str, playlist: m3u8.M3U8) -> list[str]:
    problems = []
    if text.splitlines()[:1] != ["#EXTM3U"]:
        problems.append("the first line is not #EXTM3U")
    if _count_tag(text, "#EXT-X-VERSION") != 1:
        problems.append("EXT-X-VERSION must appear exactly once")
    elif playlist.version is None or int(playlist.version) < MIN_VERSION:
        problems.append(f"EXT-X-VERSION {playlist.version} is below {MIN_VERSION}")
    return problems


def _segment_problems(playlist: m3u8.M3U8) -> list[str]:
    problems = []
    for segment in playlist.segments:
        if segment.init_section is None or not segment.init_section.uri:
            problems.append(f"{segment.uri} has no EXT-X-MAP")
        if segment.duration is None or segment.duration <= 0:
            problems.append(f"{segment.uri} has no positive EXTINF")
        elif playlist.target_duration is not None and segment.duration > playlist.target_duration:
            problems.append(f"{segment.uri} lasts {segment.duration} s, over the target duration")
    if playlist.segments and playlist.target_duration is not None:
        longest = max(segment.duration or 0 for segment in playlist.segments)
        if playlist.target_duration != math.ceil(longest):
            problems.append(f"EXT-X-TARGETDURATION {playlist.target_duration} is not the longest EXTINF rounded up")
    return problems


def validate_media_playlist(text: str) -> m3u8.M3U8:
    """Parse a VOD fMP4 media playlist; raises ``PlaylistError`` listing every broken rule."""
    try:
        playlist = m3u8.M3U8(text, strict=True)
    except Exception as error:
        raise PlaylistError([f"not parseable: {error}"]) from error
    problems = _common_problems(text, playlist)
    if playlist.is_variant:
        problems.append("a master playlist where a media playlist was expected")
    if _count_tag(text, "#EXT-X-TARGETDURATION") != 1 or playlist.target_duration is None:
        problems.append("EXT-X-TARGETDURATION must appear exactly once")
    if (playlist.playlist_type or "").upper() != "VOD":
        problems.append("EXT-X-PLAYLIST-TYPE is not VOD")
    if not playlist.is_endlist or text.rstrip().splitlines()[-1] != "#EXT-X-ENDLIST":
        problems.append("EXT-X-ENDLIST is not the last line")
    if not playlist.segments:
        problems.append("no segments")
    if _count_tag(text, "#EXT-X-MAP") == 0 or text.index("#EXT-X-MAP") > text.find("#EXTINF"):
        problems.append("EXT-X-MAP must come before the first segment")
    problems.extend(_segment_problems(playlist))
    if problems:
        raise PlaylistError(problems)
    return playlist


def validate_master_playlist(text: str, load_media: Callable[[str], str]) -> m3u8.M3U8:
    """Parse a master playlist and each media playlist it lists (``load_media(uri)`` returns its text)."""
    try:
        master = m3u8.M3U8(text, strict=True)
    except Exception as error:
        raise PlaylistError([f"not parseable: {error}"]) from error
    problems = _common_problems(text, master)
    if not master.is_variant or not master.playlists:
        problems.append("no EXT-X-STREAM-INF variants")
    if _count_tag(text, "#EXT-X-INDEPENDENT-SEGMENTS") != 1:
        problems.append("EXT-X-INDEPENDENT-SEGMENTS is missing")
    for variant in master.playlists:
        info = variant.stream_info
        name = variant.uri
        for attribute, value in (
            ("BANDWIDTH", info.bandwidth),
            ("AVERAGE-BANDWIDTH", info.average_bandwidth),
            ("CODECS", info.codecs),
            ("RESOLUTION", info.resolution),
            ("FRAME-RATE", info.frame_rate),
        ):
            if not value:
                problems.append(f"{name} has no {attribute}")
        if info.bandwidth and info.average_bandwidth and info.average_bandwidth > info.bandwidth:
            problems.append(f"{name}: AVERAGE-BANDWIDTH above BANDWIDTH")
        try:
            validate_media_playlist(load_media(variant.uri))
        except PlaylistError as error:
            problems.extend(f"{name}: {problem}" for problem in error.problems)
    if problems:
        raise PlaylistError(problems)
    return master


def _coded_size(init_segment: Path) -> tuple[int, int]:
    with av.open(io.BytesIO(init_segment.read_bytes()), "r", format="mp4") as container:
        video = container.streams.video[0]
        return video.codec_context.width, video.codec_context.height


def validate_hls_directory(master_path: Path) -> m3u8.M3U8:
    """Validate a master playlist on disk, its media playlists, and their attributes against the files."""
    base = master_path.parent
    master = validate_master_playlist(master_path.read_text(), lambda uri: (base / uri).read_text())
    problems = []
    for variant in master.playlists:
        media_path = base / variant.uri
        media = m3u8.M3U8(media_path.read_text(), strict=True)
        sizes = [(media_path.parent / segment.uri).stat().st_size for segment in media.segments]
        durations = [segment.duration for segment in media.segments]
        peak = max(math.ceil(size * 8 / duration) for size, duration in zip(sizes, durations, strict=True))
        average = math.ceil(sum(sizes) * 8 / sum(durations))
        info = variant.stream_info
        # EXTINF is printed to the microsecond, so recomputed rates may differ in the last digits.
        if not math.isclose(info.bandwidth, peak, rel_tol=1e-5):
            problems.append(f"{variant.uri}: BANDWIDTH {info.bandwidth}, the segments give {peak}")
        if not math.isclose(info.average_bandwidth, average, rel_tol=1e-5):
            problems.append(f"{variant.uri}: AVERAGE-BANDWIDTH {info.average_bandwidth}, the segments give {average}")
        init_path = media_path.parent / media.segments[0].init_section.uri
        if tuple(info.resolution) != _coded_size(init_path):
            problems.append(
                f"{variant.uri}: RESOLUTION {info.resolution}, the init segment holds {_coded_size(init_path)}"
            )
    if problems:
        raise PlaylistError(problems)
    return master
