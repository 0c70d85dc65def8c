"""A tenant to crawl (issue #20): the product's own demo data in the tenant's language, plus rows for the pages the
demo leaves empty — issued and redeemed coupons, a partner upload with failed rows, a distribution, a draw with
winners, a finished export, reward rules and grants, a risk entry. Names are in the run's language, as a Korean
card company's team would type them, so that what is left in English on a Korean page is the console's own text."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone, translation

from core.audit import Actor
from core.models import Tenant, User
from tests import factories

NAMES = {
    "ko": {"webhook": "알람 수신", "staff": "사내 시험 계정", "draw": "연말 경품 추첨", "first": "1등", "second": "2등", "reason": "부정 사용 의심", "rule": "가입 축하 포인트",
           "prize_pool": "경품 쿠폰", "upload": "gs25-코드.csv",
           "event": "연말 감사 이벤트"},
    "en": {"webhook": "Alarm receiver", "staff": "in-house test account", "draw": "Year-end prize draw", "first": "first prize", "second": "second prize",
           "reason": "suspected abuse", "rule": "Welcome points", "prize_pool": "Prize coupons",
           "upload": "gs25-codes.csv", "event": "Year-end thank-you event"},
}


@dataclass
class Seeded:
    tenant: Tenant
    admin: User
    operator: User


def seed_tenant(lang: str) -> Seeded:
    names = NAMES[lang]
    call_command("demo_data", language=lang, stdout=_Null())
    tenant = Tenant.objects.get(slug="demo")
    admin = User.objects.get(username="admin")
    operator = User.objects.get(username="operator")
    for user in (admin, operator):
        user.set_password(factories_password())
        user.save(update_fields=["password"])
    admin.language = lang  # the superuser has no tenant: their own preference is the console's language
    admin.save(update_fields=["language"])

    from coupons.models import CouponInventory

    inventory = CouponInventory.objects.get(tenant=tenant, promo_code="WELCOME10")
    with translation.override(lang):
        _issues_and_usages(tenant, inventory)
        _partner_upload(tenant, inventory, names)
        _distribution(tenant, inventory)
        _draw(tenant, names)
        _export(tenant, inventory)
        _rewards(tenant, names)
        _risk(tenant, inventory, names)
        _more_rows(tenant, inventory, names)
        _approvals(tenant, inventory, admin, operator, names)
    return Seeded(tenant=tenant, admin=admin, operator=operator)


def factories_password() -> str:
    from tests.browser.console import PASSWORD

    return PASSWORD


class _Null:
    def write(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def flush(self) -> None:
        pass


def _issues_and_usages(tenant: Tenant, inventory: Any) -> None:
    from coupons.services import lifecycle
    from coupons.discounts import validate_order_payload
    from coupons.services.issue import RequestContext, issue_from_pool

    ctx = RequestContext(channel="android")
    for i, total in enumerate((53_000, 120_000)):
        coupon = issue_from_pool(inventory=inventory, member_id=f"member-{i:03d}", via="inventory", ctx=ctx)
        lifecycle.coupon_redeem(tenant=tenant, code=coupon.code, member_id=f"member-{i:03d}", order_id=f"order-{i}",
                                order=validate_order_payload(factories.order(total, order_id=f"order-{i}")), ctx=ctx)
    issue_from_pool(inventory=inventory, member_id="member-100", via="inventory", ctx=RequestContext(channel="ios"))


def _partner_upload(tenant: Tenant, inventory: Any, names: dict[str, str]) -> None:
    from partners.services import partner_upload_create

    content = "\n".join(["partner_code", "GOOD0001", "BAD-CODE!", "GOOD0001", "A" * 70, ""]).encode()
    partner_upload_create(tenant=tenant, partner_code="GS25", inventory_public_id=inventory.public_id,
                          uploaded=SimpleUploadedFile(names["upload"], content, content_type="text/csv"),
                          actor=factories.TEST_ACTOR)


def _distribution(tenant: Tenant, inventory: Any) -> None:
    from partners.distribution import distribution_create
    from partners.models import Partner

    distribution_create(tenant=tenant, inventory=inventory, partner=Partner.objects.get(tenant=tenant, code="GS25"),
                        quantity=20, actor=factories.TEST_ACTOR)


def _approvals(tenant: Tenant, inventory: Any, admin: User, operator: User, names: dict[str, str]) -> None:
    """Issue #20: large requests waiting for an approver (the inbox and decide pages), and one rejected."""
    from coupons.services.issue import RequestContext
    from coupons.services.grant import grant_create
    from partners.distribution import distribution_create, distribution_reject
    from partners.models import Partner

    tenant.distribution_approval_threshold, tenant.grant_approval_threshold = 100, 3
    tenant.save(update_fields=["distribution_approval_threshold", "grant_approval_threshold"])
    partner = Partner.objects.get(tenant=tenant, code="GS25")
    distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=500,
                        actor=Actor.user(operator), user=operator)
    refused = distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=1000,
                                  actor=Actor.user(operator), user=operator)
    distribution_reject(distribution=refused, user=admin, reason=names["reason"])
    grant_create(tenant=tenant, inventory_public_id=inventory.public_id,
                 member_ids=["member-101", "member-102", "member-103"], ctx=RequestContext(operator=operator))


def _draw(tenant: Tenant, names: dict[str, str]) -> None:
    from draws.services import TierSpec, draw_create, draw_run
    from tests.draws.helpers import add_participants, end

    event = factories.make_event(tenant, name=names["event"])
    add_participants(event, [f"member-{i:03d}" for i in range(12)])
    end(event)
    from coupons.models import CouponPolicy

    policy = CouponPolicy.objects.filter(tenant=tenant, status="APPROVED", kind="amount").first()
    prize_pool = factories.make_inventory(tenant, event=event, policy=policy, total_quantity=10,
                                          name=names["prize_pool"])
    factories.make_codes(factories.make_batch(prize_pool, quantity=2), 2)
    draw = draw_create(event=event, name=names["draw"], draw_at=event.ends_at, actor=factories.TEST_ACTOR,
                       tiers=[TierSpec(name=names["first"], winners=3, inventory=prize_pool),
                              TierSpec(name=names["second"], winners=2)])
    draw_run(draw_id=draw.pk, actor=factories.TEST_ACTOR)


def _export(tenant: Tenant, inventory: Any) -> None:
    from exports.services import export_request

    export_request(tenant=tenant, kind="usages", filters={"inventory": inventory.public_id},
                   actor=factories.TEST_ACTOR)


def _rewards(tenant: Tenant, names: dict[str, str]) -> None:
    from rewards.models import RewardRule, Trigger
    from rewards.services import reward_rule_save, reward_trigger

    rule = RewardRule(tenant=tenant, name=names["rule"], trigger=Trigger.SIGNUP, points=1000)
    reward_rule_save(rule=rule, actor=factories.TEST_ACTOR)
    reward_trigger(tenant=tenant, member_id="member-001", trigger=Trigger.SIGNUP, reference="signup-1",
                   actor=factories.TEST_ACTOR)


def _risk(tenant: Tenant, inventory: Any, names: dict[str, str]) -> None:
    from risk.models import MemberRisk
    from risk.services import member_risk_save

    member_risk_save(entry=MemberRisk(tenant=tenant, member_id="member-666", level=MemberRisk.Level.BLOCK,
                                      reason=names["reason"], expires_at=timezone.now() + timedelta(days=30)),
                     actor=factories.TEST_ACTOR)


def _more_rows(tenant: Tenant, inventory: Any, names: dict[str, str]) -> None:
    """One row for each list the steps above leave empty, so its change page is crawled too."""
    from coupons.models import AudienceEntry
    from events.models import EventStaffMember
    from rewards.services import birthdays_import
    from risk.models import Alarm, FrequencyLimit, InventoryBudget, WebhookDelivery, WebhookEndpoint
    from risk.services import frequency_limit_save

    frequency_limit_save(limit=FrequencyLimit(tenant=tenant, inventory=inventory, action=FrequencyLimit.Action.CLAIM,
                                              dimension=FrequencyLimit.Dimension.MEMBER, max_per_day=3),
                         actor=factories.TEST_ACTOR)
    # created directly: saving through the service resolves the host (the SSRF guard), and tests have no DNS
    endpoint = WebhookEndpoint.objects.create(tenant=tenant, name=names["webhook"],
                                              url="https://hooks.example.com/coupons")
    InventoryBudget.objects.get_or_create(tenant=tenant, inventory=inventory, defaults={"alarm_thresholds": [80, 95]})
    alarm = Alarm.objects.create(tenant=tenant, inventory=inventory, budget=Alarm.Budget.ISSUE_COUNT, threshold=80,
                                 spent=80_000, limit=100_000, raised_at=timezone.now())
    WebhookDelivery.objects.create(tenant=tenant, endpoint=endpoint, alarm=alarm, event="budget.threshold",
                                   body='{"alarm": 1, "threshold": 80}', next_attempt_at=timezone.now())
    from coupons.models import CouponGrant

    CouponGrant.objects.create(tenant=tenant, inventory=inventory, status=CouponGrant.Status.PENDING, total=0)
    EventStaffMember.objects.create(tenant=tenant, member_id="staff-001", note=names["staff"])
    AudienceEntry.objects.create(tenant=tenant, inventory=inventory, member_id="member-007")
    birthdays_import(tenant=tenant, text="member_id,birthday\nmember-001,1990-12-07\n", actor=factories.TEST_ACTOR)
