"""Benchmark of ``best_combination`` (R-POL-7) against the brute-force reference on the same seeded input.

Design: docs/design/benchmarks.md#bench-best.
"""
from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from math import prod
from typing import Any

from bench.registry import register
from coupons.discounts import Context, CouponTerms, Order, OrderLine, best_combination, brute_force_best

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SHOPS = [f"shop-{n}" for n in range(1, 6)]
CATEGORIES = [f"cat-{n}" for n in range(1, 13)]


def build_order(rng: random.Random, lines: int) -> Order:
    items = []
    for n in range(lines):
        items.append(OrderLine(
            sku=f"SKU-{n}", spu=f"SPU-{n // 2}", category=rng.choice(CATEGORIES), shop=rng.choice(SHOPS),
            unit_price=rng.randrange(100, 8000) * 10, quantity=rng.choice([1, 1, 1, 2, 3]),
            virtual=rng.random() < 0.05))
    return Order(order_id="bench-order", items=tuple(items), shipping_fee=3000, channel="ios",
                 payment_method="online")


def _validity(rng: random.Random) -> tuple[datetime, datetime]:
    roll = rng.random()
    if roll < 0.05:  # expired
        return NOW - timedelta(days=30), NOW - timedelta(days=rng.randint(1, 5))
    if roll < 0.10:  # not yet valid
        return NOW + timedelta(days=1), NOW + timedelta(days=30)
    # Whole days, so equal expiries (and so tie-breaks) happen as they do with campaign end dates.
    return NOW - timedelta(days=1), NOW + timedelta(days=rng.randint(1, 60))


def build_coupons(rng: random.Random, order: Order, count: int) -> list[CouponTerms]:
    coupons = []
    skus = [line.sku for line in order.items]
    for n in range(count):
        group = rng.choices(["merchant", "platform", "shipping", "super"], weights=[40, 30, 15, 15])[0]
        fields: dict[str, Any] = {}
        if group == "merchant":
            fields["include_shops"] = {rng.choice(SHOPS)}
            kind = rng.choices(["threshold", "amount", "percentage", "sku_deduction"], weights=[40, 20, 25, 15])[0]
        elif group == "platform":
            kind = rng.choices(["threshold", "percentage", "amount"], weights=[45, 35, 20])[0]
            if rng.random() < 0.4:
                fields["include_categories"] = set(rng.sample(CATEGORIES, rng.randint(1, 3)))
            if rng.random() < 0.1:
                fields["exclude_skus"] = set(rng.sample(skus, 3))
        elif group == "shipping":
            kind = "shipping"
        else:
            kind = rng.choices(["percentage", "amount", "threshold"], weights=[40, 30, 30])[0]
        if kind == "threshold":
            threshold = rng.choice([10_000, 30_000, 50_000, 100_000, 200_000, 400_000, 800_000])
            fields.update(threshold=threshold, amount=threshold * rng.randint(5, 20) // 100 // 10 * 10)
        elif kind == "amount":
            fields["amount"] = rng.randrange(100, 1000) * 10
        elif kind == "percentage":
            fields.update(rate=rng.choice([5, 10, 15, 20, 30]), cap=rng.randrange(300, 3000) * 10)
            if rng.random() < 0.5:
                fields["threshold"] = rng.choice([20_000, 50_000, 100_000])
        elif kind == "shipping":
            if rng.random() < 0.5:
                fields["threshold"] = rng.choice([20_000, 50_000])
            if rng.random() < 0.5:
                fields["amount"] = rng.choice([1500, 2500])
        else:
            fields.update(sku_deduction_sku=rng.choice(skus + ["SKU-ABSENT"]),
                          sku_deduction_units=rng.randint(1, 2))
        if rng.random() < 0.2:
            fields["channels"] = rng.choice([{"ios", "android"}, {"wechat", "mini_program"}])
        if rng.random() < 0.1:
            fields["payment_methods"] = {"cod"}
        if rng.random() < 0.05:
            fields["audience"] = "members"
        valid_from, valid_until = _validity(rng)
        coupons.append(CouponTerms(code=f"C{n:03d}{rng.randrange(36**4):04X}", kind=kind, stacking_group=group,
                                   exclusive=rng.random() < 0.05, valid_from=valid_from, valid_until=valid_until,
                                   **fields))
    return coupons


def build_input(seed: int, *, coupons: int, lines: int) -> tuple[list[CouponTerms], Order, Context]:
    rng = random.Random(seed)
    order = build_order(rng, lines)
    return build_coupons(rng, order, coupons), order, Context(now=NOW, rounding_unit=10, is_member=True)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(*, coupons: int = 100, lines: int = 50, repeat: int = 200, varied: int = 30, brute_repeat: int = 1,
        seed: int = 20261120) -> dict[str, Any]:
    terms, order, ctx = build_input(seed, coupons=coupons, lines=lines)
    timings = []
    result = best_combination(terms, order, ctx)  # warm-up
    for _ in range(repeat):
        start = time.perf_counter()
        result = best_combination(terms, order, ctx)
        timings.append(time.perf_counter() - start)
    brute_timings = []
    for _ in range(brute_repeat):
        start = time.perf_counter()
        reference = brute_force_best(terms, order, ctx)
        brute_timings.append(time.perf_counter() - start)
    agree = result.discount == reference.discount and result.codes == reference.codes

    varied_timings = []
    for k in range(1, varied + 1):
        other_terms, other_order, other_ctx = build_input(seed + k, coupons=coupons, lines=lines)
        start = time.perf_counter()
        other = best_combination(other_terms, other_order, other_ctx)
        varied_timings.append(time.perf_counter() - start)
        if coupons <= 40:  # the reference on every varied input only while it stays cheap
            ref = brute_force_best(other_terms, other_order, other_ctx)
            agree = agree and other.discount == ref.discount and other.codes == ref.codes

    usable = coupons - len(result.rejected)
    group_sizes = Counter(t.stacking_group for t in terms if not t.exclusive)
    subsets = prod(size + 1 for size in group_sizes.values()) + sum(1 for t in terms if t.exclusive)
    best_p50 = statistics.median(timings)
    brute = statistics.median(brute_timings)
    return {
        "coupons": coupons, "lines": lines, "repeat": repeat, "usable_coupons": usable,
        "best_p50_ms": _ms(best_p50), "best_p95_ms": _ms(_percentile(timings, 0.95)),
        "varied_inputs": varied,
        "varied_p50_ms": _ms(statistics.median(varied_timings)) if varied_timings else None,
        "varied_p95_ms": _ms(_percentile(varied_timings, 0.95)) if varied_timings else None,
        "varied_max_ms": _ms(max(varied_timings)) if varied_timings else None,
        "brute_ms": _ms(brute), "brute_repeat": brute_repeat, "brute_subsets": subsets,
        "ratio": round(brute / best_p50, 1) if best_p50 else None,
        "agree": agree, "discount": result.discount, "codes": list(result.codes),
    }


def _arguments(parser: Any) -> None:
    parser.add_argument("--coupons", type=int, default=100, help="Coupons in the member's wallet (default 100).")
    parser.add_argument("--lines", type=int, default=50, help="Order lines (default 50).")
    parser.add_argument("--repeat", type=int, default=200, help="Timed calls on the main input.")


@register("best", help="best_combination in-process (p50/p95) against the same-run brute-force reference.",
          arguments=_arguments)
def bench_best(options: dict[str, Any]) -> dict[str, Any]:
    return run(coupons=options["coupons"], lines=options["lines"], repeat=options["repeat"])
