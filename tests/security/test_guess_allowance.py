"""Issue #17 (R-RISK-4): guessing codes through every endpoint, seen from outside. Every endpoint that takes a code
reserves from the member's and device's failed-guess allowance *before* a code is evaluated; the allowance is a
sliding window; a burst of 200 parallel requests gets exactly the documented number through; a batch or validate call
evaluates at most what is left; the per-connection rate ignores a body ``ip``.

"Evaluated" is counted where every code path meets stored codes: the Bloom filter check
(``coupons.bloom_check.might_exist``, asked once per code by claims, lookups, lifecycle and checkout)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from core.api import limits
from coupons import bloom_check
from coupons.bloom import bloom_drop, bloom_rebuild
from coupons.services.issue import RequestContext, issue_from_pool
from tests import factories

LIMIT = 10  # COUPON_FAILED_GUESS_LIMIT's documented default


@pytest.fixture(autouse=True)
def small_filter_and_limits(settings, tenant):  # after the tenant: its filter is built below (one per tenant)
    settings.COUPON_FAILED_GUESS_LIMIT = LIMIT
    settings.COUPON_FAILED_GUESS_WINDOW_SECONDS = 3600
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = ""
    settings.COUPON_RATE_CODE_LOOKUP_IP = ""
    bloom_drop()
    bloom_rebuild(capacity=100_000, error_rate=1e-6)
    yield
    bloom_drop()


@pytest.fixture
def evaluated(monkeypatch):
    """Counts the codes that reach evaluation (thread-safe)."""
    seen: list[str] = []
    lock = threading.Lock()
    real = bloom_check.might_exist

    def spy(code: str, tenant_id: int | None = None) -> bool:
        with lock:
            seen.append(code)
        return real(code, tenant_id)

    monkeypatch.setattr(bloom_check, "might_exist", spy)
    return seen


def lock_body(member: str = "m-1", **extra):
    return {"member_id": member, "order_id": "o-1", "order": factories.order(), **extra}


def test_probe_2000_random_codes_over_lock_redeem_batch_validate_from_one_member_evaluate_at_most_the_allowance(
        api, evaluated):
    """The probe's figure: 2,000 random codes from one member over lock, redeem, batch and validate → ≤ 10 evaluated
    (exactly the allowance), every later request 429 or "not looked at"."""
    codes = iter(factories.random_codes(2000))
    statuses = []
    for _ in range(500):
        statuses.append(api.post(f"/api/v1/coupons/{next(codes)}/lock", lock_body(), format="json").status_code)
    for _ in range(500):
        statuses.append(api.post(f"/api/v1/coupons/{next(codes)}/redeem", lock_body(), format="json").status_code)
    for _ in range(5):
        items = [{"code": next(codes), "member_id": "m-1", "order_id": "o-1", "order": factories.order()}
                 for _ in range(100)]
        statuses.append(api.post("/api/v1/coupons/batch/lock", {"items": items}, format="json").status_code)
    for _ in range(25):
        body = {"member_id": "m-1", "codes": [next(codes) for _ in range(20)], "order": factories.order()}
        statuses.append(api.post("/api/v1/checkout/validate", body, format="json").status_code)
    assert len(evaluated) == LIMIT
    assert statuses[:LIMIT] == [404] * LIMIT
    assert set(statuses[LIMIT:]) == {429}


def test_every_code_taking_endpoint_refuses_a_member_past_the_allowance_before_evaluating(api, operator_api, tenant,
                                                                                         evaluated):
    """Claims by code / promo / partner code, GET coupon, lock, release, redeem, refund, revoke, batch/*, checkout
    validate and best: 429 with ``failed_guesses_member`` and no code evaluated — even a valid one."""
    _, codes = factories.make_pool(tenant, size=2)
    valid = issue_from_pool(inventory=codes[0].inventory, member_id="m-1", via="grant", ctx=RequestContext()).code
    for code in factories.random_codes(LIMIT):
        assert api.get(f"/api/v1/coupons/{code}", {"member_id": "m-1"}).status_code == 404
    evaluated.clear()
    order = factories.order()
    calls = {
        "claim code": lambda: api.post("/api/v1/claims", {"member_id": "m-1", "code": valid}, format="json"),
        "claim promo": lambda: api.post("/api/v1/claims", {"member_id": "m-1", "promo_code": "P1"}, format="json"),
        "claim partner": lambda: api.post("/api/v1/claims", {"member_id": "m-1", "partner_code": "X1"}, format="json"),
        "detail": lambda: api.get(f"/api/v1/coupons/{valid}", {"member_id": "m-1"}),
        "lock": lambda: api.post(f"/api/v1/coupons/{valid}/lock", lock_body(), format="json"),
        "release": lambda: api.post(f"/api/v1/coupons/{valid}/release", {"member_id": "m-1", "order_id": "o-1"},
                                    format="json"),
        "redeem": lambda: api.post(f"/api/v1/coupons/{valid}/redeem", lock_body(), format="json"),
        "refund": lambda: api.post(f"/api/v1/coupons/{valid}/refund", {"member_id": "m-1", "order_id": "o-1"},
                                   format="json"),
        "revoke": lambda: operator_api.post(f"/api/v1/coupons/{valid}/revoke", {"member_id": "m-1", "reason": "x"},
                                   format="json"),
        "batch": lambda: api.post("/api/v1/coupons/batch/redeem", {"items": [
            {"code": valid, "member_id": "m-1", "order_id": "o-1", "order": order}]}, format="json"),
        "validate": lambda: api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": [valid],
                                                                   "order": order}, format="json"),
        "best": lambda: api.post("/api/v1/checkout/best", {"member_id": "m-1", "order": order}, format="json"),
    }
    for name, call in calls.items():
        response = call()
        assert response.status_code == 429, (name, response.content)
        assert response.json()["details"]["reason"] == "failed_guesses_member", name
        assert int(response["Retry-After"]) >= 1
    assert evaluated == []


def test_a_burst_of_200_parallel_guesses_gets_exactly_the_allowance_through(transactional_db, settings, evaluated):
    """No overshoot: the allowance is reserved atomically before evaluation. With a check-then-count limiter
    (the earlier design) parallel requests all pass the check before any failure is counted."""
    tenant = factories.make_tenant()
    token = factories.make_client(tenant)[1]
    guesses = factories.random_codes(200)
    barrier = threading.Barrier(20)

    def one(chunk: list[str]) -> list[int]:
        client = factories.api_for(token)
        barrier.wait()
        try:
            return [client.post("/api/v1/claims", {"member_id": "m-burst", "code": code}, format="json").status_code
                    for code in chunk]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(20) as pool:
        statuses = [s for chunk in pool.map(one, [guesses[i::20] for i in range(20)]) for s in chunk]
    assert len(evaluated) == LIMIT
    assert statuses.count(404) == LIMIT and statuses.count(429) == 200 - LIMIT


def test_200_threads_reserving_at_once_share_exactly_the_allowance(settings):
    """The reservation itself under a 200-parallel burst (one Lua script per reservation)."""
    budget = limits.Budget(f"{settings.RATELIMIT_CACHE_PREFIX}race", LIMIT, 3600, "failed_guesses_member", True)
    barrier = threading.Barrier(200)

    def one(_: int) -> int:
        barrier.wait()
        try:
            return limits.reserve([budget], 1).granted
        except limits.RateLimited:
            return 0

    with ThreadPoolExecutor(200) as pool:
        granted = list(pool.map(one, range(200)))
    assert sum(granted) == LIMIT
    assert limits.used(budget) == LIMIT


def test_a_validate_call_with_more_codes_than_are_left_evaluates_only_what_is_left(api, evaluated):
    for code in factories.random_codes(LIMIT - 3):
        api.get(f"/api/v1/coupons/{code}", {"member_id": "m-1"})
    evaluated.clear()
    codes = factories.random_codes(20)
    body = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": codes, "order": factories.order()},
                    format="json").json()
    assert len(evaluated) == 3
    assert [r["reason"] for r in body["rejected"]] == ["not_found"] * 3 + ["rate_limited"] * 17
    assert body["valid"] is False


def test_a_batch_with_200_codes_evaluates_only_what_is_left(api, evaluated):
    items = [{"code": code, "member_id": "m-1", "order_id": "o-1", "order": factories.order()}
             for code in factories.random_codes(200)]
    results = api.post("/api/v1/coupons/batch/lock", {"items": items}, format="json").json()["results"]
    assert len(evaluated) == LIMIT
    assert [r["error"]["code"] for r in results] == ["not_found"] * LIMIT + ["rate_limited"] * (200 - LIMIT)


def test_the_window_slides_instead_of_doubling_at_a_bucket_edge(api, monkeypatch):
    """Ten failures just before a minute/hour boundary do not come back just after it (fixed buckets would);
    they come back one window after they were made."""
    clock = {"ms": 3_600_000 * 1000 - 100}  # 0.1 s before an hour boundary
    monkeypatch.setattr(limits, "now_ms", lambda: clock["ms"])
    for code in factories.random_codes(LIMIT):
        assert api.get(f"/api/v1/coupons/{code}", {"member_id": "m-1"}).status_code == 404
    clock["ms"] += 200  # across the boundary
    refused = api.get(f"/api/v1/coupons/{factories.random_codes(1)[0]}", {"member_id": "m-1"})
    assert refused.status_code == 429
    assert 3590 <= int(refused["Retry-After"]) <= 3600
    clock["ms"] += 3_600_000 - 300  # still inside the window of the first failures
    assert api.get(f"/api/v1/coupons/{factories.random_codes(1)[0]}", {"member_id": "m-1"}).status_code == 429
    clock["ms"] += 200  # one window after them
    assert api.get(f"/api/v1/coupons/{factories.random_codes(1)[0]}", {"member_id": "m-1"}).status_code == 404


def test_lookups_that_find_the_members_coupon_do_not_spend_the_allowance(api, tenant):
    _, codes = factories.make_pool(tenant, size=1)
    valid = issue_from_pool(inventory=codes[0].inventory, member_id="m-1", via="grant", ctx=RequestContext()).code
    for _ in range(3 * LIMIT):
        assert api.get(f"/api/v1/coupons/{valid}", {"member_id": "m-1"}).status_code == 200


def test_not_owner_answers_cost_a_failed_guess(api, tenant):
    """A 403 not_owner (the contract keeps it for lock/redeem) says the code exists: it costs a guess like not_found."""
    _, codes = factories.make_pool(tenant, size=1)
    someone_elses = issue_from_pool(inventory=codes[0].inventory, member_id="m-owner", via="grant",
                                    ctx=RequestContext()).code
    answers = [api.post(f"/api/v1/coupons/{someone_elses}/redeem", lock_body("m-thief"), format="json").status_code
               for _ in range(LIMIT + 1)]
    assert answers == [403] * LIMIT + [429]


def test_the_rotating_body_ip_probe_stays_within_the_per_connection_limit(settings, api, evaluated):
    """The probe's second figure: 2,000 random codes with a different body ``ip`` (and member and device) each time
    → evaluated ≤ the per-connection limit."""
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    settings.COUPON_RATE_CODE_LOOKUP_IP = "30/m"
    for i, code in enumerate(factories.random_codes(2000)):
        api.post("/api/v1/claims", {"member_id": f"m-{i}", "device_id": f"d-{i}", "code": code,
                                    "ip": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"}, format="json")
    assert len(evaluated) == 30


def test_behind_trusted_proxies_the_forwarded_address_is_the_connection(settings, api):
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    settings.COUPON_RATE_CODE_LOOKUP_IP = "2/m"
    settings.COUPON_TRUSTED_PROXY_COUNT = 1
    code = factories.random_codes(1)[0]

    def via(client_address: str) -> int:
        return api.get(f"/api/v1/coupons/{code}", HTTP_X_FORWARDED_FOR=f"{client_address}",
                       REMOTE_ADDR="10.0.0.1").status_code

    assert [via("198.51.100.1") for _ in range(3)] == [404, 404, 429]
    assert via("198.51.100.2") == 404  # another client behind the same proxy
    settings.COUPON_TRUSTED_PROXY_COUNT = 0  # no proxy trusted: the header is ignored, the proxy's address counts
    assert [via(f"198.51.100.{i}") for i in range(3, 6)] == [404, 404, 429]


def test_a_client_rotating_member_and_device_ids_runs_out_of_failed_guesses(settings, api, tenant, evaluated):
    """COUPON_FAILED_GUESS_CLIENT_LIMIT: new ids on every request do not buy new guesses for the client, while lookups
    that find a code cost nothing."""
    settings.COUPON_FAILED_GUESS_CLIENT_LIMIT = 25
    _, codes = factories.make_pool(tenant, size=1)
    valid = issue_from_pool(inventory=codes[0].inventory, member_id="m-own", via="grant", ctx=RequestContext()).code
    for _ in range(40):
        assert api.get(f"/api/v1/coupons/{valid}", {"member_id": "m-own"}).status_code == 200
    evaluated.clear()
    answers = [api.get(f"/api/v1/coupons/{code}", {"member_id": f"m-{i}", "device_id": f"d-{i}"})
               for i, code in enumerate(factories.random_codes(60))]
    assert [a.status_code for a in answers] == [404] * 25 + [429] * 35
    assert answers[-1].json()["details"]["reason"] == "failed_guesses_client"
    assert len(evaluated) == 25
