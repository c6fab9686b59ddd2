"""Server processes (uvicorn on 127.0.0.1), wrk, and /proc readings; everything bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
UVICORN = str(Path(sys.executable).parent / "uvicorn")
START_TIMEOUT_SECONDS = 45
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: The ASGI servers the harness can run (``scripts/bench --server``); uvicorn is the default.
SERVERS = ("uvicorn", "granian")


def server_command(server: str, factory: str, port: int) -> list[str]:
    """The same settings for the API and the ceiling app: one worker, no access log, websockets
    without per-message compression and with protocol pings once a minute (as scripts/run and the
    Dockerfile run uvicorn)."""
    if server == "granian":
        command = [str(Path(sys.executable).parent / "granian"), "--interface", "asgi", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "uvloop"]
        return [*command, "--no-access-log", "--log-level", "warning", factory]
    command = [UVICORN, "--factory", factory, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    return [*command, "--ws-per-message-deflate", "false", "--ws-ping-interval", "60"]


class Server:
    """One server process (or, for granian, its one worker: that is what is measured)."""

    def __init__(self, name: str, factory: str, environ: dict[str, str], log_dir: Path, server: str) -> None:
        self.name = name
        self.server = server
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        self.command = server_command(server, factory, self.port)
        # Production wants PUBLIC_URL: the origin of the stream and websocket URLs this server hands out.
        environ = {**environ, "PUBLIC_URL": self.url}
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(  # noqa: S603  (our own server, fixed arguments)
                self.command, cwd=ROOT, env=environ, stdout=output, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        """The process that serves requests: granian's worker, uvicorn itself."""
        if self.server != "granian":
            return self.process.pid
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found = children.read_text().split() if children.exists() else []
        return int(found[0]) if found else self.process.pid

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        async with httpx.AsyncClient(timeout=1) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} was not healthy within {START_TIMEOUT_SECONDS} s:\n{self.log.read_text()}")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuMeter:
    """A process's CPU use over a scenario (the server's, or a load generator's), in percent of one core."""

    def __init__(self, server: Server | int) -> None:
        self.pid = server if isinstance(server, int) else server.pid
        self.began = time.perf_counter()
        self.cpu = self._seconds()

    def _seconds(self) -> float:
        try:
            return process_cpu_seconds(self.pid)
        except OSError:
            return self.cpu  # the process ended meanwhile

    def percent(self) -> float:
        return round(100 * (self._seconds() - self.cpu) / (time.perf_counter() - self.began), 1)


async def wait_until_idle(server: Server, *, below_percent: float = 15.0, limit_seconds: float = 90.0) -> float:
    """Wait (bounded) until the server's CPU use over one second drops below ``below_percent``: one
    scenario's aftermath (thousands of sockets closing) must not be measured as the next one."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit_seconds:
        meter = CpuMeter(server)
        await asyncio.sleep(1)
        if meter.percent() < below_percent:
            break
    return round(time.perf_counter() - began, 1)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(text)
    return round(float(match.group(1)) * _UNITS[match.group(2)], 3)


def parse_wrk(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {"non_2xx": 0, "socket_errors": 0}
    for raw_line in output.splitlines():
        line = raw_line.strip()
        if line.startswith("Requests/sec:"):
            result["requests_per_s"] = float(line.split()[1])
        elif match := re.match(r"(\d+) requests in ([\d.]+\w+)", line):
            result["requests"] = int(match.group(1))
        elif match := re.match(r"(50|75|90|99)%\s+([\d.]+\w+)$", line):
            result[f"p{match.group(1)}_ms"] = _ms(match.group(2))
        elif line.startswith("Non-2xx or 3xx responses:"):
            result["non_2xx"] = int(line.split(":")[1])
        elif line.startswith("Socket errors:"):
            result["socket_errors"] = sum(int(n) for n in re.findall(r"\d+", line))
    return result


async def run_wrk(
    url: str,
    seconds: float,
    connections: int,
    raw: Path,
    *,
    script: Path | None = None,
    headers: list[str] | None = None,
) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    for header in headers or []:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), seconds + 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode()
    raw.write_text(" ".join(command[:-1]) + f" {url}\n{text}")  # noqa: ASYNC240  (a small file, once)
    result = parse_wrk(text)
    result["connections"] = connections
    return result


class Loader:
    """``python -m benchmarks.wsload <mode> <config>`` in its own process, talking JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(cls, mode: str, config: dict[str, Any], raw_dir: Path, name: str) -> Loader:
        import json

        path = raw_dir / f"{name}.config.json"
        path.write_text(json.dumps(config))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.wsload", mode, str(path),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=(raw_dir / f"{name}.stderr").open("wb"),
        )  # fmt: skip
        return cls(process)

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def read(self, limit_seconds: float) -> dict[str, Any]:
        import json

        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), limit_seconds)
        if not line:
            await self.process.wait()
            raise RuntimeError(f"load generator exited with {self.process.returncode} before answering")
        message: dict[str, Any] = json.loads(line)
        return message

    async def finish(self, limit_seconds: float) -> None:
        try:
            await asyncio.wait_for(self.process.wait(), limit_seconds)
        except TimeoutError:
            self.kill()
            await self.process.wait()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


async def run_loader(
    mode: str, config: dict[str, Any], raw_dir: Path, name: str, limit_seconds: float
) -> dict[str, Any]:
    loader = await Loader.start(mode, config, raw_dir, name)
    try:
        while True:
            message = await loader.read(limit_seconds)
            if message.get("event") == "result":
                return message
    finally:
        loader.kill()
        await loader.finish(5)
