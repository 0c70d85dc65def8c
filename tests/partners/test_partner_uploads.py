"""R-PART-1…3, R-PART-5: partner uploads mapped row by row, hostile files, resume after a kill, reprocess."""
from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from core.models import ApiClient, AuditLog
from coupons.models import CouponCode
from partners import services
from partners.models import CouponMapping, Partner, PartnerUpload, PartnerUploadFailure
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner(tenant):
    return Partner.objects.create(tenant=tenant, name="GS Retail", code="GS25")


def upload(api, inventory, content: bytes, name: str = "codes.csv", partner: str = "GS25"):
    return api.post("/api/v1/partner-uploads", {"file": SimpleUploadedFile(name, content), "partner": partner,
                                                "inventory": inventory.public_id}, format="multipart")


def status_of(api, upload_id):
    return api.get(f"/api/v1/partner-uploads/{upload_id}").json()


def all_failures(api, upload_id):
    return api.get(f"/api/v1/partner-uploads/{upload_id}/failures", {"page_size": 1000}).json()["results"]


def good_code(i: int) -> str:
    return f"P{i:08d}"


def mixed_file() -> tuple[bytes, dict[int, str], list[str]]:
    """10,000 rows after a header, 1,000 of them bad in 8 reason kinds; the file, the reason per bad line and the
    codes an earlier upload must hold.

    Every 10th row is bad: up to row 9,000 cycling through nine kinds of bad input (100 each; a formula and non-ASCII
    text are bad formats too), after it 100 extra valid codes, so that with a pool of exactly 9,000 free codes the
    last 100 valid rows find it exhausted."""
    lines, bad, earlier, valid = ["partner_code"], {}, [], []
    kinds = [("", "empty"), ("X" * 65, "too_long"), ("AB$12", "bad_format"), ('=HYPERLINK("http://x")', "bad_format"),
             ("DUP", "duplicate_in_file"), ("EARLIER", "already_uploaded"), ("ZZ,extra", "extra_columns"),
             ("L" * 2000, "line_too_long"), ("한글코드", "bad_format")]
    for i in range(10_000):
        line = i + 2
        if i % 10 == 9 and i < 9_000:
            value, reason = kinds[(i // 10) % len(kinds)]
            if reason == "duplicate_in_file":
                value = good_code(i - 1)  # the row above, which maps
            if reason == "already_uploaded":
                value = f"EARLIER{line}"
                earlier.append(value)
            lines.append(value if "," in value or not value.startswith("=") else f'"{value}"'.replace('"http', '""http')
                         .replace('x")"', 'x"")"'))
            bad[line] = reason
        else:
            lines.append(good_code(i) if i % 10 != 9 else f"LATE{i}")
            valid.append(line)
    for line in valid[-100:]:
        bad[line] = "pool_exhausted"
    return ("\n".join(lines) + "\n").encode(), bad, earlier


def test_ten_thousand_rows_with_a_thousand_bad_ones_map_nine_thousand_reprocess_maps_the_fixed_ones_and_a_reupload_adds_nothing(  # noqa: E501
        tenant, partner, operator_api):
    """Must show of #6 (R-PART-1…3): 10,000 rows with 1,000 bad ones of 8 reasons → 9,000 mapped and 1,000 failures
    with line and reason; reprocessing the fixed rows maps exactly those; uploading the file again adds nothing."""
    inventory, _codes = factories.make_pool(tenant, size=9_100)
    content, bad, earlier = mixed_file()
    first = upload(operator_api, inventory, "\n".join(earlier).encode(), name="first.csv")
    assert status_of(operator_api, first.json()["id"])["mapped"] == len(earlier) == 100
    response = upload(operator_api, inventory, content)
    assert response.status_code == 202
    upload_id = response.json()["id"]
    state = status_of(operator_api, upload_id)
    assert (state["status"], state["rows"], state["mapped"], state["failed"], state["progress"]) == \
        ("DONE", 10_000, 9_000, 1_000, 1.0)
    failures = all_failures(operator_api, upload_id)
    assert {f["line"]: f["reason"] for f in failures} == bad
    assert {f["reason"] for f in failures} == {"empty", "too_long", "bad_format", "duplicate_in_file",
                                               "already_uploaded", "extra_columns", "line_too_long", "pool_exhausted"}
    assert all(f["message"] for f in failures)
    assert CouponCode.objects.filter(inventory=inventory, status="AVAILABLE").count() == 0
    assert CouponMapping.objects.filter(upload__public_id=upload_id).count() == 9_000
    formula = next(f for f in failures if f["value"].startswith("=HYPERLINK"))
    assert formula["reason"] == "bad_format"

    # fix 200 rows (the empty and the "AB$12" ones), add 300 codes to the pool (for them and the 100 exhausted rows)
    fixes = {line: f"FIX{line}" for line, reason in bad.items() if reason == "empty"}
    fixes.update({f["line"]: "AB12" + str(f["line"]) for f in failures if f["value"] == "AB$12"})
    assert len(fixes) == 200
    factories.make_codes(inventory.batches.first(), 300)
    mapped_before = set(CouponMapping.objects.filter(upload__public_id=upload_id).values_list("line", flat=True))
    response = operator_api.post(f"/api/v1/partner-uploads/{upload_id}/reprocess",
                                 {"rows": [{"line": k, "value": v} for k, v in fixes.items()]}, format="json")
    assert response.status_code == 202
    state = status_of(operator_api, upload_id)
    assert (state["status"], state["rows"], state["mapped"], state["failed"]) == ("DONE", 10_000, 9_300, 700)
    exhausted = {line for line, reason in bad.items() if reason == "pool_exhausted"}
    newly = set(CouponMapping.objects.filter(upload__public_id=upload_id).values_list("line", flat=True)) - mapped_before
    assert newly == set(fixes) | exhausted
    assert {m.line: m.partner_code for m in CouponMapping.objects.filter(line__in=list(fixes),
                                                                         upload__public_id=upload_id)} == fixes
    still = {line: reason for line, reason in bad.items() if line not in newly}
    assert {f["line"]: f["reason"] for f in all_failures(operator_api, upload_id)} == still
    assert CouponCode.objects.filter(inventory=inventory, status="MAPPED").count() == 9_400

    # the same file again: the earlier upload, nothing twice; the same codes in a new file map nothing either
    again = upload(operator_api, inventory, content, name="renamed.csv")
    assert again.status_code == 202 and again.json()["id"] == upload_id
    assert PartnerUpload.objects.filter(tenant=tenant).count() == 2
    factories.make_codes(inventory.batches.first(), 10)
    copy_id = upload(operator_api, inventory, content.replace(b"\n", b"\r\n"), name="crlf.csv").json()["id"]
    copy_state = status_of(operator_api, copy_id)
    assert (copy_state["status"], copy_state["mapped"], copy_state["failed"]) == ("DONE", 0, 10_000)
    assert {f["reason"] for f in all_failures(operator_api, copy_id)} >= {"already_uploaded"}
    assert CouponMapping.objects.filter(tenant=tenant).count() == 9_400
    assert CouponCode.objects.filter(inventory=inventory, status="AVAILABLE").count() == 10


def test_reprocessing_corrected_rows_maps_exactly_those_and_keeps_counts_consistent(tenant, partner, operator_api):
    inventory, _codes = factories.make_pool(tenant, size=10)
    content = b"partner_code\nGOOD1\nAB$1\n\nGOOD2\nGOOD1\n"
    upload_id = upload(operator_api, inventory, content).json()["id"]
    assert {f["line"]: f["reason"] for f in all_failures(operator_api, upload_id)} == {
        3: "bad_format", 4: "empty", 6: "duplicate_in_file"}
    response = operator_api.post(f"/api/v1/partner-uploads/{upload_id}/reprocess",
                                 {"rows": [{"line": 3, "value": "AB1"}, {"line": 4, "value": "NEW-4"}]}, format="json")
    assert response.status_code == 202
    state = status_of(operator_api, upload_id)
    assert (state["status"], state["rows"], state["mapped"], state["failed"]) == ("DONE", 5, 4, 1)
    assert {f["line"]: f["reason"] for f in all_failures(operator_api, upload_id)} == {6: "duplicate_in_file"}
    assert set(CouponMapping.objects.filter(upload__public_id=upload_id).values_list("line", "partner_code")) == {
        (2, "GOOD1"), (3, "AB1"), (4, "NEW4"), (5, "GOOD2")}
    assert CouponCode.objects.filter(inventory=inventory, status="MAPPED").count() == 4


def test_reprocess_without_corrections_maps_rows_that_failed_for_an_exhausted_pool(tenant, partner, operator_api):
    inventory, _codes = factories.make_pool(tenant, size=2)
    upload_id = upload(operator_api, inventory, b"A1\nA2\nA3\nA4\n").json()["id"]
    assert {f["line"]: f["reason"] for f in all_failures(operator_api, upload_id)} == {3: "pool_exhausted",
                                                                                      4: "pool_exhausted"}
    batch = inventory.batches.first()
    factories.make_codes(batch, 1)  # one more code arrives
    assert operator_api.post(f"/api/v1/partner-uploads/{upload_id}/reprocess", {}, format="json").status_code == 202
    state = status_of(operator_api, upload_id)
    assert (state["mapped"], state["failed"]) == (3, 1)
    assert [(f["line"], f["reason"]) for f in all_failures(operator_api, upload_id)] == [(4, "pool_exhausted")]


def test_a_correction_for_a_line_that_did_not_fail_is_refused_and_changes_nothing(tenant, partner, operator_api):
    inventory, _codes = factories.make_pool(tenant, size=5)
    upload_id = upload(operator_api, inventory, b"A1\n$\n").json()["id"]
    response = operator_api.post(f"/api/v1/partner-uploads/{upload_id}/reprocess",
                                 {"rows": [{"line": 1, "value": "B1"}]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_correction"
    assert status_of(operator_api, upload_id)["status"] == "DONE"
    assert PartnerUploadFailure.objects.get(upload__public_id=upload_id).value == "$"


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


HOSTILE = [
    ("empty.csv", b"", "empty or has only a header"),
    ("header.csv", b"partner_code\n", "empty or has only a header"),
    ("bom-header.csv", b"\xef\xbb\xbfpartner_code\r\n", "empty or has only a header"),
    ("columns.csv", b"partner_code,amount\nA1,100\n", "2 columns (partner_code, amount)"),
    ("latin1.csv", "partner_code\nCAFÉ1\n".encode("latin-1"), "not UTF-8 text (line 2, byte 4)"),
    ("utf16.csv", "partner_code\r\nA1\r\n".encode("utf-16"), "not UTF-8 text (line 1, byte 1)"),
    ("cp949.csv", "partner_code\n한글1\n".encode("cp949"), "not UTF-8 text (line 2, byte 1)"),
    # a bad byte deep in the file: the whole file is refused before any of the 5,000 good rows above it maps
    ("deep.csv", b"partner_code\n" + b"".join(b"G%d\n" % i for i in range(5_000)) + b"AB\xe9\n",
     "not UTF-8 text (line 5002, byte 3)"),
    ("fake.xlsx", b"this is not a workbook", "not a valid XLSX workbook"),
    ("bomb.xlsx", zip_bytes({"[Content_Types].xml": b"<x/>", "xl/big.xml": b"\0" * (210 * 1024 * 1024)}),
     "more than the 200 MB allowed"),
    ("zip.xlsx", zip_bytes({"hello.txt": b"hi"}), "not an XLSX workbook"),
    ("ratio-bomb.xlsx", zip_bytes({"[Content_Types].xml": b"<x/>", "xl/worksheets/sheet1.xml": b"\0" * (50 << 20)}),
     "it looks like a zip bomb"),
    ("truncated.xlsx", zip_bytes({"[Content_Types].xml": b"<x/>", "xl/a.xml": b"a" * 5000})[:-40],
     "not a valid XLSX workbook"),
]


@pytest.mark.parametrize("name,content,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_file_fails_the_upload_clearly_and_changes_nothing_else(tenant, partner, operator_api, name,
                                                                          content, message):
    inventory, _codes = factories.make_pool(tenant, size=3)
    response = upload(operator_api, inventory, content, name=name)
    assert response.status_code == 202
    state = status_of(operator_api, response.json()["id"])
    assert (state["status"], state["mapped"], state["failed"]) == ("FAILED", 0, 0)
    assert message in state["error"]
    assert CouponCode.objects.filter(inventory=inventory, status="AVAILABLE").count() == 3
    assert not CouponMapping.objects.exists() and not PartnerUploadFailure.objects.exists()


def test_a_file_of_one_50_mb_line_fails_that_row_only_and_maps_nothing(tenant, partner, operator_api):
    """R-PART-5: the line is skipped in 64 KB reads (never held whole); its row fails as too long, nothing maps."""
    inventory, _codes = factories.make_pool(tenant, size=3)
    upload_id = upload(operator_api, inventory, b"A" * (50 << 20)).json()["id"]
    state = status_of(operator_api, upload_id)
    assert (state["status"], state["rows"], state["mapped"], state["failed"]) == ("DONE", 1, 0, 1)
    assert [(f["line"], f["reason"], f["value"]) for f in all_failures(operator_api, upload_id)] == [
        (1, "line_too_long", "")]
    assert CouponCode.objects.filter(inventory=inventory, status="AVAILABLE").count() == 3
    assert not CouponMapping.objects.exists()


def test_a_bom_and_a_very_long_line_fail_only_their_row(tenant, partner, operator_api):
    inventory, _codes = factories.make_pool(tenant, size=3)
    content = b"\xef\xbb\xbfpartner_code\r\nA1\r\n" + b"B" * 5_000_000 + b"\r\nA2\r\n"
    upload_id = upload(operator_api, inventory, content).json()["id"]
    state = status_of(operator_api, upload_id)
    assert (state["status"], state["rows"], state["mapped"], state["failed"]) == ("DONE", 3, 2, 1)
    assert [(f["line"], f["reason"], f["value"]) for f in all_failures(operator_api, upload_id)] == [
        (3, "line_too_long", "")]


def test_an_xlsx_upload_maps_its_first_column(tenant, partner, operator_api):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in (["partner_code"], ["X-1"], [12345], ["=1+1"], [None]):
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    inventory, _codes = factories.make_pool(tenant, size=5)
    upload_id = upload(operator_api, inventory, out.getvalue(), name="codes.xlsx").json()["id"]
    state = status_of(operator_api, upload_id)
    assert (state["status"], state["rows"], state["mapped"], state["failed"]) == ("DONE", 4, 2, 2)
    assert sorted(CouponMapping.objects.values_list("partner_code", flat=True)) == ["12345", "X1"]


def test_a_job_killed_mid_upload_resumes_to_the_same_final_counts(tenant, partner, operator_api, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 100)
    inventory, _codes = factories.make_pool(tenant, size=900)
    lines = ["partner_code"] + [good_code(i) if i % 10 else "BAD$" for i in range(1_000)]

    def die_after_three(n: int) -> None:
        if n == 3:
            raise RuntimeError("worker killed")

    monkeypatch.setattr(services, "_after_commit", lambda fn: None)  # the worker picks it up below
    killed, _created = services.partner_upload_create(
        tenant=tenant, partner_code="GS25", inventory_public_id=inventory.public_id,
        uploaded=SimpleUploadedFile("k.csv", "\n".join(lines).encode()), actor=factories.TEST_ACTOR)
    monkeypatch.setattr(services, "_after_chunk", die_after_three)
    with pytest.raises(RuntimeError):
        services.partner_upload_process(upload_id=killed.pk, tenant_id=killed.tenant_id)
    killed.refresh_from_db()
    assert (killed.status, killed.processed_rows, killed.mapped, killed.failed) == ("RUNNING", 300, 270, 30)
    monkeypatch.setattr(services, "_after_chunk", lambda n: None)
    services.partner_upload_process(upload_id=killed.pk, tenant_id=killed.tenant_id)
    killed.refresh_from_db()
    assert (killed.status, killed.rows, killed.mapped, killed.failed) == ("DONE", 1_000, 900, 100)
    assert CouponMapping.objects.count() == 900
    assert PartnerUploadFailure.objects.count() == 100
    assert CouponCode.objects.filter(inventory=inventory, status="MAPPED").count() == 900
    assert AuditLog.objects.filter(action="partner_upload.done", object_id=str(killed.pk)).count() == 1


def test_another_tenants_upload_answers_404_like_an_unknown_one(tenant, other_tenant, partner, operator_api):
    Partner.objects.create(tenant=other_tenant, name="B", code="GS25")
    inventory_b, _codes = factories.make_pool(other_tenant, size=3)
    _client, token = factories.make_client(other_tenant, scope=ApiClient.Scope.OPERATOR)
    api_b = APIClient()
    api_b.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    upload_id = upload(api_b, inventory_b, b"A1\n").json()["id"]
    foreign = operator_api.get(f"/api/v1/partner-uploads/{upload_id}")
    unknown = operator_api.get("/api/v1/partner-uploads/AAAAAAAAAAAAAAAA")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()
    assert upload(operator_api, inventory_b, b"A2\n").status_code == 404  # B's inventory, from A


def test_a_member_scope_client_cannot_upload(tenant, partner, api):
    inventory, _codes = factories.make_pool(tenant, size=1)
    assert upload(api, inventory, b"A1\n").status_code == 403


@pytest.mark.parametrize("language, empty, exhausted", [
    ("ko", "행에 제휴사 코드가 없습니다.", "쿠폰 풀에 매핑할 수 있는 사용 가능(AVAILABLE) 코드가 남아 있지 않습니다."),
    ("en", "The row holds no partner code.", "The inventory has no AVAILABLE code left to map."),
])
def test_failure_messages_are_stored_in_the_tenants_language_and_reasons_never_change(
        tenant, partner, operator_api, language, empty, exhausted):
    """Issue #11: the upload job writes a failure's message in the tenant's language, whatever language the request
    had; the reason code is the same in every language."""
    tenant.language = language
    tenant.save(update_fields=["language"])
    inventory, _codes = factories.make_pool(tenant, size=1)
    response = upload(operator_api, inventory, b"partner_code\n\nP00000001\nP00000002\n", name="lang.csv")
    failures = all_failures(operator_api, response.json()["id"])
    assert [(f["line"], f["reason"], f["message"]) for f in failures] == [
        (2, "empty", empty), (4, "pool_exhausted", exhausted)]
