"""Clips made with PyAV for the media tests, and what the tests read back from the pipeline's output."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from reelhouse.media import EncoderSettings, MediaManifest

TEST_ENCODER = EncoderSettings(preset="veryfast", crf=23)
CLIP_SECONDS = 10
CLIP_FPS = 25


def make_test_clip(
    path: Path,
    *,
    width: int,
    height: int,
    seconds: int,
    fps: Fraction | int,
    with_audio: bool,
    container_format: str,
) -> Path:
    """A moving test pattern (and a 440 Hz tone at 44.1 kHz mono, so the pipeline resamples it) in H.264/AAC."""
    rate = Fraction(fps)
    with av.open(str(path), "w", format=container_format) as output:
        video = output.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "18"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = output.add_stream("aac", rate=44_100, layout="mono") if with_audio else None
        source = f"testsrc2=size={width}x{height}:rate={rate.numerator}/{rate.denominator}:duration={seconds}"
        with av.open(source, "r", format="lavfi") as pattern:
            for frame in pattern.decode(video=0):
                frame.pict_type = PictureType.NONE  # lavfi marks every frame I; let x264 choose
                output.mux(video.encode(frame))
        output.mux(video.encode(None))
        if audio is not None:
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=44_100, frame_size=1024)
            with av.open(f"sine=frequency=440:sample_rate=44100:duration={seconds}", "r", format="lavfi") as tone:
                for frame in tone.decode(audio=0):
                    for chunk in resampler.resample(frame):
                        output.mux(audio.encode(chunk))
            for chunk in resampler.resample(None):
                output.mux(audio.encode(chunk))
            output.mux(audio.encode(None))
    return path


@dataclass(frozen=True)
class ProcessedClip:
    source: Path
    directory: Path
    manifest: MediaManifest
    progress: list[int]


def frame_times(data: bytes) -> list[tuple[Fraction, bool]]:
    """Presentation time and key-frame flag of every decoded video frame of an fMP4 (init + segments)."""
    with av.open(io.BytesIO(data), "r", format="mp4") as container:
        return [
            (Fraction(frame.pts) * (frame.time_base or 1), frame.key_frame)
            for frame in container.decode(video=0)
            if frame.pts is not None
        ]
