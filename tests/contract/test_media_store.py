"""One contract for both media stores: the filesystem (MEDIA_DIR) and S3-compatible object storage.

The S3 store runs against moto's S3 server on 127.0.0.1 (started once per test process, a new
bucket for every test), spoken to over HTTP exactly as a MinIO, R2 or AWS bucket would be.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reelhouse.assets.store import (
    FileMediaStore,
    InvalidByteRange,
    InvalidMediaKey,
    MediaObjectNotFound,
    MediaPrefixInUse,
    MediaStore,
    MediaStoreUnavailable,
    NoLocalPath,
    S3MediaStore,
    StoredObject,
)
from reelhouse.config import MediaSettings, media_store_target

MiB = 1024 * 1024


@pytest.fixture(params=["file", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MediaStore]:
    if request.param == "file":
        media: MediaStore = FileMediaStore(tmp_path / "media")
    else:
        server = request.getfixturevalue("s3_server")
        settings = server.settings(server.new_bucket(), prefix="contract/run")
        target = media_store_target(
            MediaSettings(
                store_url=settings["MEDIA_STORE_URL"],
                s3_endpoint_url=settings["MEDIA_S3_ENDPOINT_URL"],
                s3_region=settings["MEDIA_S3_REGION"],
                s3_access_key_id=settings["MEDIA_S3_ACCESS_KEY_ID"],
                s3_secret_access_key=settings["MEDIA_S3_SECRET_ACCESS_KEY"],
                s3_path_style=True,
            ),
            media_dir=str(tmp_path / "unused"),
        )
        media = S3MediaStore(target)
    try:
        yield media
    finally:
        await media.close()


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def put(store: MediaStore, key: str, data: bytes) -> None:
    assert await store.put_stream(key, chunks_of(data)) == len(data)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


class TestRoundTrip:
    async def test_what_is_written_is_read_back_whole(self, store: MediaStore) -> None:
        written = await store.put_stream("uploads/u1/000000000000000", chunks_of(b"hello ", b"media ", b"store"))
        assert written == 17
        assert await store.read_bytes("uploads/u1/000000000000000") == b"hello media store"
        assert await collect(await store.read("uploads/u1/000000000000000")) == b"hello media store"
        assert await store.stat("uploads/u1/000000000000000") == StoredObject("uploads/u1/000000000000000", 17)

    async def test_a_local_file_goes_in_and_comes_back_out(self, store: MediaStore, tmp_path: Path) -> None:
        source = tmp_path / "poster.jpg"
        source.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 40)
        assert await store.put_file("assets/j/1/poster.jpg", source) == source.stat().st_size
        destination = tmp_path / "copy.jpg"
        assert await store.download("assets/j/1/poster.jpg", destination) == source.stat().st_size
        assert destination.read_bytes() == source.read_bytes()

    async def test_downloads_append_in_order(self, store: MediaStore, tmp_path: Path) -> None:
        await put(store, "uploads/u/a", b"first,")
        await put(store, "uploads/u/b", b"second")
        destination = tmp_path / "joined"
        destination.write_bytes(b"")
        await store.download("uploads/u/a", destination, append=True)
        await store.download("uploads/u/b", destination, append=True)
        assert destination.read_bytes() == b"first,second"

    async def test_a_write_replaces_the_object_whole(self, store: MediaStore) -> None:
        await put(store, "k/obj", b"a much longer first version")
        await put(store, "k/obj", b"short")
        assert await store.read_bytes("k/obj") == b"short"

    async def test_an_empty_object(self, store: MediaStore) -> None:
        assert await store.put_stream("k/empty", chunks_of()) == 0
        assert await store.stat("k/empty") == StoredObject("k/empty", 0)
        assert await store.read_bytes("k/empty") == b""

    async def test_local_paths_exist_only_on_the_filesystem(self, store: MediaStore) -> None:
        await put(store, "assets/j/1/manifest.json", b"{}")
        local = store.local_path("assets/j/1")
        if isinstance(store, FileMediaStore):
            assert local is not None
            assert (local / "manifest.json").read_bytes() == b"{}"
            assert store.path("assets/j/1") == local
        else:
            assert local is None
            with pytest.raises(NoLocalPath):
                store.path("assets/j/1")
        # An absolute key names a directory outside the store (shared fixtures) on either store.
        assert store.local_path("/srv/fixtures/title") == Path("/srv/fixtures/title")


class TestHealth:
    async def test_a_usable_store_passes_its_check(self, store: MediaStore) -> None:
        await store.check()

    async def test_a_store_that_cannot_be_used_fails_its_check_naming_the_setting(
        self, store: MediaStore, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        if isinstance(store, FileMediaStore):
            (tmp_path / "a-file").write_bytes(b"")
            broken: MediaStore = FileMediaStore(tmp_path / "a-file" / "media")
            setting = "MEDIA_DIR"
        else:
            server = request.getfixturevalue("s3_server")
            settings = server.settings("no-such-bucket")
            broken = S3MediaStore(
                media_store_target(
                    MediaSettings(
                        store_url=settings["MEDIA_STORE_URL"],
                        s3_endpoint_url=settings["MEDIA_S3_ENDPOINT_URL"],
                        s3_access_key_id=settings["MEDIA_S3_ACCESS_KEY_ID"],
                        s3_secret_access_key=settings["MEDIA_S3_SECRET_ACCESS_KEY"],
                        s3_path_style=True,
                    ),
                    media_dir=str(tmp_path),
                )
            )
            setting = "MEDIA_STORE_URL s3://no-such-bucket/media"
        with pytest.raises(MediaStoreUnavailable, match=setting):
            await broken.check()


class TestByteRanges:
    DATA = bytes(range(100))

    @pytest.fixture
    async def stored(self, store: MediaStore) -> MediaStore:
        await put(store, "assets/j/1/720p/segment_00001.m4s", self.DATA)
        return store

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            (0, None, DATA),
            (10, 20, DATA[10:20]),
            (0, 1, DATA[:1]),
            (99, None, DATA[99:]),
            (99, 100, DATA[99:]),
            (90, 1000, DATA[90:]),  # an end past the object stops at its end
            (100, None, b""),  # the end exactly: nothing left
            (42, 42, b""),  # an empty range
        ],
    )
    async def test_a_range_reads_exactly_its_bytes(
        self, stored: MediaStore, start: int, end: int | None, expected: bytes
    ) -> None:
        key = "assets/j/1/720p/segment_00001.m4s"
        assert await stored.read_bytes(key, start=start, end=end) == expected
        assert await collect(await stored.read(key, start=start, end=end)) == expected

    @pytest.mark.parametrize(("start", "end"), [(101, None), (150, 200), (-1, None), (20, 10)])
    async def test_a_range_outside_the_object_is_refused_before_reading(
        self, stored: MediaStore, start: int, end: int | None
    ) -> None:
        with pytest.raises(InvalidByteRange):
            await stored.read("assets/j/1/720p/segment_00001.m4s", start=start, end=end)


class TestMissingKeys:
    async def test_reading_what_is_not_there_is_a_clear_error(self, store: MediaStore, tmp_path: Path) -> None:
        with pytest.raises(MediaObjectNotFound, match="no/such"):
            await store.read("no/such/key")
        with pytest.raises(MediaObjectNotFound):
            await store.read_bytes("no/such/key", start=5, end=10)
        with pytest.raises(MediaObjectNotFound):
            await store.download("no/such/key", tmp_path / "out")

    async def test_stat_list_and_deletes_take_absence_calmly(self, store: MediaStore) -> None:
        assert await store.stat("no/such/key") is None
        assert await store.list("no/such") == []
        await store.delete("no/such/key")
        await store.delete_prefix("no/such")
        await store.remove("no/such")

    async def test_a_prefix_is_not_an_object(self, store: MediaStore) -> None:
        await put(store, "assets/j/1/manifest.json", b"{}")
        assert await store.stat("assets/j/1") is None
        with pytest.raises(MediaObjectNotFound):
            await store.read("assets/j/1")


class TestPrefixes:
    async def test_listing_finds_everything_under_a_prefix_and_nothing_beside_it(self, store: MediaStore) -> None:
        await put(store, "uploads/u1/000000000000010", b"b" * 10)
        await put(store, "uploads/u1/000000000000000", b"a" * 10)
        await put(store, "uploads/u1/deeper/x", b"c")
        await put(store, "uploads/u10/000000000000000", b"other upload")
        await put(store, "uploads/u1.bak", b"sibling object")
        assert await store.list("uploads/u1") == [
            StoredObject("uploads/u1/000000000000000", 10),
            StoredObject("uploads/u1/000000000000010", 10),
            StoredObject("uploads/u1/deeper/x", 1),
        ]

    async def test_deleting_a_prefix_leaves_its_neighbours(self, store: MediaStore) -> None:
        for key in ("assets/j/1/a", "assets/j/1/b/c", "assets/j/2/a", "assets/j/10/a"):
            await put(store, key, key.encode())
        await store.delete_prefix("assets/j/1")
        assert [item.key for item in await store.list("assets/j")] == ["assets/j/10/a", "assets/j/2/a"]

    async def test_delete_takes_one_object_and_remove_an_object_or_a_tree(self, store: MediaStore) -> None:
        await put(store, "demo/object", b"an object")
        await put(store, "demo/tree/inner", b"under a prefix")
        await put(store, "demo/other", b"kept")
        await store.delete("demo/tree")  # a prefix is not an object: delete leaves it
        assert await store.stat("demo/tree/inner") is not None
        await store.delete("demo/object")
        assert await store.stat("demo/object") is None
        await store.remove("demo/tree")
        assert await store.list("demo") == [StoredObject("demo/other", 4)]
        await store.remove("demo/other")
        assert await store.list("demo") == []

    async def test_many_objects_are_deleted_together(self, store: MediaStore) -> None:
        await asyncio.gather(*(put(store, f"assets/many/{index:04d}", b"x") for index in range(120)))
        assert len(await store.list("assets/many")) == 120
        await store.delete_prefix("assets/many")
        assert await store.list("assets/many") == []


def make_tree(directory: Path) -> dict[str, bytes]:
    files = {
        "manifest.json": b'{"version": 1}',
        "master.m3u8": b"#EXTM3U\n",
        "poster.jpg": b"\xff\xd8\xff poster",
        "sprite.jpg": b"\xff\xd8\xff sprite",
        "480p/init.mp4": b"init" * 100,
        "480p/segment_00001.m4s": bytes(range(256)) * 64,
        "720p/index.m3u8": b"#EXTM3U\n#EXT-X-VERSION:7\n",
    }
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return files


class TestPublishingATree:
    async def test_every_file_of_a_tree_lands_under_the_prefix(self, store: MediaStore, tmp_path: Path) -> None:
        files = make_tree(tmp_path / "output")
        count = await store.publish_tree(tmp_path / "output", "assets/job/1", last=("manifest.json",))
        assert count == len(files)
        listed = await store.list("assets/job/1")
        assert sorted(item.key for item in listed) == sorted(f"assets/job/1/{name}" for name in files)
        for name, data in files.items():
            assert await store.read_bytes(f"assets/job/1/{name}") == data
        assert (tmp_path / "output" / "poster.jpg").read_bytes() == files["poster.jpg"]  # the source stays

    async def test_a_prefix_holding_media_is_not_published_over(self, store: MediaStore, tmp_path: Path) -> None:
        make_tree(tmp_path / "output")
        await store.publish_tree(tmp_path / "output", "assets/job/1")
        (tmp_path / "output" / "poster.jpg").write_bytes(b"a different poster")
        # What was published is a copy: a later change to the local tree does not reach it.
        assert await store.read_bytes("assets/job/1/poster.jpg") == b"\xff\xd8\xff poster"
        with pytest.raises(MediaPrefixInUse):
            await store.publish_tree(tmp_path / "output", "assets/job/1")
        assert await store.read_bytes("assets/job/1/poster.jpg") == b"\xff\xd8\xff poster"


async def generated(total: int, chunk: int) -> AsyncIterator[bytes]:
    for offset in range(0, total, chunk):
        yield hashlib.sha256(str(offset).encode()).digest() * (min(chunk, total - offset) // 32)


class TestLargeAndConcurrentWrites:
    async def test_a_large_stream_is_written_without_holding_it_in_memory(self, store: MediaStore) -> None:
        total, chunk = 40 * MiB, 256 * 1024
        expected = hashlib.sha256()
        async for part in generated(total, chunk):
            expected.update(part)
        tracemalloc.start()
        try:
            written = await store.put_stream("uploads/big/000000000000000", generated(total, chunk))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert written == total
        assert peak < total / 2, f"the write held {peak / MiB:.1f} MiB of Python objects at once"
        assert await store.stat("uploads/big/000000000000000") == StoredObject("uploads/big/000000000000000", total)
        actual = hashlib.sha256()
        async for part in await store.read("uploads/big/000000000000000"):
            actual.update(part)
        assert actual.hexdigest() == expected.hexdigest()
        middle = await store.read_bytes("uploads/big/000000000000000", start=10 * MiB, end=10 * MiB + 100)
        assert len(middle) == 100

    async def test_a_stream_that_breaks_off_stores_nothing(self, store: MediaStore) -> None:
        await put(store, "uploads/u/000000000000000", b"the accepted part")

        class ClientGone(Exception):
            pass

        async def broken() -> AsyncIterator[bytes]:
            yield b"x" * (6 * MiB)  # past one multipart part on S3
            raise ClientGone()

        with pytest.raises(ClientGone):
            await store.put_stream("uploads/u/000000000000017", broken())
        with pytest.raises(ClientGone):
            await store.put_stream("uploads/u/000000000000000", broken())
        assert await store.list("uploads/u") == [StoredObject("uploads/u/000000000000000", 17)]
        assert await store.read_bytes("uploads/u/000000000000000") == b"the accepted part"

    async def test_concurrent_writers_to_different_keys_each_keep_their_bytes(self, store: MediaStore) -> None:
        async def writer(index: int) -> None:
            data = bytes([index]) * (64 * 1024 + index)
            await store.put_stream(f"uploads/w/{index:015d}", chunks_of(data[:1000], data[1000:]))

        await asyncio.gather(*(writer(index) for index in range(16)))
        listed = await store.list("uploads/w")
        assert [item.size for item in listed] == [64 * 1024 + index for index in range(16)]
        for index in range(16):
            assert await store.read_bytes(f"uploads/w/{index:015d}", start=0, end=2) == bytes([index]) * 2


ODD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "a/../../b",
    "a//b",
    "a/./b",
    "a/",
    "with space",
    "back\\slash",
    "ünïcode",
    "query?x=1",
    "hash#x",
    ".hidden",
    "a/.partial-x",
    "tab\tkey",
    "x" * 1025,
]


class TestKeyValidation:
    @pytest.mark.parametrize("key", ODD_KEYS)
    async def test_odd_keys_are_refused_before_the_backend_sees_them(
        self, store: MediaStore, key: str, tmp_path: Path
    ) -> None:
        with pytest.raises(InvalidMediaKey):
            await store.put_stream(key, chunks_of(b"x"))
        with pytest.raises(InvalidMediaKey):
            await store.read(key)
        with pytest.raises(InvalidMediaKey):
            await store.stat(key)
        with pytest.raises(InvalidMediaKey):
            await store.delete(key)
        with pytest.raises(InvalidMediaKey):
            await store.delete_prefix(key)
        with pytest.raises(InvalidMediaKey):
            await store.list(key)
        (tmp_path / "tree").mkdir()
        with pytest.raises(InvalidMediaKey):
            await store.publish_tree(tmp_path / "tree", key)

    async def test_nothing_was_written_by_refused_keys(self, store: MediaStore, tmp_path: Path) -> None:
        for key in ODD_KEYS:
            with pytest.raises(InvalidMediaKey):
                await store.put_stream(key, chunks_of(b"x"))
        if isinstance(store, FileMediaStore):
            assert not (tmp_path / "outside").exists()
            assert not store.root.exists() or not any(store.root.rglob("*"))
