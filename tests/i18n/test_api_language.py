"""Issue #11: API error ``message`` follows Accept-Language (ko, en); ``code`` never changes with it."""
from __future__ import annotations

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


def join(api, event_id, language=None, **body):
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    return api.post(f"/api/v1/events/{event_id}/participants", body, format="json", **headers)


def test_a_domain_error_message_follows_accept_language_and_its_code_does_not(api, tenant):
    event = factories.make_event(tenant)
    assert join(api, event.public_id, member_id="m-1").status_code == 201
    english = join(api, event.public_id, "en", member_id="m-1")
    korean = join(api, event.public_id, "ko-KR,ko;q=0.9,en;q=0.5", member_id="m-1")
    assert english.status_code == korean.status_code == 409
    assert english.json()["code"] == korean.json()["code"] == "already_joined"
    assert english.json()["details"] == korean.json()["details"]
    assert english.json()["message"] == "This member has already joined this event."
    assert korean.json()["message"] == "이 회원은 이미 이 이벤트에 참여했습니다."
    assert korean["Content-Language"] == "ko"
    assert "Accept-Language" in korean["Vary"]


def test_without_accept_language_the_api_answers_in_english():
    """The tenant's console language does not change the API: integrators read English."""
    from rest_framework.test import APIClient

    korean_tenant = factories.make_tenant(language="ko")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {factories.make_client(korean_tenant)[1]}")
    response = join(api, "NOSUCHEVENT", member_id="m-1")
    assert response.json() == {"code": "not_found", "message": "No such event.", "details": {}}


def test_drf_validation_messages_are_translated_too(api, tenant):
    event = factories.make_event(tenant)
    english = join(api, event.public_id, "en")
    korean = join(api, event.public_id, "ko")
    assert english.status_code == korean.status_code == 400
    assert english.json()["code"] == korean.json()["code"] == "invalid"
    assert english.json()["message"] == "The request is not valid — member_id: This field is required."
    assert korean.json()["message"] == "요청이 올바르지 않습니다 — member_id: 이 필드는 필수 항목입니다."


def test_an_unknown_endpoint_answers_in_the_requested_language(api):
    response = api.get("/api/v1/no-such-thing", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "존재하지 않는 API 엔드포인트입니다.", "details": {}}


def test_an_unsupported_language_falls_back_to_english(api, tenant):
    response = join(api, "NOSUCHEVENT", "fr-FR,fr;q=0.9", member_id="m-1")
    assert response.json()["message"] == "No such event."
