"""Issue #17: console login throttling (django-axes). Five wrong passwords for one username from one address lock
that pair out for the cool-off, even with the right password; the lockout page is 429 in the caller's language;
another address is not locked; behind a trusted proxy the forwarded address counts."""
from __future__ import annotations

import pytest

from tests import factories

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def operator(tenant):
    return factories.make_operator(tenant)


def login(client, username: str, password: str, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, **extra)


def test_five_failures_lock_the_username_from_that_address(client, operator, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert login(client, operator.username, "wrong").status_code == 200  # the form again, with its error
    assert login(client, operator.username, "wrong").status_code == 429  # the fifth failure locks
    locked = login(client, operator.username, PASSWORD, HTTP_ACCEPT_LANGUAGE="en")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address may still log in with the right password.
    assert login(client, operator.username, PASSWORD, REMOTE_ADDR="198.51.100.20").status_code == 302


def test_the_lockout_message_is_in_korean_for_a_korean_browser(client, operator):
    for _ in range(5):
        login(client, operator.username, "wrong")
    locked = login(client, operator.username, PASSWORD, HTTP_ACCEPT_LANGUAGE="ko")
    assert locked.status_code == 429
    assert "로그인 실패가 너무 많습니다" in locked.content.decode()


def test_a_success_before_the_limit_resets_the_count(client, operator):
    for _ in range(4):
        login(client, operator.username, "wrong")
    assert login(client, operator.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        login(client, operator.username, "wrong")
    assert login(client, operator.username, PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_the_forwarded_address_is_locked_not_the_proxy(client, operator, settings):
    settings.COUPON_TRUSTED_PROXY_COUNT = 1
    for _ in range(5):
        login(client, operator.username, "wrong", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert login(client, operator.username, PASSWORD, REMOTE_ADDR="10.0.0.1",
                 HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert login(client, operator.username, PASSWORD, REMOTE_ADDR="10.0.0.1",
                 HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302
