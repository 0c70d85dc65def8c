"""The discount engine of issue #5: pure functions over plain dataclasses, no database (R-POL-1…7, R-USE-1/2).

Everything is integer minor units.
Design: docs/design/discounts.md#coupons-discounts.
"""
from coupons.discounts.engine import (
    KIND_RANK,
    SHIPPING_LINE,
    AppliedCoupon,
    CombinationResult,
    Evaluation,
    LineDiscount,
    Reason,
    Rejection,
    apply_combination,
    evaluate,
)
from coupons.discounts.inputs import (
    CHANNELS,
    GROUP_ORDER,
    PAYMENT_METHODS,
    Context,
    CouponTerms,
    Order,
    OrderLine,
)
from coupons.discounts.payload import (
    MAX_CODES,
    MAX_LINE_TOTAL,
    MAX_LINES,
    CheckoutInputInvalid,
    CodesInvalid,
    OrderInvalid,
    normalise_code,
    validate_codes_payload,
    validate_order_payload,
)
from coupons.discounts.search import best_combination, brute_force_best

__all__ = [
    "CHANNELS", "GROUP_ORDER", "KIND_RANK", "MAX_CODES", "MAX_LINES", "MAX_LINE_TOTAL", "PAYMENT_METHODS",
    "SHIPPING_LINE", "AppliedCoupon", "CheckoutInputInvalid", "CodesInvalid", "CombinationResult", "Context",
    "CouponTerms", "Evaluation", "LineDiscount", "Order", "OrderInvalid", "OrderLine", "Reason", "Rejection",
    "apply_combination", "best_combination", "brute_force_best", "evaluate", "normalise_code",
    "validate_codes_payload", "validate_order_payload",
]
