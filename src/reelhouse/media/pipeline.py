"""A media job from source file to playable output: probe, ladder, transcode and package, measure, artwork.

Output is all-or-nothing: everything is written into a staging directory
beside the destination and renamed into place in one step once complete, so
the destination either does not exist or holds a finished, measured title.
The destination must not exist yet: a replacement goes to a new directory and
the caller switches to it (in the same transaction that marks the title
``ready``), so a title that plays keeps playing while its replacement is made.

``process_media`` does the work in the calling process and blocks.
``process_media_in_subprocess`` is the entry point for async code: it runs the
same function in a child Python process, so the event loop never waits on
FFmpeg, a crash or a kill takes only the child with it, and cancelling the
awaiting task kills the child and removes its staging directory. Progress
comes back as JSON lines on the child's stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import sys
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from reelhouse.media.artwork import ArtworkCollector
from reelhouse.media.errors import MediaError, TranscodeFailed, UnsupportedMedia
from reelhouse.media.hls import measure_rendition, render_master, render_media
from reelhouse.media.ladder import ladder_for
from reelhouse.media.manifest import (
    MASTER_PLAYLIST_FILENAME,
    MEDIA_PLAYLIST_FILENAME,
    MediaManifest,
    read_manifest,
    write_manifest,
)
from reelhouse.media.packaging import EncoderSettings, encode_renditions
from reelhouse.media.probe import probe

#: Staging directories are named ``.partial-<destination name>-<random>`` beside the destination.
PARTIAL_PREFIX = ".partial-"
#: The child lowers its CPU priority so API requests on the same machine go first.
WORKER_NICENESS = 10

#: Output shorter than this share of the source's stated video length means the source was cut short.
COMPLETE_SHARE = 0.9

# Where the percentages go: probing is quick, transcoding is nearly all of it, measuring and artwork the rest.
_PROBED = 1
_TRANSCODED = 92
_MEASURED = 97

ProgressCallback = Callable[[int], None]
AsyncProgressCallback = Callable[[int], Awaitable[None] | None]


class _ProgressReporter:
    """Turns the stages' fractions into whole percentages that only ever go up, each reported once."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._reported = -1

    def __call__(self, percent: float) -> None:
        whole = max(0, min(100, int(percent)))
        if whole > self._reported:
            self._reported = whole
            if self._callback is not None:
                self._callback(whole)


def staging_directory_for(destination: Path) -> Path:
    return destination.parent / f"{PARTIAL_PREFIX}{destination.name}-{uuid.uuid4().hex[:12]}"


def process_media(
    source: Path,
    destination: Path,
    *,
    settings: EncoderSettings | None = None,
    on_progress: ProgressCallback | None = None,
    staging: Path | None = None,
) -> MediaManifest:
    """Process ``source`` into ``destination`` (renditions, playlists, poster, sprite, ``manifest.json``).

    ``on_progress`` gets whole percentages, increasing, ending with 100 once the output is in place.
    Raises ``UnsupportedMedia`` for a source that is not decodable video, ``TranscodeFailed`` when
    FFmpeg stops part way, ``FileExistsError`` when ``destination`` exists; nothing is left at
    ``destination`` or in ``staging`` after an error.
    """
    _check_destination(destination)
    settings = settings or EncoderSettings()
    staging = staging or staging_directory_for(destination)
    progress = _ProgressReporter(on_progress)
    progress(0)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir()
    try:
        manifest = _process_into(source, staging, settings, progress)
        # On disk before the rename, so a power cut cannot leave the final path with empty files.
        _sync_tree(staging)
        staging.rename(destination)
        _sync_path(destination.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(100)
    return manifest


def _check_destination(destination: Path) -> None:
    # FFmpeg's segmenter expands printf conversions in the paths it writes to.
    if "%" in str(destination):
        raise ValueError(f"a media destination cannot contain '%': {destination}")
    if destination.exists():
        raise FileExistsError(f"{destination} exists; media goes to a new directory")


def _process_into(source: Path, staging: Path, settings: EncoderSettings, progress: _ProgressReporter) -> MediaManifest:
    source_media = probe(source)
    progress(_PROBED)
    rungs = ladder_for(source_media.display_width, source_media.display_height)
    artwork = ArtworkCollector(source_media.duration, source_media.display_width, source_media.display_height)
    encode_renditions(
        source,
        source_media,
        rungs,
        staging,
        settings=settings,
        on_progress=lambda done: progress(_PROBED + done * (_TRANSCODED - _PROBED)),
        artwork=artwork,
    )
    renditions = tuple(measure_rendition(staging, rung) for rung in rungs)
    produced = max(rendition.duration for rendition in renditions)
    stated = source_media.video_duration or source_media.duration
    if produced < stated * COMPLETE_SHARE:
        raise TranscodeFailed(
            f"the video stops at {produced:.1f} s of the {stated:.1f} s it states: is the file cut short?"
        )
    for rendition in renditions:
        playlist = render_media(rendition, uri_for_segment=str, uri_for_init=str)
        (staging / rendition.directory / MEDIA_PLAYLIST_FILENAME).write_text(playlist, encoding="utf-8")
    progress(_MEASURED)
    poster, sprite = artwork.write(staging, duration=produced)
    manifest = MediaManifest(
        duration=round(produced, 6),
        renditions=renditions,
        poster=poster,
        sprite=sprite,
    )
    master = render_master(
        manifest,
        renditions_allowed={rendition.resolution for rendition in renditions},
        uri_for_rendition=lambda rendition: f"{rendition.directory}/{MEDIA_PLAYLIST_FILENAME}",
    )
    (staging / MASTER_PLAYLIST_FILENAME).write_text(master, encoding="utf-8")
    write_manifest(manifest, staging)
    return manifest


def _sync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            _sync_path(Path(directory, name))
        _sync_path(Path(directory))


def discard_partial_outputs(directory: Path) -> list[Path]:
    """Remove staging directories that jobs killed mid-way left in ``directory``; returns what was removed.

    Call it where no job is running in ``directory`` (a worker's start-up): a running job's staging
    directory looks the same.
    """
    removed = []
    for path in directory.glob(f"{PARTIAL_PREFIX}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class MediaJob(msgspec.Struct, frozen=True):
    """What the child process is asked to do (JSON on its stdin)."""

    source: str
    destination: str
    staging: str
    settings: EncoderSettings = msgspec.field(default_factory=EncoderSettings)


class JobProgress(msgspec.Struct, frozen=True, tag="progress"):
    percent: int


class JobFinished(msgspec.Struct, frozen=True, tag="finished"):
    pass


class JobFailed(msgspec.Struct, frozen=True, tag="failed"):
    code: str
    detail: str


JobEvent = JobProgress | JobFinished | JobFailed

_ERRORS_BY_CODE: dict[str, type[MediaError]] = {
    UnsupportedMedia.code: UnsupportedMedia,
    TranscodeFailed.code: TranscodeFailed,
}
_STDERR_LINES_KEPT = 20


def worker_command() -> list[str]:
    """The command line of the child process (reads a ``MediaJob``, writes ``JobEvent`` lines)."""
    return [sys.executable, "-m", "reelhouse.media.pipeline"]


async def process_media_in_subprocess(
    source: Path,
    destination: Path,
    *,
    settings: EncoderSettings | None = None,
    on_progress: AsyncProgressCallback | None = None,
) -> MediaManifest:
    """``process_media`` in a child process, awaitable without blocking the event loop.

    ``on_progress`` (plain or async) runs on the event loop with each new percentage. Cancelling the
    awaiting task kills the child and removes its staging directory; errors are raised as in
    ``process_media``.
    """
    if not await asyncio.to_thread(source.is_file):
        raise FileNotFoundError(source)
    await asyncio.to_thread(_check_destination, destination)
    staging = staging_directory_for(destination)
    job = MediaJob(str(source), str(destination), str(staging), settings or EncoderSettings())
    process = await asyncio.create_subprocess_exec(
        *worker_command(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES_KEPT)
    stderr_reader = asyncio.create_task(_collect_lines(process.stderr, stderr_tail))
    decoder = msgspec.json.Decoder(JobEvent)
    outcome: JobFinished | JobFailed | None = None
    try:
        process.stdin.write(msgspec.json.encode(job))
        await process.stdin.drain()
        process.stdin.close()
        async for line in process.stdout:
            try:
                event = decoder.decode(line)
            except msgspec.DecodeError as error:
                raise TranscodeFailed(f"the media worker wrote something else than progress: {line[:200]!r}") from error
            if isinstance(event, JobProgress):
                if on_progress is not None:
                    result = on_progress(event.percent)
                    if inspect.isawaitable(result):
                        await result
            else:
                outcome = event
        return_code = await process.wait()
        await stderr_reader
    except BaseException:
        # Cancelled, or the progress callback failed: the child must not outlive the job.
        if process.returncode is None:
            process.kill()
            await process.wait()
        stderr_reader.cancel()
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise
    if isinstance(outcome, JobFinished) and return_code == 0:
        return await asyncio.to_thread(read_manifest, destination)
    # A child killed from outside cleans nothing up itself.
    await asyncio.to_thread(shutil.rmtree, staging, True)
    if isinstance(outcome, JobFailed):
        raise _ERRORS_BY_CODE.get(outcome.code, TranscodeFailed)(outcome.detail)
    raise TranscodeFailed(f"the media worker exited with status {return_code}: {' / '.join(stderr_tail)}")


async def _collect_lines(stream: asyncio.StreamReader, lines: deque[str]) -> None:
    async for line in stream:
        lines.append(line.decode(errors="replace").rstrip())


def main() -> int:
    """The child process: run one ``MediaJob`` from stdin, report ``JobEvent`` lines on stdout."""
    job = msgspec.json.decode(sys.stdin.buffer.read(), type=MediaJob)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer

    def report(event: JobEvent) -> None:
        out.write(encoder.encode(event) + b"\n")
        out.flush()

    try:
        process_media(
            Path(job.source),
            Path(job.destination),
            settings=job.settings,
            staging=Path(job.staging),
            on_progress=lambda percent: report(JobProgress(percent)),
        )
    except MediaError as error:
        report(JobFailed(code=error.code, detail=error.detail))
        return 1
    except Exception as error:
        report(JobFailed(code=TranscodeFailed.code, detail=f"{type(error).__name__}: {error}"))
        raise  # the traceback goes to stderr, which the parent keeps the end of
    report(JobFinished())
    return 0


if __name__ == "__main__":
    sys.exit(main())
