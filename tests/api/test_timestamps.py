"""#19 (must show): one time convention for every timestamp of every response (docs/API.md "Times"): ISO 8601 to the
second with the offset of the tenant's time zone, ``±HH:MM`` — coupons, usages, grants, claimable inventories,
participants, draws, rewards and points, exports, and an Idempotency-Key replay.

The tenant here lives in New York (not the server's Asia/Seoul), so a timestamp written in the server's zone or in
UTC fails. Coverage is checked against the schema: every ``date-time`` property of a response in /api/schema/ must
have been seen with a value, and every date-like string seen must be a ``date-time`` property of the schema.
"""
from __future__ import annotations

import re
import zoneinfo
from datetime import datetime

import pytest
from rest_framework.test import APIClient

from core.api.times import TIMESTAMP_PATTERN
from draws import services as draw_services
from rewards.models import ExchangeOffer
from tests import factories
from tests.draws.helpers import ACTOR, committed_draw, ended_event_with
from tests.rewards.factories import make_rule

pytestmark = pytest.mark.django_db

ZONE = zoneinfo.ZoneInfo("America/New_York")
DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
ORDER = {"items": [{"sku": "S1", "unit_price": 50_000, "quantity": 1}]}


def walk(value, path=""):
    """(key, path, value) of every string in a JSON document."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from ((k, p, v) for k, p, v in walk(inner, f"{path}.{key}") if k is not None) \
                if isinstance(inner, (dict, list)) else [(key, f"{path}.{key}", inner)]
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from walk(inner, f"{path}[{index}]")


def schema_datetime_properties() -> set[str]:
    """Names of the response properties the schema declares as date-time."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    names: set[str] = set()

    def visit(node):
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if isinstance(prop, dict) and prop.get("format") == "date-time":
                    names.add(name)
            for inner in node.values():
                visit(inner)
        elif isinstance(node, list):
            for inner in node:
                visit(inner)

    visit({k: v for k, v in schema["components"]["schemas"].items() if not k.endswith("Request")})
    return names


@pytest.fixture
def new_york(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    return factories.make_tenant(time_zone="America/New_York")


def client_for(tenant, scope="member"):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {factories.make_client(tenant, scope=scope)[1]}")
    return api


def every_response(tenant) -> list[tuple[str, object]]:
    member, operator = client_for(tenant), client_for(tenant, "operator")
    seen: list[tuple[str, object]] = []

    def record(label, response, status=(200, 201, 202)):
        assert response.status_code in status, (label, response.status_code, response.content[:500])
        seen.append((label, response.json()))
        return response.json()

    inventory, _ = factories.make_pool(tenant, size=6)
    claim = {"member_id": "m-1", "inventory": inventory.public_id}
    code = record("claim", member.post("/api/v1/claims", claim, format="json"))["coupon"]["code"]
    record("grant", operator.post("/api/v1/grants", {"inventory": inventory.public_id, "member_ids": ["m-2"]},
                                  format="json"))
    record("member coupons", member.get("/api/v1/members/m-1/coupons"))
    record("coupon", member.get(f"/api/v1/coupons/{code}"))
    record("claimable", member.get("/api/v1/claimable"))
    record("lock", member.post(f"/api/v1/coupons/{code}/lock", {"member_id": "m-1", "order_id": "o-1",
                                                               "order": ORDER}, format="json"))
    record("release", member.post(f"/api/v1/coupons/{code}/release", {"order_id": "o-1"}, format="json"))
    redeem = {"member_id": "m-1", "order_id": "o-2", "order": ORDER}
    record("redeem", member.post(f"/api/v1/coupons/{code}/redeem", redeem, format="json",
                                 HTTP_IDEMPOTENCY_KEY="k-redeem"))
    record("redeem replayed", member.post(f"/api/v1/coupons/{code}/redeem", redeem, format="json",
                                          HTTP_IDEMPOTENCY_KEY="k-redeem"))
    record("refund", member.post(f"/api/v1/coupons/{code}/refund", {"order_id": "o-2"}, format="json"))
    record("revoke", operator.post(f"/api/v1/coupons/{code}/revoke", {"reason": "test"}, format="json"))

    event = factories.make_event(tenant)
    record("join", member.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-1"},
                               format="json"))
    ended = ended_event_with(tenant, [f"m-{i}" for i in range(5)])
    draw = committed_draw(ended, [("first", 1)])
    draw_services.draw_run(draw_id=draw.pk, actor=ACTOR)
    committed_draw(ended, [("again", 1)], name="Later")  # one not drawn yet: nulls where DONE shows times
    record("draws", member.get(f"/api/v1/events/{ended.public_id}/draws"))

    make_rule(tenant, "signup", points=100, points_valid_days=30, inventory=inventory)
    record("reward trigger", member.post("/api/v1/rewards/triggers", {"member_id": "m-3", "trigger": "signup",
                                                                      "reference": "r-1"}, format="json"))
    record("points", member.get("/api/v1/members/m-3/points"))
    record("points spend", member.post("/api/v1/members/m-3/points/spend", {"order_id": "o-9", "points": 50},
                                       format="json"))
    record("points refund", member.post("/api/v1/members/m-3/points/refund", {"order_id": "o-9"}, format="json"))
    gift, _ = factories.make_pool(tenant, size=1)
    ExchangeOffer.objects.create(tenant=tenant, inventory=gift, points=10)
    record("points exchange", member.post("/api/v1/members/m-3/points/exchange", {"inventory": gift.public_id},
                                          format="json"))

    export = record("export", operator.post("/api/v1/exports", {"kind": "usages"}, format="json"))
    record("export status", operator.get(f"/api/v1/exports/{export['id']}"))
    return seen


def test_every_timestamp_of_every_response_is_iso_8601_with_the_tenants_offset(new_york):
    seen = every_response(new_york)
    found: dict[str, list[str]] = {}
    for label, body in seen:
        for key, path, value in walk(body):
            if not isinstance(value, str) or not DATE_LIKE.match(value):
                continue
            found.setdefault(key, []).append(f"{label}{path}")
            assert TIMESTAMP_PATTERN.match(value), f"{label}{path} = {value!r}"
            moment = datetime.fromisoformat(value)
            assert moment.utcoffset() == moment.astimezone(ZONE).utcoffset(), f"{label}{path} = {value!r} not in NY"
    declared = schema_datetime_properties()
    assert set(found) <= declared, f"timestamps the schema does not declare date-time: {set(found) - declared}"
    assert declared <= set(found), f"date-time properties no response above showed: {declared - set(found)}"
    # The replay is the stored answer, byte for byte the same timestamps.
    bodies = dict(seen)
    assert bodies["redeem replayed"] == bodies["redeem"]


def test_a_seoul_tenant_reads_plus_nine_and_a_utc_tenant_plus_zero(settings):
    """Not ``Z``: one shape for every zone, the offset always written as ±HH:MM."""
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    for zone, offset in (("Asia/Seoul", "+09:00"), ("UTC", "+00:00")):
        tenant = factories.make_tenant(time_zone=zone)
        inventory, _ = factories.make_pool(tenant, size=1)
        coupon = client_for(tenant).post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                                         format="json").json()["coupon"]
        assert coupon["issued_at"].endswith(offset) and coupon["valid_until"].endswith(offset), coupon
