"""Password hashing: right and wrong passwords, the decoy for unknown emails, and hashing processes
that run behind everything else (a lower scheduling priority)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import build_settings
from reelhouse.accounts.passwords import HASHING_NICENESS, PasswordHasher


def niceness(pid: int) -> int:
    """A process's nice value as the kernel reports it (field 19 of its stat line)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


def all_processes() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError):
        return None


def is_pool_worker(pid: int) -> bool:
    """A multiprocessing worker (not the resource tracker)."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def hashing_processes() -> list[int]:
    """This process's children that are pool workers."""
    return [pid for pid in all_processes() if parent_of(pid) == os.getpid() and is_pool_worker(pid)]


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


@pytest.mark.skipif(sys.platform != "linux", reason="looks the processes up in /proc")
def test_hashing_processes_end_when_the_server_is_killed_outright(tmp_path: Path):
    script = tmp_path / "server.py"
    script.write_text(
        "import asyncio, os, sys\n"
        "from conftest import build_settings\n"
        "from reelhouse.accounts.passwords import PasswordHasher\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(PasswordHasher(build_settings().auth).hash('correct horse battery staple'))\n"
        "    print(os.getpid(), flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    tests = Path(__file__).resolve().parents[1]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent / "src")])}
    server = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environ, cwd=tests
    )
    try:
        assert server.stdout is not None
        pid = int(server.stdout.readline())
        workers = [worker for worker in all_processes() if parent_of(worker) == pid and is_pool_worker(worker)]
        assert workers, "the server started no hashing process"
    finally:
        server.kill()  # no shutdown, no exit handlers
        server.wait(10)

    for _ in range(100):  # 10 s at most
        if not [worker for worker in workers if Path(f"/proc/{worker}").exists()]:
            break
        time.sleep(0.1)
    assert not [worker for worker in workers if Path(f"/proc/{worker}").exists()], "hashing processes outlived it"
