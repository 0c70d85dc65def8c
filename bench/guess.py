"""``manage.py bench foreign_code``: what a guessed code costs to answer, by kind (issue #17, R-RISK-4, R-TEN-1).

Design: docs/design/benchmarks.md#bench-guess.
"""
from __future__ import annotations

import os
import secrets
import statistics
import time
from typing import Any

from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from bench.api import _seed
from bench.db import scratch_database
from bench.registry import register
from core.fields import CODE_ALPHABET
from coupons.bloom import bloom_drop, get_store
from coupons.bloom_check import might_exist


def _arguments(parser: Any) -> None:
    parser.add_argument("--codes", type=int, default=20_000, help="Codes per tenant (default 20,000).")
    parser.add_argument("--samples", type=int, default=2_000, help="Requests per kind (default 2,000).")


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered) * 1000, 3),
            "p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 3)}


@register("foreign_code", help="Cost of answering an unknown, a foreign tenant's and an own code (GET coupons/{code}).",
          arguments=_arguments)
def bench_foreign_code(options: dict[str, Any]) -> dict[str, Any]:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = settings.COUPON_RATE_CODE_LOOKUP_IP = ""
    n, samples = options["codes"], options["samples"]
    load_before = round(os.getloadavg()[0], 2)
    with scratch_database(f"{connection.settings_dict['NAME']}_bench_guess"):
        bloom_drop()  # a filter left in Redis by an earlier run of this scratch database is not this one's
        own = _seed(n, issued=True)
        foreign = _seed(n, issued=True)
        per_tenant = get_store(own["tenant_id"]).params() is not None  # its own filter (one per tenant, #23)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {own['token']}")
        unknown: list[str] = []
        while len(unknown) < samples:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
            if not might_exist(code, own["tenant_id"]):
                unknown.append(code)
        kinds = {"unknown": unknown,
                 "foreign": [c.split("|")[0] for c in foreign["codes"][:samples]],
                 "own": [c.split("|")[0] for c in own["codes"][:samples]]}
        expected = {"unknown": 404, "foreign": 404, "own": 200}
        for kind, codes in kinds.items():  # warm-up: prepared statements, caches
            for code in codes[:50]:
                assert api.get(f"/api/v1/coupons/{code}").status_code == expected[kind]
        timings: dict[str, list[float]] = {kind: [] for kind in kinds}
        for i in range(samples):
            for kind, codes in kinds.items():
                code = codes[i % len(codes)]
                started = time.perf_counter()
                response = api.get(f"/api/v1/coupons/{code}")
                timings[kind].append(time.perf_counter() - started)
                assert response.status_code == expected[kind], (kind, response.status_code)
    result: dict[str, Any] = {kind: _ms(values) for kind, values in timings.items()}
    result["foreign_minus_unknown_median_ms"] = round(
        result["foreign"]["median_ms"] - result["unknown"]["median_ms"], 3)
    result.update({"per_tenant_filter": per_tenant, "codes_per_tenant": n, "samples_per_kind": samples,
                   "load_before": load_before,
                   "load_after": round(os.getloadavg()[0], 2)})
    return result
