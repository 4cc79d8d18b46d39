"""A small Redis Cluster of the tests' own: three primaries started from the ``redis-server``
binary on free loopback ports, one per test session (the ``redis_cluster`` fixture in
``tests/conftest.py``). Skipped locally without the binary; under CI (which installs it, see
``scripts/services.sh``) its absence fails, as the shared test Redis does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .ports import unused_port

PRIMARIES = 3
SLOTS = 16_384


def _binaries() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        why = ("redis-server and redis-cli are not installed: the Redis Cluster tests start a cluster of their own "
               "from them (apt-get install redis-server)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why)
        pytest.skip(why)
    return server, cli


class OwnCluster:
    """Three cluster-enabled redis-servers (client port and bus port each picked free), joined with
    ``redis-cli --cluster create`` and waited for until every node says ``cluster_state:ok``."""

    def __init__(self, folder: Path) -> None:
        self._server, self._cli = _binaries()
        self._folder = folder
        self.ports: list[int] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The URL a user writes: the Cluster scheme and any one node."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        for i in range(PRIMARIES):
            port, bus = self._free_pair()
            node = self._folder / f"node{i}"
            node.mkdir(parents=True, exist_ok=True)
            self._procs.append(subprocess.Popen(
                [self._server, "--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node),
                 "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.ports.append(port)
        for port in self.ports:
            self._wait_for_port(port)
        subprocess.run([self._cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        for _ in range(600):   # up to 30 s for every node to agree on the slot map
            if all(self._state_ok(p) for p in self.ports):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail("the test Redis Cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(10)

    def _free_pair(self) -> tuple[int, int]:
        taken = set(self.ports)
        while True:
            port, bus = unused_port(), unused_port()
            if port != bus and not {port, bus} & taken:
                taken |= {port, bus}
                return port, bus

    def _wait_for_port(self, port: int) -> None:
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.01)
        self.stop()
        pytest.fail(f"redis-server (cluster node) did not start on port {port}")

    def _state_ok(self, port: int) -> bool:
        out = subprocess.run([self._cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True,
                             timeout=10).stdout
        return "cluster_state:ok" in out and f"cluster_slots_ok:{SLOTS}" in out and \
            f"cluster_known_nodes:{PRIMARIES}" in out
