"""Idempotently create a demo tenant to click through: logins, API tokens, policies of every kind, an open event,
an inventory with a promo code, a generated batch and a partner. Run it as often as you like; it never duplicates anything."""
from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand
from core.audit import Actor
from core.models import ApiClient, Tenant, User
from core.roles import ROLE_APPROVER, ROLE_OPERATOR, ensure_roles
from core.services import api_client_create, api_client_rotate_token, tenant_create
from coupons import services as coupon_services
from coupons.models import CouponBatch, CouponInventory, CouponPolicy
from events.models import Event
from events.services import event_create
from coupons.services.generation import batch_generate
from partners.models import Partner
from partners.services import partner_create
from core.tokens import split_token, token_matches

DEMO_SLUG = "demo"
ACTOR = Actor.system("demo_data")


def _credentials_file() -> Path:
    return Path(settings.VAR_DIR) / "demo_credentials.json"


def _load_credentials() -> dict[str, str]:
    path = _credentials_file()
    return json.loads(path.read_text()) if path.exists() else {}


def _save_credentials(data: dict[str, str]) -> None:
    path = _credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)


class Command(BaseCommand):
    help = _("Create (idempotently) a demo tenant with logins, API tokens, policies, an event, an inventory and codes.")  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help=_("Print identifiers and tokens as one JSON object."))
        parser.add_argument("--language", choices=[code for code, _name in settings.LANGUAGES], default="ko",
                            help=_("Language of the demo tenant and of the names of its data (default: Korean)."))

    def handle(self, *args, **opts):
        # The demo is a Korean card company's unless told otherwise: its names are in its own language.
        with translation.override(opts["language"]):
            self._handle(**opts)

    def _handle(self, *, language: str, **opts):
        ensure_roles()
        creds = _load_credentials()
        creds.setdefault("password", secrets.token_urlsafe(9))
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first() or tenant_create(
            name=gettext("Demo Card Co."), slug=DEMO_SLUG, currency="KRW", rounding_unit=10, language=language,
            actor=ACTOR)
        self._user("admin", creds["password"], superuser=True, tenant=None, group=None)
        operator = self._user("operator", creds["password"], superuser=False, tenant=tenant, group=ROLE_OPERATOR)
        approver = self._user("approver", creds["password"], superuser=False, tenant=tenant, group=ROLE_APPROVER)
        creds["member_token"] = self._token(tenant, gettext("demo member app"), ApiClient.Scope.MEMBER, creds.get("member_token"))
        creds["operator_token"] = self._token(tenant, gettext("demo back office"), ApiClient.Scope.OPERATOR,
                                              creds.get("operator_token"))
        _save_credentials(creds)

        policies = self._policies(tenant, author=operator, approver=approver)
        now = timezone.now()
        event = Event.objects.filter(tenant=tenant, name=gettext("Demo welcome event")).first() or event_create(
            tenant=tenant, name=gettext("Demo welcome event"), description=gettext("Open demo event for trying the API."),
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=60), status=Event.Status.OPEN,
            actor=ACTOR)
        inventory = CouponInventory.objects.filter(tenant=tenant, name=gettext("Welcome 10% pool")).first() or \
            coupon_services.inventory_create(tenant=tenant, event=event, policy=policies["percentage"],
                                             name=gettext("Welcome 10% pool"), total_quantity=100_000, per_member_limit=1,
                                             promo_code="WELCOME10", actor=ACTOR)
        batch = CouponBatch.objects.filter(tenant=tenant, batch_code="DEMO-001").first() or \
            coupon_services.batch_create(inventory=inventory, batch_code="DEMO-001", quantity=1_000, actor=ACTOR)
        if batch.status != CouponBatch.Status.COMPLETED:
            batch = batch_generate(batch_id=batch.pk, actor=ACTOR)


        # A partner to hand codes to (flow 1: POST /distributions) and to take partner codes from (flow 2).
        partner = Partner.objects.filter(tenant=tenant, code="GS25").first() or partner_create(
            tenant=tenant, name=gettext("GS25 convenience stores"), code="GS25", actor=ACTOR)

        result: dict[str, Any] = {
            "tenant": tenant.slug,
            "console": {"url": "/admin/", "users": {"admin": "superuser", "operator": "operator",
                                                    "approver": "approver"},
                        "password": creds["password"]},
            "member_token": creds["member_token"],
            "operator_token": creds["operator_token"],
            "event": event.public_id,
            "inventory": inventory.public_id,
            "promo_code": inventory.promo_code,
            "batch": batch.batch_code,
            "partner": partner.code,
            "policies": {kind: p.public_id for kind, p in policies.items()},
        }
        # Identifiers (not secrets) for scripts and the smoke test; credentials stay in demo_credentials.json.
        (Path(settings.VAR_DIR) / "demo.json").write_text(json.dumps(
            {k: v for k, v in result.items() if k not in ("member_token", "operator_token", "console")}))
        if opts["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(self.style.SUCCESS("Demo data is ready."))
            self.stdout.write(f"  Console logins (password for all: {creds['password']}): admin (superuser), "
                              f"operator, approver")
            self.stdout.write(f"  Member API token:   {creds['member_token']}")
            self.stdout.write(f"  Operator API token: {creds['operator_token']}")
            self.stdout.write(f"  Inventory {inventory.public_id} (promo code {inventory.promo_code}), "
                              f"batch {batch.batch_code}: {batch.generated_count} codes")

    def _user(self, username: str, password: str, *, superuser: bool, tenant: Tenant | None,
              group: str | None) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, is_staff=True, is_superuser=superuser, tenant=tenant)
        user.set_password(password)
        user.save()
        if group:
            user.groups.set([Group.objects.get(name=group)])
        return user

    def _token(self, tenant: Tenant, name: str, scope: str, known: str | None) -> str:
        client = ApiClient.objects.filter(tenant=tenant, name=name).first()
        if client is None:
            return api_client_create(tenant=tenant, name=name, scope=scope, actor=ACTOR)[1]
        if known:
            if split_token(known) == client.key_prefix and token_matches(known, client.token_hash):
                return known
        # The stored token is only a hash; when the local copy is gone, issue a fresh one.
        return api_client_rotate_token(client=client, actor=ACTOR)

    def _policies(self, tenant: Tenant, *, author: User, approver: User) -> dict[str, CouponPolicy]:
        now = timezone.now()
        period = {"validity_type": "fixed", "valid_from": now - timedelta(days=1), "valid_until": now + timedelta(days=90)}
        specs: dict[str, dict[str, Any]] = {
            "amount": {"name": gettext("5,000 won voucher"), "amount": 5000, "stacking_group": "platform"},
            "threshold": {"name": gettext("3,000 off 30,000"), "amount": 3000, "threshold": 30000,
                          "stacking_group": "merchant"},
            "percentage": {"name": gettext("10% off, up to 5,000"), "rate": 10, "cap": 5000, "threshold": 20000,
                           "stacking_group": "platform"},
            "shipping": {"name": gettext("Free shipping"), "stacking_group": "shipping"},
            "sku_deduction": {"name": gettext("One free sample"), "sku_deduction_sku": "SAMPLE-1", "sku_deduction_units": 1,
                              "stacking_group": "super"},
        }
        result = {}
        for kind, spec in specs.items():
            policy = CouponPolicy.objects.filter(tenant=tenant, name=spec["name"]).first()
            if policy is None:
                with transaction.atomic():
                    policy = coupon_services.policy_save_draft(
                        policy=CouponPolicy(tenant=tenant, kind=kind, **period, **spec), actor_user=author)
            if policy.status in ("DRAFT", "REJECTED"):
                policy = coupon_services.policy_submit(policy=policy, actor_user=author)
            if policy.status == "PENDING":
                policy = coupon_services.policy_approve(policy=policy, actor_user=approver)
            result[kind] = policy
        return result
