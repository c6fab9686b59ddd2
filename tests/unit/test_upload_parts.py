"""An upload's parts are read as a chain from offset 0: parts a rolled-back PATCH left are never read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from reelhouse.assets.services import part_key, upload_parts
from reelhouse.assets.store import FileMediaStore

KEY = "uploads/0b0e6a9e-5f0c-4f0e-9a55-1f1c1d1e1f10"


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_the_chain_follows_the_accepted_parts_and_skips_leftovers(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    await store.put_stream(part_key(KEY, 0), once(b"a" * 10))
    await store.put_stream(part_key(KEY, 10), once(b"b" * 5))  # accepted
    await store.put_stream(part_key(KEY, 12), once(b"x" * 99))  # off the chain: a rolled-back PATCH's
    await store.put_stream(part_key(KEY, 15), once(b"c" * 3))
    await store.put_stream(f"{KEY}/notes", once(b"not a part"))
    chain = await upload_parts(store, KEY)
    assert [(item.key.rsplit("/", 1)[1], item.size) for item in chain] == [
        ("000000000000000", 10),
        ("000000000000010", 5),
        ("000000000000015", 3),
    ]


async def test_a_chain_stops_where_a_part_is_missing_or_empty(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    assert await upload_parts(store, KEY) == []
    await store.put_stream(part_key(KEY, 0), once(b"a" * 4))
    await store.put_stream(part_key(KEY, 8), once(b"b" * 4))  # nothing at 4: the chain ends at 4
    assert [item.size for item in await upload_parts(store, KEY)] == [4]
    await store.put_stream(part_key(KEY, 4), once(b""))  # an empty part never loops
    assert [item.size for item in await upload_parts(store, KEY)] == [4]
