"""HLS (RFC 8216) for CMAF/fMP4 renditions: measure what was produced, render playlists from the manifest.

Everything a playlist states is measured from the files: each segment's
duration from its own video samples, its size from disk, BANDWIDTH as the peak
segment bit rate and AVERAGE-BANDWIDTH over the whole rendition (RFC 8216
4.3.4.2), CODECS from the encoded parameter sets. The renderers are pure: URIs
come from callbacks because the API signs them per playback session.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Collection
from fractions import Fraction
from pathlib import Path

import av
import msgspec

from reelhouse.media.ladder import Rung
from reelhouse.media.manifest import MediaManifest, Rendition, Segment
from reelhouse.plans.resolutions import Resolution

HLS_VERSION = 7  # fMP4 segments (EXT-X-MAP without I-frames-only) need at least 6
INIT_FILENAME = "init.mp4"
#: printf-style, as FFmpeg's segmenter names them: seg_00000.m4s, seg_00001.m4s, ...
SEGMENT_FILENAME_PATTERN = "seg_%05d.m4s"
SEGMENT_GLOB = "seg_*.m4s"

_NAL_TYPE_SPS = 7


class SegmentKey(msgspec.Struct, frozen=True):
    """The AES-128 key of a key period, as a media playlist announces it (EXT-X-KEY)."""

    uri: str
    #: 16 bytes; without it the segment's media sequence number is the IV (RFC 8216 5.2).
    iv: bytes | None = None


def avc1_codec_string(avc_configuration: bytes) -> str:
    """RFC 6381 ``avc1.PPCCLL`` from an avcC record, read from its first SPS (profile, constraints, level)."""
    if len(avc_configuration) < 8 or avc_configuration[0] != 1:
        raise ValueError("not an AVCDecoderConfigurationRecord")
    if avc_configuration[5] & 0x1F == 0:
        raise ValueError("the avcC record holds no SPS")
    sps_length = int.from_bytes(avc_configuration[6:8], "big")
    sps = avc_configuration[8 : 8 + sps_length]
    if len(sps) < 4 or sps[0] & 0x1F != _NAL_TYPE_SPS:
        raise ValueError("the avcC record's SPS is truncated")
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"


def mp4a_codec_string(audio_specific_config: bytes) -> str:
    """RFC 6381 ``mp4a.40.N`` from an MPEG-4 AudioSpecificConfig (N is the audio object type: 2 for AAC-LC)."""
    if len(audio_specific_config) < 2:
        raise ValueError("the AudioSpecificConfig is truncated")
    object_type = audio_specific_config[0] >> 3
    if object_type == 31:  # escape: the type continues in the next six bits
        object_type = 32 + (((audio_specific_config[0] & 0x07) << 3) | (audio_specific_config[1] >> 5))
    return f"mp4a.40.{object_type}"


def _codecs_of_init_segment(init_segment: bytes) -> str:
    with av.open(io.BytesIO(init_segment), "r", format="mp4") as container:
        codecs: list[str] = []
        for video in container.streams.video:
            codecs.append(avc1_codec_string(video.codec_context.extradata or b""))
        for audio in container.streams.audio:
            codecs.append(mp4a_codec_string(audio.codec_context.extradata or b""))
        return ",".join(codecs)


def _video_duration(init_segment: bytes, media_segment: bytes) -> tuple[Fraction, int]:
    """Seconds and frames of a segment's video: the sum of its samples' durations, as a player times them."""
    with av.open(io.BytesIO(init_segment + media_segment), "r", format="mp4") as container:
        video = container.streams.video[0]
        time_base = video.time_base or Fraction(1)
        ticks = 0
        frames = 0
        for packet in container.demux(video):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            ticks += packet.duration or 0
            frames += 1
        return ticks * time_base, frames


def _bits_per_second(size: int, duration: Fraction) -> int:
    # Rounded up: a player that trusts the figure must never get more than it was told.
    return math.ceil(size * 8 / duration) if duration > 0 else 0


def measure_rendition(media_directory: Path, rung: Rung) -> Rendition:
    """Measure a packaged rendition in ``media_directory / rung.resolution`` (its init and segments)."""
    directory = media_directory / rung.resolution.value
    init_segment = (directory / INIT_FILENAME).read_bytes()
    segment_paths = sorted(directory.glob(SEGMENT_GLOB))
    if not segment_paths:
        raise ValueError(f"{directory} has no segments")
    segments: list[Segment] = []
    durations: list[Fraction] = []
    frames = 0
    for path in segment_paths:
        data = path.read_bytes()
        duration, segment_frames = _video_duration(init_segment, data)
        frames += segment_frames
        durations.append(duration)
        segments.append(Segment(filename=path.name, duration=round(float(duration), 6), size=len(data)))
    total_duration = sum(durations, Fraction(0))
    return Rendition(
        resolution=rung.resolution,
        width=rung.width,
        height=rung.height,
        bandwidth=max(_bits_per_second(s.size, d) for s, d in zip(segments, durations, strict=True)),
        average_bandwidth=_bits_per_second(sum(s.size for s in segments), total_duration),
        codecs=_codecs_of_init_segment(init_segment),
        frame_rate=round(float(frames / total_duration), 3) if total_duration else 0.0,
        directory=rung.resolution.value,
        init=INIT_FILENAME,
        segments=tuple(segments),
    )


def _seconds(value: float) -> str:
    """Decimal seconds with microsecond precision and at least three decimals (``4.000``, ``3.041667``)."""
    text = f"{value:.6f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(3, '0')}"


def _quoted(uri: str) -> str:
    # A quoted-string may hold neither a double quote nor a line break (RFC 8216 4.2): refuse, never escape.
    if any(character in uri for character in '"\r\n'):
        raise ValueError(f"a playlist URI cannot contain quotes or line breaks: {uri!r}")
    return f'"{uri}"'


def _uri_line(uri: str) -> str:
    if not uri or uri.startswith("#") or any(character in uri for character in "\r\n"):
        raise ValueError(f"not a playlist URI line: {uri!r}")
    return uri


def target_duration(rendition: Rendition) -> int:
    """EXT-X-TARGETDURATION: the longest segment, rounded up to whole seconds."""
    return math.ceil(max(segment.duration for segment in rendition.segments))


def render_master(
    manifest: MediaManifest,
    renditions_allowed: Collection[Resolution],
    uri_for_rendition: Callable[[Rendition], str],
) -> str:
    """The master playlist listing the manifest's renditions that are in ``renditions_allowed``, lowest first.

    Raises ``ValueError`` when none is: a master playlist without a variant plays nothing.
    """
    variants = [rendition for rendition in manifest.renditions if rendition.resolution in renditions_allowed]
    if not variants:
        raise ValueError("none of the allowed resolutions has a rendition")
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rendition in sorted(variants, key=lambda variant: variant.bandwidth):
        attributes = (
            f"BANDWIDTH={rendition.bandwidth}",
            f"AVERAGE-BANDWIDTH={rendition.average_bandwidth}",
            f"CODECS={_quoted(rendition.codecs)}",
            f"RESOLUTION={rendition.width}x{rendition.height}",
            f"FRAME-RATE={rendition.frame_rate:.3f}",
        )
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
        lines.append(_uri_line(uri_for_rendition(rendition)))
    return "\n".join(lines) + "\n"


def _key_line(key: SegmentKey | None) -> str:
    if key is None:
        return "#EXT-X-KEY:METHOD=NONE"
    line = f"#EXT-X-KEY:METHOD=AES-128,URI={_quoted(key.uri)}"
    if key.iv is not None:
        if len(key.iv) != 16:
            raise ValueError("an AES-128 IV is 16 bytes")
        line += f",IV=0x{key.iv.hex().upper()}"
    return line


def render_media(
    rendition: Rendition,
    uri_for_segment: Callable[[str], str],
    uri_for_init: Callable[[str], str],
    key_for_segment: Callable[[int], SegmentKey | None] | None = None,
) -> str:
    """The VOD media playlist of one rendition, with the measured EXTINF of every segment.

    ``key_for_segment(index)`` names the key of each segment when the segments are encrypted: an
    EXT-X-KEY line is written wherever the key changes (a new key period). The EXT-X-MAP comes before
    any key, so the initialization segment stays in the clear (RFC 8216 4.3.2.5).
    """
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration(rendition)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f"#EXT-X-MAP:URI={_quoted(uri_for_init(rendition.init))}",
    ]
    current_key: SegmentKey | None = None
    for index, segment in enumerate(rendition.segments):
        if key_for_segment is not None:
            key = key_for_segment(index)
            if key != current_key:
                lines.append(_key_line(key))
                current_key = key
        lines.append(f"#EXTINF:{_seconds(segment.duration)},")
        lines.append(_uri_line(uri_for_segment(segment.filename)))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
