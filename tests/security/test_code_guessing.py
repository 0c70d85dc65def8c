"""R-RISK-4 anti-enumeration: code lookups are rate limited per API client and per IP, failed guesses are limited per
member and per device, unknown codes are answered from the Bloom filter without a database query, and another
tenant's code answers exactly like a code that does not exist (R-TEN-1)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from coupons.bloom import bloom_drop, bloom_rebuild
from coupons.bloom_check import might_exist
from coupons.services.issue import RequestContext, issue_from_pool
from tests import factories

GUESS_LIMIT = 25


@pytest.fixture(autouse=True)
def small_filter_and_limits(settings, tenant, other_tenant):
    """Bloom filters of their own — one per tenant, so built once both tenants exist (dropped after) — and limits
    set by the test rather than the environment."""
    settings.BLOOM_CAPACITY = 100_000
    settings.BLOOM_ERROR_RATE = 1e-6
    settings.COUPON_FAILED_GUESS_LIMIT = GUESS_LIMIT
    settings.COUPON_FAILED_GUESS_WINDOW_SECONDS = 3600
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = ""
    settings.COUPON_RATE_CODE_LOOKUP_IP = ""
    bloom_drop()
    bloom_rebuild(capacity=100_000, error_rate=1e-6)
    yield
    bloom_drop()


@pytest.fixture
def pool(tenant):
    return factories.make_pool(tenant, size=5)


def rejected_guesses(n: int, tenant) -> list[str]:
    """n random 10-character codes that the tenant's Bloom filter certainly rejects."""
    guesses: list[str] = []
    while len(guesses) < n:
        code = factories.random_code()
        if not might_exist(code, tenant.pk):
            guesses.append(code)
    return guesses


def claim(api, code: str, member: str = "m-1", device: str = "d-1", **extra):
    return api.post("/api/v1/claims", {"member_id": member, "device_id": device, "code": code, **extra},
                    format="json")


def code_queries(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "coupons_couponcode" in q["sql"]]


def test_2000_random_guesses_from_one_member_and_device_are_limited_after_the_configured_number(api, pool):
    """R-RISK-4 (must show): 2,000 random guesses → 404 for the first COUPON_FAILED_GUESS_LIMIT, 429 after; none of
    the guesses the Bloom filter rejects touches coupons_couponcode."""
    _, codes = pool
    guesses = rejected_guesses(2000, codes[0].tenant)
    with CaptureQueriesContext(connection) as ctx:
        answers = [claim(api, code) for code in guesses]
    assert code_queries(ctx) == []
    statuses = [r.status_code for r in answers]
    assert statuses[:GUESS_LIMIT] == [404] * GUESS_LIMIT
    assert statuses[GUESS_LIMIT:] == [429] * (2000 - GUESS_LIMIT)
    assert {r.json()["code"] for r in answers[:GUESS_LIMIT]} == {"not_found"}
    limited = answers[-1]
    assert limited.json()["code"] == "rate_limited"
    assert limited.json()["details"]["reason"] == "failed_guesses_member"
    assert 1 <= int(limited["Retry-After"]) <= 3600
    assert limited.json()["details"]["retry_after"] == int(limited["Retry-After"])

    # Even a valid code is refused now, for the member and, on another member, for the same device.
    valid = claim(api, codes[0].code)
    assert valid.status_code == 429
    other_member_same_device = claim(api, codes[0].code, member="m-2")
    assert other_member_same_device.status_code == 429
    assert other_member_same_device.json()["details"]["reason"] == "failed_guesses_device"
    # Someone else on another device is not affected, and the refused claims changed nothing.
    assert claim(api, codes[0].code, member="m-3", device="d-3").status_code == 201


def test_guesses_count_across_code_taking_endpoints(api, tenant):
    """R-RISK-4: checkout validation (each unknown code), coupon lookup and promo/partner codes count as guesses."""
    order = factories.order()
    unknown = rejected_guesses(GUESS_LIMIT, tenant)
    for chunk in (unknown[:11], unknown[11:GUESS_LIMIT - 3]):  # at most 20 codes per request
        body = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "device_id": "d-1", "codes": chunk,
                                                      "order": order}, format="json")
        assert body.status_code == 200
        assert [r["reason"] for r in body.json()["rejected"]] == ["not_found"] * len(chunk)
    assert api.post("/api/v1/claims", {"member_id": "m-1", "promo_code": "NOSUCHPROMO"},
                    format="json").status_code == 404
    assert api.post("/api/v1/claims", {"member_id": "m-1", "partner_code": "NOSUCHPARTNER"},
                    format="json").status_code == 404
    assert api.get(f"/api/v1/coupons/{unknown[-1]}", {"member_id": "m-1"}).status_code == 404
    refused = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": unknown[:1], "order": order},
                       format="json")
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"


def test_unknown_codes_on_lifecycle_and_lookup_paths_never_reach_the_database(api, operator_api, tenant):
    """R-RISK-4: every path that takes a coupon code asks the Bloom filter first."""
    code = rejected_guesses(1, tenant)[0]
    order = factories.order()
    calls = [
        lambda: api.get(f"/api/v1/coupons/{code}"),
        lambda: api.post(f"/api/v1/coupons/{code}/lock", {"member_id": "m-9", "order_id": "o-1", "order": order},
                         format="json"),
        lambda: api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-9", "order_id": "o-1", "order": order},
                         format="json"),
        lambda: api.post(f"/api/v1/coupons/{code}/release", {"order_id": "o-1"}, format="json"),
        lambda: api.post(f"/api/v1/coupons/{code}/refund", {"order_id": "o-1"}, format="json"),
        lambda: operator_api.post(f"/api/v1/coupons/{code}/revoke", {"reason": "test"}, format="json"),
        lambda: api.post("/api/v1/checkout/validate", {"member_id": "m-9", "codes": [code], "order": order},
                         format="json"),
        lambda: claim(api, code, member="m-9"),
    ]
    for call in calls:
        with CaptureQueriesContext(connection) as ctx:
            response = call()
        assert response.status_code in (200, 404), response.content
        assert code_queries(ctx) == [], response.request["PATH_INFO"]


def test_a_foreign_tenants_code_answers_exactly_like_a_missing_one(api, operator_api, tenant, other_tenant):
    """R-TEN-1 / R-RISK-4: same status, error code, message and details for another tenant's code as for one that
    does not exist — on claim, lookup and every lifecycle action — and it counts as a failed guess."""
    _, foreign_codes = factories.make_pool(other_tenant, size=3)
    foreign_issued = issue_from_pool(inventory=foreign_codes[0].inventory, member_id="m-1", via="grant",
                                     ctx=RequestContext()).code
    missing = rejected_guesses(1, tenant)[0]
    order = factories.order()

    def answers(code: str, member: str) -> list[tuple[int, dict]]:
        results = [
            claim(api, foreign_codes[1].code if code == "FOREIGN_AVAILABLE" else code, member=member, device=member),
            api.get(f"/api/v1/coupons/{code}"),
            api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-1", "order_id": "o-1", "order": order},
                     format="json"),
            operator_api.post(f"/api/v1/coupons/{code}/revoke", {"reason": "x"}, format="json"),
        ]
        return [(r.status_code, r.json()) for r in results]

    assert answers(foreign_issued, "m-a") == answers(missing, "m-b")
    assert answers("FOREIGN_AVAILABLE", "m-c")[0] == answers(missing, "m-d")[0]
    body = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": [foreign_issued, missing],
                                                  "order": order}, format="json").json()
    assert [r["reason"] for r in body["rejected"]] == ["not_found", "not_found"]


def test_a_foreign_tenants_code_is_refused_by_the_filter_like_an_unknown_one(api, tenant, other_tenant):
    """Issue #17/#23 (equal cost): each tenant has its own filter, so another tenant's code is refused on the same
    path as an unknown one — no database query — on lookup, lifecycle, checkout and claim; and so after a rebuild
    from the database (generation's and rebuild's entries, not only the factories')."""
    _, foreign_codes = factories.make_pool(other_tenant, size=2)
    order = factories.order()
    for rebuilt in (False, True):
        if rebuilt:
            bloom_rebuild(capacity=100_000, error_rate=1e-6)
        code = foreign_codes[0].code
        assert not might_exist(code, tenant.pk)
        calls = [
            lambda code=code: api.get(f"/api/v1/coupons/{code}"),
            lambda code=code: api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-9", "order_id": "o-1",
                                                                           "order": order}, format="json"),
            lambda code=code: api.post("/api/v1/checkout/validate",
                                       {"member_id": "m-9", "codes": [code], "order": order}, format="json"),
            lambda code=code: claim(api, code, member="m-8", device="d-8"),
        ]
        for call in calls:
            with CaptureQueriesContext(connection) as ctx:
                response = call()
            assert response.status_code in (200, 404), response.content
            assert code_queries(ctx) == [], (rebuilt, response.request["PATH_INFO"])
        assert might_exist(code, other_tenant.pk)  # its own tenant's filter knows it


def test_code_lookups_are_rate_limited_per_api_client(settings, tenant, pool):
    """R-RISK-4: past COUPON_RATE_CODE_LOOKUP_CLIENT every code lookup of the client answers 429 with Retry-After;
    claims by inventory are not code lookups; another client of the tenant has its own budget."""
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = "5/m"
    inventory, _ = pool
    first = factories.make_api(tenant)
    guesses = rejected_guesses(6, tenant)
    answers = [claim(first, code, member=f"m-{i}", device=f"d-{i}", ip=f"10.0.0.{i}")
               for i, code in enumerate(guesses)]
    assert [r.status_code for r in answers] == [404] * 5 + [429]
    assert answers[-1].json()["details"]["reason"] == "client_rate"
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    assert first.post("/api/v1/claims", {"member_id": "m-x", "inventory": inventory.public_id},
                      format="json").status_code == 201
    second = factories.make_api(tenant)
    assert claim(second, guesses[0]).status_code == 404


def test_code_lookups_are_rate_limited_per_connection_not_per_body_ip(settings, api, tenant):
    """R-RISK-4 (issue #17): the per-IP rate keys on the connection's address; the member's ``ip`` in the body is
    risk context only, so rotating it does not buy more lookups."""
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    settings.COUPON_RATE_CODE_LOOKUP_IP = "3/m"
    guesses = rejected_guesses(6, tenant)
    rotating = [claim(api, code, member=f"m-{i}", device=f"d-{i}", ip=f"198.51.100.{i}").status_code
                for i, code in enumerate(guesses[:4])]
    assert rotating == [404, 404, 404, 429]
    limited = claim(api, guesses[4], member="n-9", ip="203.0.113.9")
    assert limited.status_code == 429 and limited.json()["details"]["reason"] == "ip_rate"
    # Another connection address has its own budget.
    assert api.post("/api/v1/claims", {"member_id": "n-8", "code": guesses[5]}, format="json",
                    REMOTE_ADDR="192.0.2.44").status_code == 404


def test_the_counters_live_in_the_shared_cache(settings, api, tenant):
    """R-RISK-4: with REDIS_URL set the counters are in Redis, so every process (gunicorn worker) shares them."""
    from django.core.cache import caches

    cache = caches["default"]

    if not settings.USE_REDIS:
        pytest.skip("runs against Redis")
    assert type(cache).__module__.startswith("django_redis")
    from core.redis import client as redis_client

    claim(api, rejected_guesses(1, tenant)[0])
    assert redis_client().keys(f"{settings.RATELIMIT_CACHE_PREFIX}sec:*")


def test_while_redis_does_not_answer_the_allowance_still_holds_per_process_and_lookups_are_answered(api, pool):
    """#17 × #18: a Redis outage neither stops redemptions (the limiter's windows move into the process) nor waives
    the failed-guess allowance (it is counted there): the first COUPON_FAILED_GUESS_LIMIT unknown codes → 404, then
    429 — not 503."""
    from core import redis as core_redis

    guesses = rejected_guesses(GUESS_LIMIT + 3, pool[1][0].tenant)
    core_redis.mark_down(RuntimeError("test: Redis frozen"))
    try:
        answers = [api.post(f"/api/v1/coupons/{code}/lock", {"member_id": "m-out", "order_id": "o-1",
                                                             "order": factories.order()}, format="json")
                   for code in guesses]
    finally:
        core_redis.mark_up()
    statuses = [r.status_code for r in answers]
    assert statuses == [404] * GUESS_LIMIT + [429] * 3, [r.json() for r in answers if r.status_code not in (404, 429)]
