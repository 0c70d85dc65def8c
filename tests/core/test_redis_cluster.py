"""Issue #23 (Redis Cluster safe): every multi-key Redis operation of the app — the code-lookup reservation and its
refund (core/api/limits.py), the daily frequency counters' take and release (risk/limits.py), the Bloom filter's
install, merge, add and lookup (coupons/bloom.py) — keeps its keys in one hash slot, and runs on a real 3-node Redis
Cluster (tests/redis_cluster.py: stock ``redis-server`` in cluster mode, not the shared Redis).

A cluster client refuses a script or a transaction whose keys hash to different slots (CROSSSLOT), so these tests fail
if a hash tag is dropped; the key-builder tests say which tag each key carries. The list: docs/design/redis-cluster.md.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis.exceptions
from django.db import connection
from redis import Redis
from django.test import RequestFactory
from redis.cluster import key_slot
from redis.commands.core import Script

from core import redis as core_redis
from core.api import limits as api_limits
from core.locks import member_lock
from coupons import bloom
from coupons.bloom import (RedisBloomStore, bloom_drop, bloom_might_contain, bloom_rebuild, bloom_verify, get_store,
                           redis_base_key, store_location)
from coupons.models import CouponCode
from coupons.services.generation import batch_generate
from risk import limits as risk_limits
from risk.exceptions import FrequencyLimited
from tests import factories
from tests.risk.util import add_limit, claim

ROOT = Path(__file__).resolve().parents[2]


def slot_of_tenant(tenant_id: int) -> int:
    return key_slot(core_redis.hash_tag(tenant_id).encode())


def slots(keys) -> set[int]:
    return {key_slot(k.encode() if isinstance(k, str) else k) for k in keys}


@pytest.fixture
def scripts_run(monkeypatch):
    """The keys of every Lua script run during the test (the real script still runs: this only watches)."""
    seen: list[list[str]] = []
    real = Script.__call__

    def watching(self, keys=None, args=None, client=None):
        seen.append([k.decode() if isinstance(k, bytes) else str(k) for k in (keys or [])])
        return real(self, keys=keys, args=args, client=client)

    monkeypatch.setattr(Script, "__call__", watching)
    return seen


def lookup_budgets(settings, tenant_id: int, client_id: int, *, members=("m-1", "m-2"), devices=("d-1",)):
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = "100/m"
    settings.COUPON_RATE_CODE_LOOKUP_IP = "100/m"
    settings.COUPON_FAILED_GUESS_LIMIT = 10
    settings.COUPON_FAILED_GUESS_CLIENT_LIMIT = 50
    request = RequestFactory().post("/api/v1/claims", REMOTE_ADDR="192.0.2.7")
    return api_limits.request_budgets(request=request, client_id=client_id, tenant_id=tenant_id,
                                      members=list(members), devices=list(devices))


# --- key builders (no cluster needed) -----------------------------------------------------------------------------

def test_every_key_of_a_requests_lookup_budgets_carries_its_tenants_tag(settings, db):
    for tenant_id in (1, 2, 987654):
        budgets = lookup_budgets(settings, tenant_id, client_id=5)
        assert {b.reason for b in budgets} == {"client_rate", "ip_rate", "failed_guesses_client",
                                               "failed_guesses_member", "failed_guesses_device"}
        assert all(core_redis.hash_tag(tenant_id) in b.key for b in budgets)
        assert slots(b.key for b in budgets) == {slot_of_tenant(tenant_id)}
    assert slot_of_tenant(1) != slot_of_tenant(2)


def test_every_frequency_counter_key_carries_its_tenants_tag(db):
    from datetime import date

    for tenant_id in (1, 2):
        keys = [risk_limits.counter_key(tenant_id=tenant_id, scope=scope, action=action, dimension=dimension,
                                        value="v", day=date(2025, 1, 2))
                for scope in ("i1", "p7") for action in ("claim", "use")
                for dimension in ("device_id", "member_id", "ip", "phone", "postcode")]
        assert slots(keys) == {slot_of_tenant(tenant_id)}


def test_the_bloom_filters_keys_share_the_tag_of_its_name():
    assert redis_base_key("coupons:bloom:db") == "{coupons:bloom:db}"
    assert redis_base_key("{bloom}:db") == "{bloom}:db"  # a configured key with its own tag keeps it
    assert redis_base_key("odd{}key") == "{odd{}key}"  # an empty tag is no tag (Redis's rule)
    base = redis_base_key("coupons:bloom:db")
    keys = [f"{base}:bits", f"{base}:meta", f"{base}:merge:0123abcd", f"{base}:build:0123abcd"]
    assert slots(keys) == {key_slot(b"coupons:bloom:db")}


def test_every_redis_multi_key_operation_in_the_code_is_in_the_documented_list():
    """A new script, pipeline or lock elsewhere must be added to docs/design/redis-cluster.md with its tag."""
    apps = ["core", "events", "risk", "coupons", "partners", "draws", "rewards", "exports", "ops", "dashboard"]
    pattern = re.compile(r"register_script\(|\.pipeline\(|\.lock\(|\btransaction\(")
    found = set()
    for app in apps:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            if pattern.search(text) and ("redis" in text.lower()):
                found.add(str(path.relative_to(ROOT)))
    documented = (ROOT / "docs/design/redis-cluster.md").read_text()
    assert sorted(f for f in found if f"`{f}`" not in documented) == []
    assert {"core/api/limits.py", "risk/limits.py", "coupons/bloom.py", "core/locks.py"} <= found


# --- on the cluster ----------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_test_cluster_refuses_a_script_over_keys_of_two_slots(on_redis_cluster):
    """What makes the tests below guards: on a cluster, the reservation script over untagged keys of two tenants is
    refused (so dropping a tag fails them), and with the tag it runs."""
    script = on_redis_cluster.register_script(api_limits._RESERVE_LUA)
    args = [api_limits.now_ms(), 1, "tok", 5, 60_000, 5, 60_000]
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        script(keys=["guard:client:1", "guard:guess:m:1"], args=args)
    assert script(keys=["guard:{t1}:client:1", "guard:{t1}:guess:m:1"], args=args) == [1, 0, 0]
    on_redis_cluster.delete("guard:{t1}:client:1", "guard:{t1}:guess:m:1")


@pytest.mark.django_db
def test_lookup_reservations_and_refunds_run_on_the_cluster_per_tenant(on_redis_cluster, settings, scripts_run):
    shared = Redis.from_url(settings.REDIS_URL)
    budgets = {t: lookup_budgets(settings, t, client_id=10 + t) for t in (1, 2)}

    first = api_limits.reserve(budgets[1], 8)
    assert first.granted == 8 and not first.local  # counted in Redis, not in the process fallback
    api_limits.refund(first, 5)  # 5 of the 8 found a code: the failed-guess budgets get them back
    by_reason = {b.reason: api_limits.used(b) for b in budgets[1] if b.reason != "failed_guesses_member"}
    assert by_reason == {"client_rate": 8, "ip_rate": 8, "failed_guesses_client": 3, "failed_guesses_device": 3}
    assert [api_limits.used(b) for b in budgets[1] if b.reason == "failed_guesses_member"] == [3, 3]

    second = api_limits.reserve(budgets[1], 20)
    assert second.granted == 7 and not second.local  # the member's 10 failed guesses are the tightest budget
    with pytest.raises(api_limits.RateLimited) as refused:
        api_limits.reserve(budgets[1], 1)
    assert refused.value.details["reason"] == "failed_guesses_member"

    other = api_limits.reserve(budgets[2], 10)  # another tenant's budgets are untouched by the first one's
    assert other.granted == 10 and not other.local

    for tenant_id, keys in ((1, [b.key for b in budgets[1]]), (2, [b.key for b in budgets[2]])):
        assert slots(keys) == {slot_of_tenant(tenant_id)}
        assert on_redis_cluster.exists(*keys) == len(keys)  # on the cluster ...
        assert shared.exists(*keys) == 0  # ... and not on the shared Redis
    assert scripts_run and all(len(slots(keys)) == 1 for keys in scripts_run)
    assert {next(iter(slots(keys))) for keys in scripts_run} == {slot_of_tenant(1), slot_of_tenant(2)}
    on_redis_cluster.delete(*[b.key for t in (1, 2) for b in budgets[t]])


@pytest.mark.django_db
def test_a_member_past_the_failed_guess_allowance_is_refused_over_http_on_the_cluster(on_redis_cluster, settings,
                                                                                    scripts_run):
    """The real request path: unknown codes from one member of each of two tenants reserve and refund on the cluster;
    the eleventh is refused in each tenant, independently."""
    settings.COUPON_FAILED_GUESS_LIMIT = 10
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = "1000/m"
    settings.COUPON_RATE_CODE_LOOKUP_IP = "1000/m"
    tenants = [factories.make_tenant(), factories.make_tenant()]
    for tenant in tenants:
        api = factories.make_api(tenant)
        codes = factories.random_codes(11)
        statuses = [api.post(f"/api/v1/coupons/{code}/lock", {"member_id": "m-1", "order_id": "o-1",
                                                               "order": factories.order()}, format="json").status_code
                    for code in codes]
        assert statuses == [404] * 10 + [429]
    assert not core_redis.is_down()
    assert not [key for key in api_limits._local_logs if any(f"{{t{t.pk}}}" in key for t in tenants)]  # no fallback
    assert {next(iter(slots(keys))) for keys in scripts_run} == {slot_of_tenant(t.pk) for t in tenants}
    assert all(len(slots(keys)) == 1 for keys in scripts_run)


@pytest.mark.django_db
def test_frequency_counters_take_and_release_on_the_cluster_per_tenant(on_redis_cluster, scripts_run):
    day, seconds_left = risk_limits.local_day("Asia/Seoul")

    def counters(tenant_id, limit):
        return [risk_limits.Counter(key=risk_limits.counter_key(tenant_id=tenant_id, scope="i1", action="claim",
                                                                dimension=dimension, value="same", day=day),
                                    limit=limit, dimension=dimension)
                for dimension in ("device_id", "member_id", "ip", "phone")]

    one, two = counters(1, 2), counters(2, 3)
    on_redis_cluster.delete(*[c.key for c in one + two])
    taken = risk_limits.take(one, day=day, seconds_left=seconds_left)
    risk_limits.take(one, day=day, seconds_left=seconds_left)
    with pytest.raises(FrequencyLimited):
        risk_limits.take(one, day=day, seconds_left=seconds_left)  # all or nothing: none counted a third time
    assert [risk_limits.current(c.key, day) for c in one] == [2, 2, 2, 2]
    risk_limits.release(taken)
    assert [risk_limits.current(c.key, day) for c in one] == [1, 1, 1, 1]

    for _ in range(3):
        risk_limits.take(two, day=day, seconds_left=seconds_left)  # tenant 2's counters: its own slot, own limit
    assert [risk_limits.current(c.key, day) for c in two] == [3, 3, 3, 3]
    assert 0 < on_redis_cluster.ttl(one[0].key) <= seconds_left + 60

    assert slots(c.key for c in one) == {slot_of_tenant(1)} and slots(c.key for c in two) == {slot_of_tenant(2)}
    assert all(len(slots(keys)) == 1 for keys in scripts_run) and len(scripts_run) == 7
    assert risk_limits.forget_counters() >= 8  # a delete over keys of several slots: split per slot by the client


@pytest.mark.django_db
def test_claims_of_two_tenants_take_counters_and_member_locks_on_the_cluster(on_redis_cluster, scripts_run):
    """The claim path: the member lock (one key: redis-py's Lock scripts) and the frequency counters (one slot per
    tenant), over HTTP for two tenants; the device's third claim in a tenant is refused."""
    tenants = [factories.make_tenant(), factories.make_tenant()]
    for tenant in tenants:
        inventory, _codes = factories.make_pool(tenant, size=5)
        add_limit(inventory=inventory, dimension="device_id", max_per_day=2)
        add_limit(inventory=inventory, dimension="phone", max_per_day=3)
        api = factories.make_api(tenant)
        statuses = [claim(api, inventory, f"m-{i}", device_id="dev-1", phone="010-1234-5678").status_code
                    for i in range(3)]
        assert statuses == [201, 201, 429]
        day, _ = risk_limits.local_day(tenant.time_zone)
        key = risk_limits.counter_key(tenant_id=tenant.pk, scope=f"i{inventory.pk}", action="claim",
                                      dimension="device_id", value="dev-1", day=day)
        assert risk_limits.current(key, day) == 2 and on_redis_cluster.exists(key)
    counter_scripts = [keys for keys in scripts_run if keys and keys[0].startswith("risk:")]
    assert {next(iter(slots(keys))) for keys in counter_scripts} == {slot_of_tenant(t.pk) for t in tenants}
    assert all(len(slots(keys)) == 1 for keys in scripts_run)
    assert any(keys and keys[0].startswith("coupons:lock:member:") for keys in scripts_run)  # released by a script
    risk_limits.forget_counters()


@pytest.mark.django_db
def test_a_member_lock_on_the_cluster_is_exclusive_until_released(on_redis_cluster):
    with member_lock("7:1:m-1"):
        assert on_redis_cluster.exists("coupons:lock:member:7:1:m-1") == 1
        assert not on_redis_cluster.lock("coupons:lock:member:7:1:m-1", timeout=5).acquire(blocking=False)
    assert on_redis_cluster.exists("coupons:lock:member:7:1:m-1") == 0


@pytest.fixture
def bloom_on_the_cluster(on_redis_cluster, settings, transactional_db):
    settings.BLOOM_BACKEND = "redis"
    settings.GENERATION_CHUNK_SIZE = 5000
    settings.BLOOM_CAPACITY = 100_000
    settings.BLOOM_ERROR_RATE = 1e-6
    bloom_drop()
    yield on_redis_cluster
    bloom_drop()


@pytest.mark.django_db(transaction=True)
def test_the_bloom_filter_builds_merges_adds_and_answers_on_the_cluster(bloom_on_the_cluster, scripts_run):
    """Rebuild (install script), a generation's merges, a factory's add_bits, lookups (a pipeline) and verify, with
    two tenants' codes; every script within the filter's slot; the untagged keys of an older filter are removed."""
    cluster = bloom_on_the_cluster
    legacy = f"coupons:bloom:{connection.settings_dict['NAME']}"
    cluster.set(f"{legacy}:bits", b"old")  # the global filter of before #23, untagged
    cluster.hset(f"{legacy}:meta", mapping={"count": "7"})

    tenants = [factories.make_tenant(), factories.make_tenant()]
    pools = [factories.make_inventory(t, total_quantity=100_000) for t in tenants]
    early = factories.make_codes(factories.make_batch(pools[0], quantity=50), 50)  # before there is a filter
    bloom_rebuild()
    assert cluster.exists(f"{legacy}:bits", f"{legacy}:meta") == 0
    for pool in pools:
        batch_generate(batch_id=factories.make_batch(pool, quantity=6000).pk, actor=factories.TEST_ACTOR)
    added = factories.make_codes(factories.make_batch(pools[1], quantity=20), 20)  # bloom_adding: add_bits

    codes = {t.pk: list(CouponCode.objects.filter(tenant=t).values_list("code", flat=True)) for t in tenants}
    assert len(codes[tenants[0].pk]) == 6050 and len(codes[tenants[1].pk]) == 6020
    assert all(bloom_might_contain(c, t) for t, some in codes.items() for c in some[::50])
    assert all(bloom_might_contain(c.code, tenants[1].pk) for c in added)
    assert all(bloom_might_contain(c.code, tenants[0].pk) for c in early)
    other = [c for c in codes[tenants[0].pk][:2000] if c not in set(codes[tenants[1].pk])]
    assert sum(1 for c in other if not bloom_might_contain(c, tenants[1].pk)) >= len(other) * 0.99
    check = bloom_verify(sample=400)
    assert check["missing"] == 0

    for tenant in tenants:  # one filter per tenant (#23), each in its tenant's slot
        store = get_store(tenant.pk)
        assert isinstance(store, RedisBloomStore)
        base = store.key
        assert base == store_location(tenant.pk) and cluster.exists(f"{base}:bits", f"{base}:meta") == 2
        filter_slot = key_slot(base.encode())
        assert filter_slot == key_slot(f"{{t{tenant.pk}}}".encode())
        assert slots([store.bits_key, store.meta_key]) == {filter_slot}
        bloom_scripts = [keys for keys in scripts_run if keys and keys[0].startswith(base)]
        assert len(bloom_scripts) >= 3  # install, at least one merge, lookups (and for the second tenant an add)
        assert all(slots(keys) == {filter_slot} for keys in bloom_scripts)
        assert not cluster.keys(f"{base}:merge:*") and not cluster.keys(f"{base}:build:*")


@pytest.mark.django_db
def test_an_unreachable_cluster_is_an_outage_not_an_error(settings, db):
    """No node answers: the lookup limits count per process (issue #18) and the frequency limits refuse with 503,
    exactly as with one Redis — a cluster client's 'cannot be connected' is a ConnectionError here."""
    from tests.faults.services import free_port

    settings.REDIS_CLUSTER_URL = f"redis://127.0.0.1:{free_port()}/0"
    core_redis.reset_clients()
    try:
        budgets = lookup_budgets(settings, 1, client_id=1)
        assert api_limits.reserve(budgets, 2).local
        day, seconds_left = risk_limits.local_day("UTC")
        counter = risk_limits.Counter(key=risk_limits.counter_key(tenant_id=1, scope="i1", action="claim",
                                                                  dimension="ip", value="x", day=day),
                                      limit=1, dimension="ip")
        core_redis.mark_up()
        with pytest.raises(core_redis.DependencyUnavailable):
            risk_limits.take([counter], day=day, seconds_left=seconds_left)
    finally:
        core_redis.reset_clients()
        bloom._params_cache.clear()
        with api_limits._local_lock:
            api_limits._local_logs.clear()


@pytest.mark.django_db
def test_health_checks_the_cluster_too(client, on_redis_cluster, settings):
    from tests.faults.services import free_port

    assert client.get("/health/").status_code == 200
    settings.REDIS_CLUSTER_URL = f"redis://127.0.0.1:{free_port()}/0"  # no node there
    core_redis.reset_clients()
    response = client.get("/health/")
    assert response.status_code == 503 and response.json()["down"] == ["redis"]
