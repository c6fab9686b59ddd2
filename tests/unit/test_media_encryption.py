"""Full-segment AES-128: keys derived per media, rendition and period; RFC 8216 IVs; whole files."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelhouse.media import MediaManifest, Rendition, Segment, SpriteSheet
from reelhouse.media.encryption import (
    MediaKeys,
    decrypt_segment,
    encrypt_media,
    encrypt_segment,
    key_filename,
    key_period_of,
    segment_iv,
)
from reelhouse.media.manifest import Encryption, read_manifest, write_manifest
from reelhouse.plans.models import Resolution

KEYS = MediaKeys("a-secret-long-enough-for-media-keys-0123456789")


def test_keys_are_stable_and_differ_by_media_rendition_and_period() -> None:
    key = KEYS.key("assets/job/1", "480p", 0)
    assert len(key) == 16
    assert key == MediaKeys("a-secret-long-enough-for-media-keys-0123456789").key("assets/job/1", "480p", 0)
    others = {
        KEYS.key("assets/job/2", "480p", 0),
        KEYS.key("assets/job/1", "720p", 0),
        KEYS.key("assets/job/1", "480p", 1),
        MediaKeys("another-secret").key("assets/job/1", "480p", 0),
    }
    assert key not in others
    assert len(others) == 4


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        MediaKeys("")


def test_the_iv_is_the_media_sequence_number() -> None:
    assert segment_iv(0) == bytes(16)
    assert segment_iv(258) == bytes(14) + b"\x01\x02"


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100_000])
def test_a_segment_round_trips_with_padding(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    key = KEYS.key("m", "480p", 0)
    sealed = encrypt_segment(data, key, 7)
    assert len(sealed) == (size // 16 + 1) * 16
    assert decrypt_segment(sealed, key, 7) == data
    if size:
        assert sealed != encrypt_segment(data, key, 8)  # another sequence number, another IV


@pytest.mark.parametrize(("name", "period"), [("key_00000.key", 0), ("key_00012.key", 12), ("key_99999.key", 99999)])
def test_key_names(name: str, period: int) -> None:
    assert key_filename(period) == name
    assert key_period_of(name) == period


@pytest.mark.parametrize(
    "name",
    [
        "key_0.key",
        "key_000001.key",
        "key_-0001.key",
        "key_0000a.key",
        "key_00000.mp4",
        "seg_00000.m4s",
        "key_\uff11\uff12\uff13\uff14\uff15.key",  # full-width digits
    ],
)
def test_other_names_are_no_key(name: str) -> None:
    assert key_period_of(name) is None


def test_periods_of_a_rendition() -> None:
    encryption = Encryption(key_period=3)
    assert [encryption.period_of(index) for index in range(7)] == [0, 0, 0, 1, 1, 1, 2]
    assert encryption.periods(7) == 3
    assert encryption.periods(6) == 2


def _media(directory: Path, segments: int) -> MediaManifest:
    rendition_dir = directory / "480p"
    rendition_dir.mkdir(parents=True)
    (rendition_dir / "init.mp4").write_bytes(b"init")
    listed = []
    for index in range(segments):
        name = f"seg_{index:05d}.m4s"
        (rendition_dir / name).write_bytes(f"segment {index}".encode() * 50)
        listed.append(Segment(filename=name, duration=4.0, size=(rendition_dir / name).stat().st_size))
    (rendition_dir / "index.m3u8").write_text("#EXTM3U\n")
    (directory / "master.m3u8").write_text("#EXTM3U\n")
    rendition = Rendition(
        resolution=Resolution("480p"), width=854, height=480, bandwidth=1, average_bandwidth=1,
        codecs="avc1.64001e,mp4a.40.2", frame_rate=25.0, directory="480p", init="init.mp4", segments=tuple(listed),
    )  # fmt: skip
    sprite = SpriteSheet("sprite.jpg", "thumbnails.vtt", 2.0, 160, 90, 10, segments)
    manifest = MediaManifest(duration=4.0 * segments, renditions=(rendition,), poster="poster.jpg", sprite=sprite)
    write_manifest(manifest, directory)
    return manifest


def test_encrypt_media_seals_every_segment_and_records_it(tmp_path: Path) -> None:
    manifest = _media(tmp_path, 5)
    clear = {path.name: path.read_bytes() for path in (tmp_path / "480p").glob("seg_*.m4s")}

    def key_for(rendition: str, period: int) -> bytes:
        return KEYS.key("k", rendition, period)

    sealed = encrypt_media(tmp_path, manifest, key_for, key_period=2)
    assert sealed.encryption == Encryption(key_period=2)
    assert read_manifest(tmp_path) == sealed
    for index, segment in enumerate(sealed.renditions[0].segments):
        data = (tmp_path / "480p" / segment.filename).read_bytes()
        assert segment.size == len(data)
        assert decrypt_segment(data, key_for("480p", index // 2), index) == clear[segment.filename]
    assert (tmp_path / "480p" / "init.mp4").read_bytes() == b"init"
    assert not (tmp_path / "480p" / "index.m3u8").exists()  # it could not name the keys
    assert not (tmp_path / "master.m3u8").exists()
    assert not list(tmp_path.rglob("*.partial"))
    with pytest.raises(ValueError, match="encrypted already"):
        encrypt_media(tmp_path, sealed, key_for)
