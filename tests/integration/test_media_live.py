"""Media against real processes: a real server takes an upload whose connection drops mid-body,
resumes it, transcodes it and ffmpeg plays the stream (on PostgreSQL + Redis with full-segment
AES-128, the segments from a plain file server over MEDIA_DIR and the keys from the API; in the
clear, all from the API, on the embedded default); a media worker
killed mid-transcode leaves a job that a restarted worker finishes, with nothing half-written
served."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from catalog_helpers import create_title, new_admin, title_fields
from test_media_ingest import create_upload, media_state, patch, wait_for

from conftest import SharedMedia
from helpers import PASSWORD, in_app_loop
from servers import emptied_shared_state, free_ports, running_servers, server_environ

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "media@example.com"
ADMIN_PASSWORD = "media-admin-password-0123"
TUS = {"Tus-Resumable": "1.0.0"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def interrupted_patch(base_url: str, path: str, token: str, *, offset: int, body: bytes, sent: int) -> None:
    """A PATCH that declares all of ``body`` but whose connection drops after ``sent`` bytes."""
    parts = urlsplit(base_url)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port)) as connection:
        connection.sendall(head + body[:sent])
    # closed here, mid-body


@pytest.fixture
def live_database(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """PostgreSQL and Redis for the postgres backend; nothing (the embedded default) otherwise."""
    if backend == "embedded":
        return {}
    return {
        "DATABASE_URL": request.getfixturevalue("postgres_url"),
        "DATABASE_MIGRATE_ON_STARTUP": "false",
        "REDIS_URL": request.getfixturevalue("redis_url"),
        "REDIS_KEY_PREFIX": f"{request.getfixturevalue('redis_key_prefix')}-media-live",
    }


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    """A plain static file server over the media directory (what a CDN origin would be)."""
    (tmp_path / "media").mkdir(exist_ok=True)
    [port] = free_ports(1)
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path / "media")]
    process = subprocess.Popen([*command, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def live_environ(
    live_database: dict[str, str], tmp_path: Path, file_server: str
) -> AsyncIterator[dict[str, str]]:
    encrypted = {"MEDIA_ENCRYPTION": "aes-128", "MEDIA_PUBLIC_BASE_URL": file_server} if live_database else {}
    environ = server_environ(
        tmp_path,
        MEDIA_DIR=str(tmp_path / "media"),
        MEDIA_POLL_SECONDS="0.2",
        MEDIA_ENCODER_PRESET="superfast",
        TUS_MAX_CHUNK_BYTES=str(64 * 1024 * 1024),
        RATE_LIMIT_ENABLED="false",
        **encrypted,
        ADMIN_EMAIL=ADMIN_EMAIL,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        **live_database,
    )
    if not live_database:
        yield environ
        return
    database = live_database
    async with emptied_shared_state(database["DATABASE_URL"], database["REDIS_URL"], database["REDIS_KEY_PREFIX"]):
        yield environ


async def test_an_interrupted_upload_resumes_and_ffmpeg_plays_the_stream(
    live_environ: dict[str, str], tmp_path: Path, shared_media: SharedMedia
) -> None:
    shared_media.directory()
    clip = (shared_media.workspace / "shared-source.mp4").read_bytes()
    with running_servers(live_environ, 1, tmp_path) as [base]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            login = await http.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            assert login.status_code == 200, login.text
            token = login.json()["token"]
            admin = {"Authorization": f"Bearer {token}"}
            title = await http.post("/api/v1/admin/content", json=title_fields(thumbnail_url=None), headers=admin)
            assert title.status_code == 201, title.text
            content_id = title.json()["id"]
            created = await http.post(
                "/api/v1/admin/uploads",
                headers={
                    **admin,
                    **TUS,
                    "Upload-Length": str(len(clip)),
                    "Upload-Metadata": f"content_id {b64(content_id)},filename {b64('film.mp4')}",
                },
            )
            assert created.status_code == 201, created.text
            location = created.headers["location"]

            await asyncio.to_thread(
                lambda: interrupted_patch(base, location, token, offset=0, body=clip, sent=1_000_000)
            )
            offset = 0
            for _ in range(50):  # the server records what arrived once it sees the connection drop
                head = await http.head(location, headers={**admin, **TUS})
                offset = int(head.headers["upload-offset"])
                if offset > 0:
                    break
                await asyncio.sleep(0.1)
            assert 0 < offset <= 1_000_000
            await asyncio.sleep(0.3)
            offset = int((await http.head(location, headers={**admin, **TUS})).headers["upload-offset"])
            resumed = await http.patch(
                location,
                content=clip[offset:],
                headers={
                    **admin,
                    **TUS,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            assert resumed.status_code == 204, resumed.text
            assert resumed.headers["upload-offset"] == str(len(clip))

            for _ in range(600):
                state = (await http.get(f"/api/v1/admin/content/{content_id}/media", headers=admin)).json()
                if state["status"] in ("ready", "failed"):
                    break
                await asyncio.sleep(0.2)
            assert state["status"] == "ready", state

            viewer = await http.post(
                "/api/v1/auth/register", json={"email": "viewer@example.com", "password": PASSWORD, "name": "V"}
            )
            started = await http.post(
                "/api/v1/playback/sessions",
                json={"content_id": content_id, "device_id": "tv"},
                headers={"Authorization": f"Bearer {viewer.json()['token']}"},
            )
            assert started.status_code == 201, started.text
            stream_url = started.json()["stream_url"]
            assert stream_url.startswith(f"{base}/media/{content_id}/manifest.m3u8?")
            decoded = await asyncio.to_thread(
                subprocess.run,
                ["ffmpeg", "-nostdin", "-v", "error", "-i", stream_url, "-map", "0", "-f", "null", "-"],
                capture_output=True,
                timeout=120,
            )
            assert decoded.returncode == 0, decoded.stderr.decode()
            assert decoded.stderr.decode().strip() == ""

            query = urlsplit(stream_url).query
            playlist = (await http.get(f"/media/{content_id}/480p/index.m3u8?{query}")).text
            viewer_headers = {"Authorization": f"Bearer {viewer.json()['token']}"}
            if "MEDIA_PUBLIC_BASE_URL" in live_environ:
                assert f'#EXT-X-KEY:METHOD=AES-128,URI="key_00000.key?{query}"' in playlist
                public = [line for line in playlist.splitlines() if line.endswith("seg_00000.m4s")]
                assert public, playlist
                assert public[0].startswith(live_environ["MEDIA_PUBLIC_BASE_URL"] + "/assets/")
                segment = await http.get(public[0])  # from the file server, not the API
                assert segment.status_code == 200
                assert b"moof" not in segment.content[:64]  # sealed: no readable box header
                stopped = await http.delete(
                    f"/api/v1/playback/sessions/{started.json()['session_id']}", headers=viewer_headers
                )
                assert stopped.status_code in (200, 204), stopped.text
                key = await http.get(f"/media/{content_id}/480p/key_00000.key?{query}")
                assert key.status_code == 403, key.text
                assert key.json()["code"] == "stopped"
            else:
                assert "#EXT-X-KEY" not in playlist


async def test_a_worker_killed_mid_transcode_ends_in_ready_media_after_a_restart(
    make_client: Any, backend_environ: dict[str, str], tmp_path: Path, shared_media: SharedMedia
) -> None:
    shared_media.directory()
    clip = (shared_media.workspace / "shared-source.mp4").read_bytes()
    media_dir = tmp_path / "media"
    work_dir = tmp_path / "media-work"
    settings = {
        "MEDIA_DIR": str(media_dir),
        "MEDIA_WORK_DIR": str(work_dir),
        "MEDIA_WORKER_IN_API": "false",
        "MEDIA_LEASE_SECONDS": "2",
        "MEDIA_ENCODER_PRESET": "superfast",
        "TUS_MAX_CHUNK_BYTES": str(64 * 1024 * 1024),
    }
    async with make_client(**settings) as client:
        admin = await new_admin(client)
        title = await create_title(client, admin, media=False)
        location = await create_upload(client, admin, title["id"], len(clip))
        assert (await patch(client, admin, location, 0, clip)).status_code == 204
        assert (await media_state(client, admin, title["id"]))["status"] == "queued"

        worker_env = server_environ(tmp_path, **backend_environ, **settings)
        worker_env["MEDIA_ENCODER_PRESET"] = "slow"  # slow enough to be caught in the middle
        worker = subprocess.Popen(  # noqa: ASYNC220  (started once; the test then polls asynchronously)
            [str(Path(sys.executable).parent / "reelhouse"), "media", "worker"],
            env=worker_env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                state = await media_state(client, admin, title["id"])
                if state["status"] == "processing" and 0 < state["progress_percent"] < 60:
                    break
                assert state["status"] != "ready", "the worker finished before it could be killed"
                await asyncio.sleep(0.1)
            assert state["status"] == "processing", state
        finally:
            os.killpg(worker.pid, signal.SIGKILL)  # the worker and its transcoding child
            worker.wait()
        # The attempt worked in its scratch directory, which it left mid-way; nothing was published.
        (scratch,) = work_dir.iterdir()
        (attempt,) = scratch.iterdir()
        assert attempt.name == "1"
        assert [p.name for p in attempt.iterdir() if p.name.startswith(".partial-")]
        assert not (media_dir / "assets").exists()
        assert (await client.get(f"/api/v1/content/{title['id']}")).json()["playable"] is False

        await asyncio.sleep(2.2)  # the dead worker's lease runs out
        worker_of_the_app = client.app.state.components.media_worker
        handled = in_app_loop(client, worker_of_the_app.run_due)
        assert handled == 1
        state = await wait_for(client, admin, title["id"], "ready", seconds=10)
        assert [r["resolution"] for r in state["renditions"]] == ["480p", "720p"]
        (job_dir,) = (media_dir / "assets").iterdir()
        assert job_dir.name == scratch.name
        assert [p.name for p in job_dir.iterdir()] == ["2"]  # the second attempt, published whole
        assert list(work_dir.iterdir()) == []  # its scratch directory is gone, the dead attempt's with it
        assert (await client.get(f"/api/v1/content/{title['id']}")).json()["playable"] is True
