"""The package layering in pyproject.toml ([tool.importlinter]) holds, and a back edge breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(source_root: Path) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=source_root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_code_keeps_its_layers():
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr


BACK_EDGES = {
    "inside a function": (
        "\n\ndef _end_streams() -> object:\n"
        "    from reelhouse.playback.sessions import PlaybackService\n\n"
        "    return PlaybackService\n"
    ),
    "under TYPE_CHECKING": (
        "\n\nfrom typing import TYPE_CHECKING as _TC\n\nif _TC:\n"
        "    from reelhouse.subscriptions.services import SubscriptionService\n"
    ),
}


@pytest.mark.parametrize("where", list(BACK_EDGES))
def test_an_upward_import_in_a_lower_domain_breaks_the_contract(tmp_path: Path, where: str):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "reelhouse", copy / "reelhouse", ignore=shutil.ignore_patterns("__pycache__"))
    services = copy / "reelhouse" / "accounts" / "services.py"
    services.write_text(services.read_text() + BACK_EDGES[where])

    result = lint_imports(copy)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "reelhouse.accounts.services" in result.stdout


def test_a_kernel_module_importing_a_domain_breaks_the_contract(tmp_path: Path):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "reelhouse", copy / "reelhouse", ignore=shutil.ignore_patterns("__pycache__"))
    pagination = copy / "reelhouse" / "platform" / "pagination.py"
    pagination.write_text(pagination.read_text() + "\n\ndef _late() -> None:\n    import reelhouse.catalog.models\n")

    result = lint_imports(copy)

    assert result.returncode != 0
    assert "The kernel imports no domain BROKEN" in result.stdout
