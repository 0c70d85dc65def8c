"""Throwaway PostgreSQL and Redis processes for the fault suite (issue #18): started here, on free ports in a
temporary directory, and the only processes the fault tests stop, freeze (SIGSTOP) or kill — never the shared
services the rest of the suite uses.

PostgreSQL refuses to run as root: when the tests run as root the cluster belongs to the ``postgres`` OS user
(initdb and the server are started as that user; root may still signal them).
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("COUPON_FAULT_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up in {timeout} s: {last}")


def _as_user() -> dict:
    """subprocess arguments that run a child as the postgres OS user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": pwd.getpwnam("postgres").pw_gid, "extra_groups": []}


@dataclass
class Postgres:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        done = subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                               "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
                              capture_output=True, text=True, cwd=self.root, **_as_user())
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
             # fsync off: a killed server's writes are still in the OS cache. synchronous_commit stays on — off,
             # a SIGKILLed server loses commits it already acknowledged (the invariants here caught exactly that).
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=120", "-c", "shared_buffers=64MB"],
            stdout=log, stderr=log, start_new_session=True, **_as_user())
        _wait(lambda: psycopg.connect(self.url().replace("postgres://", "postgresql://"), connect_timeout=1).close()
              is None, "the throwaway PostgreSQL")

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends exit when they notice): connections are refused from now on."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        # orphaned backends die on their own; wait for the port to close
        _wait(lambda: not _port_open(self.port), "the throwaway PostgreSQL's shutdown", timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url().replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RedisServer:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root), "--logfile", str(self.root / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        import redis

        _wait(lambda: redis.Redis(port=self.port, socket_timeout=1).ping(), "the throwaway Redis")

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def scratch_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="coupon-faults-"))
    path.chmod(0o755)  # the postgres OS user must reach its cluster below it
    return path
