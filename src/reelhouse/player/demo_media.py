"""Demo media: link the small test-pattern clips in ``media/demo/`` to every demo title.

``scripts/make-demo-media`` makes ``media/demo/{480p,720p,1080p}.mp4``; ``reelhouse demo seed``
(which ``scripts/run`` calls) then gives each demo title that has no media of its own a
``<MEDIA_DIR>/<content id>/<rendition>.mp4`` pointing at them (a symbolic link, or a copy where
links are not possible), so the web player plays something real with no setup. Files already
there are never touched, so running it again changes nothing and real media always wins.

A title that plays the clip is as long as the clip: its ``duration_seconds`` is set to the clip's
(and its credits marker cleared), so progress, Continue Watching and the resume offer in the
player follow what is really played.
"""

from __future__ import annotations

import filecmp
import math
import os
import shutil
import struct
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import anyio.to_thread
from sqlalchemy import select, update

from reelhouse.catalog.demo import DEMO_TITLES
from reelhouse.catalog.models import Content
from reelhouse.plans.models import Resolution

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

#: The repository's ``media/demo`` (this file is ``src/reelhouse/player/demo_media.py``).
DEMO_MEDIA_DIR = Path(__file__).resolve().parents[3] / "media" / "demo"


def demo_clips(source: Path = DEMO_MEDIA_DIR) -> dict[Resolution, Path]:
    """The demo clip of each rendition that exists in ``source``."""
    clips = {resolution: source / f"{resolution.value}.mp4" for resolution in Resolution}
    return {resolution: path.resolve() for resolution, path in clips.items() if path.is_file()}


def rendition_path(media_dir: str, content_id: UUID, resolution: Resolution) -> Path:
    # The retired single-file layout: no longer media (titles play processed assets); kept until
    # the demo seeds its titles with a shared asset instead.
    return Path(media_dir) / str(content_id) / f"{resolution.value}.mp4"


def _place(target: Path, clip: Path) -> bool:
    """Link (or copy) ``clip`` to ``target`` unless a file is there already; True when placed."""
    if target.exists():
        return False
    if target.is_symlink():  # a dangling link, e.g. the repository moved: point it at the clip again
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(clip, target)
    except OSError:
        shutil.copyfile(clip, target)
    return True


def link_clips(media_dir: str, content_ids: list[UUID], clips: dict[Resolution, Path]) -> int:
    """Give each title the clips it lacks; the number of titles that got any."""
    linked = 0
    for content_id in content_ids:
        placed = [_place(rendition_path(media_dir, content_id, r), clip) for r, clip in clips.items()]
        linked += any(placed)
    return linked


def _is_clip(target: Path, clip: Path) -> bool:
    if not target.is_file():
        return False
    return target.resolve() == clip or filecmp.cmp(target, clip, shallow=False)


def titles_playing_clips(media_dir: str, content_ids: list[UUID], clips: dict[Resolution, Path]) -> list[UUID]:
    """The titles whose every rendition file is a demo clip (no real media of their own)."""
    return [
        content_id
        for content_id in content_ids
        if all(_is_clip(rendition_path(media_dir, content_id, r), clip) for r, clip in clips.items())
    ]


def mp4_duration_seconds(path: Path) -> float:
    """The duration an MP4 file declares in its movie header (``moov/mvhd``)."""
    data = path.read_bytes()
    at = data.find(b"mvhd")
    if at < 0:
        raise ValueError(f"{path} has no movie header")
    version = data[at + 4]
    if version == 1:  # 64-bit times: creation, modification (8 bytes each), timescale, duration (8)
        timescale, duration = struct.unpack(">IQ", data[at + 24 : at + 36])
    else:  # 32-bit: creation, modification (4 bytes each), timescale, duration
        timescale, duration = struct.unpack(">II", data[at + 16 : at + 24])
    return float(duration) / float(timescale)


async def link_demo_media(session: AsyncSession, media_dir: str, source: Path = DEMO_MEDIA_DIR) -> list[str]:
    """Link the demo clips to the demo titles; one line saying what happened."""
    clips = demo_clips(source)
    if not clips:
        return [f"demo media: none in {source} (scripts/make-demo-media makes it); demo titles have no video"]
    titles = [title.title for title in DEMO_TITLES]
    content_ids = list((await session.scalars(select(Content.id).where(Content.title.in_(titles)))).all())
    linked = await anyio.to_thread.run_sync(link_clips, media_dir, content_ids, clips)
    playing = await anyio.to_thread.run_sync(titles_playing_clips, media_dir, content_ids, clips)
    seconds = math.ceil(mp4_duration_seconds(next(iter(clips.values()))))
    if playing:
        await session.execute(
            update(Content)
            .where(Content.id.in_(playing), Content.duration_seconds != seconds)
            .values(duration_seconds=seconds, credits_start_seconds=None)
        )
    renditions = ", ".join(r.value for r in clips)
    clip = f"the {seconds} s demo clip ({renditions})"
    if linked:
        return [f"demo media linked: {linked} titles play {clip} from {media_dir}, and last as long"]
    return [f"demo media present: {len(playing)} of {len(content_ids)} demo titles play {clip} in {media_dir}"]
