"""The OpenAPI schema as integrators read it (#19): groups, summaries and the rules the serializers cannot state.

Design: docs/design/api.md#core-api-schema.
"""
from __future__ import annotations

from typing import Any

# Contract sections, in the order docs/API.md has them (tags in the schema, in the docs UI).
TAGS = [
    ("Client", "Who the token belongs to."),
    ("Getting coupons", "Claims and the coupons a product page can offer."),
    ("A member's coupons", "Lists and single coupons."),
    ("Checkout", "Dry runs: the discount of given codes; the best combination of a member's coupons."),
    ("Lifecycle", "Lock, release, redeem, refund and revoke, one coupon or a batch."),
    ("Events and draws", "Participation and the draws of an event."),
    ("Rewards", "Reward triggers and points."),
    ("Operator endpoints", "Grants, partner uploads and exports: API clients with the operator scope only."),
]

BATCH_ACTIONS = ("lock", "release", "redeem", "refund", "revoke")  # coupons.api.schema splits the batch path

# operationId → (tag, summary, description used when the view gives none).
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "client_info": ("Client", "Who am I", "The tenant, client name, scope and currency of the token: a side-effect "
                    "free way to check a token."),
    "claim": ("Getting coupons", "Claim a coupon", ""),
    "claimable": ("Getting coupons", "Coupons claimable on a product page", ""),
    "member_coupons": ("A member's coupons", "A member's coupons",
                       "Paginated, soonest expiry first. `state`: `usable` (ISSUED and inside validity), `used`, "
                       "`locked`, `invalid` (EXPIRED or REVOKED) or `all`; `sku`/`spu`/`category`/`shop` keep the "
                       "coupons whose scope covers that product."),
    "coupon_detail": ("A member's coupons", "One coupon",
                      "Codes ignore case, spaces and `-`. Another tenant's code answers exactly like a missing one."),
    "checkout_validate": ("Checkout", "Validate codes against an order", ""),
    "checkout_best": ("Checkout", "Best combination for an order", ""),
    "coupon_lock": ("Lifecycle", "Lock a coupon to an order",
                    "ISSUED → LOCKED to the order, after pricing it against the order (422 not_applicable with the "
                    "reason when it does not apply). Locking again to the same order is a no-op; another order → "
                    "409 locked_by_other_order. The order id comes as `order_id` or `order.order_id` (equal if "
                    "both; else 400 order_id_mismatch). Answers the coupon and the discount it gives."),
    "coupon_release": ("Lifecycle", "Release a lock",
                       "LOCKED → ISSUED, for the order that holds the lock (order cancelled before payment); another "
                       "order → 409 order_mismatch."),
    "coupon_redeem": ("Lifecycle", "Redeem a coupon", ""),
    "coupon_refund": ("Lifecycle", "Refund a redemption",
                      "A full refund (`full_refund`, default true) of the order that used the coupon: USED → ISSUED "
                      "(EXPIRED if past validity) and `returned: true`. A partial refund leaves it USED "
                      "(`returned: false`). Another order → 409 order_mismatch."),
    "coupon_revoke": ("Lifecycle", "Revoke a coupon",
                      "ISSUED → REVOKED with a reason, recorded in the audit log (operator scope: a member client "
                      "gets 403 permission_denied). With `member_id`, another member's coupon → 403 not_owner, "
                      "unchanged. LOCKED → 409 locked_by_other_order (release first); USED → 409 already_used."),
    **{f"coupon_batch_{action}": ("Lifecycle", f"Batch {action}",
                                  f"`{action}` for up to 500 coupons. Every item is checked first (a bad item → 400 "
                                  "naming it, nothing done); then each item is its own transaction and the answer "
                                  "lists each one's result: `ok`, or `error` with `code` and `message`.")
       for action in BATCH_ACTIONS},
    "event_join": ("Events and draws", "Join an event", ""),
    "event_leave": ("Events and draws", "Leave an event", ""),
    "event_draws": ("Events and draws", "The draws of an event", ""),
    "reward_trigger": ("Rewards", "Report a reward trigger", ""),
    "member_points": ("Rewards", "A member's points", ""),
    "points_spend": ("Rewards", "Pay with points", ""),
    "points_refund": ("Rewards", "Give back the points of a refunded order", ""),
    "points_exchange": ("Rewards", "Exchange points for a coupon", ""),
    "grant": ("Operator endpoints", "Grant coupons to members", ""),
    "revocation_create": ("Operator endpoints", "Revoke coupons of listed members", ""),
    "grant_status": ("Operator endpoints", "Progress of a grant job",
                     "Status, counts and progress (0–1) of a grant that ran as a job, and up to 1,000 failures."),
    "partner_upload_create": ("Operator endpoints", "Upload partner codes", ""),
    "partner_upload_status": ("Operator endpoints", "Status of a partner upload",
                              "Status, rows, mapped, failed and progress (0–1); `error` says why a FAILED upload "
                              "failed as a whole."),
    "partner_upload_failures": ("Operator endpoints", "Failed rows of a partner upload",
                                "Paginated rows that did not map, with line number, value and reason; `reason` "
                                "filters."),
    "partner_upload_reprocess": ("Operator endpoints", "Retry failed rows", ""),
    "distribution_create": ("Operator endpoints", "Hand codes to a partner", ""),
    "distribution_status": ("Operator endpoints", "A distribution and its counts", ""),
    "distribution_codes": ("Operator endpoints", "Download a distribution's codes", ""),
    "export_create": ("Operator endpoints", "Request an export", ""),
    "export_status": ("Operator endpoints", "Status of an export", ""),
    "export_download": ("Operator endpoints", "Download an export", ""),
}

# Component descriptions for integrators (drf-spectacular would show the serializer's docstring).
COMPONENTS: dict[str, str] = {
    "Coupon": "A coupon as the member holds it. `status` is effective: past `valid_until` it reads EXPIRED even "
              "before the expiry job has run.",
    "GrantOut": "What a reward trigger granted: points (with their expiry) and/or a coupon; `coupon_error` names why "
                "the rule's coupon could not be issued.",
    "OrderRequest": "An order: only `items` is required. `shipping_fee` defaults to 0; `order_id` may be given at "
                    "the request's top level instead (both: equal).",
    "OrderLineRequest": "An order line: `sku`, `unit_price` and `quantity` are required. `spu`, `category` and "
                        "`shop` default to empty (a coupon scoped on them then does not match the line; an exclusion "
                        "does not catch it); `virtual` defaults to false. Texts may not contain control characters.",
}

NON_BLANK = "\\S"  # DRF trims text fields and refuses what is left blank; the order validator does the same
EMPTY_OR_NON_BLANK = "^$|\\S"
# Path parameters: what each view refuses (400) or cannot find (404) beyond these is a well-formed request.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "member_id": {"type": "string", "minLength": 1, "maxLength": 64},
}


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            tag, summary, description = OPERATIONS.get(operation["operationId"], ("", "", ""))
            if tag:
                operation["tags"] = [tag]
                operation["summary"] = summary
            if description and not operation.get("description"):
                operation["description"] = description
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] in PATH_PARAMETERS:
                    parameter["schema"] = dict(PATH_PARAMETERS[parameter["name"]])
    result["tags"] = [{"name": name, "description": text} for name, text in TAGS]
    for name, text in COMPONENTS.items():
        if name in schemas:
            schemas[name]["description"] = text
    _non_blank_texts(schemas)
    return result


def _non_blank_texts(schemas: dict[str, Any]) -> None:
    """Request strings that must not be blank (minLength 1, no other format) say so with a pattern."""
    for name, component in schemas.items():
        if not name.endswith("Request"):
            continue
        for prop in (component.get("properties") or {}).values():
            if (prop.get("type") == "string" and prop.get("minLength") == 1 and "pattern" not in prop
                    and "format" not in prop and "enum" not in prop and "anyOf" not in prop):
                prop["pattern"] = NON_BLANK
