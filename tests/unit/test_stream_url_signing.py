"""The signed stream URL: what the media routes accept and what they refuse."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from urllib.parse import parse_qsl

import pytest

from reelhouse.platform.jwt import InvalidToken
from reelhouse.playback.tokens import ExpiredStreamUrl, StreamUrlSigner

SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
USER = str(uuid.uuid4())
SESSION = str(uuid.uuid4())
CONTENT = str(uuid.uuid4())
MEDIA = str(uuid.uuid4())


def signed_params(signer: StreamUrlSigner, content_id: str = CONTENT, resolution: str = "1080p") -> dict[str, str]:
    query = signer.query(
        user_id=USER, session_id=SESSION, content_id=content_id, max_resolution=resolution, media_asset_id=MEDIA
    )
    return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))


@pytest.fixture
def signer() -> StreamUrlSigner:
    return StreamUrlSigner(SECRET, ttl_seconds=3600)


def test_the_query_carries_exactly_the_signed_fields(signer: StreamUrlSigner) -> None:
    query = signer.query(
        user_id=USER, session_id=SESSION, content_id=CONTENT, max_resolution="720p", media_asset_id=MEDIA
    )
    assert [name for name, _ in parse_qsl(query)] == ["user", "session", "resolution", "media", "expires", "signature"]


def test_round_trip(signer: StreamUrlSigner) -> None:
    before = int(time.time())
    signed = signer.verify(CONTENT, signed_params(signer, resolution="720p"))
    assert signed.user_id == USER
    assert signed.session_id == SESSION
    assert signed.content_id == CONTENT
    assert signed.max_resolution == "720p"
    assert signed.media_asset_id == MEDIA
    assert before + 3600 <= signed.expires <= int(time.time()) + 3600


def test_another_signer_with_the_same_secret_accepts_it(signer: StreamUrlSigner) -> None:
    """Every API instance verifies what any other one signed."""
    params = signed_params(signer)
    assert StreamUrlSigner(SECRET, ttl_seconds=60).verify(CONTENT, params).session_id == SESSION


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user", str(uuid.uuid4())),
        ("session", str(uuid.uuid4())),
        ("resolution", "4k"),
        ("media", str(uuid.uuid4())),
        ("expires", str(int(time.time()) + 10 * 365 * 86400)),
        ("signature", "0" * 64),
    ],
    ids=["user", "session", "resolution", "media", "expires", "signature"],
)
def test_any_altered_field_is_refused(signer: StreamUrlSigner, field: str, value: str) -> None:
    params = {**signed_params(signer), field: value}
    with pytest.raises(InvalidToken, match="bad signature"):
        signer.verify(CONTENT, params)


def test_a_flipped_signature_character_is_refused(signer: StreamUrlSigner) -> None:
    params = signed_params(signer)
    signature = params["signature"]
    params["signature"] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    with pytest.raises(InvalidToken):
        signer.verify(CONTENT, params)


def test_a_url_for_one_title_does_not_open_another(signer: StreamUrlSigner) -> None:
    with pytest.raises(InvalidToken, match="bad signature"):
        signer.verify(str(uuid.uuid4()), signed_params(signer))


def test_another_secret_does_not_verify(signer: StreamUrlSigner) -> None:
    other = StreamUrlSigner(SECRET + "-rotated", ttl_seconds=3600)
    with pytest.raises(InvalidToken):
        other.verify(CONTENT, signed_params(signer))


def test_the_signing_key_is_derived_not_the_jwt_secret(signer: StreamUrlSigner) -> None:
    params = signed_params(signer)
    message = "\n".join([CONTENT, *(params[name] for name in StreamUrlSigner.FIELDS)])
    with_raw_secret = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    assert params["signature"] != with_raw_secret


def test_an_expired_url_is_refused_as_expired() -> None:
    """The media routes tell ``stream_url_expired`` from a bad signature by this exception type."""
    expired = StreamUrlSigner(SECRET, ttl_seconds=-5)
    with pytest.raises(ExpiredStreamUrl):
        expired.verify(CONTENT, signed_params(expired))


def test_a_forged_url_is_refused_as_forged_even_when_also_expired() -> None:
    expired = StreamUrlSigner(SECRET, ttl_seconds=-5)
    params = {**signed_params(expired), "resolution": "4k"}
    with pytest.raises(InvalidToken, match="bad signature"):
        expired.verify(CONTENT, params)


@pytest.mark.parametrize("missing", ["user", "session", "resolution", "expires", "signature"])
def test_a_missing_field_is_refused(signer: StreamUrlSigner, missing: str) -> None:
    params = signed_params(signer)
    del params[missing]
    with pytest.raises(InvalidToken, match="missing or malformed"):
        signer.verify(CONTENT, params)


@pytest.mark.parametrize("expires", ["", "soon", "1.5", "0x10"])
def test_a_malformed_expiry_is_refused(signer: StreamUrlSigner, expires: str) -> None:
    params = {**signed_params(signer), "expires": expires}
    with pytest.raises(InvalidToken):
        signer.verify(CONTENT, params)


def test_no_parameters_at_all(signer: StreamUrlSigner) -> None:
    with pytest.raises(InvalidToken):
        signer.verify(CONTENT, {})


def test_a_non_ascii_signature_is_refused_as_invalid(signer: StreamUrlSigner) -> None:
    params = {**signed_params(signer), "signature": "é" * 64}
    with pytest.raises(InvalidToken):
        signer.verify(CONTENT, params)
