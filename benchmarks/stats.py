"""Small helpers shared by the harness and the load generators."""

from __future__ import annotations

import math


def percentile(samples: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``samples`` (``fraction`` in 0..1), or None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_summary_ms(samples_s: list[float]) -> dict[str, float | int | None]:
    """p50/p90/p99/max in milliseconds from samples in seconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "count": len(samples_s),
        "p50_ms": ms(percentile(samples_s, 0.50)),
        "p90_ms": ms(percentile(samples_s, 0.90)),
        "p99_ms": ms(percentile(samples_s, 0.99)),
        "max_ms": ms(max(samples_s) if samples_s else None),
    }
