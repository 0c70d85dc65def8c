"""API.md Conventions: Idempotency-Key on every POST — replay, reuse with another body, in-flight, concurrency."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.models import AuditLog, IdempotencyRecord
from tests import factories
from tests.core import idempotency_urls

pytestmark = pytest.mark.urls("tests.core.idempotency_urls")


def effects() -> int:
    return AuditLog.objects.filter(action="test.effect").count()


def post(token: str, body: dict, key: str | None = "key-1"):
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    try:
        return client.post("/effect", body, format="json", **headers)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()  # a worker thread's own connection


@pytest.fixture
def token(db):
    return factories.make_client(factories.make_tenant())[1]


def test_same_key_and_body_returns_the_stored_response_without_a_second_effect(token):
    first = post(token, {"amount": 1})
    second = post(token, {"amount": 1})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert effects() == 1


def test_same_key_with_a_different_body_is_refused_with_422(token):
    post(token, {"amount": 1})
    response = post(token, {"amount": 2})
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert effects() == 1


def test_without_a_key_every_post_has_its_effect(token):
    post(token, {"amount": 1}, key=None)
    post(token, {"amount": 1}, key=None)
    assert effects() == 2


def test_a_business_refusal_is_stored_and_replayed(token):
    first = post(token, {"reject": True})
    second = post(token, {"reject": True})
    assert first.status_code == second.status_code == 422
    assert second.json() == first.json() == {"code": "sold_out", "message": "Nope.", "details": {}}


def test_a_server_error_is_rolled_back_and_not_stored_so_a_retry_runs_again(token):
    idempotency_urls.fail_next["count"] = 1
    crashed = post(token, {"amount": 1})
    assert crashed.status_code == 500
    assert crashed.json()["code"] == "server_error"
    assert effects() == 0
    retried = post(token, {"amount": 1})
    assert retried.status_code == 201
    assert effects() == 1


def test_keys_belong_to_one_client(token):
    other = factories.make_client(factories.make_tenant())[1]
    post(token, {"amount": 1})
    response = post(other, {"amount": 1})
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert effects() == 2


def test_an_expired_record_no_longer_replays(token, settings):
    post(token, {"amount": 1})
    IdempotencyRecord.objects.update(created_at=IdempotencyRecord.objects.get().created_at - timedelta(hours=25))
    assert post(token, {"amount": 2}).status_code == 201
    assert effects() == 2


@pytest.mark.parametrize("key", ["x" * 256, "   "])
def test_an_invalid_key_is_refused_with_400_and_no_effect(token, key):
    response = post(token, {"amount": 1}, key=key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert effects() == 0


@pytest.mark.django_db(transaction=True)
def test_a_second_request_while_the_first_runs_gets_409_request_in_progress():
    token = factories.make_client(factories.make_tenant())[1]
    idempotency_urls.entered.clear()
    idempotency_urls.release.clear()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, token, {"block": True})
        assert idempotency_urls.entered.wait(10)
        during = post(token, {"block": True})
        idempotency_urls.release.set()
        assert first.result(timeout=10).status_code == 201
    assert during.status_code == 409
    assert during.json()["code"] == "request_in_progress"
    after = post(token, {"block": True})
    assert after.status_code == 201 and after["Idempotent-Replayed"] == "true"
    assert effects() == 1


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_identical_requests_with_one_key_have_one_effect():
    token = factories.make_client(factories.make_tenant())[1]
    barrier = threading.Barrier(50)

    def one(_):
        barrier.wait(10)
        return post(token, {"amount": 7}, key="burst")

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(one, range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    assert effects() == 1
    bodies = {r.content for r in responses if r.status_code == 201}
    assert len(bodies) == 1  # every success is the same stored answer
