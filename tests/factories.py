"""Plain factory functions for tests: each makes a valid object through the services, overridable by keyword."""
from __future__ import annotations

import itertools
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from core.audit import Actor
from core.fields import CODE_ALPHABET
from core.models import ApiClient, Tenant, User
from core.roles import ROLE_APPROVER, ROLE_OPERATOR, ROLE_VIEWER, ensure_roles
from core.services import api_client_create
from coupons import services as coupon_services
from coupons.models import CouponBatch, CouponInventory, CouponPolicy
from events.models import Event
from events.services import event_create

_seq = itertools.count(1)
TEST_ACTOR = Actor.system("tests")


def make_tenant(**kwargs: Any) -> Tenant:
    n = next(_seq)
    # English console unless a test asks for Korean (the model's default is "ko"; assertions here read English).
    defaults: dict[str, Any] = {"name": f"Tenant {n}", "slug": f"tenant-{n}", "currency": "KRW", "rounding_unit": 10,
                                "language": "en"}
    defaults.update(kwargs)
    return Tenant.objects.create(**defaults)


def make_user(*, tenant: Tenant | None, role: str | None = ROLE_OPERATOR, superuser: bool = False,
              username: str | None = None, password: str = "pw-for-tests-1") -> User:
    ensure_roles()
    user = User.objects.create_user(username=username or f"user{next(_seq)}", password=password, tenant=tenant,
                                    is_staff=True, is_superuser=superuser)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_operator(tenant: Tenant, **kwargs: Any) -> User:
    return make_user(tenant=tenant, role=ROLE_OPERATOR, **kwargs)


def make_approver(tenant: Tenant, **kwargs: Any) -> User:
    return make_user(tenant=tenant, role=ROLE_APPROVER, **kwargs)


def make_viewer(tenant: Tenant, **kwargs: Any) -> User:
    return make_user(tenant=tenant, role=ROLE_VIEWER, **kwargs)


def make_client(tenant: Tenant, *, scope: str = ApiClient.Scope.MEMBER, name: str | None = None
                ) -> tuple[ApiClient, str]:
    return api_client_create(tenant=tenant, name=name or f"client {next(_seq)}", scope=scope, actor=TEST_ACTOR)


def policy_fields(kind: str = "amount", **kwargs: Any) -> dict[str, Any]:
    now = timezone.now()
    fields: dict[str, Any] = {"name": f"{kind} policy {next(_seq)}", "kind": kind, "validity_type": "fixed",
                              "valid_from": now - timedelta(days=1), "valid_until": now + timedelta(days=30)}
    fields.update({
        "amount": {"amount": 5000},
        "threshold": {"amount": 3000, "threshold": 30000},
        "percentage": {"rate": 10, "cap": 5000},
        "shipping": {},
        "sku_deduction": {"sku_deduction_sku": "SKU-1", "sku_deduction_units": 1},
    }[kind])
    fields.update(kwargs)
    return fields


def make_draft_policy(tenant: Tenant, *, author: User | None = None, kind: str = "amount",
                      **kwargs: Any) -> CouponPolicy:
    author = author or make_operator(tenant)
    return coupon_services.policy_save_draft(policy=CouponPolicy(tenant=tenant, **policy_fields(kind, **kwargs)),
                                             actor_user=author)


def make_approved_policy(tenant: Tenant, *, kind: str = "amount", **kwargs: Any) -> CouponPolicy:
    author = make_operator(tenant)
    policy = make_draft_policy(tenant, author=author, kind=kind, **kwargs)
    coupon_services.policy_submit(policy=policy, actor_user=author)
    return coupon_services.policy_approve(policy=policy, actor_user=make_approver(tenant))


def make_event(tenant: Tenant, **kwargs: Any) -> Event:
    now = timezone.now()
    fields: dict[str, Any] = {"name": f"Event {next(_seq)}", "starts_at": now - timedelta(days=1),
                              "ends_at": now + timedelta(days=30), "status": Event.Status.OPEN}
    fields.update(kwargs)
    return event_create(tenant=tenant, actor=TEST_ACTOR, **fields)


def make_inventory(tenant: Tenant, *, policy: CouponPolicy | None = None, event: Event | None = None,
                   total_quantity: int = 1000, **kwargs: Any) -> CouponInventory:
    return coupon_services.inventory_create(
        tenant=tenant, event=event or make_event(tenant), policy=policy or make_approved_policy(tenant),
        name=kwargs.pop("name", f"Pool {next(_seq)}"), total_quantity=total_quantity, actor=TEST_ACTOR, **kwargs)


def make_batch(inventory: CouponInventory, *, quantity: int = 100, **kwargs: Any) -> CouponBatch:
    return coupon_services.batch_create(inventory=inventory, batch_code=kwargs.pop("batch_code", f"B-{next(_seq)}"),
                                        quantity=quantity, actor=TEST_ACTOR, **kwargs)


def random_code(*, length: int = 10) -> str:
    """A random code of the platform's alphabet (not stored anywhere)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def random_codes(n: int, *, length: int = 10) -> list[str]:
    """n random codes (duplicates possible, like independent guesses)."""
    return [random_code(length=length) for _ in range(n)]


def make_codes(batch: CouponBatch, n: int, **fields: Any) -> list:
    """n AVAILABLE codes in a batch, inserted directly (the generator has its own tests)."""
    from coupons.models import CouponCode

    codes = set(random_codes(n))
    while len(codes) < n:
        codes.add(random_code())
    from coupons.bloom import bloom_adding

    rows = [CouponCode(tenant_id=batch.tenant_id, inventory_id=batch.inventory_id, batch=batch, code=c, **fields)
            for c in sorted(codes)]
    # Like every writer of codes: bits first (the tenant's too), so lookups never miss a committed code.
    with bloom_adding(codes, tenant_id=batch.tenant_id):
        CouponCode.objects.bulk_create(rows, batch_size=5000)
    CouponBatch.objects.filter(pk=batch.pk).update(generated_count=n, status=CouponBatch.Status.COMPLETED) \
        if n == batch.quantity else None
    return list(CouponCode.objects.filter(batch=batch).order_by("id"))


def make_pool(tenant: Tenant, *, size: int = 10, policy: CouponPolicy | None = None, **inventory_kwargs: Any):
    """An inventory with a batch of `size` AVAILABLE codes. Returns (inventory, codes)."""
    inventory = make_inventory(tenant, policy=policy, total_quantity=max(size, 1), **inventory_kwargs)
    batch = make_batch(inventory, quantity=max(size, 1))
    return inventory, make_codes(batch, size) if size else []


def order(total: int = 50_000, *, order_id: str = "o-1", shipping_fee: int = 3000, channel: str = "ios",
          **line: Any) -> dict[str, Any]:
    item = {"sku": "S1", "spu": "P1", "category": "C1", "shop": "shop-1", "unit_price": total, "quantity": 1,
            "virtual": False}
    item.update(line)
    return {"order_id": order_id, "items": [item], "shipping_fee": shipping_fee, "channel": channel,
            "payment_method": "online"}


# --- API clients -------------------------------------------------------------------------------------------------

def api_for(token: str) -> APIClient:
    """A DRF test client sending ``Authorization: Bearer <token>`` on every request."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def make_api(tenant: Tenant, *, scope: str = ApiClient.Scope.MEMBER) -> APIClient:
    """A test client authenticated as a new API client of ``tenant`` (member scope unless told)."""
    return api_for(make_client(tenant, scope=scope)[1])


def make_operator_api(tenant: Tenant) -> APIClient:
    """A test client of an operator-scope API client (grants, revocations, exports, distributions, uploads)."""
    return make_api(tenant, scope=ApiClient.Scope.OPERATOR)


# --- Partner uploads ---------------------------------------------------------------------------------------------

def make_partner_upload(tenant: Tenant, inventory: CouponInventory, content: bytes, *, partner_code: str = "GS25",
                        name: str = "c.csv") -> Any:
    """A partner's code file stored through the service (processing starts as the service starts it); the upload,
    read back. The partner must exist."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from partners.models import PartnerUpload
    from partners.services import partner_upload_create

    upload, _created = partner_upload_create(tenant=tenant, partner_code=partner_code,
                                             inventory_public_id=inventory.public_id,
                                             uploaded=SimpleUploadedFile(name, content), actor=TEST_ACTOR)
    return PartnerUpload.objects.get(pk=upload.pk)
