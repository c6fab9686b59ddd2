"""The ABR ladder: which renditions a source gets, at what size and bitrate.

A rung is named by the plans' resolution values so that a plan's cap and a
rendition compare directly. Each rung fits its source inside a landscape box
(854x480, 1280x720, 1920x1080, 3840x2160; the box turns for portrait sources),
keeps the source's display aspect and is never larger than the source. A source
smaller than the 480p box still gets one rung, at its own size, labelled
``480p`` (the lowest plan can always play it).
"""

from __future__ import annotations

from typing import Final

import msgspec

from reelhouse.plans.resolutions import Resolution

#: Every rendition carries the same audio: AAC-LC, stereo, 48 kHz, 128 kbit/s.
AUDIO_CODEC: Final = "aac"
AUDIO_BITRATE = 128_000
AUDIO_SAMPLE_RATE = 48_000
AUDIO_LAYOUT = "stereo"

#: H.264 High profile for every rung; x264 picks the level from size, frame rate and VBV.
VIDEO_PROFILE = "high"


class Rung(msgspec.Struct, frozen=True):
    """One rendition to encode."""

    resolution: Resolution
    width: int
    height: int
    #: VBV cap (bits/s): quality-driven (CRF) encoding never exceeds it over the buffer window.
    max_video_bitrate: int
    #: VBV buffer (bits): two seconds at the cap, so a 4 s segment stays near the cap.
    video_buffer_size: int


class _RungSpec(msgspec.Struct, frozen=True):
    resolution: Resolution
    box_long: int
    box_short: int
    max_video_bitrate: int


# Caps in the range of the HLS authoring guidelines for H.264 at 24-30 fps.
_RUNG_SPECS = (
    _RungSpec(Resolution.SD_480P, 854, 480, 1_400_000),
    _RungSpec(Resolution.HD_720P, 1280, 720, 3_000_000),
    _RungSpec(Resolution.FHD_1080P, 1920, 1080, 6_000_000),
    _RungSpec(Resolution.UHD_4K, 3840, 2160, 16_000_000),
)


def _even(value: float, limit: int) -> int:
    """The nearest even size, never above the source's own (4:2:0 chroma needs even dimensions)."""
    return max(2, min(2 * round(value / 2), limit - limit % 2))


def _rung(spec: _RungSpec, width: int, height: int) -> Rung:
    return Rung(
        resolution=spec.resolution,
        width=width,
        height=height,
        max_video_bitrate=spec.max_video_bitrate,
        video_buffer_size=2 * spec.max_video_bitrate,
    )


def ladder_for(display_width: int, display_height: int) -> tuple[Rung, ...]:
    """The rungs for a source of this display size, lowest first, none above the source."""
    if display_width <= 0 or display_height <= 0:
        raise ValueError(f"a source has a positive size, not {display_width}x{display_height}")
    portrait = display_height > display_width
    source_long, source_short = (display_height, display_width) if portrait else (display_width, display_height)
    rungs: list[Rung] = []
    for spec in _RUNG_SPECS:
        scale = min(spec.box_long / source_long, spec.box_short / source_short)
        if scale > 1:
            break  # this box, and every larger one, would upscale
        long_side, short_side = _even(source_long * scale, source_long), _even(source_short * scale, source_short)
        width, height = (short_side, long_side) if portrait else (long_side, short_side)
        rungs.append(_rung(spec, width, height))
    if not rungs:
        rungs.append(_rung(_RUNG_SPECS[0], _even(display_width, display_width), _even(display_height, display_height)))
    return tuple(rungs)
