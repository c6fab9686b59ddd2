"""Telling a passing outage of a backing service (database, Redis) from a bug, and logging it once."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisClusterException, RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

logger = logging.getLogger(__name__)


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database cannot be reached right now: connection
    refused, lost or shutting down, or no pooled connection free in time. Not bad data."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | InterfaceError | PoolTimeout | ConnectionError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if type(current).__module__.startswith("asyncpg") and "Connection" in type(current).__name__:
            return True
        current = current.__cause__ or current.__context__
    return False


def is_outage(exc: BaseException) -> bool:
    """A backing service did not answer (Redis, the database, the network): worth retrying."""
    return isinstance(exc, RedisError | RedisClusterException | OSError | TimeoutError) or is_database_unavailable(exc)


class OutageLog:
    """One line when a dependency starts failing and one when it answers again, however many
    requests or messages hit it meanwhile."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._since: float | None = None
        self._failures = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        self._failures += 1
        if self._since is None:
            self._since = time.monotonic()
            logger.warning("%s unavailable (%s: %s); retrying", self._name, type(exc).__name__, exc)

    def answered(self) -> None:
        if self._since is not None:
            logger.warning(
                "%s available again after %.1f s (%d failed attempts)",
                self._name,
                time.monotonic() - self._since,
                self._failures,
            )
            self._since, self._failures = None, 0
