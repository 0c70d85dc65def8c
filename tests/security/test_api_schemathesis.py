"""Issue #8 (must show): schemathesis against /api/schema/ — every operation with positive and negative (schema-
violating) data, all default checks (no server errors, status codes, content types, response schemas and headers,
negative data rejected, positive data accepted, ...), then the stateful phase — with a bounded number of examples.
API.md: "the OpenAPI 3 schema served at /api/schema/ is the full reference and must match the code"; "never a 500
for bad input".

Runs through the Django WSGI application in the test's transaction, with an operator token of a tenant that has an
inventory, a coupon and an event, so generated requests reach the handlers and not only the 401 path.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests import factories

MAX_EXAMPLES = 6  # per operation and generation mode; keeps the whole file within ~3 minutes on 2 cores
STATEFUL_STEPS = 6


@pytest.fixture
def api_token(tenant, settings):
    # The generated requests guess codes on purpose; the anti-enumeration limits are tested elsewhere.
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = settings.COUPON_RATE_CODE_LOOKUP_IP = ""
    factories.make_pool(tenant, size=3)
    factories.make_event(tenant)
    return factories.make_client(tenant, scope="operator")[1]


@pytest.fixture
def keep_connection():
    """Django closes the database connection when a request finishes; the test client switches that off, and so must
    a test that calls the WSGI application directly, or the test's transaction would be gone after one request."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Requests a schema cannot tell from good ones, and why each exclusion is honest:
# - U+0000 in a string: valid JSON, but PostgreSQL text cannot hold it, so every string field refuses it with a 400
#   naming the problem (core/api/views.py; tests/coupons/test_order_validation.py). Generated positive data leaves it
#   out; negative data still sends it.
# - positive_data_acceptance expects every schema-valid request to be accepted. A business refusal of a well-formed
#   request (422: sold out, not applicable, budget exhausted, …) counts as accepted, as do the library's defaults
#   (2xx, 3xx, 401, 403, 404, 409, 429). Some rules cannot be stated in OpenAPI 3.0 as drf-spectacular writes it;
#   the API answers a correct 400 naming the problem to requests that break them. Positive data is filtered to those
#   rules (`meets_rules_openapi_cannot_state` below: each rule written once, here), so the check runs on every
#   operation but five. For these alone it is off, and every other check still runs on them: an export allows the
#   filters of its kind only and a batch item needs the fields of the action in the path (both depend on values the
#   filter cannot see together with the body); a path member_id breaking the identifier rule (see the set); and a
#   partner upload's empty file reaches the view as no file at all
#   through schemathesis' WSGI transport (through a real multipart client it is accepted and fails as "empty":
#   tests/partners HOSTILE).
ACCEPTED_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
POSITIVE_CHECK_OFF = {"POST /api/v1/exports", "POST /api/v1/coupons/batch/{action}", "POST /api/v1/partner-uploads",
                      # The identifier rule (core.identifiers, issue #17) on a path member_id: schemathesis builds
                      # path parameters past the filter_case hook (observed: no hook call saw the rejected values),
                      # and no regex dialect both tools read can say "no Unicode format character" exactly.
                      "GET /api/v1/members/{member_id}/coupons", "GET /api/v1/members/{member_id}/points"}
CLAIM_TARGETS = ("inventory", "promo_code", "code", "partner_code")
ORDER_TEXTS = ("sku", "spu", "category", "shop")


def _text_ok(value) -> bool:
    """coupons.discounts.payload._text: not blank, printable (no control or separator characters)."""
    return not isinstance(value, str) or (bool(value.strip()) and value.isprintable())


def _order_ok(order) -> bool:
    """An order line's total (unit_price × quantity) is at most 10^12; its texts are printable."""
    if not isinstance(order, dict):
        return True
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
    """core.identifiers (issue #17): member_id, order_id, device_id, reference — in the body, the query or the path —
    are trimmed, NFC, without control or format characters, member_id without '/', '\\', '.' or '..'. (An OpenAPI
    pattern cannot say "no Unicode format character" in a regex dialect every tool reads.)"""
    from core.identifiers import normalise_identifier

    body = case.body if isinstance(case.body, dict) else {}
    order = body.get("order") if isinstance(body.get("order"), dict) else {}
    values = [(name, source.get(name)) for source in (body, order, case.query or {}, case.path_parameters or {})
              for name in IDENTIFIERS]
    values += [("member_id", m) for m in body.get("member_ids") or [] if isinstance(body.get("member_ids"), list)]
    for name, value in values:
        if not isinstance(value, str) or (value == "" and name == "device_id"):
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
    body, label = case.body, case.operation.label
    if label == "POST /api/v1/claims" and sum(1 for key in CLAIM_TARGETS if body.get(key)) != 1:
        return False  # exactly one of inventory / promo_code / code / partner_code
    if label == "POST /api/v1/distributions" and body.get("quantity") is None and not body.get("batch"):
        return False  # a quantity, or a batch to distribute whole
    if label == "POST /api/v1/rewards/triggers":
        trigger = body.get("trigger")
        if ("amount" in body) != (trigger == "purchase_confirmed") or (body.get("has_image") and trigger != "review"):
            return False  # amount for purchase_confirmed only (and required there); has_image for review only
    return _order_ok(body.get("order")) and _codes_ok(body.get("codes"))


@pytest.fixture
def api_schema(db, api_token, keep_connection):
    from schemathesis.config._checks import PositiveDataAcceptanceConfig

    from coupon_project.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    schema.config.generation.update(max_examples=MAX_EXAMPLES, allow_x00=False)
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(expected_statuses=ACCEPTED_STATUSES)
    schema.config.headers = {"Authorization": f"Bearer {api_token}"}
    schema.hook("filter_case")(meets_rules_openapi_cannot_state)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


def excluded_checks(case):
    from schemathesis.specs.openapi import checks

    return [checks.positive_data_acceptance] if case.operation.label in POSITIVE_CHECK_OFF else []


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, api_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {api_token}"}, excluded_checks=excluded_checks(case))


def test_api_stateful_phase(api_schema, api_token):
    """The stateful phase: sequences of calls that follow the links schemathesis derives between operations."""
    from hypothesis import settings as hypothesis_settings

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):  # type: ignore[no-untyped-def]
            return {"headers": {"Authorization": f"Bearer {api_token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):  # type: ignore[no-untyped-def]
            case.validate_response(response, additional_checks=additional_checks,
                                   excluded_checks=excluded_checks(case))

    Machine.run(settings=hypothesis_settings(max_examples=3, stateful_step_count=STATEFUL_STEPS,
                                             deadline=None, derandomize=True,
                                             suppress_health_check=list(HealthCheck)))
