"""Summaries of py-spy's raw (collapsed) profiles: where the server's samples went.

Each line of a raw profile is ``frame;frame;...;leaf count`` with frames like
``function (path/to/file.py:123)``. The summary keeps two views: the leaf functions that
burnt the samples (self time) and the project's own functions that held them (inclusive).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _name(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    path = match.group("file")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('function')} ({path})", path


def summarize(path: Path, top: int = 12) -> dict[str, Any]:
    """Self and inclusive shares of the samples in one raw profile."""
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_name(frame) for frame in stack.split(";")]
        leaves[frames[-1][0]] += count
        for frame in {name for name, file in frames if file.startswith("reelhouse/")}:
            inclusive[frame] += count
    if not total:
        return {"samples": 0, "self": [], "own_inclusive": []}

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": name, "percent": round(100 * count / total, 1)} for name, count in counter.most_common(top)]

    return {"samples": total, "self": shares(leaves), "own_inclusive": shares(inclusive)}
