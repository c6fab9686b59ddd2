"""Full-segment AES-128 for HLS (RFC 8216 4.3.2.4, 5.2): what hls.js, Safari and ffmpeg decrypt
without DRM.

Each rendition's segments are encrypted whole with AES-128-CBC and PKCS#7 padding; the key
rotates every ``key_period`` segments and the IV of a segment is its media sequence number (the
playlist names no IV, so every player derives the same one). Initialization segments stay in the
clear (the EXT-X-MAP comes before the first EXT-X-KEY).

Keys are never stored: :class:`MediaKeys` derives each one from a server secret and the media's
storage key, rendition and key period, so nothing beside the segments (in a bucket, a CDN or a
cache) can decrypt them, and handing one out needs no database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING

import msgspec
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from reelhouse.media.manifest import (
    DEFAULT_KEY_PERIOD,
    MASTER_PLAYLIST_FILENAME,
    MEDIA_PLAYLIST_FILENAME,
    Encryption,
    MediaManifest,
    write_manifest,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

KEY_BYTES = 16
KEY_FILENAME_PREFIX = "key_"
KEY_FILENAME_SUFFIX = ".key"


def key_filename(period: int) -> str:
    """The name a rendition's key of ``period`` is asked for by (``key_00000.key``)."""
    return f"{KEY_FILENAME_PREFIX}{period:05d}{KEY_FILENAME_SUFFIX}"


def key_period_of(filename: str) -> int | None:
    """The key period a file name asks for, or ``None`` when it names no key."""
    if not (filename.startswith(KEY_FILENAME_PREFIX) and filename.endswith(KEY_FILENAME_SUFFIX)):
        return None
    digits = filename[len(KEY_FILENAME_PREFIX) : -len(KEY_FILENAME_SUFFIX)]
    if len(digits) != 5 or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


class MediaKeys:
    """Derives the AES-128 key of a media's rendition and key period from one secret."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if not raw:
            raise ValueError("the media key secret is empty")
        self._secret = hashlib.sha256(b"reelhouse media keys\x00" + raw).digest()

    def key(self, storage_key: str, rendition: str, period: int) -> bytes:
        message = f"{storage_key}\n{rendition}\n{period}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:KEY_BYTES]


def segment_iv(sequence: int) -> bytes:
    """The IV of the segment with this media sequence number, as RFC 8216 5.2 defines it."""
    return sequence.to_bytes(KEY_BYTES, "big")


def encrypt_segment(data: bytes, key: bytes, sequence: int) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(segment_iv(sequence))).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt_segment(data: bytes, key: bytes, sequence: int) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(segment_iv(sequence))).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def encrypt_media(
    directory: Path,
    manifest: MediaManifest,
    key_for: Callable[[str, int], bytes],
    key_period: int = DEFAULT_KEY_PERIOD,
) -> MediaManifest:
    """Encrypt every segment of processed media in ``directory`` in place (each file replaced whole)
    and rewrite its manifest: ``key_for(rendition, period)`` gives the keys. The playlists written
    beside the files for local tools go (they cannot name keys that are never stored); the app
    renders every playlist per stream. Blocking: run it in a worker thread. Media already
    encrypted is refused."""
    if manifest.encryption is not None:
        raise ValueError("this media is encrypted already")
    encryption = Encryption(key_period=key_period)
    renditions = []
    for rendition in manifest.renditions:
        segments = []
        for index, segment in enumerate(rendition.segments):
            path = directory / rendition.directory / segment.filename
            key = key_for(rendition.resolution.value, encryption.period_of(index))
            sealed = encrypt_segment(path.read_bytes(), key, index)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(sealed)
            os.replace(partial, path)
            segments.append(msgspec.structs.replace(segment, size=len(sealed)))
        renditions.append(msgspec.structs.replace(rendition, segments=tuple(segments)))
        (directory / rendition.directory / MEDIA_PLAYLIST_FILENAME).unlink(missing_ok=True)
    (directory / MASTER_PLAYLIST_FILENAME).unlink(missing_ok=True)
    encrypted = msgspec.structs.replace(manifest, renditions=tuple(renditions), encryption=encryption)
    write_manifest(encrypted, directory)
    return encrypted
