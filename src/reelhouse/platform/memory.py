"""What an instance remembers of the database for its hot paths: a bounded map whose entries
expire, and which refuses a read that raced a change.

Capture :meth:`Remembered.generation` before reading the database; :meth:`Remembered.keep` then
refuses the value if anything was forgotten since (the change it raced committed meanwhile, and
the value read may be the old one). Each entry lasts ``ttl_seconds`` at most, or less when it
lapses by itself sooner (``until``); past ``max_entries`` the oldest go first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Remembered(Generic[K, V]):
    """``ttl_seconds`` 0 remembers nothing; ``clock`` is the time base of ``until`` too."""

    def __init__(self, ttl_seconds: float, *, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[V, float]] = {}
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def generation(self) -> int:
        """Capture before reading what will be kept."""
        return self._generation

    def recall(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        return value

    def keep(self, key: K, value: V, generation: int, *, until: float | None = None) -> None:
        """Remember ``value``, unless something was forgotten since ``generation`` was captured."""
        if self.ttl_seconds <= 0 or generation != self._generation:
            return
        expires_at = self._clock() + self.ttl_seconds
        if until is not None:
            expires_at = min(expires_at, until)
        self._entries.pop(key, None)
        self._entries[key] = (value, expires_at)
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest: dicts keep insertion order

    def forget(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)

    def forget_all(self) -> None:
        self._generation += 1
        self._entries.clear()


__all__ = ["Remembered"]
