"""The fault suite's processes: the app served by gunicorn and RQ workers, all on the throwaway PostgreSQL and Redis
(tests/faults/services.py), each in its own process group so a test can SIGKILL a whole worker (rqworker and its
work horse) the way an out-of-memory killer or a lost host would."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.faults.services import Postgres, RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    """The throwaway services and the environment every child process of a fault test gets."""

    root: Path
    pg: Postgres
    redis: RedisServer
    db_url: str
    children: list[subprocess.Popen] = field(default_factory=list)

    def env(self, **extra: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COUPON_", "DJANGO_"))}
        env.update({
            "DATABASE_URL": self.db_url, "REDIS_URL": self.redis.url(),
            "DJANGO_SECRET_KEY": "fault-suite-secret-key-0123456789abcdef",
            "COUPON_VAR_DIR": str(self.root / "var"), "DJANGO_MEDIA_ROOT": str(self.root / "media"),
            "LOG_FORMAT": "json", "DJANGO_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
            # quick recovery and discovery, so the suite stays within minutes
            "COUPON_REDIS_RETRY_AFTER_SECONDS": "1", "COUPON_CONFIG_CACHE_SECONDS": "0",
            "COUPON_WORKER_HEARTBEAT_SECONDS": "2", "COUPON_WORKER_MAINTENANCE_SECONDS": "5",
            "COUPON_SWEEP_INTERVAL_SECONDS": "2", "COUPON_SWEEP_PENDING_GRACE_SECONDS": "5",
            "COUPON_GENERATION_CHUNK_SIZE": "20000", "COUPON_GENERATION_WRITERS": "1",
            "COUPON_BLOOM_CAPACITY": "2000000",
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def spawn(self, args: list[str], log: str, **env: Any) -> subprocess.Popen:
        out = open(self.root / log, "ab")
        proc = subprocess.Popen(args, cwd=REPO, env=self.env(**env), stdout=out, stderr=out, start_new_session=True)
        self.children.append(proc)
        return proc

    def manage(self, *args: str, **env: Any) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env(**env),
                              capture_output=True, text=True, timeout=120)

    def reap(self) -> None:
        for proc in self.children:
            kill_group(proc)
        self.children.clear()


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the process and every process it started (its session's group: rqworker + work horse)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def wait_for(check: Callable[[], Any], what: str, timeout: float, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something true (a condition, not a guess at a duration)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), whatever process group it put itself in."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Server:
    """gunicorn serving the app (2 workers × 4 threads) on a free port."""

    def __init__(self, stack: Stack, **env: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = stack.spawn([sys.executable, "-m", "gunicorn", "coupon_project.wsgi", "--bind",
                                 f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "4", "--timeout", "60"],
                                f"gunicorn-{self.port}.log", **env)
        wait_for(self._answers, "gunicorn", timeout=60, every=0.2)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health/", timeout=5).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def post(self, path: str, token: str, body: Any = None, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if key:
            headers["Idempotency-Key"] = key
        if "files" in kw:
            return self.http.post(path, headers=headers, **kw)
        return self.http.post(path, headers=headers, json=body)

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(path, headers=headers)

    def stop(self) -> None:
        self.http.close()
        kill_group(self.proc, signal.SIGTERM)


class Worker:
    """``manage.py rqworker`` (the project's worker class, with the scheduler) in its own process group."""

    QUEUES = ["generation", "uploads", "grants", "draws", "default"]

    def __init__(self, stack: Stack, name: str, *, scheduler: bool = True, **env: Any) -> None:
        # A unique name: a killed worker's registration outlives it, and RQ refuses a second live one of a name.
        self.name = f"{name}-{uuid.uuid4().hex[:8]}"
        # A killed worker's scheduler lock outlives it by a minute (RQ); workers meant to die run without one.
        self.proc = stack.spawn([sys.executable, "manage.py", "rqworker", *self.QUEUES, "--name", self.name,
                                 *(["--with-scheduler"] if scheduler else [])], f"worker-{self.name}.log", **env)
        self.started = time.monotonic()

    def kill(self) -> None:
        """SIGKILL the whole worker: the rqworker, its work horse (RQ puts the horse in a process group of its own)
        and its scheduler process — every descendant, found before any of them dies."""
        family = [self.proc.pid, *descendants(self.proc.pid)]
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=20)
        wait_for(lambda: not any(_alive(pid) for pid in family), "the worker's processes gone", timeout=20)

    def stop(self) -> None:
        kill_group(self.proc, signal.SIGTERM)
