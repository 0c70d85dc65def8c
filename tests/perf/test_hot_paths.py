"""The claim and redeem paths after #21 (R-NFR-2): what they send to PostgreSQL and how they build their objects.

The throughput itself is a benchmark (``manage.py bench claim|redeem``, bench/RESULTS.md), never a timed test. What a
test can hold is the shape the benchmark depends on: the number of statements per request, that PostgreSQL prepares
them, and that every shortcut answers exactly what the long way answered.
"""
from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from core.api.shared_fields import SharedFieldsMixin
from coupons.api.serializers import ClaimSerializer, RedeemSerializer
from coupons.models import CouponCode
from coupons.services import lifecycle
from risk.models import WebhookDelivery, WebhookEndpoint
from tests import factories

pytestmark = pytest.mark.django_db


def _statements(ctx: CaptureQueriesContext) -> list[str]:
    """What the request sent, without the savepoints of the test's own transaction."""
    return [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]


# --- statements per request ------------------------------------------------------------------------------------

def test_a_claim_sends_two_statements_the_members_state_and_the_issue(tenant, settings):
    """Slot count and risk level in one statement, the code, issue, counter, audit and the webhook endpoints in the
    other (before #21: four, with a query for the risk level and one for the webhook endpoints). The inventory's
    configuration is kept per process for COUPON_CONFIG_CACHE_SECONDS (the suite sets 0)."""
    settings.COUPON_CONFIG_CACHE_SECONDS = 60
    inventory, _ = factories.make_pool(tenant, size=3)
    api = factories.make_api(tenant)
    api.post("/api/v1/claims", {"member_id": "m-0", "inventory": inventory.public_id}, format="json")  # warm caches
    with CaptureQueriesContext(connection) as ctx:
        response = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
    assert response.status_code == 201, response.content
    sql = _statements(ctx)
    assert len(sql) == 2, sql
    assert "risk_memberrisk" in sql[0] and "coupons_couponissue" in sql[0]
    assert sql[1].lstrip().startswith("WITH taken AS") and "risk_webhookendpoint" in sql[1]


def test_a_redemption_sends_three_statements(tenant, settings):
    """The locked code row with its inventory, policy, tenant and batch; the member's risk level; the writes with
    the webhook endpoints. (The daily-limit rules are configuration, kept per process like the claim's.)"""
    settings.COUPON_CONFIG_CACHE_SECONDS = 60
    inventory, codes = factories.make_pool(tenant, size=2)
    api = factories.make_api(tenant)
    for i, code in enumerate(codes):
        assert api.post("/api/v1/claims", {"member_id": f"m-{i}", "code": code.code}, format="json").status_code == 201
    api.post(f"/api/v1/coupons/{codes[0].code}/redeem", {"member_id": "m-0", "order": factories.order(order_id="o-0")},
             format="json")
    with CaptureQueriesContext(connection) as ctx:
        response = api.post(f"/api/v1/coupons/{codes[1].code}/redeem",
                            {"member_id": "m-1", "order": factories.order(order_id="o-1")}, format="json")
    assert response.status_code == 200, response.content
    sql = _statements(ctx)
    assert len(sql) == 3, [s[:150] for s in sql]
    assert "FOR UPDATE OF c" in sql[0] and "risk_memberrisk" in sql[1] and "risk_webhookendpoint" in sql[2]


def test_the_endpoints_read_by_the_claim_statement_get_the_event(tenant, settings):
    """A tenant with an endpoint taking coupon.issued gets one delivery per claim, one not taking it none: the list
    comes from the claim's own statement, in its transaction."""
    inventory, _ = factories.make_pool(tenant, size=3)
    taking = WebhookEndpoint.objects.create(tenant=tenant, name="issued", url="https://hooks.example.com/a",
                                            events=["coupon.issued"])
    WebhookEndpoint.objects.create(tenant=tenant, name="other", url="https://hooks.example.com/b",
                                   events=["coupon.redeemed"])
    WebhookEndpoint.objects.create(tenant=tenant, name="off", url="https://hooks.example.com/c",
                                   events=["coupon.issued"], is_active=False)
    api = factories.make_api(tenant)
    for i in range(2):
        assert api.post("/api/v1/claims", {"member_id": f"m-{i}", "inventory": inventory.public_id},
                        format="json").status_code == 201
    deliveries = WebhookDelivery.objects.filter(tenant=tenant)
    assert sorted(deliveries.values_list("endpoint_id", "event")) == [(taking.pk, "coupon.issued")] * 2


@pytest.mark.django_db(transaction=True)
def test_postgresql_prepares_the_repeated_claim_statement(tenant):
    """prepare_threshold is set (coupon_project/settings.py): after a few claims on one connection the claim
    statement is a prepared statement of that connection. With Django's default (None) nothing ever is."""
    inventory, _ = factories.make_pool(tenant, size=8)
    api = factories.make_api(tenant)
    for i in range(7):
        assert api.post("/api/v1/claims", {"member_id": f"m-{i}", "inventory": inventory.public_id},
                        format="json").status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("WITH taken AS" in statement for statement in prepared), prepared


# --- the redemption's own row loader equals the ORM -------------------------------------------------------------

def _values(instance: Any) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_locked_row_loader_builds_what_the_orm_builds(tenant):
    """core.rows: every concrete field of the code, inventory, policy, tenant and batch, with the database
    converters (arrays, JSON, decimals, times) applied as the ORM applies them."""
    policy = factories.make_approved_policy(tenant, kind="percentage", audience_tiers=["gold", "vip"],
                                            audience="members")
    inventory, codes = factories.make_pool(tenant, size=1, policy=policy)
    with transaction.atomic():
        coupon = lifecycle._locked_coupon(tenant, codes[0].code.lower())
    orm = CouponCode.objects.select_related("inventory__policy", "inventory__tenant", "batch").get(pk=codes[0].pk)
    assert _values(coupon) == _values(orm)
    assert _values(coupon.inventory) == _values(orm.inventory)
    assert _values(coupon.inventory.policy) == _values(orm.inventory.policy)
    assert _values(coupon.inventory.tenant) == _values(orm.inventory.tenant)
    assert _values(coupon.batch) == _values(orm.batch)
    assert coupon.inventory.policy.audience_tiers == ["gold", "vip"]
    assert not coupon._state.adding and coupon._state.db == "default"


# --- request serializers with shared fields answer what per-instance copies answer ------------------------------

def _plain(cls: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The same serializer with DRF's own per-instance deep copy of the fields."""
    return type(f"Plain{cls.__name__}", (cls,), {"fields": serializers.Serializer.fields})


CLAIM_BODIES: list[Any] = [
    {"member_id": "m-1", "inventory": "INV1"},
    {"member_id": " m-1 ", "promo_code": " WELCOME ", "channel": "ios", "ip": "10.0.0.1", "device_id": "d 1"},
    {"member_id": "m-1", "code": "ABCD-EFGH", "phone": "+82 10-1234-5678", "postcode": "06236"},
    {"member_id": "m-1", "partner_code": "P" * 128},
    {"member_id": "m-1", "partner_code": "P" * 129},
    {"member_id": "m-1"},
    {"member_id": "m-1", "inventory": "A", "code": "B"},
    {"member_id": "", "inventory": "INV1"},
    {"member_id": "m\u0001", "inventory": "INV1"},
    {"member_id": 12, "inventory": ["x"]},
    {"inventory": "INV1", "channel": "fax", "ip": "not-an-ip"},
    {"member_id": "m-1", "inventory": "INV1", "unknown": "ignored"},
    [], "text", None,
]
REDEEM_BODIES: list[Any] = [
    {"member_id": "m-1", "order": factories.order(order_id="o-1")},
    {"member_id": "m-1", "order_id": "o-2", "order": factories.order(order_id="o-2"), "buyer": "member",
     "tier": "gold"},
    {"member_id": "m-1", "order_id": "o-3", "order": {**factories.order(), "order_id": ""}},
    {"member_id": "m-1", "order_id": "o-4", "order": factories.order(order_id="o-5")},
    {"member_id": "m-1", "order": factories.order(order_id="o-6"), "buyer": "guest", "tier": "gold"},
    {"member_id": "m-1", "order": {"items": []}},
    {"member_id": "m-1", "order": factories.order(order_id="o-7", unit_price=-1)},
    {"member_id": "m-1"},
    {},
]


def _answer(cls: type[serializers.Serializer], body: Any) -> tuple[bool, Any]:
    serializer = cls(data=body)
    try:
        valid = serializer.is_valid()
    except Exception as exc:  # e.g. OrderIdMismatch, a whole-request refusal
        return False, (type(exc).__name__, str(exc))
    return valid, serializer.validated_data if valid else serializer.errors


@pytest.mark.parametrize(("cls", "bodies"), [(ClaimSerializer, CLAIM_BODIES), (RedeemSerializer, REDEEM_BODIES)])
def test_shared_fields_answer_like_copies_body_by_body(cls, bodies):
    plain = _plain(cls)
    for body in bodies:
        assert _answer(cls, body) == _answer(plain, body), body


@pytest.mark.parametrize("cls", [ClaimSerializer, RedeemSerializer])
def test_the_fields_are_bound_once_per_class(cls):
    assert issubclass(cls, SharedFieldsMixin)
    assert cls().fields is cls(data={}).fields
    assert _plain(cls)().fields is not _plain(cls)().fields


@pytest.mark.parametrize(("cls", "bodies"), [(ClaimSerializer, CLAIM_BODIES), (RedeemSerializer, REDEEM_BODIES)])
def test_shared_fields_answer_the_same_from_many_threads_at_once(cls, bodies):
    expected = [_answer(_plain(cls), body) for body in bodies]
    failures: list[Any] = []
    start = threading.Barrier(8)

    def run(offset: int) -> None:
        start.wait()
        for round_ in range(30):
            for i in range(len(bodies)):
                j = (i + offset + round_) % len(bodies)
                got = _answer(cls, bodies[j])
                if got != expected[j]:
                    failures.append((bodies[j], got, expected[j]))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
