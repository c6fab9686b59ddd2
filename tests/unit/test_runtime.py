"""The garbage-collector tuning applied to production servers."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reelhouse.platform.runtime import GC_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_start_up_objects_are_frozen_and_full_collections_made_rare(restored_collector: None) -> None:
    tune_garbage_collector()

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] * GC_THRESHOLDS[1] * GC_THRESHOLDS[2] >= 100 * 700 * 10 * 10


def test_young_cycles_are_still_collected(restored_collector: None) -> None:
    tune_garbage_collector()

    class Node:
        partner: object

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    del first, second
    assert gc.collect(0) + gc.collect(1) >= 2
