"""Transcode a source into every rung of its ladder and package each as CMAF/fMP4 HLS, in one decoding pass.

Why PyAV and not the ffmpeg command line: the PyAV wheels carry FFmpeg's
libraries with libx264 and the AAC encoder, so the pipeline runs wherever
``pip install`` runs, with no system ffmpeg whose version, build options and
log format differ from machine to machine. Working on frames in Python also
lets one decode of the source feed every rung (the ffmpeg CLI needs either one
run per rung or a long ``filter_complex``), puts each keyframe exactly on the
2 s grid by flagging the frame itself rather than through an expression
language, reports progress from the frames' own timestamps instead of parsing
``-progress`` output, and raises FFmpeg's errors as exceptions with their
codes. The heavy work still runs outside the event loop: ``pipeline`` starts it
in a child process. It is as fast as the ffmpeg CLI encoding the same ladder
(``scripts/bench --only media``): codecs use frame threading as the CLI does,
and the rungs share one AAC encode.

Each rendition goes through FFmpeg's HLS muxer in fMP4 mode: an ``init.mp4``
and 4 s ``seg_NNNNN.m4s`` segments. The keyframes every 2 s are forced IDR
frames (closed GOPs, scene cuts never add one), so every segment starts with a
keyframe at the same time in every rendition and a player can switch between
renditions at any segment boundary. The muxer's own playlist is discarded:
``hls`` writes playlists from measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal

import av
import av.container
import msgspec
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from reelhouse.media.artwork import ArtworkCollector
from reelhouse.media.errors import TranscodeFailed, UnsupportedMedia
from reelhouse.media.hls import INIT_FILENAME, SEGMENT_FILENAME_PATTERN
from reelhouse.media.ladder import (
    AUDIO_BITRATE,
    AUDIO_CODEC,
    AUDIO_LAYOUT,
    AUDIO_SAMPLE_RATE,
    VIDEO_PROFILE,
    Rung,
)
from reelhouse.media.probe import SourceMedia, main_audio_stream, main_video_stream

KEYFRAME_INTERVAL = Fraction(2)
SEGMENT_DURATION = 4
_MUXER_PLAYLIST = "muxer.m3u8"
_AUDIO_TIME_BASE = Fraction(1, AUDIO_SAMPLE_RATE)
# AAC-LC encodes 1024 samples per frame; the encoder refuses other sizes except for the last frame.
_AAC_FRAME_SIZE = 1024


#: x264 presets that keep H.264 High profile. ``ultrafast`` is left out: it turns off the 8x8 transform
#: and CABAC, and x264 then writes Constrained Baseline whatever profile was asked for.
X264Preset = Literal["superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]


class EncoderSettings(msgspec.Struct, frozen=True):
    """How hard x264 works. ``slow`` is the production default; tests use a fast preset."""

    preset: X264Preset = "slow"
    #: Constant quality, capped per rung by the ladder's VBV maxrate (lower is better and bigger).
    crf: Annotated[int, msgspec.Meta(ge=0, le=51)] = 21
    #: x264 threads per rendition; 0 lets x264 choose from the CPU count.
    threads: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0


def _x264_options(rung: Rung, frame_rate: Fraction, settings: EncoderSettings) -> dict[str, str]:
    # Keyframes are forced on the 2 s grid (see _RenditionWriter.write_video); keyint is only a backstop
    # twice as far out, and scenecut=0 stops x264 from adding keyframes of its own between them.
    backstop = 2 * math.ceil(KEYFRAME_INTERVAL * frame_rate)
    options = {
        "preset": settings.preset,
        "profile": VIDEO_PROFILE,
        "crf": str(settings.crf),
        "maxrate": str(rung.max_video_bitrate),
        "bufsize": str(rung.video_buffer_size),
        "forced-idr": "1",
        "x264-params": f"keyint={backstop}:scenecut=0:open-gop=0",
    }
    if settings.threads:
        options["threads"] = str(settings.threads)
    return options


def _configure_audio(codec_context: av.AudioCodecContext) -> None:
    codec_context.sample_rate = AUDIO_SAMPLE_RATE
    codec_context.layout = AUDIO_LAYOUT
    codec_context.format = "fltp"
    codec_context.bit_rate = AUDIO_BITRATE
    codec_context.time_base = _AUDIO_TIME_BASE


def _use_frame_threads(codec_context: av.CodecContext, threads: int = 0) -> None:
    """Frame threading, as the ffmpeg CLI sets it (0 threads: as many as the codec picks for the CPU count).

    PyAV opens every codec with slice threading. For libx264 that means sliced threads: each encode call
    waits until its frame is done, so the rungs and the decoder take turns on the CPU instead of overlapping.
    For the H.264 decoder it means one thread, as sources hold one slice per frame.
    """
    codec_context.thread_type = "AUTO"
    codec_context.thread_count = threads


class _RenditionWriter:
    """One rung's encoders and its HLS fMP4 muxer."""

    def __init__(
        self,
        directory: Path,
        rung: Rung,
        *,
        frame_rate: Fraction,
        video_time_base: Fraction,
        with_audio: bool,
        settings: EncoderSettings,
    ) -> None:
        directory.mkdir(parents=True)
        self.directory = directory
        self.rung = rung
        self._closed = False
        # One scaler for the whole rendition: ``frame.reformat`` would set up and free a scaling context per frame.
        self._scaler = VideoReformatter()
        self.container = av.open(
            str(directory / _MUXER_PLAYLIST),
            "w",
            format="hls",
            options={
                "hls_time": str(SEGMENT_DURATION),
                "hls_playlist_type": "vod",
                "hls_list_size": "0",
                "hls_segment_type": "fmp4",
                "hls_fmp4_init_filename": INIT_FILENAME,
                "hls_segment_filename": str(directory / SEGMENT_FILENAME_PATTERN),
            },
        )
        self.video = self.container.add_stream(
            "libx264", rate=frame_rate, options=_x264_options(rung, frame_rate, settings)
        )
        self.video.width = rung.width
        self.video.height = rung.height
        self.video.pix_fmt = "yuv420p"
        self.video.codec_context.time_base = video_time_base
        _use_frame_threads(self.video.codec_context, settings.threads)
        self.audio = self.container.add_stream(AUDIO_CODEC) if with_audio else None
        if self.audio is not None:
            # Configured as the shared encoder is, so the stream describes (extradata, priming) the packets it gets.
            _configure_audio(self.audio.codec_context)

    def write_video(self, frame: av.VideoFrame, pts: int, time_base: Fraction, keyframe: bool) -> None:
        scaled = self._scaler.reformat(
            frame, width=self.rung.width, height=self.rung.height, format="yuv420p", interpolation="BICUBIC"
        )
        scaled.pts = pts
        scaled.time_base = time_base
        # Always set: a decoded frame carries the source's picture type, which x264 would otherwise obey.
        scaled.pict_type = PictureType.I if keyframe else PictureType.NONE
        self.container.mux(self.video.encode(scaled))

    def write_audio(self, packets: list[av.Packet[av.AudioStream]]) -> None:
        """Mux audio the shared encoder made (the muxer takes its own reference: the packets stay usable)."""
        if self.audio is not None:
            for packet in packets:
                packet.stream = self.audio
                self.container.mux_one(packet)

    def finish(self) -> None:
        """Drain the video encoder and write the last segment (the audio is drained by the shared encoder)."""
        self.container.mux(self.video.encode(None))
        self.close()
        (self.directory / _MUXER_PLAYLIST).unlink(missing_ok=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.container.close()


#: Filters that turn a frame the way players would, by the display matrix's counter-clockwise rotation.
_UPRIGHT_FILTERS: dict[int, tuple[tuple[str, str], ...]] = {
    90: (("transpose", "cclock"),),
    180: (("hflip", ""), ("vflip", "")),
    270: (("transpose", "clock"),),
}


class _Upright:
    """Turns decoded frames upright, so renditions need no display matrix (not every player honours one)."""

    def __init__(self, stream: av.VideoStream, rotation: int) -> None:
        self.graph = av.filter.Graph()
        nodes = [self.graph.add_buffer(template=stream)]
        nodes += [self.graph.add(name, arguments) for name, arguments in _UPRIGHT_FILTERS[rotation]]
        nodes.append(self.graph.add("buffersink"))
        self.graph.link_nodes(*nodes).configure()

    def turn(self, frame: av.VideoFrame) -> av.VideoFrame:
        self.graph.vpush(frame)
        return self.graph.vpull()


def encode_renditions(
    source_path: Path,
    source: SourceMedia,
    rungs: tuple[Rung, ...],
    output_directory: Path,
    *,
    settings: EncoderSettings,
    on_progress: Callable[[float], None],
    artwork: ArtworkCollector | None = None,
) -> None:
    """Encode and package every rung into ``output_directory / <resolution>/``.

    ``on_progress`` gets the fraction of the source done (0..1), from the decoded frames' timestamps;
    ``artwork`` sees every decoded frame. Raises ``TranscodeFailed`` when FFmpeg stops on an error.
    """
    try:
        with av.open(str(source_path), "r", metadata_errors="ignore") as container:
            transcode = _LadderTranscode(container, source, on_progress, artwork)
            try:
                for rung in rungs:
                    transcode.add_rendition(output_directory / rung.resolution.value, rung, settings)
                transcode.run()
            finally:
                transcode.close()
    except av.FFmpegError as error:
        raise TranscodeFailed(f"transcoding stopped: {error}") from error


class _LadderTranscode:
    """One pass over the source: each decoded frame goes to every rendition's encoders."""

    def __init__(
        self,
        container: av.container.InputContainer,
        source: SourceMedia,
        on_progress: Callable[[float], None],
        artwork: ArtworkCollector | None,
    ) -> None:
        self.container = container
        self.source = source
        self.on_progress = on_progress
        self.artwork = artwork
        video_in = main_video_stream(container)
        if video_in is None:
            raise UnsupportedMedia("the source has no video stream")
        self.video_in = video_in
        _use_frame_threads(video_in.codec_context)
        self.audio_in = main_audio_stream(container)
        self.video_time_base = self.video_in.time_base or Fraction(1, 90_000)
        self.frame_rate = self.video_in.average_rate or self.video_in.guessed_rate or Fraction(25)
        # Every stream is timed from the container's start, so audio keeps its offset to the video.
        self.origin = Fraction(container.start_time or 0, av.time_base)
        self.origin_ticks = math.floor(self.origin / self.video_time_base)
        self.upright = _Upright(self.video_in, source.rotation) if source.rotation in _UPRIGHT_FILTERS else None
        self.writers: list[_RenditionWriter] = []
        self.resampler = av.AudioResampler(
            format="fltp", layout=AUDIO_LAYOUT, rate=AUDIO_SAMPLE_RATE, frame_size=_AAC_FRAME_SIZE
        )
        #: Every rendition carries the same audio: it is encoded once and its packets muxed into each.
        self.audio_encoder: av.AudioCodecContext | None = None
        if self.audio_in is not None:
            self.audio_encoder = av.CodecContext.create(AUDIO_CODEC, "w")
            _configure_audio(self.audio_encoder)
        #: Keyframes fall every KEYFRAME_INTERVAL from the first video frame, which need not be at zero
        #: (audio may start first); the segmenter cuts relative to that frame too.
        self.keyframe_grid_start: Fraction | None = None
        self.next_keyframe = Fraction(0)
        self.last_pts: int | None = None
        #: Samples written so far at 48 kHz, counted from the container's start; None before the first.
        self.audio_samples: int | None = None
        self.frames = 0

    def add_rendition(self, directory: Path, rung: Rung, settings: EncoderSettings) -> None:
        self.writers.append(
            _RenditionWriter(
                directory,
                rung,
                frame_rate=self.frame_rate,
                video_time_base=self.video_time_base,
                with_audio=self.audio_in is not None,
                settings=settings,
            )
        )

    def run(self) -> None:
        streams = [self.video_in] if self.audio_in is None else [self.video_in, self.audio_in]
        for packet in self.container.demux(streams):
            try:
                decoded = packet.decode()
            except av.InvalidDataError:
                continue  # a damaged packet: skip it, as players do, rather than fail the whole title
            for frame in decoded:
                if isinstance(frame, av.VideoFrame):
                    self._video(frame)
                elif isinstance(frame, av.AudioFrame):
                    self._audio(frame)
        if self.audio_samples is not None:
            for resampled in self.resampler.resample(None):
                self._write_audio(resampled)
        if self.audio_encoder is not None and self.audio_encoder.is_open:
            self._mux_audio(self.audio_encoder.encode(None))
        if self.frames == 0:
            raise TranscodeFailed("the source's video has no decodable frames")
        for writer in self.writers:
            writer.finish()

    def _video(self, frame: av.VideoFrame) -> None:
        if frame.pts is None:
            return
        pts = frame.pts - self.origin_ticks
        # Pre-roll before the start and repeated timestamps cannot be encoded in order.
        if pts < 0 or (self.last_pts is not None and pts <= self.last_pts):
            return
        self.last_pts = pts
        time = pts * self.video_time_base
        if self.keyframe_grid_start is None:
            self.keyframe_grid_start = time
        since_start = time - self.keyframe_grid_start
        keyframe = since_start >= self.next_keyframe
        if keyframe:
            # The first frame at or after each mark: at 30000/1001 fps no frame falls on 2 s exactly.
            self.next_keyframe = (math.floor(since_start / KEYFRAME_INTERVAL) + 1) * KEYFRAME_INTERVAL
        if self.upright is not None:
            frame = self.upright.turn(frame)
        for writer in self.writers:
            writer.write_video(frame, pts, self.video_time_base, keyframe)
        if self.artwork is not None:
            self.artwork.offer(frame, float(time))
        self.frames += 1
        if self.source.duration > 0:
            self.on_progress(min(1.0, float(time) / self.source.duration))

    def _audio(self, frame: av.AudioFrame) -> None:
        if self.audio_samples is None:
            start = (frame.pts or 0) * (frame.time_base or _AUDIO_TIME_BASE) - self.origin
            self.audio_samples = max(0, round(start * AUDIO_SAMPLE_RATE))
        for resampled in self.resampler.resample(frame):
            self._write_audio(resampled)

    def _write_audio(self, frame: av.AudioFrame) -> None:
        # Audio is timed by counting samples: resampled frames follow each other without gaps or overlaps.
        samples = self.audio_samples or 0
        frame.pts = samples
        frame.time_base = _AUDIO_TIME_BASE
        if self.audio_encoder is not None:
            self._mux_audio(self.audio_encoder.encode(frame))
        self.audio_samples = samples + frame.samples

    def _mux_audio(self, packets: list[av.Packet[av.AudioStream]]) -> None:
        for writer in self.writers:
            writer.write_audio(packets)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
