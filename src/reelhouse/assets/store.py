"""Where media bytes live, behind one small interface.

The filesystem (under ``MEDIA_DIR``) is the only backend today; object storage slots in behind
the same calls later (issue: S3, AES-128 keys, CDN). Keys are relative paths chosen by the code
(``uploads/<id>``, ``assets/<job>/<attempt>``), never by a request.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol

import anyio.to_thread


class MediaStore(Protocol):
    def path(self, key: str) -> Path:
        """The local path of ``key`` (a file or a directory)."""
        ...

    async def remove(self, key: str) -> None:
        """Delete ``key`` and everything under it; nothing if it is gone already."""
        ...


class FileMediaStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        # An absolute key names a directory outside MEDIA_DIR: shared fixtures and demo media.
        return self.root / key

    async def remove(self, key: str) -> None:
        target = self.path(key)

        def remove() -> None:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(remove)
