"""The discount engine on exact values (R-POL-1, 3, 4, 6, 7; seeds 002, 003, 004). Pure: no database."""
from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest

from coupons.discounts import (
    CHANNELS,
    PAYMENT_METHODS,
    SHIPPING_LINE,
    Context,
    CouponTerms,
    Order,
    OrderLine,
    apply_combination,
    best_combination,
    brute_force_best,
    evaluate,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CTX = Context(now=NOW, rounding_unit=10)


def line(sku="S1", price=10000, qty=1, *, spu=None, category="C1", shop="shop-1", virtual=False) -> OrderLine:
    return OrderLine(sku=sku, spu=spu or f"P-{sku}", category=category, shop=shop, unit_price=price, quantity=qty,
                     virtual=virtual)


def order(*lines: OrderLine, shipping=0, channel="ios", payment="online") -> Order:
    return Order(order_id="o-1", items=lines, shipping_fee=shipping, channel=channel, payment_method=payment)


def coupon(code="CPN", kind="amount", group="platform", **fields) -> CouponTerms:
    defaults = {"amount": {"amount": 1000}, "threshold": {"amount": 3000, "threshold": 30000},
                "percentage": {"rate": 10, "cap": 5000}, "shipping": {},
                "sku_deduction": {"sku_deduction_sku": "S1", "sku_deduction_units": 1}}[kind]
    return CouponTerms(code=code, kind=kind, stacking_group=group, **{**defaults, **fields})


def reason_of(terms, the_order, ctx=CTX, **kwargs):
    result = evaluate(terms, the_order, ctx, **kwargs)
    assert not result.ok and result.discount == 0 and result.lines == ()
    return result.reason


# --- single coupons: kinds ------------------------------------------------------------------------------------

THRESHOLD_TABLE = [
    # (order amount, threshold, amount, expected discount or reason)
    (29990, 30000, 3000, "below_threshold"),
    (30000, 30000, 3000, 3000),  # equal to the threshold is enough ("spend ≥ X")
    (45000, 30000, 3000, 3000),
]


@pytest.mark.parametrize("amount_in_order,threshold,amount,expected", THRESHOLD_TABLE)
def test_a_threshold_coupon_needs_the_applicable_amount_to_reach_the_threshold(amount_in_order, threshold, amount,
                                                                             expected):
    result = evaluate(coupon(kind="threshold", threshold=threshold, amount=amount), order(line(price=amount_in_order)),
                      CTX)
    if isinstance(expected, str):
        assert (result.ok, result.reason) == (False, expected)
    else:
        assert (result.ok, result.discount, result.applicable_amount) == (True, expected, amount_in_order)


def test_a_cash_voucher_has_no_threshold_and_never_exceeds_the_order():
    assert evaluate(coupon(amount=5000), order(line(price=100)), CTX).discount == 100  # a zero-amount order
    assert evaluate(coupon(amount=5000), order(line(price=12000)), CTX).discount == 5000


PERCENTAGE_TABLE = [
    # (applicable, rate, cap, threshold, rounding unit, expected)
    (30000, 10, 5000, None, 1, 3000),      # under the cap
    (100000, 10, 5000, None, 1, 5000),     # capped
    (10010, 10, 5000, None, 10, 1000),     # seed 003: 1001 truncated to 1000 with a 10 KRW unit
    (10010, 10, 5000, None, 1, 1001),      # no truncation with unit 1
    (99999, 15, 50000, None, 100, 14900),  # 14999 → 14900 with unit 100
    (100000, 20, 5005, None, 10, 5000),    # the capped amount is rounded down too
    (19990, 10, 5000, 20000, 10, "below_threshold"),
    (20000, 10, 5000, 20000, 10, 2000),
    (90, 10, 5000, None, 10, "zero_discount"),  # 9 rounds down to 0: the coupon is not spent for nothing
]


@pytest.mark.parametrize("applicable,rate,cap,threshold,unit,expected", PERCENTAGE_TABLE)
def test_a_percentage_coupon_is_capped_and_rounded_down_to_the_tenant_unit(applicable, rate, cap, threshold, unit,
                                                                         expected):
    result = evaluate(coupon(kind="percentage", rate=rate, cap=cap, threshold=threshold), order(line(price=applicable)),
                      Context(now=NOW, rounding_unit=unit))
    if isinstance(expected, str):
        assert result.reason == expected
    else:
        assert (result.ok, result.discount) == (True, expected)


def test_a_shipping_coupon_only_touches_the_shipping_fee():
    the_order = order(line(price=50000), shipping=3000)
    result = evaluate(coupon(kind="shipping"), the_order, CTX)
    assert (result.discount, [(x.line, x.discount) for x in result.lines]) == (3000, [(SHIPPING_LINE, 3000)])
    assert evaluate(coupon(kind="shipping", amount=2500), the_order, CTX).discount == 2500
    assert reason_of(coupon(kind="shipping"), order(line(price=50000), shipping=0)) == "no_shipping_fee"
    assert reason_of(coupon(kind="shipping", threshold=60000), the_order) == "below_threshold"
    combined = apply_combination([coupon(kind="shipping", group="shipping")], the_order, CTX)
    assert (combined.discount, combined.payable) == (3000, 50000)


def test_a_shipping_coupon_needs_a_real_item_in_scope():
    only_virtual = order(line(price=50000, virtual=True), shipping=3000)
    assert reason_of(coupon(kind="shipping"), only_virtual) == "no_applicable_items"


SKU_DEDUCTION_TABLE = [
    # (lines, units, expected)
    ([line("S1", 1000, 3)], 2, 2000),
    ([line("S1", 1000, 1)], 2, 1000),  # min(N, quantity)
    ([line("S1", 1000, 1), line("S1", 1500, 1)], 1, 1500),  # the dearer line first
    ([line("S1", 1000, 1), line("S1", 1500, 1)], 5, 2500),
    ([line("S2", 1000, 1)], 1, "sku_not_in_order"),
    ([line("S1", 1000, 1, virtual=True)], 1, "no_applicable_items"),
]


@pytest.mark.parametrize("lines,units,expected", SKU_DEDUCTION_TABLE)
def test_a_sku_deduction_frees_n_units_of_its_sku(lines, units, expected):
    result = evaluate(coupon(kind="sku_deduction", sku_deduction_units=units), order(*lines), CTX)
    if isinstance(expected, str):
        assert result.reason == expected
    else:
        assert (result.discount, sum(x.discount for x in result.lines)) == (expected, expected)


def test_a_sku_deduction_respects_the_scope():
    terms = coupon(kind="sku_deduction", exclude_shops=["shop-2"])
    assert reason_of(terms, order(line("S1", 1000, shop="shop-2"))) == "no_applicable_items"
    assert evaluate(terms, order(line("S1", 1000, shop="shop-1")), CTX).discount == 1000


# --- scope, channels, payment, audience, validity -----------------------------------------------------------

def test_virtual_items_never_count_toward_the_applicable_amount():
    the_order = order(line("S1", 10000), line("GIFT", 50000, virtual=True))
    assert reason_of(coupon(kind="threshold", threshold=30000, amount=3000), the_order) == "below_threshold"
    voucher = evaluate(coupon(amount=20000), the_order, CTX)
    assert (voucher.applicable_amount, voucher.discount, [x.line for x in voucher.lines]) == (10000, 10000, [0])
    assert reason_of(coupon(), order(line("GIFT", 50000, virtual=True))) == "no_applicable_items"


SCOPE_TABLE = [
    # (scope fields, expected applicable amount or reason); lines: S1/C1/shop-1 10000, S2/C1/shop-2 20000,
    # S3/C2/shop-1 40000
    ({}, 70000),
    ({"include_categories": ["C1"]}, 30000),
    ({"include_categories": ["C1"], "exclude_skus": ["S2"]}, 10000),  # exclude wins inside an include
    ({"include_skus": ["S1", "S3"], "exclude_categories": ["C2"]}, 10000),
    ({"include_shops": ["shop-1"]}, 50000),
    ({"include_shops": ["shop-1"], "include_categories": ["C1"]}, 10000),  # every include list must match
    ({"include_spus": ["P-S3"]}, 40000),
    ({"exclude_spus": ["P-S3"], "exclude_shops": ["shop-2"]}, 10000),
    ({"include_categories": ["C9"]}, "no_applicable_items"),
    ({"exclude_shops": ["shop-1", "shop-2"]}, "no_applicable_items"),
]


@pytest.mark.parametrize("scope,expected", SCOPE_TABLE)
def test_scope_includes_and_excludes_by_sku_spu_category_and_shop(scope, expected):
    the_order = order(line("S1", 10000, category="C1", shop="shop-1"), line("S2", 20000, category="C1", shop="shop-2"),
                      line("S3", 40000, category="C2", shop="shop-1"))
    result = evaluate(coupon(amount=100, **scope), the_order, CTX)
    if isinstance(expected, str):
        assert result.reason == expected
    else:
        assert (result.ok, result.applicable_amount) == (True, expected)


def test_a_channel_restricted_coupon_is_refused_on_another_channel():
    terms = coupon(channels=["android", "wechat"])
    assert reason_of(terms, order(line(), channel="ios")) == "channel_not_allowed"
    assert reason_of(terms, order(line(), channel=None)) == "channel_not_allowed"
    assert evaluate(terms, order(line(), channel="wechat"), CTX).ok
    assert evaluate(coupon(), order(line(), channel=None), CTX).ok  # empty list = every channel


def test_a_payment_method_restricted_coupon_is_refused_for_another_method():
    terms = coupon(payment_methods=["cod"])
    assert reason_of(terms, order(line(), payment="online")) == "payment_method_not_allowed"
    assert reason_of(terms, order(line(), payment=None)) == "payment_method_not_allowed"
    assert evaluate(terms, order(line(), payment="cod"), CTX).ok


def test_the_audience_is_checked_against_the_context():
    members_only, whitelist = coupon(audience="members"), coupon(audience="whitelist")
    assert reason_of(members_only, order(line())) == "members_only"  # a guest (issue #16)
    assert evaluate(members_only, order(line()), Context(now=NOW, is_member=True)).ok
    assert reason_of(whitelist, order(line()), Context(now=NOW, is_member=True)) == "audience_not_allowed"
    assert reason_of(whitelist, order(line()), Context(now=NOW, whitelisted=True)) == "members_only"
    assert evaluate(whitelist, order(line()), Context(now=NOW, is_member=True, whitelisted=True)).ok


def test_a_tier_scope_admits_members_of_those_tiers_only():
    gold = coupon(tiers={"gold", "vip"})
    assert reason_of(gold, order(line())) == "members_only"
    assert reason_of(gold, order(line()), Context(now=NOW, is_member=True)) == "tier_not_allowed"
    assert reason_of(gold, order(line()), Context(now=NOW, is_member=True, tier="silver")) == "tier_not_allowed"
    assert evaluate(gold, order(line()), Context(now=NOW, is_member=True, tier="vip")).ok


VALIDITY_TABLE = [
    (NOW + timedelta(seconds=1), NOW + timedelta(days=1), "not_yet_valid"),
    (NOW, NOW + timedelta(days=1), None),  # valid from the first instant
    (NOW - timedelta(days=1), NOW, "expired"),  # half-open: gone at valid_until
    (NOW - timedelta(days=1), NOW - timedelta(seconds=1), "expired"),
    (None, None, None),
]


@pytest.mark.parametrize("valid_from,valid_until,expected", VALIDITY_TABLE)
def test_validity_is_checked_at_the_context_time(valid_from, valid_until, expected):
    result = evaluate(coupon(valid_from=valid_from, valid_until=valid_until), order(line()), CTX)
    assert result.reason == expected


def test_thresholds_use_what_is_left_after_earlier_coupons():
    terms = coupon(kind="threshold", threshold=30000, amount=3000)
    the_order = order(line("S1", 20000), line("S2", 12000))
    assert evaluate(terms, the_order, CTX).ok
    assert reason_of(terms, the_order, already_discounted={0: 2500}) == "below_threshold"
    shipping = evaluate(coupon(kind="shipping"), order(line(), shipping=3000), CTX,
                        already_discounted={SHIPPING_LINE: 1000})
    assert shipping.discount == 2000


def test_a_discount_is_split_over_lines_in_proportion_and_sums_exactly():
    result = evaluate(coupon(amount=1000), order(line("A", 1000), line("B", 1000), line("C", 1000)), CTX)
    assert [(x.line, x.discount) for x in result.lines] == [(0, 334), (1, 333), (2, 333)]
    result = evaluate(coupon(amount=700), order(line("A", 3000), line("B", 1000)), CTX)
    assert [(x.line, x.sku, x.discount) for x in result.lines] == [(0, "A", 525), (1, "B", 175)]


# --- combinations (R-POL-6) ------------------------------------------------------------------------------------

def four_groups():
    return [coupon("SUPER", "amount", "super", amount=1000),
            coupon("SHIP", "shipping", "shipping"),
            coupon("PLAT", "percentage", "platform", rate=10, cap=5000),
            coupon("MERCH", "threshold", "merchant", threshold=20000, amount=3000, include_shops=["shop-1"])]


def test_merchant_platform_shipping_and_super_combine_in_that_order():
    the_order = order(line("S1", 24000, shop="shop-1"), line("S2", 6000, shop="shop-2"), shipping=3000)
    result = apply_combination(four_groups(), the_order, CTX)
    assert result.valid and result.rejected == ()
    assert [(a.code, a.discount) for a in result.applied] == [("MERCH", 3000), ("PLAT", 2700), ("SHIP", 3000),
                                                              ("SUPER", 1000)]
    assert (result.discount, result.order_total, result.payable) == (9700, 33000, 23300)
    # The platform 10 % is taken on 27000 (30000 minus the merchant's 3000), split over what each line still owes.
    assert [(x.line, x.discount) for x in result.applied[1].lines] == [(0, 2100), (1, 600)]


def test_the_platform_coupon_sees_the_amount_left_after_the_merchant_coupon():
    the_order = order(line("S1", 32000, shop="shop-1"))
    merchant = coupon("M", "amount", "merchant", amount=3000)
    platform = coupon("P", "threshold", "platform", threshold=30000, amount=2000)
    assert evaluate(platform, the_order, CTX).ok  # alone: 32000 ≥ 30000
    result = apply_combination([platform, merchant], the_order, CTX)  # the list order does not change the rule
    assert [(a.code, a.discount) for a in result.applied] == [("M", 3000)]
    assert [(r.code, r.reason) for r in result.rejected] == [("P", "below_threshold")]
    assert (result.valid, result.payable) == (False, 29000)


def test_two_coupons_of_one_group_do_not_combine():
    first, second = coupon("P1", amount=1000), coupon("P2", amount=2000)
    result = apply_combination([first, second], order(line()), CTX)
    assert [a.code for a in result.applied] == ["P1"]
    assert [(r.code, r.reason) for r in result.rejected] == [("P2", "stacking_conflict")]


def test_a_coupon_refused_on_its_own_does_not_block_another_of_its_group():
    expired = coupon("OLD", amount=5000, valid_until=NOW - timedelta(days=1))
    result = apply_combination([expired, coupon("NEW", amount=1000)], order(line()), CTX)
    assert [a.code for a in result.applied] == ["NEW"]
    assert [(r.code, r.reason) for r in result.rejected] == [("OLD", "expired")]


def test_an_exclusive_coupon_stands_alone():
    exclusive = coupon("EXC", "amount", "super", amount=2000, exclusive=True)
    merchant = coupon("M", "amount", "merchant", amount=500)
    first = apply_combination([exclusive, merchant], order(line()), CTX)
    assert ([a.code for a in first.applied], [(r.code, r.reason) for r in first.rejected]) == (
        ["EXC"], [("M", "exclusive_conflict")])
    second = apply_combination([merchant, exclusive], order(line()), CTX)
    assert ([a.code for a in second.applied], [(r.code, r.reason) for r in second.rejected]) == (
        ["M"], [("EXC", "exclusive_conflict")])


def test_a_code_listed_twice_is_rejected_once():
    result = apply_combination([coupon("A"), coupon("A")], order(line()), CTX)
    assert ([a.code for a in result.applied], [(r.code, r.reason) for r in result.rejected]) == (
        ["A"], [("A", "duplicate_code")])


def test_the_total_never_exceeds_what_is_payable():
    the_order = order(line("S1", 5000), line("GIFT", 2000, virtual=True), shipping=1000)
    big = [coupon("M", "amount", "merchant", amount=4000), coupon("P", "amount", "platform", amount=4000),
           coupon("S", "shipping", "shipping", amount=9000), coupon("U", "amount", "super", amount=9000)]
    result = apply_combination(big, the_order, CTX)
    assert [(a.code, a.discount) for a in result.applied] == [("M", 4000), ("P", 1000), ("S", 1000)]
    assert [(r.code, r.reason) for r in result.rejected] == [("U", "zero_discount")]
    assert (result.discount, result.payable) == (6000, 2000)  # the virtual gift is still paid


def test_the_result_has_the_api_shape():
    result = apply_combination([coupon("A", amount=1000)], order(line("S1", 3000), shipping=500), CTX)
    assert result.as_dict() == {
        "valid": True, "codes": ["A"], "discount": 1000,
        "applied": [{"code": "A", "discount": 1000, "lines": [{"line": 0, "sku": "S1", "discount": 1000}]}],
        "rejected": [], "payable": 2500}


# --- best combination (R-POL-7, seed 004) ---------------------------------------------------------------------

def test_the_best_combination_maximises_the_total_discount():
    the_order = order(line("S1", 24000, shop="shop-1"), line("S2", 6000, shop="shop-2"), shipping=3000)
    candidates = four_groups() + [coupon("PLAT-BIG", "amount", "platform", amount=2800),
                                  coupon("EXC", "amount", "super", amount=9000, exclusive=True),
                                  coupon("NOPE", "threshold", "merchant", threshold=90000, amount=9000)]
    result = best_combination(candidates, the_order, CTX)
    assert (list(result.codes), result.discount, result.payable) == (["MERCH", "PLAT-BIG", "SHIP", "SUPER"], 9800,
                                                                     23200)
    assert [(r.code, r.reason) for r in result.rejected] == [("NOPE", "below_threshold")]
    assert brute_force_best(candidates, the_order, CTX) == result


def test_an_exclusive_coupon_wins_when_it_alone_saves_more():
    candidates = [coupon("M", "amount", "merchant", amount=1000), coupon("P", "amount", "platform", amount=1000),
                  coupon("EXC", "amount", "super", amount=2500, exclusive=True)]
    assert list(best_combination(candidates, order(line("S1", 9000)), CTX).codes) == ["EXC"]


def test_the_best_combination_of_nothing_usable_is_empty():
    result = best_combination([coupon("X", valid_until=NOW)], order(line("S1", 9000)), CTX)
    assert (result.codes, result.discount, result.payable) == ((), 0, 9000)
    assert [(r.code, r.reason) for r in result.rejected] == [("X", "expired")]


# Each tie-break level decides one constructed tie: the winner's code sorts *last*, so the final code level
# (which would prefer the other) cannot be what decided.
LATE, EARLY = NOW + timedelta(days=30), NOW + timedelta(days=3)


def test_an_equal_discount_goes_to_the_coupon_that_expires_first():
    candidates = [coupon("A-LATE", amount=1000, valid_until=LATE), coupon("Z-EARLY", amount=1000, valid_until=EARLY)]
    assert list(best_combination(candidates, order(line("S1", 50000)), CTX).codes) == ["Z-EARLY"]
    assert list(brute_force_best(candidates, order(line("S1", 50000)), CTX).codes) == ["Z-EARLY"]


def test_an_equal_discount_and_expiry_goes_to_threshold_then_percentage_then_amount():
    the_order = order(line("S1", 50000))
    amount = coupon("A-AMOUNT", amount=5000, valid_until=LATE)
    percentage = coupon("M-PERCENT", "percentage", rate=10, cap=5000, valid_until=LATE)
    threshold = coupon("Z-THRESHOLD", "threshold", threshold=40000, amount=5000, valid_until=LATE)
    assert list(best_combination([amount, percentage, threshold], the_order, CTX).codes) == ["Z-THRESHOLD"]
    assert list(best_combination([amount, percentage], the_order, CTX).codes) == ["M-PERCENT"]


def test_an_equal_discount_expiry_and_kind_goes_to_the_product_restricted_coupon():
    the_order = order(line("S1", 50000, category="C1"))
    unrestricted = coupon("A-ALL", amount=1000, valid_until=LATE)
    restricted = coupon("Z-C1", amount=1000, valid_until=LATE, include_categories=["C1"])
    assert list(best_combination([unrestricted, restricted], the_order, CTX).codes) == ["Z-C1"]


def test_an_equal_discount_expiry_kind_and_product_scope_goes_to_the_channel_restricted_coupon():
    the_order = order(line("S1", 50000), channel="ios")
    unrestricted = coupon("A-ANY", amount=1000, valid_until=LATE)
    restricted = coupon("Z-IOS", amount=1000, valid_until=LATE, channels=["ios"])
    assert list(best_combination([unrestricted, restricted], the_order, CTX).codes) == ["Z-IOS"]


def test_between_combinations_the_sorted_expiries_are_compared_and_a_shorter_prefix_wins():
    the_order = order(line("S1", 50000))
    # {M, P} and {X} both save 2000. Sorted expiries: (EARLY, LATE) vs (EARLY,): the one coupon wins.
    candidates = [coupon("M", "amount", "merchant", amount=1000, valid_until=EARLY),
                  coupon("P", "amount", "platform", amount=1000, valid_until=LATE),
                  coupon("X", "amount", "super", amount=2000, valid_until=EARLY, exclusive=True)]
    assert list(best_combination(candidates, the_order, CTX).codes) == ["X"]
    assert list(brute_force_best(candidates, the_order, CTX).codes) == ["X"]


# --- the bridge to the model and the shared constants ---------------------------------------------------------

def test_terms_are_read_from_an_unsaved_policy_and_never_outlive_it():
    from coupons.models import CouponPolicy

    policy = CouponPolicy(kind="percentage", rate=15, cap=7000, threshold=20000, stacking_group="merchant",
                          exclusive=True, include_shops=["shop-1"], exclude_skus=["S9"], channels=["ios"],
                          payment_methods=["online"], audience="members", valid_from=NOW - timedelta(days=10),
                          valid_until=NOW + timedelta(days=5))
    terms = CouponTerms.from_policy(policy, code="K7WQ3MZP", valid_from=NOW - timedelta(days=1),
                                    valid_until=NOW + timedelta(days=30))
    assert (terms.code, terms.kind, terms.rate, terms.cap, terms.threshold, terms.amount) == (
        "K7WQ3MZP", "percentage", 15, 7000, 20000, None)
    assert (terms.stacking_group, terms.exclusive, terms.audience) == ("merchant", True, "members")
    assert (terms.include_shops, terms.exclude_skus, terms.channels, terms.payment_methods) == (
        {"shop-1"}, {"S9"}, {"ios"}, {"online"})
    assert (terms.valid_from, terms.valid_until) == (NOW - timedelta(days=1), NOW + timedelta(days=5))


def test_the_engine_knows_the_same_channels_and_payment_methods_as_the_model():
    from coupons import models

    assert list(CHANNELS) == models.CHANNELS and list(PAYMENT_METHODS) == models.PAYMENT_METHODS


@pytest.mark.parametrize("fields", [
    {"kind": "percentage", "rate": 10, "cap": None},
    {"kind": "percentage", "rate": 0, "cap": 100},
    {"kind": "threshold", "amount": None, "threshold": 100},
    {"kind": "amount", "amount": 1000, "stacking_group": "mall"},
    {"kind": "amount", "amount": 10.5},
    {"kind": "sku_deduction", "sku_deduction_sku": "", "sku_deduction_units": 1},
    {"kind": "amount", "amount": 100, "valid_until": datetime(2030, 1, 1)},  # naive
])
def test_impossible_terms_fail_loudly_when_built(fields):
    with pytest.raises(ValueError):
        CouponTerms(code="X", **fields)


def test_the_benchmark_runs_on_a_small_input_and_agrees_with_the_reference():
    from bench import best as bench_best

    figures = bench_best.run(coupons=12, lines=8, repeat=3, varied=3)
    assert figures["agree"] is True
    assert figures["best_p95_ms"] >= figures["best_p50_ms"] > 0 and figures["brute_subsets"] >= 1
