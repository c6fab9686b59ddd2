"""Load generators that run in their own process: ``python -m benchmarks.wsload <mode> <config.json>``.

Modes (each bounded by its config and prints one JSON result line on stdout):

- ``flood``: closed loop on ``sockets`` websockets, send a heartbeat and wait for the reply, for
  ``duration`` seconds; against the ceiling's ``/echo`` or the API's player socket.
- ``players``: obey commands on stdin (one per line): ``join`` (each player starts its stream,
  opens its socket and heartbeats), ``hb <rate> <seconds> <sockets>``, ``quit``; each answers a JSON line.
- ``eviction``: per sample, a device connected to instance A is evicted by a start made on
  instance B; measures until its ``terminated`` notice arrives.
- ``logins``: open-loop sign-ins at ``rate`` per second for ``duration`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchmarks.stats import latency_summary_ms

START_PATH = "/api/v1/playback/sessions"
HEARTBEAT = json.dumps({"type": "heartbeat", "position_seconds": 12.5, "state": "playing"})
CONNECT_CONCURRENCY = 200
START_CONCURRENCY = 32


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def start_streams(
    base: str, tokens: list[str], content_id: str, device: str, concurrency: int = START_CONCURRENCY
) -> tuple[list[str], list[str], float]:
    """One stream per token; (ws urls, errors, seconds taken)."""
    urls: list[str] = [""] * len(tokens)
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    began = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def one(index: int, token: str) -> None:
            async with gate:
                response = await http.post(
                    START_PATH,
                    json={"content_id": content_id, "device_id": f"{device}-{index % 4}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            if response.status_code == 201:
                urls[index] = response.json()["ws_url"]
            else:
                errors.append(f"{response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(one(index, token) for index, token in enumerate(tokens)))
    return [url for url in urls if url], errors, time.perf_counter() - began


async def open_sockets(urls: list[str]) -> tuple[list[ClientConnection], int]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    sockets: list[ClientConnection | None] = [None] * len(urls)
    failures = 0

    async def one(index: int, url: str) -> None:
        nonlocal failures
        async with gate:
            try:
                sockets[index] = await connect(url, open_timeout=30, ping_interval=None, max_queue=64)
            except (OSError, TimeoutError, ConnectionClosed, Exception):  # noqa: BLE001  (counted)
                failures += 1

    await asyncio.gather(*(one(index, url) for index, url in enumerate(urls)))
    return [socket for socket in sockets if socket is not None], failures


async def flood(config: dict[str, Any]) -> dict[str, Any]:
    """Closed-loop round trips on many sockets for ``duration`` seconds."""
    if config.get("urls"):
        urls = list(config["urls"])
    elif config.get("echo_url"):
        urls = [config["echo_url"]] * config["sockets"]
    else:
        urls, errors, _ = await start_streams(config["base"], config["tokens"], config["content_id"], "flood")
        if errors:
            return {"error": f"{len(errors)} starts failed: {errors[:3]}"}
    sockets, failures = await open_sockets(urls)
    latencies: list[float] = []
    errors_seen = 0
    stop_at = time.perf_counter() + config["duration"]

    async def loop(socket: ClientConnection) -> None:
        nonlocal errors_seen
        while time.perf_counter() < stop_at:
            sent = time.perf_counter()
            try:
                await socket.send(HEARTBEAT)
                reply = await socket.recv()
            except ConnectionClosed:
                errors_seen += 1
                return
            latencies.append(time.perf_counter() - sent)
            if '"ack"' not in str(reply) and '"heartbeat"' not in str(reply):
                errors_seen += 1

    began = time.perf_counter()
    async with asyncio.timeout(config["duration"] + 30):
        await asyncio.gather(*(loop(socket) for socket in sockets))
    elapsed = time.perf_counter() - began
    for socket in sockets:
        with contextlib.suppress(Exception):
            await socket.close()
    return {
        "sockets": len(sockets),
        "connect_failures": failures,
        "round_trips": len(latencies),
        "seconds": round(elapsed, 3),
        "round_trips_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors_seen,
        **latency_summary_ms(latencies),
    }


class Players:
    """Many connected players; heartbeats are sent at a fixed total rate, round robin.

    While players are still being added, a keep-alive heartbeats every socket each
    ``KEEPALIVE_SECONDS`` (like a real player), so early streams do not expire meanwhile.
    """

    KEEPALIVE_SECONDS = 12.0

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.pending: list[deque[float]] = []
        self.last_sent: list[float] = []
        self.latencies: list[float] = []
        self.acked = 0
        self.terminated = 0
        self.closed = 0
        self.readers: list[asyncio.Task[None]] = []

    def add(self, socket: ClientConnection) -> None:
        self.sockets.append(socket)
        self.pending.append(deque())
        self.last_sent.append(0.0)
        self.readers.append(asyncio.create_task(self.read(len(self.sockets) - 1)))

    async def send(self, index: int) -> bool:
        now = time.perf_counter()
        self.pending[index].append(now)
        self.last_sent[index] = now
        try:
            await self.sockets[index].send(HEARTBEAT)
        except ConnectionClosed:
            self.pending[index].pop()
            return False
        return True

    async def keepalive(self) -> None:
        while True:
            now = time.perf_counter()
            for index in range(len(self.sockets)):
                if now - self.last_sent[index] > self.KEEPALIVE_SECONDS:
                    await self.send(index)
            await asyncio.sleep(0.5)

    async def read(self, index: int) -> None:
        socket = self.sockets[index]
        pending = self.pending[index]
        try:
            async for raw in socket:
                now = time.perf_counter()
                text = raw if isinstance(raw, str) else raw.decode()
                if '"ack"' in text and pending:
                    self.latencies.append(now - pending.popleft())
                    self.acked += 1
                elif '"terminated"' in text:
                    self.terminated += 1
        except ConnectionClosed:
            pass
        self.closed += 1

    async def heartbeat(self, rate: float, seconds: float, count: int) -> dict[str, Any]:
        count = min(count, len(self.sockets))
        for pending in self.pending:
            pending.clear()
        self.latencies = []
        acked_before = self.acked
        closed_before = self.closed
        sent = 0
        send_failures = 0
        began = time.perf_counter()
        cursor = 0
        while (elapsed := time.perf_counter() - began) < seconds:
            due = int(elapsed * rate) - sent
            for _ in range(max(0, due)):
                if not await self.send(cursor % count):
                    send_failures += 1
                cursor += 1
                sent += 1
            await asyncio.sleep(0.01)
        send_seconds = time.perf_counter() - began
        drain_until = time.perf_counter() + 3
        while self.acked - acked_before < sent - send_failures and time.perf_counter() < drain_until:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # polls the counter the readers bump, up to a deadline
        acked = self.acked - acked_before
        return {
            "sockets": count,
            "sent": sent,
            "acked": acked,
            "lost": sent - acked,
            "send_failures": send_failures,
            "rate_per_s": round(sent / send_seconds, 1),
            "seconds": round(send_seconds, 3),
            "sockets_closed_meanwhile": self.closed - closed_before,
            **latency_summary_ms(self.latencies),
        }

    async def close(self) -> None:
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()


async def join_players(
    bases: list[str], tokens: list[str], content_id: str, group: Players, limit_seconds: float
) -> dict[str, Any]:
    """Each player starts its stream, opens its socket at once and heartbeats (as a real player does).
    Player i starts on ``bases[i % len(bases)]`` (its socket goes where that instance says).

    Players not yet admitted after ``limit_seconds`` give up (counted as ``not_joined``).
    """
    gate = asyncio.Semaphore(START_CONCURRENCY)
    errors: list[str] = []
    skipped = 0
    began = time.perf_counter()
    deadline = began + limit_seconds
    limits = httpx.Limits(max_connections=START_CONCURRENCY, max_keepalive_connections=START_CONCURRENCY)
    keepalive = asyncio.create_task(group.keepalive())
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=30, limits=limits))
            for base in bases
        ]

        async def one(index: int, token: str) -> None:
            nonlocal skipped
            http = clients[index % len(clients)]
            async with gate:
                if time.perf_counter() > deadline:
                    skipped += 1
                    return
                try:
                    response = await http.post(
                        START_PATH,
                        json={"content_id": content_id, "device_id": "player"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if response.status_code != 201:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                        return
                    socket = await connect(response.json()["ws_url"], open_timeout=30, ping_interval=None, max_queue=64)
                except Exception as exc:  # noqa: BLE001  (counted and reported)
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    return
            group.add(socket)
            await group.send(len(group.sockets) - 1)

        await asyncio.gather(*(one(index, token) for index, token in enumerate(tokens)))
    keepalive.cancel()
    return {"sockets": len(group.sockets), "errors": len(errors), "first_errors": errors[:3], "not_joined": skipped,
            "seconds": round(time.perf_counter() - began, 3)}  # fmt: skip


async def players(config: dict[str, Any]) -> dict[str, Any]:
    emit({"event": "ready"})
    loop = asyncio.get_running_loop()
    group = Players()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "join":
            bases = config.get("bases") or [config["base"]]
            joined = await join_players(
                bases, config["tokens"], config["content_id"], group, config["join_limit_seconds"]
            )
            emit({"event": "joined", **joined})
        elif words[0] == "hb":
            result = await group.heartbeat(float(words[1]), float(words[2]), int(words[3]))
            emit({"event": "heartbeats", **result})
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(20):
            await group.close()
    return {"event": "done"}


async def eviction(config: dict[str, Any]) -> dict[str, Any]:
    """Device A on instance ``a`` is evicted by device B starting on instance ``b``."""
    a, b = config["a"], config["b"]
    from_request: list[float] = []
    from_response: list[float] = []
    failures: list[str] = []
    close_codes: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for token in config["tokens"]:
            headers = {"Authorization": f"Bearer {token}"}
            body = {"content_id": config["content_id"], "device_id": "tv-a"}
            first = await http.post(f"{a}{START_PATH}", json=body, headers=headers)
            if first.status_code != 201:
                failures.append(f"start A {first.status_code}")
                continue
            async with connect(first.json()["ws_url"], open_timeout=10, ping_interval=None) as socket:
                await socket.send(HEARTBEAT)  # the ack proves the notice subscription is in place
                ack = json.loads(await asyncio.wait_for(socket.recv(), 5))
                if ack.get("type") != "ack":
                    failures.append(f"no ack: {ack}")
                    continue
                sent = time.perf_counter()
                second = await http.post(f"{b}{START_PATH}", json={**body, "device_id": "phone-b"}, headers=headers)
                answered = time.perf_counter()
                if second.status_code != 201:
                    failures.append(f"start B {second.status_code}")
                    continue
                try:
                    async with asyncio.timeout(5):
                        while True:
                            message = json.loads(await socket.recv())
                            if message.get("type") == "terminated":
                                arrived = time.perf_counter()
                                break
                except (TimeoutError, ConnectionClosed):
                    failures.append("no terminated notice within 5 s")
                    continue
                from_request.append(arrived - sent)
                from_response.append(arrived - answered)
                try:
                    await asyncio.wait_for(socket.recv(), 2)
                except ConnectionClosed as closed:
                    code = str(closed.rcvd.code if closed.rcvd else None)
                    close_codes[code] = close_codes.get(code, 0) + 1
                except TimeoutError:
                    close_codes["none"] = close_codes.get("none", 0) + 1
    return {
        "samples": len(from_request),
        "failures": len(failures),
        "first_failures": failures[:3],
        "close_codes": close_codes,
        "from_request": latency_summary_ms(from_request),
        "from_response": latency_summary_ms([max(0.0, value) for value in from_response]),
    }


async def logins(config: dict[str, Any]) -> dict[str, Any]:
    rate, seconds = config["rate"], config["duration"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def one(http: httpx.AsyncClient, email: str) -> None:
        began = time.perf_counter()
        try:
            response = await http.post(
                "/api/v1/auth/login", json={"email": email, "password": config["password"], "device_name": "bench"}
            )
            code = str(response.status_code)
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        if code == "200":
            latencies.append(time.perf_counter() - began)
        statuses[code] = statuses.get(code, 0) + 1

    async with httpx.AsyncClient(base_url=config["base"], timeout=30) as http, asyncio.TaskGroup() as tasks:
        began = time.perf_counter()
        launched = 0
        while (elapsed := time.perf_counter() - began) < seconds:
            while launched < int(elapsed * rate) + 1 and launched < int(seconds * rate):
                tasks.create_task(one(http, config["emails"][launched % len(config["emails"])]))
                launched += 1
            await asyncio.sleep(0.005)
    return {"attempted": launched, "statuses": statuses, "rate_per_s": rate, **latency_summary_ms(latencies)}


MODES = {"flood": flood, "players": players, "eviction": eviction, "logins": logins}


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as handle:
        config = json.load(handle)
    result = asyncio.run(MODES[mode](config))
    emit({"event": "result", **result})


if __name__ == "__main__":
    main()
