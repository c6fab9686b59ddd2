"""Process-wide runtime settings for a server that holds thousands of long-lived sockets.

CPython's full (oldest-generation) garbage collection walks every tracked object. With
10,000 player sockets that is millions of objects and a pause of about a second, during
which no heartbeat is answered. So, once the app has started:

- everything created while starting (framework, routes, schema, mappers) is frozen out of
  collection for good: it lives as long as the process;
- the young generations are collected less often, and a full collection is considered
  only after far more young collections than by default, so it happens seldom (hours under
  load) instead of every few seconds while sockets are being opened. Short-lived cycles are
  still collected young, as before.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)

#: Allocations between young collections, young collections per middle one, middle ones per
#: full one (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (7_000, 20, 1_000)


def tune_garbage_collector() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    logger.debug("garbage collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), GC_THRESHOLDS)
