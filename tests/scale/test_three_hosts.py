"""Issue #23, stateless app tier: three gunicorn hosts behind Debian's HAProxy (round-robin) and two RQ worker hosts,
no two sharing a local file (tests/scale/hosts.py). Over HTTP through the balancer:

(a) claims: 150 claims of 50 members (limit 2 each) on a pool of 60 issue exactly 60, nobody above the limit; one
    member's 40 simultaneous claims with a limit of 1 get exactly one;
(b) redeems: each code redeemed 30 times at once, spread over the three hosts, is redeemed exactly once;
(c) a generation queued by the service runs on a worker host: exactly N distinct codes, and the generated codes are
    claimed and redeemed through the web hosts (their Bloom filter is the shared one in Redis);
(d) caches: a revoked API token and a switched-off inventory are refused by every web host within the bound
    docs/design/hosts.md states (COUPON_TOKEN_CACHE_SECONDS, COUPON_CONFIG_CACHE_SECONDS), although every host had
    them cached;
(e) files: a partner upload sent through the balancer is read by a worker host, and an export written by a worker host
    is downloaded from each web host directly (through the shared file storage, DJANGO_MEDIA_ROOT).

Every test asserts that the balancer really spread its requests over the three hosts (``X-Served-By``).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from core.audit import Actor
from coupons.models import CouponBatch, CouponCode, CouponInventory
from tests import factories
from tests.coupons.concurrency import race
from tests.scale.hosts import HAPROXY, Caller, Fleet, database_url, poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("hosts")]

HOSTS = {"web1", "web2", "web3"}
# The bounds the hosts run with: the production defaults (coupon_project/settings.py), stated in docs/design/hosts.md.
TOKEN_CACHE_SECONDS = 5
CONFIG_CACHE_SECONDS = 2
# What a loaded two-core machine may add to a bound before the refusal is seen (a poll interval, a slow answer).
SLACK_SECONDS = 3


@pytest.fixture(scope="module")
def fleet(django_db_setup, django_db_blocker, tmp_path_factory):
    if HAPROXY is None:
        pytest.fail("HAProxy is not installed and could not be installed (Debian's haproxy package: "
                    "apt-get install -y haproxy, as scripts/ensure-services.sh does)")  # a gap is never a skip
    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    built = Fleet(root=tmp_path_factory.mktemp("three-hosts"), db_url=db_url, env_extra={
        "COUPON_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
        "COUPON_CONFIG_CACHE_SECONDS": str(CONFIG_CACHE_SECONDS)})
    try:
        started = time.monotonic()
        built.start()
        print(f"three web hosts, two worker hosts and HAProxy up in {time.monotonic() - started:.1f} s")
        yield built
    finally:
        built.stop()


@pytest.fixture
def on_fleet(fleet, settings, monkeypatch):
    """This process's Redis (Bloom filter, limits) is the fleet's; jobs it queues go to the fleet's workers."""
    import django_rq.settings

    from core import redis as core_redis
    from coupons import bloom

    def forget() -> None:
        core_redis.reset_clients()
        bloom._redis_clients.clear()
        bloom._stores.clear()
        bloom._params_cache.clear()

    settings.REDIS_URL = fleet.redis.url()
    for name in list(django_rq.settings.QUEUES):
        monkeypatch.setitem(django_rq.settings.QUEUES, name,
                            {**django_rq.settings.QUEUES[name], "URL": fleet.redis.url()})
    forget()
    yield fleet
    forget()


def spread_over_all_hosts(served_by: list[str]) -> Counter:
    counts = Counter(served_by)
    assert set(counts) == HOSTS, counts
    return counts


# --- (a) claims ----------------------------------------------------------------------------------------------------

def test_claims_through_three_hosts_issue_exactly_the_pool_and_never_above_a_members_limit(on_fleet):
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=60, per_member_limit=2)
    caller = Caller(on_fleet.url, factories.make_client(tenant)[1])
    members = [f"m-{i}" for i in range(50) for _ in range(3)]  # 150 claims, 3 per member, limit 2

    responses = race(lambda m: caller.call("POST", "/api/v1/claims", json={"member_id": m,
                                                                            "inventory": inventory.public_id}),
                     members, threads=30)

    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 60, statuses
    assert {r.json()["code"] for r in responses if r.status_code != 201} <= {"sold_out", "limit_reached",
                                                                             "request_in_progress"}
    issued = Counter(m for r, m in zip(responses, members, strict=True) if r.status_code == 201)
    assert max(issued.values()) <= 2, issued
    codes = CouponCode.objects.filter(inventory=inventory)
    assert codes.filter(status="ISSUED").count() == 60 and codes.filter(status="AVAILABLE").count() == 0
    assert max(Counter(codes.exclude(member_id=None).values_list("member_id", flat=True)).values()) <= 2
    spread_over_all_hosts(caller.served_by)


def test_one_member_racing_through_three_hosts_with_a_limit_of_one_gets_exactly_one(on_fleet):
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=50)
    caller = Caller(on_fleet.url, factories.make_client(tenant)[1])

    responses = race(lambda _: caller.call("POST", "/api/v1/claims", json={
        "member_id": "same-member", "inventory": inventory.public_id}), range(40), threads=40)

    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1 and set(statuses) <= {201, 409}, statuses
    assert CouponCode.objects.filter(inventory=inventory, member_id="same-member").count() == 1
    spread_over_all_hosts(caller.served_by)


# --- (b) redeems ---------------------------------------------------------------------------------------------------

def test_a_code_redeemed_at_once_through_three_hosts_is_redeemed_exactly_once(on_fleet):
    from coupons.services import issue as issuing

    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=4)
    caller = Caller(on_fleet.url, factories.make_client(tenant)[1])
    codes = [issuing.issue_from_pool(inventory=inventory, member_id=f"buyer-{r}", via="grant",
                                     ctx=issuing.RequestContext()).code for r in range(4)]
    calls = [(r, i) for r in range(4) for i in range(30)]

    def redeem(call):
        r, i = call
        return r, caller.call("POST", f"/api/v1/coupons/{codes[r]}/redeem", json={
            "member_id": f"buyer-{r}", "order_id": f"o-{r}-{i}", "order": factories.order(order_id=f"o-{r}-{i}")})

    answers = race(redeem, calls, threads=40)

    for r in range(4):
        statuses = Counter(response.status_code for rr, response in answers if rr == r)
        assert statuses == {200: 1, 409: 29}, (codes[r], statuses)
    assert {resp.json()["code"] for _, resp in answers if resp.status_code == 409} == {"already_used"}
    spread_over_all_hosts(caller.served_by)


# --- (c) generation on a worker host ---------------------------------------------------------------------------------

def test_a_generation_queued_by_the_service_is_completed_by_a_worker_host_with_exactly_n_distinct_codes(
        on_fleet, settings):
    from coupons.services.batch import batch_create
    from coupons.services.generation import batch_start_generation

    quantity = 9_000  # five chunks of COUPON_GENERATION_CHUNK_SIZE=2000
    settings.JOBS_SYNC = False  # queued to the fleet's Redis: only a worker host can run it
    tenant = factories.make_tenant()
    inventory = factories.make_inventory(tenant, policy=factories.make_approved_policy(tenant),
                                         total_quantity=quantity)
    actor = Actor.system("scale-test")
    batch = batch_create(inventory=inventory, batch_code="SCALE-1", quantity=quantity, actor=actor)

    batch_start_generation(batch=batch, actor=actor)
    poll(lambda: CouponBatch.objects.filter(pk=batch.pk, status=CouponBatch.Status.COMPLETED).exists(),
         "the batch generated by a worker host", timeout=90)

    codes = CouponCode.objects.filter(batch=batch)
    assert codes.count() == quantity == codes.values("code").distinct().count()
    assert CouponBatch.objects.get(pk=batch.pk).generated_count == quantity
    # The web hosts claim and redeem generated codes: the worker's Bloom filter is the one they all read.
    caller = Caller(on_fleet.url, factories.make_client(tenant)[1])
    claimed = [caller.call("POST", "/api/v1/claims", json={"member_id": f"g-{i}", "inventory": inventory.public_id})
               for i in range(6)]
    assert [r.status_code for r in claimed] == [201] * 6
    redeemed = [caller.call("POST", f"/api/v1/coupons/{r.json()['coupon']['code']}/redeem", json={
        "member_id": f"g-{i}", "order_id": f"g-{i}", "order": factories.order(order_id=f"g-{i}")})
        for i, r in enumerate(claimed)]
    assert [r.status_code for r in redeemed] == [200] * 6, [r.text for r in redeemed]
    spread_over_all_hosts(caller.served_by)


# --- (d) caches across hosts ---------------------------------------------------------------------------------------

def _each_host(fleet: Fleet, request, times: int = 12) -> dict[str, list[int]]:
    """``request(host_url)`` ``times`` times on every web host directly (both of its gunicorn workers answer some)."""
    with ThreadPoolExecutor(6) as pool:
        return {host.name: list(pool.map(lambda _, url=host.url: request(url).status_code, range(times)))
                for host in fleet.web}


def _refused_everywhere_within(fleet: Fleet, request, ok: int, bound: float) -> float:
    """Seconds until every web host refuses ``request`` ``times`` in a row; fails past ``bound`` + slack."""
    def all_refuse() -> bool:
        answers = _each_host(fleet, request, times=8)
        return all(ok not in statuses for statuses in answers.values())

    _, took = poll(all_refuse, f"every host refusing within {bound} s (+{SLACK_SECONDS} s slack)",
                   timeout=bound + SLACK_SECONDS, every=0.1)
    return took


def test_a_revoked_token_is_refused_by_every_host_within_the_token_cache_bound(on_fleet):
    from core.models import ApiClient
    from core.services import api_client_revoke

    tenant = factories.make_tenant()
    client, token = factories.make_client(tenant)
    caller = Caller("", token)

    def whoami(url: str):
        return caller.call("GET", "/api/v1/client", base_url=url)

    before = _each_host(on_fleet, whoami)
    assert all(set(statuses) == {200} for statuses in before.values()), before  # cached on every host now

    api_client_revoke(client=ApiClient.objects.get(pk=client.pk), actor=Actor.system("scale-test"))
    took = _refused_everywhere_within(on_fleet, whoami, 200, TOKEN_CACHE_SECONDS)

    after = _each_host(on_fleet, whoami)
    assert all(set(statuses) == {401} for statuses in after.values()), after
    print(f"revoked token refused by all three hosts after {took:.2f} s (bound {TOKEN_CACHE_SECONDS} s)")


def test_a_switched_off_inventory_is_refused_by_every_host_within_the_config_cache_bound(on_fleet):
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=400)
    caller = Caller("", factories.make_client(tenant)[1])
    members = iter(range(1_000_000))
    lock = threading.Lock()

    def claim(url: str):
        with lock:
            member = f"c-{next(members)}"
        return caller.call("POST", "/api/v1/claims", base_url=url,
                           json={"member_id": member, "inventory": inventory.public_id})

    before = _each_host(on_fleet, claim, times=6)
    assert all(set(statuses) == {201} for statuses in before.values()), before

    CouponInventory.objects.filter(pk=inventory.pk).update(is_active=False)  # as the console's save does
    took = _refused_everywhere_within(on_fleet, claim, 201, CONFIG_CACHE_SECONDS)

    after = _each_host(on_fleet, claim, times=6)
    assert all(set(statuses) == {422} for statuses in after.values()), after
    print(f"switched-off inventory refused by all three hosts after {took:.2f} s (bound {CONFIG_CACHE_SECONDS} s)")


# --- (e) files between web hosts and worker hosts ------------------------------------------------------------------

def test_a_partner_upload_and_an_export_cross_from_web_hosts_to_worker_hosts_and_back(on_fleet):
    from partners.models import Partner

    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=30)
    Partner.objects.create(tenant=tenant, name="GS Retail", code="GS25")
    caller = Caller(on_fleet.url, factories.make_client(tenant, scope="operator")[1])
    content = "partner_code\n" + "".join(f"GS-{i:05d}\n" for i in range(20))

    sent = caller.call("POST", "/api/v1/partner-uploads", data={"partner": "GS25", "inventory": inventory.public_id},
                       files={"file": ("codes.csv", content.encode(), "text/csv")})
    assert sent.status_code in (201, 202), sent.text
    upload_id = sent.json()["id"]
    status, _ = poll(lambda: (lambda s: s if s["status"] in ("DONE", "FAILED") else None)(
        caller.call("GET", f"/api/v1/partner-uploads/{upload_id}").json()), "the upload processed", timeout=60)
    assert (status["status"], status["mapped"], status["failed"]) == ("DONE", 20, 0), status

    created = caller.call("POST", "/api/v1/exports", json={"kind": "issues", "inventory": inventory.public_id})
    assert created.status_code == 202, created.text
    export_url = created.json()["url"]
    status, _ = poll(lambda: (lambda s: s if s["status"] in ("DONE", "FAILED") else None)(
        caller.call("GET", export_url).json()), "the export written", timeout=60)
    assert status["status"] == "DONE", status
    downloads = [caller.call("GET", status["download_url"], base_url=host.url) for host in on_fleet.web]
    assert [d.status_code for d in downloads] == [200] * 3, [d.text[:200] for d in downloads]
    assert len({d.content for d in downloads}) == 1 and downloads[0].content[:2] == b"PK"  # one XLSX file
    spread_over_all_hosts(caller.served_by)
