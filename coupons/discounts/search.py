"""The best combination of a member's coupons for one order (R-POL-6/7, R-USE-2): an exact search, ranked as the
brute force ranks.

Design: docs/design/discounts.md#coupons-discounts-search.
"""
from __future__ import annotations

from itertools import product

from coupons.discounts.engine import (
    CombinationResult,
    Rejection,
    _allocate,
    _discount,
    _OrderView,
    _Prepared,
    _result,
    _run,
    _take,
)
from coupons.discounts.inputs import GROUP_ORDER, Context, CouponTerms, Order

_LEVELS = 5
_GROUPS = len(GROUP_ORDER)
Key = tuple[tuple, ...]
_EMPTY_KEY: Key = ((),) * _LEVELS


def _values(p: _Prepared) -> tuple:
    return (p.expiry, p.kind_rank, p.product_flag, p.channel_flag, p.terms.code)


def combination_key(prepared: list[_Prepared]) -> Key:
    """The tie-break key of a combination (smaller wins), see the module docstring."""
    values = [_values(p) for p in prepared]
    return tuple(tuple(sorted(v[level] for v in values)) for level in range(_LEVELS))


class _Setup:
    """Dedupe, prepare and check every coupon once; split the survivors by group."""

    def __init__(self, terms_list: list[CouponTerms] | tuple[CouponTerms, ...], order: Order, ctx: Context) -> None:
        self.view = _OrderView(order)
        self.unit = ctx.rounding_unit
        rem, fee = self.view.fresh_state()
        seen: set[str] = set()
        self.prepared: list[_Prepared] = []
        self.rejected: list[Rejection] = []
        self.usable: list[tuple[_Prepared, int]] = []
        for terms in terms_list:
            if terms.code in seen:
                self.rejected.append(Rejection(terms.code, "duplicate_code"))
                continue
            seen.add(terms.code)
            p = _Prepared(terms, self.view, ctx)
            self.prepared.append(p)
            reason, discount, _ = _discount(p, self.view, rem, fee, self.unit)
            if reason is None:
                self.usable.append((p, discount))
            else:
                self.rejected.append(Rejection(terms.code, str(reason)))

    def finish(self, chosen: list[_Prepared]) -> CombinationResult:
        applied, late, total = _run(chosen, self.view, self.unit)
        assert not late, "a chosen combination must apply in full"
        return _result(self.view, applied, list(self.rejected), total)


def _better(total: int, key: Key, best_total: int, best_key: Key) -> bool:
    return total > best_total or (total == best_total and key < best_key)


def best_combination(terms_list: list[CouponTerms] | tuple[CouponTerms, ...], order: Order, ctx: Context
                     ) -> CombinationResult:
    """The valid combination with the largest total discount, ties broken as in the module docstring (R-POL-7).

    ``rejected`` lists the coupons refused on their own (with reasons); usable coupons left out are simply not in
    ``applied``.
    """
    setup = _Setup(terms_list, order, ctx)
    view, unit = setup.view, setup.unit

    # Per group: item coupons and shipping-fee coupons, each sorted by stand-alone discount (the bound), then key.
    item_lists: list[list[tuple[_Prepared, int]]] = [[] for _ in range(_GROUPS)]
    fee_lists: list[list[tuple[_Prepared, int]]] = [[] for _ in range(_GROUPS)]
    exclusives: list[tuple[_Prepared, int]] = []
    for p, d in setup.usable:
        if p.terms.exclusive:
            exclusives.append((p, d))
        else:
            (fee_lists if p.touches_fee else item_lists)[p.group_rank].append((p, d))
    for lists in (item_lists, fee_lists):
        for candidates in lists:
            candidates.sort(key=lambda c: (-c[1], _values(c[0])))
    # Optimistic amounts: the best stand-alone discount of each group, and their sums over groups g.. (index _GROUPS
    # is the empty suffix). A coupon never gives more after earlier coupons than it gives alone.
    max_item = [item_lists[g][0][1] if item_lists[g] else 0 for g in range(_GROUPS)]
    max_fee = [fee_lists[g][0][1] if fee_lists[g] else 0 for g in range(_GROUPS)]
    suffix_items = [sum(max_item[g:]) for g in range(_GROUPS + 1)]
    suffix_fee = [sum(max_fee[g:]) for g in range(_GROUPS + 1)]
    # Per level and group: the smallest tie-break value any candidate of the group could add.
    group_min: list[list[object | None]] = []
    for level in range(_LEVELS):
        row: list[object | None] = []
        for g in range(_GROUPS):
            values = [_values(p)[level] for p, _ in item_lists[g] + fee_lists[g]]
            row.append(min(values) if values else None)
        group_min.append(row)

    best_total = 0
    best_key: Key = _EMPTY_KEY
    best: list[_Prepared] = []

    def consider(total: int, chosen: list[_Prepared]) -> None:
        nonlocal best_total, best_key, best
        if total < best_total:
            return
        key = combination_key(chosen)
        if _better(total, key, best_total, best_key):
            best_total, best_key, best = total, key, list(chosen)

    # For each first later group: every subset of the later groups that have candidates, with the optimistic
    # item and fee amounts that subset could add (one coupon per group).
    subsets_from: list[list[tuple[tuple[int, ...], int, int]]] = []
    for first in range(_GROUPS + 1):
        present = [g for g in range(first, _GROUPS) if item_lists[g] or fee_lists[g]]
        subsets = []
        for mask in range(1 << len(present)):
            groups = tuple(g for bit, g in enumerate(present) if mask >> bit & 1)
            subsets.append((groups, sum(max_item[g] for g in groups), sum(max_fee[g] for g in groups)))
        subsets_from.append(subsets)

    def may_win_tie(chosen: list[_Prepared], first_group: int, total: int, items_left: int, fee_left: int,
                    add_items: int = 0, add_fee: int = 0) -> bool:
        """Could a completion of ``chosen`` (whose total is ``total`` + at most the ``add_*`` amounts) with one coupon
        from each of some later groups reach the incumbent's total with a smaller key?

        Only subsets of later groups that could still reach ``best_total`` count. For a fixed subset, the smallest
        sorted tuple of a level takes each group's smallest value (lowering an element never makes a sorted tuple
        larger), and the per-level minima together bound every completion's key from below, lexicographically.
        """
        base = [_values(p) for p in chosen]
        for groups, more_items, more_fee in subsets_from[first_group]:
            reach = total + min(items_left, add_items + more_items) + min(fee_left, add_fee + more_fee)
            if reach < best_total:
                continue
            for level in range(_LEVELS):
                bound = tuple(sorted([v[level] for v in base] + [group_min[level][g] for g in groups]))
                if bound != best_key[level]:
                    if bound < best_key[level]:
                        return True
                    break
        return False

    def dfs(g: int, rem: list[int], items_left: int, fee_left: int, total: int, chosen: list[_Prepared]) -> None:
        if g == _GROUPS or (items_left == 0 and fee_left == 0):
            consider(total, chosen)  # nothing later could apply: every coupon would save nothing
            return
        rest_items, rest_fee = suffix_items[g + 1], suffix_fee[g + 1]
        base_items, base_fee = min(items_left, rest_items), min(fee_left, rest_fee)
        if items_left > 0:
            for p, standalone in item_lists[g]:
                bound = total + min(items_left, standalone + rest_items) + base_fee
                if bound < best_total:
                    break  # sorted by stand-alone discount: no later candidate can do better
                if bound == best_total and not may_win_tie(chosen + [p], g + 1, total, items_left, fee_left,
                                                           add_items=standalone):
                    continue
                reason, d, _ = _discount(p, view, rem, fee_left, unit)
                if reason is not None:
                    continue
                bound = total + d + min(items_left - d, rest_items) + base_fee
                if bound < best_total or (bound == best_total and not may_win_tie(
                        chosen + [p], g + 1, total + d, items_left - d, fee_left)):
                    continue
                new_rem, _ = _take(rem, fee_left, _allocate(p, view, rem, d))
                dfs(g + 1, new_rem, items_left - d, fee_left, total + d, chosen + [p])
        if fee_left > 0:
            for p, standalone in fee_lists[g]:
                bound = total + base_items + min(fee_left, standalone + rest_fee)
                if bound < best_total:
                    break
                if bound == best_total and not may_win_tie(chosen + [p], g + 1, total, items_left, fee_left,
                                                           add_fee=standalone):
                    continue
                reason, d, _ = _discount(p, view, rem, fee_left, unit)
                if reason is not None:
                    continue
                dfs(g + 1, rem, items_left, fee_left - d, total + d, chosen + [p])
        bound = total + base_items + base_fee
        if bound > best_total or (bound == best_total and may_win_tie(chosen, g + 1, total, items_left, fee_left)):
            dfs(g + 1, rem, items_left, fee_left, total, chosen)

    for p, d in exclusives:
        consider(d, [p])
    rem, fee = view.fresh_state()
    dfs(0, rem, sum(rem), fee, 0, [])
    return setup.finish(best)


def brute_force_best(terms_list: list[CouponTerms] | tuple[CouponTerms, ...], order: Order, ctx: Context
                     ) -> CombinationResult:
    """Reference for tests and the benchmark: tries every valid subset, no bound, no pruning.

    The valid subsets are exactly: one exclusive coupon alone, or at most one non-exclusive coupon per group, so
    they are enumerated as the product over groups of (none, each coupon of the group) — every subset that is not
    of that form is invalid by R-POL-6. Each is applied in full in group order; any coupon refused (or saving
    nothing) makes the subset invalid. Coupons are not pre-filtered, so the count is Π(group size + 1).
    """
    setup = _Setup(terms_list, order, ctx)
    view, unit = setup.view, setup.unit
    by_group: list[list[_Prepared | None]] = [[None] for _ in range(_GROUPS)]
    subsets: list[list[_Prepared]] = []
    for p in setup.prepared:
        if p.terms.exclusive:
            subsets.append([p])
        else:
            by_group[p.group_rank].append(p)
    best_total, best_key, best = 0, _EMPTY_KEY, []
    fresh = view.fresh_state()

    def total_of(chosen: list[_Prepared]) -> int | None:
        rem, fee = fresh
        total = 0
        for p in chosen:  # already in group order
            reason, d, _ = _discount(p, view, rem, fee, unit)
            if reason is not None:
                return None
            rem, fee = _take(rem, fee, _allocate(p, view, rem, d))
            total += d
        return total

    def candidates():
        yield from subsets
        for combo in product(*by_group):
            yield [p for p in combo if p is not None]

    for chosen in candidates():
        total = total_of(chosen)
        if total is None:
            continue
        key = combination_key(chosen)
        if _better(total, key, best_total, best_key):
            best_total, best_key, best = total, key, chosen
    return setup.finish(best)
