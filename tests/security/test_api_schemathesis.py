"""Issue #8 (must show): schemathesis against /api/schema/ — every operation with positive and negative (schema-
violating) data, all default checks (no server errors, status codes, content types, response schemas and headers,
negative data rejected, ...), then the stateful phase — with a bounded number of examples. API.md: "the OpenAPI 3
schema served at /api/schema/ is the full reference and must match the code"; "never a 500 for bad input".

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


@pytest.fixture
def api_schema(db, api_token, keep_connection):
    from coupon_project.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    schema.config.generation.update(max_examples=MAX_EXAMPLES)
    schema.config.headers = {"Authorization": f"Bearer {api_token}"}
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


# The one default check left out, and why: positive_data_acceptance expects every schema-valid request to be accepted,
# but several operations have rules OpenAPI 3.0 (as drf-spectacular writes it) cannot state — "exactly one of
# inventory / promo_code / code / partner_code", export filters allowed per kind, an order's lines validated by the
# discount engine. Those requests get a correct 400 naming the problem, which that check would count as a failure.
# Every other default check runs, negative data included: no 5xx, documented status codes, content types, headers
# and response bodies that match the schema, schema-violating requests rejected.
EXCLUDED_CHECKS = ["positive_data_acceptance"]


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, api_token):
    from schemathesis.specs.openapi import checks

    case.call_and_validate(headers={"Authorization": f"Bearer {api_token}"},
                           excluded_checks=[getattr(checks, name) for name in EXCLUDED_CHECKS])


def test_api_stateful_phase(api_schema, api_token):
    """The stateful phase: sequences of calls that follow the links schemathesis derives between operations."""
    from hypothesis import settings as hypothesis_settings

    from schemathesis.specs.openapi import checks

    excluded = [getattr(checks, name) for name in EXCLUDED_CHECKS]

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):  # type: ignore[no-untyped-def]
            return {"headers": {"Authorization": f"Bearer {api_token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):  # type: ignore[no-untyped-def]
            case.validate_response(response, additional_checks=additional_checks, excluded_checks=excluded)

    Machine.run(settings=hypothesis_settings(max_examples=3, stateful_step_count=STATEFUL_STEPS,
                                             deadline=None, derandomize=True,
                                             suppress_health_check=list(HealthCheck)))
