"""``manage.py bench generate --n N [--batches 2]``: batch generation against a same-run COPY reference (R-NFR-1).

Design: docs/design/benchmarks.md#bench-generate.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench.db import database_url, layout_arguments, scratch_database
from bench.registry import register
from bench.seed import approvers, open_inventory
from core import partitioning
from core.audit import Actor
from core.fields import CODE_ALPHABET
from core.services import tenant_create
from coupons import services
from coupons.bloom import bloom_drop
from coupons.services.generation import CodeFormat, _Drawer, _sort_keys
from coupons.models import CouponBatch, CouponBatchChunk

BASE_DIR = Path(__file__).resolve().parent.parent
COPY_ROWS = 1_000_000


def _arguments(parser: Any) -> None:
    parser.add_argument("--n", type=int, default=1_000_000, help="Codes per batch (default 1,000,000).")
    parser.add_argument("--batches", type=int, default=1, help="Batches of N generated one after the other into "
                        "the same tenant (2 = the 'second 10M batch' case).")
    parser.add_argument("--no-schema-reference", action="store_true",
                        help="Skip the COPY into a copy of coupons_couponcode (saves a few minutes at 10M).")
    parser.add_argument("--database", default="", help="Scratch database name (default: <current>_bench).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    layout_arguments(parser)
    parser.add_argument("--proposed-schema", action="store_true",
                        help="Experiment: first apply the coupons_couponcode changes proposed in bench/RESULTS.md "
                             "(no batch FK trigger, no duplicate indexes) to the scratch database.")



def _random_sorted_codes(n: int) -> np.ndarray:
    drawer = _Drawer(CodeFormat(prefix="", length=8, alphabet=CODE_ALPHABET))
    codes = drawer.draw(n, None)
    keys = np.sort(_sort_keys(codes))
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys.astype(">u8").view("S8")


def _copy(table: str, columns: str, codes: np.ndarray, head: bytes, tail: bytes) -> float:
    """COPY sorted codes as fixed-width text rows in one transaction (rows built a million at a time); seconds."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    head_a, tail_a = np.frombuffer(head, np.uint8), np.frombuffer(tail, np.uint8)
    width = codes.dtype.itemsize
    started = time.monotonic()
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} {columns} FROM STDIN") as copy:
        for start in range(0, len(codes), COPY_ROWS):
            part = codes[start:start + COPY_ROWS]
            rows = np.empty((len(part), len(head_a) + width + len(tail_a)), np.uint8)
            rows[:, :len(head_a)] = head_a
            rows[:, len(head_a):len(head_a) + width] = part.view(np.uint8).reshape(len(part), width)
            rows[:, len(head_a) + width:] = tail_a
            copy.write(memoryview(rows.reshape(-1)))
    return time.monotonic() - started


def _references(n: int, with_schema: bool, batch: Any) -> dict[str, Any]:
    codes = _random_sorted_codes(n)
    result: dict[str, Any] = {"codes": len(codes)}
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_reference (id bigserial PRIMARY KEY, code varchar(48) NOT NULL UNIQUE)")
    seconds = _copy("bench_reference", "(code)", codes, b"", b"\n")
    result.update(plain_copy_seconds=round(seconds, 2), plain_rows_per_s=round(len(codes) / seconds))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_reference")
    if with_schema:
        with connection.cursor() as cursor:
            # A plain table with the code table's columns, indexes and checks (no foreign keys, like the real one:
            # migration coupons 0004), whichever layout the real table has.
            cursor.execute("CREATE TABLE bench_reference_schema (LIKE coupons_couponcode INCLUDING ALL)")
        head = f"{batch.tenant_id}\t{batch.inventory_id}\t{batch.pk}\t".encode()
        seconds = _copy("bench_reference_schema", "(tenant_id, inventory_id, batch_id, code, status)", codes, head,
                        b"\tAVAILABLE\n")
        result.update(same_schema_copy_seconds=round(seconds, 2), same_schema_rows_per_s=round(len(codes) / seconds))
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_reference_schema")
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    return result


def _references_proposed(n: int, batch: Any) -> dict[str, Any]:
    """The same-schema reference for the proposed schema: the table as it is now, without a batch foreign key."""
    codes = _random_sorted_codes(n)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_reference_schema (LIKE coupons_couponcode INCLUDING ALL)")
    head = f"{batch.tenant_id}\t{batch.inventory_id}\t{batch.pk}\t".encode()
    seconds = _copy("bench_reference_schema", "(tenant_id, inventory_id, batch_id, code, status)", codes, head,
                    b"\tAVAILABLE\n")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_reference_schema")
        cursor.execute("CHECKPOINT")
    return {"same_schema_copy_seconds": round(seconds, 2), "same_schema_rows_per_s": round(len(codes) / seconds)}


def _setup_batches(n: int, count: int) -> list[Any]:
    actor = Actor.system("bench")
    tenant = tenant_create(name="Bench tenant", slug="bench", actor=actor)
    inventory = open_inventory(tenant, users=approvers(), total_quantity=n * count, label="Bench", actor=actor)
    return [services.batch_create(inventory=inventory, batch_code=f"BENCH-{i + 1}", quantity=n, actor=actor)
            for i in range(count)]


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _proposed_schema() -> list[str]:
    """The coupons_couponcode changes suggested in bench/RESULTS.md, applied to the scratch database only."""
    with connection.cursor() as cursor:
        cursor.execute("""SELECT conname FROM pg_constraint WHERE conrelid = 'coupons_couponcode'::regclass
                          AND contype = 'f' AND confrelid = 'coupons_couponbatch'::regclass""")
        fks = [r[0] for r in cursor.fetchall()]
        cursor.execute("""SELECT indexname FROM pg_indexes WHERE tablename = 'coupons_couponcode'
                          AND (indexdef LIKE '%%varchar_pattern_ops%%' OR indexdef LIKE '%%(batch_id)')""")
        indexes = [r[0] for r in cursor.fetchall()]
        statements = [f'ALTER TABLE coupons_couponcode DROP CONSTRAINT "{name}"' for name in fks]
        statements += [f'DROP INDEX "{name}"' for name in indexes]
        statements += ["DROP INDEX code_expiry",
                       "CREATE INDEX code_expiry ON coupons_couponcode (valid_until) WHERE valid_until IS NOT NULL "
                       "AND status IN ('AVAILABLE', 'MAPPED', 'ISSUED')"]
        for statement in statements:
            cursor.execute(statement)
    return statements


def _generate(batch: Any, database: str) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": database_url(database), "DJANGO_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "manage.py", "generate_codes", batch.batch_code, "--tenant", "bench", "--sync",
               "--no-progress"]
    with tempfile.TemporaryFile() as output:
        started = time.monotonic()
        child = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
        peak_kb = 0
        # The child's high-water RSS, sampled from /proc: getrusage/wait4 would report this (large) process's RSS,
        # because Linux carries the pre-exec memory of a forked child into its ru_maxrss.
        while child.poll() is None:
            peak_kb = max(peak_kb, _vm_hwm_kb(child.pid))
            time.sleep(0.1)
        wall = time.monotonic() - started
        output.seek(0)
        log = output.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"generate_codes failed ({child.returncode}): {log[-2000:]}")
    batch = CouponBatch.objects.get(pk=batch.pk)
    seconds = (batch.finished_at - batch.started_at).total_seconds()
    chunks = CouponBatchChunk.objects.filter(batch=batch)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT code) FROM coupons_couponcode WHERE batch_id = %s",
                       [batch.pk])
        count, distinct = cursor.fetchone()
    return {
        "batch": batch.batch_code,
        "status": batch.status,
        "seconds": round(seconds, 2),
        "rows_per_s": round(batch.quantity / seconds),
        "command_seconds": round(wall, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "chunks": chunks.count(),
        "duplicates_rejected": sum(chunks.values_list("candidates_rejected", flat=True)),
        "chunks_retried": chunks.filter(attempts__gt=1).count(),
        "count": count,
        "distinct": distinct,
    }


@register("generate", help="Generate N codes per batch in a scratch database and compare with a plain COPY.",
          arguments=_arguments)
def bench_generate(options: dict[str, Any]) -> dict[str, Any]:
    n, count = options["n"], options["batches"]
    database = options["database"] or f"{connection.settings_dict['NAME']}_bench"
    load_before = os.getloadavg()
    with scratch_database(database, keep=options["keep"], layout=options.get("layout", "partitioned"),
                          partitions=options.get("partitions", partitioning.PARTITIONS)):
        batches = _setup_batches(n, count)
        schema_changes = _proposed_schema() if options["proposed_schema"] else []
        reference = _references(n, not options["no_schema_reference"] and not schema_changes, batches[0])
        if schema_changes and not options["no_schema_reference"]:
            reference.update(_references_proposed(n, batches[0]))
        results = [_generate(batch, database) for batch in batches]
        for result in results:
            result["ratio_to_reference"] = round(result["seconds"] / reference["plain_copy_seconds"], 2)
            if "same_schema_copy_seconds" in reference:
                result["ratio_to_same_schema"] = round(result["seconds"] / reference["same_schema_copy_seconds"], 2)
        bloom_drop()
    return {
        "benchmark": "generate",
        "layout": options.get("layout", "partitioned"),
        "n": n,
        "date": timezone.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"chunk_size": settings.GENERATION_CHUNK_SIZE, "writers": settings.GENERATION_WRITERS,
                     "bloom_capacity": settings.BLOOM_CAPACITY, "bloom_error_rate": settings.BLOOM_ERROR_RATE,
                     "bloom_backend": settings.BLOOM_BACKEND},
        "reference": reference,
        "schema_changes": schema_changes,
        "batches": results,
        "bench_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
