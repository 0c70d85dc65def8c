"""Issue #11 for risk control and the API's own guards: refusals answer in the request's language
(``Accept-Language: ko``) with the same ``code``, details and Retry-After; the risk console reads Korean."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests import factories
from tests.risk.util import add_limit, claim, set_level

pytestmark = pytest.mark.django_db


def test_member_blocked_is_explained_in_korean_with_the_same_code(tenant, api):
    """R-RISK-2: 403 member_blocked — the message follows Accept-Language, the code does not."""
    inventory, _ = factories.make_pool(tenant, size=3)
    set_level(tenant, "bad", "block")
    english = claim(api, inventory, "bad")
    korean = api.post("/api/v1/claims", {"member_id": "bad", "inventory": inventory.public_id}, format="json",
                      HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9")
    assert english.status_code == korean.status_code == 403
    assert english.json()["code"] == korean.json()["code"] == "member_blocked"
    assert english.json()["message"] == "This member is blocked from claiming and using coupons."
    assert korean.json()["message"] == "이 회원은 쿠폰 발급과 사용이 차단되었습니다."
    assert korean["Content-Language"] == "ko"


def test_a_daily_limit_refusal_is_explained_in_korean_with_the_same_code_and_retry_after(tenant, api):
    """R-RISK-1: 429 rate_limited — Korean message naming the dimension in Korean; code, details and Retry-After
    unchanged."""
    from risk.limits import forget_counters

    forget_counters()  # this database's only: flushdb wiped the other xdist worker's keys mid-test
    inventory, _ = factories.make_pool(tenant, size=5)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=1)
    assert claim(api, inventory, "m-1", device_id="dev-1").status_code == 201
    english = claim(api, inventory, "m-2", device_id="dev-1")
    korean = api.post("/api/v1/claims", {"member_id": "m-3", "inventory": inventory.public_id, "device_id": "dev-1"},
                      format="json", HTTP_ACCEPT_LANGUAGE="ko")
    assert english.status_code == korean.status_code == 429
    assert english.json()["code"] == korean.json()["code"] == "rate_limited"
    assert english.json()["details"]["dimension"] == korean.json()["details"]["dimension"] == "device_id"
    assert english.json()["message"].startswith("The daily limit of 1 per device id has been reached; try again in ")
    assert korean.json()["message"].startswith("기기 ID당 일일 한도 1건에 도달했습니다. ")
    assert korean.json()["message"].endswith("초 후에 다시 시도하세요.")
    assert int(korean["Retry-After"]) == korean.json()["details"]["retry_after"] >= 1


def test_a_missing_risk_field_and_an_exhausted_budget_are_explained_in_korean(tenant, api):
    """R-RISK-1 (400 risk_context_required) and R-RISK-3 (422 budget_exhausted) in Korean; codes unchanged."""
    limited, _ = factories.make_pool(tenant, size=5)
    add_limit(inventory=limited, dimension="phone", max_per_day=3)
    refused = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": limited.public_id}, format="json",
                       HTTP_ACCEPT_LANGUAGE="ko")
    assert refused.status_code == 400 and refused.json()["code"] == "risk_context_required"
    assert refused.json()["message"] == ("이 발급 요청에는 phone 값이 필요합니다. 이 쿠폰의 일일 한도가 이 항목을 기준으로 "
                                         "집계합니다.")
    assert refused.json()["details"]["fields"] == {"phone": ["필수 항목입니다. 일일 한도가 이 항목을 기준으로 집계합니다."]}

    budgeted, _ = factories.make_pool(tenant, size=5)
    budgeted.issue_budget_count = 1
    budgeted.save(update_fields=["issue_budget_count"])
    assert claim(api, budgeted, "m-1").status_code == 201
    exhausted = api.post("/api/v1/claims", {"member_id": "m-2", "inventory": budgeted.public_id}, format="json",
                         HTTP_ACCEPT_LANGUAGE="ko")
    assert exhausted.status_code == 422 and exhausted.json()["code"] == "budget_exhausted"
    assert exhausted.json()["message"] == "이 쿠폰의 발급 예산이 모두 소진되었습니다."


def test_the_api_guards_of_core_answer_in_korean_too(api):
    """core/api: a bad token (401) and a bad Idempotency-Key (400) in Korean, codes unchanged."""
    from rest_framework.test import APIClient

    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Bearer cpn_not_a_real_token")
    response = stranger.get("/api/v1/client", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "message": "API 토큰이 올바르지 않습니다.",
                               "details": {}}
    response = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": "X"}, format="json",
                        HTTP_ACCEPT_LANGUAGE="ko", HTTP_IDEMPOTENCY_KEY=" ")
    assert response.status_code == 400 and response.json()["code"] == "invalid_idempotency_key"
    assert response.json()["message"] == "Idempotency-Key 헤더는 1자 이상 255자 이하여야 합니다."


def test_the_risk_console_reads_korean(client, tenant):
    """The console in the tenant's language: app, model, column and action names of risk control in Korean."""
    tenant.language = "ko"
    tenant.save(update_fields=["language"])
    client.force_login(factories.make_operator(tenant))
    inventory, _ = factories.make_pool(tenant, size=3)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=2)
    body = client.get(reverse("admin:risk_frequencylimit_changelist")).content.decode()
    assert "위험 관리" in body and "빈도 한도" in body and "집계 기준" in body
    assert f"기기 ID당 발급 하루 2건 이하 — 쿠폰 풀 {inventory}" in body
    body = client.get(reverse("admin:risk_memberrisk_changelist")).content.decode()
    assert "선택한 항목 삭제 (일반 등급으로 되돌림)" in body
