"""Resolutions a plan caps playback at and the media ladder names its rungs by.

Kept apart from the plan models so the media worker's child process, which only needs these
names, starts without importing SQLAlchemy.
"""

from __future__ import annotations

import enum


class Resolution(enum.StrEnum):
    SD_480P = "480p"
    HD_720P = "720p"
    FHD_1080P = "1080p"
    UHD_4K = "4k"

    @property
    def rank(self) -> int:
        return _RESOLUTION_RANKS[self]


_RESOLUTION_RANKS = {resolution: rank for rank, resolution in enumerate(Resolution)}
