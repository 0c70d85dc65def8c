"""R-TEN-1/R-TEN-3: a tenant-A console user cannot list, open, change, decide or export a tenant-B object.

The cases are generated from the admin registry, so a new tenant-owned ModelAdmin is covered (and must have a
tenant-B object in the fixture below) without anyone remembering to add it.
"""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import transaction
from django.forms.models import model_to_dict
from django.urls import reverse

from core.audit import Actor, audit_record
from coupons.services import lifecycle
from coupons.bloom import bloom_adding
from coupons.discounts import validate_order_payload
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.services.grant import grant_create
from coupons.models import AudienceEntry, CouponCode
from tests import factories

SECRET = "SECRETB"
OUR_APPS = {"core", "events", "coupons", "partners", "draws", "rewards", "ops", "risk", "exports"}


def tenant_admins():
    # The user admin is superuser-only (see test_tenant_users_cannot_open_the_user_admin).
    return [ma for model, ma in admin.site._registry.items()
            if model._meta.app_label in OUR_APPS and any(f.name == "tenant" for f in model._meta.get_fields())
            and model.__name__ != "User"]


@pytest.fixture
def b_objects(other_tenant):
    """One object of every tenant-owned model, in tenant B, each carrying the SECRET marker in its str()."""
    policy = factories.make_approved_policy(other_tenant, name=f"{SECRET} policy")
    event = factories.make_event(other_tenant, name=f"{SECRET} event")
    inventory = factories.make_inventory(other_tenant, policy=policy, event=event, name=f"{SECRET} pool")
    batch = factories.make_batch(inventory, batch_code=f"{SECRET}-BATCH", quantity=10)
    # Written like every writer of codes does: Bloom filter bits first (the lifecycle answers "no such coupon" without
    # a query for a code the filter has never seen — R-RISK-4).
    with bloom_adding([f"{SECRET}CODE"], tenant_id=other_tenant.pk):
        CouponCode.objects.create(tenant=other_tenant, inventory=inventory, batch=batch, code=f"{SECRET}CODE")
    ctx = RequestContext()
    issued = issue_from_pool(inventory=inventory, member_id=f"{SECRET}-member", via="grant", ctx=ctx)
    lifecycle.coupon_redeem(tenant=other_tenant, code=issued.code, member_id=f"{SECRET}-member",
                            order_id=f"{SECRET}-order", order=validate_order_payload(factories.order()), ctx=ctx)
    with bloom_adding([f"{SECRET}CODE2"], tenant_id=other_tenant.pk):
        CouponCode.objects.create(tenant=other_tenant, inventory=inventory, batch=batch, code=f"{SECRET}CODE2")
    grant_create(tenant=other_tenant, inventory_public_id=inventory.public_id, member_ids=[f"{SECRET}-granted"],
                 ctx=ctx, force_async=True)
    AudienceEntry.objects.create(tenant=other_tenant, inventory=inventory, member_id=f"{SECRET}-vip")
    factories.make_client(other_tenant, name=f"{SECRET} client")
    from events.services import participant_join, staff_member_add

    participant_join(tenant=other_tenant, event_public_id=event.public_id, member_id=f"{SECRET}-participant",
                     actor=factories.TEST_ACTOR)
    staff_member_add(tenant=other_tenant, member_id=f"{SECRET}-staff", actor=factories.TEST_ACTOR)
    from django.utils import timezone

    from draws.services import TierSpec, draw_create, draw_run
    from events.models import EventParticipant

    draw_event = factories.make_event(other_tenant, name=f"{SECRET} draw event", status="CLOSED")
    EventParticipant.objects.create(tenant=other_tenant, event=draw_event, member_id=f"{SECRET}-drawn",
                                    joined_at=timezone.now())
    draw = draw_create(event=draw_event, name=f"{SECRET} draw", draw_at=timezone.now(),
                       tiers=[TierSpec(name=f"{SECRET} prize", winners=1)], actor=factories.TEST_ACTOR)
    draw_run(draw_id=draw.pk, actor=factories.TEST_ACTOR)
    with transaction.atomic():
        audit_record(tenant=other_tenant, actor=Actor.system(f"{SECRET} actor"), action="test.secret", obj=event)
    from rewards.models import RewardRule
    from rewards.services import birthdays_import, reward_rule_save, reward_trigger

    reward_rule_save(rule=RewardRule(tenant=other_tenant, name=f"{SECRET} rule", trigger="signup", points=100),
                     actor=factories.TEST_ACTOR)
    reward_trigger(tenant=other_tenant, member_id=f"{SECRET}-rewarded", trigger="signup", reference="signup")
    birthdays_import(tenant=other_tenant, text=f"{SECRET}-birthday,03-15\n", actor=factories.TEST_ACTOR)
    from rewards.models import ExchangeOffer
    from rewards.services import exchange_offer_save

    exchange_offer_save(offer=ExchangeOffer(tenant=other_tenant, inventory=inventory, points=100),
                        actor=factories.TEST_ACTOR)  # str(): "SECRETB pool ← 100"
    from django.core.files.uploadedfile import SimpleUploadedFile

    from partners.models import Partner
    from partners.services import partner_upload_create, partner_upload_process

    Partner.objects.create(tenant=other_tenant, name=f"{SECRET} partner", code="SECRETB")
    partner_inventory, _codes = factories.make_pool(other_tenant, size=2, policy=policy, event=event,
                                                    name=f"{SECRET} partner pool")
    partner_upload, _created = partner_upload_create(
        tenant=other_tenant, partner_code="SECRETB", inventory_public_id=partner_inventory.public_id,
        uploaded=SimpleUploadedFile(f"{SECRET}.csv", b"SECRETBMAPPED\nSECRETB$BAD\n"), actor=factories.TEST_ACTOR)
    partner_upload_process(upload_id=partner_upload.pk, tenant_id=partner_upload.tenant_id)
    from partners.distribution import distribution_create

    distribution_create(tenant=other_tenant, inventory=partner_inventory, partner=Partner.objects.get(
        tenant=other_tenant, code="SECRETB"), quantity=1, actor=factories.TEST_ACTOR)  # str(): "… → SECRETB (1)"
    from risk import budgets as risk_budgets
    from risk.models import FrequencyLimit, InventoryBudget, MemberRisk, WebhookEndpoint

    FrequencyLimit.objects.create(tenant=other_tenant, inventory=inventory, action="claim", dimension="device_id",
                                  max_per_day=5)
    MemberRisk.objects.create(tenant=other_tenant, member_id=f"{SECRET}-risky", level="block")
    WebhookEndpoint.objects.create(tenant=other_tenant, name=f"{SECRET} hook", url="http://127.0.0.1:9/hook")
    InventoryBudget.objects.create(tenant=other_tenant, inventory=inventory)
    with transaction.atomic():  # an alarm with its webhook delivery
        risk_budgets.raise_alarm(inventory=inventory, budget="issue_count", threshold=80, spent=8, limit=10,
                                 now=timezone.now())
    from exports.services import export_request

    export_request(tenant=other_tenant, kind="usages", filters={"event": event.public_id}, actor=factories.TEST_ACTOR)
    objects = {}
    for model_admin in tenant_admins():
        obj = model_admin.model._default_manager.filter(tenant=other_tenant).first()
        assert obj is not None, f"add a tenant-B {model_admin.model.__name__} to the b_objects fixture"
        objects[model_admin.model] = obj
    return objects


@pytest.fixture
def a_user(tenant):
    # A tenant-A user with every role, so only tenancy (not a missing permission) can refuse.
    from django.contrib.auth.models import Group

    user = factories.make_operator(tenant)
    user.groups.add(*Group.objects.filter(name__in=["viewer", "approver"]))
    return user


def test_every_tenant_owned_model_admin_is_covered():
    names = {ma.model.__name__ for ma in tenant_admins()}
    assert {"Event", "CouponPolicy", "CouponInventory", "CouponBatch", "CouponCode", "ApiClient", "AuditLog",
            "CouponIssue", "CouponUsage", "CouponGrant", "AudienceEntry"} <= names


@pytest.mark.parametrize("model_admin", tenant_admins(), ids=lambda ma: ma.model.__name__)
def test_tenant_a_user_cannot_list_search_or_open_tenant_b_objects(client, a_user, b_objects, model_admin):
    client.force_login(a_user)
    opts = model_admin.model._meta
    obj = b_objects[model_admin.model]
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    listing = client.get(changelist)
    assert listing.status_code == 200
    assert SECRET not in listing.content.decode()
    searched = client.get(changelist, {"q": SECRET})  # the term itself is echoed back; B's rows must not be
    assert searched.status_code == 200
    assert str(obj) not in searched.content.decode()
    change = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]), follow=True)
    assert SECRET not in change.content.decode()
    assert "doesn’t exist" in change.content.decode()
    history = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk]), follow=True)
    assert SECRET not in history.content.decode()


@pytest.mark.parametrize("model_admin", tenant_admins(), ids=lambda ma: ma.model.__name__)
def test_tenant_a_user_cannot_change_tenant_b_objects(client, a_user, b_objects, model_admin):
    client.force_login(a_user)
    opts = model_admin.model._meta
    obj = b_objects[model_admin.model]
    before = model_to_dict(obj)
    response = client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]),
                           {"name": "changed by A", "status": "CLOSED"})
    assert response.status_code in (302, 403, 404)
    obj.refresh_from_db()
    assert model_to_dict(obj) == before


def export_form_data(model_admin, user, **extra):
    """The POST of django-import-export's export page with every field ticked, as a browser would send it."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    resource = model_admin.get_export_resource_classes(request)[0]
    data = {f"{resource.__name__.lower()}_{name}": "on" for name in resource().get_export_order()}
    return {"format": "0", "resource": "0", **data, **extra}


@pytest.mark.parametrize("model_admin", [ma for ma in tenant_admins() if hasattr(ma, "export_admin_action")],
                         ids=lambda ma: ma.model.__name__)
def test_tenant_a_user_cannot_export_tenant_b_objects(client, a_user, tenant, b_objects, model_admin):
    client.force_login(a_user)
    opts = model_admin.model._meta
    obj = b_objects[model_admin.model]
    response = client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_export"),
                           export_form_data(model_admin, a_user, export_items=[obj.pk]))
    body = response.content.decode(errors="replace")
    assert SECRET not in body
    # and an export of the whole list as A holds none of B's rows either
    everything = client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_export"),
                             export_form_data(model_admin, a_user))
    assert everything.status_code == 200 and everything["Content-Disposition"].startswith("attachment")
    assert SECRET not in everything.content.decode(errors="replace")
    # the same request by a superuser does export the row, so the assertions above are not vacuous
    root = factories.make_user(tenant=None, role=None, superuser=True)
    client.force_login(root)
    control = client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_export"),
                          export_form_data(model_admin, root, export_items=[obj.pk]))
    assert SECRET in control.content.decode(errors="replace")


def test_tenant_a_user_cannot_reach_the_approval_page_of_a_tenant_b_policy(client, a_user, b_objects):
    from coupons.models import CouponPolicy

    client.force_login(a_user)
    policy = b_objects[CouponPolicy]
    url = reverse("admin:coupons_couponpolicy_decide", args=[policy.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"decision": "approve"}).status_code == 404


def test_tenant_a_user_cannot_open_the_grant_page_of_a_tenant_b_inventory(client, a_user, b_objects):
    from coupons.models import CouponInventory

    client.force_login(a_user)
    url = reverse("admin:coupons_couponinventory_grant", args=[b_objects[CouponInventory].pk])
    assert client.get(url).status_code == 404


def test_foreign_key_choices_offer_only_the_users_tenant(client, a_user, tenant, b_objects):
    factories.make_approved_policy(tenant, name="A policy")
    client.force_login(a_user)
    page = client.get(reverse("admin:coupons_couponinventory_add")).content.decode()
    assert "A policy" in page
    assert SECRET not in page


def test_superuser_sees_both_tenants(client, b_objects, tenant):
    factories.make_event(tenant, name="A-event")
    root = factories.make_user(tenant=None, role=None, superuser=True)
    client.force_login(root)
    page = client.get(reverse("admin:events_event_changelist")).content.decode()
    assert "A-event" in page and SECRET in page


def test_tenant_users_cannot_open_the_user_admin(client, a_user, other_tenant):
    client.force_login(a_user)
    assert client.get(reverse("admin:core_user_changelist")).status_code == 403


def test_tenant_a_user_cannot_open_the_campaign_report_of_a_tenant_b_event(client, a_user, b_objects):
    """Issue #20: the report page and its XLSX answer 404 for another tenant's event, as for its change page."""
    from events.models import Event

    client.force_login(a_user)
    event = b_objects[Event]
    for name in ("dashboard:event_report", "dashboard:event_report_xlsx"):
        response = client.get(reverse(name, args=[event.pk]))
        assert response.status_code == 404
        assert SECRET not in response.content.decode(errors="replace")


def test_tenant_a_approvers_inbox_and_header_count_hold_none_of_tenant_bs_pending_policies(client, a_user, tenant,
                                                                                             other_tenant, b_objects):
    """Issue #20: a pending tenant-B policy is neither listed nor counted for a tenant-A approver; a pending
    tenant-A policy is (so the assertions are not vacuous)."""
    from coupons.services import policy_submit

    b_author = factories.make_operator(other_tenant)
    policy_submit(policy=factories.make_draft_policy(other_tenant, author=b_author, name=f"{SECRET} pending"),
                  actor_user=b_author)
    a_author = factories.make_operator(tenant)
    policy_submit(policy=factories.make_draft_policy(tenant, author=a_author, name="A pending"), actor_user=a_author)
    client.force_login(a_user)
    page = client.get(reverse("admin:coupons_couponpolicy_approvals")).content.decode()
    assert "A pending" in page and SECRET not in page
    assert 'id="console-badge-admin-coupons_couponpolicy_approvals">1</span>' in page
