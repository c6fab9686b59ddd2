"""Media figures for ``scripts/bench``: transcode speed against the ffmpeg command line, and a
wrk script for a player's media requests (a playlist and a segment, in turn).

Transcode speed is the ffmpeg CLI's wall time divided by ours, encoding the same source to the
same ladder (480p and 720p of a 1280x720 clip with sound, x264 at the same preset, CRF, VBV caps
and 2 s keyframes, AAC 128 kbit/s, 4 s fMP4 HLS segments), one after the other: 1.0 means as fast.
Ours is the media worker's child process end to end (start-up, probe, transcode, measuring,
artwork, fsync). The CLI runs at the worker's CPU niceness, so other work on the machine slows
both alike; both runs' CPU seconds are recorded too, as they hardly depend on that other work.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from reelhouse.media import EncoderSettings, ladder_for, process_media_in_subprocess
from reelhouse.media.pipeline import WORKER_NICENESS

SOURCE_SIZE = (1280, 720)
FPS = 25


def make_source(path: Path, seconds: int) -> Path:
    width, height = SOURCE_SIZE
    command = [
        "ffmpeg", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={FPS}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603
    return path


def ffmpeg_ladder_command(source: Path, destination: Path, settings: EncoderSettings) -> list[str]:
    """The ffmpeg CLI doing what the pipeline does: one decode, every rung, 4 s fMP4 HLS."""
    rungs = ladder_for(*SOURCE_SIZE)
    split = f"[0:v]split={len(rungs)}" + "".join(f"[v{i}]" for i in range(len(rungs)))
    scales = [f"[v{i}]scale={rung.width}:{rung.height}[s{i}]" for i, rung in enumerate(rungs)]
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-filter_complex", ";".join([split, *scales])]
    for i, rung in enumerate(rungs):
        command += ["-map", f"[s{i}]", "-map", "0:a"]
        command += [f"-c:v:{i}", "libx264", f"-preset:v:{i}", settings.preset, f"-crf:v:{i}", str(settings.crf)]
        command += [f"-maxrate:v:{i}", str(rung.max_video_bitrate), f"-bufsize:v:{i}", str(rung.video_buffer_size)]
        command += [f"-profile:v:{i}", "high", f"-c:a:{i}", "aac", f"-b:a:{i}", "128k", f"-ac:a:{i}", "2"]
    command += ["-force_key_frames", "expr:gte(t,n_forced*2)", "-sc_threshold", "0"]
    command += ["-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4"]
    command += ["-var_stream_map", " ".join(f"v:{i},a:{i}" for i in range(len(rungs)))]
    command += ["-hls_segment_filename", str(destination / "%v" / "seg_%05d.m4s")]
    command += ["-master_pl_name", "master.m3u8", str(destination / "%v" / "index.m3u8")]
    return command


async def transcode_speed(work: Path, seconds: int, settings: EncoderSettings | None = None) -> dict[str, Any]:
    """Ours and the ffmpeg CLI on the same source; the processed output is left in ``work / "ours"``."""
    settings = settings or EncoderSettings()
    ours, theirs = work / "ours", work / "ffmpeg"
    await asyncio.to_thread(_fresh, work, ours, theirs)
    source = await asyncio.to_thread(make_source, work / "source.mp4", seconds)
    load = os.getloadavg()[0]
    began, cpu_began = time.perf_counter(), _children_cpu_seconds()
    await process_media_in_subprocess(source, ours, settings=settings)
    ours_seconds, ours_cpu = time.perf_counter() - began, _children_cpu_seconds() - cpu_began
    began, cpu_began = time.perf_counter(), _children_cpu_seconds()
    command = ["nice", "-n", str(WORKER_NICENESS), *ffmpeg_ladder_command(source, theirs, settings)]
    process = await asyncio.create_subprocess_exec(*command)
    await process.wait()
    ffmpeg_seconds, ffmpeg_cpu = time.perf_counter() - began, _children_cpu_seconds() - cpu_began
    return {
        "source_seconds": seconds,
        "preset": settings.preset,
        "ours_seconds": round(ours_seconds, 2),
        "ffmpeg_seconds": round(ffmpeg_seconds, 2),
        "ours_cpu_seconds": round(ours_cpu, 2),
        "ffmpeg_cpu_seconds": round(ffmpeg_cpu, 2),
        "load_average_before": round(load, 2),
        "ffmpeg_ok": process.returncode == 0,
        "speed_ratio": round(ffmpeg_seconds / ours_seconds, 3) if ours_seconds else None,
        "realtime_factor": round(seconds / ours_seconds, 2) if ours_seconds else None,
    }


def _children_cpu_seconds() -> float:
    """User and system CPU time of the child processes waited for so far (each run is one such child)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _fresh(work: Path, ours: Path, theirs: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(ours, ignore_errors=True)  # the pipeline creates its destination itself
    shutil.rmtree(theirs, ignore_errors=True)
    theirs.mkdir()


def media_requests_script(path: Path, playlist: str, segment: str) -> Path:
    """A wrk script asking for the media playlist and a segment in turn, as a player does."""
    path.write_text(
        f"local targets = {{{json.dumps(playlist)}, {json.dumps(segment)}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  return wrk.format('GET', targets[(i % 2) + 1], nil, nil)\n"
        "end\n"
    )
    return path


class StaticFiles:
    """A plain static file server over the media store's directory on 127.0.0.1 (a CDN's stand-in)."""

    def __init__(self, directory: Path, log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(directory)]
        with log.open("wb") as output:
            self._process = subprocess.Popen([*command, str(port)], stdout=output, stderr=subprocess.STDOUT)  # noqa: S603

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


async def play_through(http: httpx.AsyncClient, stream_url: str, *, api_origin: str) -> dict[str, Any]:
    """Fetch what a player fetches for the whole title at its lowest rendition (master, media
    playlist, init segment, every key and segment), counting the bytes each origin sent."""
    by_origin: dict[str, int] = {}
    segment_bytes_from_api = 0
    requests = 0

    async def fetch(url: str, *, segment: bool = False) -> bytes:
        nonlocal segment_bytes_from_api
        nonlocal requests
        for _ in range(50):  # the file server may still be starting
            try:
                response = await http.get(url)
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"nothing answers {url}")
        response.raise_for_status()
        origin = "api" if str(response.url).startswith(api_origin) else "public"
        by_origin[origin] = by_origin.get(origin, 0) + len(response.content)
        if segment and origin == "api":
            segment_bytes_from_api += len(response.content)
        requests += 1
        return response.content

    master = (await fetch(stream_url)).decode()
    playlist_url = urljoin(stream_url, next(line for line in master.splitlines() if line and line[0] != "#"))
    playlist = (await fetch(playlist_url)).decode()
    keys = 0
    for line in playlist.splitlines():
        if line.startswith(("#EXT-X-MAP:", "#EXT-X-KEY:")):
            uri = line.split('URI="', 1)[1].split('"', 1)[0]
            keys += line.startswith("#EXT-X-KEY:")
            await fetch(urljoin(playlist_url, uri), segment=line.startswith("#EXT-X-MAP:"))
        elif line and not line.startswith("#"):
            await fetch(urljoin(playlist_url, line), segment=True)
    total = sum(by_origin.values())
    return {
        "requests": requests,
        "keys": keys,
        "api_bytes": by_origin.get("api", 0),
        "segment_bytes_from_api": segment_bytes_from_api,
        "public_bytes": by_origin.get("public", 0),
        "offloaded_share": round(by_origin.get("public", 0) / total, 4) if total else None,
    }
