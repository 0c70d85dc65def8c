"""Issue #11: money in the tenant's currency format — KRW without minor units, with thousands separators."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.template import Context, Template
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from core.money import format_money, money_column


@pytest.mark.parametrize("language", ["ko", "en"])
def test_krw_has_no_minor_unit_and_groups_thousands(language):
    assert format_money(12300, "KRW", language=language) == "₩12,300"
    assert format_money(1234567890, "KRW", language=language) == "₩1,234,567,890"
    assert format_money(0, "KRW", language=language) == "₩0"
    assert format_money(-5000, "KRW", language=language) == "-₩5,000"


def test_currencies_with_minor_units_use_them():
    assert format_money(1234, "USD", language="en") == "$12.34"
    assert format_money(1234, "USD", language="ko") == "US$12.34"
    assert format_money(None, "KRW") == ""


def test_the_active_language_is_used_by_default():
    with translation.override("ko"):
        assert format_money(1234, "USD") == "US$12.34"
    with translation.override("en"):
        assert format_money(1234, "USD") == "$12.34"


def test_the_template_filter_takes_a_currency_or_an_object_with_one():
    tenant = SimpleNamespace(currency="KRW")
    row = SimpleNamespace(tenant=tenant, amount=12300)
    out = Template("{% load money %}{{ a|money:tenant }} {{ row.amount|money:row }} {{ 1234|money:'USD' }} "
                   "[{{ none|money:tenant }}]").render(Context({"a": 12300, "tenant": tenant, "row": row, "none": None}))
    assert out == "₩12,300 ₩12,300 $12.34 []"


def test_money_column_is_a_translated_list_display_entry():
    column = money_column("amount", _("amount"))
    assert isinstance(column.short_description, Promise)
    assert column.admin_order_field == "amount"
    assert column(SimpleNamespace(amount=12300, tenant=SimpleNamespace(currency="KRW"))) == "₩12,300"


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_usage_log_shows_amounts_in_the_tenants_currency_format(client, language):
    from django.utils import timezone

    from coupons.models import CouponUsage
    from tests import factories

    tenant = factories.make_tenant(language=language)
    inventory, codes = factories.make_pool(tenant, size=1)
    CouponUsage.objects.create(tenant=tenant, inventory=inventory, coupon=codes[0], member_id="m-1", order_id="o-1",
                               order_amount=1234500, discount=12300, used_at=timezone.now())
    client.force_login(factories.make_operator(tenant))
    body = client.get("/admin/coupons/couponusage/").content.decode()
    assert "₩1,234,500" in body and "₩12,300" in body


def test_the_number_filter_groups_counts_and_leaves_other_values_alone():
    out = Template("{% load money %}{{ a|number }} {{ b|number }} [{{ none|number }}] {{ text|number }}").render(
        Context({"a": 1200000, "b": 999, "none": None, "text": "n/a"}))
    assert out == "1,200,000 999 [] n/a"


@pytest.mark.django_db
@pytest.mark.parametrize("language,line", [
    ("en", "0 of 1,200,000 codes — pending"),
    ("ko", "코드 1,200,000개 중 0개 — 대기"),
])
def test_the_batch_page_groups_its_quantities(client, language, line):
    """Issue #11: counts in the console read like the money does (1,200,000, not 1200000)."""
    from django.urls import reverse

    from tests import factories

    tenant = factories.make_tenant(language=language)
    batch = factories.make_batch(factories.make_inventory(tenant, total_quantity=1_200_000), quantity=1_200_000)
    client.force_login(factories.make_operator(tenant))
    body = client.get(reverse("admin:coupons_couponbatch_change", args=[batch.pk])).content.decode()
    assert line in body
