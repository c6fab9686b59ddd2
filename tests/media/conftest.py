"""Real media for the media tests: clips made here with PyAV, processed once per test session.

Transcoding is the slow part, so the pipeline runs once per session (through the async,
child-process entry point, as the job runner will call it) and every test reads its output.
A fast x264 preset keeps that to seconds on two cores; production uses ``slow``.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import pytest

from reelhouse.media import process_media, process_media_in_subprocess

from .clips import CLIP_FPS, CLIP_SECONDS, TEST_ENCODER, ProcessedClip, make_test_clip


@pytest.fixture(scope="session")
def media_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def hd_clip(media_workspace: Path) -> Path:
    """10 s of 1280x720 at 25 fps with a tone."""
    return make_test_clip(
        media_workspace / "hd.mp4", width=1280, height=720, seconds=CLIP_SECONDS, fps=CLIP_FPS, with_audio=True
    )


@pytest.fixture(scope="session")
def processed_hd(hd_clip: Path, media_workspace: Path) -> ProcessedClip:
    progress: list[int] = []
    destination = media_workspace / "titles" / "hd"
    manifest = asyncio.run(
        process_media_in_subprocess(hd_clip, destination, settings=TEST_ENCODER, on_progress=progress.append)
    )
    return ProcessedClip(hd_clip, destination, manifest, progress)


@pytest.fixture(scope="session")
def processed_small_silent(media_workspace: Path) -> ProcessedClip:
    """3 s of 320x180 without audio: below the smallest rung, nothing to hear."""
    source = make_test_clip(media_workspace / "small.mp4", width=320, height=180, seconds=3, fps=24, with_audio=False)
    destination = media_workspace / "titles" / "small"
    manifest = asyncio.run(process_media_in_subprocess(source, destination, settings=TEST_ENCODER))
    return ProcessedClip(source, destination, manifest, [])


@pytest.fixture(scope="session")
def processed_ntsc_ts(media_workspace: Path) -> ProcessedClip:
    """7 s of 640x360 at 30000/1001 fps in MPEG-TS, whose timestamps start well after zero (processed in-process)."""
    source = make_test_clip(
        media_workspace / "ntsc.ts", width=640, height=360, seconds=7, fps=Fraction(30000, 1001), with_audio=True
    )
    progress: list[int] = []
    destination = media_workspace / "titles" / "ntsc"
    manifest = process_media(source, destination, settings=TEST_ENCODER, on_progress=progress.append)
    return ProcessedClip(source, destination, manifest, progress)
