"""The media behind stream_url: signed, live-session-only playlists and files with byte ranges."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
import pytest
from catalog_helpers import Client, Person, create_title, new_admin, new_user

from reelhouse.playback.media import ByteRange, RangeNotSatisfiable, parse_range
from reelhouse.playback.tokens import StreamUrlSigner

PLAYBACK = "/api/v1/playback/sessions"
RESOLUTIONS = ["480p", "720p", "1080p", "4k"]
_plans = itertools.count(1)


def file_bytes(resolution: str) -> bytes:
    """A fake rendition: any bytes do; each one different, 1000 + a few long."""
    return (bytes(range(256)) * 4)[:1000] + resolution.encode()


@dataclass
class World:
    client: Client
    admin: Person
    media_dir: Path
    title: str
    bare_title: str


@dataclass
class Stream:
    body: dict[str, Any]
    viewer: Person

    @property
    def manifest(self) -> str:
        """The stream_url as a path and query (the test client's host is its own)."""
        parts = urlsplit(self.body["stream_url"])
        return f"{parts.path}?{parts.query}"

    @property
    def query(self) -> str:
        return urlsplit(self.body["stream_url"]).query

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query))

    @property
    def content_id(self) -> str:
        return urlsplit(self.body["stream_url"]).path.split("/")[2]

    def url(self, name: str, query: str | None = None) -> str:
        return f"/media/{self.content_id}/{name}?{self.query if query is None else query}"


@pytest.fixture
async def world(make_client: Any, tmp_path: Path) -> AsyncIterator[World]:
    async with make_client(MEDIA_DIR=str(tmp_path)) as client:
        admin = await new_admin(client)
        title = await create_title(client, admin, title="Film", access_level="premium", duration_seconds=5400)
        bare = await create_title(client, admin, title="No media yet", access_level="premium")
        folder = tmp_path / title["id"]
        folder.mkdir()
        for resolution in RESOLUTIONS:
            (folder / f"{resolution}.mp4").write_bytes(file_bytes(resolution))
        yield World(client, admin, tmp_path, title["id"], bare["id"])


async def create_plan(world: World, *, resolution: str, max_devices: int = 2) -> dict[str, Any]:
    response = await world.client.post(
        "/api/v1/admin/plans",
        json={
            "name": f"Plan {next(_plans)}",
            "price": 999,
            "validity_days": 30,
            "access_level": "premium",
            "max_devices_allowed": max_devices,
            "resolution": resolution,
        },
        headers=world.admin.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def subscriber(world: World, *, resolution: str = "1080p", max_devices: int = 2) -> Person:
    plan = await create_plan(world, resolution=resolution, max_devices=max_devices)
    viewer = await new_user(world.client)
    response = await world.client.post("/api/v1/subscriptions", json={"plan_id": plan["id"]}, headers=viewer.headers)
    assert response.status_code == 201, response.text
    return viewer


async def start(world: World, viewer: Person, device_id: str = "tv", content_id: str | None = None) -> Stream:
    response = await world.client.post(
        PLAYBACK, json={"content_id": content_id or world.title, "device_id": device_id}, headers=viewer.headers
    )
    assert response.status_code == 201, response.text
    return Stream(response.json(), viewer)


async def watching(world: World, *, resolution: str = "1080p", max_devices: int = 2) -> Stream:
    return await start(world, await subscriber(world, resolution=resolution, max_devices=max_devices))


async def free_stream(client: Client, content_id: str) -> Stream:
    """A user without a subscription watching a free title (in a client of the test's own)."""
    viewer = await new_user(client)
    response = await client.post(PLAYBACK, json={"content_id": content_id, "device_id": "tv"}, headers=viewer.headers)
    assert response.status_code == 201, response.text
    return Stream(response.json(), viewer)


def variant_uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


class TestManifest:
    async def test_lists_only_the_renditions_up_to_the_plans_resolution(self, world: World) -> None:
        stream = await watching(world, resolution="1080p")
        response = await world.client.get(stream.manifest)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert response.headers["cache-control"] == "no-store"
        lines = response.text.splitlines()
        assert lines[0] == "#EXTM3U"
        assert [line for line in lines if line.startswith("#EXT-X-STREAM-INF")] == [
            "#EXT-X-STREAM-INF:BANDWIDTH=1200000,RESOLUTION=854x480",
            "#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720",
            "#EXT-X-STREAM-INF:BANDWIDTH=6000000,RESOLUTION=1920x1080",
        ]
        uris = variant_uris(response.text)
        assert [uri.split("?")[0] for uri in uris] == ["480p.m3u8", "720p.m3u8", "1080p.m3u8"]
        # Each variant carries the same signed query, so it is as protected as the manifest.
        assert all(dict(parse_qsl(uri.split("?", 1)[1])) == stream.params for uri in uris)

    async def test_a_player_can_follow_it_down_to_the_file(self, world: World) -> None:
        stream = await watching(world, resolution="720p")
        manifest_url = f"http://testserver.local{stream.manifest}"
        master = await world.client.get(manifest_url)
        top = variant_uris(master.text)[-1]
        assert top.startswith("720p.m3u8?")
        media_url = urljoin(manifest_url, top)
        media = await world.client.get(media_url)
        assert media.status_code == 200, media.text
        assert media.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in media.text
        assert "#EXTINF:5400.0," in media.text
        assert "#EXT-X-TARGETDURATION:5400" in media.text
        assert media.text.rstrip().endswith("#EXT-X-ENDLIST")
        (segment,) = variant_uris(media.text)
        assert segment.startswith("720p.mp4?")
        video = await world.client.get(urljoin(media_url, segment))
        assert video.status_code == 200, video.text
        assert video.headers["content-type"] == "video/mp4"
        assert video.content == file_bytes("720p")

    async def test_a_4k_plan_lists_every_rendition(self, world: World) -> None:
        stream = await watching(world, resolution="4k")
        response = await world.client.get(stream.manifest)
        assert [uri.split("?")[0] for uri in variant_uris(response.text)] == [f"{r}.m3u8" for r in RESOLUTIONS]
        assert "RESOLUTION=3840x2160" in response.text

    async def test_lists_only_the_files_that_exist(self, world: World) -> None:
        (world.media_dir / world.title / "720p.mp4").unlink()
        (world.media_dir / world.title / "480p.mp4").rename(world.media_dir / world.title / "480p.mp4.bak")
        stream = await watching(world, resolution="4k")
        response = await world.client.get(stream.manifest)
        assert [uri.split("?")[0] for uri in variant_uris(response.text)] == ["1080p.m3u8", "4k.m3u8"]
        assert_refused(await world.client.get(stream.url("720p.mp4")), 404, "media_not_found")
        assert_refused(await world.client.get(stream.url("720p.m3u8")), 404, "media_not_found")

    async def test_a_title_without_media_has_no_manifest(self, world: World) -> None:
        viewer = await subscriber(world)
        stream = await start(world, viewer, content_id=world.bare_title)
        assert_refused(await world.client.get(stream.manifest), 404, "media_not_found")
        assert_refused(await world.client.get(stream.url("480p.mp4")), 404, "media_not_found")

    async def test_a_title_with_media_only_above_the_plan_has_no_manifest(self, world: World) -> None:
        for resolution in ("480p", "720p"):
            (world.media_dir / world.title / f"{resolution}.mp4").unlink()
        stream = await watching(world, resolution="720p")
        response = await world.client.get(stream.manifest)
        assert_refused(response, 404, "media_not_found")
        assert "resolution" in response.json()["detail"]

    async def test_head_answers_the_headers_without_a_body(self, world: World) -> None:
        stream = await watching(world)
        full = await world.client.get(stream.manifest)
        head = await world.client.head(stream.manifest)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(full.content))
        assert head.headers["content-type"] == "application/vnd.apple.mpegurl"


class TestResolutionCap:
    async def test_a_1080p_plan_is_refused_the_4k_rendition(self, world: World) -> None:
        stream = await watching(world, resolution="1080p")
        assert "4k" not in (await world.client.get(stream.manifest)).text
        for name in ("4k.mp4", "4k.m3u8"):
            response = await world.client.get(stream.url(name))
            assert_refused(response, 403, "resolution_not_allowed")
            assert "1080p" in response.json()["detail"]
        assert (await world.client.get(stream.url("1080p.mp4"))).content == file_bytes("1080p")

    async def test_raising_the_signed_cap_breaks_the_signature(self, world: World) -> None:
        stream = await watching(world, resolution="480p")
        forged = urlencode({**stream.params, "resolution": "4k"})
        assert_refused(await world.client.get(stream.url("manifest.m3u8", forged)), 403, "invalid_stream_signature")
        assert_refused(await world.client.get(stream.url("4k.mp4", forged)), 403, "invalid_stream_signature")
        assert_refused(await world.client.get(stream.url("720p.mp4")), 403, "resolution_not_allowed")


class TestSignature:
    @pytest.mark.parametrize("field", ["user", "session", "resolution", "expires", "signature"])
    async def test_a_tampered_field_is_refused(self, world: World, field: str) -> None:
        stream = await watching(world)
        params = stream.params
        replacement = {"resolution": "480p", "expires": str(int(params["expires"]) + 1), "signature": "0" * 64}
        params[field] = replacement.get(field, "00000000-0000-0000-0000-000000000000")
        for name in ("manifest.m3u8", "1080p.mp4", "1080p.m3u8"):
            assert_refused(await world.client.get(stream.url(name, urlencode(params))), 403, "invalid_stream_signature")

    @pytest.mark.parametrize("missing", ["user", "session", "resolution", "expires", "signature"])
    async def test_a_missing_field_is_refused(self, world: World, missing: str) -> None:
        stream = await watching(world)
        params = stream.params
        del params[missing]
        assert_refused(
            await world.client.get(stream.url("manifest.m3u8", urlencode(params))), 403, "invalid_stream_signature"
        )

    @pytest.mark.parametrize(
        "query",
        ["", "signature=", "signature=é", "signature=%00%ff", "expires=soon&signature=abc", "signature=" + "é" * 64],
    )
    async def test_garbage_is_refused_never_a_server_error(self, world: World, query: str) -> None:
        stream = await watching(world)
        for name in ("manifest.m3u8", "480p.mp4"):
            assert_refused(await world.client.get(stream.url(name, query)), 403, "invalid_stream_signature")

    async def test_a_non_ascii_signature_alongside_valid_fields(self, world: World) -> None:
        stream = await watching(world)
        params = {**stream.params, "signature": "é" * 64}
        assert_refused(
            await world.client.get(stream.url("manifest.m3u8", urlencode(params))), 403, "invalid_stream_signature"
        )

    async def test_a_url_for_one_title_does_not_open_another(self, world: World) -> None:
        stream = await watching(world)
        other = f"/media/{world.bare_title}/manifest.m3u8?{stream.query}"
        assert_refused(await world.client.get(other), 403, "invalid_stream_signature")

    async def test_an_expired_url_is_refused(self, world: World) -> None:
        stream = await watching(world)
        secret = world.client.app.state.components.settings.auth.jwt_secret
        expired = StreamUrlSigner(secret, ttl_seconds=-5).query(
            user_id=stream.params["user"],
            session_id=stream.params["session"],
            content_id=world.title,
            max_resolution="1080p",
        )
        for name in ("manifest.m3u8", "1080p.m3u8", "1080p.mp4"):
            assert_refused(await world.client.get(stream.url(name, expired)), 403, "stream_url_expired")
        assert (await world.client.get(stream.manifest)).status_code == 200

    async def test_the_url_expires_after_its_ttl(self, make_client: Any, tmp_path: Path) -> None:
        async with make_client(MEDIA_DIR=str(tmp_path), STREAM_URL_TTL_SECONDS="1") as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, title="Short-lived", access_level="free")
            (tmp_path / title["id"]).mkdir()
            (tmp_path / title["id"] / "480p.mp4").write_bytes(file_bytes("480p"))
            stream = await free_stream(client, title["id"])
            expires = int(stream.params["expires"])
            assert expires <= time.time() + 1
            await asyncio.sleep(max(0.0, expires - time.time()) + 1.05)
            assert_refused(await client.get(stream.manifest), 403, "stream_url_expired")

    async def test_no_access_token_is_needed_and_a_bad_one_is_ignored(self, world: World) -> None:
        stream = await watching(world)
        assert (await world.client.get(stream.manifest)).status_code == 200
        bogus = {"Authorization": "Bearer not-a-token"}
        assert (await world.client.get(stream.manifest, headers=bogus)).status_code == 200
        # The signature is the credential: the viewer's own access token does not replace it.
        unsigned = f"/media/{world.title}/manifest.m3u8"
        assert_refused(await world.client.get(unsigned, headers=stream.viewer.headers), 403, "invalid_stream_signature")


class TestLiveSession:
    async def test_a_stopped_stream_loses_its_media(self, world: World) -> None:
        stream = await watching(world)
        assert (await world.client.get(stream.manifest)).status_code == 200
        stopped = await world.client.delete(f"{PLAYBACK}/{stream.body['session_id']}", headers=stream.viewer.headers)
        assert stopped.status_code == 204
        for name in ("manifest.m3u8", "1080p.m3u8", "1080p.mp4"):
            assert_refused(await world.client.get(stream.url(name)), 403, "stream_ended")
        assert_refused(
            await world.client.get(stream.url("1080p.mp4"), headers={"Range": "bytes=0-9"}), 403, "stream_ended"
        )

    async def test_an_evicted_device_loses_its_media_and_the_new_one_plays(self, world: World) -> None:
        viewer = await subscriber(world, max_devices=1)
        tv = await start(world, viewer, "tv")
        assert (await world.client.get(tv.url("720p.mp4"))).status_code == 200
        phone = await start(world, viewer, "phone")
        assert [e["device_id"] for e in phone.body["evicted"]] == ["tv"]
        assert_refused(await world.client.get(tv.manifest), 403, "stream_ended")
        assert_refused(await world.client.get(tv.url("720p.mp4")), 403, "stream_ended")
        assert (await world.client.get(phone.manifest)).status_code == 200
        assert (await world.client.get(phone.url("720p.mp4"))).content == file_bytes("720p")

    async def test_an_administrator_ending_the_stream_ends_its_media(self, world: World) -> None:
        stream = await watching(world)
        ended = await world.client.delete(
            f"/api/v1/admin/playback/sessions/{stream.body['session_id']}", headers=world.admin.headers
        )
        assert ended.status_code == 204
        assert_refused(await world.client.get(stream.manifest), 403, "stream_ended")

    async def test_a_replaced_stream_on_the_same_device_ends_its_media(self, world: World) -> None:
        viewer = await subscriber(world)
        first = await start(world, viewer, "tv")
        second = await start(world, viewer, "tv", content_id=world.bare_title)
        assert second.body["evicted"][0]["reason"] == "replaced"
        assert_refused(await world.client.get(first.manifest), 403, "stream_ended")

    async def test_a_stream_silent_past_its_grace_period_loses_its_media(
        self, make_client: Any, tmp_path: Path
    ) -> None:
        settings = {"MEDIA_DIR": str(tmp_path), "HEARTBEAT_INTERVAL_SECONDS": "1", "HEARTBEAT_GRACE_INTERVALS": "1"}
        async with make_client(**settings) as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, title="Quiet", access_level="free")
            (tmp_path / title["id"]).mkdir()
            (tmp_path / title["id"] / "480p.mp4").write_bytes(file_bytes("480p"))
            stream = await free_stream(client, title["id"])
            assert (await client.get(stream.manifest)).status_code == 200
            await asyncio.sleep(1.3)
            assert_refused(await client.get(stream.manifest), 403, "stream_ended")


class TestRanges:
    SIZE = len(file_bytes("1080p"))

    @pytest.fixture
    async def video(self, world: World) -> str:
        stream = await watching(world)
        return stream.url("1080p.mp4")

    async def test_a_full_get(self, world: World, video: str) -> None:
        response = await world.client.get(video)
        assert response.status_code == 200
        assert response.content == file_bytes("1080p")
        assert response.headers["content-length"] == str(self.SIZE)
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["content-type"] == "video/mp4"
        assert "content-range" not in response.headers
        assert response.headers["etag"]
        assert response.headers["last-modified"].endswith("GMT")

    @pytest.mark.parametrize(
        ("header", "start", "end"),
        [
            ("bytes=0-9", 0, 9),
            ("bytes=100-199", 100, 199),
            ("bytes=990-", 990, None),
            ("bytes=-5", -5, None),
            ("bytes=0-", 0, None),
            ("bytes=10-99999", 10, None),
            ("bytes=-99999", 0, None),
            ("BYTES=3-3", 3, 3),
        ],
    )
    async def test_a_partial_get(self, world: World, video: str, header: str, start: int, end: int | None) -> None:
        data = file_bytes("1080p")
        expected = data[start : None if end is None else end + 1]
        first = start % self.SIZE
        last = first + len(expected) - 1
        response = await world.client.get(video, headers={"Range": header})
        assert response.status_code == 206, response.text
        assert response.content == expected
        assert response.headers["content-length"] == str(len(expected))
        assert response.headers["content-range"] == f"bytes {first}-{last}/{self.SIZE}"
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["content-type"] == "video/mp4"

    @pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
    async def test_an_unsatisfiable_range_is_416(self, world: World, video: str, header: str) -> None:
        response = await world.client.get(video, headers={"Range": header})
        assert_refused(response, 416, "range_not_satisfiable")
        assert response.headers["content-range"] == f"bytes */{self.SIZE}"

    @pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "items=0-9", "bytes=", "bytes=-", "bytes=a-b"])
    async def test_other_ranges_are_ignored_and_the_whole_file_sent(
        self, world: World, video: str, header: str
    ) -> None:
        response = await world.client.get(video, headers={"Range": header})
        assert response.status_code == 200
        assert response.content == file_bytes("1080p")

    async def test_if_range_sends_the_part_only_while_the_file_is_unchanged(self, world: World, video: str) -> None:
        etag = (await world.client.get(video)).headers["etag"]
        same = await world.client.get(video, headers={"Range": "bytes=0-9", "If-Range": etag})
        assert same.status_code == 206
        assert len(same.content) == 10
        changed = await world.client.get(video, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
        assert changed.status_code == 200
        assert changed.content == file_bytes("1080p")

    async def test_head_gives_the_size_without_the_body(self, world: World, video: str) -> None:
        whole = await world.client.head(video)
        assert whole.status_code == 200
        assert whole.content == b""
        assert whole.headers["content-length"] == str(self.SIZE)
        assert whole.headers["accept-ranges"] == "bytes"
        part = await world.client.head(video, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 10-19/{self.SIZE}"
        assert part.headers["content-length"] == "10"

    async def test_a_large_file_streams_in_chunks(self, world: World) -> None:
        data = bytes(range(256)) * 8192  # 2 MiB: several read chunks
        (world.media_dir / world.title / "480p.mp4").write_bytes(data)
        stream = await watching(world)
        whole = await world.client.get(stream.url("480p.mp4"))
        assert whole.content == data
        middle = await world.client.get(stream.url("480p.mp4"), headers={"Range": "bytes=500000-1600000"})
        assert middle.status_code == 206
        assert middle.content == data[500000:1600001]


class TestPlayerTraffic:
    async def test_many_requests_are_not_rate_limited_by_the_anonymous_bucket(
        self, make_client: Any, tmp_path: Path
    ) -> None:
        limits = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "3", "MEDIA_DIR": str(tmp_path)}
        async with make_client(**limits) as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, title="Binge", access_level="free")
            (tmp_path / title["id"]).mkdir()
            (tmp_path / title["id"] / "480p.mp4").write_bytes(file_bytes("480p"))
            stream = await free_stream(client, title["id"])
            for offset in range(0, 200, 10):
                part = await client.get(stream.url("480p.mp4"), headers={"Range": f"bytes={offset}-{offset + 9}"})
                assert part.status_code == 206, part.text
            assert (await client.get(stream.manifest)).status_code == 200


class TestPaths:
    @pytest.mark.parametrize(
        "name",
        [
            "..%2F..%2F..%2Fetc%2Fpasswd",
            "%2e%2e",
            "..",
            "720P.mp4",
            "720p.mp4.bak",
            "720p.MP4",
            "720p",
            "720p.mov",
            "8k.mp4",
            "manifest.m3u",
            "%2e%2e%2f4k.mp4",
            "720p.mp4%00",
        ],
    )
    async def test_only_our_names_are_media(self, world: World, name: str) -> None:
        stream = await watching(world)
        response = await world.client.get(f"/media/{world.title}/{name}?{stream.query}")
        assert response.status_code == 404, (name, response.status_code, response.text)
        assert response.json()["code"] in ("not_found", "media_not_found")

    @pytest.mark.parametrize("content_id", ["not-a-uuid", "..", "%2e%2e%2f%2e%2e", "x" * 40])
    async def test_the_title_must_be_a_uuid(self, world: World, content_id: str) -> None:
        stream = await watching(world)
        response = await world.client.get(f"/media/{content_id}/manifest.m3u8?{stream.query}")
        assert response.status_code == 404, (content_id, response.status_code)

    async def test_a_rendition_must_be_a_regular_file(self, world: World) -> None:
        folder = world.media_dir / world.title
        (folder / "720p.mp4").unlink()
        (folder / "720p.mp4").mkdir()
        stream = await watching(world)
        assert_refused(await world.client.get(stream.url("720p.mp4")), 404, "media_not_found")
        assert "720p" not in (await world.client.get(stream.manifest)).text


class TestParseRange:
    """The Range header, as :func:`parse_range` reads it (no app needed)."""

    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            (None, None),
            ("bytes=0-9", ByteRange(0, 9)),
            ("bytes=5-", ByteRange(5, 99)),
            ("bytes=-10", ByteRange(90, 99)),
            ("bytes=-1000", ByteRange(0, 99)),
            ("bytes=90-1000", ByteRange(90, 99)),
            ("bytes=99-99", ByteRange(99, 99)),
            (" bytes=1-2 ", ByteRange(1, 2)),
            ("bytes=" + "0" * 5000 + "7-8", ByteRange(7, 8)),
            ("bytes=1-" + "9" * 5000, ByteRange(1, 99)),
            ("bytes=0-1, 3-4", None),
            ("bytes=5-4", None),
            ("bytes=1 - 2", None),
            ("bytes=٣-٤", None),
            ("pages=1-2", None),
            ("", None),
        ],
    )
    def test_ranges(self, header: str | None, expected: ByteRange | None) -> None:
        assert parse_range(header, 100) == expected

    @pytest.mark.parametrize(
        ("header", "size"),
        [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-0", 0), ("bytes=-5", 0), ("bytes=" + "9" * 5000 + "-", 100)],
    )
    def test_unsatisfiable(self, header: str, size: int) -> None:
        with pytest.raises(RangeNotSatisfiable) as refused:
            parse_range(header, size)
        assert refused.value.headers["Content-Range"] == f"bytes */{size}"
