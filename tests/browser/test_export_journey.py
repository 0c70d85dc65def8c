"""Export journey in a real Chromium (R-REP-1, R-REP-2; issue #9 "Must show": export usage to XLSX and open the
downloaded file with openpyxl to check its rows). See test_console_journeys.py for how the journeys are built."""
from __future__ import annotations

import pytest
from django.utils import translation
from openpyxl import load_workbook
from playwright.sync_api import expect

from coupons.services import lifecycle
from coupons.discounts import validate_order_payload
from coupons.services.issue import RequestContext, issue_from_pool
from exports.columns import USAGES
from exports.models import Export
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _redeem(tenant, inventory, member_id: str, order_id: str, total: int):
    ctx = RequestContext(channel="ios")
    coupon = issue_from_pool(inventory=inventory, member_id=member_id, via="inventory", ctx=ctx)
    _code, usage = lifecycle.coupon_redeem(tenant=tenant, code=coupon.code, member_id=member_id, order_id=order_id,
                                           order=validate_order_payload(factories.order(total, order_id=order_id)),
                                           ctx=ctx)
    return usage


def test_an_operator_exports_usage_to_xlsx_and_the_file_holds_the_rows(console, tenant, held_jobs):
    """R-REP-1, R-REP-2: from the console's Exports page an operator requests the usage log of one inventory; the
    list shows the export queued, then — refreshing itself while the job writes — ready with a download link; the
    downloaded XLSX opens with openpyxl and holds exactly that inventory's usage rows, formula-like text escaped."""
    inventory, _codes = factories.make_pool(tenant, size=5, name="Autumn pool", per_member_limit=5)
    other, _codes = factories.make_pool(tenant, size=1, name="Other pool")
    usages = [_redeem(tenant, inventory, "m-1", "order-1", 40_000),
              _redeem(tenant, inventory, "m-2", "order-2", 55_000),
              _redeem(tenant, inventory, "=HYPERLINK(\"x\")", "order-3", 30_000)]
    _redeem(tenant, other, "m-9", "order-9", 30_000)  # another inventory: filtered out
    jobs = held_jobs("exports")

    console.login(factories.make_operator(tenant).username)
    console.page.locator("#console-nav a[href='/admin/exports/export/']").click()
    # the list's own add button (below 1600 px the app sidebar, which also has one, starts closed: issue #20)
    console.page.locator("#content a[href*='/admin/exports/export/add/']").first.click()
    console.select("kind", "usages")
    console.select("inventory", inventory.pk)
    console.shot("export-form")
    console.page.click("#export-request [type=submit]")
    console.expect_success_message()
    assert console.path() == "/admin/exports/export/"
    export = Export.objects.get(tenant=tenant)
    assert (export.kind, export.status, len(jobs.held)) == ("usages", Export.Status.PENDING, 1)
    expect(console.page.locator(f"progress[data-export='{export.public_id}']")).to_have_attribute("value", "0")
    console.shot("export-queued")

    jobs.release()  # the worker writes the file; the list refreshes itself until the export is ready
    download_link = console.link(f"/admin/exports/export/{export.pk}/download/")
    expect(download_link).to_be_visible(timeout=60_000)
    jobs.join()
    expect(console.page.locator(f"progress[data-export='{export.public_id}']")).to_have_attribute("value", "100")
    console.shot("export-ready")
    with console.page.expect_download() as info:
        download_link.click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    path = console.artifacts / f"{console.test_name}-{download.suggested_filename}"
    download.save_as(path)

    sheet = load_workbook(path, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], [r for r in rows[1:] if any(v is not None for v in r)]
    with translation.override(console.lang):  # the header row holds the columns' labels, translated
        labels = {c.key: str(c.label) for c in USAGES}
    keys = ("order_id", "member_id", "code", "discount", "inventory")
    assert {labels[k] for k in keys} <= set(header), header
    col = [header.index(labels[k]) for k in keys]
    got = sorted(tuple(r[i] for i in col) for r in body)
    expected = sorted((u.order_id, u.member_id, u.coupon.code, u.discount, "Autumn pool") for u in usages)
    expected = [(o, "'" + m if m.startswith("=") else m, c, d, i) for o, m, c, d, i in expected]
    assert got == expected, rows
