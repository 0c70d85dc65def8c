"""``manage.py bench claim`` / ``bench redeem``: the member API under load over HTTP, against a same-run SQL floor.

Design: docs/design/benchmarks.md#bench-api.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from bench.db import database_url, layout_arguments, scratch_database
from bench.db import dsn as _dsn
from bench.floor import CLAIM_FLOOR_PATH, FLOOR_PATH, REDEEM_FLOOR_PATH, create_floor_table
from bench.registry import register
from core import partitioning
from core.audit import Actor
from coupons.pool import POOL_CONDITION, POOL_ORDER
from core.models import User
from core.services import api_client_create, tenant_create
from coupons import services
from coupons.services.generation import batch_generate
from coupons.models import CouponPolicy
from events.services import event_create

BASE_DIR = Path(__file__).resolve().parent.parent


def _arguments(parser: Any) -> None:
    parser.add_argument("--clients", type=int, default=32, help="Concurrent keep-alive clients (default 32).")
    parser.add_argument("--requests", type=int, default=20_000, help="Requests in the measured run.")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3).")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--database", default="", help="Scratch database (default <current>_benchapi).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    layout_arguments(parser)
    parser.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto",
                        help="Load generator: wrk (C, Debian package 'wrk'; used when installed) or httpx (asyncio).")
    parser.add_argument("--seconds", type=int, default=20, help="Measured duration with wrk (default 20 s).")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"],
                        help="gunicorn worker model (default sync; gthread with --threads).")
    parser.add_argument("--threads", type=int, default=1, help="Threads per gunicorn worker (gthread).")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Alternate floor and endpoint in this many slices of seconds/rounds each (default 3).")
    parser.add_argument("--no-floor", action="store_true",
                        help="Skip the framework floor (#21): only the endpoint and the SQL floor.")
    parser.add_argument("--no-contract-floor", action="store_true",
                        help="Skip the contract floor (#21): the least a claim or redemption can do and keep the "
                             "contract (bench/floor.py).")


def _wrk(port: int, token: str, clients: int, seconds: int, bodies: list[tuple[str, dict[str, Any]]]
         ) -> dict[str, Any]:
    """N keep-alive connections from wrk (2 threads) for a fixed time; every request a distinct body."""

    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
        for path, body in bodies:
            handle.write(f"{path}\t{json.dumps(body, separators=(',', ':'))}\n")
    threads = 2
    env = {**os.environ, "BENCH_BODIES": handle.name, "BENCH_TOKEN": token, "BENCH_THREADS": str(threads)}
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s",
                          str(BASE_DIR / "bench" / "wrk.lua"), f"http://127.0.0.1:{port}"],
                         env=env, capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)
    result = json.loads(re.search(r"BENCH_JSON (\{.*\})", out).group(1))
    result["requests_per_s"] = round(result["requests"] / result["seconds"])
    result["generator"] = "wrk"
    return result


def _combined(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """Several measured slices as one: requests and seconds summed, percentiles the worst slice's (conservative)."""
    if len(slices) == 1:
        return slices[0]
    requests = sum(s["requests"] for s in slices)
    seconds = round(sum(s["seconds"] for s in slices), 2)
    result: dict[str, Any] = {
        "requests": requests, "seconds": seconds, "requests_per_s": round(requests / seconds),
        "p50_ms": max(s["p50_ms"] for s in slices), "p95_ms": max(s["p95_ms"] for s in slices),
        "p99_ms": max(s["p99_ms"] for s in slices),
        "mean_ms": round(sum(s["mean_ms"] * s["requests"] for s in slices) / requests, 2),
        "errors": sum(s["errors"] for s in slices), "generator": slices[0]["generator"],
        "slices_requests_per_s": [s["requests_per_s"] for s in slices]}
    return result


def _seed(n: int, *, issued: bool) -> dict[str, Any]:
    """A tenant, a member token, an open event and an inventory of n codes (issued to m-<i> when asked)."""

    actor = Actor.system("bench")
    now = timezone.now()
    tenant = tenant_create(name=f"bench {time.time_ns()}", currency="KRW", rounding_unit=10, actor=actor)
    token = api_client_create(tenant=tenant, name="bench", scope="member", actor=actor)[1]
    author = User.objects.create_user(f"a{time.time_ns()}", tenant=tenant, is_staff=True)
    approver = User.objects.create_user(f"b{time.time_ns()}", tenant=tenant, is_staff=True, is_superuser=True)
    policy = services.policy_save_draft(policy=CouponPolicy(
        tenant=tenant, name="bench 10%", kind="percentage", rate=10, cap=5000, validity_type="fixed",
        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30)), actor_user=author)
    services.policy_submit(policy=policy, actor_user=author)
    policy = services.policy_approve(policy=policy, actor_user=approver)
    event = event_create(tenant=tenant, name="bench", starts_at=now - timedelta(days=1),
                         ends_at=now + timedelta(days=30), status="OPEN", actor=actor)
    inventory = services.inventory_create(tenant=tenant, event=event, policy=policy, name="bench pool",
                                          total_quantity=n * 2, actor=actor)
    batch = services.batch_create(inventory=inventory, batch_code=f"BENCH-{time.time_ns()}", quantity=n, actor=actor)
    batch_generate(batch_id=batch.pk, actor=actor)
    codes: list[str] = []
    if issued:
        with connection.cursor() as cursor:
            cursor.execute(
                """UPDATE coupons_couponcode SET status = 'ISSUED', member_id = 'm-' || id, issued_at = now(),
                          valid_from = %s, valid_until = %s WHERE batch_id = %s""",
                [policy.valid_from, policy.valid_until, batch.pk])
            cursor.execute(
                """INSERT INTO coupons_couponissue (tenant_id, inventory_id, coupon_id, member_id, slot, via, channel,
                          device_id, issued_at)
                   SELECT tenant_id, inventory_id, id, member_id, 1, 'grant', '', '', now()
                     FROM coupons_couponcode WHERE batch_id = %s""", [batch.pk])
            cursor.execute("SELECT code, member_id FROM coupons_couponcode WHERE batch_id = %s ORDER BY id",
                           [batch.pk])
            codes = [f"{code}|{member}" for code, member in cursor.fetchall()]
    return {"token": token, "inventory": inventory.public_id, "inventory_id": inventory.pk, "codes": codes,
            "tenant_id": tenant.pk}


def request_bodies(kind: str, api: dict[str, Any], n: int) -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of n claims of the seeded inventory, or of a redemption of each seeded issued code."""
    if kind == "claim":
        return [("/api/v1/claims", {"member_id": f"m-{i}", "inventory": api["inventory"]}) for i in range(n)]
    order = {"order_id": "o", "items": [{"sku": "S1", "spu": "P1", "category": "C1", "shop": "s", "unit_price": 30000,
                                         "quantity": 1, "virtual": False}], "shipping_fee": 3000, "channel": "ios",
             "payment_method": "online"}
    bodies = []
    for i, pair in enumerate(api["codes"][:n]):
        code, member = pair.split("|")
        body = {"member_id": member, "order_id": f"o-{i}", "order": {**order, "order_id": f"o-{i}"}}
        bodies.append((f"/api/v1/coupons/{code}/redeem", body))  # one order id, in both places
    return bodies


def contract_floor_bodies(kind: str, pool: dict[str, Any], n: int) -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of n requests to the contract floor of a claim or a redemption (bench.floor) on a seeded pool."""
    if kind == "claim":
        return [(CLAIM_FLOOR_PATH, {"member_id": f"m-{i}", "inventory": pool["inventory"]}) for i in range(n)]
    bodies = []
    for i, pair in enumerate(pool["codes"][:n]):
        code, member = pair.split("|")
        bodies.append((REDEEM_FLOOR_PATH.replace("<str:code>", code), {"member_id": member, "order_id": f"o-{i}"}))
    return bodies


def _serve(database: str, port: int, workers: int, worker_class: str = "sync", threads: int = 1
           ) -> subprocess.Popen:
    """gunicorn on the product's application with the framework floor mounted (``bench.wsgi``): one server, one
    configuration, for the floor and the endpoint measured against it."""
    env = {**os.environ, "DATABASE_URL": database_url(database), "DJANGO_DEBUG": "false", "DJANGO_LOG_LEVEL": "WARNING",
           "REDIS_URL": settings.REDIS_URL,
           # One client from one address sends every request: the code-lookup rates (12,000/min by default) would
           # refuse a run faster than 200/s. They stay on, so every lookup still reserves and refunds its budgets.
           "COUPON_RATE_CODE_LOOKUP_CLIENT": "1000000/m", "COUPON_RATE_CODE_LOOKUP_IP": "1000000/m"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "bench.wsgi", "--bind", f"127.0.0.1:{port}",
                             "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
                             "--keep-alive", "30", "--log-level", "warning"], cwd=BASE_DIR, env=env)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("gunicorn did not come up within 60 s")


async def _load(port: int, token: str, clients: int, bodies: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    position = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        async def worker() -> None:
            nonlocal position
            while position < len(bodies):
                path, body = bodies[position]
                position += 1
                started = time.perf_counter()
                response = await client.post(path, json=body)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2)

    return {"requests": len(latencies), "seconds": round(elapsed, 2), "requests_per_s": round(len(latencies) / elapsed),
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 2), "statuses": statuses,
            "errors": sum(c for s, c in statuses.items() if s >= 400)}


def _floor(database: str, clients: int, jobs: list[Any], sql_for: Any) -> dict[str, Any]:
    """The same SQL from `clients` direct connections, autocommit per operation: what the database alone allows."""
    position = 0
    lock = threading.Lock()
    done = [0]

    def worker() -> None:
        nonlocal position
        with psycopg.connect(**_dsn(database)) as conn:
            while True:
                with lock:
                    if position >= len(jobs):
                        return
                    job = jobs[position]
                    position += 1
                with conn.transaction():
                    sql_for(conn, job)
                with lock:
                    done[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"operations": done[0], "seconds": round(elapsed, 2), "per_s": round(done[0] / elapsed)}


def _run(options: dict[str, Any], kind: str) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one log line per request would load the generator
    database = options["database"] or f"{connection.settings_dict['NAME']}_benchapi"
    with scratch_database(database, keep=options["keep"], layout=options.get("layout", "partitioned"),
                          partitions=options.get("partitions", partitioning.PARTITIONS)):
        return {"layout": options.get("layout", "partitioned"),
                "partitions": options.get("partitions", partitioning.PARTITIONS), **_measure(options, kind, database)}


def _measure(options: dict[str, Any], kind: str, database: str) -> dict[str, Any]:
    n, clients = options["requests"], options["clients"]
    server = None
    try:
        api = _seed(n + 200, issued=kind == "redeem")
        floor_pool = _seed(n, issued=kind == "redeem")
        with_contract = not options.get("no_floor") and not options.get("no_contract_floor")
        # Three times the endpoint's bodies: the contract floor answers faster than the endpoint, and a body it runs
        # out of is repeated and refused (an error, not a measurement).
        contract_pool = _seed(3 * n + 200, issued=kind == "redeem") if with_contract else None
        create_floor_table()
        connections.close_all()
        server = _serve(database, options["port"], options["workers"], options.get("worker_class", "sync"),
                        options.get("threads", 1))
        load_before = os.getloadavg()[0]
        bodies = request_bodies(kind, api, n + 200)
        asyncio.run(_load(options["port"], api["token"], clients, bodies[:200]))  # warm-up, not measured
        generator = options.get("generator", "auto")
        use_wrk = generator == "wrk" or (generator == "auto" and shutil.which("wrk"))

        rounds = max(1, options.get("rounds", 1))

        def measure(what: str, measured_bodies: list[tuple[str, dict[str, Any]]], seconds: int,
                    token: str = api["token"]) -> dict[str, Any]:
            if use_wrk:
                result = _wrk(options["port"], token, clients, seconds, measured_bodies)
            else:
                result = asyncio.run(_load(options["port"], token, clients, measured_bodies[:n]))
                result["generator"] = "httpx"
            if result["errors"] > result["requests"] // 10:  # a broken request body is not a fast endpoint
                raise RuntimeError(f"{result['errors']} of {result['requests']} {what} requests failed: not a "
                                   f"measurement (check the bodies against the API)")
            return result

        # The floor and the endpoint on the same server (same workers, same warm caches), in alternating slices of
        # seconds/rounds each, so that a change of the machine's load during the run falls on both alike.
        floor_bodies = [(FLOOR_PATH, {"member_id": f"m-{i}"}) for i in range(max(n, 20_000) + 200)]
        if not options.get("no_floor"):
            asyncio.run(_load(options["port"], api["token"], clients, floor_bodies[:200]))  # warm-up
        contract_bodies = contract_floor_bodies(kind, contract_pool, 3 * n + 200) if contract_pool else []
        contract_chunk = (len(contract_bodies) - 200) // rounds
        if contract_pool:
            asyncio.run(_load(options["port"], contract_pool["token"], clients, contract_bodies[:200]))  # warm-up
        slice_seconds = max(1, options.get("seconds", 20) // rounds)
        chunk = (len(bodies) - 200) // rounds
        floor_slices, contract_slices, slices = [], [], []
        for r in range(rounds):
            if not options.get("no_floor"):
                floor_slices.append(measure("framework floor", floor_bodies[200:], slice_seconds))
            if contract_pool:
                contract_slices.append(measure(
                    "contract floor", contract_bodies[200 + r * contract_chunk:200 + (r + 1) * contract_chunk],
                    slice_seconds, contract_pool["token"]))
            slices.append(measure(kind, bodies[200 + r * chunk:200 + (r + 1) * chunk], slice_seconds))
        framework_floor = _combined(floor_slices) if floor_slices else None
        contract_floor = _combined(contract_slices) if contract_slices else None
        measured = _combined(slices)
        load_after = os.getloadavg()[0]
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        server = None

        if kind == "claim":
            def sql(conn: psycopg.Connection, i: int) -> None:
                # Named by tenant like the product's claim (#23): without it a partitioned table is searched in
                # every partition, which is the bench's cost, not the product's.
                conn.execute(f"""UPDATE coupons_couponcode SET status = 'ISSUED', member_id = %(member)s,
                                        issued_at = now()
                                  WHERE tenant_id = %(tenant)s AND id = (
                                        SELECT id FROM coupons_couponcode WHERE {POOL_CONDITION} {POOL_ORDER} LIMIT 1
                                           FOR UPDATE SKIP LOCKED)
                                  RETURNING code""", {"member": f"f-{i}", "tenant": floor_pool["tenant_id"],
                                                      "inventory": floor_pool["inventory_id"]})
            floor = _floor(database, clients, list(range(n)), sql)
        else:
            def sql(conn: psycopg.Connection, pair: str) -> None:
                code, member = pair.split("|")
                row = conn.execute("""UPDATE coupons_couponcode SET status = 'USED', used_at = now()
                                       WHERE tenant_id = %s AND code = %s AND status = 'ISSUED'
                                       RETURNING id, tenant_id, inventory_id""",  # codes are unique per tenant (#23)
                                   [floor_pool["tenant_id"], code]).fetchone()
                conn.execute("""INSERT INTO coupons_couponusage (tenant_id, inventory_id, coupon_id, member_id,
                                       order_id, order_amount, discount, channel, payment_method, device_id, used_at)
                                VALUES (%s, %s, %s, %s, 'o', 33000, 3000, 'ios', 'online', '', now())""",
                             [row[1], row[2], row[0], member])
            floor = _floor(database, clients, floor_pool["codes"][:n], sql)
        result = {
            "benchmark": kind, "clients": clients, "gunicorn_workers": options["workers"],
            "worker_class": options.get("worker_class", "sync"), "threads": options.get("threads", 1),
            "load_before": round(load_before, 2), "load_after": round(load_after, 2),
            "http": measured, "framework_floor": framework_floor, "sql_floor": floor,
            "ratio_http_to_floor": round(measured["requests_per_s"] / floor["per_s"], 3),
            "bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "cpus": os.cpu_count(),
        }
        if framework_floor is not None:
            result["ratio_http_to_framework_floor"] = round(
                measured["requests_per_s"] / framework_floor["requests_per_s"], 3)
        if framework_floor is not None and contract_floor is not None:
            # The most any claim or redemption that keeps the contract could reach of the framework floor, and how
            # much of that the product's endpoint reaches.
            result["contract_floor"] = contract_floor
            result["ratio_contract_floor_to_framework_floor"] = round(
                contract_floor["requests_per_s"] / framework_floor["requests_per_s"], 3)
            result["ratio_http_to_contract_floor"] = round(
                measured["requests_per_s"] / contract_floor["requests_per_s"], 3)
        return result
    finally:
        if server is not None:
            server.kill()
        connections.close_all()


@register("claim", help="Claims over HTTP (gunicorn, N keep-alive clients) against the same SQL from N connections.",
          arguments=_arguments)
def bench_claim(options: dict[str, Any]) -> dict[str, Any]:
    return _run(options, "claim")


@register("redeem", help="Redemptions over HTTP against the same SQL (update + usage row) from N connections.",
          arguments=_arguments)
def bench_redeem(options: dict[str, Any]) -> dict[str, Any]:
    return _run(options, "redeem")
