"""R-REP-2, R-TEN-1/3: exports requested, watched and downloaded through the API (operator clients) and the
console (the tenant's users) — never another tenant's."""
from __future__ import annotations

import pytest
from django.urls import reverse

from core.audit import Actor
from core.models import AuditLog
from exports import services
from exports.models import Export
from tests import factories
from tests.exports.conftest import sheet_rows

pytestmark = pytest.mark.django_db(transaction=True)


def body(response):
    return b"".join(response.streaming_content)


def test_an_operator_client_requests_watches_and_downloads_a_usage_export(usage_world):
    api = factories.make_operator_api(usage_world.tenant)

    created = api.post("/api/v1/exports", {"kind": "usages", "event": usage_world.event.public_id,
                                           "client": "pos-app", "date_from": "2026-03-02", "date_to": "2026-03-03"},
                       format="json")

    assert created.status_code == 202, created.content
    export_id = created.json()["id"]
    assert created.json() == {"id": export_id, "status": "PENDING", "url": f"/api/v1/exports/{export_id}"}
    status = api.get(f"/api/v1/exports/{export_id}").json()
    assert (status["status"], status["rows_done"], status["rows_total"], status["progress"]) == ("DONE", 2, 2, 1.0)
    assert status["filters"] == {"event": usage_world.event.public_id, "client": "pos-app",
                                 "date_from": "2026-03-02", "date_to": "2026-03-03"}
    assert status["download_url"] == f"/api/v1/exports/{export_id}/download"
    download = api.get(status["download_url"], HTTP_ACCEPT="application/json")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    rows = sheet_rows(body(download))
    assert [(r[2], r[3]) for r in rows[1:]] == [("'+82-10", "'=HYPERLINK(\"http://x\")"), ("'@SUM(A1)", "m-3")]
    assert AuditLog.objects.filter(action="export.downloaded", actor_type="api_client").count() == 1


def test_the_same_idempotency_key_gives_the_same_export_once(usage_world):
    api = factories.make_operator_api(usage_world.tenant)
    payload = {"kind": "issues", "inventory": usage_world.inventory.public_id}

    first = api.post("/api/v1/exports", payload, format="json", HTTP_IDEMPOTENCY_KEY="exp-1")
    again = api.post("/api/v1/exports", payload, format="json", HTTP_IDEMPOTENCY_KEY="exp-1")
    other = api.post("/api/v1/exports", {**payload, "kind": "usages"}, format="json", HTTP_IDEMPOTENCY_KEY="exp-1")

    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert Export.objects.count() == 1


@pytest.mark.parametrize("payload, field", [
    ({"kind": "everything"}, "kind"),
    ({}, "kind"),
    ({"kind": "usages", "date_from": "March"}, "date_from"),
    ({"kind": "usages", "evnt": "X"}, "evnt"),
    ({"kind": "usages", "header": "fancy"}, "header"),
])
def test_a_malformed_request_is_400_naming_the_field(usage_world, payload, field):
    response = factories.make_operator_api(usage_world.tenant).post("/api/v1/exports", payload, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["details"]["fields"]
    assert Export.objects.count() == 0


@pytest.mark.parametrize("payload, field", [
    ({"kind": "codes"}, "batch"),
    ({"kind": "winners", "client": "pos-app"}, "client"),
    ({"kind": "usages", "date_from": "2026-03-05", "date_to": "2026-03-01"}, "date_to"),
])
def test_a_filter_the_kind_cannot_take_is_400_naming_it(usage_world, payload, field):
    response = factories.make_operator_api(usage_world.tenant).post("/api/v1/exports", payload, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_filter" and response.json()["details"] == {"field": field}
    assert field in response.json()["message"]
    assert Export.objects.count() == 0


def test_another_tenants_event_is_404_exactly_like_a_missing_one(usage_world, other_tenant):
    foreign_event = factories.make_event(other_tenant)
    api = factories.make_operator_api(usage_world.tenant)

    foreign = api.post("/api/v1/exports", {"kind": "usages", "event": foreign_event.public_id}, format="json")
    missing = api.post("/api/v1/exports", {"kind": "usages", "event": "NOSUCHIDNOSUCHID"}, format="json")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["details"] == missing.json()["details"] == {"field": "event"}
    assert foreign.json()["message"].replace(foreign_event.public_id, "?") == \
        missing.json()["message"].replace("NOSUCHIDNOSUCHID", "?")
    assert Export.objects.count() == 0


def test_another_tenants_export_is_not_found_for_status_and_download(usage_world, other_tenant):
    export = services.export_request(tenant=usage_world.tenant, kind="usages", filters={},
                                     actor=Actor.system("tests"))
    intruder = factories.make_operator_api(other_tenant)

    for url in (f"/api/v1/exports/{export.public_id}", f"/api/v1/exports/{export.public_id}/download"):
        response = intruder.get(url)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    for junk in ("%00", "x" * 300, "%C3%A9"):  # refused as input, never a database error
        assert intruder.get(f"/api/v1/exports/{junk}").status_code in (400, 404)
    assert not AuditLog.objects.filter(action="export.downloaded").exists()


def test_a_member_scope_client_is_refused(usage_world):
    api = factories.make_api(usage_world.tenant)

    assert api.post("/api/v1/exports", {"kind": "usages"}, format="json").status_code == 403
    assert Export.objects.count() == 0


def test_a_download_before_the_file_is_ready_is_409(usage_world, settings):
    settings.JOBS_SYNC = False
    settings.USE_REDIS = False
    export = Export.objects.create(tenant=usage_world.tenant, kind="usages")  # queued, not yet written

    response = factories.make_operator_api(usage_world.tenant).get(f"/api/v1/exports/{export.public_id}/download")

    assert response.status_code == 409 and response.json()["code"] == "export_not_ready"


# --- console -------------------------------------------------------------------------------------------------------

def test_the_console_request_form_queues_an_export_and_the_list_offers_its_download(client, usage_world):
    user = factories.make_operator(usage_world.tenant)
    client.force_login(user)
    page = client.get(reverse("admin:exports_export_add"))
    assert page.status_code == 200 and "Request an export" in page.content.decode()

    response = client.post(reverse("admin:exports_export_add"), {
        "kind": "usages", "event": usage_world.event.pk, "client": usage_world.pos.pk, "date_from": "2026-03-01",
        "date_to": "2026-03-01", "header": "labels"})

    assert response.status_code == 302 and response["Location"] == reverse("admin:exports_export_changelist")
    export = Export.objects.get()
    assert (export.status, export.requested_by, export.rows_done) == ("DONE", user, 1)
    audit = AuditLog.objects.get(action="export.requested")
    assert (audit.actor_type, audit.actor_id) == ("user", str(user.pk))
    listing = client.get(reverse("admin:exports_export_changelist")).content.decode()
    download_url = reverse("admin:exports_export_download", args=[export.pk])
    assert download_url in listing and 'value="100"' in listing  # the progress bar is full
    download = client.get(download_url)
    assert download.status_code == 200
    assert [r[3] for r in sheet_rows(body(download))] == ["Member", "m-1"]


def test_the_console_form_shows_a_refused_filter_on_its_field_and_records_nothing(client, usage_world):
    client.force_login(factories.make_operator(usage_world.tenant))

    response = client.post(reverse("admin:exports_export_add"), {"kind": "codes", "header": "labels"})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors == {"batch": ["A codes export needs one of these filters: batch, distribution."]}
    assert Export.objects.count() == 0


def test_the_console_form_offers_only_the_tenants_own_choices(client, usage_world, other_tenant):
    factories.make_event(other_tenant, name="SECRETB event")
    client.force_login(factories.make_operator(usage_world.tenant))

    page = client.get(reverse("admin:exports_export_add")).content.decode()

    assert usage_world.event.name in page and "SECRETB" not in page


def test_a_tenant_user_cannot_see_download_or_watch_another_tenants_export(client, usage_world, other_tenant):
    export = services.export_request(tenant=usage_world.tenant, kind="usages", filters={},
                                     actor=Actor.system("tests"))
    client.force_login(factories.make_operator(other_tenant))

    listing = client.get(reverse("admin:exports_export_changelist")).content.decode()
    assert export.public_id not in listing
    assert client.get(reverse("admin:exports_export_download", args=[export.pk])).status_code == 404
    assert client.get(reverse("admin:exports_export_progress", args=[export.pk])).status_code == 404
    assert not AuditLog.objects.filter(action="export.downloaded").exists()


def test_a_viewer_may_download_but_not_request(client, usage_world):
    export = services.export_request(tenant=usage_world.tenant, kind="usages", filters={},
                                     actor=Actor.system("tests"))
    client.force_login(factories.make_viewer(usage_world.tenant))

    assert client.get(reverse("admin:exports_export_download", args=[export.pk])).status_code == 200
    assert client.post(reverse("admin:exports_export_add"), {"kind": "usages", "header": "labels"}).status_code == 403
    assert Export.objects.count() == 1


def test_the_exports_page_is_in_the_console_navigation(client, usage_world):
    client.force_login(factories.make_viewer(usage_world.tenant))

    page = client.get(reverse("admin:index")).content.decode()

    assert f'href="{reverse("admin:exports_export_changelist")}"' in page
