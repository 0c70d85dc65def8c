from __future__ import annotations

import datetime as dt
import io
import zoneinfo
from dataclasses import dataclass
from typing import Any

import pytest
from openpyxl import load_workbook

from coupons.services import lifecycle
from coupons.discounts import validate_order_payload
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponUsage
from tests import factories

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Export files go to a fresh MEDIA_ROOT per test."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@dataclass
class UsageWorld:
    tenant: Any
    event: Any
    other_event: Any
    inventory: Any
    other_inventory: Any
    pos: Any  # ApiClient "pos-app"
    web: Any  # ApiClient "web"
    usages: dict[str, CouponUsage]


def redeem(tenant: Any, inventory: Any, *, member_id: str, order_id: str, total: int, client: Any,
           used_at: dt.datetime) -> CouponUsage:
    ctx = RequestContext(client=client, channel="ios")
    coupon = issue_from_pool(inventory=inventory, member_id=member_id, via="inventory", ctx=ctx)
    _code, usage = lifecycle.coupon_redeem(tenant=tenant, code=coupon.code, member_id=member_id, order_id=order_id,
                                           order=validate_order_payload(factories.order(total, order_id=order_id)),
                                           ctx=ctx)
    CouponUsage.objects.filter(pk=usage.pk).update(used_at=used_at)  # fixed times for the date filter
    usage.refresh_from_db()
    return usage


@pytest.fixture
def usage_world(tenant) -> UsageWorld:
    """Usages in two events through two API clients, at fixed times around a Seoul day boundary."""
    tenant.time_zone = "Asia/Seoul"
    tenant.save(update_fields=["time_zone"])
    pos, _ = factories.make_client(tenant, name="pos-app")
    web, _ = factories.make_client(tenant, name="web")
    inventory, _codes = factories.make_pool(tenant, size=6, name="Spring pool", per_member_limit=5)
    other_inventory, _codes = factories.make_pool(tenant, size=2, name="Other pool")
    at = lambda day, hour, minute=0: dt.datetime(2026, 3, day, hour, minute, tzinfo=SEOUL)  # noqa: E731
    usages = {
        # 2026-03-01 00:30 Seoul is still 2026-02-28 in UTC: the date filter is the tenant's day, not UTC's.
        "early": redeem(tenant, inventory, member_id="m-1", order_id="o-1", total=40_000, client=pos,
                        used_at=at(1, 0, 30)),
        "formula": redeem(tenant, inventory, member_id="=HYPERLINK(\"http://x\")", order_id="+82-10", total=55_500,
                          client=pos, used_at=at(2, 9, 15)),
        "late": redeem(tenant, inventory, member_id="m-3", order_id="@SUM(A1)", total=1_234_567, client=pos,
                       used_at=at(3, 23, 59)),
        "after_range": redeem(tenant, inventory, member_id="m-4", order_id="o-4", total=30_000, client=pos,
                              used_at=at(4, 0, 0)),
        "other_client": redeem(tenant, inventory, member_id="m-5", order_id="o-5", total=30_000, client=web,
                               used_at=at(2, 12, 0)),
        "other_event": redeem(tenant, other_inventory, member_id="m-6", order_id="o-6", total=30_000, client=pos,
                              used_at=at(2, 12, 0)),
    }
    return UsageWorld(tenant=tenant, event=inventory.event, other_event=other_inventory.event, inventory=inventory,
                      other_inventory=other_inventory, pos=pos, web=web, usages=usages)


def sheet_rows(source: Any) -> list[tuple]:
    """Every row of every sheet of a workbook (a path, bytes or a file)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    workbook = load_workbook(source)
    return [row for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)]
