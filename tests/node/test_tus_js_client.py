"""The tus upload endpoint driven by the real tus-js-client (``tests/node/tus_upload.mjs``, Node.js)
against a real server process: an administrator's upload, interrupted after the first chunk and
resumed by a new Upload from the stored URL, reaches ready media with every byte sent once.

tus-js-client is the pinned development npm package (``package.json``) that ``scripts/test``
installs with ``npm ci``; without Node.js or it the test is skipped, saying why (under ``CI`` it
fails). Runs on the embedded backends (the endpoint's PostgreSQL side is covered, with a plain
HTTP client, by ``tests/integration/test_media_ingest.py``).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ROOT
from helpers import tool_missing
from servers import running_servers, server_environ

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("tus_upload.mjs")
TUS_JS_CLIENT = ROOT / "node_modules" / "tus-js-client" / "package.json"
ADMIN_EMAIL = "uploads@example.com"
ADMIN_PASSWORD = "tus-js-client-admin-0123"
CHUNK_BYTES = 256 * 1024


@pytest.fixture
def node() -> str:
    executable = shutil.which("node")
    missing = None
    if executable is None:
        missing = "Node.js is not installed (Debian: apt-get install nodejs npm; scripts/test installs it as root)"
    elif not TUS_JS_CLIENT.is_file():
        missing = f"tus-js-client is not installed in {TUS_JS_CLIENT.parent.parent}: run `npm ci` (scripts/test does)"
    if missing is not None:
        tool_missing(missing)
    assert executable is not None
    return executable


@pytest.fixture
def server(tmp_path: Path) -> Any:
    environ = server_environ(
        tmp_path,
        ADMIN_EMAIL=ADMIN_EMAIL,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        MEDIA_DIR=str(tmp_path / "media"),
        TUS_MAX_CHUNK_BYTES=str(CHUNK_BYTES),
        MEDIA_POLL_SECONDS="0.2",
        MEDIA_ENCODER_PRESET="superfast",
    )
    with running_servers(environ, 1, tmp_path) as (url,):
        yield url


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def test_an_interrupted_tus_js_client_upload_resumes_and_the_title_plays(
    node: str, server: str, shared_media: Any, tmp_path: Path
) -> None:
    shared_media.directory()  # the run's shared 6 s 1280x720 clip with sound, made once
    video = shared_media.workspace / "shared-source.mp4"
    size = video.stat().st_size
    assert size > 3 * CHUNK_BYTES  # several chunks, so the interruption leaves some to resume
    with httpx.Client(base_url=server, timeout=30) as client:
        signed_in = ok(client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        admin = {"Authorization": f"Bearer {signed_in['token']}"}
        title = {
            "title": "Uploaded with tus-js-client",
            "description": "An administrator's upload.",
            "access_level": "free",
            "duration_seconds": 60,
            "video_url": "clip.mp4",
            "genres": [],
            "published": True,
        }
        content_id = ok(client.post("/api/v1/admin/content", json=title, headers=admin), 201)["id"]

        run = subprocess.run(
            [node, str(SCRIPT), server, str(video), content_id, str(tmp_path / "tus-urls.json")],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REELHOUSE_ADMIN_TOKEN": signed_in["token"]},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads(run.stdout)

        # tus-js-client sized its chunks by the advertised Tus-Max-Chunk-Size.
        assert report["chunk_size"] == CHUNK_BYTES
        assert report["size"] == size
        by_phase: dict[str, list[dict[str, Any]]] = {"interrupted": [], "resumed": []}
        for request in report["requests"]:
            by_phase[request["phase"]].append(request)

        # The first Upload created the upload and sent one chunk before it was stopped.
        first = by_phase["interrupted"]
        assert [(r["method"], r["status"]) for r in first] == [("POST", 201), ("PATCH", 204)]
        assert first[1]["sent_offset"] == "0"
        assert first[1]["offset"] == str(CHUNK_BYTES)
        assert report["interrupted"]["accepted"] == CHUNK_BYTES
        upload_url = report["interrupted"]["url"]
        assert httpx.URL(upload_url).path.startswith("/api/v1/admin/uploads/")

        # The new Upload found the stored URL, asked the server where to go on (HEAD), and sent the rest.
        assert report["stored_uploads_found"] == 1
        assert report["resumed_url"] == upload_url
        resumed = by_phase["resumed"]
        assert (resumed[0]["method"], resumed[0]["status"], resumed[0]["offset"]) == ("HEAD", 200, str(CHUNK_BYTES))
        patches = resumed[1:]
        assert {(r["method"], r["status"]) for r in patches} == {("PATCH", 204)}
        assert patches[0]["sent_offset"] == str(CHUNK_BYTES)
        for before, after in itertools.pairwise(patches):
            assert after["sent_offset"] == before["offset"]
        assert patches[-1]["offset"] == str(size)
        # Every byte went once: the accepted ranges add up to the file.
        sent = [int(r["offset"]) - int(r["sent_offset"]) for r in [first[1], *patches]]
        assert sum(sent) == size
        assert max(sent) <= CHUNK_BYTES
        assert len(patches) == -(-(size - CHUNK_BYTES) // CHUNK_BYTES)
        # Finished uploads leave nothing to resume in the client's store.
        assert report["stored_uploads_left"] == 0

        # The last byte queued the media job; the title's media becomes ready and the title playable.
        deadline = time.monotonic() + 180
        while True:
            media = ok(client.get(f"/api/v1/admin/content/{content_id}/media", headers=admin))
            assert media["status"] != "failed", media
            if media["status"] == "ready":
                break
            assert time.monotonic() < deadline, f"the uploaded media never became ready: {media}"
            time.sleep(0.2)
        assert media["duration_seconds"] == pytest.approx(6.0, abs=0.1)
        assert [r["resolution"] for r in media["renditions"]] == ["480p", "720p"]
        assert ok(client.get(f"/api/v1/content/{content_id}"))["playable"] is True
