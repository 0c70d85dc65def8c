"""The rewards API's rule that its serializer cannot state, added to the OpenAPI schema (#19): the fields each
trigger takes (a drf-spectacular postprocessing hook, like ``coupons.api.schema``)."""
from __future__ import annotations

from typing import Any


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    _trigger(result.get("components", {}).get("schemas", {}).get("TriggerRequest"))
    return result


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
