"""The OpenAPI schema as integrators read it (#19): groups, summaries and the rules the serializers cannot state.

``docs/API.md`` is the contract; ``tests/api/test_api_contract.py`` keeps its endpoint table and this schema equal.
drf-spectacular builds the schema from the views; ``postprocess`` (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)
then

- gives every operation the tag of its contract section and a one-line summary (``OPERATIONS``), and a description
  where the view has none — never a class docstring (``TenantAutoSchema.get_description``);
- states what the server accepts where a serializer cannot say it: exactly one claim target (``oneOf``), the order
  id at the top level or in the order (``anyOf``), the fields each reward trigger takes, the filters each export
  kind takes, a batch item's fields per action (one path per action), non-blank text (``pattern: \\S``) and the
  identifier lengths of path parameters — so that schemathesis' positive data is accepted and its negative data
  refused (tests/security/test_api_schemathesis.py).
"""
from __future__ import annotations

import copy
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

BATCH_ACTIONS = ("lock", "release", "redeem", "refund", "revoke")

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
                      "ISSUED (or LOCKED) → REVOKED with a reason, recorded in the audit log."),
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
    "grant": ("Operator endpoints", "Grant coupons to members", ""),
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
# Export date filters: the days the server can place in any time zone (exports.selectors.MIN_DATE / MAX_DATE).
DATE_RANGE_PATTERN = "^(19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.get("components", {}).get("schemas", {})
    _split_batch(result, schemas)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
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
    _claim(schemas.get("ClaimRequest"))
    for name in ("LockRequest", "RedeemRequest"):
        _order_id_required(schemas.get(name))
    _trigger(schemas.get("TriggerRequest"))
    _export(schemas.get("ExportRequestRequest"))
    order = schemas.get("OrderRequest")
    if order:
        order["properties"]["order_id"]["pattern"] = EMPTY_OR_NON_BLANK
        order["properties"]["order_id"].pop("minLength", None)
    line = schemas.get("OrderLineRequest")
    if line:
        for key in ("spu", "category", "shop"):
            line["properties"][key]["pattern"] = EMPTY_OR_NON_BLANK
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


def _claim(component: dict[str, Any] | None) -> None:
    if component:
        component["oneOf"] = [{"required": [target]} for target in ("inventory", "promo_code", "code",
                                                                    "partner_code")]
        component["description"] = "`member_id` and exactly one of `inventory`, `promo_code`, `code`, `partner_code`."


def _order_id_required(component: dict[str, Any] | None) -> None:
    if component:
        component["anyOf"] = [
            {"required": ["order_id"]},
            {"required": ["order"], "properties": {"order": {
                "required": ["order_id"], "properties": {"order_id": {"minLength": 1, "pattern": NON_BLANK}}}}},
        ]


def _trigger(component: dict[str, Any] | None) -> None:
    if not component:
        return
    no_amount = {"not": {"required": ["amount"]}}
    no_image = {"has_image": {"enum": [False]}}
    component["oneOf"] = [
        {"properties": {"trigger": {"enum": ["purchase_confirmed"]}, **no_image}, "required": ["amount"]},
        {"properties": {"trigger": {"enum": ["review"]}}, **no_amount},
        {"properties": {"trigger": {"enum": ["signup", "birthday"]}, **no_image}, **no_amount},
    ]
    component["description"] = ("`amount` is required for `purchase_confirmed` and only allowed there; `has_image` "
                                 "may be true for `review` only.")


def _export(component: dict[str, Any] | None) -> None:
    if not component:
        return
    from exports.selectors import ALL_FILTERS, KIND_FILTERS, REQUIRED_FILTERS

    component["additionalProperties"] = False
    for key in ("date_from", "date_to"):
        component["properties"][key]["pattern"] = DATE_RANGE_PATTERN
    component["oneOf"] = []
    for kind, allowed in KIND_FILTERS.items():
        branch: dict[str, Any] = {"properties": {"kind": {"enum": [kind]}}}
        required = list(REQUIRED_FILTERS.get(kind, ()))
        if required:
            branch["required"] = required
        refused = [name for name in ALL_FILTERS if name not in allowed]
        if refused:
            branch["not"] = {"anyOf": [{"required": [name]} for name in refused]}
        component["oneOf"].append(branch)
    component["description"] = ("`kind` and the filters that kind takes: " + "; ".join(
        f"`{kind}`: {', '.join(f'`{f}`' for f in allowed)}" for kind, allowed in KIND_FILTERS.items())
        + " (`batch` is required for `codes`). Any other field is refused.")


BATCH_ITEM_FIELDS = {
    "lock": (["code", "member_id", "order_id", "order"], ["code", "member_id", "order"]),
    "redeem": (["code", "member_id", "order_id", "order"], ["code", "member_id", "order"]),
    "release": (["code", "order_id"], ["code", "order_id"]),
    "refund": (["code", "order_id", "full_refund"], ["code", "order_id"]),
    "revoke": (["code", "reason"], ["code", "reason"]),
}


def _split_batch(result: dict[str, Any], schemas: dict[str, Any]) -> None:
    """``/coupons/batch/{action}`` as one path per action: an item's fields depend on the action, and only
    separate operations can say so."""
    paths = result.get("paths", {})
    template = paths.pop("/api/v1/coupons/batch/{action}", None)
    item = schemas.pop("BatchItemRequest", None)
    schemas.pop("BatchRequest", None)
    if not template or not item:
        return
    for action in BATCH_ACTIONS:
        fields, required = BATCH_ITEM_FIELDS[action]
        name = f"Batch{action.capitalize()}Item"
        component = {"type": "object", "properties": {k: copy.deepcopy(item["properties"][k]) for k in fields},
                     "required": required}
        if action in ("lock", "redeem"):
            _order_id_required(component)
        schemas[f"{name}Request"] = component
        schemas[f"Batch{action.capitalize()}Request"] = {
            "type": "object", "required": ["items"], "properties": {"items": {
                "type": "array", "minItems": 1, "maxItems": 500,
                "items": {"$ref": f"#/components/schemas/{name}Request"}}}}
        operation = copy.deepcopy(template["post"])
        operation["operationId"] = f"coupon_batch_{action}"
        operation["parameters"] = [p for p in operation.get("parameters", []) if p.get("name") != "action"]
        operation.pop("description", None)
        body = {"schema": {"$ref": f"#/components/schemas/Batch{action.capitalize()}Request"}}
        operation["requestBody"] = {"content": {"application/json": body}, "required": True}
        paths[f"/api/v1/coupons/batch/{action}"] = {"post": operation}
