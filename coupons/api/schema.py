"""The coupon API's rules that its serializers cannot state, added to the OpenAPI schema (#19).

A drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``; ``core.api.schema`` runs
after it and adds groups, summaries and non-blank patterns): exactly one claim target (``oneOf``), the order id at
the top level or in the order (``anyOf``), what an order's optional texts accept, and one batch path per action.
"""
from __future__ import annotations

import copy
from typing import Any

from core.api.schema import EMPTY_OR_NON_BLANK, NON_BLANK

BATCH_ACTIONS = ("lock", "release", "redeem", "refund", "revoke")


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.get("components", {}).get("schemas", {})
    _split_batch(result, schemas)
    _claim(schemas.get("ClaimRequest"))
    _revocation(schemas.get("RevocationRequest"))
    for name in ("LockRequest", "RedeemRequest"):
        _order_id_required(schemas.get(name))
    for name in ("CheckoutValidateRequest", "CheckoutBestRequest", "LockRequest", "RedeemRequest",
                 "BatchLockItemRequest", "BatchRedeemItemRequest"):
        _guest_has_no_tier(schemas.get(name))
    order = schemas.get("OrderRequest")
    if order:
        order["properties"]["order_id"]["pattern"] = EMPTY_OR_NON_BLANK
        order["properties"]["order_id"].pop("minLength", None)
    line = schemas.get("OrderLineRequest")
    if line:
        for key in ("spu", "category", "shop"):
            line["properties"][key]["pattern"] = EMPTY_OR_NON_BLANK
    return result


def _claim(component: dict[str, Any] | None) -> None:
    if component:
        component["oneOf"] = [{"required": [target]} for target in ("inventory", "promo_code", "code",
                                                                    "partner_code")]
        component["description"] = "`member_id` and exactly one of `inventory`, `promo_code`, `code`, `partner_code`."


def _revocation(component: dict[str, Any] | None) -> None:
    if component:
        component["oneOf"] = [{"required": ["inventory"], "not": {"required": ["policy"]}},
                              {"required": ["policy"], "not": {"required": ["inventory"]}}]
        component["description"] = "`member_ids`, `reason` and exactly one of `inventory`, `policy`."


def _guest_has_no_tier(component: dict[str, Any] | None) -> None:
    """A guest buyer with a tier is a 400 (issue #16): never both ``"buyer": "guest"`` and ``tier``."""
    if component and "buyer" in component.get("properties", {}):
        component["not"] = {"required": ["buyer", "tier"], "properties": {"buyer": {"enum": ["guest"]}}}


def _order_id_required(component: dict[str, Any] | None) -> None:
    if component:
        component["anyOf"] = [
            {"required": ["order_id"]},
            {"required": ["order"], "properties": {"order": {
                "required": ["order_id"], "properties": {"order_id": {"minLength": 1, "pattern": NON_BLANK}}}}},
        ]


BATCH_ITEM_FIELDS = {
    "lock": (["code", "member_id", "order_id", "order", "buyer", "tier"], ["code", "member_id", "order"]),
    "redeem": (["code", "member_id", "order_id", "order", "buyer", "tier"], ["code", "member_id", "order"]),
    "release": (["code", "order_id"], ["code", "order_id"]),
    "refund": (["code", "order_id", "full_refund"], ["code", "order_id"]),
    "revoke": (["code", "reason", "member_id"], ["code", "reason"]),
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
