"""Delivery that follows the session: the HLS behind stream_url, authorized per request.

Titles play the run's shared processed clip (480p and 720p, transcoded once per run; see
``catalog_helpers.create_title``), so these tests never transcode.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
import pytest
from catalog_helpers import Client, Person, create_title, give_media, new_admin, new_user

from helpers import in_app_loop
from media_validation import validate_master_playlist, validate_media_playlist
from reelhouse.media import read_manifest
from reelhouse.media.encryption import decrypt_segment, encrypt_media
from reelhouse.playback.media import ByteRange, MediaAccess, RangeNotSatisfiable, parse_range
from reelhouse.playback.tokens import StreamUrlSigner

PLAYBACK = "/api/v1/playback/sessions"
_plans = itertools.count(1)


@dataclass
class World:
    client: Client
    admin: Person
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
async def world(make_client: Any) -> AsyncIterator[World]:
    async with make_client() as client:
        admin = await new_admin(client)
        title = await create_title(client, admin, title="Film", access_level="premium", duration_seconds=5400)
        bare = await create_title(client, admin, media=False, title="No media yet", access_level="premium")
        yield World(client, admin, title["id"], bare["id"])


async def create_plan(
    world: World, *, resolution: str, max_devices: int = 2, access_level: str = "premium"
) -> dict[str, Any]:
    response = await world.client.post(
        "/api/v1/admin/plans",
        json={
            "name": f"Plan {next(_plans)}",
            "price": 999,
            "validity_days": 30,
            "access_level": access_level,
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


async def change_plan_to(world: World, viewer: Person, plan: dict[str, Any]) -> None:
    active = await world.client.get("/api/v1/subscriptions/active", headers=viewer.headers)
    assert active.status_code == 200, active.text
    response = await world.client.post(
        f"/api/v1/subscriptions/{active.json()['id']}/change-plan", json={"plan_id": plan["id"]}, headers=viewer.headers
    )
    assert response.status_code in (200, 201), response.text


async def start(world: World, viewer: Person, device_id: str = "tv", content_id: str | None = None) -> Stream:
    response = await world.client.post(
        PLAYBACK, json={"content_id": content_id or world.title, "device_id": device_id}, headers=viewer.headers
    )
    assert response.status_code == 201, response.text
    return Stream(response.json(), viewer)


async def watching(world: World, *, resolution: str = "1080p", max_devices: int = 2) -> Stream:
    return await start(world, await subscriber(world, resolution=resolution, max_devices=max_devices))


def uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def init_uri(playlist: str) -> str:
    line = next(line for line in playlist.splitlines() if line.startswith("#EXT-X-MAP:"))
    return line.split('URI="', 1)[1].rstrip('"')


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def fetch_text(client: Client, url: str) -> str:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.text


class TestMasterPlaylist:
    async def test_a_player_follows_it_down_to_every_segment(self, world: World) -> None:
        stream = await watching(world, resolution="1080p")
        response = await world.client.get(stream.manifest)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        assert response.headers["cache-control"] == "no-store"
        media_playlists: dict[str, str] = {}
        for uri in uris(response.text):
            url = urljoin(stream.manifest, uri)
            media_playlists[uri] = await fetch_text(world.client, url)
        validate_master_playlist(response.text, lambda uri: media_playlists[uri])
        assert sorted(uri.split("/")[0] for uri in media_playlists) == ["480p", "720p"]
        for uri, text in media_playlists.items():
            base = urljoin(stream.manifest, uri)
            validate_media_playlist(text)
            for segment_uri in [init_uri(text), *uris(text)]:
                segment = await world.client.get(urljoin(base, segment_uri))
                assert segment.status_code == 200, segment.text
                assert segment.headers["content-type"] == "video/mp4"
                assert "immutable" in segment.headers["cache-control"]
                assert "private" in segment.headers["cache-control"]
                assert int(segment.headers["content-length"]) == len(segment.content) > 0

    async def test_lists_only_the_renditions_within_the_plan(self, world: World) -> None:
        stream = await watching(world, resolution="480p")
        master = await fetch_text(world.client, stream.manifest)
        assert [uri.split("?")[0] for uri in uris(master)] == ["480p/index.m3u8"]
        assert "RESOLUTION=854x480" in master
        assert "1280x720" not in master

    async def test_head_answers_the_headers_without_a_body(self, world: World) -> None:
        stream = await watching(world)
        response = await world.client.head(stream.manifest)
        assert response.status_code == 200
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0


class TestResolutionCap:
    async def test_a_rendition_above_the_plan_is_refused_at_every_level(self, world: World) -> None:
        stream = await watching(world, resolution="480p")
        allowed = await fetch_text(world.client, stream.url("480p/index.m3u8"))
        for name in ("720p/index.m3u8", "720p/init.mp4", "720p/seg_00000.m4s"):
            assert_refused(await world.client.get(stream.url(name)), 403, "resolution_not_allowed")
        assert uris(allowed)

    async def test_raising_the_signed_cap_breaks_the_signature(self, world: World) -> None:
        stream = await watching(world, resolution="480p")
        params = {**stream.params, "resolution": "720p"}
        assert_refused(
            await world.client.get(stream.url("720p/index.m3u8", urlencode(params))), 403, "invalid_stream_signature"
        )

    async def test_a_downgrade_lowers_the_cap_and_the_stream_goes_on(self, world: World) -> None:
        stream = await watching(world, resolution="1080p")
        assert (await world.client.get(stream.url("720p/index.m3u8"))).status_code == 200
        await change_plan_to(world, stream.viewer, await create_plan(world, resolution="480p"))
        assert_refused(await world.client.get(stream.url("720p/index.m3u8")), 403, "resolution_not_allowed")
        assert_refused(await world.client.get(stream.url("720p/seg_00000.m4s")), 403, "resolution_not_allowed")
        assert (await world.client.get(stream.url("480p/index.m3u8"))).status_code == 200
        master = await fetch_text(world.client, stream.manifest)
        assert [uri.split("/")[0] for uri in uris(master)] == ["480p"]


class TestSignature:
    @pytest.mark.parametrize("field", ["user", "session", "resolution", "expires", "signature"])
    async def test_a_tampered_field_is_refused(self, world: World, field: str) -> None:
        stream = await watching(world)
        params = stream.params
        replacement = {"resolution": "480p", "expires": str(int(params["expires"]) + 1), "signature": "0" * 64}
        params[field] = replacement.get(field, "00000000-0000-0000-0000-000000000000")
        for name in ("manifest.m3u8", "480p/index.m3u8", "480p/seg_00000.m4s"):
            assert_refused(await world.client.get(stream.url(name, urlencode(params))), 403, "invalid_stream_signature")

    @pytest.mark.parametrize(
        "query",
        ["", "signature=", "signature=é", "signature=%00%ff", "expires=soon&signature=abc", "signature=" + "é" * 64],
    )
    async def test_garbage_is_refused_never_a_server_error(self, world: World, query: str) -> None:
        stream = await watching(world)
        for name in ("manifest.m3u8", "480p/init.mp4"):
            assert_refused(await world.client.get(stream.url(name, query)), 403, "invalid_stream_signature")

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
            media_asset_id=stream.params["media"],
        )
        for name in ("manifest.m3u8", "480p/index.m3u8", "480p/seg_00000.m4s"):
            assert_refused(await world.client.get(stream.url(name, expired)), 403, "stream_url_expired")
        assert (await world.client.get(stream.manifest)).status_code == 200

    async def test_no_access_token_is_needed_and_a_bad_one_is_ignored(self, world: World) -> None:
        stream = await watching(world)
        assert (await world.client.get(stream.manifest, headers={"Authorization": "Bearer nope"})).status_code == 200
        unsigned = f"/media/{world.title}/manifest.m3u8"
        assert_refused(await world.client.get(unsigned, headers=stream.viewer.headers), 403, "invalid_stream_signature")


class TestLiveSession:
    async def test_a_stopped_stream_answers_403_stopped_everywhere(self, world: World) -> None:
        stream = await watching(world)
        assert (await world.client.get(stream.manifest)).status_code == 200
        stopped = await world.client.delete(f"{PLAYBACK}/{stream.body['session_id']}", headers=stream.viewer.headers)
        assert stopped.status_code == 204
        for name in ("manifest.m3u8", "480p/index.m3u8", "480p/init.mp4", "480p/seg_00000.m4s"):
            assert_refused(await world.client.get(stream.url(name)), 403, "stopped")

    async def test_an_evicted_device_loses_its_media_and_the_new_one_plays(self, world: World) -> None:
        viewer = await subscriber(world, max_devices=1)
        tv = await start(world, viewer, "tv")
        assert (await world.client.get(tv.url("720p/seg_00000.m4s"))).status_code == 200
        phone = await start(world, viewer, "phone")
        assert [e["device_id"] for e in phone.body["evicted"]] == ["tv"]
        assert_refused(await world.client.get(tv.manifest), 403, "stream_limit")
        assert_refused(await world.client.get(tv.url("720p/seg_00000.m4s")), 403, "stream_limit")
        assert (await world.client.get(phone.url("720p/seg_00000.m4s"))).status_code == 200

    async def test_an_administrator_ending_the_stream_ends_its_media(self, world: World) -> None:
        stream = await watching(world)
        ended = await world.client.delete(
            f"/api/v1/admin/playback/sessions/{stream.body['session_id']}", headers=world.admin.headers
        )
        assert ended.status_code == 204
        assert_refused(await world.client.get(stream.url("480p/seg_00000.m4s")), 403, "admin")

    async def test_signing_out_everywhere_ends_its_media(self, world: World) -> None:
        stream = await watching(world)
        response = await world.client.post("/api/v1/auth/logout-all", headers=stream.viewer.headers)
        assert response.status_code in (200, 204), response.text
        assert_refused(await world.client.get(stream.url("480p/index.m3u8")), 403, "signed_out")

    async def test_a_plan_that_no_longer_covers_the_title_ends_its_media(self, world: World) -> None:
        stream = await watching(world)
        await change_plan_to(world, stream.viewer, await create_plan(world, resolution="1080p", access_level="basic"))
        response = await world.client.get(stream.url("480p/seg_00000.m4s"))
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "subscription_ended"

    async def test_a_stream_silent_past_its_grace_period_loses_its_media(self, make_client: Any) -> None:
        async with make_client(HEARTBEAT_INTERVAL_SECONDS="1", HEARTBEAT_GRACE_INTERVALS="1") as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, title="Quiet", access_level="free")
            viewer = await new_user(client)
            body = (
                await client.post(PLAYBACK, json={"content_id": title["id"], "device_id": "tv"}, headers=viewer.headers)
            ).json()
            stream = Stream(body, viewer)
            assert (await client.get(stream.manifest)).status_code == 200
            await asyncio.sleep(1.3)
            assert_refused(await client.get(stream.manifest), 403, "expired")


class TestSegments:
    async def test_a_partial_get_of_a_segment(self, world: World) -> None:
        stream = await watching(world)
        whole = await world.client.get(stream.url("480p/seg_00000.m4s"))
        part = await world.client.get(stream.url("480p/seg_00000.m4s"), headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.content == whole.content[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(whole.content)}"

    @pytest.mark.parametrize(
        "name",
        ["480p/seg_99999.m4s", "480p/../manifest.json", "480p/index.m3u8x", "999p/index.m3u8", "480p/poster.jpg"],
    )
    async def test_only_files_the_manifest_lists_are_served(self, world: World, name: str) -> None:
        stream = await watching(world)
        response = await world.client.get(stream.url(name))
        assert response.status_code == 404, response.text

    async def test_many_requests_are_not_rate_limited(self, make_client: Any) -> None:
        async with make_client(RATE_LIMIT_ENABLED="true", RATE_LIMIT_ANONYMOUS_PER_MINUTE="5") as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, title="Busy", access_level="free")
            viewer = await new_user(client)
            body = (
                await client.post(PLAYBACK, json={"content_id": title["id"], "device_id": "tv"}, headers=viewer.headers)
            ).json()
            stream = Stream(body, viewer)
            for _ in range(12):
                assert (await client.get(stream.url("480p/seg_00000.m4s"))).status_code == 200


class TestStartNeedsReadyMedia:
    async def test_a_title_without_ready_media_answers_409_before_any_screen_is_used(self, world: World) -> None:
        viewer = await subscriber(world, max_devices=1)
        playing = await start(world, viewer, "tv")
        response = await world.client.post(
            PLAYBACK, json={"content_id": world.bare_title, "device_id": "phone"}, headers=viewer.headers
        )
        assert_refused(response, 409, "media_not_ready")
        # The one screen is still the tv's: nothing was admitted or evicted.
        assert (await world.client.get(playing.manifest)).status_code == 200

    async def test_the_plan_is_checked_before_the_media(self, world: World) -> None:
        viewer = await new_user(world.client)  # no subscription: premium is not covered
        response = await world.client.post(
            PLAYBACK, json={"content_id": world.bare_title, "device_id": "tv"}, headers=viewer.headers
        )
        assert_refused(response, 403, response.json()["code"])
        assert response.json()["code"] != "media_not_ready"

    async def test_titles_say_whether_they_are_playable(self, world: World) -> None:
        assert (await world.client.get(f"/api/v1/content/{world.title}")).json()["playable"] is True
        assert (await world.client.get(f"/api/v1/content/{world.bare_title}")).json()["playable"] is False

    async def test_removing_the_media_makes_the_title_unplayable(self, world: World) -> None:
        stream = await watching(world)
        response = await world.client.delete(f"/api/v1/admin/content/{world.title}/media", headers=world.admin.headers)
        assert response.status_code == 204, response.text
        state = (
            await world.client.get(f"/api/v1/admin/content/{world.title}/media", headers=world.admin.headers)
        ).json()
        assert state["status"] == "none"
        assert (await world.client.get(f"/api/v1/content/{world.title}")).json()["playable"] is False
        viewer = await subscriber(world)
        refused = await world.client.post(
            PLAYBACK, json={"content_id": world.title, "device_id": "x"}, headers=viewer.headers
        )
        assert_refused(refused, 409, "media_not_ready")
        await asyncio.sleep(2.1)  # the delivery's lookup of a title's media is trusted this long
        assert_refused(await world.client.get(stream.manifest), 404, "media_not_found")


def replacement_media(world: World, directory: Path) -> str:
    """Another processed copy of the shared clip whose first 480p segment differs (it holds the
    second one's bytes), made the title's media as a finished job makes it; the new asset's id."""
    shutil.copytree(world.client.app.state.test_media.directory(), directory)
    (directory / "480p" / "seg_00000.m4s").write_bytes((directory / "480p" / "seg_00001.m4s").read_bytes())
    return give_media(world.client, world.title, directory)


def discard_replaced_media(world: World) -> int:
    components = world.client.app.state.components

    async def discard() -> int:
        async with components.units.begin() as uow:
            return await components.media(uow).discard_retired(timedelta(0))

    return in_app_loop(world.client, discard)


class TestReplacedMedia:
    """A title's media replaced mid-stream: streams play what they started on to the end."""

    async def test_a_stream_keeps_its_media_and_a_new_one_gets_the_replacement(
        self, world: World, tmp_path: Path
    ) -> None:
        first = await watching(world)
        before = await world.client.get(first.url("480p/seg_00000.m4s"))
        assert before.status_code == 200, before.text
        assert first.params["media"] != replacement_media(world, tmp_path / "replacement")
        await asyncio.sleep(2.1)  # the delivery's lookup of a title's media is trusted this long

        # The first stream's playlists and segments are still its own media's.
        assert (await world.client.get(first.manifest)).status_code == 200
        assert (await world.client.get(first.url("480p/seg_00000.m4s"))).content == before.content
        second = await start(world, first.viewer, "phone")
        assert second.params["media"] != first.params["media"]
        replaced = await world.client.get(second.url("480p/seg_00000.m4s"))
        assert replaced.status_code == 200, replaced.text
        assert replaced.content != before.content
        assert replaced.content == (await world.client.get(first.url("480p/seg_00001.m4s"))).content

    async def test_replaced_media_is_kept_until_discarded_then_its_streams_must_restart(
        self, world: World, tmp_path: Path
    ) -> None:
        first = await watching(world)
        replacement_media(world, tmp_path / "replacement")
        assert discard_replaced_media(world) == 1
        await asyncio.sleep(2.1)
        assert_refused(await world.client.get(first.url("480p/seg_00000.m4s")), 404, "media_not_found")
        second = await start(world, first.viewer, "phone")
        assert (await world.client.get(second.url("480p/seg_00000.m4s"))).status_code == 200
        assert discard_replaced_media(world) == 0  # the title's current media is never discarded

    async def test_media_taken_up_again_is_not_discarded(self, world: World, tmp_path: Path) -> None:
        first = await watching(world)
        replacement_media(world, tmp_path / "replacement")
        components = world.client.app.state.components

        async def take_back() -> None:
            async with components.units.begin() as uow:
                await components.media(uow).share(uuid.UUID(world.title), uuid.UUID(first.params["media"]))

        in_app_loop(world.client, take_back)
        assert discard_replaced_media(world) == 1  # the replacement, now unused
        await asyncio.sleep(2.1)
        assert (await world.client.get(first.url("480p/seg_00000.m4s"))).status_code == 200


class TestSegmentCache:
    async def test_a_segment_served_once_is_answered_from_memory(self, world: World, tmp_path: Path) -> None:
        replacement_media(world, tmp_path / "replacement")
        stream = await watching(world)
        segment = tmp_path / "replacement" / "480p" / "seg_00001.m4s"
        first = await world.client.get(stream.url("480p/seg_00001.m4s"))
        assert first.status_code == 200, first.text
        assert first.content == segment.read_bytes()
        segment.unlink()  # never done to live media; here it shows where the second answer came from
        again = await world.client.get(stream.url("480p/seg_00001.m4s"))
        assert again.status_code == 200, again.text
        assert again.content == first.content
        assert again.headers["cache-control"] == first.headers["cache-control"]
        part = await world.client.get(stream.url("480p/seg_00001.m4s"), headers={"Range": "bytes=-100"})
        assert part.status_code == 206
        assert part.content == first.content[-100:]
        assert (
            part.headers["content-range"]
            == f"bytes {len(first.content) - 100}-{len(first.content) - 1}/{len(first.content)}"
        )

    async def test_without_a_cache_every_answer_reads_the_store(self, make_client: Any, tmp_path: Path) -> None:
        async with make_client(MEDIA_SEGMENT_CACHE_MB="0") as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, media=False, title="Uncached", access_level="free")
            world = World(client, admin, title["id"], title["id"])
            replacement_media(world, tmp_path / "replacement")
            viewer = await new_user(client)
            stream = await start(world, viewer)
            segment = tmp_path / "replacement" / "480p" / "seg_00001.m4s"
            assert (await client.get(stream.url("480p/seg_00001.m4s"))).content == segment.read_bytes()
            segment.unlink()
            assert_refused(await client.get(stream.url("480p/seg_00001.m4s")), 404, "media_not_found")


def encrypted_media(world: World, directory: Path) -> Path:
    """A copy of the shared clip encrypted with the app's media keys (a key per segment), made the
    title's media; the copy's directory."""
    shutil.copytree(world.client.app.state.test_media.directory(), directory)
    keys = world.client.app.state.components.media_keys
    encrypt_media(
        directory, read_manifest(directory), lambda rendition, period: keys.key(str(directory), rendition, period), 1
    )
    give_media(world.client, world.title, directory)
    return directory


class TestEncryptedMedia:
    """Full-segment AES-128: keys only for live streams within their cap."""

    async def test_a_player_gets_the_keys_and_decrypts_every_segment(self, world: World, tmp_path: Path) -> None:
        clear = world.client.app.state.test_media.directory()
        encrypted_media(world, tmp_path / "sealed")
        stream = await watching(world, resolution="480p")
        playlist = await fetch_text(world.client, stream.url("480p/index.m3u8"))
        parsed = validate_media_playlist(playlist)
        lines = playlist.splitlines()
        key_lines = [line for line in lines if line.startswith("#EXT-X-KEY:")]
        assert len(key_lines) == len(parsed.segments) >= 2  # one key per segment here
        assert lines.index(key_lines[0]) > next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-MAP:"))
        for index, segment in enumerate(parsed.segments):
            assert segment.key.method == "AES-128"
            assert segment.key.iv is None  # the media sequence number is the IV
            assert segment.key.uri.split("?")[0] == f"key_{index:05d}.key"
            assert segment.key.uri.split("?")[1] == stream.query
            key = await world.client.get(stream.url(f"480p/key_{index:05d}.key"))
            assert key.status_code == 200, key.text
            assert key.headers["cache-control"] == "no-store, private"
            assert len(key.content) == 16
            sealed = await world.client.get(stream.url(f"480p/{segment.uri.split('?')[0]}"))
            original = (clear / "480p" / segment.uri.split("?")[0]).read_bytes()
            assert sealed.content != original
            assert decrypt_segment(sealed.content, key.content, index) == original
        init = await world.client.get(stream.url("480p/init.mp4"))
        assert init.content == (clear / "480p" / "init.mp4").read_bytes()  # in the clear
        assert key.content not in playlist.encode()

    async def test_no_key_after_the_stream_ends_or_above_the_cap(self, world: World, tmp_path: Path) -> None:
        encrypted_media(world, tmp_path / "sealed")
        stream = await watching(world, resolution="480p")
        assert (await world.client.get(stream.url("480p/key_00000.key"))).status_code == 200
        assert_refused(await world.client.get(stream.url("720p/key_00000.key")), 403, "resolution_not_allowed")
        assert_refused(await world.client.get(stream.url("480p/key_00099.key")), 404, "media_not_found")
        assert_refused(await world.client.get(stream.url("480p/key_0.key")), 404, "media_not_found")
        stopped = await world.client.delete(f"{PLAYBACK}/{stream.body['session_id']}", headers=stream.viewer.headers)
        assert stopped.status_code in (200, 204), stopped.text
        assert_refused(await world.client.get(stream.url("480p/key_00000.key")), 403, "stopped")

    async def test_media_in_the_clear_has_no_keys(self, world: World) -> None:
        stream = await watching(world)
        assert "#EXT-X-KEY" not in await fetch_text(world.client, stream.url("480p/index.m3u8"))
        assert_refused(await world.client.get(stream.url("480p/key_00000.key")), 404, "media_not_found")


class TestPublicSegments:
    async def test_encrypted_media_in_the_store_is_listed_on_the_public_base(
        self, make_client: Any, tmp_path: Path
    ) -> None:
        settings = {
            "MEDIA_ENCRYPTION": "aes-128",
            "MEDIA_PUBLIC_BASE_URL": "https://cdn.example.com/media/",
            "MEDIA_DIR": str(tmp_path / "media"),
        }
        async with make_client(**settings) as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, media=False, title="On the CDN", access_level="free")
            world = World(client, admin, title["id"], title["id"])
            components = client.app.state.components
            key = "assets/cdn-test/1"
            directory = Path(components.settings.playback.media_dir) / key
            shutil.copytree(client.app.state.test_media.directory(), directory)
            keys = components.media_keys
            encrypt_media(
                directory, read_manifest(directory), lambda rendition, period: keys.key(key, rendition, period)
            )
            give_media(client, world.title, directory, key)
            stream = await start(world, await new_user(client))
            playlist = validate_media_playlist(await fetch_text(client, stream.url("480p/index.m3u8")))
            public = "https://cdn.example.com/media/assets/cdn-test/1/480p"
            assert playlist.segment_map[0].uri == f"{public}/init.mp4"
            assert [segment.uri for segment in playlist.segments] == [
                f"{public}/seg_{index:05d}.m4s" for index in range(len(playlist.segments))
            ]
            # The keys still come from the API, signed for this stream.
            assert playlist.segments[0].key.uri == f"key_00000.key?{stream.query}"
            sealed = (directory / "480p" / "seg_00000.m4s").read_bytes()
            key_bytes = (await client.get(stream.url("480p/key_00000.key"))).content
            clear = (client.app.state.test_media.directory() / "480p" / "seg_00000.m4s").read_bytes()
            assert decrypt_segment(sealed, key_bytes, 0) == clear

    async def test_media_in_the_clear_is_still_served_by_the_api(self, make_client: Any) -> None:
        settings = {"MEDIA_ENCRYPTION": "aes-128", "MEDIA_PUBLIC_BASE_URL": "https://cdn.example.com/media"}
        async with make_client(**settings) as client:
            admin = await new_admin(client)
            title = await create_title(client, admin, title="Clear", access_level="free")
            world = World(client, admin, title["id"], title["id"])
            stream = await start(world, await new_user(client))
            playlist = await fetch_text(client, stream.url("480p/index.m3u8"))
            assert "cdn.example.com" not in playlist
            assert f"seg_00000.m4s?{stream.query}" in playlist


class TestMediaLookups:
    async def test_requests_that_find_a_lookup_expired_share_one_query(self, world: World) -> None:
        components = world.client.app.state.components
        asked: list[object] = []

        def counting_media(uow: Any) -> Any:
            asked.append(uow)
            return components.media(uow)

        access = MediaAccess(
            stream_urls=components.stream_urls,
            streams=components.backends.streams,
            grace_seconds=60,
            store=components.media_store,
            units=components.units,
            media_for=counting_media,
            keys=components.media_keys,
        )

        async def many_at_once() -> list[Any]:
            return list(await asyncio.gather(*(access.ready_media(uuid.UUID(world.title)) for _ in range(20))))

        found = in_app_loop(world.client, many_at_once)
        assert len(asked) == 1
        assert {media.asset_id for media in found} == {found[0].asset_id}
        in_app_loop(world.client, many_at_once)
        assert len(asked) == 1  # remembered for a couple of seconds


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
