"""Argon2id password hashing, in worker processes at a lower scheduling priority.

A hash is tens of milliseconds of CPU and ~19 MiB of memory. The hashes run in a small pool of
processes (``MAX_CONCURRENT_HASHES`` at most, never more than the cores), shared by the apps of one
process and started on the first sign-in; the workers run ``HASHING_NICENESS`` steps behind
everything else, so a burst of sign-ins takes the CPU the event loop leaves idle instead of
delaying its turns: players' heartbeats keep their latency, and sign-ins wait a little instead.
Processes rather than threads: a lowered thread would still share the interpreter's lock with the
event loop, which would then wait for it whenever it is descheduled holding the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

if TYPE_CHECKING:
    from collections.abc import Callable

    from reelhouse.config import AuthSettings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
#: How much lower than the API's the hashing processes' scheduling priority is (0 to 19).
HASHING_NICENESS = 10

#: Argon2id's cost parameters: time cost, memory (KiB), parallelism.
Parameters = tuple[int, int, int]


@functools.cache
def _argon2(parameters: Parameters) -> Argon2Hasher:
    time_cost, memory_kib, parallelism = parameters
    return Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


def _hash(parameters: Parameters, password: str) -> str:
    return _argon2(parameters).hash(password)


def _verify(parameters: Parameters, password_hash: str, password: str) -> bool:
    try:
        return _argon2(parameters).verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _start_hashing_process() -> None:
    """A hashing process's initializer: lower its scheduling priority, and end it with its parent
    (a server killed outright must not leave its hashing processes behind)."""
    with contextlib.suppress(AttributeError, OSError):  # os.nice is POSIX's
        os.nice(HASHING_NICENESS)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent.sentinel,), name="parent-watch", daemon=True).start()


def _exit_with_parent(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


_pools: dict[int, ProcessPoolExecutor] = {}


def _hashing_processes(workers: int) -> ProcessPoolExecutor:
    """The process's pool of ``workers`` hashing processes (spawned: a fork of a running server
    would copy its threads' locks)."""
    pool = _pools.get(workers)
    if pool is None:
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_hashing_process,
        )
        _pools[workers] = pool
    return pool


class PasswordHasher:
    def __init__(self, settings: AuthSettings) -> None:
        self._parameters: Parameters = (
            settings.argon2_time_cost,
            settings.argon2_memory_kib,
            settings.argon2_parallelism,
        )
        self._hasher = _argon2(self._parameters)
        # The cap keeps a login burst from exhausting memory; the cores bound it too (a hash more
        # than there are cores would only wait for one).
        self._workers = max(1, min(settings.max_concurrent_hashes, os.cpu_count() or 1))
        # Verified against when an email is unknown, so the answer costs the same.
        self._decoy_hash = self._hasher.hash("reelhouse-decoy-password")

    async def hash(self, password: str) -> str:
        hashed: str = await self._in_pool(_hash, self._parameters, password)
        return hashed

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no hash, spends the same effort and says no."""
        target = password_hash or self._decoy_hash
        matched: bool = await self._in_pool(_verify, self._parameters, target, password)
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def _in_pool(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_hashing_processes(self._workers), function, *args)
        except BrokenProcessPool:
            # A worker died (killed for memory, say): a new pool, and this hash once more.
            _pools.pop(self._workers, None)
            return await loop.run_in_executor(_hashing_processes(self._workers), function, *args)
