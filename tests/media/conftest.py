"""Real media for the media tests: clips made here with PyAV, processed once per test run.

Transcoding is the slow part, so each clip is processed once and every test reads the output.
Under pytest-xdist every worker runs session fixtures, so the workers share one workspace and
take turns under a file lock: the first makes a clip, the others find it made. The main clip goes
through the async child-process entry point, as the job runner will call it. A fast x264 preset
keeps the run to seconds on two cores; production uses ``slow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import msgspec
import pytest

from reelhouse.media import MediaManifest, process_media, process_media_in_subprocess, read_manifest

from .clips import CLIP_FPS, CLIP_SECONDS, TEST_ENCODER, ProcessedClip, make_test_clip


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def media_workspace(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    base = tmp_path_factory.getbasetemp()
    # The xdist workers' base directories sit side by side in one directory per run.
    workspace = (base if worker_id == "master" else base.parent) / "media-workspace"
    workspace.mkdir(exist_ok=True)
    return workspace


def _clip_once(workspace: Path, name: str, make: Callable[[Path], Path]) -> Path:
    path = workspace / name
    with _exclusive(workspace / f"{name}.lock"):
        if not path.exists():
            partial = workspace / f"partial-{name}"
            make(partial)
            partial.rename(path)
    return path


def _processed_once(
    workspace: Path, name: str, source: Path, process: Callable[[Path, list[int]], MediaManifest]
) -> ProcessedClip:
    destination = workspace / "titles" / name
    progress_file = workspace / f"{name}.progress.json"
    with _exclusive(workspace / f"{name}.lock"):
        if not progress_file.exists():
            progress: list[int] = []
            process(destination, progress)
            progress_file.write_bytes(msgspec.json.encode(progress))
    return ProcessedClip(
        source, destination, read_manifest(destination), msgspec.json.decode(progress_file.read_bytes(), type=list[int])
    )


@pytest.fixture(scope="session")
def hd_clip(media_workspace: Path) -> Path:
    """10 s of 1280x720 at 25 fps with a tone."""
    return _clip_once(
        media_workspace,
        "hd.mp4",
        lambda path: make_test_clip(
            path, width=1280, height=720, seconds=CLIP_SECONDS, fps=CLIP_FPS, with_audio=True, container_format="mp4"
        ),
    )


@pytest.fixture(scope="session")
def processed_hd(hd_clip: Path, media_workspace: Path) -> ProcessedClip:
    return _processed_once(
        media_workspace,
        "hd",
        hd_clip,
        lambda destination, progress: asyncio.run(
            process_media_in_subprocess(hd_clip, destination, settings=TEST_ENCODER, on_progress=progress.append)
        ),
    )


@pytest.fixture(scope="session")
def processed_small_silent(media_workspace: Path) -> ProcessedClip:
    """3 s of 320x180 without audio: below the smallest rung, nothing to hear."""
    source = _clip_once(
        media_workspace,
        "small.mp4",
        lambda path: make_test_clip(
            path, width=320, height=180, seconds=3, fps=24, with_audio=False, container_format="mp4"
        ),
    )
    return _processed_once(
        media_workspace,
        "small",
        source,
        lambda destination, progress: asyncio.run(
            process_media_in_subprocess(source, destination, settings=TEST_ENCODER, on_progress=progress.append)
        ),
    )


@pytest.fixture(scope="session")
def processed_ntsc_ts(media_workspace: Path) -> ProcessedClip:
    """7 s of 640x360 at 30000/1001 fps in MPEG-TS, whose timestamps start well after zero (processed in-process)."""
    source = _clip_once(
        media_workspace,
        "ntsc.ts",
        lambda path: make_test_clip(
            path,
            width=640,
            height=360,
            seconds=7,
            fps=Fraction(30000, 1001),
            with_audio=True,
            container_format="mpegts",
        ),
    )
    return _processed_once(
        media_workspace,
        "ntsc",
        source,
        lambda destination, progress: process_media(
            source, destination, settings=TEST_ENCODER, on_progress=progress.append
        ),
    )
