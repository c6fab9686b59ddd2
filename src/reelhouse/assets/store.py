"""Where media bytes live, behind one interface with two backends.

- :class:`FileMediaStore`: files under ``MEDIA_DIR`` (the embedded default). Every write goes to a
  temporary file beside its key and is renamed into place, so a key holds a whole object or none.
- :class:`S3MediaStore`: S3-compatible object storage (AWS S3, MinIO, Cloudflare R2) through
  `obstore <https://developmentseed.org/obstore/>`_, so every API instance and worker sees the same
  media (``MEDIA_STORE_URL=s3://bucket/prefix``).

Both pass one contract suite (``tests/contract/test_media_store.py``). Keys are relative paths
chosen by the code (``uploads/<id>/<offset>``, ``assets/<job>/<attempt>/...``), never by a
request; a key is ``/``-separated segments of letters, digits, ``.``, ``_`` and ``-``, and anything
else is refused before it reaches a backend. An absolute key names a directory outside the store
(shared test fixtures): only :meth:`MediaStore.path` and :meth:`MediaStore.local_path` accept one.

A "prefix" is a key read as a directory: everything stored under ``<prefix>/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, TypeVar

import anyio.to_thread

if TYPE_CHECKING:
    from obstore.store import S3Store

    from reelhouse.config import MediaStoreTarget

T = TypeVar("T")

#: Bytes per chunk a read yields (and a filesystem write is flushed in).
READ_CHUNK_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 1024
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
#: Names of the filesystem store's temporary files: not a valid key segment, so never listed or hit.
_TEMPORARY_MARK = ".partial-"
#: Files one publish sends to object storage at the same time.
PUBLISH_CONCURRENCY = 8
#: Part size of S3 multipart uploads (5 MiB is S3's smallest) and how many go up at once: a streamed
#: write holds about (concurrency + 1) parts in memory, whatever its length.
S3_PART_BYTES = 5 * 1024 * 1024
S3_PART_CONCURRENCY = 2
#: S3 deletes up to this many keys in one request.
S3_DELETE_BATCH = 1000


# --- errors --------------------------------------------------------------------------------------


class MediaStoreError(Exception):
    """The media store could not do what was asked; the message says which key and why."""


class InvalidMediaKey(MediaStoreError, ValueError):
    """A key the store refuses: empty, absolute where a stored key is needed, ``..``, odd characters."""


class MediaObjectNotFound(MediaStoreError, FileNotFoundError):
    """No object is stored under the key."""


class NoLocalPath(MediaObjectNotFound):
    """The store keeps the key somewhere other than this machine's filesystem (object storage)."""


class InvalidByteRange(MediaStoreError, ValueError):
    """A byte range outside the object (or backwards)."""


class MediaPrefixInUse(MediaStoreError, FileExistsError):
    """A tree was to be published under a prefix that already holds objects."""


class MediaStoreUnavailable(MediaStoreError, ConnectionError):
    """The backend did not answer or refused the request (network, credentials, bucket)."""


# --- the interface -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int


def outside_store(key: str) -> bool:
    """An absolute key names a directory outside the store (shared fixtures, demo media made
    elsewhere): readable where it lies, never the store's to delete or to publish."""
    return key.startswith("/")


def check_key(key: str) -> str:
    """``key`` if it is a valid stored key; :class:`InvalidMediaKey` otherwise."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidMediaKey(f"a media key has 1 to {MAX_KEY_LENGTH} characters: {key[:80]!r}")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise InvalidMediaKey(
                f"a media key is /-separated names of letters, digits, '.', '_' and '-': {key[:80]!r}"
            )
    return key


class MediaStore(Protocol):
    """What the product needs from wherever media bytes live."""

    def local_path(self, key: str) -> Path | None:
        """Where ``key`` (a file or a prefix) is on this machine; None for a store without local files."""
        ...

    def path(self, key: str) -> Path:
        """As :meth:`local_path`, raising :class:`NoLocalPath` when the store has no local files."""
        ...

    async def put_file(self, key: str, source: Path) -> int:
        """Store the local file ``source`` as ``key`` (whole or not at all); its size."""
        ...

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store what ``chunks`` yields as ``key``, never holding it all in memory; the bytes written.

        An exception from ``chunks`` propagates and nothing is stored (an earlier object stays).
        """
        ...

    async def read(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of ``key`` (to its end when ``end`` is None or past it), as chunks.

        Checked before it returns: :class:`MediaObjectNotFound`, :class:`InvalidByteRange` (``start``
        past the end, negative, or ``end`` before ``start``).
        """
        ...

    async def read_bytes(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        """As :meth:`read`, joined: for small objects (manifests, upload heads)."""
        ...

    async def stat(self, key: str) -> StoredObject | None:
        """The object under ``key``, or None when nothing is stored there."""
        ...

    async def list(self, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix`` (at any depth), by key."""
        ...

    async def delete(self, key: str) -> None:
        """Delete the object ``key``; nothing if it is gone already."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Delete everything under ``prefix``."""
        ...

    async def remove(self, key: str) -> None:
        """Delete the object ``key`` and everything under it as a prefix."""
        ...

    async def publish_tree(self, directory: Path, prefix: str, *, last: Sequence[str] = ()) -> int:
        """Store every file under the local ``directory`` at ``<prefix>/<relative path>``; how many.

        Files named in ``last`` (relative paths) are stored after all the others, so a reader that
        finds them finds the rest. :class:`MediaPrefixInUse` when ``prefix`` holds objects already.
        """
        ...

    async def download(self, key: str, destination: Path, *, append: bool = False) -> int:
        """Write ``key`` to the local file ``destination`` (after what it holds, with ``append``); the bytes."""
        ...

    async def check(self) -> None:
        """:class:`MediaStoreUnavailable`, naming the setting to look at, unless the store answers."""
        ...

    async def close(self) -> None: ...


def _check_range(key: str, size: int, start: int, end: int | None) -> int:
    """The exclusive end of ``[start, end)`` on an object of ``size`` bytes."""
    if start < 0 or (end is not None and end < start) or start > size:
        raise InvalidByteRange(f"bytes {start}-{end} are outside {key} ({size} bytes)")
    return size if end is None else min(end, size)


def _files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def _ordered(files: Iterable[Path], directory: Path, last: Sequence[str]) -> list[Path]:
    late = [directory / name for name in last]
    return [path for path in files if path not in late] + [path for path in late if path.is_file()]


async def _join(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


# --- the filesystem ------------------------------------------------------------------------------


class FileMediaStore:
    """Files under ``root`` (``MEDIA_DIR``); blocking calls run in worker threads."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FileMediaStore({str(self.root)!r})"

    def _file(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> Path | None:
        return self.path(key)

    def path(self, key: str) -> Path:
        return Path(key) if outside_store(key) else self._file(key)

    def _temporary_beside(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.parent / f"{_TEMPORARY_MARK}{target.name}-{uuid.uuid4().hex[:12]}"

    async def put_file(self, key: str, source: Path) -> int:
        target = self._file(key)

        def copy() -> int:
            temporary = self._temporary_beside(target)
            try:
                shutil.copyfile(source, temporary)
                os.replace(temporary, target)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
            return target.stat().st_size

        return await anyio.to_thread.run_sync(copy)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self._file(key)
        temporary = await anyio.to_thread.run_sync(self._temporary_beside, target)
        written = 0
        try:
            async with await anyio.open_file(temporary, "wb") as file:
                async for chunk in chunks:
                    await file.write(chunk)
                    written += len(chunk)
                await file.flush()
                await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
            await anyio.to_thread.run_sync(os.replace, temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                await anyio.to_thread.run_sync(temporary.unlink)
            raise
        return written

    async def read(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        target = self._file(key)

        def open_range() -> tuple[IO[bytes], int]:
            try:
                file = target.open("rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise MediaObjectNotFound(f"no media object {key}") from None
            try:
                stop = _check_range(key, os.fstat(file.fileno()).st_size, start, end)
                file.seek(start)
            except BaseException:
                file.close()
                raise
            return file, stop

        file, stop = await anyio.to_thread.run_sync(open_range)
        return _file_chunks(file, stop - start)

    async def read_bytes(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        return await _join(await self.read(key, start=start, end=end))

    async def stat(self, key: str) -> StoredObject | None:
        target = self._file(key)

        def size() -> int | None:
            try:
                found = target.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            return found.st_size if target.is_file() else None

        found = await anyio.to_thread.run_sync(size)
        return None if found is None else StoredObject(key, found)

    async def list(self, prefix: str) -> list[StoredObject]:
        directory = self._file(prefix)

        def walk() -> list[StoredObject]:
            found: list[StoredObject] = []
            if not directory.is_dir():
                return found
            for path in _files_under(directory):
                relative = path.relative_to(self.root).as_posix()
                with contextlib.suppress(InvalidMediaKey, FileNotFoundError):  # temporary files, races
                    found.append(StoredObject(check_key(relative), path.stat().st_size))
            return sorted(found, key=lambda item: item.key)

        return await anyio.to_thread.run_sync(walk)

    async def delete(self, key: str) -> None:
        target = self._file(key)

        def delete() -> None:
            if target.is_file() or target.is_symlink():
                target.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(delete)

    async def delete_prefix(self, prefix: str) -> None:
        directory = self._file(prefix)

        def delete() -> None:
            if directory.is_dir() and not directory.is_symlink():
                shutil.rmtree(directory, ignore_errors=True)

        await anyio.to_thread.run_sync(delete)

    async def remove(self, key: str) -> None:
        await self.delete(key)
        await self.delete_prefix(key)

    async def publish_tree(self, directory: Path, prefix: str, *, last: Sequence[str] = ()) -> int:
        target = self._file(prefix)

        def publish() -> int:
            if target.exists():
                raise MediaPrefixInUse(f"{prefix} holds media already")
            # Copied beside the target and renamed: readers see the whole tree or nothing.
            staging = self._temporary_beside(target)
            try:
                shutil.copytree(directory, staging)
                os.rename(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            return len(_files_under(target))

        try:
            return await anyio.to_thread.run_sync(publish)
        except OSError as error:
            if isinstance(error, MediaStoreError):
                raise
            if target.exists():  # another publisher won the rename
                raise MediaPrefixInUse(f"{prefix} holds media already") from None
            raise

    async def download(self, key: str, destination: Path, *, append: bool = False) -> int:
        source = self._file(key)

        def copy() -> int:
            try:
                reader = source.open("rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise MediaObjectNotFound(f"no media object {key}") from None
            with reader, destination.open("ab" if append else "wb") as writer:
                before = writer.tell()
                shutil.copyfileobj(reader, writer, READ_CHUNK_BYTES)
                return writer.tell() - before

        return await anyio.to_thread.run_sync(copy)

    async def check(self) -> None:
        def usable() -> bool:
            with contextlib.suppress(OSError):
                self.root.mkdir(parents=True, exist_ok=True)
            return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)

        if not await anyio.to_thread.run_sync(usable):
            raise MediaStoreUnavailable(f"the media directory {self.root} (MEDIA_DIR) is not a writable directory")

    async def close(self) -> None:
        return None


async def _file_chunks(file: IO[bytes], remaining: int) -> AsyncIterator[bytes]:
    try:
        while remaining > 0:
            chunk = await anyio.to_thread.run_sync(file.read, min(READ_CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        file.close()


# --- S3-compatible object storage ----------------------------------------------------------------


class S3MediaStore:
    """Objects in one bucket under an optional prefix, through obstore's async calls.

    Writes are whole-object (S3 has no append): a streamed write is a multipart upload that only
    becomes visible when complete. Credentials never appear in ``repr`` or in errors.
    """

    def __init__(self, target: MediaStoreTarget) -> None:
        from obstore.store import S3Store

        self.bucket = target.bucket
        self.prefix = target.prefix
        self.endpoint = target.endpoint_url
        config: dict[str, object] = {
            "region": target.region,
            "virtual_hosted_style_request": not target.path_style,
        }
        if target.endpoint_url:
            config["endpoint"] = target.endpoint_url
        if target.access_key_id:
            config["access_key_id"] = target.access_key_id
            config["secret_access_key"] = target.secret_access_key
        client_options = {
            "allow_http": target.endpoint_url.startswith("http://"),
            "connect_timeout": timedelta(seconds=5),
            "timeout": timedelta(seconds=300),
        }
        self._store: S3Store = S3Store(
            target.bucket,
            prefix=target.prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options=client_options,  # type: ignore[arg-type]
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=30)},
        )

    def __repr__(self) -> str:
        return f"S3MediaStore(s3://{self.bucket}/{self.prefix}, endpoint={self.endpoint or 'AWS'!r})"

    def local_path(self, key: str) -> Path | None:
        return Path(key) if outside_store(key) else None

    def path(self, key: str) -> Path:
        if outside_store(key):
            return Path(key)
        raise NoLocalPath(f"{check_key(key)} is in object storage, not on this machine")

    async def _call(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except FileNotFoundError:
            raise MediaObjectNotFound(f"no media object {key}") from None
        except MediaStoreError:
            raise
        except Exception as error:
            if type(error).__module__.startswith("obstore"):
                raise MediaStoreUnavailable(f"object storage failed on {key}: {_first_line(error)}") from None
            raise

    async def put_file(self, key: str, source: Path) -> int:
        import obstore

        check_key(key)
        size = (await anyio.Path(source).stat()).st_size
        await self._call(
            key,
            lambda: obstore.put_async(
                self._store, key, source, chunk_size=S3_PART_BYTES, max_concurrency=S3_PART_CONCURRENCY
            ),
        )
        return size

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        import obstore

        check_key(key)
        counted = _Counted(chunks)
        await self._call(
            key,
            lambda: obstore.put_async(
                self._store, key, counted, chunk_size=S3_PART_BYTES, max_concurrency=S3_PART_CONCURRENCY
            ),
        )
        if counted.error is not None:
            # The stream failed part way; obstore may report it as its own error: the caller's wins.
            raise counted.error
        return counted.size

    async def read(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        import obstore

        check_key(key)
        if start < 0 or (end is not None and end < start):
            raise InvalidByteRange(f"bytes {start}-{end} are outside {key}")
        if start == 0 and end is None:
            result = await self._call(key, lambda: obstore.get_async(self._store, key))
            return _s3_chunks(result.stream(min_chunk_size=READ_CHUNK_BYTES), key)
        found = await self.stat(key)
        if found is None:
            raise MediaObjectNotFound(f"no media object {key}")
        stop = _check_range(key, found.size, start, end)
        if stop == start:
            return _no_chunks()
        result = await self._call(key, lambda: obstore.get_async(self._store, key, options={"range": (start, stop)}))
        return _s3_chunks(result.stream(min_chunk_size=READ_CHUNK_BYTES), key)

    async def read_bytes(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        return await _join(await self.read(key, start=start, end=end))

    async def stat(self, key: str) -> StoredObject | None:
        import obstore

        check_key(key)
        try:
            meta = await self._call(key, lambda: obstore.head_async(self._store, key))
        except MediaObjectNotFound:
            return None
        return StoredObject(key, int(meta["size"]))

    async def list(self, prefix: str) -> list[StoredObject]:
        import obstore

        check_key(prefix)
        under = f"{prefix}/"

        async def collect() -> list[StoredObject]:
            found: list[StoredObject] = []
            async for batch in obstore.list(self._store, prefix=prefix, chunk_size=1000):
                found.extend(
                    StoredObject(meta["path"], int(meta["size"])) for meta in batch if meta["path"].startswith(under)
                )
            return found

        return sorted(await self._call(prefix, collect), key=lambda item: item.key)

    async def delete(self, key: str) -> None:
        import obstore

        check_key(key)
        with contextlib.suppress(MediaObjectNotFound):
            await self._call(key, lambda: obstore.delete_async(self._store, key))

    async def delete_prefix(self, prefix: str) -> None:
        import obstore

        keys = [item.key for item in await self.list(prefix)]
        for index in range(0, len(keys), S3_DELETE_BATCH):
            batch = keys[index : index + S3_DELETE_BATCH]
            await self._call(prefix, lambda batch=batch: obstore.delete_async(self._store, batch))  # type: ignore[misc]

    async def remove(self, key: str) -> None:
        await self.delete(key)
        await self.delete_prefix(key)

    async def publish_tree(self, directory: Path, prefix: str, *, last: Sequence[str] = ()) -> int:
        check_key(prefix)
        if await self.list(prefix):
            raise MediaPrefixInUse(f"{prefix} holds media already")
        files = _ordered(await anyio.to_thread.run_sync(_files_under, directory), directory, last)
        late = {directory / name for name in last}
        early = [path for path in files if path not in late]
        limit = asyncio.Semaphore(PUBLISH_CONCURRENCY)

        async def send(path: Path) -> None:
            async with limit:
                await self.put_file(f"{prefix}/{path.relative_to(directory).as_posix()}", path)

        async with asyncio.TaskGroup() as group:
            for path in early:
                group.create_task(send(path))
        for path in files[len(early) :]:
            await send(path)
        return len(files)

    async def download(self, key: str, destination: Path, *, append: bool = False) -> int:
        chunks = await self.read(key)
        written = 0
        async with await anyio.open_file(destination, "ab" if append else "wb") as file:
            async for chunk in chunks:
                await file.write(chunk)
                written += len(chunk)
        return written

    async def check(self) -> None:
        import obstore

        try:
            await obstore.list_with_delimiter_async(self._store)
        except Exception as error:
            if not type(error).__module__.startswith("obstore") and not isinstance(error, OSError):
                raise
            raise MediaStoreUnavailable(
                f"MEDIA_STORE_URL s3://{self.bucket}/{self.prefix} at {self.endpoint or 'AWS'} cannot be listed "
                f"(is the bucket there, are MEDIA_S3_* right?): {_first_line(error)}"
            ) from None

    async def close(self) -> None:
        return None


class _Counted:
    """An async iterable of bytes that counts what passed and keeps the exception that stopped it."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0
        self.error: BaseException | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                self.size += len(chunk)
                yield chunk
        except BaseException as error:
            self.error = error
            raise


async def _s3_chunks(stream: AsyncIterator[bytes], key: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            yield bytes(chunk)
    except Exception as error:
        if type(error).__module__.startswith("obstore"):
            raise MediaStoreUnavailable(f"object storage failed reading {key}: {_first_line(error)}") from None
        raise


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def build_media_store(target: MediaStoreTarget) -> MediaStore:
    """The store ``MEDIA_STORE_URL`` names (settings already checked at load)."""
    if target.kind == "s3":
        return S3MediaStore(target)
    return FileMediaStore(target.directory)
