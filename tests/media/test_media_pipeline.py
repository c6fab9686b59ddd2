"""The media pipeline on real clips: probe, ladder, transcode, package, measure, artwork, isolation."""

from __future__ import annotations

import array
import asyncio
import io
import math
import os
import shutil
import signal
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import msgspec
import pytest
from av.stream import Disposition
from av.video.frame import PictureType
from PIL import Image

from helpers import tool_missing
from media_validation import validate_hls_directory, validate_master_playlist, validate_media_playlist
from reelhouse.media import (
    TranscodeFailed,
    UnsupportedMedia,
    discard_partial_outputs,
    probe,
    process_media,
    process_media_in_subprocess,
    read_manifest,
    render_master,
    render_media,
)
from reelhouse.media.manifest import MASTER_PLAYLIST_FILENAME
from reelhouse.media.pipeline import PARTIAL_PREFIX, JobProgress, MediaJob, staging_directory_for, worker_command
from reelhouse.plans.resolutions import Resolution

from .clips import CLIP_FPS, CLIP_SECONDS, TEST_ENCODER, ProcessedClip, frame_times, make_test_clip


def _rendition_bytes(clip: ProcessedClip, directory: str) -> tuple[bytes, list[bytes]]:
    rendition_dir = clip.directory / directory
    segments = [path.read_bytes() for path in sorted(rendition_dir.glob("seg_*.m4s"))]
    return (rendition_dir / "init.mp4").read_bytes(), segments


def _media_playlists(clip: ProcessedClip) -> dict[str, m3u8.M3U8]:
    return {
        rendition.directory: m3u8.M3U8((clip.directory / rendition.directory / "index.m3u8").read_text())
        for rendition in clip.manifest.renditions
    }


class TestProbe:
    def test_describes_the_source(self, hd_clip: Path) -> None:
        source = probe(hd_clip)
        assert (source.width, source.height) == (1280, 720)
        assert (source.display_width, source.display_height) == (1280, 720)
        assert source.duration == pytest.approx(CLIP_SECONDS, abs=0.1)
        assert source.frame_rate == pytest.approx(CLIP_FPS)
        assert source.video_codec == "h264"
        assert source.has_audio
        assert (source.audio_sample_rate, source.audio_channels) == (44_100, 1)

    def test_the_default_audio_track_is_the_one_kept(self, tmp_path: Path) -> None:
        path = tmp_path / "two-languages.mkv"
        with av.open(str(path), "w", format="matroska") as output:
            video = output.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
            commentary = output.add_stream("aac", rate=44_100, layout="mono")
            main = output.add_stream("aac", rate=48_000, layout="stereo")
            commentary.disposition = Disposition(0)
            main.disposition = Disposition.default
            for index in range(5):
                frame = av.VideoFrame(64, 64, "yuv420p")
                frame.pts = index
                output.mux(video.encode(frame))
            output.mux(video.encode(None))
            for stream, rate, layout in ((commentary, 44_100, "mono"), (main, 48_000, "stereo")):
                silence = av.AudioFrame(format="fltp", layout=layout, samples=1024)
                silence.sample_rate, silence.pts = rate, 0
                for plane in silence.planes:
                    plane.update(bytes(plane.buffer_size))
                output.mux(stream.encode(silence))
                output.mux(stream.encode(None))
        described = probe(path)
        assert (described.audio_sample_rate, described.audio_channels) == (48_000, 2)

    def test_random_bytes_are_unsupported(self, tmp_path: Path) -> None:
        path = tmp_path / "noise.mp4"
        path.write_bytes(os.urandom(64 * 1024))
        with pytest.raises(UnsupportedMedia):
            probe(path)

    def test_a_text_file_is_unsupported_even_though_ffmpeg_opens_it(self, tmp_path: Path) -> None:
        # FFmpeg's tty demuxer turns .txt files into "video" (ANSI art): the probe must not accept that.
        path = tmp_path / "notes.txt"
        path.write_text("Reelhouse\n" * 500)
        with pytest.raises(UnsupportedMedia, match="not a video container"):
            probe(path)

    def test_audio_only_file_is_unsupported(self, tmp_path: Path) -> None:
        path = tmp_path / "tone.m4a"
        with av.open(str(path), "w", format="mp4") as output:
            audio = output.add_stream("aac", rate=48_000, layout="stereo")
            with av.open("sine=frequency=440:sample_rate=48000:duration=1", "r", format="lavfi") as tone:
                resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48_000, frame_size=1024)
                for frame in tone.decode(audio=0):
                    for chunk in resampler.resample(frame):
                        output.mux(audio.encode(chunk))
            output.mux(audio.encode(None))
        with pytest.raises(UnsupportedMedia, match="no video stream"):
            probe(path)

    def test_processing_a_non_video_leaves_nothing_behind(self, tmp_path: Path) -> None:
        source = tmp_path / "upload.bin"
        source.write_bytes(b"\x00\x01garbage" * 4096)
        destination = tmp_path / "titles" / "t1"
        with pytest.raises(UnsupportedMedia):
            process_media(source, destination, settings=TEST_ENCODER)
        assert not destination.exists()
        assert list(destination.parent.iterdir()) == []


class TestDamagedSources:
    def test_a_file_cut_short_fails_instead_of_becoming_a_short_title(self, tmp_path: Path) -> None:
        whole = make_test_clip(
            tmp_path / "whole.mkv",
            width=640,
            height=360,
            seconds=6,
            fps=25,
            with_audio=True,
            container_format="matroska",
        )
        cut = tmp_path / "cut.mkv"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        assert probe(cut).duration == pytest.approx(6, abs=0.1), "the header still claims the whole length"
        destination = tmp_path / "titles" / "cut"
        with pytest.raises(TranscodeFailed, match="cut short"):
            process_media(cut, destination, settings=TEST_ENCODER)
        assert list(destination.parent.iterdir()) == []

    async def test_the_child_process_reports_unsupported_media_as_such(self, tmp_path: Path) -> None:
        source = tmp_path / "upload.mp4"
        source.write_text("not a video at all\n" * 100)
        destination = tmp_path / "titles" / "text"
        with pytest.raises(UnsupportedMedia, match=r"upload\.mp4"):
            await process_media_in_subprocess(source, destination, settings=TEST_ENCODER)
        assert list(destination.parent.iterdir()) == []


class TestLadderAndPackaging:
    def test_a_720p_source_gets_480p_and_720p_and_nothing_above(self, processed_hd: ProcessedClip) -> None:
        renditions = processed_hd.manifest.renditions
        assert [r.resolution for r in renditions] == [Resolution.SD_480P, Resolution.HD_720P]
        assert [(r.width, r.height) for r in renditions] == [(854, 480), (1280, 720)]

    def test_every_playlist_passes_the_validator(self, processed_hd: ProcessedClip) -> None:
        master = validate_hls_directory(processed_hd.directory / MASTER_PLAYLIST_FILENAME)
        assert len(master.playlists) == 2

    def test_session_playlists_rendered_with_signed_uris_are_valid(self, processed_hd: ProcessedClip) -> None:
        manifest = read_manifest(processed_hd.directory)
        media = {
            f"https://api.example/media/t1/{r.directory}.m3u8?sig=abc": render_media(
                r,
                uri_for_segment=lambda name, r=r: f"https://cdn.example/t1/{r.directory}/{name}?sig=abc",
                uri_for_init=lambda name, r=r: f"https://cdn.example/t1/{r.directory}/{name}?sig=abc",
            )
            for r in manifest.renditions
        }
        master_text = render_master(
            manifest,
            renditions_allowed={Resolution.SD_480P},
            uri_for_rendition=lambda r: f"https://api.example/media/t1/{r.directory}.m3u8?sig=abc",
        )
        master = validate_master_playlist(master_text, media.__getitem__)
        assert [variant.stream_info.resolution for variant in master.playlists] == [(854, 480)]

    def test_extinf_adds_up_to_the_real_duration(self, processed_hd: ProcessedClip) -> None:
        for directory, playlist in _media_playlists(processed_hd).items():
            total = sum(segment.duration for segment in playlist.segments)
            assert total == pytest.approx(CLIP_SECONDS, abs=0.1), directory
            init, segments = _rendition_bytes(processed_hd, directory)
            frames = frame_times(init + b"".join(segments))
            decoded = (frames[-1][0] - frames[0][0]) + Fraction(1, CLIP_FPS)
            assert total == pytest.approx(float(decoded), abs=0.001), directory
        assert processed_hd.manifest.duration == pytest.approx(CLIP_SECONDS, abs=0.1)

    def test_segments_last_four_seconds_except_the_last(self, processed_hd: ProcessedClip) -> None:
        for directory, playlist in _media_playlists(processed_hd).items():
            durations = [segment.duration for segment in playlist.segments]
            assert durations[:-1] == pytest.approx([4.0] * (len(durations) - 1), abs=0.001), directory
            assert 0 < durations[-1] <= 4.0
            assert len(durations) == math.ceil(CLIP_SECONDS / 4)
            assert playlist.target_duration == 4

    def test_keyframes_fall_every_two_seconds_in_every_rendition(self, processed_hd: ProcessedClip) -> None:
        starts = set()
        for rendition in processed_hd.manifest.renditions:
            init, segments = _rendition_bytes(processed_hd, rendition.directory)
            frames = frame_times(init + b"".join(segments))
            # The encoder's B-frame delay shifts presentation by the same amount in every rendition.
            first = frames[0][0]
            starts.add(first)
            keyframes = [time - first for time, key in frames if key]
            assert keyframes == [Fraction(2 * n) for n in range(CLIP_SECONDS // 2)], rendition.resolution
        assert len(starts) == 1, "renditions must start at the same time to switch between them"

    def test_every_segment_starts_with_a_keyframe_and_decodes_on_its_own(self, processed_hd: ProcessedClip) -> None:
        for rendition in processed_hd.manifest.renditions:
            init, segments = _rendition_bytes(processed_hd, rendition.directory)
            for index, segment in enumerate(segments):
                frames = frame_times(init + segment)
                expected = 4 * CLIP_FPS if index < len(segments) - 1 else (CLIP_SECONDS % 4 or 4) * CLIP_FPS
                assert len(frames) == expected, (rendition.resolution, index)
                assert min(frames)[1], "closed GOP: the first frame shown is a keyframe"

    def test_bandwidths_are_what_the_file_sizes_give(self, processed_hd: ProcessedClip) -> None:
        for rendition in processed_hd.manifest.renditions:
            directory = processed_hd.directory / rendition.directory
            rates = [(directory / s.filename).stat().st_size * 8 / s.duration for s in rendition.segments]
            total_bytes = sum((directory / s.filename).stat().st_size for s in rendition.segments)
            assert rendition.bandwidth == math.ceil(max(rates))
            assert rendition.average_bandwidth == math.ceil(total_bytes * 8 / rendition.duration)
            assert rendition.average_bandwidth <= rendition.bandwidth

    def test_codecs_name_the_encoded_profile_and_level(self, processed_hd: ProcessedClip) -> None:
        for rendition in processed_hd.manifest.renditions:
            init, segments = _rendition_bytes(processed_hd, rendition.directory)
            with av.open(io.BytesIO(init + segments[0]), "r", format="mp4") as container:
                video = container.streams.video[0]
                next(container.decode(video))
                assert video.codec_context.profile == "High"
                level = video.codec_context.level
                assert container.streams.audio[0].codec_context.profile == "LC"
            assert rendition.codecs == f"avc1.6400{level:02x},mp4a.40.2"
            assert rendition.frame_rate == CLIP_FPS

    def test_every_rendition_carries_the_same_whole_soundtrack(self, processed_hd: ProcessedClip) -> None:
        packets_by_rendition = []
        for rendition in processed_hd.manifest.renditions:
            init, segments = _rendition_bytes(processed_hd, rendition.directory)
            data = init + b"".join(segments)
            with av.open(io.BytesIO(data), "r", format="mp4") as container:
                packets_by_rendition.append([bytes(p) for p in container.demux(audio=0) if p.size])
            with av.open(io.BytesIO(data), "r", format="mp4") as container:
                frames = list(container.decode(audio=0))
            assert {(f.sample_rate, f.layout.name, f.format.name) for f in frames} == {(48_000, "stereo", "fltp")}
            assert sum(f.samples for f in frames) / 48_000 == pytest.approx(CLIP_SECONDS, abs=0.05)
            # The 440 Hz tone is there (lavfi's sine peaks at 1/8), not silence.
            peak = max(max(abs(v) for v in array.array("f", bytes(f.planes[0]))[: f.samples]) for f in frames)
            assert peak > 0.1, rendition.resolution
        first, *others = packets_by_rendition
        assert all(packets == first for packets in others), "switching renditions must not change the sound"

    def test_ffmpeg_plays_the_master_playlist_without_an_error(self, processed_hd: ProcessedClip) -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            tool_missing("ffmpeg is not installed (Debian: apt-get install ffmpeg; scripts/test installs it)")
        master = str(processed_hd.directory / MASTER_PLAYLIST_FILENAME)
        # -map 0 decodes every rendition, not only the one ffmpeg would pick.
        result = subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-i", master, "-map", "0", "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""

    def test_manifest_on_disk_is_the_one_returned(self, processed_hd: ProcessedClip) -> None:
        assert read_manifest(processed_hd.directory) == processed_hd.manifest
        decoded = msgspec.json.decode((processed_hd.directory / "manifest.json").read_bytes())
        assert decoded["renditions"][1]["resolution"] == "720p"
        assert {"filename", "duration", "size"} <= decoded["renditions"][0]["segments"][0].keys()

    def test_a_small_silent_source_gets_one_480p_rung_at_its_own_size(
        self, processed_small_silent: ProcessedClip
    ) -> None:
        (rendition,) = processed_small_silent.manifest.renditions
        assert (rendition.resolution, rendition.width, rendition.height) == (Resolution.SD_480P, 320, 180)
        assert rendition.codecs.startswith("avc1.64")
        assert "mp4a" not in rendition.codecs
        validate_hls_directory(processed_small_silent.directory / MASTER_PLAYLIST_FILENAME)


class TestNtscTransportStream:
    """30000/1001 fps from MPEG-TS: no frame falls exactly on a 2 s mark, and the source starts at an offset."""

    FRAME = Fraction(1001, 30000)

    def test_keyframes_are_the_first_frames_at_or_after_each_two_second_mark(
        self, processed_ntsc_ts: ProcessedClip
    ) -> None:
        assert probe(processed_ntsc_ts.source).container == "mpegts"
        init, segments = _rendition_bytes(processed_ntsc_ts, "480p")
        frames = frame_times(init + b"".join(segments))
        first = frames[0][0]
        keyframes = [time - first for time, key in frames if key]
        assert keyframes == [math.ceil(Fraction(2 * n) / self.FRAME) * self.FRAME for n in range(4)]

    def test_segments_are_measured_to_the_frame(self, processed_ntsc_ts: ProcessedClip) -> None:
        (rendition,) = processed_ntsc_ts.manifest.renditions
        assert [segment.duration for segment in rendition.segments] == [4.004, 3.003]
        assert rendition.frame_rate == 29.97
        playlist = validate_hls_directory(processed_ntsc_ts.directory / MASTER_PLAYLIST_FILENAME)
        assert playlist.playlists[0].stream_info.frame_rate == 29.97
        media = validate_media_playlist((processed_ntsc_ts.directory / "480p" / "index.m3u8").read_text())
        assert media.target_duration == 5

    def test_progress_of_the_in_process_pipeline_is_monotonic_and_complete(
        self, processed_ntsc_ts: ProcessedClip
    ) -> None:
        assert processed_ntsc_ts.progress[0] == 0
        assert processed_ntsc_ts.progress[-1] == 100
        assert processed_ntsc_ts.progress == sorted(set(processed_ntsc_ts.progress))


def _phone_clip(path: Path) -> Path:
    """2 s of 320x180 pixels, left half red and right half blue, stored unturned with a 90 degree display matrix."""
    picture = Image.new("RGB", (320, 180), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, 160, 180))
    with av.open(str(path), "w", format="mp4") as output:
        video = output.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.set_display_rotation(90)
        for index in range(50):
            frame = av.VideoFrame.from_image(picture).reformat(format="yuv420p")
            frame.pts = index
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
    return path


class TestRotatedSource:
    def test_a_phone_video_is_turned_upright_as_players_show_it(self, tmp_path: Path) -> None:
        source = _phone_clip(tmp_path / "phone.mp4")
        described = probe(source)
        assert (described.rotation, described.display_width, described.display_height) == (90, 180, 320)
        destination = tmp_path / "titles" / "phone"
        manifest = process_media(source, destination, settings=TEST_ENCODER)
        (rendition,) = manifest.renditions
        assert (rendition.width, rendition.height) == (180, 320)
        init, segments = (destination / "480p" / "init.mp4").read_bytes(), (destination / "480p" / "seg_00000.m4s")
        with av.open(io.BytesIO(init + segments.read_bytes()), "r", format="mp4") as container:
            frame = next(container.decode(video=0))
            assert (frame.width, frame.height, frame.rotation) == (180, 320, 0)
        # Turned counter-clockwise: the right (blue) half is on top, as ffmpeg and players show the source.
        with Image.open(destination / manifest.poster) as poster:
            top, bottom = poster.convert("RGB").getpixel((90, 40)), poster.convert("RGB").getpixel((90, 280))
        assert top[2] > 200 > top[0]
        assert bottom[0] > 200 > bottom[2]


class TestAnamorphicSource:
    def test_a_wide_pal_source_becomes_square_pixel_16_by_9(self, tmp_path: Path) -> None:
        # 720x576 pixels shown 64:45 wide: a 16:9 picture of 1024x576.
        source = tmp_path / "pal.mp4"
        with av.open(str(source), "w", format="mp4") as output:
            video = output.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            video.width, video.height, video.pix_fmt = 720, 576, "yuv420p"
            video.codec_context.sample_aspect_ratio = Fraction(64, 45)
            with av.open("testsrc2=size=720x576:rate=25:duration=2", "r", format="lavfi") as pattern:
                for frame in pattern.decode(video=0):
                    frame.pict_type = PictureType.NONE
                    output.mux(video.encode(frame))
            output.mux(video.encode(None))
        assert (probe(source).display_width, probe(source).display_height) == (1024, 576)
        destination = tmp_path / "titles" / "pal"
        (rendition,) = process_media(source, destination, settings=TEST_ENCODER).renditions
        assert (rendition.resolution, rendition.width, rendition.height) == (Resolution.SD_480P, 854, 480)
        init = (destination / "480p" / "init.mp4").read_bytes()
        with av.open(io.BytesIO(init), "r", format="mp4") as container:
            assert container.streams.video[0].sample_aspect_ratio in {None, Fraction(1)}


class TestArtwork:
    def test_poster_is_a_frame_at_the_source_size(self, processed_hd: ProcessedClip) -> None:
        with Image.open(processed_hd.directory / processed_hd.manifest.poster) as poster:
            assert poster.format == "JPEG"
            assert poster.size == (1280, 720)

    def test_sprite_has_a_tile_every_two_seconds_indexed_by_webvtt(self, processed_hd: ProcessedClip) -> None:
        sprite = processed_hd.manifest.sprite
        assert sprite.count == CLIP_SECONDS // 2
        with Image.open(processed_hd.directory / sprite.filename) as sheet:
            assert sheet.format == "JPEG"
            assert sheet.size == (sprite.columns * 160, math.ceil(sprite.count / sprite.columns) * 90)
        vtt = (processed_hd.directory / sprite.index).read_text()
        assert vtt.startswith("WEBVTT\n")
        assert vtt.count("sprite.jpg#xywh=") == sprite.count
        assert f"00:00:08.000 --> 00:00:{CLIP_SECONDS:02d}.000\nsprite.jpg#xywh=640,0,160,90" in vtt


class TestIsolation:
    def test_progress_is_monotonic_and_reaches_100(self, processed_hd: ProcessedClip) -> None:
        progress = processed_hd.progress
        assert progress[-1] == 100
        assert progress == sorted(set(progress))
        assert len(progress) > 10  # reported along the way, not only at the end

    def test_an_existing_destination_is_refused(self, processed_hd: ProcessedClip) -> None:
        with pytest.raises(FileExistsError):
            process_media(processed_hd.source, processed_hd.directory, settings=TEST_ENCODER)

    def test_a_destination_ffmpeg_would_read_as_a_pattern_is_refused(self, processed_hd: ProcessedClip) -> None:
        destination = processed_hd.directory.parent / "title%05d"
        with pytest.raises(ValueError, match="cannot contain"):
            process_media(processed_hd.source, destination, settings=TEST_ENCODER)
        assert not destination.exists()

    async def test_a_cancelled_job_kills_its_worker_and_leaves_nothing(self, hd_clip: Path, tmp_path: Path) -> None:
        destination = tmp_path / "titles" / "cancelled"
        under_way = asyncio.Event()

        def on_progress(percent: int) -> None:
            if percent >= 10:
                under_way.set()

        job = asyncio.create_task(
            process_media_in_subprocess(hd_clip, destination, settings=TEST_ENCODER, on_progress=on_progress)
        )
        await asyncio.wait_for(under_way.wait(), timeout=60)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert not destination.exists()
        assert list(destination.parent.iterdir()) == [], "the staging directory is removed too"

    def test_a_killed_worker_leaves_nothing_at_the_destination(self, hd_clip: Path, tmp_path: Path) -> None:
        destination = tmp_path / "titles" / "killed"
        destination.parent.mkdir(parents=True)
        job = MediaJob(str(hd_clip), str(destination), str(staging_directory_for(destination)), TEST_ENCODER)
        worker = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert worker.stdin is not None
        assert worker.stdout is not None
        worker.stdin.write(msgspec.json.encode(job))
        worker.stdin.close()
        try:
            for line in worker.stdout:
                event = msgspec.json.decode(line, type=JobProgress)
                if event.percent >= 20:
                    break
            worker.send_signal(signal.SIGKILL)
        finally:
            worker.kill()
            worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
        assert not destination.exists()
        leftovers = [path.name for path in destination.parent.iterdir()]
        assert len(leftovers) == 1
        assert leftovers[0].startswith(PARTIAL_PREFIX)
        assert discard_partial_outputs(destination.parent)
        assert list(destination.parent.iterdir()) == []
