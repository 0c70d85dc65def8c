"""``manage.py bench profile``: where a claim's and a redemption's time goes, against the framework floor (#21).

A few thousand requests in-process through the whole Django stack (middleware, DRF, the services) on a scratch
database, sequentially: the CPU each costs this process, the PostgreSQL backend and Redis (read from /proc and
INFO), the statements and Redis commands sent, and a cProfile breakdown by stage.

Design: docs/design/benchmarks.md#bench-profile.
"""
from __future__ import annotations

import cProfile
import os
import pstats
import shutil
import signal
import subprocess
import time
from typing import Any

import redis.connection

from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from bench.api import _seed
from bench.db import autovacuum, layout_arguments, layout_tables, scratch_database
from bench.floor import FLOOR_PATH, create_floor_table
from bench.registry import register
from core import partitioning
from core import redis as core_redis

# Stages: (label, file suffix, function name). Cumulative time of each, per request, from the profile; the stages
# nest (the view is inside the middleware), so the table prints "middleware" as the request minus the view.
STAGES = [
    ("request (whole)", "django/core/handlers/base.py", "get_response"),
    ("view dispatch", "core/api/views.py", "dispatch"),
    ("view dispatch", "rest_framework/views.py", "dispatch"),  # the floor's APIView (the product's views override it)
    ("authentication", "core/api/authentication.py", "authenticate"),
    ("body parsing + validation", "coupons/api/views.py", "valid"),
    ("lookup limits (Redis)", "core/api/views.py", "_reserve_lookups"),
    ("idempotency", "core/api/idempotency.py", "run_idempotent"),
    ("Bloom filter (Redis)", "coupons/bloom_check.py", "might_exist"),
    ("member lock acquire (Redis)", "redis/lock.py", "acquire"),
    ("member lock release (Redis)", "redis/lock.py", "release"),
    ("risk guard", "risk/guard.py", "check"),
    ("pricing", "coupons/pricing.py", "quote"),
    ("webhook events", "coupons/services/webhook_events.py", "_emit"),
    ("response body", "coupons/api/views.py", "coupon"),
    ("JSON rendering", "rest_framework/renderers.py", "render"),
    ("SQL statements", "django/db/backends/utils.py", "execute"),
    ("COMMIT", "django/db/backends/base/base.py", "commit"),
]


def _arguments(parser: Any) -> None:
    parser.add_argument("--kind", choices=["claim", "redeem", "floor"], default="claim")
    parser.add_argument("--requests", type=int, default=3000, help="Profiled requests (default 3000).")
    parser.add_argument("--database", default="", help="Scratch database (default <current>_benchprof).")
    layout_arguments(parser)
    parser.add_argument("--plain", type=int, default=500, help="Unprofiled requests timed for CPU (default 500).")
    parser.add_argument("--perf", default="", metavar="FILE",
                        help="Also sample the PostgreSQL backend with Linux perf during the unprofiled requests and "
                             "write its call graph to FILE (perf report -i FILE): where the server's CPU goes.")


def _pg_cpu_seconds() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with open(f"/proc/{pid}/stat") as stat:  # the server is on this machine (a benchmark's premise)
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _perf_record(output: str) -> subprocess.Popen:
    """``perf record`` of this connection's backend, until SIGINT."""
    if shutil.which("perf") is None:
        raise CommandError("--perf needs Linux perf (Debian: apt-get install linux-perf)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    recorder = subprocess.Popen(["perf", "record", "-F", "1999", "-g", "-p", str(pid), "-o", output],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # perf attaches
    return recorder


def _redis_cpu_seconds() -> float:
    info = core_redis.client().info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


@register("profile", help="Profile claims, redemptions or the framework floor in-process (#21).", arguments=_arguments)
def bench_profile(options: dict[str, Any]) -> dict[str, Any]:
    database = options["database"] or f"{connection.settings_dict['NAME']}_benchprof"
    kind, n = options["kind"], options["requests"]
    with scratch_database(database, layout=options.get("layout", "partitioned"),
                          partitions=options.get("partitions", partitioning.PARTITIONS),
                          tables=layout_tables(options)), override_settings(ROOT_URLCONF="bench.urls", ALLOWED_HOSTS=["*"]):
        create_floor_table()
        plain = max(1, options.get("plain", 500))
        api = _seed(n + 200 + plain, issued=kind == "redeem")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {api['token']}")
        order = {"items": [{"sku": "S1", "spu": "P1", "category": "C1", "shop": "s", "unit_price": 30000,
                            "quantity": 1, "virtual": False}], "shipping_fee": 3000, "channel": "ios",
                 "payment_method": "online"}

        def request(i: int) -> None:
            if kind == "claim":
                response = client.post("/api/v1/claims", {"member_id": f"m-{i}", "inventory": api["inventory"]},
                                       content_type="application/json")
            elif kind == "floor":
                response = client.post(FLOOR_PATH, {"member_id": f"m-{i}"}, content_type="application/json")
            else:
                code, member = api["codes"][i].split("|")
                response = client.post(f"/api/v1/coupons/{code}/redeem", {
                    "member_id": member, "order_id": f"o-{i}", "order": {**order, "order_id": f"o-{i}"}},
                    content_type="application/json")
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{kind} answered {response.status_code}: {response.content[:300]!r}")

        for i in range(100):  # warm-up: caches, prepared statements
            request(i)
        autovacuum(connection.settings_dict["NAME"])
        statements: list[str] = []

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            statements.append(sql)
            return execute(sql, params, many, context)

        commands = [0]
        serializers = [c for c in (getattr(redis.connection, "PythonRespSerializer", None),
                                   getattr(redis.connection, "HiredisRespSerializer", None)) if c is not None]
        originals = [c.pack for c in serializers]

        def counting(pack: Any) -> Any:
            def counted(self: Any, *args: Any) -> Any:  # every command, alone or in a pipeline, is packed once
                commands[0] += 1
                return pack(self, *args)
            return counted

        for cls, original in zip(serializers, originals, strict=True):
            cls.pack = counting(original)  # type: ignore[method-assign]
        try:
            with connection.execute_wrapper(count):
                for i in range(100, 200):
                    request(i)
        finally:
            for cls, original in zip(serializers, originals, strict=True):
                cls.pack = original  # type: ignore[method-assign]
        redis_commands = commands[0] / 100

        recorder = _perf_record(options["perf"]) if options.get("perf") else None
        pg0, redis0, cpu0, wall0 = _pg_cpu_seconds(), _redis_cpu_seconds(), time.process_time(), time.perf_counter()
        for i in range(200, 200 + plain):
            request(i)
            if i % 500 == 499:
                autovacuum(connection.settings_dict["NAME"])
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
        cpu = {"app_cpu_ms": (time.process_time() - cpu0) / plain * 1000,
               "postgres_cpu_ms": (_pg_cpu_seconds() - pg0) / plain * 1000,
               "redis_cpu_ms": (_redis_cpu_seconds() - redis0) / plain * 1000,
               "wall_ms": (time.perf_counter() - wall0) / plain * 1000}

        profiler = cProfile.Profile()
        profiled = n
        profiler.enable()
        for i in range(200 + plain, 200 + plain + profiled):
            request(i)
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    stages: dict[str, float] = {}
    for label, suffix, name in STAGES:
        if label == "view dispatch" and stages.get(label):
            continue  # the product's dispatch wraps DRF's: count the outer one
        total = sum(v[3] for (path, _line, func), v in stats.items() if func == name and path.endswith(suffix))
        stages[label] = round(total / profiled * 1000, 3)
    stages["middleware and Django outside the view"] = round(stages["request (whole)"] - stages["view dispatch"], 3)
    return {"benchmark": "profile", "kind": kind, "layout": options.get("layout", "partitioned"),
            "partitions": options.get("partitions", partitioning.PARTITIONS),
            "partitioned_tables": ",".join(layout_tables(options)), "requests_profiled": profiled,
            "per_request": {k: round(v, 3) for k, v in cpu.items()},
            "statements_per_request": round(len(statements) / 100, 2),
            "redis_commands_per_request": round(redis_commands, 2),
            "profiled_ms_per_request": stages, "load": round(os.getloadavg()[0], 2),
            "note": "profiled_ms are cumulative times under cProfile (inflated, and nested); per_request is "
                    "unprofiled: this process's CPU, the PostgreSQL backend's CPU, the whole Redis server's CPU "
                    "(exact on a quiet machine only), wall time"}
