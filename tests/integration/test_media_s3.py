"""Media on S3-compatible object storage: two API instances share one bucket (moto's S3 server on
127.0.0.1) and one database; a tus upload goes to either, breaks off once and resumes, and the
media job ends ``ready`` with its output in the bucket and nothing under MEDIA_DIR. Either
instance then serves the same stream: segments read from the bucket through the API, or, with
AES-128 and MEDIA_PUBLIC_BASE_URL, straight from the bucket with keys only from the API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from catalog_helpers import Client, create_title, new_admin, new_user
from test_media_ingest import MEDIA_SETTINGS, TUS, create_upload, patch, wait_for

from helpers import in_app_loop
from media_validation import validate_media_playlist
from reelhouse.assets.store import S3MediaStore
from reelhouse.media.encryption import decrypt_segment
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


async def uploaded_title(client: Client, source: bytes) -> dict[str, Any]:
    """A free title whose media is ``source``, uploaded in one PATCH and processed."""
    admin = await new_admin(client)
    title = await create_title(client, admin, media=False, access_level="free")
    location = await create_upload(client, admin, title["id"], len(source))
    assert (await patch(client, admin, location, 0, source)).status_code == 204
    await wait_for(client, admin, title["id"], "ready")
    return title


async def start_stream(client: Client, content_id: str) -> tuple[str, str]:
    """A new viewer's stream of the title: its media path prefix and signed query."""
    viewer = await new_user(client)
    started = await client.post(
        "/api/v1/playback/sessions", json={"content_id": content_id, "device_id": "tv"}, headers=viewer.headers
    )
    assert started.status_code == 201, started.text
    url = urlsplit(started.json()["stream_url"])
    return url.path.rsplit("/", 1)[0], url.query


@pytest.mark.parametrize("backend", ["postgres"])
async def test_either_instance_serves_media_from_the_bucket(
    make_client: Any, s3_server: Any, shared_media: Any, tmp_path: Path
) -> None:
    source = shared_media.source()
    bucket = s3_server.new_bucket()
    settings = {**s3_server.settings(bucket), **MEDIA_SETTINGS, "MEDIA_DIR": str(tmp_path / "media")}
    async with make_client(**settings) as first, make_client(reset=False, **settings) as second:
        store = first.app.state.components.media_store
        title = await uploaded_title(first, source)

        base, query = await start_stream(first, title["id"])
        playlist = await second.get(f"{base}/480p/index.m3u8?{query}")
        assert playlist.status_code == 200, playlist.text
        parsed = validate_media_playlist(playlist.text)
        (prefix,) = {item.key.rsplit("/", 1)[0] for item in await store.list("assets") if item.key.endswith("json")}
        for uri in [parsed.segment_map[0].uri, *(segment.uri for segment in parsed.segments)]:
            served = await first.get(urljoin(f"{base}/480p/index.m3u8", uri))
            assert served.status_code == 200, served.text
            assert served.content == await store.read_bytes(f"{prefix}/480p/{uri.split('?')[0]}")
        part = await second.get(f"{base}/480p/seg_00000.m4s?{query}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == (await store.read_bytes(f"{prefix}/480p/seg_00000.m4s"))[100:200]
        poster = await second.get(f"/media/{title['id']}/poster.jpg")
        assert poster.status_code == 200
        assert poster.content == await store.read_bytes(f"{prefix}/poster.jpg")


@pytest.mark.parametrize("backend", ["postgres"])
async def test_encrypted_segments_come_from_the_bucket_and_keys_from_either_instance(
    make_client: Any, s3_server: Any, shared_media: Any, tmp_path: Path
) -> None:
    source = shared_media.source()
    bucket = s3_server.new_bucket()
    public_base = f"{s3_server.endpoint_url}/{bucket}/reelhouse"
    s3_server.allow_public_reads(bucket, "reelhouse/assets")  # only processed media, never uploads
    settings = {
        **s3_server.settings(bucket, prefix="reelhouse"),
        **MEDIA_SETTINGS,
        "MEDIA_DIR": str(tmp_path / "media"),
        "MEDIA_ENCRYPTION": "aes-128",
        "MEDIA_PUBLIC_BASE_URL": public_base,
    }
    async with make_client(**settings) as first, make_client(reset=False, **settings) as second:
        title = await uploaded_title(first, source)

        base, query = await start_stream(second, title["id"])
        parsed = validate_media_playlist((await first.get(f"{base}/480p/index.m3u8?{query}")).text)
        assert parsed.segment_map[0].uri.startswith(f"{public_base}/assets/")
        async with httpx.AsyncClient(timeout=10) as bucket_client:
            for index, segment in enumerate(parsed.segments):
                assert segment.uri.startswith(f"{public_base}/assets/")
                sealed = await bucket_client.get(segment.uri)  # from the bucket, not the API
                assert sealed.status_code == 200
                key_uri = urljoin(f"{base}/480p/index.m3u8", segment.key.uri)
                key = await (first if index % 2 else second).get(key_uri)
                assert key.status_code == 200, key.text
                clear = decrypt_segment(sealed.content, key.content, index)
                assert clear[4:8] in (b"styp", b"moof")  # an fMP4 fragment once decrypted
