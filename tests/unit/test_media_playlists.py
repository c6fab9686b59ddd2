"""HLS renderers, codec strings and the test validator, on hand-made manifests."""

from __future__ import annotations

import pytest

from media_validation import PlaylistError, validate_master_playlist, validate_media_playlist
from reelhouse.media.hls import SegmentKey, avc1_codec_string, mp4a_codec_string, render_master, render_media
from reelhouse.media.manifest import MediaManifest, Rendition, Segment, SpriteSheet
from reelhouse.plans.resolutions import Resolution


def _rendition(resolution: Resolution, width: int, height: int, bandwidth: int, durations: list[float]) -> Rendition:
    return Rendition(
        resolution=resolution,
        width=width,
        height=height,
        bandwidth=bandwidth,
        average_bandwidth=bandwidth * 9 // 10,
        codecs="avc1.64001f,mp4a.40.2",
        frame_rate=23.976,
        directory=resolution.value,
        init="init.mp4",
        segments=tuple(
            Segment(filename=f"seg_{index:05d}.m4s", duration=duration, size=100_000)
            for index, duration in enumerate(durations)
        ),
    )


LOW = _rendition(Resolution.SD_480P, 854, 480, 1_200_000, [4.004, 4.004, 1.5015])
HIGH = _rendition(Resolution.HD_720P, 1280, 720, 2_800_000, [4.004, 4.004, 1.5015])
MANIFEST = MediaManifest(
    duration=9.5095,
    renditions=(LOW, HIGH),
    poster="poster.jpg",
    sprite=SpriteSheet("sprite.jpg", "thumbnails.vtt", 2.0, 160, 90, 5, 5),
)


def _signed(path: str) -> str:
    return f"https://cdn.example/t1/{path}?token=abc&expires=1"


class TestMediaPlaylist:
    def test_lists_measured_segments_with_the_map_first(self) -> None:
        text = render_media(
            LOW, uri_for_segment=lambda name: _signed(f"480p/{name}"), uri_for_init=lambda name: _signed(f"480p/{name}")
        )
        assert text == (
            "#EXTM3U\n"
            "#EXT-X-VERSION:7\n"
            "#EXT-X-TARGETDURATION:5\n"
            "#EXT-X-MEDIA-SEQUENCE:0\n"
            "#EXT-X-PLAYLIST-TYPE:VOD\n"
            "#EXT-X-INDEPENDENT-SEGMENTS\n"
            f'#EXT-X-MAP:URI="{_signed("480p/init.mp4")}"\n'
            "#EXTINF:4.004,\n"
            f"{_signed('480p/seg_00000.m4s')}\n"
            "#EXTINF:4.004,\n"
            f"{_signed('480p/seg_00001.m4s')}\n"
            "#EXTINF:1.5015,\n"
            f"{_signed('480p/seg_00002.m4s')}\n"
            "#EXT-X-ENDLIST\n"
        )
        validate_media_playlist(text)

    def test_target_duration_is_the_longest_segment_rounded_up(self) -> None:
        exact = _rendition(Resolution.SD_480P, 854, 480, 1, [4.0, 4.0, 2.0])
        assert "#EXT-X-TARGETDURATION:4\n" in render_media(exact, str, str)
        assert "#EXT-X-TARGETDURATION:5\n" in render_media(LOW, str, str)

    def test_extinf_keeps_microseconds_and_at_least_three_decimals(self) -> None:
        odd = _rendition(Resolution.SD_480P, 854, 480, 1, [4.0, 3.041667, 0.04])
        lines = [line for line in render_media(odd, str, str).splitlines() if line.startswith("#EXTINF")]
        assert lines == ["#EXTINF:4.000,", "#EXTINF:3.041667,", "#EXTINF:0.040,"]

    def test_a_new_key_period_announces_its_key_once(self) -> None:
        def key(index: int) -> SegmentKey:
            period = index // 2
            return SegmentKey(uri=f"https://api.example/keys/{period}", iv=bytes([period]) * 16)

        lines = render_media(LOW, str, str, key_for_segment=key).splitlines()
        keys = [index for index, line in enumerate(lines) if line.startswith("#EXT-X-KEY")]
        assert [lines[index] for index in keys] == [
            '#EXT-X-KEY:METHOD=AES-128,URI="https://api.example/keys/0",IV=0x' + "00" * 16,
            '#EXT-X-KEY:METHOD=AES-128,URI="https://api.example/keys/1",IV=0x' + "01" * 16,
        ]
        # Key 0 before the first segment and after the map; key 1 before the third segment.
        assert lines[keys[0] - 1].startswith("#EXT-X-MAP")
        assert lines[keys[1] + 2] == "seg_00002.m4s"

    def test_clear_segments_after_encrypted_ones_say_method_none(self) -> None:
        lines = render_media(
            LOW, str, str, key_for_segment=lambda index: SegmentKey("k") if index == 0 else None
        ).splitlines()
        assert [line for line in lines if line.startswith("#EXT-X-KEY")] == [
            '#EXT-X-KEY:METHOD=AES-128,URI="k"',
            "#EXT-X-KEY:METHOD=NONE",
        ]

    def test_without_keys_there_is_no_key_line(self) -> None:
        assert "#EXT-X-KEY" not in render_media(LOW, str, str, key_for_segment=lambda index: None)

    @pytest.mark.parametrize("uri", ['https://x/"init', "https://x/init\n#EXT-X-ENDLIST"])
    def test_a_uri_that_would_break_the_playlist_is_refused(self, uri: str) -> None:
        with pytest.raises(ValueError, match="URI"):
            render_media(LOW, uri_for_segment=str, uri_for_init=lambda name: uri)

    def test_a_segment_uri_with_a_line_break_is_refused(self) -> None:
        with pytest.raises(ValueError, match="URI"):
            render_media(LOW, uri_for_segment=lambda name: f"{name}\n#EXTINF:1,", uri_for_init=str)


class TestMasterPlaylist:
    def test_lists_allowed_renditions_lowest_first_with_measured_attributes(self) -> None:
        text = render_master(MANIFEST, {Resolution.HD_720P, Resolution.SD_480P}, lambda r: _signed(r.directory))
        assert text == (
            "#EXTM3U\n"
            "#EXT-X-VERSION:7\n"
            "#EXT-X-INDEPENDENT-SEGMENTS\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=1080000,"
            'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=854x480,FRAME-RATE=23.976\n'
            f"{_signed('480p')}\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=2800000,AVERAGE-BANDWIDTH=2520000,"
            'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=23.976\n'
            f"{_signed('720p')}\n"
        )

    def test_a_plan_capped_below_a_rendition_does_not_see_it(self) -> None:
        allowed = {rendition.resolution for rendition in MANIFEST.renditions_up_to(Resolution.SD_480P)}
        text = render_master(MANIFEST, allowed, lambda r: r.directory)
        assert "RESOLUTION=854x480" in text
        assert "1280x720" not in text

    def test_a_higher_cap_than_the_title_has_lists_everything(self) -> None:
        assert MANIFEST.renditions_up_to(Resolution.UHD_4K) == MANIFEST.renditions

    def test_no_allowed_rendition_is_an_error_not_an_empty_playlist(self) -> None:
        with pytest.raises(ValueError, match="allowed"):
            render_master(MANIFEST, {Resolution.FHD_1080P}, lambda r: r.directory)

    def test_rendered_playlists_pass_the_validator(self) -> None:
        media = {r.directory: render_media(r, str, str) for r in MANIFEST.renditions}
        master = validate_master_playlist(
            render_master(MANIFEST, {r.resolution for r in MANIFEST.renditions}, lambda r: r.directory),
            media.__getitem__,
        )
        assert [variant.stream_info.bandwidth for variant in master.playlists] == [1_200_000, 2_800_000]


class TestCodecStrings:
    # The avcC of a 1280x720 rendition this pipeline made (High, level 3.1): header, one SPS, one PPS.
    HIGH_31 = bytes.fromhex("0164001fffe100186764001facd9405005ba10000003001000064000f183196001000568ef85f2c0fdf8f800")

    def test_avc1_comes_from_the_sps(self) -> None:
        assert avc1_codec_string(self.HIGH_31) == "avc1.64001f"

    def test_avc1_reads_the_constraint_flags(self) -> None:
        baseline = bytes.fromhex("0142c01effe1000b6742c01e95a0280bfe540001000468ce3c80")
        assert avc1_codec_string(baseline) == "avc1.42c01e"

    @pytest.mark.parametrize(
        "record", [b"", b"\x00" * 10, bytes.fromhex("0164001fffe0"), bytes.fromhex("0164001fffe100186764")]
    )
    def test_avc1_refuses_what_is_not_an_avcc_record(self, record: bytes) -> None:
        with pytest.raises(ValueError, match=r"avcC|AVCDecoderConfigurationRecord"):
            avc1_codec_string(record)

    @pytest.mark.parametrize(
        ("config", "expected"),
        [
            (bytes.fromhex("119056e500"), "mp4a.40.2"),  # AAC-LC, 48 kHz, stereo, as the pipeline writes it
            (bytes.fromhex("2b92"), "mp4a.40.5"),  # HE-AAC (SBR)
            (bytes.fromhex("f940"), "mp4a.40.42"),  # escaped object type: 32 + 10
        ],
    )
    def test_mp4a_names_the_audio_object_type(self, config: bytes, expected: str) -> None:
        assert mp4a_codec_string(config) == expected


class TestValidator:
    GOOD = render_media(LOW, str, str)

    def test_accepts_a_good_playlist(self) -> None:
        assert len(validate_media_playlist(self.GOOD).segments) == 3

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            (lambda text: text.replace("#EXT-X-VERSION:7", "#EXT-X-VERSION:3"), "below 6"),
            (lambda text: text.replace('#EXT-X-MAP:URI="init.mp4"\n', ""), "EXT-X-MAP"),
            (lambda text: text.replace("#EXT-X-TARGETDURATION:5", "#EXT-X-TARGETDURATION:4"), "over the target"),
            (lambda text: text.replace("#EXT-X-TARGETDURATION:5", "#EXT-X-TARGETDURATION:9"), "rounded up"),
            (lambda text: text.replace("#EXT-X-ENDLIST\n", ""), "ENDLIST"),
            (lambda text: text.replace("#EXT-X-PLAYLIST-TYPE:VOD\n", ""), "VOD"),
            (lambda text: text.replace("#EXTM3U\n", ""), "EXTM3U"),
        ],
    )
    def test_names_each_broken_rule(self, change, problem: str) -> None:
        with pytest.raises(PlaylistError, match=problem):
            validate_media_playlist(change(self.GOOD))

    def test_a_variant_without_codecs_is_reported(self) -> None:
        master = render_master(MANIFEST, {Resolution.SD_480P}, lambda r: r.directory)
        broken = master.replace(',CODECS="avc1.64001f,mp4a.40.2"', "")
        with pytest.raises(PlaylistError, match="no CODECS"):
            validate_master_playlist(broken, lambda uri: self.GOOD)
