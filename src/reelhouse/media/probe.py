"""What a source file is: a cheap sniff for the upload path and a full probe before transcoding.

The probe trusts FFmpeg's demuxers only for real video containers: FFmpeg also
"opens" text files (as ANSI art), still images and playlists, none of which a
title should ever be made from.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.stream
import msgspec

from reelhouse.media.errors import UnsupportedMedia

#: How many leading bytes ``looks_like_video`` wants (three MPEG-TS packets); fewer still work for most containers.
SNIFF_BYTES = 3 * 188

#: FFmpeg demuxers of video containers (a demuxer name may list several, e.g. ``mov,mp4,m4a,3gp,3g2,mj2``).
_VIDEO_DEMUXERS = frozenset({"mov", "mp4", "matroska", "webm", "mpegts", "avi", "flv", "mpeg", "asf", "mxf"})

# ISO BMFF brands that are still images or audio-only, not video.
_NON_VIDEO_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1", b"M4A ", b"M4B ", b"M4P "})
# Top-level QuickTime atoms that old .mov files start with instead of ftyp.
_QUICKTIME_LEADING_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_TS_SYNC = 0x47


class SourceMedia(msgspec.Struct, frozen=True):
    """A probed source: everything the ladder and the transcoder need to know up front."""

    container: str
    #: Seconds, as the container (or the video stream) states it.
    duration: float
    #: Seconds of video, when the video stream states its own length (a truncated file still claims it).
    video_duration: float | None
    #: Coded size of the video.
    width: int
    height: int
    #: Size as shown: after the sample aspect ratio (anamorphic sources are wider than coded) and the rotation.
    display_width: int
    display_height: int
    #: Degrees counter-clockwise that players turn the picture (0, 90, 180 or 270), from the display matrix
    #: phones write instead of turning the pixels.
    rotation: int
    #: Average frames per second; 0.0 when the container does not say (the transcoder then keeps timestamps).
    frame_rate: float
    video_codec: str
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None


def _is_mpeg_ts(head: bytes, packet_size: int, offset: int) -> bool:
    # Two sync bytes a packet apart, three when the sniff holds that many: one 0x47 is too common by chance.
    positions = [offset + packet_size * index for index in range(3) if offset + packet_size * index < len(head)]
    return len(positions) >= 2 and all(head[position] == _TS_SYNC for position in positions)


def looks_like_video(first_bytes: bytes) -> bool:
    """Whether a file's first bytes are the magic of a video container (MP4/MOV, Matroska/WebM, MPEG-TS/PS,
    AVI, FLV, ASF, MXF). Cheap enough for every upload's first chunk; ``probe`` is the real check."""
    head = first_bytes[:SNIFF_BYTES]
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return head[8:12] not in _NON_VIDEO_BRANDS
    checks = (
        len(head) >= 8 and head[4:8] in _QUICKTIME_LEADING_ATOMS,
        head.startswith(b"\x1a\x45\xdf\xa3"),  # EBML: Matroska, WebM
        head.startswith(b"RIFF") and head[8:12] == b"AVI ",
        head.startswith(b"\x00\x00\x01\xba"),  # MPEG program stream pack header
        head.startswith(b"FLV\x01"),
        head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF/WMV header object GUID
        head.startswith(b"\x06\x0e\x2b\x34"),  # SMPTE universal label: MXF
        _is_mpeg_ts(head, 188, 0),
        _is_mpeg_ts(head, 192, 4),  # M2TS: a 4-byte timestamp before each packet
    )
    return any(checks)


def main_video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The video a title is made from: the first video stream that is not cover art."""
    # Cover art in an audio file is a video stream too; it is not a video.
    return next(
        (stream for stream in container.streams.video if not stream.disposition & av.stream.Disposition.attached_pic),
        None,
    )


def main_audio_stream(container: av.container.InputContainer) -> av.AudioStream | None:
    """The audio every rendition carries: the stream marked default, else the first."""
    streams = container.streams.audio
    return next((stream for stream in streams if stream.disposition & av.stream.Disposition.default), None) or (
        streams[0] if streams else None
    )


def _stream_seconds(stream: av.stream.Stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return None


def _duration_seconds(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return _stream_seconds(stream)


def probe(path: Path) -> SourceMedia:
    """Describe a source file; raises ``UnsupportedMedia`` unless it is a container of decodable video.

    A missing file raises ``FileNotFoundError``: that is the caller's mistake, not the upload's.
    """
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as error:
        raise UnsupportedMedia(f"{path.name} is not a media file FFmpeg can read ({error.strerror})") from error
    with container:
        demuxers = set(container.format.name.split(","))
        if not demuxers & _VIDEO_DEMUXERS:
            raise UnsupportedMedia(f"{path.name} is {container.format.long_name}, not a video container")
        video = main_video_stream(container)
        if video is None:
            raise UnsupportedMedia(f"{path.name} has no video stream")
        duration = _duration_seconds(container, video)
        if duration is None:
            raise UnsupportedMedia(f"{path.name} does not say how long it is")
        try:
            first_frame = next(container.decode(video), None)
        except av.FFmpegError as error:
            raise UnsupportedMedia(f"the video of {path.name} cannot be decoded ({error.strerror})") from error
        if first_frame is None:
            raise UnsupportedMedia(f"the video of {path.name} has no frames")
        width, height = first_frame.width, first_frame.height
        aspect = video.sample_aspect_ratio or Fraction(1)
        display_width, display_height = (round(width * aspect) if aspect > 0 else width), height
        rotation = round(first_frame.rotation / 90) * 90 % 360
        if rotation in {90, 270}:
            display_width, display_height = display_height, display_width
        rate = video.average_rate or video.guessed_rate or video.base_rate
        audio = main_audio_stream(container)
        return SourceMedia(
            container=container.format.name,
            duration=duration,
            video_duration=_stream_seconds(video),
            width=width,
            height=height,
            display_width=display_width,
            display_height=display_height,
            rotation=rotation,
            frame_rate=float(rate) if rate else 0.0,
            video_codec=video.codec_context.name,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio else None,
            audio_sample_rate=audio.sample_rate if audio else None,
            audio_channels=audio.channels if audio else None,
        )
