"""What schemathesis may not expect of this API, and why each exclusion is honest (#8, #19).

Shared by tests/security/test_api_schemathesis.py and the CLI run of docs/API.md "Checking an integration"
(``schemathesis --config-file tests/security/schemathesis.toml run …``, whose ``hooks`` loads this module), so the
rules are written once.
"""
from __future__ import annotations

import schemathesis

# - U+0000 in a string: valid JSON, but PostgreSQL text cannot hold it, so every string field refuses it with a 400
#   naming the problem (core/api/views.py; tests/coupons/test_order_validation.py). Generated positive data leaves it
#   out; negative data still sends it.
# - positive_data_acceptance expects every schema-valid request to be accepted. A business refusal of a well-formed
#   request (422: sold out, not applicable, budget exhausted, the documented idempotency_key_reused, …) counts as
#   accepted, as do the library's defaults (2xx, 3xx, 401, 403, 404, 409, 429). Since #19 the schema states exactly
#   one claim target, the order id's place, each trigger's and each export kind's fields and the batch items per
#   action (<app>/api/schema.py); what OpenAPI 3.0 cannot state at all is written once below as a filter on generated
#   positive data (`meets_rules_openapi_cannot_state`): printable order texts (Python's str.isprintable, no regex
#   says it), a line total (a product of two fields), codes distinct after normalising, the order id equal in both
#   places when given twice, and an export's date_from not after its date_to. The check is off for one operation
#   alone, and every other check still runs on it: a partner upload's empty file reaches the view as no file at all
#   through schemathesis' WSGI transport (through a real multipart client it is accepted and fails as "empty":
#   tests/partners HOSTILE).
# - The identifier rule (core.identifiers, #17) on member_id, order_id, device_id and reference — trimmed, NFC, no
#   control or format characters, a member_id without '/', '\\', '.' or '..' — has no regex every tool reads; it is
#   a filter below. On a path member_id the check is off: schemathesis builds path parameters past the filter_case
#   hook (observed: no hook call saw the rejected values).
# - A distribution takes a quantity, or a batch to distribute whole (#15): a filter below.
# - Four eyes (#20): at or above the tenant's approval thresholds a distribution or a grant answers 202 with the
#   waiting request (`status` `awaiting_approval`) instead of 201, and reserves or issues nothing. Both answers are in
#   the schema; the run's tenant has both thresholds at APPROVAL_THRESHOLD, so generated requests meet both (2xx is
#   accepted). Approving needs a console user with the approver role: no API route decides, nothing to exclude.
APPROVAL_THRESHOLD = 2
ACCEPTED_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
POSITIVE_CHECK_OFF = {"POST /api/v1/partner-uploads",
                      "GET /api/v1/members/{member_id}/coupons", "GET /api/v1/members/{member_id}/points",
                      "DELETE /api/v1/events/{event_id}/participants/{member_id}",
                      "POST /api/v1/members/{member_id}/points/spend", "POST /api/v1/members/{member_id}/points/refund",
                      "POST /api/v1/members/{member_id}/points/exchange"}
ORDER_TEXTS = ("sku", "spu", "category", "shop")


def _text_ok(value) -> bool:
    """coupons.discounts.payload._text: printable (no control or separator characters)."""
    return not isinstance(value, str) or value.isprintable()


def _order_ok(order, order_id=None) -> bool:
    """An order line's total (unit_price × quantity) is at most 10^12; its texts are printable; the order id given
    at the top level and in the order is the same."""
    if not isinstance(order, dict):
        return True
    if order_id and order.get("order_id") and order["order_id"] != order_id:
        return False
    lines = order.get("items") if isinstance(order.get("items"), list) else []
    return _text_ok(order.get("order_id")) and all(
        not isinstance(line, dict) or (
            all(_text_ok(line.get(key)) for key in ORDER_TEXTS)
            and (not isinstance(line.get("unit_price"), int) or not isinstance(line.get("quantity"), int)
                 or line["unit_price"] * line["quantity"] <= 10**12))
        for line in lines)


def _codes_ok(codes) -> bool:
    """Codes ignore case, spaces and '-': after that they are distinct and at most 48 characters."""
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        return True
    normalised = [c.upper().replace(" ", "").replace("-", "") for c in codes]
    return len(set(normalised)) == len(normalised) and all(len(c) <= 48 for c in normalised)


IDENTIFIERS = {"member_id": True, "order_id": False, "device_id": False, "reference": False}  # name: path segment?


def _identifiers_ok(case) -> bool:
    """core.identifiers (#17): member_id, order_id, device_id, reference — in the body, the query or the path."""
    from core.identifiers import normalise_identifier

    body = case.body if isinstance(case.body, dict) else {}
    order = body.get("order") if isinstance(body.get("order"), dict) else {}
    values = [(name, source.get(name)) for source in (body, order, case.query or {}, case.path_parameters or {})
              for name in IDENTIFIERS]
    values += [("member_id", m) for m in body.get("member_ids") or [] if isinstance(body.get("member_ids"), list)]
    for item in body["items"] if isinstance(body.get("items"), list) else []:
        if isinstance(item, dict):
            values += [(name, item.get(name)) for name in IDENTIFIERS]
    for name, value in values:
        if not isinstance(value, str) or (value == "" and name in ("device_id", "order_id")):
            continue
        try:
            normalise_identifier(value, max_length=128, path_segment=IDENTIFIERS[name])
        except ValueError:
            return False
    return True


def meets_rules_openapi_cannot_state(ctx, case) -> bool:
    """For positive data only (negative data breaks the schema anyway, and must be rejected)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return True
    if not _identifiers_ok(case):
        return False
    if not isinstance(case.body, dict):
        return True
    body = case.body
    if case.operation.label == "POST /api/v1/distributions" and body.get("quantity") is None \
            and not body.get("batch"):
        return False
    if case.operation.label == "POST /api/v1/exports" and isinstance(body.get("date_from"), str) \
            and isinstance(body.get("date_to"), str) and body["date_from"] > body["date_to"]:
        return False
    items = body.get("items") if isinstance(body.get("items"), list) else [body]
    return all(not isinstance(item, dict) or _order_ok(item.get("order"), item.get("order_id")) for item in items) \
        and _codes_ok(body.get("codes"))


# Loaded by the CLI as its hooks module: the same filter for every schema it tests.
schemathesis.hook("filter_case")(meets_rules_openapi_cannot_state)
