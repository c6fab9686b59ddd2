"""A Redis Cluster of the test run's own: three masters on free 127.0.0.1 ports, no replicas.

``running_cluster(directory)`` starts three ``redis-server --cluster-enabled yes`` processes
(each with its own data directory and cluster bus port, no persistence), joins them with
``redis-cli --cluster create``, waits until every node reports ``cluster_state:ok`` and the
same slot map, yields the cluster, and always kills the servers. It takes about a second.

Each pytest process (each xdist worker) starts its own cluster the first time a test asks
for one, so no process has to wait for another to finish before stopping it; the tests
keep to their own key prefix as they do on the shared Redis.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from helpers import tool_missing
from servers import free_ports

MASTERS = 3
START_SECONDS = 30


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        tool_missing(f"{name} is not installed: the Redis Cluster tests need redis-server and redis-cli 7")
    return found


@dataclass
class OwnCluster:
    directory: Path
    ports: list[int]
    bus_ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The ``REDIS_URL`` the app takes: every master as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def node_of(self, key: str) -> int:
        """The port of the master that holds ``key``."""
        with redis.Redis(port=self.ports[0]) as probe:
            slot = int(probe.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in probe.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise AssertionError(f"no master holds slot {slot}")

    def _server(self, port: int) -> subprocess.Popen[bytes]:
        bus_port = self.bus_ports[self.ports.index(port)]
        data = self.directory / str(port)
        data.mkdir(parents=True, exist_ok=True)
        command = [_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
        command += ["--cluster-enabled", "yes", "--cluster-port", str(bus_port)]
        command += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]
        command += ["--save", "", "--appendonly", "no", "--logfile", str(data / "redis.log")]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait(lambda: _ping(port), f"redis-server on port {port} did not start (log: {data / 'redis.log'})")
        except BaseException:
            process.kill()
            process.wait()
            raise
        return process

    def kill_node(self, port: int) -> None:
        """Kill one master (its slots go unserved until it is back)."""
        process = self.processes[self.ports.index(port)]
        process.kill()
        process.wait()

    def start_node(self, port: int) -> None:
        """Start a killed master again on its port: it keeps its slots (nodes.conf) and has lost
        every key and script, as a node without persistence does."""
        self.processes[self.ports.index(port)] = self._server(port)
        self._wait(self._settled, "the cluster did not settle after a restart")

    def start(self) -> None:
        for port in self.ports:
            self.processes.append(self._server(port))  # one by one: a failed start still stops the rest
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(
            [_binary("redis-cli"), "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=START_SECONDS,
            check=False,
        )
        if created.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed:\n{created.stdout.decode()}{created.stderr.decode()}")
        self._wait(self._settled, "the cluster did not settle (cluster_state:ok on every node, one slot map)")

    def _settled(self) -> bool:
        maps = []
        for port in self.ports:
            with redis.Redis(port=port) as node:
                if b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
                    return False
                slots = node.execute_command("CLUSTER", "SLOTS")
                maps.append(sorted((start, end, master[1]) for start, end, master, *_ in slots))
        return all(slots == maps[0] for slots in maps)

    def _wait(self, ready: Callable[[], bool], failure: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        pytest.fail(failure)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait()
        self.processes.clear()


def _ping(port: int) -> bool:
    with redis.Redis(port=port, socket_connect_timeout=0.5) as client:
        return bool(client.ping())


@contextmanager
def running_cluster(directory: Path) -> Iterator[OwnCluster]:
    ports = free_ports(2 * MASTERS)  # client ports, then cluster bus ports
    cluster = OwnCluster(directory, ports[:MASTERS], ports[MASTERS:])
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
