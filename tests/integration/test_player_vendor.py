"""hls.js for the web player: served at /player/vendor/ from PLAYER_VENDOR_DIR (where the scripts'
``npm ci`` puts the pinned package), only its built files, under the player's strict CSP; 404
(``hls_js_not_installed``) when it is not installed, so the page falls back to native HLS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import ROOT, ClientFactory
from reelhouse.player.routes import VENDOR_FILES

VENDOR = "/player/vendor"
LIBRARY = b"!function(){/* hls.js */}();\n//# sourceMappingURL=hls.min.js.map\n"
WORKER = b"/* hls.js transmuxer worker */\n"


@pytest.fixture
def vendor_dir(tmp_path: Path) -> Path:
    """A stand-in for node_modules/hls.js/dist: the files the page needs and one it does not."""
    folder = tmp_path / "hls-dist"
    folder.mkdir()
    (folder / "hls.min.js").write_bytes(LIBRARY)
    (folder / "hls.min.js.map").write_text('{"version": 3}')
    (folder / "hls.worker.js").write_bytes(WORKER)
    (folder / "hls-demo.js").write_text("/* the package's demo page */")
    return folder


def csp_directives(header: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in header.split(";")) if part}


async def test_hls_js_is_served_with_the_players_policy(make_client: ClientFactory, vendor_dir: Path) -> None:
    async with make_client(PLAYER_VENDOR_DIR=str(vendor_dir)) as client:
        library = await client.get(f"{VENDOR}/hls.min.js")
        worker = await client.get(f"{VENDOR}/hls.worker.js")
        source_map = await client.get(f"{VENDOR}/hls.min.js.map")
        page = await client.get("/player/")
    assert library.status_code == 200
    assert library.content == LIBRARY
    assert library.headers["content-type"].startswith("text/javascript")
    assert worker.content == WORKER
    assert source_map.headers["content-type"] == "application/json"
    for response in (library, worker, source_map, page):
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-content-type-options"] == "nosniff"
        policy = csp_directives(response.headers["content-security-policy"])
        assert policy["script-src"] == "'self'"
        # hls.js's worker comes from this origin (workerPath), and feeds <video> through a blob: MediaSource.
        assert policy["worker-src"] == "'self'"
        assert policy["media-src"] == "'self' blob:"
        assert "unsafe-eval" not in response.headers["content-security-policy"]


async def test_segments_served_off_the_api_are_allowed_by_the_players_policy(
    make_client: ClientFactory, vendor_dir: Path
) -> None:
    """With MEDIA_PUBLIC_BASE_URL the page loads segments from that origin: the video element
    natively (media-src) and hls.js by fetching them (connect-src)."""
    base = {"MEDIA_ENCRYPTION": "aes-128", "MEDIA_PUBLIC_BASE_URL": "https://cdn.example.com:8443/reelhouse/media"}
    async with make_client(PLAYER_VENDOR_DIR=str(vendor_dir), **base) as client:
        page = await client.get("/player/")
        library = await client.get(f"{VENDOR}/hls.min.js")
    for response in (page, library):
        policy = csp_directives(response.headers["content-security-policy"])
        assert policy["media-src"] == "'self' blob: https://cdn.example.com:8443"
        assert policy["connect-src"] == "'self' ws: wss: https://cdn.example.com:8443"
        assert policy["script-src"] == "'self'"


async def test_only_hls_js_built_files_are_served(make_client: ClientFactory, vendor_dir: Path) -> None:
    async with make_client(PLAYER_VENDOR_DIR=str(vendor_dir)) as client:
        for name in ("hls-demo.js", "hls.js", "..%2Fhls-demo.js", "package.json"):
            response = await client.get(f"{VENDOR}/{name}")
            assert response.status_code == 404, name
            assert response.json()["code"] == "not_found"


async def test_without_hls_js_the_route_says_so_and_the_player_still_loads(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    async with make_client(PLAYER_VENDOR_DIR=str(tmp_path / "not-installed")) as client:
        missing = await client.get(f"{VENDOR}/hls.min.js")
        page = await client.get("/player/")
        script = await client.get("/player/app.js")
    assert missing.status_code == 404
    assert missing.json()["code"] == "hls_js_not_installed"
    assert "natively" in missing.json()["detail"]
    assert page.status_code == 200
    assert script.status_code == 200


def test_the_image_and_the_package_carry_every_file_the_route_serves() -> None:
    """The Dockerfile copies each served file of hls.js's dist into the image, and package.json pins
    hls.js (an exact version) as a dependency, so the image and scripts/run both have it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in VENDOR_FILES:
        assert re.search(rf"/build/node_modules/hls\.js/dist/{re.escape(name)}\s", dockerfile), name
    package = json.loads((ROOT / "package.json").read_text())
    assert re.fullmatch(r"1\.\d+\.\d+", package["dependencies"]["hls.js"])
    assert re.fullmatch(r"4\.\d+\.\d+", package["devDependencies"]["tus-js-client"])
    assert f"now {package['dependencies']['hls.js']})" in (ROOT / "README.md").read_text()
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/hls.js"]["version"] == package["dependencies"]["hls.js"]
    assert lock["packages"]["node_modules/tus-js-client"]["version"] == package["devDependencies"]["tus-js-client"]
