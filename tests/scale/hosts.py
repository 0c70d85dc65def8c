"""Three app hosts behind a load balancer, and two job hosts (issue #23, stateless app tier).

Each "host" is a process tree with its own working directory, its own ``COUPON_VAR_DIR`` and its own ``TMPDIR``, so
no two of them share a local file: the web hosts are gunicorn (2 workers × 4 threads each), the job hosts
``manage.py rqworker`` on every queue. What they share is what a real fleet shares: the database (the suite's test
database), one Redis (a throwaway ``redis-server`` here, so no other test's job reaches these workers and no job of
theirs reaches another test's), the secret key, and the configured shared file storage (``DJANGO_MEDIA_ROOT``, the
stand-in for an NFS/EFS mount; docs/design/hosts.md). In front of the web hosts: Debian's HAProxy, round-robin,
naming the host that answered in ``X-Served-By``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.faults.harness import kill_group, wait_for
from tests.faults.services import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
QUEUES = ["generation", "uploads", "grants", "expiry", "draws", "exports", "default"]

HAPROXY_CFG = """
global
    maxconn 512
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend app
    bind 127.0.0.1:{port}
    default_backend hosts
backend hosts
    balance roundrobin
    http-response set-header X-Served-By %[srv_name]
{servers}
"""


def database_url(settings_dict: dict[str, Any]) -> str:
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


@dataclass
class Host:
    name: str
    root: Path
    proc: subprocess.Popen
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Fleet:
    root: Path
    db_url: str
    env_extra: dict[str, str] = field(default_factory=dict)
    redis: RedisServer | None = None
    web: list[Host] = field(default_factory=list)
    workers: list[Host] = field(default_factory=list)
    balancer: subprocess.Popen | None = None
    balancer_port: int = 0

    @property
    def shared_media(self) -> Path:
        return self.root / "shared-media"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.balancer_port}"

    def env(self, host_root: Path) -> dict[str, str]:
        assert self.redis is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COUPON_", "DJANGO_"))}
        (host_root / "var").mkdir(parents=True, exist_ok=True)
        (host_root / "tmp").mkdir(parents=True, exist_ok=True)
        env.update({
            "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.db_url, "REDIS_URL": self.redis.url(),
            "DJANGO_SECRET_KEY": "three-hosts-share-one-secret-key-0123456789",  # docs/design/hosts.md
            "COUPON_VAR_DIR": str(host_root / "var"), "TMPDIR": str(host_root / "tmp"),
            "DJANGO_MEDIA_ROOT": str(self.shared_media),
            "LOG_FORMAT": "json", "DJANGO_LOG_LEVEL": "WARNING",
            # small chunks: a generation of a few thousand codes still commits several chunks
            "COUPON_GENERATION_CHUNK_SIZE": "2000", "COUPON_GENERATION_WRITERS": "1",
            "COUPON_BLOOM_CAPACITY": "2000000",
            # the redeem race sends one member's lookups at once: about double use, not guessing (as
            # tests/coupons/test_concurrency.py)
            "COUPON_FAILED_GUESS_LIMIT": "0",
        })
        env.update(self.env_extra)
        return env

    def _spawn(self, name: str, args: list[str]) -> Host:
        host_root = self.root / name
        env = self.env(host_root)  # creates the host's own directories
        log = open(self.root / f"{name}.log", "ab")
        proc = subprocess.Popen(args, cwd=host_root, env=env, stdout=log, stderr=log, start_new_session=True)
        return Host(name=name, root=host_root, proc=proc)

    def start(self, hosts: int = 3, workers: int = 2) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.shared_media.mkdir(exist_ok=True)
        self.redis = RedisServer(self.root / "redis")
        self.redis.start()
        for n in range(1, hosts + 1):
            port = free_port()
            host = self._spawn(f"web{n}", [sys.executable, "-m", "gunicorn", "coupon_project.wsgi", "--bind",
                                           f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                                           "--timeout", "120", "--graceful-timeout", "3"])
            host.port = port
            self.web.append(host)
        for n in range(1, workers + 1):
            self.workers.append(self._spawn(f"worker{n}", [
                sys.executable, str(REPO / "manage.py"), "rqworker", *QUEUES,
                "--name", f"worker{n}-{uuid.uuid4().hex[:8]}"]))
        self.balancer_port = free_port()
        servers = "\n".join(f"    server {h.name} 127.0.0.1:{h.port}" for h in self.web)
        config = self.root / "haproxy.cfg"
        config.write_text(HAPROXY_CFG.format(port=self.balancer_port, servers=servers))
        log = open(self.root / "haproxy.log", "ab")
        assert HAPROXY is not None
        self.balancer = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=log,
                                         start_new_session=True)
        for host in self.web:
            wait_for(lambda host=host: self._answers(host.url), f"gunicorn {host.name}", timeout=90, every=0.3)
        wait_for(lambda: self._answers(self.url), "haproxy", timeout=30, every=0.2)
        wait_for(self._workers_registered, "2 rqworkers registered", timeout=90, every=0.3)

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return httpx.get(f"{url}/health/", timeout=5).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def _workers_registered(self) -> bool:
        import redis
        from rq import Worker

        assert self.redis is not None
        for worker in self.workers:
            if worker.proc.poll() is not None:
                raise AssertionError(f"{worker.name} exited: {(self.root / f'{worker.name}.log').read_text()[-3000:]}")
        return len(Worker.all(connection=redis.Redis.from_url(self.redis.url()))) >= len(self.workers)

    def stop(self) -> None:
        """SIGTERM to every process group at once (gunicorn and rqworker shut down in parallel), SIGKILL to what is
        left after 10 s."""
        procs = [p for p in [self.balancer, *(h.proc for h in [*self.web, *self.workers])] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_group(proc)
        if self.redis is not None:
            self.redis.kill()


class Caller:
    """HTTP as an API client of one tenant; every answer's ``X-Served-By`` (the balancer's host name) is kept."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url, token
        self.served_by: list[str] = []

    def call(self, method: str, path: str, *, base_url: str | None = None, **kw: Any) -> httpx.Response:
        """One request on a new connection (so the balancer picks a host for it), to ``base_url`` if given."""
        with httpx.Client(base_url=base_url or self.base_url, timeout=60,
                          headers={"Authorization": f"Bearer {self.token}"}) as client:
            response = client.request(method, path, **kw)
        if "x-served-by" in response.headers:
            self.served_by.append(response.headers["x-served-by"])
        return response


def poll(check, what: str, timeout: float, every: float = 0.2) -> Any:
    started = time.monotonic()
    value = wait_for(check, what, timeout=timeout, every=every)
    return value, time.monotonic() - started
