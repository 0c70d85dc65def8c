"""Properties of the discount engine on random inputs (R-POL-4, 6, 7), and the exactness of the pruned search.

Value domains are deliberately small (few prices, few dates, few categories) so ties at every tie-break level and
orders smaller than the coupons happen often.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, UTC

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupons.discounts import (
    GROUP_ORDER,
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
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIGHT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SKUS, CATS, SHOPS = ["S1", "S2", "S3"], ["C1", "C2"], ["shop-1", "shop-2"]

lines_st = st.builds(
    OrderLine, sku=st.sampled_from(SKUS), spu=st.sampled_from(["P1", "P2"]), category=st.sampled_from(CATS),
    shop=st.sampled_from(SHOPS), unit_price=st.sampled_from([10, 990, 1000, 2500, 10000, 33333]),
    quantity=st.integers(1, 3), virtual=st.sampled_from([False, False, False, True]))
orders_st = st.builds(
    Order, order_id=st.just("o-1"), items=st.lists(lines_st, min_size=1, max_size=6).map(tuple),
    shipping_fee=st.sampled_from([0, 1000, 3000]), channel=st.sampled_from([None, "ios", "wechat"]),
    payment_method=st.sampled_from([None, "online", "cod"]))
contexts_st = st.builds(Context, now=st.just(NOW), rounding_unit=st.sampled_from([1, 10, 100]),
                        is_member=st.booleans(), whitelisted=st.just(False))
expiries = [None, NOW + timedelta(days=1), NOW + timedelta(days=7), NOW - timedelta(days=1)]


@st.composite
def terms_st(draw, code: str) -> CouponTerms:
    kind = draw(st.sampled_from(["amount", "threshold", "percentage", "shipping", "sku_deduction"]))
    fields: dict = {}
    if kind == "amount":
        fields["amount"] = draw(st.sampled_from([500, 1000, 3000, 50000]))
    elif kind == "threshold":
        fields["amount"] = draw(st.sampled_from([500, 1000, 3000]))
        fields["threshold"] = fields["amount"] + draw(st.sampled_from([1, 2000, 10000, 40000]))
    elif kind == "percentage":
        fields.update(rate=draw(st.sampled_from([5, 10, 33, 100])), cap=draw(st.sampled_from([5, 1000, 3000, 99999])),
                      threshold=draw(st.sampled_from([None, 0, 5000])))
    elif kind == "shipping":
        fields.update(amount=draw(st.sampled_from([None, 500])), threshold=draw(st.sampled_from([None, 5000])))
    else:
        fields.update(sku_deduction_sku=draw(st.sampled_from(SKUS + ["S9"])),
                      sku_deduction_units=draw(st.integers(1, 2)))
    scope = draw(st.sampled_from([
        {}, {}, {"include_categories": ["C1"]}, {"include_shops": ["shop-1"]}, {"exclude_skus": ["S2"]},
        {"include_skus": ["S1", "S3"], "exclude_shops": ["shop-2"]}, {"include_spus": ["P2"]}]))
    return CouponTerms(
        code=code, kind=kind, stacking_group=draw(st.sampled_from(GROUP_ORDER)),
        exclusive=draw(st.sampled_from([False, False, False, True])),
        channels=draw(st.sampled_from([[], [], ["ios"], ["android", "wechat"]])),
        payment_methods=draw(st.sampled_from([[], [], ["online"]])),
        audience=draw(st.sampled_from(["all", "all", "members"])),
        valid_until=draw(st.sampled_from(expiries)), **scope, **fields)


@st.composite
def coupon_lists(draw, max_size: int = 8) -> list[CouponTerms]:
    count = draw(st.integers(0, max_size))
    return [draw(terms_st(f"K{n}{draw(st.sampled_from('AB'))}")) for n in range(count)]


@st.composite
def already_st(draw, order: Order) -> dict:
    taken = {}
    for i, line in enumerate(order.items):
        taken[i] = draw(st.integers(0, line.unit_price * line.quantity))
    taken[SHIPPING_LINE] = draw(st.integers(0, order.shipping_fee))
    return taken


@SETTINGS
@given(data=st.data(), the_order=orders_st, ctx=contexts_st)
def test_a_single_evaluation_stays_within_the_applicable_amount_and_its_lines_sum_to_it(data, the_order, ctx):
    terms = data.draw(terms_st("X"))
    already = data.draw(st.none() | already_st(the_order))
    result = evaluate(terms, the_order, ctx, already_discounted=already)
    assert result.discount >= 0
    assert sum(x.discount for x in result.lines) == result.discount
    assert all(x.discount > 0 for x in result.lines)
    if not result.ok:
        assert result.reason and result.discount == 0
        return
    assert result.reason is None and result.discount > 0
    taken = already or {}
    if terms.kind == "shipping":
        assert [x.line for x in result.lines] == [SHIPPING_LINE]
        assert result.discount <= the_order.shipping_fee - taken.get(SHIPPING_LINE, 0)
    else:
        assert result.discount <= result.applicable_amount
        for x in result.lines:
            item = the_order.items[x.line]
            assert not item.virtual
            assert x.discount <= item.unit_price * item.quantity - taken.get(x.line, 0)
    if terms.kind == "percentage":
        assert result.discount % ctx.rounding_unit == 0 and result.discount <= terms.cap
    if terms.threshold:
        assert result.applicable_amount >= terms.threshold


@SETTINGS
@given(the_order=orders_st, ctx=contexts_st, candidates=coupon_lists())
def test_a_combination_never_overdraws_a_line_and_payable_is_never_negative(the_order, ctx, candidates):
    result = apply_combination(candidates, the_order, ctx)
    per_line: dict = defaultdict(int)
    for applied in result.applied:
        assert applied.discount > 0 and sum(x.discount for x in applied.lines) == applied.discount
        for x in applied.lines:
            per_line[x.line] += x.discount
    for key, taken in per_line.items():
        if key == SHIPPING_LINE:
            assert taken <= the_order.shipping_fee
        else:
            item = the_order.items[key]
            assert not item.virtual and taken <= item.unit_price * item.quantity
    assert result.discount == sum(a.discount for a in result.applied)
    assert 0 <= result.payable == the_order.items_total + the_order.shipping_fee - result.discount
    groups = [a.stacking_group for a in result.applied]
    assert len(groups) == len(set(groups))
    assert groups == sorted(groups, key=GROUP_ORDER.index)
    assert len(result.applied) + len(result.rejected) == len(candidates)
    by_code = {t.code: t for t in candidates}
    if any(by_code[a.code].exclusive for a in result.applied):
        assert len(result.applied) == 1


@LIGHT
@given(the_order=orders_st, ctx=contexts_st, candidates=coupon_lists())
def test_each_applied_coupon_gets_what_evaluate_gives_after_the_earlier_ones(the_order, ctx, candidates):
    result = apply_combination(candidates, the_order, ctx)
    by_code = {t.code: t for t in candidates}
    taken: dict = defaultdict(int)
    for applied in result.applied:
        alone = evaluate(by_code[applied.code], the_order, ctx, already_discounted=dict(taken))
        assert (alone.ok, alone.discount, alone.lines) == (True, applied.discount, applied.lines)
        for x in applied.lines:
            taken[x.line] += x.discount


@SETTINGS
@given(the_order=orders_st, ctx=contexts_st, candidates=coupon_lists())
def test_the_pruned_search_finds_exactly_what_the_brute_force_finds(the_order, ctx, candidates):
    best = best_combination(candidates, the_order, ctx)
    reference = brute_force_best(candidates, the_order, ctx)
    assert (best.discount, best.codes) == (reference.discount, reference.codes)
    assert best == reference
    # The answer is itself a valid combination: applying those codes gives the same total with no rejection.
    by_code = {t.code: t for t in candidates}
    again = apply_combination([by_code[c] for c in best.codes], the_order, ctx)
    assert (again.valid, again.discount, again.payable) == (True, best.discount, best.payable)


@settings(max_examples=60, deadline=None)
@given(the_order=orders_st, ctx=contexts_st, candidates=coupon_lists(max_size=8))
def test_the_best_total_is_at_least_any_single_usable_coupon(the_order, ctx, candidates):
    best = best_combination(candidates, the_order, ctx)
    for terms in candidates:
        alone = evaluate(terms, the_order, ctx)
        assert best.discount >= alone.discount
