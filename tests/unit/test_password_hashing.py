"""Password hashing: right and wrong passwords, the decoy for unknown emails, and hashing processes
that run behind everything else (a lower scheduling priority)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from conftest import build_settings
from reelhouse.accounts.passwords import HASHING_NICENESS, PasswordHasher


def niceness(pid: int) -> int:
    """A process's nice value as the kernel reports it (field 19 of its stat line)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


def hashing_processes() -> list[int]:
    """This process's children that are pool workers (not the resource tracker)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == os.getpid() and b"spawn_main" in command:
            workers.append(int(entry.name))
    return workers


async def test_a_hash_verifies_its_password_and_no_other():
    hasher = PasswordHasher(build_settings().auth)
    stored = await hasher.hash("correct horse battery staple")
    assert await hasher.verify(stored, "correct horse battery staple")
    assert not await hasher.verify(stored, "correct horse battery stapler")
    assert not await hasher.verify(None, "correct horse battery staple")  # unknown email: the decoy answers no
    assert not await hasher.verify("not-a-hash", "correct horse battery staple")


@pytest.mark.skipif(sys.platform != "linux", reason="reads the nice values from /proc")
async def test_hashing_runs_in_processes_at_a_lower_priority_than_the_api():
    hasher = PasswordHasher(build_settings().auth)
    await hasher.hash("correct horse battery staple")

    lowered = min(19, niceness(os.getpid()) + HASHING_NICENESS)
    # The pool may still be starting its other workers: each lowers itself as it starts.
    for _ in range(200):  # 10 s at most
        if {niceness(pid) for pid in hashing_processes()} == {lowered}:
            break
        await asyncio.sleep(0.05)
    workers = hashing_processes()
    assert workers, "no hashing process ran"
    assert {niceness(pid) for pid in workers} == {lowered}
