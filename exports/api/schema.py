"""The export API's rules that its serializer cannot state, added to the OpenAPI schema (#19): the filters each
kind takes, no other field, and the days the server can place (a drf-spectacular postprocessing hook, like
``coupons.api.schema``)."""
from __future__ import annotations

from typing import Any
from exports.selectors import ALL_FILTERS, KIND_FILTERS, REQUIRED_FILTERS

# Export date filters: the days the server can place in any time zone (exports.selectors.MIN_DATE / MAX_DATE).
DATE_RANGE_PATTERN = "^(19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    _export(result.get("components", {}).get("schemas", {}).get("ExportRequestRequest"))
    return result


def _export(component: dict[str, Any] | None) -> None:
    if not component:
        return

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
