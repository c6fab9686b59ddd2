"""Media processing: probe a source, transcode an ABR ladder, package CMAF/fMP4 HLS, measure, render playlists.

A library with no web framework, database or Redis in it: the job runner, the
upload routes and delivery build on these entry points.
"""

from reelhouse.media.artwork import render_thumbnails_vtt
from reelhouse.media.errors import MediaError, TranscodeFailed, UnsupportedMedia
from reelhouse.media.hls import SegmentKey, render_master, render_media
from reelhouse.media.ladder import Rung, ladder_for
from reelhouse.media.manifest import MediaManifest, Rendition, Segment, SpriteSheet, read_manifest
from reelhouse.media.packaging import EncoderSettings
from reelhouse.media.pipeline import discard_partial_outputs, process_media, process_media_in_subprocess
from reelhouse.media.probe import SourceMedia, looks_like_video, probe

__all__ = [
    "EncoderSettings",
    "MediaError",
    "MediaManifest",
    "Rendition",
    "Rung",
    "Segment",
    "SegmentKey",
    "SourceMedia",
    "SpriteSheet",
    "TranscodeFailed",
    "UnsupportedMedia",
    "discard_partial_outputs",
    "ladder_for",
    "looks_like_video",
    "probe",
    "process_media",
    "process_media_in_subprocess",
    "read_manifest",
    "render_master",
    "render_media",
    "render_thumbnails_vtt",
]
