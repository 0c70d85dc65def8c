"""Issue #20's journey over the real HTTP API and console of a live server: four eyes for handing out money. An
operator's integration asks for a large distribution and a large grant; both answer 202 awaiting_approval and
nothing is reserved or issued; an approver signs in to the console and approves each on its decide page; then the
codes are reserved and downloadable, and the coupons are issued."""
from __future__ import annotations

import re

import httpx
import pytest

from core.models import ApiClient, AuditLog
from coupons.models import CouponIssue
from partners.services import partner_create
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-for-tests-1"


def console(live_server, username: str) -> httpx.Client:
    browser = httpx.Client(base_url=live_server.url, timeout=30, follow_redirects=True)
    browser.get("/admin/login/")
    login = browser.post("/admin/login/?next=/admin/", data={
        "username": username, "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        "next": "/admin/"}, headers={"Referer": f"{live_server.url}/admin/login/"})
    assert 'id="logout-form"' in login.text, "the approver could not sign in"
    return browser


def decide(browser: httpx.Client, live_server, path: str, **data: str) -> httpx.Response:
    page = browser.get(path)
    assert page.status_code == 200, page.text[:500]
    return browser.post(path, data={"csrfmiddlewaretoken": browser.cookies["csrftoken"], **data},
                        headers={"Referer": f"{live_server.url}{path}"})


def test_large_requests_wait_for_an_approver_and_are_carried_out_once_approved(tenant, http, live_server):
    tenant.distribution_approval_threshold, tenant.grant_approval_threshold = 10, 5
    tenant.save(update_fields=["distribution_approval_threshold", "grant_approval_threshold"])
    inventory, _codes = factories.make_pool(tenant, size=40)
    partner_create(tenant=tenant, name="GS25 stores", code="GS25", actor=factories.TEST_ACTOR)
    factories.make_approver(tenant, username="approver-journey", password=PASSWORD)
    ops = http(factories.make_client(tenant, scope=ApiClient.Scope.OPERATOR)[1])

    # A small distribution goes through at once, as before.
    small = ops.post("/distributions", json={"inventory": inventory.public_id, "partner": "GS25", "quantity": 3})
    assert (small.status_code, small.json()["status"], small.json()["codes"]["reserved"]) == (201, "distributed", 3)

    # A large one waits: 202, nothing reserved, no file yet.
    asked = ops.post("/distributions", json={"inventory": inventory.public_id, "partner": "GS25", "quantity": 12})
    assert asked.status_code == 202, asked.text
    waiting = asked.json()
    assert (waiting["status"], waiting["quantity"], waiting["codes"]["reserved"]) == ("awaiting_approval", 12, 0)
    no_file = ops.get(f"/distributions/{waiting['id']}/codes")
    assert (no_file.status_code, no_file.json()["code"]) == (409, "distribution_not_distributed")
    assert set(no_file.json()) == {"code", "message", "details"}

    # A large grant waits too: 202, nothing issued.
    granted = ops.post("/grants", json={"inventory": inventory.public_id,
                                        "member_ids": [f"m-{i}" for i in range(6)]})
    assert granted.status_code == 202, granted.text
    grant = granted.json()
    assert (grant["status"], grant["total"]) == ("awaiting_approval", 6)
    assert ops.get(f"/grants/{grant['job']}").json()["status"] == "AWAITING_APPROVAL"
    assert CouponIssue.objects.count() == 0

    # The approver signs in, sees both in the inbox and approves each on its decide page.
    browser = console(live_server, "approver-journey")
    inbox = browser.get("/admin/coupons/couponpolicy/approvals/")
    badge = re.search(r'id="console-badge-admin-coupons_couponpolicy_approvals">(\d+)<', inbox.text)
    assert badge and badge[1] == "2"
    from coupons.models import CouponGrant
    from partners.models import Distribution

    dist = Distribution.objects.get(public_id=waiting["id"])
    grant_row = CouponGrant.objects.get(public_id=grant["id"])
    assert f'data-distribution="{dist.pk}"' in inbox.text and f'data-grant="{grant_row.pk}"' in inbox.text
    done = decide(browser, live_server, f"/admin/partners/distribution/{dist.pk}/decide/", decision="approve")
    assert done.status_code == 200
    done = decide(browser, live_server, f"/admin/coupons/coupongrant/{grant_row.pk}/decide/", decision="approve")
    assert done.status_code == 200

    # The codes are reserved and downloadable; the coupons are issued, once each.
    status = ops.get(f"/distributions/{waiting['id']}").json()
    assert (status["status"], status["codes"]["reserved"]) == ("distributed", 12)
    file = ops.get(f"/distributions/{waiting['id']}/codes")
    assert file.status_code == 200 and len(file.text.split()) == 1 + 12
    polled = ops.get(f"/grants/{grant['job']}").json()
    assert (polled["status"], polled["issued"]) == ("COMPLETED", 6)
    assert sorted(CouponIssue.objects.values_list("member_id", flat=True)) == [f"m-{i}" for i in range(6)]
    assert AuditLog.objects.filter(action__in=["distribution.approve", "grant.approve"]).count() == 2

    # Approving again changes nothing: the page says it is decided.
    again = decide(browser, live_server, f"/admin/partners/distribution/{dist.pk}/decide/", decision="approve")
    assert again.status_code == 200 and 'id="approval-decided"' in again.text
    assert "already decided" in again.text
    assert ops.get(f"/distributions/{waiting['id']}").json()["codes"]["reserved"] == 12
