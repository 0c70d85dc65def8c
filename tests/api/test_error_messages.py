"""#19: every error and every refused checkout item has a stable ``code`` and a ``message`` in the request's language
(Accept-Language ko / en) — JSON parse errors, 401/403/404/405/406/415, DRF's own validation texts, order and code
problems, domain refusals and batch items alike (R-NFR-4)."""
from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from coupons.services.issue import RequestContext, issue_from_pool
from tests import factories

pytestmark = pytest.mark.django_db

HANGUL = re.compile("[\uac00-\ud7a3]")
ORDER = {"order_id": "o-1", "items": [{"sku": "S1", "unit_price": 1000, "quantity": 1}]}


@pytest.fixture
def world(tenant, settings):
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    inventory, _ = factories.make_pool(tenant, size=3, policy=factories.make_approved_policy(
        tenant, kind="threshold", amount=3000, threshold=30000))
    coupon = issue_from_pool(inventory=inventory, member_id="m-1", via="grant", ctx=RequestContext())
    return {"code": coupon.code, "member_token": factories.make_client(tenant)[1]}


def call(world, language, method, path, body=None, *, token="member", content_type="application/json", **headers):
    client = APIClient()
    if token == "member":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['member_token']}")
    elif token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return getattr(client, method)(path, body, content_type=content_type, HTTP_ACCEPT_LANGUAGE=language, **headers)


ERRORS = [
    # label, status, code, request
    ("malformed JSON", 400, "malformed_request",
     lambda w, lang: call(w, lang, "post", "/api/v1/claims", '{"member_id": ')),
    ("JSON that is not an object", 400, "invalid", lambda w, lang: call(w, lang, "post", "/api/v1/claims", "[1, 2]")),
    ("unsupported media type", 415, "unsupported_media_type",
     lambda w, lang: call(w, lang, "post", "/api/v1/claims", "member_id=m", content_type="text/plain")),
    ("method not allowed", 405, "method_not_allowed", lambda w, lang: call(w, lang, "put", "/api/v1/claims", "{}")),
    ("not acceptable", 406, "not_acceptable",
     lambda w, lang: call(w, lang, "get", "/api/v1/client", HTTP_ACCEPT="text/html")),
    ("unknown endpoint", 404, "not_found", lambda w, lang: call(w, lang, "get", "/api/v1/nothing-here")),
    ("no token", 401, "not_authenticated", lambda w, lang: call(w, lang, "get", "/api/v1/client", token=None)),
    ("bad token", 401, "authentication_failed", lambda w, lang: call(w, lang, "get", "/api/v1/client", token="nope")),
    ("member token on an operator endpoint", 403, "permission_denied",
     lambda w, lang: call(w, lang, "get", "/api/v1/exports/ABC")),
    ("DRF field validation", 400, "invalid", lambda w, lang: call(w, lang, "post", "/api/v1/claims", "{}")),
    ("DRF type validation", 400, "invalid",
     lambda w, lang: call(w, lang, "post", "/api/v1/events/X/participants", '{"member_id": 5, "channel": "fax"}')),
    ("exactly one claim target", 400, "invalid",
     lambda w, lang: call(w, lang, "post", "/api/v1/claims", '{"member_id": "m", "code": "A", "promo_code": "B"}')),
    ("order problem", 400, "invalid", lambda w, lang: call(
        w, lang, "post", "/api/v1/checkout/best", '{"member_id": "m-1", "order": {"items": [{"sku": "S1"}]}}')),
    ("codes problem", 400, "invalid", lambda w, lang: call(
        w, lang, "post", "/api/v1/checkout/validate",
        '{"member_id": "m-1", "codes": ["AB", "ab"], "order": {"items": [{"sku": "S", "unit_price": 1, '
        '"quantity": 1}]}}')),
    ("two order ids", 400, "order_id_mismatch", lambda w, lang: call(
        w, lang, "post", f"/api/v1/coupons/{w['code']}/lock",
        {"member_id": "m-1", "order_id": "o-2", "order": ORDER}, format=None)),
    ("unknown coupon", 404, "not_found", lambda w, lang: call(w, lang, "get", "/api/v1/coupons/NOSUCHCODE")),
    ("refused at lock", 422, "not_applicable", lambda w, lang: call(
        w, lang, "post", f"/api/v1/coupons/{w['code']}/lock", {"member_id": "m-1", "order": ORDER})),
    ("not the owner", 403, "not_owner", lambda w, lang: call(
        w, lang, "post", f"/api/v1/coupons/{w['code']}/redeem", {"member_id": "m-2", "order": ORDER})),
    ("wrong state", 409, "invalid_state", lambda w, lang: call(
        w, lang, "post", f"/api/v1/coupons/{w['code']}/release", {"order_id": "o-1"})),
    ("unknown batch action", 404, "not_found",
     lambda w, lang: call(w, lang, "post", "/api/v1/coupons/batch/explode", {"items": []})),
    ("bad page size", 400, "invalid",
     lambda w, lang: call(w, lang, "get", "/api/v1/members/m-1/coupons?page_size=0")),
    ("page past the end", 404, "not_found", lambda w, lang: call(w, lang, "get", "/api/v1/members/m-1/coupons?page=99")),
    ("unknown trigger", 400, "unknown_trigger", lambda w, lang: call(
        w, lang, "post", "/api/v1/rewards/triggers", {"member_id": "m-1", "trigger": "x", "reference": "r"})),
]


def _json_body(body):
    import json

    return body if isinstance(body, str) or body is None else json.dumps(body)


@pytest.mark.parametrize("label,status,code,request_", ERRORS, ids=[e[0] for e in ERRORS])
def test_every_error_has_its_code_and_a_message_in_the_requested_language(world, label, status, code, request_):
    english, korean = request_(world, "en"), request_(world, "ko")
    assert (english.status_code, korean.status_code) == (status, status), (english.content, korean.content)
    assert english["Content-Type"] == korean["Content-Type"] == "application/json"
    en, ko = english.json(), korean.json()
    assert set(en) == set(ko) == {"code", "message", "details"}
    assert en["code"] == ko["code"] == code
    assert en["message"] and not HANGUL.search(en["message"]), en["message"]
    assert HANGUL.search(ko["message"]) and ko["message"] != en["message"], ko["message"]
    assert not re.search(r"[A-Za-z]{4,} [a-z]{3,} [a-z]{3,}", ko["message"]), (
        f"an English sentence inside the Korean message: {ko['message']}")


def test_a_refused_checkout_code_has_its_reason_and_a_message_in_the_requested_language(world):
    body = {"member_id": "m-1", "codes": [world["code"], "NOSUCHCODE"], "order": ORDER}
    english = call(world, "en", "post", "/api/v1/checkout/validate", body, format=None).json()
    korean = call(world, "ko", "post", "/api/v1/checkout/validate", body, format=None).json()
    assert [(r["code"], r["reason"]) for r in english["rejected"]] == [
        ("NOSUCHCODE", "not_found"), (world["code"], "below_threshold")]
    assert [r["message"] for r in english["rejected"]] == [
        "No such coupon.", "The order amount this coupon covers is below its minimum spend."]
    assert [r["message"] for r in korean["rejected"]] == [
        "존재하지 않는 쿠폰입니다.", "이 쿠폰이 적용되는 주문 금액이 최소 결제 금액보다 적습니다."]


def test_a_refused_batch_item_has_its_code_and_a_message_in_the_requested_language(world):
    body = {"items": [{"code": world["code"], "order_id": "o-1"}]}
    english = call(world, "en", "post", "/api/v1/coupons/batch/release", body, format=None).json()
    korean = call(world, "ko", "post", "/api/v1/coupons/batch/release", body, format=None).json()
    assert english["results"][0]["error"]["code"] == korean["results"][0]["error"]["code"] == "invalid_state"
    assert not HANGUL.search(english["results"][0]["error"]["message"])
    assert HANGUL.search(korean["results"][0]["error"]["message"])
