"""Ingest: tus uploads (with an interruption and a resume) and URL ingest, through to ready media."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from catalog_helpers import Client, Person, create_title, new_admin, new_user
from sqlalchemy import update

from helpers import in_app_loop
from media.clips import make_test_clip
from media_validation import validate_master_playlist
from reelhouse.assets.models import MediaJob, MediaJobStatus
from servers import free_ports

UPLOADS = "/api/v1/admin/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
MEDIA_SETTINGS = {"MEDIA_POLL_SECONDS": "0.2", "MEDIA_ENCODER_PRESET": "superfast"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def metadata(content_id: str, filename: str = "film.mp4") -> str:
    return f"content_id {b64(content_id)},filename {b64(filename)}"


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


async def create_upload(client: Client, admin: Person, content_id: str, length: int) -> str:
    response = await client.post(
        UPLOADS,
        headers={**admin.headers, **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(content_id)},
    )
    assert response.status_code == 201, response.text
    location: str = response.headers["location"]
    assert location.startswith(f"{UPLOADS}/")
    return location


async def patch(client: Client, admin: Person, location: str, offset: int, body: bytes) -> httpx.Response:
    headers = {**admin.headers, **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
    return await client.patch(location, content=body, headers=headers)


async def media_state(client: Client, admin: Person, content_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/admin/content/{content_id}/media", headers=admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for(client: Client, admin: Person, content_id: str, status: str, seconds: float = 120) -> dict[str, Any]:
    seen: list[tuple[str, int]] = []
    for _ in range(int(seconds / 0.2)):
        state = await media_state(client, admin, content_id)
        seen.append((state["status"], state["progress_percent"]))
        if state["status"] == status:
            return state
        assert state["status"] != "failed", state
        await asyncio.sleep(0.2)
    pytest.fail(f"the media never became {status}: {seen[-5:]}")


@pytest.fixture
def source_clip(shared_media: Any) -> bytes:
    """A 6 s 1280x720 clip with sound (the run's shared source, made once)."""
    shared_media.directory()
    return Path(shared_media.workspace / "shared-source.mp4").read_bytes()


class TestTusProtocol:
    async def test_discovery_is_open_to_anyone(self, client: Client) -> None:
        response = await client.options(UPLOADS)
        assert response.status_code == 204
        assert response.headers["tus-resumable"] == "1.0.0"
        assert response.headers["tus-version"] == "1.0.0"
        assert response.headers["tus-extension"] == "creation,termination"
        assert int(response.headers["tus-max-size"]) > 0

    async def test_only_administrators_upload(self, client: Client) -> None:
        admin = await new_admin(client)
        title = await create_title(client, admin, media=False)
        viewer = await new_user(client)
        response = await client.post(
            UPLOADS, headers={**viewer.headers, **TUS, "Upload-Length": "10", "Upload-Metadata": metadata(title["id"])}
        )
        assert response.status_code == 403

    async def test_the_protocol_version_is_required(self, client: Client) -> None:
        admin = await new_admin(client)
        title = await create_title(client, admin, media=False)
        response = await client.post(
            UPLOADS, headers={**admin.headers, "Upload-Length": "10", "Upload-Metadata": metadata(title["id"])}
        )
        assert_refused(response, 412, "tus_version_unsupported")
        assert response.headers["tus-version"] == "1.0.0"

    async def test_an_unknown_title_or_bad_metadata_is_refused(self, client: Client) -> None:
        admin = await new_admin(client)
        headers = {**admin.headers, **TUS, "Upload-Length": "10"}
        unknown = await client.post(UPLOADS, headers={**headers, "Upload-Metadata": metadata(str(uuid.uuid4()))})
        assert unknown.status_code == 404
        garbage = await client.post(UPLOADS, headers={**headers, "Upload-Metadata": "content_id !!!"})
        assert garbage.status_code == 422
        missing = await client.post(UPLOADS, headers={**admin.headers, **TUS, "Upload-Metadata": metadata("x")})
        assert missing.status_code == 422

    async def test_above_the_size_limit_is_413(self, make_client: Any) -> None:
        async with make_client(MAX_UPLOAD_BYTES="1000") as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, media=False)
            response = await client.post(
                UPLOADS,
                headers={**admin.headers, **TUS, "Upload-Length": "1001", "Upload-Metadata": metadata(title["id"])},
            )
            assert_refused(response, 413, "upload_too_large")

    async def test_a_chunk_above_the_limit_is_413(self, make_client: Any, source_clip: bytes) -> None:
        async with make_client(TUS_MAX_CHUNK_BYTES="1000") as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, media=False)
            location = await create_upload(client, admin, title["id"], len(source_clip))
            assert_refused(await patch(client, admin, location, 0, source_clip[:1001]), 413, "upload_chunk_too_large")

    async def test_a_wrong_offset_is_409_with_the_right_one(self, client: Client, source_clip: bytes) -> None:
        admin = await new_admin(client)
        title = await create_title(client, admin, media=False)
        location = await create_upload(client, admin, title["id"], len(source_clip))
        assert (await patch(client, admin, location, 0, source_clip[:5000])).status_code == 204
        response = await patch(client, admin, location, 0, source_clip[:5000])
        assert_refused(response, 409, "upload_offset_mismatch")
        assert response.headers["upload-offset"] == "5000"

    async def test_what_is_not_a_video_is_refused_and_discarded(self, client: Client) -> None:
        admin = await new_admin(client)
        title = await create_title(client, admin, media=False)
        text = b"this is a text file, not a film\n" * 100
        location = await create_upload(client, admin, title["id"], len(text))
        assert_refused(await patch(client, admin, location, 0, text), 415, "unsupported_media")
        assert (await client.head(location, headers={**admin.headers, **TUS})).status_code == 404
        assert (await media_state(client, admin, title["id"]))["status"] == "none"

    async def test_termination(self, client: Client, source_clip: bytes) -> None:
        admin = await new_admin(client)
        title = await create_title(client, admin, media=False)
        location = await create_upload(client, admin, title["id"], len(source_clip))
        assert (await patch(client, admin, location, 0, source_clip[:1000])).status_code == 204
        response = await client.delete(location, headers={**admin.headers, **TUS})
        assert response.status_code == 204
        assert (await client.head(location, headers={**admin.headers, **TUS})).status_code == 404


class TestUploadToReady:
    async def test_an_interrupted_upload_resumes_and_the_title_becomes_playable(
        self, make_client: Any, source_clip: bytes
    ) -> None:
        async with make_client(TUS_MAX_CHUNK_BYTES=str(1024 * 1024), **MEDIA_SETTINGS) as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, media=False, thumbnail_url=None, duration_seconds=5000)
            assert title["playable"] is False
            location = await create_upload(client, admin, title["id"], len(source_clip))
            assert (await patch(client, admin, location, 0, source_clip[:300_000])).status_code == 204
            # The connection dropped; the client asks where to resume.
            head = await client.head(location, headers={**admin.headers, **TUS})
            assert head.status_code == 200
            assert head.headers["cache-control"] == "no-store"
            assert head.headers["upload-length"] == str(len(source_clip))
            offset = int(head.headers["upload-offset"])
            assert offset == 300_000
            while offset < len(source_clip):
                chunk = source_clip[offset : offset + 1024 * 1024]
                response = await patch(client, admin, location, offset, chunk)
                assert response.status_code == 204, response.text
                offset = int(response.headers["upload-offset"])
            assert offset == len(source_clip)

            state = await wait_for(client, admin, title["id"], "ready")
            assert state["progress_percent"] == 100
            assert state["error"] is None
            assert state["pending"] is None
            assert [r["resolution"] for r in state["renditions"]] == ["480p", "720p"]
            assert [(r["width"], r["height"]) for r in state["renditions"]] == [(854, 480), (1280, 720)]
            assert all(r["codecs"].startswith("avc1.64") and r["bandwidth"] > 0 for r in state["renditions"])
            assert state["duration_seconds"] == pytest.approx(6.0, abs=0.1)

            public = (await client.get(f"/api/v1/content/{title['id']}")).json()
            assert public["playable"] is True
            assert public["duration_seconds"] == 6  # measured, replacing the guess
            assert public["thumbnail_url"] == f"/media/{title['id']}/poster.jpg"
            poster = await client.get(public["thumbnail_url"])
            assert poster.status_code == 200
            assert poster.content[:3] == b"\xff\xd8\xff"

            viewer = await new_user(client)
            started = await client.post(
                "/api/v1/playback/sessions", json={"content_id": title["id"], "device_id": "tv"}, headers=viewer.headers
            )
            assert started.status_code == 201, started.text
            url = httpx.URL(started.json()["stream_url"])
            manifest = f"{url.path}?{url.query.decode()}"
            master = (await client.get(manifest)).text
            playlists = {}
            for line in master.splitlines():
                if line and not line.startswith("#"):
                    playlists[line] = (await client.get(str(httpx.URL(manifest).join(line)))).text
            validate_master_playlist(master, lambda uri: playlists[uri])


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[str]:
    """A static file server on 127.0.0.1 for URL ingest."""
    port = free_ports(1)[0]

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


class TestUrlIngest:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:9/film.mp4",
            "http://10.1.2.3/film.mp4",
            "http://169.254.169.254/latest",
            "ftp://x/y.mp4",
            "http://[::1]/film.mp4",
            "http://user:pw@example.com/film.mp4",
        ],
    )
    async def test_private_and_odd_urls_are_refused(self, client: Client, url: str) -> None:
        admin = await new_admin(client)
        title = await create_title(client, admin, media=False)
        response = await client.post(
            f"/api/v1/admin/content/{title['id']}/media", json={"source_url": url}, headers=admin.headers
        )
        assert_refused(response, 400, "source_url_not_allowed")
        assert (await media_state(client, admin, title["id"]))["status"] == "none"

    async def test_an_empty_body_uses_the_titles_video_url(self, client: Client) -> None:
        admin = await new_admin(client)
        title = await create_title(client, admin, media=False, video_url="http://127.0.0.1:9/film.mp4")
        response = await client.post(f"/api/v1/admin/content/{title['id']}/media", json={}, headers=admin.headers)
        assert_refused(response, 400, "source_url_not_allowed")
        assert "127.0.0.1" in response.json()["detail"]

    async def test_a_url_is_fetched_and_processed(self, make_client: Any, tmp_path: Path) -> None:
        make_test_clip(
            tmp_path / "small.mp4", width=320, height=180, seconds=2, fps=24, with_audio=False, container_format="mp4"
        )
        (tmp_path / "notes.txt").write_text("not a video\n" * 100)
        async with make_client(MEDIA_INGEST_ALLOW_PRIVATE="true", **MEDIA_SETTINGS) as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, media=False)
            other = await create_title(client, admin, media=False, title="Other")
            with serving(tmp_path) as base:
                queued = await client.post(
                    f"/api/v1/admin/content/{title['id']}/media",
                    json={"source_url": f"{base}/small.mp4"},
                    headers=admin.headers,
                )
                assert queued.status_code == 202, queued.text
                assert queued.json()["status"] == "queued"
                failing = await client.post(
                    f"/api/v1/admin/content/{other['id']}/media",
                    json={"source_url": f"{base}/notes.txt"},
                    headers=admin.headers,
                )
                assert failing.status_code == 202
                state = await wait_for(client, admin, title["id"], "ready")
                assert [r["resolution"] for r in state["renditions"]] == ["480p"]
                failed = await wait_for(client, admin, other["id"], "failed")
            assert failed["error"]["code"] == "unsupported_media"


class TestJobs:
    async def test_a_job_whose_workers_keep_dying_fails_instead_of_looping(
        self, make_client: Any, source_clip: bytes
    ) -> None:
        async with make_client(MEDIA_WORKER_IN_API="false", MEDIA_MAX_ATTEMPTS="2") as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, media=False)
            location = await create_upload(client, admin, title["id"], len(source_clip))
            assert (await patch(client, admin, location, 0, source_clip)).status_code == 204
            components = client.app.state.components

            async def claimed_twice_by_workers_that_died() -> int:
                async with components.units.begin() as uow:
                    await uow.session.execute(
                        update(MediaJob).values(
                            status=MediaJobStatus.PROCESSING,
                            attempts=2,
                            claimed_until=datetime.now(UTC) - timedelta(seconds=1),
                        )
                    )
                return await components.media_worker.run_due()

            assert in_app_loop(client, claimed_twice_by_workers_that_died) == 1
            state = await media_state(client, admin, title["id"])
            assert state["status"] == "failed"
            assert state["error"]["code"] == "transcode_failed"

    async def test_a_replacement_keeps_the_current_media_playing_until_it_is_ready(
        self, make_client: Any, source_clip: bytes, tmp_path: Path
    ) -> None:
        settings = {"MEDIA_WORKER_IN_API": "false", "MEDIA_ENCODER_PRESET": "superfast", "MEDIA_DIR": str(tmp_path)}
        async with make_client(**settings) as client:
            admin = await new_admin(client)
            title = await create_title(client, admin)  # plays the run's shared media
            location = await create_upload(client, admin, title["id"], len(source_clip))
            assert (await patch(client, admin, location, 0, source_clip)).status_code == 204

            state = await media_state(client, admin, title["id"])
            assert state["status"] == "ready"
            assert state["pending"] == {"status": "queued", "progress_percent": 0}
            assert (await client.get(f"/api/v1/content/{title['id']}")).json()["playable"] is True

            worker = client.app.state.components.media_worker
            assert in_app_loop(client, worker.run_due) == 1
            state = await media_state(client, admin, title["id"])
            assert state["status"] == "ready"
            assert state["pending"] is None
            (job,) = (tmp_path / "assets").iterdir()
            assert [p.name for p in job.iterdir()] == ["1"]
            assert (job / "1" / "manifest.json").is_file()
            assert not (tmp_path / "uploads" / location.rsplit("/", 1)[1]).exists()  # the source is gone

    async def test_an_upload_never_finished_is_discarded_after_its_expiry(
        self, make_client: Any, source_clip: bytes, tmp_path: Path
    ) -> None:
        async with make_client(MEDIA_UPLOAD_EXPIRY_HOURS="0", MEDIA_DIR=str(tmp_path)) as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, media=False)
            unfinished = await create_upload(client, admin, title["id"], len(source_clip))
            assert (await patch(client, admin, unfinished, 0, source_clip[:1000])).status_code == 204
            finished = await create_upload(client, admin, title["id"], len(source_clip))
            assert (await patch(client, admin, finished, 0, source_clip)).status_code == 204
            worker = client.app.state.components.media_worker
            assert in_app_loop(client, worker.discard_abandoned_uploads) == 1
            assert (await client.head(unfinished, headers={**admin.headers, **TUS})).status_code == 404
            assert not (tmp_path / "uploads" / unfinished.rsplit("/", 1)[1]).exists()
            assert (tmp_path / "uploads" / finished.rsplit("/", 1)[1]).exists()  # its job still needs it
