"""Issue #2 item 7: demo_data is idempotent and prints working identifiers and tokens with --json."""
from __future__ import annotations

import json

from django.core.management import call_command
from rest_framework.test import APIClient

from core.models import ApiClient, AuditLog, Tenant, User
from coupons.models import CouponBatch, CouponCode, CouponInventory, CouponPolicy
from events.models import Event


def run(capsys) -> dict:
    call_command("demo_data", "--json")
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def counts() -> dict:
    return {m.__name__: m.objects.count() for m in (Tenant, User, ApiClient, CouponPolicy, Event, CouponInventory,
                                                    CouponBatch, CouponCode)}


def test_demo_data_creates_everything_once_and_its_tokens_work(db, capsys, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run(capsys)
    after_first = counts()
    second = run(capsys)
    assert counts() == after_first  # idempotent
    assert second == first  # same identifiers, and the same tokens while var/ keeps them
    assert after_first["CouponPolicy"] == 5
    assert set(first["policies"]) == {"amount", "threshold", "percentage", "shipping", "sku_deduction"}
    assert set(CouponPolicy.objects.values_list("status", flat=True)) == {"APPROVED"}
    assert CouponBatch.objects.get(batch_code=first["batch"]).status == "COMPLETED"
    assert after_first["CouponCode"] == 1000
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {first['member_token']}")
    claimed = api.post("/api/v1/claims", {"member_id": "demo-member", "promo_code": first["promo_code"]},
                       format="json")
    assert claimed.status_code == 201
    operator = APIClient()
    operator.credentials(HTTP_AUTHORIZATION=f"Bearer {first['operator_token']}")
    assert operator.get("/api/v1/client").json()["scope"] == "operator"
    assert User.objects.get(username="admin").check_password(first["console"]["password"])


def test_demo_data_issues_fresh_tokens_when_the_local_copy_is_lost(db, capsys, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run(capsys)
    (tmp_path / "demo_credentials.json").unlink()
    second = run(capsys)
    assert second["member_token"] != first["member_token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {second['member_token']}")
    assert api.get("/api/v1/client").status_code == 200
    assert AuditLog.objects.filter(action="api_client.rotate_token").count() == 2
