"""PostgreSQL and Redis servers of a test's own (own port, own data directory), to kill, stop,
pause and restart under a running API, never the shared ones."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import pytest
import redis

from helpers import tool_missing
from servers import free_ports

START_SECONDS = 30


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _postgres_bin(name: str) -> str:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        tool_missing(f"PostgreSQL's {name} is not installed (scripts/test installs the postgresql package)")
    return str(found[-1])


@dataclass
class OwnPostgres:
    data_dir: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.data_dir), *args]),
            check=True,
            capture_output=True,
            timeout=START_SECONDS,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off"
        self._ctl("-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: connections are cut, as in a failover."""
        self._ctl("-m", "fast", "-w", "stop")

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[OwnPostgres]:
        # Not under pytest's tmp_path: the postgres user must be able to reach it.
        directory = Path(tempfile.mkdtemp(prefix="reelhouse-faults-pg-"))
        directory.chmod(0o755)
        data_dir = directory / "data"
        data_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres")
            shutil.chown(data_dir, "postgres")
        log = directory / "postgres.log"
        subprocess.run(
            _as_postgres([_postgres_bin("initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-N"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        if os.geteuid() == 0:
            log.touch()
            shutil.chown(log, "postgres")
        server = cls(data_dir, free_ports(1)[0], log)
        server.start()
        try:
            yield server
        finally:
            subprocess.run(
                _as_postgres([_postgres_bin("pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"]),
                capture_output=True,
                timeout=START_SECONDS,
                check=False,
            )
            shutil.rmtree(directory, ignore_errors=True)


@dataclass
class OwnRedis:
    """No persistence: a restart loses every key, as a Redis without AOF does."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            tool_missing("redis-server is not installed (scripts/test installs the redis-server package)")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        pytest.fail(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @classmethod
    @contextmanager
    def running(cls, directory: Path) -> Iterator[OwnRedis]:
        directory.mkdir(parents=True, exist_ok=True)
        server = cls(directory, free_ports(1)[0])
        server.start()
        try:
            yield server
        finally:
            if server.process is not None:
                server.resume_if_paused()
                server.kill()

    def resume_if_paused(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
