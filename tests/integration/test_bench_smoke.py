"""``scripts/bench --smoke``: the benchmark harness runs end to end with tiny counts.

The figures are not judged here (the full run is not part of the suite); only that every
scenario ran and produced numbers, in a JSON and a Markdown summary.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

SMOKE_TIMEOUT_SECONDS = 110
SCENARIOS = {
    "ceiling_ping",
    "ceiling_ws_echo",
    "health",
    "plans",
    "content",
    "profile",
    "history_read",
    "history_write",
    "history_hot",
    "admission",
    "admission_two_instances",
    "admission_with_players",
    "admission_with_fewer_players",
    "media",
    "media_keys",
    "media_offload",
    "transcode",
    "players_memory",
    "heartbeats",
    "heartbeats_fewer",
    "heartbeats_two_instances",
    "heartbeat_flood",
    "eviction",
    "logins_under_load",
    "db_writes",
}


def test_the_smoke_run_measures_every_scenario(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_SECONDS,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "smoke.json").read_text())
    assert summary["notes"] == [], summary["notes"]
    rows = {row["key"]: row for row in summary["scenarios"]}
    assert set(rows) == SCENARIOS
    for key, row in rows.items():
        assert isinstance(row["value"], int | float), f"{key} has no figure: {row}"
        assert row["met"] is not None, f"{key} could not be judged: {row}"
    for key in (
        "plans",
        "content",
        "profile",
        "history_read",
        "history_write",
        "media",
        "media_keys",
        "heartbeat_flood",
    ):
        assert rows[key]["ratio_to_ceiling"] is not None, key
    raw = summary["raw"]
    assert raw["players_memory"]["join_errors"] == 0
    assert raw["heartbeats"]["lost"] == 0
    assert raw["eviction"]["failures"] == 0
    assert raw["media"]["bytes_ceiling_requests_per_s"] > 0
    assert raw["media_offload"]["segment_bytes_from_api"] == 0
    assert raw["media_offload"]["public_bytes"] > raw["media_offload"]["api_bytes"] > 0
    assert (tmp_path / "smoke.md").read_text().startswith("# Reelhouse benchmark (smoke)")
