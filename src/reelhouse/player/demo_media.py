"""Demo media: link the small test-pattern clips in ``media/demo/`` to every demo title.

``scripts/make-demo-media`` makes ``media/demo/{480p,720p,1080p}.mp4``; ``reelhouse demo seed``
(which ``scripts/run`` calls) then gives each demo title that has no media of its own a
``<MEDIA_DIR>/<content id>/<rendition>.mp4`` pointing at them (a symbolic link, or a copy where
links are not possible), so the web player plays something real with no setup. Files already
there are never touched, so running it again changes nothing and real media always wins.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import anyio.to_thread
from sqlalchemy import select

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


async def link_demo_media(session: AsyncSession, media_dir: str, source: Path = DEMO_MEDIA_DIR) -> list[str]:
    """Link the demo clips to the demo titles; one line saying what happened."""
    clips = demo_clips(source)
    if not clips:
        return [f"demo media: none in {source} (scripts/make-demo-media makes it); demo titles have no video"]
    titles = [title.title for title in DEMO_TITLES]
    content_ids = list((await session.scalars(select(Content.id).where(Content.title.in_(titles)))).all())
    linked = await anyio.to_thread.run_sync(link_clips, media_dir, content_ids, clips)
    renditions = ", ".join(r.value for r in clips)
    if linked:
        return [f"demo media linked: {linked} titles play the demo clip ({renditions}) from {media_dir}"]
    return [f"demo media present: {len(content_ids)} demo titles in {media_dir}"]
