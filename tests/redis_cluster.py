"""A throwaway 3-node Redis Cluster for the tests of the app's multi-key Redis operations (issue #23): three stock
``redis-server`` processes in cluster mode, in a temporary directory, joined by ``redis-cli --cluster create`` (no
replicas). Never the shared Redis; these are the only Redis processes these tests start or stop.

Ports: 7101-7103 (their cluster bus 17101-17103) for the first xdist worker, 10 higher for each further one
(gw1: 7111-7113), so parallel workers do not collide; ``COUPON_TEST_CLUSTER_PORT`` moves the base.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NODES = 3


def base_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return int(os.environ.get("COUPON_TEST_CLUSTER_PORT", "7101")) + 10 * index


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stale_pid(pidfile: Path, port: int) -> int | None:
    """The pid in a pidfile an earlier, killed run of these tests left behind, if that process is still our
    ``redis-server`` on ``port`` (so only our own leftovers are ever stopped)."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if "redis-server" in cmdline and f":{port}" in cmdline else None


@dataclass
class RedisClusterNodes:
    root: Path
    first_port: int = field(default_factory=base_port)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [self.first_port + i for i in range(NODES)]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.first_port}/0"

    def _pidfile(self, port: int) -> Path:
        return Path(tempfile.gettempdir()) / f"coupons-test-cluster-{port}.pid"

    def start(self) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            raise RuntimeError("redis-server and redis-cli (Debian's redis-server package) are needed for these tests")
        for port in self.ports:
            stale = _stale_pid(self._pidfile(port), port)
            if stale is not None:  # our own node from a run that was killed before its teardown
                os.kill(stale, signal.SIGKILL)
                _wait(lambda p=port: not _port_open(p), f"the stale test cluster node on {port} to stop")
            if _port_open(port) or _port_open(port + 10000):
                raise RuntimeError(f"port {port} (or its cluster bus {port + 10000}) is taken; "
                                   "set COUPON_TEST_CLUSTER_PORT to another base")
        for port in self.ports:
            node = self.root / str(port)
            node.mkdir(parents=True, exist_ok=True)
            proc = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node / "nodes.conf"), "--cluster-node-timeout", "5000",
                 "--save", "", "--appendonly", "no", "--dir", str(node), "--logfile", str(node / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            self.procs.append(proc)
            self._pidfile(port).write_text(str(proc.pid))
        for port in self.ports:
            _wait(lambda p=port: _cli(p, "ping") == "PONG", f"cluster node {port}")
        done = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                               "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True,
                              timeout=60)
        if done.returncode:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        for port in self.ports:
            _wait(lambda p=port: "cluster_state:ok" in _cli(p, "cluster", "info"), f"cluster_state:ok on {port}")

    def stop(self) -> None:
        for port, proc in zip(self.ports, self.procs, strict=False):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            self._pidfile(port).unlink(missing_ok=True)
        self.procs.clear()


def _cli(port: int, *args: str) -> str:
    done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True,
                          timeout=5)
    return done.stdout.strip()


def _wait(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, subprocess.SubprocessError):  # not up yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")
