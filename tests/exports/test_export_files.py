"""R-REP-1/R-REP-2: exports hold exactly the filtered rows of the tenant, as a safe XLSX, written by a job with
progress."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.storage import default_storage
from openpyxl import load_workbook

from core.exceptions import InvalidInput, NotFound
from core.models import AuditLog
from exports import services, writer
from exports.columns import USAGES
from exports.models import Export
from tests import factories
from tests.exports.conftest import sheet_rows

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = factories.TEST_ACTOR
USAGE_LABELS = ("Used at", "Refunded at", "Order", "Member", "Coupon code", "Order amount", "Discount", "Event",
                "Policy", "Inventory", "Batch", "Channel", "Payment method", "API client")


def usage_row(world, usage, *, member_id=None, order_id=None):
    coupon = usage.coupon
    return (usage.used_at.astimezone(dt.timezone(dt.timedelta(hours=9))).replace(tzinfo=None), None,
            order_id or usage.order_id, member_id or usage.member_id, coupon.code, usage.order_amount,
            usage.discount, usage.inventory.event.name, usage.inventory.policy.name, usage.inventory.name,
            coupon.batch.batch_code, "ios", "online", usage.client.name)


def request(world, kind="usages", **filters):
    return services.export_request(tenant=world.tenant if hasattr(world, "tenant") else world, kind=kind,
                                   filters=filters, actor=ACTOR)


def test_a_usage_export_holds_exactly_the_filtered_rows_with_times_in_the_tenants_zone(usage_world):
    w = usage_world

    export = request(w, event=w.event.public_id, client="pos-app", date_from="2026-03-01", date_to="2026-03-03")

    export.refresh_from_db()
    assert (export.status, export.rows_done, export.rows_total) == ("DONE", 3, 3)
    assert export.filters == {"event": w.event.public_id, "client": "pos-app", "date_from": "2026-03-01",
                              "date_to": "2026-03-03"}
    rows = sheet_rows(default_storage.path(export.file))
    assert rows[0] == USAGE_LABELS
    u = w.usages
    assert rows[1:] == [
        usage_row(w, u["early"]),
        usage_row(w, u["formula"], member_id="'=HYPERLINK(\"http://x\")", order_id="'+82-10"),
        usage_row(w, u["late"], order_id="'@SUM(A1)"),
    ]
    # spot-check the literal values, so the expectation is not only built the same way as the export
    assert rows[1][0] == dt.datetime(2026, 3, 1, 0, 30)
    assert rows[3][:3] == (dt.datetime(2026, 3, 3, 23, 59), None, "'@SUM(A1)")
    assert (rows[3][5], rows[3][6]) == (1_234_567 + 3000, 5000)  # order amount includes shipping


def test_without_filters_the_export_has_every_usage_of_the_tenant_and_none_of_another(usage_world, other_tenant):
    from tests.exports.conftest import redeem

    other_inventory, _ = factories.make_pool(other_tenant, size=1)
    redeem(other_tenant, other_inventory, member_id="SECRETB", order_id="o-b", total=30_000, client=None,
           used_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))

    export = request(usage_world)

    export.refresh_from_db()
    rows = sheet_rows(default_storage.path(export.file))
    assert len(rows) == 1 + 6 and export.rows_done == 6
    assert all("SECRETB" not in str(cell) for row in rows for cell in row)


def test_formula_text_is_escaped_and_amounts_and_times_stay_typed_with_formats(usage_world):
    export = request(usage_world, event=usage_world.event.public_id, client="pos-app", date_from="2026-03-02",
                     date_to="2026-03-02")
    export.refresh_from_db()

    sheet = load_workbook(default_storage.path(export.file)).worksheets[0]
    row = list(sheet[2])
    assert row[3].value == "'=HYPERLINK(\"http://x\")" and row[3].data_type == "s"  # text, never a formula
    assert row[2].value == "'+82-10"
    assert row[5].value == 55_500 + 3000 and row[5].data_type == "n" and row[5].number_format == "#,##0"
    assert row[6].value == 5000 and row[6].number_format == "#,##0"
    assert row[0].is_date and row[0].value == dt.datetime(2026, 3, 2, 9, 15)


@pytest.mark.parametrize("value, expected", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@cmd", "'@cmd"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("a=b", "a=b"), ("x\x00y\x1f", "x\ufffdy\ufffd"), ("", ""),
])
def test_safe_text(value, expected):
    assert writer.safe_text(value) == expected


def test_the_machine_key_header_row_option(usage_world):
    export = services.export_request(tenant=usage_world.tenant, kind="usages", filters={}, actor=ACTOR,
                                     header="keys")
    export.refresh_from_db()

    assert sheet_rows(default_storage.path(export.file))[0] == tuple(c.key for c in USAGES)


@pytest.mark.parametrize("language, title, labels", [
    ("ko", "사용 내역", ("사용 일시", "환불 일시", "주문 번호", "회원 ID", "쿠폰 코드", "주문 금액", "할인", "이벤트",
                    "정책", "쿠폰 풀", "배치", "채널", "결제 수단", "API 클라이언트")),
    ("en", "Usages", USAGE_LABELS),
])
def test_sheet_name_and_column_labels_follow_the_tenants_language(usage_world, language, title, labels):
    """Issue #11: an export is written in its tenant's language, whatever language the requester's request had;
    the machine-key header row stays the same in every language."""
    from django.utils import translation

    tenant = usage_world.tenant
    tenant.language = language
    tenant.save(update_fields=["language"])
    other = "en" if language == "ko" else "ko"
    with translation.override(other):
        export = services.export_request(tenant=tenant, kind="usages", filters={}, actor=ACTOR)
        keys = services.export_request(tenant=tenant, kind="usages", filters={}, actor=ACTOR, header="keys")
    export.refresh_from_db()
    keys.refresh_from_db()

    workbook = load_workbook(default_storage.path(export.file))
    assert workbook.sheetnames == [title]
    assert sheet_rows(default_storage.path(export.file))[0] == labels
    assert sheet_rows(default_storage.path(keys.file))[0] == tuple(c.key for c in USAGES)


def test_an_issue_export_filtered_by_batch(usage_world):
    w = usage_world
    batch = w.other_inventory.batches.get()

    export = request(w, kind="issues", batch=batch.batch_code)

    export.refresh_from_db()
    rows = sheet_rows(default_storage.path(export.file))
    assert rows[0][:4] == ("Issued at", "Member", "Coupon code", "Coupon status")
    assert [(r[1], r[3], r[8], r[9], r[11]) for r in rows[1:]] == [("m-6", "USED", batch.batch_code, "inventory",
                                                                     "pos-app")]


def test_a_codes_export_lists_the_batchs_codes_in_order(usage_world):
    batch = usage_world.inventory.batches.get()

    export = request(usage_world, kind="codes", batch=batch.batch_code)

    export.refresh_from_db()
    rows = sheet_rows(default_storage.path(export.file))
    codes = list(batch.codes.order_by("id").values_list("code", "status"))
    assert [(r[0], r[1]) for r in rows[1:]] == codes and len(codes) == 6


def test_rows_roll_over_to_a_new_sheet_with_its_own_header(usage_world, monkeypatch):
    monkeypatch.setattr(writer, "ROWS_PER_SHEET", 4)

    export = request(usage_world)

    export.refresh_from_db()
    workbook = load_workbook(default_storage.path(export.file))
    assert workbook.sheetnames == ["Usages", "Usages 2"]
    assert [ws.max_row for ws in workbook.worksheets] == [5, 3]
    assert workbook.worksheets[1]["A1"].value == "Used at"


def test_progress_is_visible_while_writing_and_reaches_100_percent(usage_world, monkeypatch):
    monkeypatch.setattr(writer, "FETCH_ROWS", 2)
    monkeypatch.setattr(writer, "PROGRESS_EVERY_SECONDS", 0)
    seen = []
    original = writer.SheetWriter.write_block

    def watching(self, block):
        # what another process (the console) reads while the job runs
        seen.append(Export.objects.values_list("status", "rows_done", "rows_total").get())
        original(self, block)

    monkeypatch.setattr(writer.SheetWriter, "write_block", watching)

    export = request(usage_world)

    assert seen == [("RUNNING", 0, 6), ("RUNNING", 2, 6), ("RUNNING", 4, 6)]
    export.refresh_from_db()
    assert (export.status, export.rows_done, export.rows_total, export.progress) == ("DONE", 6, 6, 1.0)
    assert export.finished_at is not None and export.file_size == default_storage.size(export.file)


def test_a_failing_write_marks_the_export_failed_and_a_retry_writes_it(usage_world, monkeypatch):
    calls = []

    def broken(**kwargs):
        calls.append(1)
        raise OSError("disk full")

    monkeypatch.setattr("exports.writer.write_xlsx", broken)
    with pytest.raises(OSError):
        request(usage_world)
    export = Export.objects.get()
    assert (export.status, export.error, export.file) == ("FAILED", "OSError: disk full", "")

    monkeypatch.undo()
    services.export_write(export_id=export.pk, tenant_id=export.tenant_id)  # what the job runner's retry does
    export.refresh_from_db()
    assert (export.status, export.rows_done, export.error) == ("DONE", 6, "")


def test_a_done_export_is_not_written_twice(usage_world):
    export = request(usage_world)
    export.refresh_from_db()

    assert services.export_write(export_id=export.pk, tenant_id=export.tenant_id) is None
    assert Export.objects.get().file == export.file


def test_the_request_is_audited(usage_world):
    export = request(usage_world, event=usage_world.event.public_id)

    audit = AuditLog.objects.get(action="export.requested")
    assert (audit.tenant_id, audit.object_id) == (usage_world.tenant.pk, str(export.pk))
    assert audit.after == {"kind": "usages", "filters": {"event": usage_world.event.public_id}, "header": "labels",
                           "public_id": export.public_id}


@pytest.mark.parametrize("kind, filters, field", [
    ("payments", {}, "kind"),
    ("usages", {"date_from": "2026-13-01"}, "date_from"),
    ("usages", {"date_to": "yesterday"}, "date_to"),
    ("usages", {"date_from": "2026-03-05", "date_to": "2026-03-01"}, "date_to"),
    ("usages", {"colour": "red"}, "colour"),
    ("usages", {"draw": "ABCDEFGHJKLMNPQR"}, "draw"),
    ("winners", {"client": "pos-app"}, "client"),
    ("codes", {}, "batch"),
    ("codes", {"batch": "B-1", "date_from": "2026-03-01"}, "date_from"),
    ("usages", {"batch": "x" * 201}, "batch"),
    ("usages", {"date_to": "9999-12-31"}, "date_to"),
    ("usages", {"date_from": "0001-01-01"}, "date_from"),
])
def test_a_bad_filter_is_refused_naming_the_field_and_nothing_is_recorded(usage_world, kind, filters, field):
    with pytest.raises(InvalidInput) as refused:
        request(usage_world, kind, **filters)

    assert refused.value.status == 400 and refused.value.details == {"field": field}
    assert Export.objects.count() == 0 and not AuditLog.objects.filter(action="export.requested").exists()


@pytest.mark.parametrize("field", ["event", "policy", "inventory", "client"])
def test_another_tenants_ids_are_not_found_like_ids_that_do_not_exist(usage_world, other_tenant, field):
    foreign_inventory, _ = factories.make_pool(other_tenant, size=1)
    factories.make_client(other_tenant, name="foreign-client")
    foreign = {"event": foreign_inventory.event.public_id, "policy": foreign_inventory.policy.public_id,
               "inventory": foreign_inventory.public_id, "client": "foreign-client"}[field]

    with pytest.raises(NotFound) as refused:
        request(usage_world, **{field: foreign})
    with pytest.raises(NotFound) as missing:
        request(usage_world, **{field: "NOSUCHIDNOSUCHID"})

    assert refused.value.details == missing.value.details == {"field": field}
    assert refused.value.message.replace(foreign, "?") == missing.value.message.replace("NOSUCHIDNOSUCHID", "?")
    assert Export.objects.count() == 0


def test_a_winners_export_lists_the_events_draw_winners_by_tier_and_rank(tenant, other_tenant):
    from draws.services import draw_run
    from tests.draws.helpers import committed_draw, ended_event_with, winners_of

    event = ended_event_with(tenant, ["m-1", "m-2", "@m-3", "m-4", "m-5"])
    draw = draw_run(draw_id=committed_draw(event, name="Spring draw").pk, actor=ACTOR)
    elsewhere = ended_event_with(tenant, ["x-1"])
    draw_run(draw_id=committed_draw(elsewhere, tiers=[("only", 1)]).pk, actor=ACTOR)

    export = services.export_request(tenant=tenant, kind="winners", filters={"event": event.public_id}, actor=ACTOR,
                                     header="keys")

    export.refresh_from_db()
    rows = sheet_rows(default_storage.path(export.file))
    assert rows[0] == ("event", "draw", "draw_name", "round", "drawn_at", "tier", "tier_name", "rank", "member_id",
                       "code", "grant_error", "forfeited_at")
    expected = [(tier, rank, "'" + m if m.startswith("@") else m) for tier, rank, m in winners_of(draw)]
    assert [(r[5], r[7], r[8]) for r in rows[1:]] == expected and len(expected) == 4
    assert {(r[0], r[1], r[2], r[3]) for r in rows[1:]} == {(event.name, draw.public_id, "Spring draw", 1)}
