"""``manage.py bench scale --tenants 100 --codes 100000000 --skew 0.4``: many tenants' codes, partitioned against
unpartitioned, in one run (issue #23).

Design: docs/design/benchmarks.md#bench-scale.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from bench.api import _dsn
from bench.db import apply_layout, layout_arguments, scratch_database
from bench.registry import register
from bench.seed import approvers, open_inventory
from core import partitioning
from core.audit import Actor
from core.services import tenant_create
from coupons import services
from coupons.bloom import bloom_drop
from coupons.models import CouponBatch, CouponInventory
from coupons.services.counters import shard_of
from coupons.services.generation import batch_generate
from coupons.services.issue import _MEMBER_STATE, _TAKE_NEXT, RequestContext, _issue_params
from coupons.services.lifecycle import CHUNK as EXPIRY_CHUNK
from coupons.services.lifecycle import coupons_expire

LAYOUTS = ("partitioned", "flat")
CODES_TABLE = "coupons_couponcode"


def _arguments(parser: Any) -> None:
    parser.add_argument("--tenants", type=int, default=100, help="Tenants (default 100).")
    parser.add_argument("--codes", type=int, default=100_000_000, help="Codes in total over all tenants (default 100M).")
    parser.add_argument("--skew", type=float, default=0.4,
                        help="Share of the codes held by the one big tenant; the others share the rest (default 0.4).")
    parser.add_argument("--layouts", default=",".join(LAYOUTS),
                        help="Comma-separated, measured in this order: partitioned (what migrate makes), flat "
                             "(core.partitioning.unpartition after migrate). Default: partitioned,flat.")
    layout_arguments(parser, layout=False)
    parser.add_argument("--batch-max", type=int, default=10_000_000,
                        help="A tenant's codes come in batches of at most this many (default 10M).")
    parser.add_argument("--claim-seconds", type=float, default=5.0, help="Seconds of claims per tenant measured.")
    parser.add_argument("--claim-clients", type=int, default=8, help="Connections claiming at once (default 8).")
    parser.add_argument("--prepare-threshold", type=int, default=-1,
                        help="psycopg prepare_threshold of the claiming connections: -1 (default) the product's "
                             "(DJANGO_DB_PREPARE_THRESHOLD), 0 never prepare (a custom plan every time).")
    parser.add_argument("--new-batch", type=int, default=1_000_000,
                        help="Codes of the new batch generated into the big and into a small tenant (default 1M).")
    parser.add_argument("--expire-codes", type=int, default=4 * EXPIRY_CHUNK,
                        help=f"Issued codes made due for the expiry job (default {4 * EXPIRY_CHUNK:,}, "
                             f"{EXPIRY_CHUNK:,} a chunk).")
    parser.add_argument("--bloom-capacity", type=int, default=1000,
                        help="COUPON_BLOOM_CAPACITY for the run: a tenant's filter is sized for max(this, 2 × its "
                             "planned codes). Default 1000, i.e. 2 × the tenant's codes: the product's 20M default "
                             "would put 100 × 69 MiB into Redis.")
    parser.add_argument("--database", default="",
                        help="Prefix of the scratch databases (default <current>_scale → <current>_scale_<layout>).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch databases afterwards.")


def _log(message: str) -> None:
    print(f"[bench scale {time.strftime('%H:%M:%S', time.gmtime())}] {message}", file=sys.stderr, flush=True)


def tenant_shares(total: int, tenants: int, skew: float) -> list[int]:
    """Codes per tenant: the first holds ``skew`` of them, the others an even share of the rest (the first of them
    one more each until the remainder is used up)."""
    if tenants < 2:
        return [total]
    big = round(total * skew)
    rest, count = total - big, tenants - 1
    return [big] + [rest // count + (1 if i < rest % count else 0) for i in range(count)]


@contextmanager
def _bloom_capacity(capacity: int) -> Iterator[None]:
    saved = settings.BLOOM_CAPACITY
    settings.BLOOM_CAPACITY = capacity
    try:
        yield
    finally:
        settings.BLOOM_CAPACITY = saved


# --- setup: tenants, each with an approved policy, an open event, an inventory and its batches ----------------------


def _setup(shares: list[int], new_batch: int, batch_max: int) -> list[dict[str, Any]]:
    actor = Actor.system("bench")
    users = approvers()
    tenants = []
    for i, codes in enumerate(shares):
        tenant = tenant_create(name=f"Scale tenant {i}", slug=f"scale-{i}", actor=actor)
        # Room for the new batch measured later (only the first two tenants get one, but all are alike).
        inventory = open_inventory(tenant, users=users, total_quantity=codes + new_batch, label="Scale", actor=actor)
        batches = []
        for b, start in enumerate(range(0, codes, batch_max)):
            batches.append(services.batch_create(inventory=inventory, batch_code=f"SCALE-{b + 1}",
                                                 quantity=min(batch_max, codes - start), actor=actor).pk)
        tenants.append({"tenant_id": tenant.pk, "inventory_id": inventory.pk, "codes": codes, "batches": batches})
    return tenants


def _generate_all(tenants: list[dict[str, Any]], layout: str) -> dict[str, Any]:
    actor = Actor.system("bench scale")
    started = time.monotonic()
    per_tenant = []
    for n, tenant in enumerate(tenants):
        t0 = time.monotonic()
        for batch_id in tenant["batches"]:
            batch = batch_generate(batch_id=batch_id, actor=actor)
            if batch.status != CouponBatch.Status.COMPLETED:
                raise RuntimeError(f"batch {batch.batch_code} of tenant {tenant['tenant_id']}: {batch.status}")
        seconds = time.monotonic() - t0
        per_tenant.append(seconds)
        done = sum(t["codes"] for t in tenants[:n + 1])
        if n == 0 or (n + 1) % 10 == 0 or n + 1 == len(tenants):
            _log(f"{layout}: tenant {n + 1}/{len(tenants)} ({tenant['codes']:,} codes in {seconds:.1f} s); "
                 f"{done:,} codes in {time.monotonic() - started:.0f} s")
    total = time.monotonic() - started
    codes = sum(t["codes"] for t in tenants)
    small = per_tenant[1:]
    return {"seconds": round(total, 1), "codes": codes, "rows_per_s": round(codes / total),
            "big_tenant_seconds": round(per_tenant[0], 1),
            "big_tenant_rows_per_s": round(tenants[0]["codes"] / per_tenant[0]),
            "small_tenants_seconds": round(sum(small), 1),
            "small_tenants_rows_per_s": round(sum(t["codes"] for t in tenants[1:]) / sum(small)) if small else None}


# --- measurements ------------------------------------------------------------------------------------------------


# A plain table (or index) is its own only leaf; pg_partition_tree returns nothing for it.
_LEAVES = """(SELECT relid FROM pg_partition_tree(%(rel)s::regclass) WHERE isleaf
              UNION ALL SELECT %(rel)s::regclass WHERE NOT EXISTS (SELECT FROM pg_partition_tree(%(rel)s::regclass)))"""


def _sizes() -> dict[str, Any]:
    """Heap (with TOAST), indexes and total of each table core.partitioning handles, summed over its partitions; each
    index on its own, summed over its partitions' indexes."""
    result: dict[str, Any] = {}
    with connection.cursor() as cursor:
        for table in partitioning.PARTITIONED_TABLES:
            cursor.execute(f"""SELECT coalesce(sum(pg_table_size(relid)), 0), coalesce(sum(pg_indexes_size(relid)), 0),
                                      count(*) FROM {_LEAVES} leaves""", {"rel": table})
            heap, indexes, leaves = cursor.fetchone()
            cursor.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1",
                           [table])
            each = {}
            for (index,) in cursor.fetchall():
                cursor.execute(f"SELECT coalesce(sum(pg_relation_size(relid)), 0) FROM {_LEAVES} leaves",
                               {"rel": index})
                each[index] = int(cursor.fetchone()[0])
            result[table] = {"heap_bytes": int(heap), "indexes_bytes": int(indexes), "total_bytes": int(heap + indexes),
                             "partitions": int(leaves) if partitioning.is_partitioned(connection, table) else 0,
                             "indexes": each}
        cursor.execute("SELECT pg_database_size(current_database())")
        result["database_bytes"] = int(cursor.fetchone()[0])
    return result


def _claims(database: str, tenant: dict[str, Any], seconds: float, clients: int, label: str,
            prepare: int = -1) -> dict[str, Any]:
    """The product's claim statements — the member's slot count and risk level, then the take-next-code CTE
    (coupons.services.issue) — one transaction per claim, from ``clients`` connections for ``seconds``: the SQL
    floor of a claim of this tenant (no HTTP, no Redis member lock)."""
    inventory = CouponInventory.objects.select_related("policy").get(pk=tenant["inventory_id"])
    base = _issue_params(inventory=inventory, member_id="", slot=1, via="inventory", ctx=RequestContext(),
                         now=timezone.now(), valid_from=inventory.policy.valid_from,
                         valid_until=inventory.policy.valid_until)
    threshold = settings.DATABASES["default"].get("OPTIONS", {}).get("prepare_threshold") if prepare < 0 else (
        prepare or None)
    lock = threading.Lock()
    codes: list[str] = []
    latencies: list[float] = []
    errors: list[str] = []
    deadline = [0.0]

    def go() -> None:  # once every connection is open: the measured seconds start now
        deadline[0] = time.monotonic() + seconds

    start = threading.Barrier(clients + 1, action=go)

    # As the product sends them: the tenant written in (core.partitioning.for_tenant).
    member_state = partitioning.for_tenant(_MEMBER_STATE, base["tenant"])
    take_next = partitioning.for_tenant(_TAKE_NEXT, base["tenant"])

    def worker(w: int) -> None:
        mine: list[str] = []
        took: list[float] = []
        try:
            with psycopg.connect(**_dsn(database), autocommit=True, prepare_threshold=threshold) as conn:
                start.wait()
                i = 0
                while time.monotonic() < deadline[0]:
                    member = f"{label}-{w}-{i}"
                    i += 1
                    params = {**base, "member": member, "shard": shard_of(member), "now": timezone.now()}
                    t0 = time.perf_counter()
                    with conn.transaction():
                        conn.execute(member_state, params)
                        row = conn.execute(take_next, params).fetchone()
                    took.append(time.perf_counter() - t0)
                    if row is None:
                        raise RuntimeError("sold out")
                    mine.append(row[1])
        except Exception as exc:  # noqa: BLE001 - reported in the result, the other workers go on
            errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            codes.extend(mine)
            latencies.extend(took)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = deadline[0] - seconds
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2) if latencies else None

    return {"claims": len(codes), "seconds": round(elapsed, 2), "per_s": round(len(codes) / elapsed),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "clients": clients, "distinct_codes": len(set(codes)),
            "errors": errors[:3], "tenant_codes": tenant["codes"], "prepare_threshold": threshold}


def _new_batch(tenant: dict[str, Any], quantity: int) -> dict[str, Any]:
    actor = Actor.system("bench scale")
    inventory = CouponInventory.objects.get(pk=tenant["inventory_id"])
    batch = services.batch_create(inventory=inventory, batch_code="SCALE-NEW", quantity=quantity, actor=actor)
    started = time.monotonic()
    batch = batch_generate(batch_id=batch.pk, actor=actor)
    wall = time.monotonic() - started
    seconds = (batch.finished_at - batch.started_at).total_seconds() if batch.finished_at and batch.started_at \
        else wall
    return {"codes": quantity, "tenant_codes_before": tenant["codes"], "seconds": round(seconds, 2),
            "rows_per_s": round(quantity / seconds), "wall_seconds": round(wall, 2), "status": batch.status}


def _expiry(tenants: list[dict[str, Any]], due: int) -> dict[str, Any]:
    """The expiry job (coupons.services.lifecycle.coupons_expire) over ``due`` issued codes past their validity, half
    of them the big tenant's and half one small tenant's (a campaign ends in one tenant at a time); every chunk timed
    through the progress callback."""
    now = timezone.now()
    targets = [(tenants[0], due // 2), (tenants[1] if len(tenants) > 1 else tenants[0], due - due // 2)]
    marked = 0
    with connection.cursor() as cursor:
        for tenant, n in targets:
            cursor.execute(
                """UPDATE coupons_couponcode SET status = 'ISSUED', member_id = 'exp-' || id, issued_at = %s,
                          valid_from = %s, valid_until = %s
                    WHERE tenant_id = %s AND id IN (SELECT id FROM coupons_couponcode WHERE tenant_id = %s
                                                     AND inventory_id = %s AND status = 'AVAILABLE'
                                                     ORDER BY id DESC LIMIT %s)""",
                [now - timedelta(days=2), now - timedelta(days=2), now - timedelta(minutes=1), tenant["tenant_id"],
                 tenant["tenant_id"], tenant["inventory_id"], n])
            marked += cursor.rowcount
        cursor.execute("ANALYZE coupons_couponcode")
    stamps: list[float] = []
    started = time.monotonic()
    expired = coupons_expire(now=now, progress=lambda n: stamps.append(time.monotonic()))
    total = time.monotonic() - started
    chunk_seconds = [b - a for a, b in zip([started, *stamps], stamps, strict=False)]
    return {"due": marked, "expired": expired, "chunk": EXPIRY_CHUNK, "chunks": len(stamps),
            "chunk_seconds_mean": round(sum(chunk_seconds) / len(chunk_seconds), 3) if chunk_seconds else None,
            "chunk_seconds_max": round(max(chunk_seconds), 3) if chunk_seconds else None,
            "run_seconds": round(total, 2),
            # After the last chunk of issued codes: the end of that pass and the whole pass over never-issued codes
            # whose policy ended (none here) — what every run pays even with nothing to expire.
            "after_last_chunk_seconds": round(total - (stamps[-1] - started), 2) if stamps else round(total, 2)}


def _timed(sql: str) -> float:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(sql)
    return round(time.monotonic() - started, 2)


def _measure_layout(options: dict[str, Any], layout: str, database: str, shares: list[int],
                    step: Callable[[str], None]) -> dict[str, Any]:
    result: dict[str, Any] = {"database": database, "load_before": [round(x, 2) for x in os.getloadavg()]}
    started = time.monotonic()
    result["partitioned_tables"] = apply_layout(layout, partitions=options.get("partitions", partitioning.PARTITIONS))
    tenants = _setup(shares, options["new_batch"], options["batch_max"])
    step(f"{layout}: {len(tenants)} tenants set up; generating {sum(shares):,} codes")
    result["generation"] = _generate_all(tenants, layout)
    step(f"{layout}: generated {result['generation']}; VACUUM ANALYZE after the load")
    result["vacuum_analyze_after_load_seconds"] = _timed(f"VACUUM ANALYZE {CODES_TABLE}")
    result["sizes"] = _sizes()
    codes = sum(shares)
    code_table = result["sizes"][CODES_TABLE]
    result["bytes_per_code"] = {"heap": round(code_table["heap_bytes"] / codes, 1),
                                "indexes": round(code_table["indexes_bytes"] / codes, 1),
                                "total": round(code_table["total_bytes"] / codes, 1)}
    step(f"{layout}: sizes {result['bytes_per_code']} bytes/code; claims")
    clients, seconds = options["claim_clients"], options["claim_seconds"]
    result["claims"] = {"big_tenant": _claims(database, tenants[0], seconds, clients, f"{layout}-big",
                                             options["prepare_threshold"])}
    if len(tenants) > 1:
        result["claims"]["small_tenant"] = _claims(database, tenants[-1], seconds, clients, f"{layout}-small",
                                                    options["prepare_threshold"])
    step(f"{layout}: claims {[c['per_s'] for c in result['claims'].values()]}/s; new batches")
    if options["new_batch"] > 0:
        result["new_batch"] = {"big_tenant": _new_batch(tenants[0], options["new_batch"])}
        if len(tenants) > 1:
            result["new_batch"]["small_tenant"] = _new_batch(tenants[1], options["new_batch"])
        step(f"{layout}: new batches {[b['rows_per_s'] for b in result['new_batch'].values()]}/s; expiry")
    result["expiry"] = _expiry(tenants, options["expire_codes"])
    step(f"{layout}: expiry {result['expiry']}; VACUUM")
    # INDEX_CLEANUP ON: the index pass a larger wave of dead rows triggers anyway (VACUUM skips it below ~2 % of the
    # pages); partitioned, only the partitions holding dead rows scan their indexes.
    result["vacuum_seconds"] = _timed(f"VACUUM (INDEX_CLEANUP ON) {CODES_TABLE}")
    result["vacuum_analyze_seconds"] = _timed(f"VACUUM ANALYZE {CODES_TABLE}")
    result["seconds"] = round(time.monotonic() - started, 1)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    bloom_drop()  # the filters of this database (keyed by its name) go with it
    return result


@register("scale", help="Many tenants' codes through the product's generation, partitioned against unpartitioned: "
                        "sizes, claim SQL floor, new batch, expiry chunk and VACUUM (issue #23).",
          arguments=_arguments)
def bench_scale(options: dict[str, Any]) -> dict[str, Any]:
    layouts = [name.strip() for name in options["layouts"].split(",") if name.strip()]
    unknown = set(layouts) - set(LAYOUTS)
    if unknown or not layouts:
        raise ValueError(f"unknown layouts {sorted(unknown)}; known: {', '.join(LAYOUTS)}")
    shares = tenant_shares(options["codes"], options["tenants"], options["skew"])
    prefix = options["database"] or f"{connection.settings_dict['NAME']}_scale"
    load_before = os.getloadavg()
    started = time.monotonic()
    results: dict[str, Any] = {}
    with _bloom_capacity(options["bloom_capacity"]):
        for layout in layouts:
            database = f"{prefix}_{layout}"
            # One layout at a time: each scratch database is dropped before the next is filled (disk).
            with scratch_database(database, keep=options["keep"]):
                results[layout] = _measure_layout(options, layout, database, shares, _log)
            connections.close_all()
    return {
        "benchmark": "scale",
        "date": timezone.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
        "tenants": options["tenants"], "codes": sum(shares), "skew": options["skew"],
        "big_tenant_codes": shares[0], "small_tenant_codes": shares[-1] if len(shares) > 1 else None,
        "settings": {"chunk_size": settings.GENERATION_CHUNK_SIZE, "writers": settings.GENERATION_WRITERS,
                     "bloom_capacity": options["bloom_capacity"], "bloom_error_rate": settings.BLOOM_ERROR_RATE,
                     "batch_max": options["batch_max"], "claim_clients": options["claim_clients"],
                     "claim_seconds": options["claim_seconds"], "expiry_chunk": EXPIRY_CHUNK},
        "seconds": round(time.monotonic() - started, 1),
        "layouts": results,
    }
