"""Errors of the media pipeline, each with a stable machine code for the admin media state."""

from __future__ import annotations


class MediaError(Exception):
    """A media job could not produce playable output; ``code`` is what the media state's ``error`` shows."""

    code = "media_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnsupportedMedia(MediaError):
    """The source is not a video this pipeline can decode (not a container we accept, or no decodable video)."""

    code = "unsupported_media"


class TranscodeFailed(MediaError):
    """Decoding, encoding or packaging stopped part way (a truncated source, a codec error, a killed worker)."""

    code = "transcode_failed"
