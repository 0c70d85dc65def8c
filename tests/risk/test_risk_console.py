"""R-RISK console: member risk levels imported from CSV/XLSX (the importing user's tenant only; a bad row changes
nothing), frequency limits configured per inventory/policy, alarms announced on the index page and acknowledged."""
from __future__ import annotations

import io

import pytest
from django.urls import reverse

from core.models import AuditLog
from risk import budgets
from risk.models import Alarm, FrequencyLimit, MemberRisk
from tests import factories
from tests.risk.util import set_level

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:risk_memberrisk_import")
PROCESS_URL = reverse("admin:risk_memberrisk_process_import")


def upload(client, name, content, fmt):
    """The import page's two steps, as a browser does them. Returns (dry-run response, confirm response or None)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    first = client.post(IMPORT_URL, {"format": fmt, "import_file": SimpleUploadedFile(name, content)})
    confirm = first.context.get("confirm_form") if first.context else None
    if confirm is None:
        return first, None
    return first, client.post(PROCESS_URL, confirm.initial)


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


def test_a_csv_imports_member_levels_into_the_users_tenant_only(operator_client, tenant, other_tenant):
    set_level(other_tenant, "m-1", "allow", reason="B's entry")
    set_level(tenant, "m-2", "watch")
    csv = b"member_id,level,reason,expires_at\nm-1,block,chargebacks,2030-01-31\nm-2,ALLOW ,trusted,\n"
    _, done = upload(operator_client, "levels.csv", csv, "0")
    assert done is not None and done.status_code == 302
    mine = {m.member_id: m for m in MemberRisk.objects.filter(tenant=tenant)}
    assert {k: (v.level, v.reason) for k, v in mine.items()} == {"m-1": ("block", "chargebacks"),
                                                                  "m-2": ("allow", "trusted")}
    from zoneinfo import ZoneInfo

    # a date means midnight at its start, in the console's (the tenant's) time zone
    assert mine["m-1"].expires_at.astimezone(ZoneInfo(tenant.time_zone)).isoformat() == "2030-01-31T00:00:00+09:00"
    assert MemberRisk.objects.get(tenant=other_tenant).level == "allow"  # B's m-1 untouched
    audit = AuditLog.objects.get(action="risk.member_levels_import")
    assert audit.tenant_id == tenant.pk and audit.after["new"] == 1 and audit.after["updated"] == 1


def test_an_xlsx_imports_too(operator_client, tenant):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["member_id", "level", "reason"])
    sheet.append(["x-1", "block", "bot"])
    buffer = io.BytesIO()
    book.save(buffer)
    _, done = upload(operator_client, "levels.xlsx", buffer.getvalue(), "1")
    assert done is not None and done.status_code == 302
    assert list(MemberRisk.objects.filter(tenant=tenant).values_list("member_id", "level")) == [("x-1", "block")]


@pytest.mark.parametrize("content, message", [
    (b"member_id,level\nm-1,block\nm-2,banned\n", "The level must be one of block, watch, allow; got &#x27;banned&#x27;"),
    (b"member_id,level\n,block\n", "A member id is 1 to 64 characters"),
    (b"member_id,level,expires_at\nm-1,block,next week\n", "is not a date"),
    (b"member,risk\nm-1,block\n", "needs the columns member_id and level"),
])
def test_a_bad_file_is_refused_naming_the_problem_and_changes_nothing(operator_client, tenant, content, message):
    first, done = upload(operator_client, "bad.csv", content, "0")
    assert done is None
    assert message in first.content.decode()
    assert not MemberRisk.objects.exists()
    assert not AuditLog.objects.filter(action="risk.member_levels_import").exists()


def test_an_operator_adds_a_frequency_limit_and_a_limit_without_a_scope_is_refused(operator_client, tenant):
    inventory = factories.make_inventory(tenant)
    url = reverse("admin:risk_frequencylimit_add")
    data = {"action": "claim", "dimension": "device_id", "max_per_day": "5", "is_active": "on"}
    refused = operator_client.post(url, data)
    assert refused.status_code == 200
    assert "Choose either an inventory or a policy" in refused.content.decode()
    assert not FrequencyLimit.objects.exists()
    assert operator_client.post(url, {**data, "inventory": inventory.pk}).status_code == 302
    limit = FrequencyLimit.objects.get()
    assert (limit.tenant_id, limit.inventory_id, limit.max_per_day) == (tenant.pk, inventory.pk, 5)
    assert AuditLog.objects.filter(action="risk.limit_create", object_id=str(limit.pk)).exists()


def test_unacknowledged_alarms_are_announced_on_the_index_until_acknowledged(operator_client, tenant, other_tenant):
    from django.db import transaction
    from django.utils import timezone

    inventory = factories.make_inventory(tenant, name="Spring pool")
    other = factories.make_inventory(other_tenant)
    with transaction.atomic():
        budgets.raise_alarm(inventory=inventory, budget="issue_amount", threshold=80, spent=80, limit=100,
                            now=timezone.now())
        budgets.raise_alarm(inventory=other, budget="issue_amount", threshold=80, spent=80, limit=100,
                            now=timezone.now())
    page = operator_client.get(reverse("admin:index")).content.decode()
    assert "1 unacknowledged budget alarm" in page  # B's alarm is not counted
    alarm = Alarm.objects.get(inventory=inventory)
    listing = operator_client.get(reverse("admin:risk_alarm_changelist")).content.decode()
    assert "Spring pool" in listing
    done = operator_client.post(reverse("admin:risk_alarm_changelist"),
                                {"action": "acknowledge", "_selected_action": [alarm.pk]})
    assert done.status_code == 302
    alarm.refresh_from_db()
    assert alarm.acknowledged_at is not None and alarm.acknowledged_by_id is not None
    assert "unacknowledged budget alarm" not in operator_client.get(reverse("admin:index")).content.decode()
    assert AuditLog.objects.filter(action="risk.alarm_acknowledge", object_id=str(alarm.pk)).exists()


def test_budget_thresholds_are_edited_in_the_console_and_bad_ones_refused(operator_client, tenant):
    from risk.models import InventoryBudget

    inventory = factories.make_inventory(tenant)
    url = reverse("admin:risk_inventorybudget_add")
    refused = operator_client.post(url, {"inventory": inventory.pk, "alarm_thresholds": "50, 150"})
    assert "whole percentages from 1 to 100; got &#x27;150&#x27;" in refused.content.decode()
    assert not InventoryBudget.objects.exists()
    assert operator_client.post(url, {"inventory": inventory.pk, "alarm_thresholds": "90, 50"}).status_code == 302
    assert InventoryBudget.objects.get(inventory=inventory).alarm_thresholds == [50, 90]


@pytest.mark.parametrize("name", ["frequencylimit", "memberrisk", "inventorybudget", "alarm", "webhookendpoint",
                                  "webhookdelivery"])
def test_every_risk_page_opens_for_an_operator_and_a_superuser(client, operator_user, name):
    for user in (operator_user, factories.make_user(tenant=None, role=None, superuser=True)):
        client.force_login(user)
        assert client.get(reverse(f"admin:risk_{name}_changelist")).status_code == 200
        if name in ("frequencylimit", "memberrisk", "inventorybudget", "webhookendpoint"):
            assert client.get(reverse(f"admin:risk_{name}_add")).status_code == 200
    assert client.get(reverse("admin:risk_memberrisk_import")).status_code == 200


HOOK_FIELDS = {"events": ["budget.alarm"], "notice_days": "3"}  # issue #16: an endpoint chooses its events


def test_a_webhook_endpoint_chooses_its_events_and_needs_at_least_one(operator_client, tenant):
    from risk.models import WebhookEndpoint

    url = reverse("admin:risk_webhookendpoint_add")
    page = operator_client.get(url).content.decode()
    assert 'value="coupon.redeemed"' in page and 'value="points.expiring"' in page
    refused = operator_client.post(url, {"name": "ops", "url": "https://hooks.example.com/c", "is_active": "on",
                                         "notice_days": "3"})
    assert refused.status_code == 200 and "events" in refused.context["adminform"].form.errors
    refused = operator_client.post(url, {"name": "ops", "url": "https://hooks.example.com/c", "is_active": "on",
                                         "events": ["coupon.issued"], "notice_days": "0"})
    assert refused.status_code == 200 and "notice_days" in refused.context["adminform"].form.errors
    assert not WebhookEndpoint.objects.exists()
    saved = operator_client.post(url, {"name": "ops", "url": "https://hooks.example.com/c", "is_active": "on",
                                       "events": ["coupon.issued", "coupon.expiring"], "notice_days": "7"})
    assert saved.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.events, endpoint.notice_days) == (["coupon.issued", "coupon.expiring"], 7)
    assert AuditLog.objects.get(action="risk.webhook_create").after["events"] == ["coupon.issued",
                                                                                  "coupon.expiring"]


def test_a_webhook_endpoint_gets_a_secret_and_a_non_http_url_is_refused(operator_client, tenant):
    from risk.models import WebhookEndpoint

    url = reverse("admin:risk_webhookendpoint_add")
    refused = operator_client.post(url, {"name": "ops", "url": "ftp://example.com/x", "is_active": "on", **HOOK_FIELDS})
    assert refused.status_code == 200 and not WebhookEndpoint.objects.exists()
    assert operator_client.post(url, {"name": "ops", "url": "https://hooks.example.com/coupons",
                                      "is_active": "on", **HOOK_FIELDS}).status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.tenant_id == tenant.pk and endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    assert AuditLog.objects.filter(action="risk.webhook_create", object_id=str(endpoint.pk)).exists()


@pytest.mark.parametrize("bad_url, message", [
    ("http://127.0.0.1:8000/hook", "The webhook host 127.0.0.1 resolves to a loopback address"),
    ("http://localhost/hook", "The webhook host localhost resolves to a loopback address"),
    ("http://192.168.1.20/hook", "The webhook host 192.168.1.20 resolves to a private address"),
])
def test_a_webhook_url_on_a_private_network_is_refused_with_a_form_error(operator_client, settings, bad_url,
                                                                         message):
    """SSRF guard at save: loopback/private hosts are refused in the form unless
    COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS is true (R-RISK-3 webhooks)."""
    from risk.models import WebhookEndpoint

    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    url = reverse("admin:risk_webhookendpoint_add")
    refused = operator_client.post(url, {"name": "ops", "url": bad_url, "is_active": "on", **HOOK_FIELDS})
    assert refused.status_code == 200
    assert message in refused.content.decode()
    assert refused.context["adminform"].form.errors["url"] == [
        message + "; webhooks are sent to public addresses only."]
    assert not WebhookEndpoint.objects.exists()
    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    assert operator_client.post(url, {"name": "ops", "url": bad_url, "is_active": "on", **HOOK_FIELDS}).status_code == 302
    assert WebhookEndpoint.objects.get().url == bad_url
