"""Real API processes for multi-instance tests: uvicorn on free 127.0.0.1 ports.

``running_servers(environ, count, log_dir)`` starts them all at once, waits until each
answers ``/health`` (bounded), yields their base URLs, and always stops them: terminate,
then kill whatever is still running after a few seconds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, TEST_JWT_SECRET, build_settings, delete_redis_keys, reset_state

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on; the probes stay open until all are chosen, so none repeats."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def server_environ(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A clean environment for a server process: test defaults, no .env file, then ``settings``."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "src"),
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "VAR_DIR": str(tmp_path / "var"),
        "REELHOUSE_ENV_FILE": str(tmp_path / "no.env"),
        "LOG_LEVEL": "WARNING",
        **settings,
    }


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout_seconds: float = START_TIMEOUT_SECONDS
) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not become healthy in {timeout_seconds} s:\n{log.read_text()}")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_processes(
    environ: dict[str, str], count: int, log_dir: Path
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """``count`` uvicorn processes of the app, started at once; yields ``(base URL, process)`` pairs."""
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    urls: list[str] = []
    try:
        for index, port in enumerate(free_ports(count)):
            log = log_dir / f"instance-{index}.log"
            command = [uvicorn, "--factory", "reelhouse.app:create_app"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
            with log.open("wb") as output:
                processes.append(
                    subprocess.Popen(command, cwd=ROOT, env=environ, stdout=output, stderr=subprocess.STDOUT)
                )
            logs.append(log)
            urls.append(f"http://127.0.0.1:{port}")
        for url, process, log in zip(urls, processes, logs, strict=True):
            wait_until_healthy(url, process, log)
        yield list(zip(urls, processes, strict=True))
    finally:
        stop(processes)


@contextmanager
def running_servers(environ: dict[str, str], count: int, log_dir: Path) -> Iterator[list[str]]:
    """``count`` uvicorn processes of the app, started at once; yields their base URLs."""
    with running_processes(environ, count, log_dir) as servers:
        yield [url for url, _ in servers]


@asynccontextmanager
async def emptied_shared_state(postgres_url: str, redis_url: str, prefix: str) -> AsyncIterator[str]:
    """The database and the Redis keys under ``prefix`` that several processes share: empty
    before the test, emptied after it; yields the prefix."""
    settings = build_settings(DATABASE_URL=postgres_url, REDIS_URL=redis_url, REDIS_KEY_PREFIX=prefix)
    await reset_state(settings)
    yield prefix
    await reset_state(settings)
    await delete_redis_keys(redis_url, prefix)
