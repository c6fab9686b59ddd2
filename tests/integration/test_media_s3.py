"""Media on S3-compatible object storage: two API instances share one bucket (moto's S3 server on
127.0.0.1) and one database; a tus upload goes to either, breaks off once and resumes, and the
media job ends ``ready`` with its output in the bucket and nothing under MEDIA_DIR."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from catalog_helpers import create_title, new_admin
from test_media_ingest import MEDIA_SETTINGS, TUS, create_upload, patch, wait_for

from helpers import in_app_loop
from reelhouse.assets.store import S3MediaStore
from reelhouse.media.manifest import MANIFEST_FILENAME

CHUNK = 1024 * 1024


class ConnectionDropped(Exception):
    pass


@pytest.mark.parametrize("backend", ["postgres"])
async def test_an_upload_across_two_instances_on_s3_becomes_ready_media_in_the_bucket(
    make_client: Any, s3_server: Any, shared_media: Any, tmp_path: Path
) -> None:
    shared_media.directory()
    source = (shared_media.workspace / "shared-source.mp4").read_bytes()
    bucket = s3_server.new_bucket()
    media_dir = tmp_path / "media"
    settings = {
        **s3_server.settings(bucket, prefix="reelhouse"),
        **MEDIA_SETTINGS,
        "MEDIA_DIR": str(media_dir),
        "MEDIA_WORK_DIR": str(tmp_path / "work"),
        "TUS_MAX_CHUNK_BYTES": str(CHUNK),
    }
    async with (
        make_client(**settings, MEDIA_WORKER_IN_API="false") as first,
        make_client(reset=False, **settings) as second,
    ):
        store = first.app.state.components.media_store
        assert isinstance(store, S3MediaStore)
        admin = await new_admin(first)
        title = await create_title(first, admin, media=False)
        location = await create_upload(first, admin, title["id"], len(source))
        upload_id = uuid.UUID(location.rsplit("/", 1)[1])
        assert (await patch(first, admin, location, 0, source[:300_000])).status_code == 204

        # The next PATCH breaks off part way (the connection dropped): none of it counts.
        async def broken_body() -> AsyncIterator[bytes]:
            yield source[300_000:700_000]
            raise ConnectionDropped()

        async def interrupted_patch() -> None:
            components = first.app.state.components
            async with components.units.begin() as uow:
                await components.media(uow).append(upload_id, offset=300_000, declared_length=None, body=broken_body())

        with pytest.raises(ConnectionDropped):
            in_app_loop(first, interrupted_patch)
        parts = await store.list(f"uploads/{upload_id}")
        assert [(part.key.rsplit("/", 1)[1], part.size) for part in parts] == [("000000000000000", 300_000)]

        # The client asks either instance where to resume, and the instances take turns.
        head = await second.head(location, headers={**admin.headers, **TUS})
        offset = int(head.headers["upload-offset"])
        assert offset == 300_000
        instances = [second, first]
        turn = 0
        while offset < len(source):
            response = await patch(instances[turn % 2], admin, location, offset, source[offset : offset + CHUNK])
            assert response.status_code == 204, response.text
            offset = int(response.headers["upload-offset"])
            turn += 1
        assert offset == len(source)

        # The second instance's worker processes the job (the first runs none).
        state = await wait_for(first, admin, title["id"], "ready")
        assert [r["resolution"] for r in state["renditions"]] == ["480p", "720p"]

        keys = [item.key for item in await store.list("assets")]
        (prefix,) = {key.rsplit("/", 1)[0] for key in keys if key.endswith(f"/{MANIFEST_FILENAME}")}
        assert prefix.startswith("assets/")
        assert prefix.count("/") == 2  # assets/<job>/<attempt>
        names = {key.removeprefix(f"{prefix}/") for key in keys}
        assert {"manifest.json", "poster.jpg", "sprite.jpg", "master.m3u8", "480p/init.mp4"} <= names
        assert any(name.startswith("720p/") and name.endswith(".m4s") for name in names)
        assert await store.list("uploads") == []  # the source's parts went once the job ended

        assert not media_dir.exists() or not any(path.is_file() for path in media_dir.rglob("*"))
        assert not any((tmp_path / "work").rglob("*.m4s"))  # the scratch directory was cleaned up
