"""Links to pictures and media as clients send them: a relative path, as the seed API stored them
(``hello.jpg``, ``/path/to/thumbnail``), or an absolute ``http(s)`` URL with a host.

Any other scheme (``javascript:``, ``data:``, ``file:``, ...) and protocol-relative ``//host``
links are refused, and so is whitespace or a control character anywhere in the link.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

MAX_LINK_LENGTH = 2048
#: One rule for every link field: ``https?://host...`` or a path that has no scheme and no ``//`` start.
LINK_PATTERN = (
    r"^(?:[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f/?#]+[^\s\x00-\x1f\x7f]*"
    r"|(?![A-Za-z][A-Za-z0-9+.-]*:)(?!//)[^\s\x00-\x1f\x7f]+)$"
)

Link = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_LINK_LENGTH,
        pattern=LINK_PATTERN,
        description="A relative path (`/images/poster.jpg`, `poster.jpg`) or an http(s) URL; no other scheme.",
    ),
]
