"""Issue #8 and #19 (must show): schemathesis against /api/schema/ — every operation with positive and negative
(schema-violating) data, every check schemathesis has (``ALL_CHECKS``: no server errors, status codes, content types,
response schemas and headers, negative data rejected, positive data accepted, missing required headers, unsupported
methods, Allow headers, ignored auth, use-after-free, resource availability, object-level authorization), the
coverage phase, then the stateful phase — once with a member token and once with an operator token, with a bounded
number of examples. docs/API.md: "the OpenAPI 3 schema served at /api/schema/ is the full reference and must match
the code"; "never a 500 for bad input".

Runs through the Django WSGI application in the test's transaction, with a tenant that has an inventory, a coupon and
an event, so generated requests reach the handlers and not only the 401 path. The same run against a served app with
the schemathesis CLI (``--checks all``) is in docs/API.md "Checking an integration".
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests import factories
from tests.security import schemathesis_rules as rules

MAX_EXAMPLES = 6  # per operation and generation mode; keeps the whole file within minutes on 2 cores
STATEFUL_STEPS = 6
SCOPES = ["member", "operator"]


@pytest.fixture(params=SCOPES)
def api_token(request, tenant, settings):
    # The generated requests guess codes on purpose; the anti-enumeration limits are tested elsewhere.
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = settings.COUPON_RATE_CODE_LOOKUP_IP = ""
    factories.make_pool(tenant, size=3)
    factories.make_event(tenant)
    # Four eyes (#20): large distributions and grants answer 202 awaiting_approval; the schema states that answer.
    tenant.distribution_approval_threshold = tenant.grant_approval_threshold = rules.APPROVAL_THRESHOLD
    tenant.save(update_fields=["distribution_approval_threshold", "grant_approval_threshold"])
    return factories.make_client(tenant, scope=request.param)[1]


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


# The exclusions and the positive-data filter live in tests/security/schemathesis_rules.py, shared with the CLI run
# of docs/API.md "Checking an integration" (each one's reason is written there).
ACCEPTED_STATUSES = rules.ACCEPTED_STATUSES
POSITIVE_CHECK_OFF = rules.POSITIVE_CHECK_OFF
meets_rules_openapi_cannot_state = rules.meets_rules_openapi_cannot_state


def all_checks():
    """Every check schemathesis registers (what the CLI's ``--checks all`` runs)."""
    from schemathesis.checks import CHECKS, load_all_checks

    load_all_checks()
    return list(CHECKS.get_all())


@pytest.fixture
def api_schema(db, api_token, keep_connection):
    from schemathesis.config._checks import PositiveDataAcceptanceConfig

    from coupon_project.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    schema.config.generation.update(max_examples=MAX_EXAMPLES, allow_x00=False)
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(expected_statuses=ACCEPTED_STATUSES)
    # The token goes with each call (below), not into the configuration: schemathesis' ignored_auth check re-sends a
    # request with a broken token, and configured headers would put the valid one back.
    schema.hook("filter_case")(meets_rules_openapi_cannot_state)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


def excluded_checks(case):
    from schemathesis.specs.openapi import checks

    return [checks.positive_data_acceptance] if case.operation.label in POSITIVE_CHECK_OFF else []


def test_every_check_schemathesis_has_runs():
    """The list below is what the tests run; a check a schemathesis upgrade adds joins it, one it drops fails here."""
    assert sorted(c.__name__ for c in all_checks()) == sorted([
        "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
        "response_schema_conformance", "negative_data_rejection", "positive_data_acceptance",
        "missing_required_header", "unsupported_method", "allow_header_conformance", "use_after_free",
        "ensure_resource_availability", "ignored_auth", "object_level_authorization"])


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, api_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {api_token}"}, checks=all_checks(),
                           excluded_checks=excluded_checks(case))


def test_api_stateful_phase(api_schema, api_token):
    """The stateful phase: sequences of calls that follow the links schemathesis derives between operations."""
    from hypothesis import settings as hypothesis_settings

    class Machine(api_schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {api_token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # The token is named as explicit, so ignored_auth probes it (and does not take it for a generated one).
            case.validate_response(response, checks=all_checks(), additional_checks=additional_checks,
                                   excluded_checks=excluded_checks(case),
                                   headers={"Authorization": f"Bearer {api_token}"})

    Machine.run(settings=hypothesis_settings(max_examples=3, stateful_step_count=STATEFUL_STEPS,
                                             deadline=None, derandomize=True,
                                             suppress_health_check=list(HealthCheck)))
