"""The floors of the member API (#21, R-NFR-2), mounted only by the benchmark server (``bench.wsgi``), never by
``coupon_project.urls``:

- the framework floor: what one request costs on this stack before any coupon logic — the project's middleware, its
  token authentication, a JSON body, one transactional INSERT, a small JSON answer;
- the contract floors: the least a claim or a redemption can do and keep the contract (below).

Design: docs/design/benchmarks.md#framework-floor and #contract-floors.
"""
from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import partitioning
from core.api import limits
from core.audit import Actor, actor_params
from core.locks import member_lock
from coupons.models import CouponCode, CouponInventory
from coupons.services.counters import shard_of
from coupons.services.issue import _MEMBER_STATE, _TAKE_NEXT, RequestContext, _issue_params
from coupons.services.lifecycle import _LOCKED_ROWS, _REDEEM_WRITES, _locked_sql
from coupons.validity import validity_at_issue

FLOOR_PATH = "/api/v1/_bench/floor"

# Created in the benchmark's scratch database only (``create_floor_table``), so no migration ships it.
_TABLE = """CREATE TABLE IF NOT EXISTS bench_floor (
    id bigserial PRIMARY KEY, tenant_id bigint NOT NULL, member_id varchar(64) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"""


def create_floor_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(_TABLE)


class FloorView(APIView):
    """DRF's APIView with the project's defaults (ApiTokenAuthentication, IsApiClient, the JSON parser and renderer):
    the body is parsed, one row is inserted in a transaction, and a small JSON object is answered."""

    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        member = str(data.get("member_id", ""))[:64]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor (tenant_id, member_id) VALUES (%s, %s) RETURNING id",
                           [request.user.tenant_id, member])
            row_id = cursor.fetchone()[0]
        return Response({"id": row_id, "member_id": member}, status=status.HTTP_201_CREATED)


# --- the contract floors (#21): the least a claim or a redemption can do and keep what the product owes ------------
# What the issue's targets are measured against is the framework floor above; these two say how close any claim or
# redemption could come to it while keeping the contract: they do the I/O the specification requires and nothing else
# (no validation, risk rules, idempotency, serialisers, Bloom probe or pricing). If a contract floor's own ratio to the
# framework floor is below a target, no change to the Python around the claim or the redemption can reach it.
# Design: docs/design/benchmarks.md#contract-floors.

CLAIM_FLOOR_PATH = "/api/v1/_bench/claim-floor"
REDEEM_FLOOR_PATH = "/api/v1/_bench/redeem-floor/<str:code>"

_inventories: dict[tuple[int, str], CouponInventory] = {}


def _inventory(tenant_id: int, public_id: str) -> CouponInventory:
    found = _inventories.get((tenant_id, public_id))
    if found is None:
        found = _inventories[(tenant_id, public_id)] = CouponInventory.objects.select_related("policy").get(
            tenant_id=tenant_id, public_id=public_id)
    return found


class ClaimFloorView(APIView):
    """A claim's contract: the member's Redis lock (R-ISS-3, seed 001), in one transaction the member's slot count
    (R-ISS-4) and the product's own statement that takes the next free code with SKIP LOCKED and writes the issue row,
    the counter shard and the audit row; the code answered."""

    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        member = str(data.get("member_id", ""))[:64]
        inventory = _inventory(request.user.tenant_id, str(data.get("inventory", "")))
        now = timezone.now()
        valid_from, valid_until = validity_at_issue(inventory.policy, now, None)
        ctx = RequestContext(client=request.user)
        with member_lock(f"{inventory.tenant_id}:{inventory.pk}:{member}"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(partitioning.for_tenant(_MEMBER_STATE, inventory.tenant_id),
                           {"inventory": inventory.pk, "member": member, "tenant": inventory.tenant_id, "now": now})
            held = cursor.fetchone()[0]
            if held >= inventory.per_member_limit:  # the per-member limit is part of the contract
                return Response({"code": "limit_reached"}, status=status.HTTP_409_CONFLICT)
            cursor.execute(partitioning.for_tenant(_TAKE_NEXT, inventory.tenant_id),
                           _issue_params(inventory=inventory, member_id=member, slot=held + 1, via="inventory",
                                         ctx=ctx, now=now, valid_from=valid_from, valid_until=valid_until))
            row = cursor.fetchone()
        if row is None:
            return Response({"code": "sold_out"}, status=status.HTTP_409_CONFLICT)
        return Response({"code": row[1], "member_id": member}, status=status.HTTP_201_CREATED)


class RedeemFloorView(APIView):
    """A redemption's contract: the code-lookup budgets reserved in one Redis script before the code is looked at
    (R-RISK-4, #17: concurrent guesses cannot overrun them), in one transaction the code row locked with its
    inventory, policy, tenant and batch, and the product's own statement that marks it USED and writes the usage row,
    the counter shard and the audit row; then the found code's lookup given back to the failed-guess budgets (a
    second script: without it every redemption would count as a failed guess). The discount is a constant (no
    pricing)."""

    def post(self, request: Request, code: str) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        member = str(data.get("member_id", ""))[:64]
        order_id = str(data.get("order_id", ""))[:64]
        tenant_id = request.user.tenant_id
        reservation = limits.reserve(limits.request_budgets(
            request=request, client_id=request.user.pk, tenant_id=tenant_id, members=[limits.identifier_key(member)],
            devices=[]), 1)
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(partitioning.for_tenant(_locked_sql(), tenant_id), {"tenant": tenant_id, "code": code})
            row = cursor.fetchone()
            coupon = _LOCKED_ROWS.load(row)[0] if row is not None else None
            usable = isinstance(coupon, CouponCode) and coupon.status == "ISSUED" and coupon.member_id == member
            if not usable:  # only the owner's ISSUED code (a repeated body, once the run is out of bodies)
                return Response({"code": "not_usable"}, status=status.HTTP_409_CONFLICT)
            cursor.execute(partitioning.for_tenant(_REDEEM_WRITES, tenant_id), {
                "coupon": coupon.pk, "tenant": tenant_id, "inventory": coupon.inventory_id, "member": member,
                "order": order_id, "order_amount": 33000, "discount": 3000, "channel": "", "payment_method": "",
                "client": request.user.pk, "ip": None, "device": "", "now": now, "shard": shard_of(member),
                **actor_params(Actor.api_client(request.user)), "code": coupon.code, "before": coupon.status})
            usage_id = cursor.fetchone()[0]
        limits.refund(reservation, 1)
        return Response({"code": code, "usage_id": usage_id, "discount": 3000})
