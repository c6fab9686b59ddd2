"""Demo media through the real pipeline: the repository's test-pattern clip, processed once into
CMAF HLS like any upload, shared by every demo title.

``reelhouse demo seed`` (which ``scripts/run`` calls) processes ``media/demo/720p.mp4`` (a generated
test pattern with a tone, made by ``scripts/make-demo-media``) in the media work directory the first
time, publishes it to the media store under ``demo/test-pattern`` as the worker publishes a job's
output (the manifest last), registers it as one media asset and points every demo title that has
no media of its own at it. Titles playing it last as long as it does, so the player's resume and
Continue Watching can be seen. Real media an administrator gave a title is never replaced.
"""

from __future__ import annotations

import math
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import msgspec
from sqlalchemy import select, update

from reelhouse.assets.models import MediaAsset
from reelhouse.assets.store import MediaObjectNotFound
from reelhouse.catalog.demo import DEMO_TITLES
from reelhouse.catalog.models import Content
from reelhouse.media import EncoderSettings, MediaManifest, process_media_in_subprocess
from reelhouse.media.manifest import MANIFEST_FILENAME

if TYPE_CHECKING:
    from reelhouse.assets.services import MediaService
    from reelhouse.assets.store import MediaStore
    from reelhouse.platform.uow import UnitOfWork

#: The repository's ``media/demo`` (this file is ``src/reelhouse/player/demo_media.py``).
DEMO_MEDIA_DIR = Path(__file__).resolve().parents[3] / "media" / "demo"
DEMO_SOURCE = DEMO_MEDIA_DIR / "720p.mp4"
#: Where the processed demo media lives in the media store.
DEMO_STORAGE_KEY = "demo/test-pattern"
#: Fast enough for a first start on a laptop; the clip is a test pattern.
DEMO_ENCODER = EncoderSettings(preset="veryfast")


async def demo_manifest(store: MediaStore, work_dir: Path, source: Path = DEMO_SOURCE) -> MediaManifest | None:
    """The processed demo media, made the first time it is asked for; None without the source clip."""
    made = await _made_already(store)
    if made is not None:
        return made
    if not await anyio.Path(source).is_file():
        return None
    scratch = work_dir / f"demo-{uuid.uuid4().hex[:12]}"
    try:
        manifest = await process_media_in_subprocess(source, scratch / "output", settings=DEMO_ENCODER)
        # Whatever an interrupted earlier publish left (it has no manifest, or it would have been found).
        await store.delete_prefix(DEMO_STORAGE_KEY)
        await store.publish_tree(scratch / "output", DEMO_STORAGE_KEY, last=(MANIFEST_FILENAME,))
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(scratch, ignore_errors=True))
    return manifest


async def _made_already(store: MediaStore) -> MediaManifest | None:
    """The demo media's manifest if it is in the store (published last, so the rest is there too)."""
    try:
        data = await store.read_bytes(f"{DEMO_STORAGE_KEY}/{MANIFEST_FILENAME}")
    except MediaObjectNotFound:
        return None
    return msgspec.json.decode(data, type=MediaManifest)


async def give_demo_titles_media(uow: UnitOfWork, media: MediaService, store: MediaStore, work_dir: Path) -> list[str]:
    """Point the demo titles without media at the shared demo asset; one line saying what happened."""
    manifest = await demo_manifest(store, work_dir)
    if manifest is None:
        return [f"demo media: no {DEMO_SOURCE} (scripts/make-demo-media makes it); demo titles have no video"]
    session = uow.session
    asset = await session.scalar(select(MediaAsset).where(MediaAsset.storage_key == DEMO_STORAGE_KEY).limit(1))
    if asset is None:
        asset = await media.register(DEMO_STORAGE_KEY, manifest)
    titles = [title.title for title in DEMO_TITLES]
    waiting = list(
        (
            await session.scalars(select(Content.id).where(Content.title.in_(titles), Content.media_asset_id.is_(None)))
        ).all()
    )
    for content_id in waiting:
        await media.share(content_id, asset.id)
    seconds = math.ceil(manifest.duration)
    await session.execute(
        update(Content)
        .where(Content.media_asset_id == asset.id, Content.duration_seconds != seconds)
        .values(duration_seconds=seconds, credits_start_seconds=None)
    )
    renditions = ", ".join(rendition.resolution for rendition in manifest.renditions)
    return [f"demo media: {len(waiting)} titles given the {seconds} s test pattern ({renditions}), processed as HLS"]
