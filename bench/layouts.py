"""``manage.py bench layouts --kind claim|redeem``: the member API on the flat and on the partitioned layout, side by
side in one run (issue #23: partitioning must leave claims and redemptions "not worse than before in the same run").

Two scratch databases are migrated alike and one is turned back into plain tables (``core.partitioning.unpartition``);
each is seeded the same way and served by its own gunicorn. wrk then alternates short slices between the two servers
in ABBA order (flat, partitioned, partitioned, flat, …). On a shared VM the machine's speed moves by ±20 % from one
minute to the next (the framework floor of ``bench claim`` does); separate runs per layout measure that drift, not
the layout. Within a pair the two slices are seconds apart, so the pair's ratio partitioned/flat carries little of
it, and the median over many pairs carries less.

Design: docs/design/benchmarks.md#bench-layouts.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import statistics
import subprocess
from contextlib import ExitStack
from typing import Any

import psutil
from django.db import connection, connections

from bench.api import _combined, _load, _seed, _serve, _wrk, request_bodies
from bench.db import autovacuum, layout_arguments, layout_tables, scratch_database
from bench.registry import register

LAYOUTS = ("flat", "partitioned")


def _arguments(parser: Any) -> None:
    parser.add_argument("--kind", choices=["claim", "redeem"], default="claim")
    parser.add_argument("--requests", type=int, default=15_000,
                        help="Codes seeded per layout; each slice gets its own share of them (default 15,000).")
    parser.add_argument("--pairs", type=int, default=8, help="Pairs of slices, ABBA order (default 8).")
    parser.add_argument("--slice-seconds", type=int, default=3, help="Seconds per slice (default 3).")
    parser.add_argument("--clients", type=int, default=32, help="wrk keep-alive connections (default 32).")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers per layout (default 4).")
    layout_arguments(parser, layout=False)
    parser.add_argument("--port", type=int, default=8801, help="First of two ports (default 8801, 8802).")
    parser.add_argument("--database", default="",
                        help="Prefix of the scratch databases (default <current>_layouts → …_flat, …_partitioned).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch databases afterwards.")


def slice_order(pairs: int) -> list[tuple[int, str]]:
    """(pair, layout) in ABBA order: each layout goes first in half of the pairs."""
    order = []
    for pair in range(pairs):
        first, second = LAYOUTS if pair % 2 == 0 else LAYOUTS[::-1]
        order += [(pair, first), (pair, second)]
    return order


def median_interval(ratios: list[float], *, resamples: int = 10_000, seed: int = 23) -> tuple[float, float]:
    """A 95 % bootstrap interval of the median of the pairs' ratios (fixed seed: the same pairs give the same
    interval)."""
    if not ratios:
        return (0.0, 0.0)
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples))
    return (round(medians[int(resamples * 0.025)], 3), round(medians[int(resamples * 0.975) - 1], 3))


def pair_ratios(slices: list[tuple[int, str, int]]) -> list[float]:
    """partitioned / flat answered requests per second of each pair, from (pair, layout, rate)."""
    by_pair: dict[int, dict[str, int]] = {}
    for pair, layout, rate in slices:
        by_pair.setdefault(pair, {})[layout] = rate
    return [round(rates["partitioned"] / rates["flat"], 3) for _pair, rates in sorted(by_pair.items())
            if rates.get("flat") and "partitioned" in rates]


def _processes(server: subprocess.Popen, database: str) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """A layout's processes: its gunicorn workers, and the PostgreSQL backends serving its database (their process
    title names it)."""
    workers = psutil.Process(server.pid).children(recursive=True)
    backends = [p for p in psutil.process_iter(["name", "cmdline"])
                if p.info["name"] == "postgres" and any(database in part.split() for part in p.info["cmdline"] or [])]
    return workers, backends


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    seconds: dict[int, float] = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:  # a backend that ended (CONN_MAX_AGE) since it was listed
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def cpu_per_request(before: dict[int, float], after: dict[int, float], workers: set[int], answered: int
                    ) -> tuple[float, float]:
    """CPU milliseconds per answered request of the gunicorn workers and of the PostgreSQL backends, from two
    readings of the same processes (a process missing from either reading is left out)."""
    app = sum(after[pid] - before[pid] for pid in after if pid in before and pid in workers)
    database = sum(after[pid] - before[pid] for pid in after if pid in before and pid not in workers)
    return app * 1000 / max(answered, 1), database * 1000 / max(answered, 1)


@register("layouts", help="Claims or redemptions on the flat and the partitioned layout, alternating slices in one "
                          "run (#23).", arguments=_arguments)
def bench_layouts(options: dict[str, Any]) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kind, n, pairs = options["kind"], options["requests"], options["pairs"]
    prefix = options["database"] or f"{connection.settings_dict['NAME']}_layouts"
    tables = layout_tables(options)
    servers: dict[str, subprocess.Popen] = {}
    seeded: dict[str, dict[str, Any]] = {}
    ports = {layout: options["port"] + i for i, layout in enumerate(LAYOUTS)}
    databases = [f"{prefix}_{layout}" for layout in LAYOUTS]
    with ExitStack() as stack:
        try:
            for layout in LAYOUTS:
                database = f"{prefix}_{layout}"
                stack.enter_context(scratch_database(database, keep=options["keep"], layout=layout,
                                                     partitions=options["partitions"], tables=tables))
                seeded[layout] = _seed(n + 200, issued=kind == "redeem")
                with connection.cursor() as cursor:  # autovacuum may be off (CI's server): statistics as after a load
                    cursor.execute("VACUUM ANALYZE")
                connections.close_all()
                servers[layout] = _serve(database, ports[layout], options["workers"])
            bodies = {layout: request_bodies(kind, seeded[layout], n + 200) for layout in LAYOUTS}
            for layout in LAYOUTS:  # warm-up: workers' caches, prepared statements
                asyncio.run(_load(ports[layout], seeded[layout]["token"], options["clients"], bodies[layout][:200]))
            load_before = os.getloadavg()[0]
            chunk = n // pairs
            measured: dict[str, list[dict[str, Any]]] = {layout: [] for layout in LAYOUTS}
            rates: list[tuple[int, str, int]] = []
            cpu_ms: dict[str, list[tuple[float, float]]] = {layout: [] for layout in LAYOUTS}
            for position, (pair, layout) in enumerate(slice_order(pairs)):
                if position % 2 == 0:  # before each pair, untimed: what autovacuum does between waves
                    for database in databases:
                        autovacuum(database)
                share = bodies[layout][200 + pair * chunk:200 + (pair + 1) * chunk]
                workers, backends = _processes(servers[layout], f"{prefix}_{layout}")
                processes = workers + backends
                cpu_before = _cpu(processes)
                result = _wrk(ports[layout], seeded[layout]["token"], options["clients"], options["slice_seconds"],
                              share)
                if result["errors"] > result["requests"] // 10:
                    raise RuntimeError(f"{result['errors']} of {result['requests']} {kind} requests failed on the "
                                       f"{layout} layout: not a measurement")
                measured[layout].append(result)
                cpu_ms[layout].append(cpu_per_request(cpu_before, _cpu(processes), {p.pid for p in workers},
                                                      result["requests"] - result["errors"]))
                # Answered requests only: a slice that ran out of its codes gets fast refusals, not faster claims.
                rates.append((pair, layout, round((result["requests"] - result["errors"]) / result["seconds"])))
            load_after = os.getloadavg()[0]
        finally:
            for server in servers.values():
                server.send_signal(signal.SIGTERM)
            for server in servers.values():
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
            connections.close_all()
    ratios = pair_ratios(rates)
    return {"benchmark": "layouts", "kind": kind, "partitions": options["partitions"],
            "partitioned_tables": options["tables"], "pairs": pairs,
            "slice_seconds": options["slice_seconds"], "clients": options["clients"],
            "gunicorn_workers_per_layout": options["workers"], "cpus": os.cpu_count(),
            "load_before": round(load_before, 2), "load_after": round(load_after, 2),
            "flat": _combined(measured["flat"]), "partitioned": _combined(measured["partitioned"]),
            "cpu_ms_per_request_median": {
                layout: {"gunicorn": round(statistics.median(a for a, _ in cpu_ms[layout]), 3),
                         "postgres": round(statistics.median(d for _, d in cpu_ms[layout]), 3)}
                for layout in LAYOUTS},
            "ratio_partitioned_to_flat_per_pair": ratios,
            "ratio_partitioned_to_flat_median": round(statistics.median(ratios), 3) if ratios else None,
            "ratio_partitioned_to_flat_median_95": median_interval(ratios),
            "pairs_partitioned_not_slower": sum(1 for r in ratios if r >= 1.0)}
