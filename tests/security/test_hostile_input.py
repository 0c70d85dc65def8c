"""Issue #17 (R-NFR-4): hostile identifiers and bodies. One identifier rule for member_id, order_id, device_id and
references on every path (400 naming the field); oversized bodies 413 in the API error shape; deeply nested JSON 400;
an Idempotency-Key retry with reordered keys replays; never a 500."""
from __future__ import annotations

import json
import unicodedata

import pytest
from rest_framework.test import APIClient

from core.identifiers import normalise_identifier
from core.models import IdempotencyRecord
from tests import factories

HOSTILE = {
    "NUL-free C0 control": "m\x01x",
    "DEL": "m\x7fx",
    "C1 control": "m\x85x",
    "right-to-left override": "m\u202ex",
    "left-to-right isolate": "m\u2066x",
    "zero-width space": "m\u200bx",
    "zero-width joiner": "m\u200dx",
    "BOM": "\ufeffm",
    "line separator": "m\u2028x",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_control_and_format_characters_are_refused(value):
    with pytest.raises(ValueError):
        normalise_identifier(value)


def test_identifiers_are_trimmed_and_nfc_normalised():
    decomposed = unicodedata.normalize("NFD", "회원-1")
    assert decomposed != "회원-1"
    assert normalise_identifier(f"  {decomposed}\t") == "회원-1"


@pytest.mark.parametrize("value", ["a/b", "..", ".", "a\\b"])
def test_path_segment_identifiers_refuse_slashes_and_dot_names(value):
    with pytest.raises(ValueError):
        normalise_identifier(value, path_segment=True)
    assert normalise_identifier("a.b", path_segment=True) == "a.b"


def _bad(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert field in json.dumps(body["details"]) and field in body["message"]


@pytest.mark.parametrize("value", ["m\u202e1", "m\u200b1", "\ufeffm1", "m\x85"])
def test_every_path_refuses_a_hostile_member_id_naming_the_field(api, tenant, inventory, value):
    operator = APIClient()
    operator.credentials(HTTP_AUTHORIZATION=f"Bearer {factories.make_client(tenant, scope='operator')[1]}")
    order = factories.order()
    _bad(api.post("/api/v1/claims", {"member_id": value, "inventory": inventory.public_id}, format="json"),
         "member_id")
    _bad(api.post("/api/v1/coupons/ABCDEFGHJK/lock", {"member_id": value, "order_id": "o-1", "order": order},
                  format="json"), "member_id")
    _bad(api.post("/api/v1/checkout/best", {"member_id": value, "order": order}, format="json"), "member_id")
    _bad(api.post("/api/v1/rewards/triggers", {"member_id": value, "trigger": "signup", "reference": "r-1"},
                  format="json"), "member_id")
    _bad(operator.post("/api/v1/grants", {"inventory": inventory.public_id, "member_ids": ["ok-1", value]},
                       format="json"), "member_ids")
    for path in (f"/api/v1/members/{value}/coupons", f"/api/v1/members/{value}/points"):
        _bad(api.get(path), "member_id")


@pytest.mark.parametrize("field,body", [
    ("order_id", {"member_id": "m-1", "order_id": "o\u202e1"}),
    ("device_id", {"member_id": "m-1", "order_id": "o-1", "device_id": "d\u200b"}),
    ("order_id", {"member_id": "m-1", "order_id": "o-1", "order": factories.order(order_id="o\x07")}),
])
def test_order_and_device_ids_follow_the_same_rule(api, field, body):
    body.setdefault("order", factories.order())
    _bad(api.post("/api/v1/coupons/ABCDEFGHJK/redeem", body, format="json"), field)


def test_a_reference_follows_the_same_rule(api):
    _bad(api.post("/api/v1/rewards/triggers", {"member_id": "m-1", "trigger": "signup", "reference": "r\u2066"},
                  format="json"), "reference")


def test_a_member_id_becoming_a_path_segment_refuses_a_slash(api, inventory):
    _bad(api.post("/api/v1/claims", {"member_id": "a/../b", "inventory": inventory.public_id}, format="json"),
         "member_id")


def test_the_same_member_trimmed_and_composed_is_one_member(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=2)
    decomposed = unicodedata.normalize("NFD", "회원-7")
    first = api.post("/api/v1/claims", {"member_id": f" {decomposed} ", "inventory": inventory.public_id},
                     format="json")
    assert first.status_code == 201
    assert first.json()["coupon"]["member_id"] == "회원-7"
    listed = api.get("/api/v1/members/회원-7/coupons").json()
    assert listed["count"] == 1


def test_an_oversized_body_is_413_in_the_api_error_shape(api, settings):
    settings.COUPON_API_MAX_BODY_BYTES = 10_000
    response = api.post("/api/v1/checkout/best", {"member_id": "m-1", "order": factories.order(),
                                                  "padding": "x" * 20_000}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert response.json()["details"] == {"max_bytes": 10_000}


def test_djangos_own_body_cap_answers_413_not_500(api, settings):
    """Defence in depth: should Django's DATA_UPLOAD_MAX_MEMORY_SIZE refuse a body the middleware let through (the
    two set apart), the API still answers 413 in its error shape, never a 500."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"member_id": "m-1", "order": factories.order(), "padding": "x" * 20_000}).encode()
    response = api.generic("POST", "/api/v1/checkout/best", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_400(api, depth):
    body = '{"member_id": "m-1", "order": ' + "[" * depth + "]" * depth + "}"
    response = api.generic("POST", "/api/v1/checkout/best", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_an_idempotent_retry_with_reordered_keys_and_respelt_numbers_replays(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=2)
    # JSON texts (not dicts: the spelling is the point): %-formatting keeps their braces readable.
    body = '{"member_id": "m-1", "inventory": "%s", "note": {"a": 1, "b": 2.50}}' % inventory.public_id  # noqa: UP031
    retry = '{"note": {"b": 2.5, "a": 1.0}, "inventory": "%s",  "member_id": "m-1"}' % inventory.public_id  # noqa: UP031
    first = api.generic("POST", "/api/v1/claims", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.generic("POST", "/api/v1/claims", retry, content_type="application/json",
                         HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert IdempotencyRecord.objects.count() == 1
    changed = api.generic("POST", "/api/v1/claims", retry.replace('"a": 1.0', '"a": 2'),
                          content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert changed.status_code == 422


def test_the_console_export_of_old_rows_replaces_xml_invalid_characters():
    """Rows written before the identifier rule may hold control characters; the XLSX writer must not choke on them
    (openpyxl refuses them with IllegalCharacterError) and formulas stay escaped."""
    from core.spreadsheets import safe_cell

    assert safe_cell("m\x01\x1f-1") == "m\ufffd\ufffd-1"
    assert safe_cell("=HYPERLINK(\"x\")").startswith("'")


def test_a_winners_export_with_member_ids_written_before_the_rule_is_still_a_valid_file(client, tenant):
    """End to end: a draw over member ids holding control characters (rows from before the identifier rule) exports
    to an XLSX that opens, the characters replaced — without the sanitiser openpyxl refuses the whole file."""
    import io

    from django.urls import reverse
    from openpyxl import load_workbook

    from tests.draws.helpers import committed_draw, ended_event_with

    event = ended_event_with(tenant, ["m\x01one", "m\x1ftwo"])
    draw = committed_draw(event, [("all", 2)])
    client.force_login(factories.make_operator(tenant))
    url = reverse("admin:draws_draw_changelist")
    client.post(url, {"action": "run_now", "_selected_action": [str(draw.pk)], "confirm": "yes"})
    response = client.post(url, {"action": "export_winners_xlsx", "_selected_action": [str(draw.pk)],
                                 "confirm": "yes"})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    assert sorted(row[6] for row in list(sheet.iter_rows(values_only=True))[1:]) == ["m\ufffdone", "m\ufffdtwo"]
